// The SERVER spans the correlator has emitted, kept for the lookups that may still come for them
// (log lines of the request, and CLIENT spans it enclosed that arrive late): per pid, in typed
// columns instead of one Node object each. Kept 6 s after their end (correlator.ts, prune), ~20k
// Node objects with their contexts and id strings at the peak of a burst were 5-6 MiB of the old
// space, and the pages under them stayed committed (bench/README.md, "Burst peak"). Here a span is
// 61 bytes outside the V8 heap: times, thread, socket id, the two ids as numbers, trace flags.
import { SpanContext } from '@opentelemetry/api';

const MIN_CAP = 64;
/** traceFlags column: the span's context is not canonical hex (or has a traceState) and is kept
 *  as its object in `odd`, by seq. */
const ODD = 0x100;
const NO_CONN = 1 << 9;
const NO_TID = -1;

/** Emitted server spans of one pid, in emission order (nearly end order). */
export class EmittedServers {
  /** start, end, seq: a span's times (TimeBase.rel) and its node's sequence number. */
  private f = new Float64Array(MIN_CAP * 3);
  private tid = new Int32Array(MIN_CAP);
  /** traceId (4 words) then spanId (2 words), big-endian hex digit order. */
  private ids = new Uint32Array(MIN_CAP * 6);
  /** Low byte: traceFlags; ODD, NO_CONN bits. */
  private flags = new Uint16Array(MIN_CAP);
  private conn = new BigUint64Array(MIN_CAP);
  private cap = MIN_CAP;
  /** Live entries are [lo, hi). */
  private lo = 0;
  private hi = 0;
  private odd: Map<number, SpanContext> | undefined;

  get size(): number { return this.hi - this.lo; }
  /** Positions for the loops of the lookups: [first, end). */
  get first(): number { return this.lo; }
  get end(): number { return this.hi; }
  start(i: number): number { return this.f[i * 3]; }
  endOf(i: number): number { return this.f[i * 3 + 1]; }
  seq(i: number): number { return this.f[i * 3 + 2]; }
  /** The thread the span's request ran on, or undefined. */
  tidOf(i: number): number | undefined { const t = this.tid[i]; return t === NO_TID ? undefined : t; }
  connIs(i: number, connId: bigint): boolean { return (this.flags[i] & NO_CONN) === 0 && this.conn[i] === connId; }

  add(start: number, end: number, seq: number, tid: number | undefined, connId: bigint | undefined, ctx: SpanContext): void {
    if (this.hi === this.cap) this.room();
    const i = this.hi++;
    this.f[i * 3] = start; this.f[i * 3 + 1] = end; this.f[i * 3 + 2] = seq;
    this.tid[i] = tid === undefined || tid < 0 || tid > 0x7fffffff ? NO_TID : tid;
    let fl = ctx.traceFlags & 0xff;
    // A socket id is a u64 (the kernel's): stored as is, never compared as anything else.
    if (connId === undefined) fl |= NO_CONN; else this.conn[i] = connId;
    if (ctx.traceState !== undefined || !hexWords(ctx.traceId, 32, this.ids, i * 6) || !hexWords(ctx.spanId, 16, this.ids, i * 6 + 4)) {
      fl |= ODD;
      (this.odd ??= new Map()).set(seq, ctx);
    }
    this.flags[i] = fl;
  }

  /** The span's context: built anew from the columns (only for a lookup that found it). */
  ctx(i: number): SpanContext {
    const fl = this.flags[i];
    if (fl & ODD) return this.odd!.get(this.seq(i))!;
    const w = this.ids, o = i * 6;
    return { traceId: hex8(w[o]) + hex8(w[o + 1]) + hex8(w[o + 2]) + hex8(w[o + 3]), spanId: hex8(w[o + 4]) + hex8(w[o + 5]), traceFlags: fl & 0xff };
  }

  /** Drops the oldest entries that ended before `horizon`, up to the first that did not (entries
   *  are in emission order: one emitted late may keep a few older ones a second longer). */
  prune(horizon: number): void {
    while (this.lo < this.hi && this.f[this.lo * 3 + 1] < horizon) {
      if (this.flags[this.lo] & ODD) this.odd!.delete(this.seq(this.lo));
      this.lo++;
    }
    if (this.lo === this.hi) { this.lo = this.hi = 0; if (this.odd?.size === 0) this.odd = undefined; }
    const n = this.hi - this.lo;
    // Mostly empty after a burst: give the room back.
    if (this.cap > MIN_CAP && n < this.cap / 4) this.resize(Math.max(MIN_CAP, this.cap / 2));
  }

  /** Room for one more: slides the live entries down, or grows. */
  private room(): void {
    const n = this.hi - this.lo;
    this.resize(n < this.cap / 2 ? this.cap : this.cap * 2);
  }

  private resize(cap: number): void {
    const lo = this.lo, hi = this.hi;
    const move = <T extends Float64Array | Int32Array | Uint32Array | Uint16Array | BigUint64Array>(a: T, stride: number, make: (n: number) => T): T => {
      if (cap === this.cap) { a.copyWithin(0, lo * stride, hi * stride); return a; }
      const b = make(cap * stride);
      b.set(a.subarray(lo * stride, hi * stride) as never);
      return b;
    };
    this.f = move(this.f, 3, (n) => new Float64Array(n));
    this.tid = move(this.tid, 1, (n) => new Int32Array(n));
    this.ids = move(this.ids, 6, (n) => new Uint32Array(n));
    this.flags = move(this.flags, 1, (n) => new Uint16Array(n));
    this.conn = move(this.conn, 1, (n) => new BigUint64Array(n));
    this.cap = cap;
    this.lo = 0;
    this.hi = hi - lo;
  }
}

/** Each UTF-16 code unit's hex digit value (lowercase), -1 for any other. */
const NIBBLE = new Int8Array(65536).fill(-1);
for (let c = 48; c <= 57; c++) NIBBLE[c] = c - 48;
for (let c = 97; c <= 102; c++) NIBBLE[c] = c - 87;

/** Lowercase hex of exactly `len` digits into 32-bit words at `at`; false if it is not that.
 *  Int32 shifts and a table: ~2.5x less time than branching per digit into a double (the
 *  first version made EmittedServers.add ~400 ns, most of the correlator's added cost). */
function hexWords(s: string, len: number, out: Uint32Array, at: number): boolean {
  if (typeof s !== 'string' || s.length !== len) return false;
  let bad = 0;
  for (let k = 0, o = at; k < len; k += 8, o++) {
    let w = 0;
    for (let j = k; j < k + 8; j++) { const d = NIBBLE[s.charCodeAt(j)]; bad |= d; w = (w << 4) | (d & 15); }
    out[o] = w;
  }
  return bad >= 0;
}

function hex8(w: number): string { return w.toString(16).padStart(8, '0'); }
