// Per-connection state of the HTTP/1 decoder. One State per stream; one Exchange per request.
import { Budget } from "../abi/budget";

// What a direction's parser expects next.
export const PH_HEAD = 0;         // start line + header block (needs the whole block in the window)
export const PH_BODY_LEN = 1;     // Content-Length body: `remaining` bytes left
export const PH_CHUNK_SIZE = 2;   // chunk-size line (hex, optional extensions)
export const PH_CHUNK_DATA = 3;   // chunk data: `remaining` bytes left
export const PH_CHUNK_CRLF = 4;   // the CRLF after chunk data
export const PH_TRAILERS = 5;     // trailer fields after the last chunk, until an empty line
export const PH_BODY_CLOSE = 6;   // response body delimited by connection close
export const PH_WAIT_UPGRADE = 7; // request asked to switch protocols; hold bytes until the response decides
export const PH_HEAD_MORE = 8;    // a long header block, its start line and first lines already walked: the rest, line by line
export const PH_RESYNC = 9;       // after a header block the capture cut: skip to the next start line
export const PH_CHUNK_LOST = 10;  // a gap took chunk framing with it: skip to the last chunk (0 CRLF CRLF)

// A header block larger than this is refused (the input window is 256 KiB; this keeps a hostile
// 10 MB header block from costing more than one bounded scan).
export const HEADER_CAP: u32 = 65536;
/** The part of a header line cut by a read boundary kept for the next read (PH_HEAD_MORE). */
export const LINE_HOLD_CAP: u32 = 8192;
/** Its first allocation; a hold grown past it is let go when the head ends. */
export const HOLD_SMALL: u32 = 256;
// Chunk-size line including extensions; trailer section in total.
export const CHUNK_LINE_CAP: u32 = 4096;
export const TRAILER_CAP: u32 = 65536;
// Requests waiting for their response on one connection (pipelining depth). A pipelining client
// writes its whole window of requests before the first response: h2load --h1 -m 300 sends 300 in
// one write, which at 128 reset the connection. An exchange waiting takes ~0.7 KiB (BAG_BASE and
// the object), so one connection at the cap holds ~0.7 MiB of the 8192 all may (LIVE_EXCHANGE_CAP).
export const PENDING_CAP: i32 = 1024;
// Largest copy of an h2c upgrade request handed to the http2 decoder (stitch.ts, h2cBegin), in
// four record fields (emit.ts): more than a head the capture (16 KiB a read) holds whole.
// Fields that do not fit are left out.
export const H2C_REQUEST_CAP: i32 = 24576;
// Captured request/response field bytes kept per exchange until it is emitted.
export const BAG_CAP: i32 = 32768;
const BAG_BASE: i32 = 512;
// Memory is capped (the module's maximum is 32 MiB), so what all connections together may hold
// is budgeted too: bag bytes beyond BAG_BASE, waiting exchanges, connections.
const BAG_EXTRA_BUDGET: i64 = 8 << 20;
export const LIVE_EXCHANGE_CAP: i32 = 8192;
// Heads cut across reads on all connections together: the held cut lines beyond HOLD_SMALL and
// the h2c copies (stitch.ts holdCopy, h2cBegin/h2cLines). Without it 3326 connections each in a
// 7 KiB header line, or 894 each in a 21 KiB head of 700-byte lines, trapped the module (its 32 MiB),
// which resets every connection it decodes. Past it a cut line is skipped (as one over
// LINE_HOLD_CAP, flagging its exchange TRUNCATED if it named a field read) and an h2c copy leaves
// fields out (CUT); logged once, counted in HELD.refused.
export const HELD = new Budget(4 << 20, "http1: budget for heads cut across reads reached; long cut lines are skipped until others end");
/** What a hold of `cap` bytes counts against HELD. */
@inline export function holdCounted(cap: i32): i64 { return cap > <i32>HOLD_SMALL ? <i64>(cap - <i32>HOLD_SMALL) : 0; }
export const STREAM_CAP: i32 = 16384;
let bagExtra: i64 = 0;
export let liveExchanges: i32 = 0;
export function exchangeQueued(): void { liveExchanges++; }
export function exchangesDequeued(n: i32): void { liveExchanges -= n; }
// An exchange without a response for this long is emitted with FLAG_NO_RESPONSE.
export const EXCHANGE_TIMEOUT_NS: u64 = 60_000_000_000;
// A connection at a message boundary with nothing pending, idle this long, loses its state.
export const IDLE_STATE_NS: u64 = 300_000_000_000;

