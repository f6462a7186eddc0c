// Request ↔ response: frontend messages queue operations, backend messages answer them strictly in
// order (the protocol guarantees it). Exchange granularity:
//   - simple Query 'Q': one exchange from the Query to its ReadyForQuery (a multi-statement string
//     is one exchange; its CommandComplete tags are ';'-joined);
//   - extended protocol: one exchange per Execute, from the first message leading to it (Parse/Bind/
//     Describe) to its CommandComplete/EmptyQueryResponse/PortalSuspended/ErrorResponse; pipelined
//     Executes before one Sync each get theirs. A Parse with no Execute in its Sync batch (a
//     prepare, e.g. libpq PQprepare) is its own exchange, db.operation.name "PREPARE";
//   - an ErrorResponse in an extended batch lands on the batch's first pending Execute (or on the
//     failing message when there is none); the server skips the rest up to Sync: the Executes of
//     it, queued or sent after the error, are exchanges with error.type "pipeline_aborted" (the
//     server skips them), nothing else of it is queued;
//   - the startup (StartupMessage … ReadyForQuery or the error that ends it) is one exchange,
//     db.operation.name "STARTUP"; a CancelRequest is one exchange "CANCEL".
import { FLAG_NO_RESPONSE, FLAG_NO_REQUEST, FLAG_UNKNOWN, FLAG_TIMEOUT } from "../abi/abi";
import {
  Stream, Op, Named, nameHash, OP_QUERY, OP_PARSE, OP_BIND, OP_DESCRIBE, OP_EXECUTE, OP_SYNC, OP_CLOSE, OP_FUNC,
  OP_STARTUP, PH_INIT, PH_AUTH, PH_READY, TEXT_CAP, NAME_CAP, MSG_CAP, TAG_CAP, TIMEOUT_NS, tagRowCount, tagCountsReturnedRows, strEq, zeroBytes,
} from "./types";
import { emitQuery, emitOrphanTag, emitStartup, emitCancel, emitNotice, emitNotification, emitEncRefused } from "./emit";
import { operationName, opStart, opLen, collectionName, collStart, collLen } from "./sql";

// Naming by SQL text, shared by every stream: applications send the same few statements on every
// connection (pgbench -M extended re-parses its seven texts into the unnamed statement in turn),
// and lexing them was the largest share of the decoder's time. Direct-mapped, verified by the
// whole text; bounded to NAMING_SLOTS texts of at most NAMING_MAX bytes.
const NAMING_SLOTS: i32 = 64;
const NAMING_MAX: i32 = 1024;
const namingCache = new StaticArray<Named | null>(NAMING_SLOTS);

// The naming of the last text named (offsets into it).
let namedOpOff: i32 = 0;
let namedOpLen: i32 = 0;
let namedCollOff: i32 = 0;
let namedCollLen: i32 = 0;

/** Names a SQL text (first keyword, single table) into the named* globals, from the cache when
 *  the same text was named before. */
function nameText(t: usize, len: i32, cut: bool): void {
  const cacheable = len <= NAMING_MAX && !cut;
  let slot: i32 = 0;
  if (cacheable) {
    slot = <i32>(nameHash(t, len) & <u64>(NAMING_SLOTS - 1));
    const c = namingCache[slot];
    if (c != null && c.text.equals(t, len)) {
      namedOpOff = c.opOff; namedOpLen = c.opLen;
      namedCollOff = c.collOff; namedCollLen = c.collLen;
      return;
    }
  }
  operationName(t, len);
  namedOpOff = <i32>(opStart - t);
  namedOpLen = opLen;
  collectionName(t, len);
  namedCollOff = <i32>(collStart - t);
  namedCollLen = collLen;
  if (cacheable) {
    let c = namingCache[slot];
    if (c == null) { c = new Named(); namingCache[slot] = c; }
    c.text.set(t, len, NAMING_MAX);
    c.opOff = namedOpOff; c.opLen = namedOpLen;
    c.collOff = namedCollOff; c.collLen = namedCollLen;
  }
}

/** Names a statement once, however often it is executed. */
function ensureNaming(n: Named): void {
  if (n.namingKnown) return;
  nameText(n.text.ptr(), n.text.len, n.text.cut);
  n.opOff = namedOpOff; n.opLen = namedOpLen;
  n.collOff = namedCollOff; n.collLen = namedCollLen;
  n.namingKnown = true;
}

export const streams = new Map<u32, Stream>();


// ---------------------------------------------------------------- small readers

@inline function be32(p: usize): u32 { return bswap<u32>(load<u32>(p)); }

