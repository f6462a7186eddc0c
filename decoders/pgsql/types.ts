// PostgreSQL frontend/backend protocol 3.0: per-stream state, pending frontend operations and
// small reusable byte buffers. Everything here is allocated per stream (or per named prepared
// statement) and reused; nothing is allocated per message on the hot path.
import { forget } from "../abi/head";

// Special request codes sent in place of a protocol version in an untyped first message.
export const CODE_SSL_REQUEST: u32 = 80877103;
export const CODE_GSSENC_REQUEST: u32 = 80877104;
export const CODE_CANCEL_REQUEST: u32 = 80877102;
export const PROTOCOL_3: u32 = 0x00030000;

// Connection phases.
export const PH_INIT: u8 = 0;     // nothing decoded yet on the request side
export const PH_AUTH: u8 = 1;     // StartupMessage seen; authentication until ReadyForQuery
export const PH_READY: u8 = 2;    // queries flow
export const PH_MID: u8 = 3;      // joined mid-stream: no startup seen, boundaries found by scanning
export const PH_CANCEL: u8 = 4;   // a CancelRequest connection: nothing else is expected

// Kinds of pending frontend operations; the backend answers them strictly in order.
export const OP_QUERY: u8 = 1;    // 'Q' simple query: answered up to ReadyForQuery
export const OP_PARSE: u8 = 2;    // 'P' → ParseComplete
export const OP_BIND: u8 = 3;     // 'B' → BindComplete
export const OP_DESCRIBE: u8 = 4; // 'D' → [ParameterDescription] RowDescription | NoData
export const OP_EXECUTE: u8 = 5;  // 'E' → DataRow* then CommandComplete | EmptyQuery | PortalSuspended
export const OP_SYNC: u8 = 6;     // 'S' → ReadyForQuery
export const OP_CLOSE: u8 = 7;    // 'C' → CloseComplete
export const OP_FUNC: u8 = 8;     // 'F' function call → FunctionCallResponse, ReadyForQuery
export const OP_STARTUP: u8 = 9;  // not queued: the connection's startup exchange

// Bounds that keep memory per stream fixed whatever the peer sends.
export const MAX_OPS: i32 = 128;          // pending frontend operations any stream may queue
// A pipelining client (libpq pipeline mode, node-postgres' connection, JDBC executeBatch) sends a
// whole batch before reading an answer: 1000 rows as Bind+Execute are 2000 operations, and at 128
// all but the last 64 rows were reported unanswered. A stream may queue up to MAX_OPS_PIPELINED
// while the operations queued past MAX_OPS by all streams stay within SPARE_OPS (~300 B each
// plus their SQL: the module's memory is 32 MiB); its ring goes back to MAX_OPS when it drains.
export const MAX_OPS_PIPELINED: i32 = 4096;
export const SPARE_OPS: i32 = 16384;
let spareOpsUsed: i32 = 0;
/** Ring slots past MAX_OPS held by all streams (tests, bench). */
export function spareOpsInUse(): i32 { return spareOpsUsed; }
export const MAX_STMTS: i32 = 256;        // remembered named prepared statements
export const MAX_PORTALS: i32 = 64;       // remembered named portals
export const TEXT_CAP: i32 = 8192;        // longest query text / field kept (the emit field cap)
export const NAME_CAP: i32 = 128;         // statement/portal names, tags, severities, codes
export const MSG_CAP: i32 = 1024;         // error messages
export const TAG_CAP: i32 = NAME_CAP * 4; // CommandComplete tags of one exchange, ';'-joined
export const MAX_MSG_LEN: u32 = 0x40000000; // PostgreSQL refuses messages of 1 GiB and more
export const MID_MAX_MSG_LEN: u32 = 0x01000000; // plausibility bound while hunting for boundaries
export const BIG_MSG: u32 = 65536;        // larger messages are decoded from their head and skipped
export const BIG_HEAD: i32 = 16384;       // how much of a big message's head is decoded
export const HEAD_CAP: i32 = TEXT_CAP + 256; // bytes kept of an incomplete message's start (a whole query text)
export const TIMEOUT_NS: u64 = 300_000_000_000; // an operation unanswered this long is expired

