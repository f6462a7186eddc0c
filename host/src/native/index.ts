// Typed entry to the native addon (native/, built by `npm run build:native`).
import * as fs from 'fs';
import * as path from 'path';
import { tg_stat } from '../generated/layout';

export interface SocketTracerOptions {
  /** Ring buffer bytes; rounded up to a power of two (default 16 MiB). */
  ringBytes?: number;
  /** Payload bytes captured per syscall, 1..TG_CAPTURE_LIMIT (default 16384). */
  captureMax?: number;
  /** Of a TCP call longer than captureMax, bytes also kept from its end as a second record,
   *  0..TG_CAPTURE_LIMIT (default TG_CAPTURE_TAIL_DEFAULT; 0 = the head only). */
  captureTail?: number;
  /** Connections tracked at once in the kernel LRU (default 1 Mi). */
  connMax?: number;
  /** Process whose traffic is never traced (default: this process). */
  selfPid?: number;
  /** Trace only this process (default 0 = all). */
  targetPid?: number;
  /** Bytes waiting in the ring that wake the reader at once; below that it polls every
   *  TG_POLL_MS_DEFAULT ms (default TG_WAKEUP_BYTES_DEFAULT; 0 = wake on every record). */
  wakeupBytes?: number;
  /** readv/writev/sendmsg/recvmsg: iovecs walked with bpf_loop (every one, TG_IOV_LOOP_MAX) or
   *  unrolled (the first TG_IOV_MAX); 'auto' (default) = bpf_loop where the kernel has it. */
  iovWalk?: 'auto' | 'loop' | 'unrolled';
  /** Records one onBatch call gets at most, 1..4096 (unset: the reader's own 4096); the agent passes tracers.socket.max_batch. */
  maxBatch?: number;
  /** Called with whatever onBatch throws; the batch is released regardless. */
  onError?: (err: unknown) => void;
}

export interface AttachReport {
  attached: string[];
  failed: { name: string; error: string }[];
  /** Kernel ids of the loaded programs (bpftool prog show). */
  progIds: number[];
  /** Filesystems the loader had to mount (tracefs). */
  mounted: string[];
  ringBytes: number;
  captureMax: number;
  captureTail: number;
  connMax: number;
  selfPid: number;
  targetPid: number;
  wakeupBytes: number;
  /** Iovecs the loaded exits walk per call: TG_IOV_LOOP_MAX with bpf_loop, else TG_IOV_MAX. */
  iovMax: number;
}

/**
 * Called once per batch of committed ring records, on the JS thread. `ring` views the
 * kernel ring buffer in place (read-only memory: never write to it) and `index` holds
 * `[off0, len0, off1, len1, ...]` for `count` records. Both are only valid during the
 * call: the kernel reuses the space as soon as it returns. Copy what must outlive it.
 */
export type BatchHandler = (ring: Uint8Array, index: Uint32Array, count: number) => void;

type StatKey = Exclude<keyof typeof tg_stat, 'TG_STAT_MAX'>;
/** Kernel counter names, from enum tg_stat: events, ring_full, truncated, ... */
export type KernelStatName = StatKey extends `TG_STAT_${infer R}` ? Lowercase<R> : never;

export type SocketTracerStats = Record<KernelStatName, number> & {
  /** Batches and records handed to onBatch. */
  batches: number;
  records: number;
  /** Bytes committed to the ring but not consumed yet. */
  ringPendingBytes: number;
  /** onBatch calls that threw. */
  handlerErrors: number;
};

export interface SocketTracerMapStats {
  conns: number;
  connMax: number;
  ringBytes: number;
}

export interface SocketTracer {
  readonly report: AttachReport;
  stats(): SocketTracerStats;
  /** Walks the connection map: O(entries), for diagnostics. */
  mapStats(): SocketTracerMapStats;
  /** The object's maps with their kernel ids (tracers/map-fill.ts samples their fill); absent
   *  in the privilege-separated worker, where the loader holds the maps. */
  maps?(): Array<{ name: string; id: number; type: number; maxEntries: number }>;
  /** Stops (true) or resumes reading the ring; while stopped the kernel drops what does not fit
   *  and counts it (ring_full): the agent's CPU budget (memory/overload.ts). */
  pause(paused: boolean): void;
  /** Detaches every program, stops the ring reader, frees the maps. Idempotent; stats()
   *  keeps returning the totals as they were at close. */
  close(): void;
}