/** Length of the NUL-terminated string at p (or up to end when the NUL is missing). */
// A word at a time: each loop iteration pays a fuel check (host/src/decoders/meter.ts), and a
// CommandComplete tag is ~10 bytes. The lowest flagged byte of zeroBytes is always a real zero
// (a borrow only flags bytes above one); loads stay inside [p, end).
function cstrLen(p: usize, end: usize): i32 {
  let q = p;
  while (q + 8 <= end) {
    const z = zeroBytes(load<u64>(q));
    if (z != 0) return <i32>(q - p) + <i32>(ctz(z) >> 3);
    q += 8;
  }
  while (q < end && load<u8>(q) != 0) q++;
  return <i32>(q - p);
}

// ---------------------------------------------------------------- operations queue

@inline function isTerminal(k: u8): bool { return k == OP_QUERY || k == OP_EXECUTE || k == OP_SYNC || k == OP_FUNC; }

/** A query-like op leaves the queue without its answer. */
function abandon(stream: u32, st: Stream, op: Op, flags: i32, ts: u64): void {
  if (op.kind == OP_QUERY || op.kind == OP_EXECUTE || op.kind == OP_FUNC) emitQuery(stream, st, op, flags, ts);
}

function pushOp(stream: u32, st: Stream, kind: u8, ts: u64): Op {
  if (!st.hasRoom()) {
    // A peer that never answers: the oldest operation is given up, memory stays bounded. It was
    // unanswered until this operation pushed it out.
    const old = st.front();
    abandon(stream, st, old, FLAG_NO_RESPONSE | FLAG_UNKNOWN, ts);
    st.pop();
  }
  return st.push(kind, ts);
}

@inline function segStart(st: Stream, ts: u64): void {
  if (!st.segOpen) { st.segOpen = true; st.segTs = ts; }
}

@inline function orphan(st: Stream, ts: u64): Op {
  if (!st.orphanOpen) { st.orphan.reset(OP_EXECUTE, ts); st.orphanOpen = true; }
  return st.orphan;
}

@inline function flushOrphan(stream: u32, st: Stream, ts: u64): void {
  if (!st.orphanOpen) return;
  st.orphanOpen = false;
  emitQuery(stream, st, st.orphan, FLAG_NO_REQUEST, ts);
}

/**
 * The operation a simple backend answer (ParseComplete, BindComplete, CloseComplete, NoData,
 * RowDescription after Describe) belongs to: the first op of that kind before any query-like op.
 * Ops in front of it were answered by messages we did not see; they are dropped.
 */
@inline function matchSimple(stream: u32, st: Stream, kind: u8, ts: u64): Op | null {
  // Entering a loop costs a fuel check even for no iteration; mid-stream (and in the backend-only
  // bench) the queue is empty for most messages.
  if (st.count == 0) return null;
  for (let i = 0; i < st.count; i++) {
    const k = st.at(i).kind;
    if (k == kind) {
      for (let j = 0; j < i; j++) { abandon(stream, st, st.front(), FLAG_UNKNOWN, ts); st.pop(); }
      const op = st.front();
      st.pop();
      return op;
    }
    if (isTerminal(k)) return st.front().gapped ? matchPastGap(stream, st, kind, ts) : null;
  }
  return null;
}

/**
 * After lost backend bytes, a ParseComplete/BindComplete/… that no op before the next query-like
 * op expects answers a later one: the lost bytes held the answers in front of it (CommandCompletes,
 * the batch's ReadyForQuery). node-postgres reading a 1000-row pipeline's answers in 64 KiB reads,
 * each captured to its first 16 KiB (tracers.socket.capture_max), lost the last rows' answers and
 * the ReadyForQuery; the next batch's ParseComplete found no Parse in front of the old batch's
 * Execute and went unmatched, its 23505 landed on an old row and its 1000 rows stayed pending
 * until the close. The op of that kind in this batch or the next (past one Sync), every op in
 * front of it pending when the bytes were lost, takes it; those in front lost their answers
 * (FLAG_NO_RESPONSE | FLAG_UNKNOWN, as afterGap). Otherwise nothing matches, as before.
 */
function matchPastGap(stream: u32, st: Stream, kind: u8, ts: u64): Op | null {
  let syncs = 0;
  let at = -1;
  for (let i = 0; i < st.count; i++) {
    const o = st.at(i);
    if (o.kind == kind) { at = i; break; }
    if (!o.gapped) return null;
    if (o.kind == OP_QUERY || o.kind == OP_FUNC) return null;
    if (o.kind == OP_SYNC && ++syncs > 1) return null;
  }
  if (at < 0) return null;
  for (let j = 0; j < at; j++) { abandon(stream, st, st.front(), FLAG_NO_RESPONSE | FLAG_UNKNOWN, ts); st.pop(); }
  const op = st.front();
  st.pop();
  return op;
}