// Shared by every empty Bytes: never written (capacity 0), so a fresh Bytes allocates nothing.
const EMPTY = new ArrayBuffer(0);

/** A growable byte buffer with a hard cap; reused across messages. */
export class Bytes {
  buf: ArrayBuffer = EMPTY;
  len: i32 = 0;
  cut: bool = false;   // the value was longer than the cap
  has: bool = false;   // a value (possibly empty) was set

  @inline ptr(): usize { return changetype<usize>(this.buf); }

  @inline clear(): void { this.len = 0; this.cut = false; this.has = false; }

  private reserve(n: i32): void {
    if (n <= this.buf.byteLength) return;
    let c = this.buf.byteLength < 32 ? 32 : this.buf.byteLength * 2;
    while (c < n) c *= 2;
    const nb = new ArrayBuffer(c);
    if (this.len > 0) memory.copy(changetype<usize>(nb), changetype<usize>(this.buf), <usize>this.len);
    this.buf = nb;
  }

  set(src: usize, n: i32, cap: i32): void {
    this.len = 0;
    this.cut = false;
    this.has = true;
    this.append(src, n, cap);
  }

  append(src: usize, n: i32, cap: i32): void {
    this.has = true;
    let take = n;
    if (this.len + take > cap) { take = cap - this.len; this.cut = true; }
    if (take <= 0) return;
    this.reserve(this.len + take);
    memory.copy(changetype<usize>(this.buf) + <usize>this.len, src, <usize>take);
    this.len += take;
  }

  appendByte(b: u8, cap: i32): void {
    this.has = true;
    if (this.len + 1 > cap) { this.cut = true; return; }
    this.reserve(this.len + 1);
    store<u8>(changetype<usize>(this.buf) + <usize>this.len, b);
    this.len += 1;
  }

  copyFrom(o: Bytes): void {
    this.len = 0;
    this.has = o.has;
    this.cut = false;
    if (o.len > 0) this.append(o.ptr(), o.len, o.len);
    this.cut = o.cut;
  }

  equals(src: usize, n: i32): bool {
    if (n != this.len) return false;
    return memory.compare(changetype<usize>(this.buf), src, <usize>n) == 0;
  }
}

/** ErrorResponse/NoticeResponse fields. */
export class ErrInfo {
  severity: Bytes = new Bytes();
  code: Bytes = new Bytes();
  message: Bytes = new Bytes();
}

/** One frontend operation awaiting its answer, plus what the answer said. */
export class Op {
  kind: u8 = 0;
  ts: u64 = 0;                  // first byte of the request (for EXECUTE: the first message leading to it)
  tsEnd: u64 = 0;               // deferred errors: when the ErrorResponse arrived
  text: Bytes = new Bytes();    // SQL text (QUERY, PARSE, EXECUTE resolved through Bind → Parse)
  stmt: Bytes = new Bytes();    // statement name (PARSE, EXECUTE)
  portal: Bytes = new Bytes();  // portal name (EXECUTE)
  tags: Bytes = new Bytes();    // CommandComplete tags, ';'-joined for a multi-statement Query
  tagCount: i32 = 0;
  tagRows: i64 = 0;             // sum of the row counts the tags carry
  tagHasRows: bool = false;
  described: bool = false;      // a RowDescription since the last tag: the next one ends a result set
  copyOut: bool = false;        // a CopyOutResponse since the last tag
  rows: i64 = 0;                // DataRow messages
  private _err: ErrInfo | null = null;  // allocated on the first error this Op slot carries
  private errSet: bool = false;         // err was handed out since the last reset
  isError: bool = false;        // ErrorResponse with severity ERROR/FATAL/PANIC
  hasError: bool = false;
  copyMsgs: i64 = 0;            // CopyData messages (either direction)
  copyBytes: i64 = 0;
  copyFailed: bool = false;
  suspended: bool = false;      // PortalSuspended: row limit reached
  skipped: bool = false;        // EXECUTE the server skipped: an earlier message of its batch failed
  empty: bool = false;          // EmptyQueryResponse
  unknown: bool = false;        // something about it could not be known (e.g. statement parsed before we joined)
  gapped: bool = false;         // pending when response bytes were lost: its answer may be gone (stitch.ts onResponseGap)
  noExecuteInBatch: bool = false; // PARSE: no Execute follows before the batch's Sync
  opOff: i32 = 0;               // EXECUTE: naming copied from its statement (namingKnown),
  opLen: i32 = 0;               // as offsets into text
  collOff: i32 = 0;
  collLen: i32 = 0;
  namingKnown: bool = false;