interface NativeSocketTracer {
  open(opts: object, handler: (count: number) => void): AttachReport;
  stats(): { kernel: number[]; batches: number; records: number; ringPendingBytes: number };
  mapStats(): SocketTracerMapStats;
  maps(): Array<{ name: string; id: number; type: number; maxEntries: number }>;
  /** Detaches the programs, then hands what the ring holds to the handler, to its end. */
  detach(): void;
  close(): void;
  setPaused(paused: boolean): void;
  /** At most n records (1..4096) per handler call. */
  setMaxBatch(n: number): void;
  readonly ring: Uint8Array | null;
  readonly index: Uint32Array | null;
}

export interface NativeAddon {
  SocketTracer: new () => NativeSocketTracer;
}

function repoRoot(): string {
  if (process.env.TELEGEN_ROOT) return process.env.TELEGEN_ROOT;
  // Works from host/src/native and from dist/host/src/native alike.
  let dir = __dirname;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try {
        if (JSON.parse(fs.readFileSync(pkg, 'utf8')).name === 'telegen') return dir;
      } catch {
        /* keep looking */
      }
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error('telegen: cannot find the repository root (set TELEGEN_ROOT)');
    dir = up;
  }
}

export function nativeAddonPath(): string {
  return path.join(repoRoot(), 'native', 'build', 'Release', 'telegen_native.node');
}

let cached: NativeAddon | undefined;

export function loadNative(): NativeAddon {
  if (cached) return cached;
  const file = nativeAddonPath();
  if (!fs.existsSync(file)) throw new Error(`telegen: native addon not built (${file}); run npm run build:native`);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  cached = require(file) as NativeAddon;
  return cached;
}

const statNames: { name: KernelStatName; index: number }[] = (Object.keys(tg_stat) as (keyof typeof tg_stat)[])
  .filter((k): k is StatKey => k !== 'TG_STAT_MAX')
  .map((k) => ({ name: k.slice('TG_STAT_'.length).toLowerCase() as KernelStatName, index: tg_stat[k] }));

export function openSocketTracer(opts: SocketTracerOptions, onBatch: BatchHandler): SocketTracer {
  const native = new (loadNative().SocketTracer)();
  let ring: Uint8Array = new Uint8Array(0);
  let index: Uint32Array = new Uint32Array(0);
  let handlerErrors = 0;
  let closed = false;
  const report = native.open(
    {
      ringBytes: opts.ringBytes,
      captureMax: opts.captureMax,
      captureTail: opts.captureTail,
      connMax: opts.connMax,
      selfPid: opts.selfPid ?? process.pid,
      targetPid: opts.targetPid ?? 0,
      wakeupBytes: opts.wakeupBytes,
      iovWalk: opts.iovWalk,
    },
    (count: number) => {
      try {
        onBatch(ring, index, count);
      } catch (err) {
        handlerErrors++;
        if (opts.onError) opts.onError(err);
        else if (handlerErrors === 1) process.emitWarning(`telegen: socket tracer batch handler threw: ${String(err)}`);
      }
    },
  );
  // The first batch can only run after this synchronous code: the views and the cap are set by then.
  ring = native.ring ?? ring;
  index = native.index ?? index;
  if (opts.maxBatch !== undefined) native.setMaxBatch(opts.maxBatch);

  let final: SocketTracerStats | undefined;
  return {
    report,
    stats(): SocketTracerStats {
      if (final) return final;
      const s = native.stats();
      const out = { batches: s.batches, records: s.records, ringPendingBytes: s.ringPendingBytes, handlerErrors } as SocketTracerStats;
      for (const { name, index: i } of statNames) out[name] = s.kernel[i] ?? 0;
      return out;
    },
    mapStats: () => native.mapStats(),
    maps: () => (closed ? [] : native.maps()),
    pause: (paused) => { if (!closed) native.setPaused(paused); },
    close(): void {
      if (closed) return;
      // Capture stops and the ring is read to its end first (its records reach the handler now),
      // so the totals kept below count them.
      native.detach();
      closed = true;
      // Kept so a last metrics flush after close still reports the totals.
      final = this.stats();
      native.close();
    },
  };
}