/** The op DataRow/CommandComplete/COPY messages belong to: the first query-like op. */
@inline function execTarget(stream: u32, st: Stream, ts: u64): Op | null {
  if (st.count == 0) return null; // as in matchSimple
  for (let i = 0; i < st.count; i++) {
    const k = st.at(i).kind;
    if (k == OP_QUERY || k == OP_EXECUTE || k == OP_FUNC) {
      for (let j = 0; j < i; j++) st.pop();
      return st.front();
    }
    if (k == OP_SYNC) return null;
  }
  return null;
}

// ---------------------------------------------------------------- lost response bytes

/** Backend bytes were lost (the kernel ring overflowed): what answered the pending operations may
 *  be gone — some rows, or their CommandComplete and ReadyForQuery. Each is marked: its record
 *  says FLAG_UNKNOWN, and its CommandComplete is checked against its SQL (afterGap). */
export function onResponseGap(st: Stream): void {
  for (let i = 0; i < st.count; i++) { const o = st.at(i); o.gapped = true; o.unknown = true; }
}

/** Whether the op's first SQL keyword (db.operation.name) is the tag's first word, ASCII case
 *  folded; true when the op has no known keyword (nothing to contradict). */
function sameCommand(o: Op, tag: usize, w: i32): bool {
  if (!o.namingKnown || o.opLen <= 0) return true;
  if (o.opLen != w) return false;
  const q = o.text.ptr() + <usize>o.opOff;
  for (let i = 0; i < w; i++) {
    let c = <i32>load<u8>(q + <usize>i);
    if (c >= 0x61 && c <= 0x7a) c -= 0x20;
    if (c != <i32>load<u8>(tag + <usize>i)) return false;
  }
  return true;
}

/**
 * A CommandComplete after lost backend bytes, for `t` (the first query-like op, pending at the
 * loss): when its tag names another command than t's SQL and a later pending op's SQL is that
 * command, t's own CommandComplete and ReadyForQuery were among the lost bytes (node-postgres
 * reading 100k rows while the ring overflowed: the next query's "UNLISTEN" tag was t's, with
 * the rows counted before the loss). The ops in front end unanswered (FLAG_NO_RESPONSE |
 * FLAG_UNKNOWN, at this read) and the later op takes the tag. Otherwise t keeps it.
 */
function afterGap(stream: u32, st: Stream, t: Op, tag: usize, tagLen: i32, ts: u64): Op {
  let w = 0;
  while (w < tagLen && load<u8>(tag + <usize>w) != 0x20) w++;
  if (w == 0 || sameCommand(t, tag, w)) return t;
  let at = -1;
  for (let i = 1; i < st.count; i++) {
    const o = st.at(i);
    const k = o.kind;
    if ((k == OP_QUERY || k == OP_EXECUTE || k == OP_FUNC) && o.namingKnown && o.opLen > 0 && sameCommand(o, tag, w)) { at = i; break; }
  }
  if (at < 0) return t;
  for (let j = 0; j < at; j++) { abandon(stream, st, st.front(), FLAG_NO_RESPONSE | FLAG_UNKNOWN, ts); st.pop(); }
  // Its answer is the one that follows the loss: whole.
  const o = st.front();
  o.gapped = false;
  o.unknown = false;
  return o;
}

// ---------------------------------------------------------------- frontend

/**
 * Joined mid-stream inside a request: the bytes skipped to the next boundary were (part of) a
 * request whose answer is still to come. A placeholder takes that answer, so the next request
 * is not paired with the previous one's response.
 */
export function onSkippedRequest(stream: u32, st: Stream, ts: u64): void {
  if (st.count != 0) return;
  const op = pushOp(stream, st, OP_QUERY, ts);
  op.unknown = true;
}

let commonGens: u64 = 0;

export function onStartup(st: Stream, p: usize, n: i32, ts: u64): void {
  // int32 version, then name\0value\0 … \0
  const end = p + <usize>n;
  st.protoMajor = be32(p) >> 16;
  st.protoMinor = be32(p) & 0xffff;
  let q = p + 4;
  while (q < end && load<u8>(q) != 0) {
    const kl = cstrLen(q, end);
    const k = q;
    q += <usize>kl + 1;
    if (q >= end) break;
    const vl = cstrLen(q, end);
    if (strEq(k, kl, "user")) st.user.set(q, vl, NAME_CAP);
    else if (strEq(k, kl, "database")) st.database.set(q, vl, NAME_CAP);
    else if (strEq(k, kl, "application_name")) st.appName.set(q, vl, NAME_CAP);
    q += <usize>vl + 1;
  }
  // Without a database parameter the server uses the user name.
  if (!st.database.has && st.user.has) st.database.copyFrom(st.user);
  st.commonGen = ++commonGens;
  st.phase = PH_AUTH;
  st.startup.reset(OP_STARTUP, st.encTs != 0 ? st.encTs : ts);
  st.startupOpen = true;
  st.encTs = 0;
  st.encRefused = 0;
}