  /** Back to a new Op's state, the fields reset() leaves too (a recycled stream's, index.ts). */
  renew(): void {
    this.reset(0, 0);
    this.tsEnd = 0;
    this.opOff = 0;
    this.opLen = 0;
    this.collOff = 0;
    this.collLen = 0;
  }

  reset(kind: u8, ts: u64): void {
    this.kind = kind;
    this.ts = ts;
    this.text.clear();
    this.stmt.clear();
    this.portal.clear();
    this.tags.clear();
    this.tagCount = 0;
    this.tagRows = 0;
    this.tagHasRows = false;
    this.described = false;
    this.copyOut = false;
    this.rows = 0;
    if (this.errSet) { const e = changetype<ErrInfo>(this._err); e.severity.clear(); e.code.clear(); e.message.clear(); this.errSet = false; }
    this.isError = false;
    this.hasError = false;
    this.copyMsgs = 0;
    this.copyBytes = 0;
    this.copyFailed = false;
    this.suspended = false;
    this.skipped = false;
    this.empty = false;
    this.unknown = false;
    this.gapped = false;
    this.noExecuteInBatch = false;
    this.namingKnown = false;
  }

  /** The error fields, to be written: reset() clears them only when they were. */
  get err(): ErrInfo { if (this._err == null) this._err = new ErrInfo(); this.errSet = true; return changetype<ErrInfo>(this._err); }
}

/** A prepared statement (Parse) or a portal (Bind): its name and the SQL it runs. */
export class Named {
  name: Bytes = new Bytes();
  stmt: Bytes = new Bytes();   // portals: the statement they were bound from
  text: Bytes = new Bytes();
  known: bool = false;         // the SQL text is known (false: parsed before we joined)
  // db.operation.name / db.collection.name as offsets into text, worked out once per statement.
  opOff: i32 = 0;
  opLen: i32 = 0;
  collOff: i32 = 0;
  collLen: i32 = 0;
  namingKnown: bool = false;

  reset(): void {
    this.stmt.clear();
    this.text.clear();
    this.known = false;
    this.opOff = 0; this.opLen = 0;
    this.collOff = 0; this.collLen = 0;
    this.namingKnown = false;
  }
}

/** The high bit of every zero byte of w, and possibly of bytes above the first zero (a borrow):
 *  the lowest flagged byte is the first zero. */
@inline export function zeroBytes(w: u64): u64 {
  return (w - 0x0101010101010101) & ~w & 0x8080808080808080;
}

/** The row count a command tag reports ("INSERT 0 5", "SELECT 5": its last number), or -1. */
export function tagRowCount(p: usize, l: i32): i64 {
  let i = l;
  while (i > 0 && load<u8>(p + <usize>(i - 1)) >= 0x30 && load<u8>(p + <usize>(i - 1)) <= 0x39) i--;
  if (!(i < l && i > 0 && load<u8>(p + <usize>(i - 1)) == 0x20)) return -1;
  let v: i64 = 0;
  for (let j = i; j < l && j < i + 18; j++) v = v * 10 + <i64>(load<u8>(p + <usize>j) - 0x30);
  return v;
}

export function strEq(p: usize, n: i32, s: string): bool {
  if (n != s.length) return false;
  for (let i = 0; i < n; i++) if (<i32>load<u8>(p + <usize>i) != s.charCodeAt(i)) return false;
  return true;
}

