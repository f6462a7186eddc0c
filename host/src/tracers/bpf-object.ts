// Typed wrapper over the native BpfObject (native/src/bpf_object.cc), shared by the kernel tracers
// (tcp, xdp, fileio, security): load an object file, attach each program on its own with a report,
// read maps, poll a ring, and publish the ring's drops on /metrics (every hash map's fill is
// sampled by map-fill.ts from the moment the object loads).
import * as path from 'path';
import { loadNative, nativeAddonPath } from '../native';
import { SelfMetrics } from '../metrics/self';
import { MapDesc, registerMaps } from './map-fill';

interface NativeBpfObject {
  load(file: string, opts: { rodata?: Record<string, number>; maxEntries?: Record<string, number> }): { programs: string[]; failed: Array<{ name: string; error: string }>; ncpu: number };
  attach(prog: string, ifname?: string): number;
  mapInfo(map: string): { type: number; keySize: number; valueSize: number; maxEntries: number; perCpu: boolean };
  mapEntries(map: string, max?: number): Buffer[];
  mapLookup(map: string, key: Buffer): Buffer | null;
  mapUpdate(map: string, key: Buffer, value: Buffer): void;
  mapDelete(map: string, key: Buffer): boolean;
  mapCount(map: string): number;
  maps(): MapDesc[];
  ringOpen(map: string): void;
  ringPoll(max?: number): Buffer[];
  ringWatch?(cb?: (ok: boolean) => void): void;
  close(): void;
}

export interface AttachReport {
  attached: string[];
  failed: Array<{ name: string; error: string }>;
  progIds: number[];
}

/** build/bpf/<stem>.bpf.o of this install (next to native/ at the repository root). */
export function bpfObjectPath(stem: string): string {
  return path.join(path.dirname(path.dirname(path.dirname(path.dirname(nativeAddonPath())))), 'build', 'bpf', `${stem}.bpf.o`);
}

export class BpfObject {
  private readonly n: NativeBpfObject;
  readonly ncpu: number;
  readonly report: AttachReport = { attached: [], failed: [], progIds: [] };
  private closed = false;
  private readonly untrack: () => void;

  /** `stem` names the object file and, on /metrics, the tracer its maps belong to. */
  constructor(readonly stem: string, opts: { rodata?: Record<string, number>; maxEntries?: Record<string, number> } = {}) {
    const Ctor = (loadNative() as unknown as { BpfObject: new () => NativeBpfObject }).BpfObject;
    if (!Ctor) throw new Error('native addon has no BpfObject; rebuild with npm run build:native');
    this.n = new Ctor();
    const r = this.n.load(bpfObjectPath(stem), opts);
    this.ncpu = r.ncpu;
    this.report.failed.push(...r.failed.map((f) => ({ name: f.name, error: `load: ${f.error}` })));
    this.programs = r.programs;
    this.untrack = registerMaps(stem, () => (this.closed ? [] : this.n.maps()));
  }

  readonly programs: string[];

  /** Attaches each named program on its own; a failure is recorded in the report, never thrown. */
  attachAll(names = this.programs, ifname?: string): AttachReport {
    for (const p of names) {
      if (!this.programs.includes(p)) continue;
      try {
        this.report.progIds.push(this.n.attach(p, ifname));
        this.report.attached.push(ifname ? `${p}@${ifname}` : p);
      } catch (e) {
        this.report.failed.push({ name: ifname ? `${p}@${ifname}` : p, error: (e as Error).message });
      }
    }
    return this.report;
  }

  mapInfo(map: string) { return this.n.mapInfo(map); }
  /** O(entries) key walk: for tests and small maps; /metrics uses map-fill.ts. */
  mapCount(map: string): number { return this.n.mapCount(map); }
  /** The object's maps with their kernel ids (hash, array, ring …). */
  maps(): MapDesc[] { return this.n.maps(); }
  lookup(map: string, key: Buffer): Buffer | null { return this.n.mapLookup(map, key); }
  update(map: string, key: Buffer, value: Buffer): void { this.n.mapUpdate(map, key, value); }
  delete(map: string, key: Buffer): boolean { return this.n.mapDelete(map, key); }

  /** [key, value] pairs; per-CPU values are `ncpu` slots of roundup(valueSize, 8) bytes. */
  *entries(map: string, max?: number): Generator<[Buffer, Buffer]> {
    const flat = this.n.mapEntries(map, max);
    for (let i = 0; i + 1 < flat.length; i += 2) yield [flat[i], flat[i + 1]];
  }