export function onCancel(stream: u32, st: Stream, p: usize, ts: u64): void {
  // int32 code, int32 backend pid, int32 secret key — the key is a secret and never read.
  emitCancel(stream, st, <i64>be32(p + 4), ts);
}

export function onRequest(stream: u32, st: Stream, type: u8, p: usize, n: i32, full: u32, ts: u64): void {
  const end = p + <usize>n;
  if (st.discarding && onDiscarded(stream, st, type, p, end, ts)) return;
  switch (type) {
    case 0x51: { // 'Q' Query
      const op = pushOp(stream, st, OP_QUERY, st.segOpen ? st.segTs : ts);
      st.segOpen = false;
      const ql = cstrLen(p, end);
      op.text.set(p, ql, TEXT_CAP);
      if (<u32>n < full - 4 && !op.text.cut) op.text.cut = true;
      // Applications repeat the same simple queries (BEGIN, COMMIT, health checks).
      nameText(op.text.ptr(), op.text.len, op.text.cut);
      op.opOff = namedOpOff; op.opLen = namedOpLen;
      op.collOff = namedCollOff; op.collLen = namedCollLen;
      op.namingKnown = true;
      break;
    }
    case 0x50: { // 'P' Parse: name, query, parameter types
      segStart(st, ts);
      const nl = cstrLen(p, end);
      const q = p + <usize>nl + 1;
      const ql = q < end ? cstrLen(q, end) : 0;
      const s = st.stmts.define(p, nl);
      const cut = q + <usize>ql >= end && <u32>n < full - 4;
      // Drivers re-parse the same SQL into the unnamed statement for every query: same text,
      // same naming, worked out once.
      if (!(s.known && !s.text.cut && !cut && s.text.equals(q, ql))) {
        s.text.set(q, ql, TEXT_CAP);
        if (cut) s.text.cut = true;
        s.namingKnown = false;
      }
      s.known = true;
      const op = pushOp(stream, st, OP_PARSE, ts);
      op.text.copyFrom(s.text);
      op.stmt.set(p, nl, NAME_CAP);
      break;
    }
    case 0x42: { // 'B' Bind: portal, statement, parameters (values are never read)
      segStart(st, ts);
      const pl = cstrLen(p, end);
      const s = p + <usize>pl + 1;
      const sl = s < end ? cstrLen(s, end) : 0;
      const portal = st.portals.define(p, pl);
      portal.stmt.set(s, sl, NAME_CAP);
      const stmt = st.stmts.lookup(s, sl);
      if (stmt != null && stmt.known) {
        portal.text.copyFrom(stmt.text);
        portal.known = true;
        ensureNaming(stmt);
        portal.opOff = stmt.opOff; portal.opLen = stmt.opLen;
        portal.collOff = stmt.collOff; portal.collLen = stmt.collLen;
        portal.namingKnown = true;
      } else {
        portal.text.clear();
        portal.known = false;
        portal.namingKnown = false;
      }
      // The Bind carries its SQL too: a Bind error (e.g. a parameter that fails planning) names it.
      const op = pushOp(stream, st, OP_BIND, ts);
      op.text.copyFrom(portal.text);
      op.stmt.copyFrom(portal.stmt);
      op.unknown = !portal.known;
      break;
    }
    case 0x44: // 'D' Describe
      segStart(st, ts);
      pushOp(stream, st, OP_DESCRIBE, ts);
      break;
    case 0x45: { // 'E' Execute: portal, max rows
      segStart(st, ts);
      const pl = cstrLen(p, end);
      const op = pushOp(stream, st, OP_EXECUTE, st.segTs);
      st.segOpen = false;
      op.portal.set(p, pl, NAME_CAP);
      const portal = st.portals.lookup(p, pl);
      if (portal != null && portal.known) {
        op.text.copyFrom(portal.text);
        op.stmt.copyFrom(portal.stmt);
        if (portal.namingKnown) {
          op.opOff = portal.opOff; op.opLen = portal.opLen;
          op.collOff = portal.collOff; op.collLen = portal.collLen;
          op.namingKnown = true;
        }
      } else {
        if (portal != null) op.stmt.copyFrom(portal.stmt);
        op.unknown = true;   // statement prepared before we joined: no SQL text
      }
      break;
    }
    case 0x53: { // 'S' Sync: ends a batch; a Parse without an Execute in it is a prepare
      st.segOpen = false;
      let sawExecute = false;
      for (let i = st.count - 1; i >= 0; i--) {
        const o = st.at(i);
        if (o.kind == OP_SYNC || o.kind == OP_QUERY) break;
        if (o.kind == OP_EXECUTE) { sawExecute = true; break; }
      }
      if (!sawExecute) {
        for (let i = st.count - 1; i >= 0; i--) {
          const o = st.at(i);
          if (o.kind == OP_SYNC || o.kind == OP_QUERY) break;
          if (o.kind == OP_PARSE) o.noExecuteInBatch = true;
        }
      }
      pushOp(stream, st, OP_SYNC, ts);
      break;
    }
    case 0x43: { // 'C' Close: 'S' statement or 'P' portal, name
      segStart(st, ts);
      if (n >= 1) {
        const which = load<u8>(p);
        const nl = cstrLen(p + 1, end);
        if (which == 0x53) st.stmts.forget(p + 1, nl);
        else if (which == 0x50) st.portals.forget(p + 1, nl);
      }
      pushOp(stream, st, OP_CLOSE, ts);
      break;
    }
    case 0x46: // 'F' FunctionCall
      pushOp(stream, st, OP_FUNC, st.segOpen ? st.segTs : ts);
      st.segOpen = false;
      break;
    case 0x64: { // 'd' CopyData (COPY FROM STDIN): counted, never captured
      const t = execTarget(stream, st, ts);
      if (t != null) { t.copyMsgs++; t.copyBytes += <i64>(full - 4); }
      break;
    }
    case 0x66: { // 'f' CopyFail
      const t = execTarget(stream, st, ts);
      if (t != null) t.copyFailed = true;
      break;
    }
    case 0x70: { // 'p' PasswordMessage / SASLInitialResponse / SASLResponse / GSSResponse
      // Only the SASL mechanism name is looked at, and only when it is one we know by name.
      if (st.saslPending) {
        st.saslPending = false;
        const ml = cstrLen(p, end);
        if (strEq(p, ml, "SCRAM-SHA-256")) st.authMethod = "SCRAM-SHA-256";
        else if (strEq(p, ml, "SCRAM-SHA-256-PLUS")) st.authMethod = "SCRAM-SHA-256-PLUS";
      }
      break;
    }
    default: // 'H' Flush, 'c' CopyDone, 'X' Terminate
      break;
  }
}

