// One running decoder module: verifies it against the ABI, instantiates it, and feeds it stream
// bytes through its input window, keeping unconsumed bytes host-side (decoders/abi/README.md).
import {
  ABI_VERSION, PARSE_NEEDS_MORE, PARSE_INVALID, PARSE_IGNORED, GAP_ABSORBED,
} from '../../../decoders/abi/abi';
import { DecodedRecord, RecordError, MemView, memView, RecordReader } from './records';
import { meterModule, MeterError, FUEL_EXPORT } from './meter';

export interface DecoderMeta {
  name: string;
  version: string;
  protocols: string[];
  ports?: number[];
  transport?: 'tcp' | 'udp' | 'both';
  attributes?: Record<string, string>;
  [k: string]: unknown;
}

export interface VerifyPolicy {
  /** "module.name" entries a decoder may import; anything else is refused at load. */
  allowedImports: string[];
  /** Largest memory maximum (64 KiB pages) a decoder may declare. */
  maxMemoryPages: number;
  /** CPU budget per call: loop iterations + function calls before the module is stopped. */
  fuelPerCall: number;
  /** Failures (traps, budget overruns) within `failureWindowMs` that quarantine a module. */
  maxFailures: number;
  failureWindowMs: number;
  /** Largest record a decoder may emit. */
  maxRecordBytes: number;
}

export const DEFAULT_VERIFY_POLICY: VerifyPolicy = {
  allowedImports: ['env.abort', 'telegen.emit', 'telegen.log'],
  maxMemoryPages: 1024,
  fuelPerCall: 20_000_000, // see policies/default.yaml for why
  maxFailures: 5,
  failureWindowMs: 60_000,
  maxRecordBytes: 1 << 20,
};

export class DecoderLoadError extends Error {}

const REQUIRED_EXPORTS: Array<[string, WebAssembly.ImportExportKind]> = [
  ['abi_version', 'function'], ['meta', 'function'], ['input', 'function'], ['input_cap', 'function'],
  ['detect', 'function'], ['parse', 'function'], ['close', 'function'], ['tick', 'function'],
  ['memory', 'memory'],
];

/** Reads the declared memory limits from the module bytes (the JS API does not expose them). */
export function declaredMemory(bytes: Uint8Array): { initial: number; maximum?: number } | undefined {
  let p = 8;
  const u32 = (): number => {
    let r = 0, shift = 0, b: number;
    do { b = bytes[p++]; r |= (b & 0x7f) << shift; shift += 7; } while (b & 0x80 && shift < 35);
    return r >>> 0;
  };
  while (p < bytes.length) {
    const id = bytes[p++];
    const size = u32();
    const end = p + size;
    if (id === 5) {
      const count = u32();
      if (count < 1) return undefined;
      const flags = bytes[p++];
      const initial = u32();
      const maximum = flags & 1 ? u32() : undefined;
      return { initial, maximum };
    }
    p = end;
  }
  return undefined;
}

/** Checks a module against the ABI and the policy; returns the reasons it is refused (empty = ok). */
export function verifyModule(mod: WebAssembly.Module, bytes: Uint8Array, policy: VerifyPolicy): string[] {
  const problems: string[] = [];
  for (const imp of WebAssembly.Module.imports(mod)) {
    const name = `${imp.module}.${imp.name}`;
    if (!policy.allowedImports.includes(name)) problems.push(`import ${name} is not allowed by policy (allowed: ${policy.allowedImports.join(', ')})`);
  }
  const exports = new Map(WebAssembly.Module.exports(mod).map((e) => [e.name, e.kind]));
  for (const [name, kind] of REQUIRED_EXPORTS) {
    if (exports.get(name) !== kind) problems.push(`missing ${kind} export "${name}" required by decoder ABI v${ABI_VERSION}`);
  }
  const mem = declaredMemory(bytes);
  if (!mem) problems.push('module declares no memory');
  else if (mem.maximum === undefined) problems.push('module memory has no declared maximum (build with --maximumMemory)');
  else if (mem.maximum > policy.maxMemoryPages) problems.push(`module memory maximum ${mem.maximum} pages exceeds policy cap ${policy.maxMemoryPages}`);
  return problems;
}

