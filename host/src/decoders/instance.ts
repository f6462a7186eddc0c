// One running decoder module: verifies it against the ABI, instantiates it, and feeds it stream
// bytes through its input window, keeping unconsumed bytes host-side (decoders/abi/README.md).
import {
  ABI_VERSION, PARSE_NEEDS_MORE, PARSE_INVALID, PARSE_IGNORED, GAP_ABSORBED, RECORD_HEADER_SIZE,
} from '../../../decoders/abi/abi';
import { DecodedRecord, RecordError, MemView, memView, RecordReader } from './records';
import { ChunkBatch } from './batch';
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
  gap_at?(stream: number, dir: number, len: number, ts: bigint): number;
  hint?(stream: number, dir: number, len: number, ts: bigint): number;
  parse_batch?(count: number): number;
  records?(): number;
  telegen_fuel: WebAssembly.Global;
}

export type FeedResult = 'ok' | 'invalid' | 'ignored' | 'overflow' | 'trap';

// Batch layout in the input window (decoders/abi/batch.ts): u32 index of the read being parsed |
// u32 0 | reads, each: u32 stream | u32 dir | u32 len | i32 result | u64 ts | bytes padded to 8.
const BATCH_HEADER = 8;
const CHUNK_HEADER = 24;
/** Reads and bytes per parse_batch call: the call runs under one CPU budget (fuelPerCall), so its
 *  work stays that of one parse of a quarter window (policies/default.yaml: ≈50 steps per byte). */