// ---------------------------------------------------------------- backend

const notice = new Op();

/** ErrorResponse / NoticeResponse fields: S (localized) / V severity, C SQLSTATE, M message. */
function readFields(op: Op, p: usize, end: usize): void {
  op.hasError = true;
  let q = p;
  let sawV = false;
  while (q < end) {
    const code = load<u8>(q);
    if (code == 0) break;
    q++;
    const l = cstrLen(q, end);
    if (code == 0x56) { op.err.severity.set(q, l, NAME_CAP); sawV = true; }
    else if (code == 0x53 && !sawV) op.err.severity.set(q, l, NAME_CAP);
    else if (code == 0x43) op.err.code.set(q, l, NAME_CAP);
    else if (code == 0x4d) op.err.message.set(q, l, MSG_CAP);
    q += <usize>l + 1;
  }
  const s = op.err.severity;
  op.isError = s.has && (strEq(s.ptr(), s.len, "ERROR") || strEq(s.ptr(), s.len, "FATAL") || strEq(s.ptr(), s.len, "PANIC"));
  // A localized severity we cannot read: an ErrorResponse is an error all the same.
  if (!op.isError && !sawV) op.isError = true;
}

function addTag(op: Op, p: usize, n: i32): void {
  const l = cstrLen(p, p + <usize>n);
  if (op.tagCount > 0) op.tags.appendByte(0x3b, TAG_CAP);
  op.tags.append(p, l, TAG_CAP);
  op.tagCount++;
  // The row count is the last number of the tag, for the commands that report one.
  const v = tagRowCount(p, l);
  if (v >= 0 && tagCountsReturnedRows(p, l, op.described, op.copyOut, op.kind == OP_EXECUTE || op.unknown)) {
    op.tagRows += v;
    op.tagHasRows = true;
  }
  op.described = false;
  op.copyOut = false;
}