interface Exports {
  memory: WebAssembly.Memory;
  abi_version(): number;
  meta(): number;
  input(): number;
  input_cap(): number;
  detect(dir: number, len: number): number;
  parse(stream: number, dir: number, len: number, ts: bigint): number;
  close(stream: number): void;
  tick(now: bigint): void;
  gap?(stream: number, dir: number, len: number): number;
  hint?(stream: number, dir: number, len: number, ts: bigint): number;
  telegen_fuel: WebAssembly.Global;
}

export type FeedResult = 'ok' | 'invalid' | 'ignored' | 'overflow' | 'trap';

export interface DecoderCounters {
  calls: number;
  bytes: number;
  records: number;
  badRecords: number;
  invalid: number;
  overflows: number;
  traps: number;
  budgetExceeded: number;
  gapsAbsorbed: number;
  gapResets: number;
  logs: number;
  hostErrors: number;
}

export interface InstanceHooks {
  onRecord(rec: DecodedRecord, inst: DecoderInstance): void;
  onLog?(level: number, msg: string, inst: DecoderInstance): void;
  onBadRecord?(err: Error, inst: DecoderInstance): void;
  onHostError?(err: Error, inst: DecoderInstance): void;
}

export class DecoderInstance {
  readonly meta: DecoderMeta;
  readonly counters: DecoderCounters = { calls: 0, bytes: 0, records: 0, badRecords: 0, invalid: 0, overflows: 0, traps: 0, budgetExceeded: 0, gapsAbsorbed: 0, gapResets: 0, logs: 0, hostErrors: 0 };
  lastError?: string;
  /** Set once the module failed too often: the host stops giving it traffic. */
  quarantined = false;
  private failures: number[] = [];
  /** After feed() returned 'ignored': the bytes the decoder did not take (e.g. after an Upgrade). */
  rest: Uint8Array | null = null;
  private ex!: Exports;
  /** Read only after a trap: the metered module restores the budget itself on every call from the host (meter.ts). */
  private fuel!: WebAssembly.Global;
  private mem!: Uint8Array;
  private mv?: MemView;
  /** Built once meta() named the decoder's private attributes; kept across re-instantiation. */
  private reader?: RecordReader;
  private win = 0;
  private cap = 0;
  /** Unconsumed bytes per (stream, dir): key = stream * 2 + dir. */
  private readonly pending = new Map<number, Uint8Array>();

  private constructor(readonly module: WebAssembly.Module, readonly hooks: InstanceHooks, readonly policy: VerifyPolicy) {
    this.instantiate();
    this.meta = this.readMeta();
    this.reader = new RecordReader(this.meta.attributes);
  }

  static fromBytes(bytes: Uint8Array, hooks: InstanceHooks, policy: VerifyPolicy = DEFAULT_VERIFY_POLICY): DecoderInstance {
    let mod: WebAssembly.Module;
    try { mod = new WebAssembly.Module(bytes); } catch (e) { throw new DecoderLoadError(`not a valid WebAssembly module: ${(e as Error).message}`); }
    const problems = verifyModule(mod, bytes, policy);
    if (problems.length) throw new DecoderLoadError(problems.join('; '));
    let metered: WebAssembly.Module;
    try { metered = new WebAssembly.Module(meterModule(bytes, policy.fuelPerCall)); } catch (e) {
      throw new DecoderLoadError(e instanceof MeterError ? `cannot enforce a CPU budget on this module: ${e.message}` : `metered module invalid: ${(e as Error).message}`);
    }
    const inst = new DecoderInstance(metered, hooks, policy);
    if (inst.ex.abi_version() !== ABI_VERSION) throw new DecoderLoadError(`decoder ABI version ${inst.ex.abi_version()} is not supported (host speaks ${ABI_VERSION})`);
    return inst;
  }

  /** Fresh instance of the same module: all stream state is lost (used after a trap). */
  reset(): void {
    this.pending.clear();
    this.instantiate();
  }