/** memory.copy for the short values headers hold: V8 calls out of line for memory.copy with a
 *  variable length, which costs more than copying a few dozen bytes inline. */
@inline export function copyBytes(dst: usize, src: usize, n: u32): void {
  if (n > 128) { memory.copy(dst, src, <usize>n); return; }
  let i: usize = 0;
  const m = <usize>n;
  while (i + 8 <= m) { store<u64>(dst + i, load<u64>(src + i)); i += 8; }
  while (i < m) { store<u8>(dst + i, load<u8>(src + i)); i++; }
}

/** Field values copied out of the input window (which is reused every call) until emission.
 *  Entries: u16 id | u16 0 | u32 len | bytes. */
export class FieldBag {
  buf: StaticArray<u8> = new StaticArray<u8>(BAG_BASE);
  len: i32 = 0;
  lastEntry: i32 = -1;
  truncated: bool = false;

  @inline private reserve(extra: i32): bool {
    const need = this.len + extra;
    if (need > BAG_CAP) { this.truncated = true; return false; }
    if (need > this.buf.length) {
      let cap = this.buf.length << 1;
      while (cap < need) cap <<= 1;
      if (cap > BAG_CAP) cap = BAG_CAP;
      const extra = <i64>(cap - this.buf.length);
      if (bagExtra + extra > BAG_EXTRA_BUDGET) { this.truncated = true; return false; }
      bagExtra += extra;
      const nb = new StaticArray<u8>(cap);
      memory.copy(changetype<usize>(nb), changetype<usize>(this.buf), <usize>this.len);
      this.buf = nb;
    }
    return true;
  }

  @inline get base(): usize { return changetype<usize>(this.buf); }

  add(id: i32, ptr: usize, n: u32): void {
    if (!this.reserve(8 + <i32>n)) { this.lastEntry = -1; return; }
    const p = changetype<usize>(this.buf) + <usize>this.len;
    store<u16>(p, <u16>id);
    store<u16>(p, 0, 2);
    store<u32>(p, n, 4);
    copyBytes(p + 8, ptr, n);
    this.lastEntry = this.len;
    this.len += 8 + <i32>n;
  }

  /** Gives back a grown buffer once its values were emitted (or will never be). */
  shrink(): void {
    const n = this.buf.length;
    if (n > BAG_BASE) {
      bagExtra -= <i64>(n - BAG_BASE);
      this.buf = new StaticArray<u8>(BAG_BASE);
    }
    this.len = 0;
    this.lastEntry = -1;
  }

  /** Appends to the value of the last entry (obs-fold continuation lines). */
  extendLast(ptr: usize, n: u32): void {
    if (this.lastEntry < 0) return;
    if (!this.reserve(1 + <i32>n)) return;
    const e = changetype<usize>(this.buf) + <usize>this.lastEntry;
    const old = load<u32>(e, 4);
    const p = e + 8 + <usize>old;
    store<u8>(p, 0x20);
    memory.copy(p + 1, ptr, <usize>n);
    store<u32>(e, old + 1 + n, 4);
    this.len += 1 + <i32>n;
  }

  has(id: i32): bool {
    let off = 0;
    const base = changetype<usize>(this.buf);
    while (off < this.len) {
      if (<i32>load<u16>(base + <usize>off) == id) return true;
      off += 8 + <i32>load<u32>(base + <usize>off, 4);
    }
    return false;
  }
}

export class Exchange {
  tsStart: u64 = 0;
  tsEnd: u64 = 0;
  flags: i32 = 0;
  hasRequest: bool = false;
  reqMinor: i32 = 1;
  isHead: bool = false;
  isConnect: bool = false;
  wantsUpgrade: bool = false;
  reqDone: bool = false;
  reqHasBody: bool = false;
  reqBodySize: i64 = 0;
  reqSize: i64 = 0;
  serverPort: i32 = -1;