function onError(stream: u32, st: Stream, p: usize, end: usize, ts: u64): void {
  if (st.count == 0) {
    if (st.startupOpen) {
      readFields(st.startup, p, end);
      emitStartup(stream, st, 0, ts);
      return;
    }
    const o = orphan(st, ts);
    readFields(o, p, end);
    flushOrphan(stream, st, ts);
    return;
  }
  const front = st.front();
  if (front.kind == OP_QUERY || front.kind == OP_FUNC) { readFields(front, p, end); return; }
  if (front.kind == OP_SYNC) {
    // Raised while processing Sync (e.g. a deferred constraint at implicit COMMIT).
    readFields(front, p, end);
    emitQuery(stream, st, front, 0, ts);
    front.hasError = false;
    return;
  }
  // Extended batch: the first pending Execute before Sync carries it, else the failing message.
  let victim = front;
  let synced = false;
  for (let i = 0; i < st.count; i++) {
    const o = st.at(i);
    if (o.kind == OP_SYNC || o.kind == OP_QUERY || o.kind == OP_FUNC) { synced = true; break; }
    if (o.kind == OP_EXECUTE) { victim = o; break; }
  }
  if (!synced) {
    for (let i = 0; i < st.count; i++) {
      const k = st.at(i).kind;
      if (k == OP_SYNC || k == OP_QUERY || k == OP_FUNC) { synced = true; break; }
    }
  }
  if (victim.kind == OP_EXECUTE || synced) {
    readFields(victim, p, end);
    emitQuery(stream, st, victim, 0, ts);
  } else {
    // The server reports errors at once, so the rest of the batch (its Execute) may still be on
    // its way: the error waits for that Execute, or for the Sync ending the batch.
    const d = st.deferred;
    d.reset(victim.kind, victim.ts);
    d.text.copyFrom(victim.text);
    d.stmt.copyFrom(victim.stmt);
    d.portal.copyFrom(victim.portal);
    d.unknown = victim.unknown;
    d.tsEnd = ts;
    readFields(d, p, end);
    st.deferredPending = true;
  }
  while (st.count > 0) {
    const o = st.front();
    const k = o.kind;
    if (k == OP_SYNC || k == OP_QUERY || k == OP_FUNC) break;
    // A later Execute of the batch, already sent (pipelined): the server skips it, the client gets
    // no result for it (libpq: PGRES_PIPELINE_ABORTED). tshark lists its query; so do we.
    if (k == OP_EXECUTE && o !== victim) { o.skipped = true; emitQuery(stream, st, o, 0, ts); }
    st.pop();
  }
  // Until Sync the server ignores what the client sends: so do we.
  if (!synced) st.discarding = true;
}

/** A frontend message sent after an ErrorResponse of its batch, before the batch's Sync. */
function onDiscarded(stream: u32, st: Stream, type: u8, p: usize, end: usize, ts: u64): bool {
  if (type == 0x53) { // Sync ends the discarding; an error not yet reported goes out now
    st.discarding = false;
    st.skipOpen = false;
    if (st.deferredPending) { st.deferredPending = false; emitQuery(stream, st, st.deferred, 0, st.deferred.tsEnd); }
    return false;       // the Sync itself is queued as usual: ReadyForQuery answers it
  }
  if (type == 0x45 && st.deferredPending) {
    // The Execute the failed Parse/Bind was for: the error is its outcome.
    const d = st.deferred;
    st.deferredPending = false;
    if (d.kind != OP_EXECUTE) {
      if (st.segOpen) d.ts = st.segTs;
      d.kind = OP_EXECUTE;
      d.portal.set(p, cstrLen(p, end), NAME_CAP);
    }
    st.segOpen = false;
    emitQuery(stream, st, d, 0, d.tsEnd);
    return true;
  }
  // Sent after the error (the client had not seen it yet): the server skips these too. An Execute
  // is an exchange (pipeline_aborted), its SQL from the Parse/Bind sent with it, as when queued.
  if (type == 0x50) { // Parse
    segStart(st, ts);
    const nl = cstrLen(p, end);
    const q = p + <usize>nl + 1;
    const k = st.skip;
    k.reset(OP_EXECUTE, st.segTs);
    if (q < end) k.text.set(q, cstrLen(q, end), TEXT_CAP);
    k.stmt.set(p, nl, NAME_CAP);
    st.skipOpen = true;
  } else if (type == 0x42) { // Bind: its statement is the Parse just seen, or one prepared before
    segStart(st, ts);
    const pl = cstrLen(p, end);
    const sp = p + <usize>pl + 1;
    const sl = sp < end ? cstrLen(sp, end) : 0;
    const k = st.skip;
    if (!(st.skipOpen && k.stmt.equals(sp, sl))) {
      k.reset(OP_EXECUTE, st.segTs);
      k.stmt.set(sp, sl, NAME_CAP);
      const stmt = st.stmts.lookup(sp, sl);
      if (stmt != null && stmt.known) k.text.copyFrom(stmt.text);
      else k.unknown = true;
    }
    st.skipOpen = true;
  } else if (type == 0x45) { // Execute
    segStart(st, ts);
    const k = st.skip;
    if (!st.skipOpen) {
      // a portal bound in an earlier batch
      k.reset(OP_EXECUTE, st.segTs);
      const pl = cstrLen(p, end);
      const portal = st.portals.lookup(p, pl);
      if (portal != null && portal.known) { k.text.copyFrom(portal.text); k.stmt.copyFrom(portal.stmt); }
      else k.unknown = true;
    }
    k.portal.set(p, cstrLen(p, end), NAME_CAP);
    k.skipped = true;
    st.skipOpen = false;
    st.segOpen = false;
    emitQuery(stream, st, k, 0, ts);
  }
  return true;
}