@inline function tagWordIs(p: usize, l: i32, w: string): bool {
  return l > w.length && load<u8>(p + <usize>w.length) == 0x20 && strEq(p, w.length, w);
}

/**
 * Whether a tag's row count is of rows sent to the client (db.response.returned_rows, "rows
 * returned by the operation"), not rows the command wrote: a RowDescription came before it (a
 * result set: SELECT, INSERT/UPDATE/DELETE/MERGE … RETURNING), COPY TO STDOUT (`copyOut`: a
 * CopyOutResponse came), FETCH, or SELECT answering an Execute (the result set was described
 * earlier or not at all) or an operation whose answer may be partly lost (`selectCounts`). A simple
 * Query's SELECT without one filled a table (CREATE TABLE AS, SELECT INTO), and INSERT 0 5,
 * UPDATE 2, COPY FROM STDIN, MOVE returned nothing.
 */
export function tagCountsReturnedRows(p: usize, l: i32, described: bool, copyOut: bool, selectCounts: bool): bool {
  if (described) return true;
  if (tagWordIs(p, l, "COPY")) return copyOut;
  if (tagWordIs(p, l, "FETCH")) return true;
  return selectCounts && tagWordIs(p, l, "SELECT");
}

/** FNV-1a over a name: the key of the statement and portal tables (names are compared on hit). */
export function nameHash(p: usize, n: i32): u64 {
  let h: u64 = 0xcbf29ce484222325;
  for (let i = 0; i < n; i++) { h ^= <u64>load<u8>(p + <usize>i); h *= 0x100000001b3; }
  return h;
}

/**
 * Prepared statements or portals by name, bounded: when full, the oldest name is forgotten
 * (FIFO), so a client that prepares without ever closing keeps its recent statements resolvable.
 * The unnamed one (the most common) is kept apart.
 */
export class NameTable {
  map: Map<u64, Named> = new Map<u64, Named>();
  unnamed: Named = new Named();
  spare: Named | null = null;            // the last entry forgotten, reused by the next define
  order: StaticArray<u64> | null = null; // hashes in definition order (allocated on first name)
  head: i32 = 0;
  count: i32 = 0;
  cap: i32;

  constructor(cap: i32) {
    this.cap = cap;
  }

  lookup(p: usize, n: i32): Named | null {
    if (n == 0) return this.unnamed;
    const h = nameHash(p, n);
    if (!this.map.has(h)) return null;
    const e = this.map.get(h);
    return e.name.equals(p, n) ? e : null;
  }

  define(p: usize, n: i32): Named {
    if (n == 0) return this.unnamed;
    const h = nameHash(p, n);
    if (this.map.has(h)) {
      const e = this.map.get(h);
      if (!e.name.equals(p, n)) e.name.set(p, n, NAME_CAP); // a hash collision: the newer name wins
      return e;
    }
    if (this.order == null) this.order = new StaticArray<u64>(8);
    let order = changetype<StaticArray<u64>>(this.order);
    if (this.count == order.length && order.length < this.cap * 2) {
      // Grow the ring (most clients prepare a handful of statements): unroll it into a larger one.
      const bigger = new StaticArray<u64>(order.length * 2);
      for (let i = 0; i < this.count; i++) bigger[i] = order[(this.head + i) % order.length];
      this.head = 0;
      this.order = bigger;
      order = bigger;
    }
    while (this.map.size >= this.cap || this.count == order.length) this.evictOldest(order);
    // A forgotten entry is reused: nothing is collected while a call runs (index.ts), and a client
    // preparing new names without end would otherwise fill the memory within one read.
    const spare = this.spare;
    let e: Named;
    if (spare != null) { e = spare; this.spare = null; e.reset(); } else e = new Named();
    e.name.set(p, n, NAME_CAP);
    this.map.set(h, e);
    order[(this.head + this.count) % order.length] = h;
    this.count++;
    return e;
  }

  forget(p: usize, n: i32): void {
    if (n == 0) { this.unnamed.known = false; this.unnamed.text.clear(); return; }
    const h = nameHash(p, n);
    if (this.map.has(h)) { this.spare = this.map.get(h); this.map.delete(h); }
  }