  hasResponse: bool = false; // final (non-1xx, or 101) status seen
  status: i32 = 0;
  respMinor: i32 = 1;
  respHasBody: bool = false;
  respBodySize: i64 = 0;
  respSize: i64 = 0;
  emitted: bool = false;

  fields: FieldBag = new FieldBag();

  reset(): void {
    this.tsStart = 0; this.tsEnd = 0; this.flags = 0;
    this.hasRequest = false; this.reqMinor = 1; this.isHead = false; this.isConnect = false;
    this.wantsUpgrade = false; this.reqDone = false; this.reqHasBody = false;
    this.reqBodySize = 0; this.reqSize = 0; this.serverPort = -1;
    this.hasResponse = false; this.status = 0; this.respMinor = 1; this.respHasBody = false;
    this.respBodySize = 0; this.respSize = 0; this.emitted = false;
    const f = this.fields;
    f.shrink();
    f.truncated = false;
  }
}

// Emitted exchanges are reused: steady traffic then allocates nothing per message.
const POOL_CAP = 256;
const pool = new Array<Exchange>();

export function takeExchange(): Exchange {
  if (pool.length > 0) { const ex = pool.pop(); ex.reset(); return ex; }
  return new Exchange();
}

/** Only for an exchange that was emitted and that no State field refers to any more. */
export function releaseExchange(ex: Exchange): void {
  if (pool.length < POOL_CAP) pool.push(ex);
}

/** Parser position of one direction. Offsets are relative to the start of the current message,
 *  which is always at offset 0 of the window while its header block is incomplete (nothing of
 *  it was consumed yet), so they stay valid when the host presents the same bytes again. */
export class DirState {
  phase: i32 = PH_HEAD;
  remaining: i64 = 0;
  msgStarted: bool = false;
  msgTs: u64 = 0;
  // resumable start-line check
  slState: i32 = 0;
  slPos: u32 = 0;
  slCount: u32 = 0;
  slDone: bool = false;
  // resume point of the search for the empty line ending the header block
  scanPos: u32 = 0;
  trailerBytes: u32 = 0;
  lastTs: u64 = 0;
  // PH_CHUNK_LOST: the last 6 bytes seen (the lost bytes' end counts as an LF), and when the
  // last of the body's bytes known so far came
  lostWin: u64 = 0;
  lostTs: u64 = 0;
  // PH_HEAD_MORE: the exchange, what the lines walked so far said about framing, the cut line
  moreEx: Exchange | null = null;
  moreCL: i64 = -1;
  moreTe: bool = false;
  moreChunkedLast: bool = false;
  moreUpgrade: bool = false;
  hold: StaticArray<u8> | null = null; // a cut header line: HOLD_SMALL bytes first, grown up to LINE_HOLD_CAP
  holdLen: u32 = 0;
  holdOver: bool = false;   // the held line ran past LINE_HOLD_CAP: it is skipped, not walked

  @inline resetHead(): void {
    this.phase = PH_HEAD;
    this.msgStarted = false;
    this.slState = 0;
    this.slPos = 0;
    this.slCount = 0;
    this.slDone = false;
    this.scanPos = 0;
    this.trailerBytes = 0;
    this.moreEx = null;
    this.moreCL = -1;
    this.moreTe = false;
    this.moreChunkedLast = false;
    this.moreUpgrade = false;
    this.holdLen = 0;
    this.holdOver = false;
    const h = this.hold;
    if (h !== null && <u32>h.length > HOLD_SMALL) { HELD.give(holdCounted(h.length)); this.hold = null; }
  }
}

export class State {
  req: DirState = new DirState();
  resp: DirState = new DirState();
  /** Requests in arrival order; the head is the one the next response answers. */
  queue: Array<Exchange> = new Array<Exchange>();
  reqCur: Exchange | null = null;  // request whose body is being read
  respCur: Exchange | null = null; // exchange whose response body is being read
  upgraded: bool = false;
  lastTs: u64 = 0;
  /** What HTTP/2 stream 1 needs of a request asking for `Upgrade: h2c` (stitch.ts, h2cBegin),
   *  handed to the http2 decoder if the server switches (RFC 7540 §3.2). */
  h2cReq: Uint8Array | null = null;
  h2cLen: i32 = 0;
  /** A field (or the target's end) did not fit the copy. */
  h2cCut: bool = false;
}