function onReady(stream: u32, st: Stream, ts: u64): void {
  if (st.discarding) {
    // ReadyForQuery only follows a Sync, which ends discarding on our side first; seeing it while
    // still discarding means we missed that Sync (a gap): stop discarding rather than stall.
    st.discarding = false;
    if (st.deferredPending) { st.deferredPending = false; emitQuery(stream, st, st.deferred, 0, st.deferred.tsEnd); }
  }
  if (st.startupOpen) {
    emitStartup(stream, st, 0, ts);
    st.phase = PH_READY;
  } else if (st.phase == PH_AUTH) {
    st.phase = PH_READY;
  }
  flushOrphan(stream, st, ts);
  // Pop through the op this ReadyForQuery answers (Sync, Query or FunctionCall).
  if (st.count == 0) return; // as in matchSimple
  let has = false;
  for (let i = 0; i < st.count; i++) if (isTerminal(st.at(i).kind) && st.at(i).kind != OP_EXECUTE) { has = true; break; }
  if (!has) return;
  while (st.count > 0) {
    const op = st.front();
    const k = op.kind;
    st.pop();
    if (k == OP_QUERY || k == OP_FUNC) { emitQuery(stream, st, op, 0, ts); return; }
    if (k == OP_SYNC) return;
    if (k == OP_EXECUTE) emitQuery(stream, st, op, FLAG_UNKNOWN, ts);
    else if (k == OP_PARSE && op.noExecuteInBatch) { op.unknown = true; emitQuery(stream, st, op, 0, ts); }
  }
}

function onAuth(st: Stream, p: usize, n: i32): void {
  if (n < 4) return;
  const code = be32(p);
  switch (code) {
    case 0: if (!st.sawAuthRequest) st.authMethod = "trust"; return;
    case 2: st.authMethod = "kerberos"; break;
    case 3: st.authMethod = "password"; break;
    case 5: st.authMethod = "md5"; break;   // the 4-byte salt that follows is never read
    case 7: st.authMethod = "gss"; break;
    case 9: st.authMethod = "sspi"; break;
    case 10: {
      // AuthenticationSASL: the mechanisms the server offers; the client picks one next.
      const end = p + <usize>n;
      const m = p + 4;
      const ml = cstrLen(m, end);
      if (strEq(m, ml, "SCRAM-SHA-256")) st.authMethod = "SCRAM-SHA-256";
      else if (strEq(m, ml, "SCRAM-SHA-256-PLUS")) st.authMethod = "SCRAM-SHA-256-PLUS";
      else st.authMethod = "sasl";
      st.saslPending = true;
      break;
    }
    default: return;  // SASLContinue/SASLFinal/GSSContinue carry secrets-derived data: not read
  }
  st.sawAuthRequest = true;
}