  /** A per-CPU array of u64 counters summed over CPUs (stats and histogram arrays). */
  perCpuU64(map: string): number[] {
    const info = this.n.mapInfo(map);
    const out = new Array<number>(info.maxEntries).fill(0);
    const key = Buffer.alloc(4);
    for (let i = 0; i < info.maxEntries; i++) {
      key.writeUInt32LE(i);
      const v = this.n.mapLookup(map, key);
      if (!v) continue;
      let sum = 0;
      for (let c = 0; c + 8 <= v.length; c += 8) sum += Number(v.readBigUInt64LE(c));
      out[i] = sum;
    }
    return out;
  }

  openRing(map: string): void { this.n.ringOpen(map); }
  /** Records committed so far (copied), at most `max`; never blocks. */
  pollRing(max = 4096): Buffer[] { return this.n.ringPoll(max); }
  /** Hands every record the ring holds to `onRecord`, `batch` at a time, until a read comes back
   *  short: what arrives while it reads is read too, and an empty ring costs one poll. */
  drainRing(onRecord: (r: Buffer) => void, batch = 4096): void {
    for (;;) {
      const recs = this.pollRing(batch);
      for (const r of recs) onRecord(r);
      if (recs.length < batch) break;
    }
  }

  /** Runs `drain` when the ring holds records instead of on a timer: idle, nothing wakes the
   *  agent. `delayMs` after the first record (0: on the next loop turn), so records that come
   *  meanwhile are read in the same drain, as a `delayMs` poll read them: a busy ring is drained
   *  no more often than before, and a record waits no longer. Falls back to polling every
   *  `delayMs || fallbackMs` where the ring's fd cannot be watched. */
  watchRing(drain: () => void, delayMs: number, fallbackMs = 100): { stop(): void } {
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const poll = () => {
      timer = setInterval(() => { if (!stopped) drain(); }, delayMs || fallbackMs);
      timer.unref();
    };
    if (!this.n.ringWatch) { poll(); return { stop: () => { stopped = true; clearInterval(timer); } }; }
    const run = () => {
      timer = undefined;
      if (stopped) return;
      try { drain(); } finally { if (!stopped && !this.closed) this.n.ringWatch!(); }
    };
    const ready = (ok: boolean) => {
      if (stopped) return;
      if (!ok) { poll(); return; }
      if (delayMs > 0) { timer = setTimeout(run, delayMs); timer.unref(); } else run();
    };
    this.n.ringWatch(ready);
    return { stop: () => { stopped = true; clearTimeout(timer); clearInterval(timer); } };
  }

  /** Publishes the tracer's kernel counters (ring drops included) on /metrics: one per-CPU array read. */
  collect(m: SelfMetrics, tracer: string, stats?: { map: string; names: string[] }): void {
    if (this.closed) return;
    if (stats) {
      const v = this.perCpuU64(stats.map);
      stats.names.forEach((name, i) => m.set(`telegen_bpf_${name}_total`, `Kernel-side ${tracer} tracer counter ${name}`, v[i] ?? 0, { tracer }, 'counter'));
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.untrack();
    this.n.close();
  }
}

/** A 16-byte address as the kernel side stores it (IPv4 as ::ffff:a.b.c.d) → text. */
export function addrText(b: Uint8Array, off: number): string {
  let v4 = true;
  for (let i = 0; i < 10; i++) if (b[off + i] !== 0) { v4 = false; break; }
  if (v4 && b[off + 10] === 0xff && b[off + 11] === 0xff) return `${b[off + 12]}.${b[off + 13]}.${b[off + 14]}.${b[off + 15]}`;
  const parts: string[] = [];
  for (let i = 0; i < 16; i += 2) parts.push(((b[off + i] << 8) | b[off + i + 1]).toString(16));
  // Shortest form: the longest run of zero groups becomes ::.
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (parts[i] !== '0') { i++; continue; }
    let j = i;
    while (j < 8 && parts[j] === '0') j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  if (bestLen < 2) return parts.join(':');
  return `${parts.slice(0, best).join(':')}::${parts.slice(best + bestLen).join(':')}`;
}

/** NUL-terminated C string field. */
export function cString(b: Buffer, off: number, len: number): string {
  const end = b.indexOf(0, off);
  return b.toString('utf8', off, end < 0 || end > off + len ? off + len : end);
}