  private evictOldest(order: StaticArray<u64>): void {
    if (this.count == 0) { this.map.clear(); return; }
    const h = order[this.head];
    this.head = (this.head + 1) % order.length;
    this.count--;
    if (this.map.has(h)) { this.spare = this.map.get(h); this.map.delete(h); }
  }
}

// A closed stream's object may be reused for a new connection (index.ts): recycle() must put
// back every field below as it is initialized here, or one connection's facts leak into another's
// records. A field added here goes into recycle() too.
export class Stream {
  phase: u8 = PH_INIT;
  tls: bool = false;
  encWait: u8 = 0;             // 1: SSLRequest, 2: GSSENCRequest awaiting its one-byte answer
  encTs: u64 = 0;
  // The server refused it ('N', 1 SSL, 2 GSSAPI) at encRefusedTs, and no StartupMessage came yet.
  encRefused: u8 = 0;
  encRefusedTs: u64 = 0;
  reqAligned: bool = false;    // request bytes are at a message boundary we trust
  respAligned: bool = false;
  reqTrusted: bool = false;    // aligned from the very start of the stream: a bad header is fatal
  respTrusted: bool = false;
  reqSkip: u32 = 0;            // bytes left of a big message decoded from its head
  respSkip: u32 = 0;
  // The start of a message still incomplete at the end of the last read (the host holds those
  // bytes for the next one), kept in a Head of abi/head.ts (0 until first needed): a gap right
  // after them (a segment cut by the snaplen) decodes what the head holds.
  headReq: usize = 0;
  headResp: usize = 0;

  // Startup facts, kept for every exchange of the connection.
  user: Bytes = new Bytes();
  database: Bytes = new Bytes();
  appName: Bytes = new Bytes();
  /** Which user/database/appName this stream's records carry (emit.ts, field sets): 0 none of
   *  them, else a number given once per startup (never reused). */
  commonGen: u64 = 0;
  serverVersion: Bytes = new Bytes();
  protoMajor: u32 = 0;
  protoMinor: u32 = 0;
  authMethod: string = "";
  sawAuthRequest: bool = false;
  saslPending: bool = false;   // AuthenticationSASL seen: the next 'p' is a SASLInitialResponse
  backendPid: i64 = -1;
  startup: Op = new Op();      // the startup exchange (errors during authentication land here)
  startupOpen: bool = false;

  // Pending operations: a ring of reusable Op objects, grown on demand up to MAX_OPS.
  ops: StaticArray<Op | null> = new StaticArray<Op | null>(4);
  head: i32 = 0;
  count: i32 = 0;
  orphanOpen: bool = false;
  discarding: bool = false;    // an extended batch failed before its Sync: the server ignores the rest
  deferredPending: bool = false;
  segTs: u64 = 0;              // first request message since the last Execute/Sync
  segOpen: bool = false;

  // Allocated when first needed: most connections never use them.
  private _orphan: Op | null = null;
  private _deferred: Op | null = null;
  private _skip: Op | null = null;
  skipOpen: bool = false;      // discarding: a Parse/Bind of the Execute the server will skip was seen
  private _stmts: NameTable | null = null;
  private _portals: NameTable | null = null;

  /** Whether recycle() can make this a new stream: the name tables are not cleared (such a
   *  stream is dropped instead), nor is a grown op ring kept. */
  get recyclable(): bool {
    return this._stmts == null && this._portals == null && this.ops.length == 4;
  }