@inline export function onResponse(stream: u32, st: Stream, type: u8, p: usize, n: i32, full: u32, ts: u64): void {
  const end = p + <usize>n;
  switch (type) {
    case 0x52: onAuth(st, p, n); break;                    // 'R'
    case 0x53: {                                           // 'S' ParameterStatus
      const kl = cstrLen(p, end);
      if (strEq(p, kl, "server_version")) {
        const v = p + <usize>kl + 1;
        if (v < end) st.serverVersion.set(v, cstrLen(v, end), NAME_CAP);
      }
      break;
    }
    case 0x4b: if (n >= 4) st.backendPid = <i64>be32(p); break; // 'K' pid; the secret key is not read
    case 0x5a: onReady(stream, st, ts); break;             // 'Z'
    case 0x31: {                                           // '1' ParseComplete
      const op = matchSimple(stream, st, OP_PARSE, ts);
      if (op != null && op.noExecuteInBatch) emitQuery(stream, st, op, 0, ts);
      break;
    }
    case 0x32: matchSimple(stream, st, OP_BIND, ts); break;      // '2' BindComplete
    case 0x33: matchSimple(stream, st, OP_CLOSE, ts); break;     // '3' CloseComplete
    case 0x6e: matchSimple(stream, st, OP_DESCRIBE, ts); break;  // 'n' NoData
    case 0x54: {                                                 // 'T' RowDescription
      if (st.count > 0 && st.front().kind != OP_QUERY && st.front().kind != OP_FUNC) {
        // A portal's Describe answered: the Execute after it returns that result set (RETURNING's too).
        if (matchSimple(stream, st, OP_DESCRIBE, ts) != null && st.count > 0 && st.front().kind == OP_EXECUTE) st.front().described = true;
      } else if (st.count > 0 && st.front().kind == OP_QUERY) st.front().described = true;
      break;
    }
    case 0x48: {                                                 // 'H' CopyOutResponse
      const t = execTarget(stream, st, ts);
      if (t != null) t.copyOut = true;
      break;
    }
    case 0x44: {                                                 // 'D' DataRow
      const t = execTarget(stream, st, ts);
      if (t != null) t.rows++; else orphan(st, ts).rows++;
      break;
    }
    case 0x43: {                                                 // 'C' CommandComplete
      const t0 = execTarget(stream, st, ts);
      const t = t0 != null && t0.gapped ? afterGap(stream, st, t0, p, cstrLen(p, end), ts) : t0;
      if (t == null) {
        if (!st.orphanOpen) { emitOrphanTag(stream, st, ts, ts, p, cstrLen(p, end), 0); break; }
        const o = st.orphan;
        if (o.tagCount == 0 && o.copyMsgs == 0 && !o.copyFailed && !o.hasError && !o.suspended && !o.unknown) {
          st.orphanOpen = false;
          emitOrphanTag(stream, st, o.ts, ts, p, cstrLen(p, end), o.rows);
          break;
        }
        addTag(o, p, n);
        flushOrphan(stream, st, ts);
      } else {
        addTag(t, p, n);
        if (t.kind == OP_EXECUTE) { emitQuery(stream, st, t, 0, ts); st.pop(); }
      }
      break;
    }
    case 0x49: {                                                 // 'I' EmptyQueryResponse
      const t = execTarget(stream, st, ts);
      if (t != null) {
        t.empty = true;
        if (t.kind == OP_EXECUTE) { emitQuery(stream, st, t, 0, ts); st.pop(); }
      }
      break;
    }
    case 0x73: {                                                 // 's' PortalSuspended
      const t = execTarget(stream, st, ts);
      if (t != null && t.kind == OP_EXECUTE) { t.suspended = true; emitQuery(stream, st, t, 0, ts); st.pop(); }
      else if (t == null) { const o = orphan(st, ts); o.suspended = true; flushOrphan(stream, st, ts); }
      break;
    }
    case 0x45: onError(stream, st, p, end, ts); break;           // 'E' ErrorResponse
    case 0x4e: {                                                 // 'N' NoticeResponse
      notice.reset(0, ts);
      readFields(notice, p, end);
      emitNotice(stream, st, notice, ts);
      break;
    }
    case 0x41: {                                                 // 'A' NotificationResponse
      if (n >= 4) {
        const pid = <i64>be32(p);
        const c = p + 4;
        emitNotification(stream, st, pid, c, cstrLen(c, end), ts);
      }
      break;
    }
    case 0x64: {                                                 // 'd' CopyData (COPY TO STDOUT)
      const t = execTarget(stream, st, ts);
      const o = t != null ? t : orphan(st, ts);
      o.copyMsgs++;
      o.copyBytes += <i64>(full - 4);
      break;
    }
    default: // 'G'/'W' CopyIn/BothResponse, 'c' CopyDone, 't' ParameterDescription,
      break; // 'V' FunctionCallResponse, 'v' NegotiateProtocolVersion: nothing to keep
  }
}

// ---------------------------------------------------------------- lifecycle

/** The connection ended: unanswered operations become NO_RESPONSE exchanges. */
/** Flushes and forgets the stream; returns its object (for reuse, index.ts), null if unknown. */
export function closeStream(stream: u32, ts: u64): Stream | null {
  if (!streams.has(stream)) return null;
  const st = streams.get(stream);
  while (st.count > 0) {
    const op = st.front();
    abandon(stream, st, op, FLAG_NO_RESPONSE, op.ts);
    st.pop();
  }
  if (st.deferredPending) { st.deferredPending = false; emitQuery(stream, st, st.deferred, 0, st.deferred.tsEnd); }
  if (st.startupOpen) emitStartup(stream, st, FLAG_NO_RESPONSE, st.startup.ts);
  // Encryption refused and the connection gone before any StartupMessage: a client that requires
  // it (sslmode=require, gssencmode=require) against a server without it. Its only trace.
  if (st.encRefused != 0 && st.phase == PH_INIT && !st.tls) emitEncRefused(stream, st, st.encRefused == 2, st.encTs, st.encRefusedTs);
  flushOrphan(stream, st, ts);
  streams.delete(stream);
  return st;
}

export function expire(now: u64): void {
  const ids = streams.keys();
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    const st = streams.get(id);
    // Given up with the connection open: still unanswered at `now`, so they last until then (a
    // hung statement is not the fastest one in db.client.operation.duration).
    while (st.count > 0 && now > st.front().ts && now - st.front().ts > TIMEOUT_NS) {
      const op = st.front();
      abandon(id, st, op, FLAG_NO_RESPONSE | FLAG_TIMEOUT, now);
      st.pop();
    }
    if (st.startupOpen && now > st.startup.ts && now - st.startup.ts > TIMEOUT_NS) emitStartup(id, st, FLAG_NO_RESPONSE | FLAG_TIMEOUT, now);
  }
}