  private instantiate(): void {
    const imports = {
      env: {
        abort: (msg: number, file: number, line: number, col: number) => {
          throw new WebAssembly.RuntimeError(`decoder abort: ${this.readAsString(msg)} at ${this.readAsString(file)}:${line}:${col}`);
        },
      },
      telegen: {
        emit: (ptr: number, len: number) => this.onEmit(ptr, len),
        log: (level: number, ptr: number, len: number) => {
          this.counters.logs++;
          const m = this.view();
          const msg = ptr >= 0 && ptr + len <= m.byteLength ? Buffer.from(m.buffer, ptr, Math.min(len, 4096)).toString('utf8') : '<bad log pointer>';
          this.hooks.onLog?.(level, msg, this);
        },
      },
    };
    const instance = new WebAssembly.Instance(this.module, imports);
    this.ex = instance.exports as unknown as Exports;
    if (!(this.ex[FUEL_EXPORT as 'telegen_fuel'] instanceof WebAssembly.Global)) throw new DecoderLoadError('metering global missing');
    this.fuel = this.ex.telegen_fuel;
    this.fuel.value = this.policy.fuelPerCall;
    this.mem = new Uint8Array(this.ex.memory.buffer);
    this.mv = undefined;
    this.win = this.ex.input();
    this.cap = this.ex.input_cap();
  }

  /** The memory view, refreshed after the module grew its memory: growing detaches the old
   *  buffer, so a zero length is the cheap test (memory.buffer is a slow getter on a hot path). */
  private view(): Uint8Array {
    if (this.mem.byteLength === 0) { this.mem = new Uint8Array(this.ex.memory.buffer); this.mv = undefined; }
    return this.mem;
  }

  private memView(): MemView {
    const m = this.view();
    return this.mv ??= memView(m);
  }

  private readAsString(ptr: number): string {
    // AssemblyScript strings: UTF-16, byte length at ptr - 4.
    const m = this.view();
    if (!ptr || ptr < 4 || ptr > m.byteLength) return '?';
    const n = new DataView(m.buffer).getUint32(ptr - 4, true);
    if (ptr + n > m.byteLength) return '?';
    return Buffer.from(m.buffer, ptr, Math.min(n, 2048)).toString('utf16le');
  }

  private readMeta(): DecoderMeta {
    const p = this.ex.meta();
    const m = this.view();
    const n = new DataView(m.buffer).getUint32(p, true);
    if (p + 4 + n > m.byteLength || n > 65536) throw new DecoderLoadError('meta() block is out of bounds');
    let meta: DecoderMeta;
    try { meta = JSON.parse(Buffer.from(m.buffer, p + 4, n).toString('utf8')); } catch (e) { throw new DecoderLoadError(`meta() is not JSON: ${(e as Error).message}`); }
    if (typeof meta.name !== 'string' || !/^[a-z0-9][a-z0-9_-]{0,31}$/.test(meta.name)) throw new DecoderLoadError('meta().name must be a short lowercase identifier');
    meta.version = String(meta.version ?? '0');
    meta.protocols = Array.isArray(meta.protocols) ? meta.protocols.map(String) : [meta.name];
    return meta;
  }

  private onEmit(ptr: number, len: number): void {
    try {
      if (len > this.policy.maxRecordBytes) throw new RecordError(`record of ${len} bytes exceeds the ${this.policy.maxRecordBytes}-byte cap`);
      const rec = (this.reader ?? new RecordReader(this.meta?.attributes)).decode(this.memView(), ptr, len);
      this.counters.records++;
      try { this.hooks.onRecord(rec, this); } catch (hostErr) {
        // A host-side failure must never be blamed on (or trap) the decoder.
        this.counters.hostErrors++;
        this.hooks.onHostError?.(hostErr as Error, this);
      }
    } catch (e) {
      if (!(e instanceof RecordError)) throw e;
      this.counters.badRecords++;
      this.lastError = `malformed record: ${e.message}`;
      this.noteFailure();
      this.hooks.onBadRecord?.(e, this);
    }
  }

  private trap(e: unknown): FeedResult {
    if (this.fuel.value === 0) {
      this.counters.budgetExceeded++;
      this.lastError = `CPU budget of ${this.policy.fuelPerCall} steps exceeded in one call`;
    } else {
      this.counters.traps++;
      this.lastError = (e as Error)?.message ?? String(e);
    }
    this.noteFailure();
    this.reset();
    return 'trap';
  }

  /** Traps, budget overruns and malformed records all count toward quarantine. */
  private noteFailure(): void {
    const now = Date.now();
    this.failures = this.failures.filter((t) => now - t < this.policy.failureWindowMs);
    this.failures.push(now);
    if (this.failures.length >= this.policy.maxFailures) this.quarantined = true;
  }