  /** Back to a new stream's state (see the class comment); recyclable must hold. */
  recycle(): void {
    this.phase = PH_INIT;
    this.tls = false;
    this.encWait = 0;
    this.encTs = 0;
    this.encRefused = 0;
    this.encRefusedTs = 0;
    this.reqAligned = false;
    this.respAligned = false;
    this.reqTrusted = false;
    this.respTrusted = false;
    this.reqSkip = 0;
    this.respSkip = 0;
    forget(this.headReq);
    forget(this.headResp);
    this.user.clear();
    this.database.clear();
    this.appName.clear();
    this.commonGen = 0;
    this.serverVersion.clear();
    this.protoMajor = 0;
    this.protoMinor = 0;
    this.authMethod = "";
    this.sawAuthRequest = false;
    this.saslPending = false;
    this.backendPid = -1;
    this.startup.renew();
    this.startupOpen = false;
    const ops = this.ops;
    for (let i = 0; i < ops.length; i++) { const op = ops[i]; if (op != null) op.renew(); }
    this.head = 0;
    this.count = 0;
    this.orphanOpen = false;
    this.discarding = false;
    this.deferredPending = false;
    this.segTs = 0;
    this.segOpen = false;
    const o = this._orphan;
    if (o != null) o.renew();
    const d = this._deferred;
    if (d != null) d.renew();
    const k = this._skip;
    if (k != null) k.renew();
    this.skipOpen = false;
  }

  /** Responses that arrived without a request (mid-stream join). */
  @inline get orphan(): Op { if (this._orphan == null) this._orphan = new Op(); return changetype<Op>(this._orphan); }
  /** An extended-batch failure waiting for the batch's Execute (or Sync). */
  get deferred(): Op { if (this._deferred == null) this._deferred = new Op(); return changetype<Op>(this._deferred); }
  /** An Execute sent after its batch failed (discarding), built from the Parse/Bind before it. */
  get skip(): Op { if (this._skip == null) this._skip = new Op(); return changetype<Op>(this._skip); }
  /** Prepared statements and portals by name. */
  get stmts(): NameTable { if (this._stmts == null) this._stmts = new NameTable(MAX_STMTS); return changetype<NameTable>(this._stmts); }
  get portals(): NameTable { if (this._portals == null) this._portals = new NameTable(MAX_PORTALS); return changetype<NameTable>(this._portals); }

  @inline at(i: i32): Op {
    return changetype<Op>(this.ops[(this.head + i) % this.ops.length]);
  }

  /** Whether one more operation fits: the ring has a free slot or may grow (to MAX_OPS freely,
   *  past it while the decoder-wide SPARE_OPS allow). */
  hasRoom(): bool {
    const n = this.ops.length;
    if (this.count < n || n < MAX_OPS) return true;
    if (n >= MAX_OPS_PIPELINED) return false;
    // Growing n → 2n past MAX_OPS takes n more spare slots (n ≥ MAX_OPS here).
    return spareOpsUsed + n <= SPARE_OPS;
  }

  /** Appends an operation (reusing a pooled Op); the caller checks hasRoom() first. */
  push(kind: u8, ts: u64): Op {
    if (this.count == this.ops.length && this.hasRoom()) {
      // Unroll into a ring twice as large (the Op objects move along and stay reusable).
      const n = this.ops.length;
      const bigger = new StaticArray<Op | null>(n * 2);
      for (let i = 0; i < n; i++) bigger[i] = this.ops[(this.head + i) % n];
      this.ops = bigger;
      this.head = 0;
      if (n >= MAX_OPS) spareOpsUsed += n;
    }
    const slot = (this.head + this.count) % this.ops.length;
    let op = this.ops[slot];
    if (op == null) { op = new Op(); this.ops[slot] = op; }
    op.reset(kind, ts);
    this.count++;
    return op;
  }

  @inline front(): Op { return changetype<Op>(this.ops[this.head]); }

  pop(): void {
    if (this.count == 0) return;
    this.head = (this.head + 1) % this.ops.length;
    this.count--;
    // Back to the first slots whenever the queue drains: a stream only ever allocates as many
    // Op objects as it has operations in flight at once.
    if (this.count == 0) {
      this.head = 0;
      // A drained pipeline's ring goes back to MAX_OPS slots: its spare slots (and their Ops) are
      // for the next batch of any stream.
      const n = this.ops.length;
      if (n > MAX_OPS) {
        const kept = new StaticArray<Op | null>(MAX_OPS);
        for (let i = 0; i < MAX_OPS; i++) kept[i] = this.ops[i];
        this.ops = kept;
        spareOpsUsed -= n - MAX_OPS;
      }
    }
  }
}