export const MAX_BATCH_READS = 256;
export const MAX_BATCH_BYTES = 65536;

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
  /** The module's records area (export `records`) when it has parse_batch; 0: one read per call. */
  private area = 0;
  /** Window offsets of the reads laid out for the current parse_batch call. */
  private readonly offs = new Int32Array(MAX_BATCH_READS);
  /** Result of the read feedBatch() stopped at. */
  batchResult: FeedResult = 'ok';
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
    this.reader?.forgetSets(); // a fresh instance has defined no field sets
    this.win = this.ex.input();
    this.cap = this.ex.input_cap();
    this.area = 0;
    if (typeof this.ex.parse_batch === 'function' && typeof this.ex.records === 'function') {
      const a = this.ex.records();
      // Where the host writes and reads must lie in the module's memory, 8-aligned like its records.
      const m = this.view(); // records() may have grown the memory
      if (a > 0 && (a & 7) === 0 && a + 8 <= m.byteLength && this.win >= 0 && this.win + this.cap <= m.byteLength) this.area = a;
    }
  }

  /** The memory view, refreshed after the module grew its memory: growing detaches the old
   *  buffer, so a zero length is the cheap test (memory.buffer is a slow getter on a hot path;
   *  so is a typed array's byteLength in Node 20, ~35 ns against ~2 for length). */
  private view(): Uint8Array {
    if (this.mem.length === 0) { this.mem = new Uint8Array(this.ex.memory.buffer); this.mv = undefined; }
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

  /** Records parse_batch appended to the records area (decoders/abi/emit.ts), in order. The area
   *  is the module's to write: a length that cannot be a record ends the walk as a bad record. */
  private drainRecords(): void {
    const a = this.area;
    const mv = this.memView();
    const { dv } = mv;
    const used = dv.getUint32(a, true);
    if (used === 0) return;
    const end = a + 8 + used;
    if (used > mv.buf.length - a - 8) { this.badRecord(new RecordError(`records area of ${used} bytes overruns memory`)); return; }
    for (let p = a + 8; p < end;) {
      const len = dv.getUint32(p + 4, true);
      if (len < RECORD_HEADER_SIZE || len > end - p) { this.badRecord(new RecordError(`record of ${len} bytes at ${p} does not fit the records area`)); return; }
      this.onEmit(p, len, mv);
      p += (len + 7) & ~7;
    }
  }

  /** `mv`: the memory view when the caller has it (one per records area, not per record). */
  private onEmit(ptr: number, len: number, mv?: MemView): void {
    try {
      if (len > this.policy.maxRecordBytes) throw new RecordError(`record of ${len} bytes exceeds the ${this.policy.maxRecordBytes}-byte cap`);
      const rec = (this.reader ?? new RecordReader(this.meta?.attributes)).decode(mv ?? this.memView(), ptr, len);
      this.counters.records++;
      try { this.hooks.onRecord(rec, this); } catch (hostErr) {
        // A host-side failure must never be blamed on (or trap) the decoder.
        this.counters.hostErrors++;
        this.hooks.onHostError?.(hostErr as Error, this);
      }
    } catch (e) {
      if (!(e instanceof RecordError)) throw e;
      this.badRecord(e);
    }
  }

  private badRecord(e: RecordError): void {
    this.counters.badRecords++;
    this.reader?.forgetSets(); // the dropped record may have defined a field set
    this.lastError = `malformed record: ${e.message}`;
    this.noteFailure();
    this.hooks.onBadRecord?.(e, this);
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
      return this.run(stream, dir, buf, ts, undefined);
    } catch (e) {
      return this.trap(e);
    }
  }

  /** Parses `buf` (whatever was pending already in front) until it is consumed or a ParseState
   *  ends it. `first`: the result of a parse of all of `buf` a batch call already made. */
  private run(stream: number, dir: number, buf: Uint8Array, ts: bigint, first: number | undefined): FeedResult {
    let r = first;
    while (buf.length > 0) {
      const n = buf.length < this.cap ? buf.length : this.cap;
      if (r === undefined) {
        this.view().set(n === buf.length ? buf : buf.subarray(0, n), this.win);
        this.counters.calls++;
        r = this.ex.parse(stream, dir, n, ts);
      }
      if (r > 0) {
        if (r >= buf.length) return 'ok';
        buf = buf.subarray(r < n ? r : n);
        r = undefined;
        continue;
      }
      if (r === 0 || r === PARSE_NEEDS_MORE) {
        if (n === this.cap) {
          // A unit larger than the whole window can never be parsed: drop the stream's state.
          this.counters.overflows++;
          this.closeStream(stream);
          return 'overflow';
        }
        this.pending.set(stream * 2 + dir, Uint8Array.prototype.slice.call(buf));
        return 'ok';
      }
      if (r === PARSE_IGNORED) { this.rest = buf; return 'ignored'; }
      this.counters.invalid++;
      this.closeStream(stream);
      return 'invalid';
    }
    return 'ok';
  }

  /** Whether feedBatch() feeds several reads per call (the module exports parse_batch). */
  get batches(): boolean { return this.area !== 0; }

  /** Feeds reads [from, to) of `b` in order, each exactly as feed() would, several per call where
   *  the module has parse_batch. Returns the index of the first read whose result was not 'ok'
   *  (the result in batchResult; the caller handles it and continues after it), or `to`. Also
   *  returns early, with batchResult 'ok', once the module got quarantined. */
  feedBatch(b: ChunkBatch, from: number, to: number): number {
    this.rest = null;
    this.batchResult = 'ok';
    let i = from;
    while (i < to) {
      const count = this.area === 0 ? 0 : this.layout(b, i, to);
      if (count < 2) {
        // A read with pending bytes in front, one that does not fit beside others, or a lone one.
        const r = this.feed(b.stream[i], b.dir[i], b.bytes[i], b.ts[i]);
        if (r !== 'ok' || this.quarantined) { this.batchResult = r; return i; }
        i++;
        continue;
      }
      const j = this.parseBatch(b, i, count);
      if (j < 0) {
        i += count;
        if (this.quarantined) { this.batchResult = 'ok'; return i - 1; }
        continue;
      }
      if (this.batchResult !== 'ok' || this.quarantined) return j;
      i = j + 1;
    }
    return to;
  }

  /** Writes reads from `from` into the window as one batch; returns how many. A read stays out
   *  (ends the batch) when bytes of its direction are pending (feed() puts them in front) or it
   *  does not fit. */
  private layout(b: ChunkBatch, from: number, to: number): number {
    const m = this.view();
    const { i32, u64 } = this.memView();
    // Headers through word views (a DataView's setters measured as a fifth of the batch path).
    if (i32 === undefined || u64 === undefined || (this.win & 7) !== 0) return 0;
    const end = this.win + Math.min(this.cap, MAX_BATCH_BYTES);
    const pending = this.pending.size !== 0;
    i32[this.win >> 2] = 0; // the read being parsed, should the module not say (a trap is then the first read's)
    let p = this.win + BATCH_HEADER;
    let k = 0;
    for (let i = from; i < to && k < MAX_BATCH_READS; i++, k++) {
      const bytes = b.bytes[i], len = bytes.length;
      if (len === 0 || p + CHUNK_HEADER + len > end) break;
      if (pending && this.pending.has(b.stream[i] * 2 + b.dir[i])) break;
      const w = p >> 2;
      i32[w] = b.stream[i];
      i32[w + 1] = b.dir[i];
      i32[w + 2] = len;
      i32[w + 3] = 0;
      u64[(p >> 3) + 2] = b.ts[i];
      m.set(bytes, p + CHUNK_HEADER);
      this.offs[k] = p;
      p += CHUNK_HEADER + ((len + 7) & ~7);
    }
    return k;
  }

  /** One parse_batch call over `count` reads laid out from b[start]. Returns -1 when all were
   *  consumed whole, else the index of the read it stopped at (its result in batchResult). */
  private parseBatch(b: ChunkBatch, start: number, count: number): number {
    let done = -1, returned = false;
    this.counters.calls++;
    try {
      done = this.ex.parse_batch!(count);
      returned = true;
      this.drainRecords();
    } catch (e) {
      // As one call per read: the records of the reads before the failing one reach the host,
      // the failing read gets the trap, the reads after it go to the fresh instance.
      let at = count - 1;
      if (!returned) {
        at = Math.min(this.memView().dv.getUint32(this.win, true), count - 1);
        try { this.drainRecords(); } catch { /* lost with the instance */ }
      }
      this.countBytes(b, start, start + at + 1);
      this.batchResult = this.trap(e);
      return start + at;
    }
    if (!(done >= 0 && done < count)) { this.countBytes(b, start, start + count); return -1; }
    const j = start + done;
    this.countBytes(b, start, j + 1);
    const r = this.memView().dv.getInt32(this.offs[done] + 12, true);
    try {
      this.batchResult = this.run(b.stream[j], b.dir[j], b.bytes[j], b.ts[j], r);
    } catch (e) {
      this.batchResult = this.trap(e);
    }
    return j;
  }

  private countBytes(b: ChunkBatch, from: number, to: number): void {
    for (let i = from; i < to; i++) this.counters.bytes += b.bytes[i].length;
  }

  /** Bytes of one direction were lost; the decoder absorbs the gap or the stream is reset. Bytes
   *  held for a message's rest (pending) are the start of what was lost: the decoder never consumed
   *  them, so its gap is theirs plus the lost ones. Resetting the stream instead cost the rest of
   *  the connection what it learnt at its start (pgsql: user, database; answers lost their requests).
   *  `ts`: when the syscall that moved the lost bytes returned (sendfile/splice, a read cut to the
   *  capture limit), 0n when not known (a ring overflow); a module with `gap_at` gets it. */
  gap(stream: number, dir: number, lost: number, ts = 0n): FeedResult {
    const key = stream * 2 + dir;
    const held = this.pending.get(key);
    if (held) this.pending.delete(key);
    try {
      const len = lost + (held?.length ?? 0);
      const r = this.ex.gap_at ? this.ex.gap_at(stream, dir, len, ts) : this.ex.gap ? this.ex.gap(stream, dir, len) : -1;
      if (r === GAP_ABSORBED) {
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