  /** Confidence 0..100 that `bytes` (first bytes of a direction) are this protocol. */
  detect(dir: number, bytes: Uint8Array): number {
    const n = Math.min(bytes.length, this.cap);
    try {
      this.view().set(bytes.subarray(0, n), this.win);
      const r = this.ex.detect(dir, n);
      return r < 0 ? 0 : Math.min(100, r);
    } catch (e) {
      this.trap(e);
      return 0;
    }
  }

  /** Feeds in-order bytes of one direction; keeps what the decoder did not consume yet. */
  feed(stream: number, dir: number, bytes: Uint8Array, ts: bigint): FeedResult {
    const key = stream * 2 + dir;
    this.rest = null;
    let buf = bytes;
    if (this.pending.size !== 0) {
      const prev = this.pending.get(key);
      if (prev) {
        buf = new Uint8Array(prev.length + bytes.length);
        buf.set(prev, 0);
        buf.set(bytes, prev.length);
        this.pending.delete(key);
      }
    }
    this.counters.bytes += bytes.length;
    try {
      while (buf.length > 0) {
        const n = buf.length < this.cap ? buf.length : this.cap;
        this.view().set(n === buf.length ? buf : buf.subarray(0, n), this.win);
        this.counters.calls++;
        const r = this.ex.parse(stream, dir, n, ts);
        if (r > 0) {
          if (r >= buf.length) return 'ok';
          buf = buf.subarray(r < n ? r : n);
          continue;
        }
        if (r === 0 || r === PARSE_NEEDS_MORE) {
          if (n === this.cap) {
            // A unit larger than the whole window can never be parsed: drop the stream's state.
            this.counters.overflows++;
            this.closeStream(stream);
            return 'overflow';
          }
          this.pending.set(key, Uint8Array.prototype.slice.call(buf));
          return 'ok';
        }
        if (r === PARSE_IGNORED) { this.rest = buf; return 'ignored'; }
        this.counters.invalid++;
        this.closeStream(stream);
        return 'invalid';
      }
      return 'ok';
    } catch (e) {
      return this.trap(e);
    }
  }

  /** Bytes of one direction were lost; the decoder absorbs the gap or the stream is reset. */
  gap(stream: number, dir: number, lost: number): FeedResult {
    const key = stream * 2 + dir;
    const pendingLen = this.pending.get(key)?.length ?? 0;
    try {
      if (pendingLen === 0 && this.ex.gap && this.ex.gap(stream, dir, lost) === GAP_ABSORBED) {
        this.counters.gapsAbsorbed++;
        return 'ok';
      }
      this.counters.gapResets++;
      this.closeStream(stream);
      return 'invalid';
    } catch (e) {
      return this.trap(e);
    }
  }

  /** Whether the module takes hints (the optional `hint` export). */
  get takesHints(): boolean { return typeof this.ex.hint === 'function'; }

  /** A hint for one direction of a stream (decoders/abi/README.md): what the peer's own
   *  protocol library knew, e.g. an HTTP/2 header field. Not stream bytes; never buffered. */
  hint(stream: number, dir: number, bytes: Uint8Array, ts: bigint): FeedResult {
    if (!this.ex.hint || bytes.length > this.cap) return 'ignored';
    try {
      this.view().set(bytes, this.win);
      return this.ex.hint(stream, dir, bytes.length, ts) >= 0 ? 'ok' : 'ignored';
    } catch (e) {
      return this.trap(e);
    }
  }

  /** The connection ended: the decoder may flush exchanges it can finish (e.g. body to EOF). */
  /** Bytes of one direction a parse left for later (e.g. held while an Upgrade was undecided). */
  takePending(stream: number, dir: number): Uint8Array | undefined {
    const b = this.pending.get(stream * 2 + dir);
    this.pending.delete(stream * 2 + dir);
    return b;
  }

  closeStream(stream: number): void {
    this.pending.delete(stream * 2);
    this.pending.delete(stream * 2 + 1);
    try { this.ex.close(stream); } catch (e) { this.trap(e); }
  }

  tick(now: bigint): void {
    try { this.ex.tick(now); } catch (e) { this.trap(e); }
  }

  pendingBytes(): number {
    let n = 0;
    for (const b of this.pending.values()) n += b.length;
    return n;
  }

  memoryBytes(): number {
    return this.ex.memory.buffer.byteLength;
  }
}

export { PARSE_NEEDS_MORE };
