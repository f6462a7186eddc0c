// Stream ↔ exchange: HEADERS blocks become a stream's request, response and trailers; DATA is
// counted (and split into gRPC messages); END_STREAM on the response or RST_STREAM ends it.
import { DIR_REQUEST, FLAG_NO_RESPONSE, FLAG_TIMEOUT, FLAG_UNKNOWN } from "../abi/abi";
import {
  Conn, H2Stream, GrpcDir, MAX_STREAMS, STREAM_LISTS_CAP, HEADER_LIST_CAP, GRPC_LENS_CAP, STREAM_TIMEOUT_NS,
  HF_NAME_UNKNOWN, HF_VALUE_UNKNOWN, HINT_WAIT_NS, RST_WAIT_NS, STREAM_COST, LIST_FLOOR, streamsAdd, streamsOver, streamsPast,
} from "./types";
import {
  fieldCount, fieldNamePtr, fieldNameLen, fieldValPtr, fieldValLen, fieldFlags, hpUnknown, hpTruncated,
} from "./hpack";
import { emitExchange, findHeader, hasUnknownName, listValPtr, listValLen } from "./emit";
import { forgetHints } from "./hint";

// ---- serialised header list: per field u8 flags | u32 nameLen | name | u32 valueLen | value ----

/**
 * Credentials never leave the decoder in the raw header lists: the host's redaction stage keys on
 * attribute names and cannot see inside these lists, so the values of these fields are replaced
 * here (the same default list as the host's pipeline.redaction.headers).
 */
const REDACTED = "REDACTED";
function isSecret(p: usize, n: u32): bool {
  if (n == 6) return nameIs(p, n, "cookie");
  if (n == 10) return nameIs(p, n, "set-cookie");
  if (n == 13) return nameIs(p, n, "authorization");
  if (n == 19) return nameIs(p, n, "proxy-authorization");
  return false;
}
/** The n bytes at p equal the lower-case ASCII `s`, ignoring the case of the bytes. */
export function nameIs(p: usize, n: u32, s: string): bool {
  for (let i: u32 = 0; i < n; i++) {
    let c = <u32>load<u8>(p + <usize>i);
    if (c >= 65 && c <= 90) c += 32;
    if (c != <u32>s.charCodeAt(<i32>i)) return false;
  }
  return true;
}

/** Serialises the field list of the block just decoded; sets `serTruncated` when cut. */
let serTruncated = false;
function serialise(cap: i32 = HEADER_LIST_CAP): Uint8Array {
  serTruncated = false;
  let total: i32 = 0;
  let n = 0;
  for (; n < fieldCount; n++) {
    const vl = isSecret(fieldNamePtr(n), fieldNameLen(n)) ? REDACTED.length : <i32>fieldValLen(n);
    const sz = 9 + <i32>fieldNameLen(n) + vl;
    if (total + sz > cap) { serTruncated = true; break; }
    total += sz;
  }
  const out = new Uint8Array(total);
  let p = out.dataStart;
  for (let i = 0; i < n; i++) {
    const nl = fieldNameLen(i);
    store<u8>(p, <u8>fieldFlags(i));
    store<u32>(p + 1, nl);
    memory.copy(p + 5, fieldNamePtr(i), nl);
    p += 5 + <usize>nl;
    if (isSecret(fieldNamePtr(i), nl)) {
      store<u32>(p, <u32>REDACTED.length);
      for (let k = 0; k < REDACTED.length; k++) store<u8>(p + 4 + <usize>k, <u8>REDACTED.charCodeAt(k));
      p += 4 + <usize>REDACTED.length;
      continue;
    }
    const vl = fieldValLen(i);
    store<u32>(p, vl);
    memory.copy(p + 4, fieldValPtr(i), vl);
    p += 4 + <usize>vl;
  }
  return out;
}

/** Appends one known field to a serialised list at `at` (room checked by the caller: 9 +
 *  nl + vl bytes, or less for a redacted value); returns the new end. */
export function appendField(list: Uint8Array, at: i32, np: usize, nl: u32, vp: usize, vl: u32): i32 {
  let p = list.dataStart + <usize>at;
  store<u8>(p, 0);
  store<u32>(p + 1, nl);
  memory.copy(p + 5, np, nl);
  p += 5 + <usize>nl;
  if (isSecret(np, nl)) {
    store<u32>(p, <u32>REDACTED.length);
    for (let k = 0; k < REDACTED.length; k++) store<u8>(p + 4 + <usize>k, <u8>REDACTED.charCodeAt(k));
    p += 4 + <usize>REDACTED.length;
  } else {
    store<u32>(p, vl);
    memory.copy(p + 4, vp, vl);
    p += 4 + <usize>vl;
  }
  return <i32>(p - list.dataStart);
}

// ---- hints (hint.ts): block slot = dir * 2 + (trailers ? 1 : 0) ----

function slotList(s: H2Stream, slot: i32): Uint8Array | null {
  if (slot == 0) return s.reqHdr;
  if (slot == 1) return s.reqTrl;
  if (slot == 2) return s.respHdr;
  return s.respTrl;
}

function setSlotList(s: H2Stream, slot: i32, l: Uint8Array): void {
  if (slot == 0) s.reqHdr = l;
  else if (slot == 1) s.reqTrl = l;
  else if (slot == 2) s.respHdr = l;
  else s.respTrl = l;
}

/** Every field the wire decoded (name and/or value) is the same in the hint list, in order;
 *  the wire list may be shorter (a block that failed mid-way). */
function agrees(wire: Uint8Array, hint: Uint8Array, hintLen: i32): bool {
  const wb = wire.dataStart;
  const hb = hint.dataStart;
  let wo: u32 = 0;
  let ho: u32 = 0;
  while (wo + 9 <= <u32>wire.length) {
    if (ho + 9 > <u32>hintLen) return false;
    const f = <u32>load<u8>(wb + <usize>wo);
    const wnl = load<u32>(wb + <usize>wo + 1);
    const wvo = wo + 5 + wnl;
    const wvl = load<u32>(wb + <usize>wvo);
    const hnl = load<u32>(hb + <usize>ho + 1);
    const hvo = ho + 5 + hnl;
    const hvl = load<u32>(hb + <usize>hvo);
    if ((f & HF_NAME_UNKNOWN) == 0 && (wnl != hnl || memory.compare(wb + <usize>wo + 5, hb + <usize>ho + 5, wnl) != 0)) return false;
    if ((f & HF_VALUE_UNKNOWN) == 0 && (wvl != hvl || memory.compare(wb + <usize>wvo + 4, hb + <usize>hvo + 4, wvl) != 0)) return false;
    wo = wvo + 4 + wvl;
    ho = hvo + 4 + hvl;
  }
  return true;
}

/**
 * Fills a block with unknown fields from the hint list of its slot: only a list with exactly
 * the block's field count (or, at the last moment, any list for a block whose count is
 * unknown) that agrees with every field the wire did decode. Returns whether it filled.
 */
function fillFromHints(c: Conn, s: H2Stream, slot: i32, last: bool): bool {
  const want = unchecked(s.want[slot]);
  if (want == 0 || !c.hints.has(s.id)) return false;
  const hs = c.hints.get(s.id);
  const list = unchecked(hs.lists[slot]);
  if (hs.cut || list == null) return false;
  const n = unchecked(hs.counts[slot]);
  if (want > 0 ? n != want : !last) return false;
  const used = unchecked(hs.used[slot]);
  const wire = slotList(s, slot);
  if (wire != null && !agrees(wire, list, used)) return false;
  const l = new Uint8Array(used);
  memory.copy(l.dataStart, list.dataStart, <usize>used);
  setSlotList(s, slot, l);
  unchecked(s.want[slot] = 0);
  s.unknownBlocks--;
  s.recovered = true;
  if (slot == 0 && isGrpcContentType(l)) s.grpc = true;
  if (slot == 2 && !s.grpc && s.reqHdr == null && isGrpcContentType(l)) s.grpc = true;
  return true;
}

/** A hint for stream sid arrived (hint.ts): fill what it can; a held exchange it completes goes. */
export function onHint(c: Conn, connId: u32, sid: u32): void {
  if (!c.streams.has(sid)) return;
  const s = c.streams.get(sid);
  for (let slot = 0; slot < 4; slot++) fillFromHints(c, s, slot, false);
  if (s.held && s.unknownBlocks == 0) finishStream(c, connId, s, s.heldFlags);
}

function getStream(c: Conn, connId: u32, sid: u32, ts: u64, create: bool): H2Stream | null {
  if (c.streams.has(sid)) return c.streams.get(sid);
  if (!create) return null;
  if (c.streams.size >= MAX_STREAMS) evictOldest(c, connId, ts);
  else if (c.streams.size > 0 && streamsOver()) {
    // past the decoder's STREAMS_BUDGET a connection makes room from its own streams
    streamsPast();
    evictOldest(c, connId, ts);
  }
  const s = new H2Stream();
  s.id = sid;
  s.tsStart = ts;
  s.lastTs = ts;
  c.streams.set(sid, s);
  streamsAdd(STREAM_COST);
  return s;
}

/** Before a list is stored for s: past STREAMS_BUDGET the connection's other streams make room
 *  (least recently active first); with none left, the list is cut to LIST_FLOOR bytes. */
function listRoom(c: Conn, connId: u32, s: H2Stream, ts: u64): i32 {
  if (!streamsOver()) return HEADER_LIST_CAP;
  streamsPast();
  for (let n = c.streams.size * 2; n > 0 && streamsOver() && c.streams.size > 1; n--) evictOldest(c, connId, ts, s);
  return streamsOver() ? LIST_FLOOR : HEADER_LIST_CAP;
}

/** The oldest stream makes room: not ended, it was still open when this new stream (at `ts`)
 *  pushed it out, and ends there; unanswered so far, whether it was answered later is unknown
 *  (h2load -m 1100 against Node: every one was), not a stream without response. `keep` is never
 *  the one. */
function evictOldest(c: Conn, connId: u32, ts: u64, keep: H2Stream | null = null): void {
  const keys = c.streams.keys();
  let oldest: H2Stream | null = null;
  for (let i = 0; i < keys.length; i++) {
    const s = c.streams.get(keys[i]);
    if (s !== keep && (oldest == null || s.lastTs < oldest.lastTs)) oldest = s;
  }
  if (oldest == null) return;
  if (oldest.tsEnd == 0 && ts > oldest.lastTs) oldest.tsEnd = ts;
  finishStream(c, connId, oldest, oldest.respHdr == null ? FLAG_UNKNOWN : 0);
}

function finishStream(c: Conn, connId: u32, s: H2Stream, extraFlags: i32): void {
  if (c.hinted && s.unknownBlocks > 0 && !s.held) {
    // The peer's library reports the fields after it decoded them, i.e. after the bytes we
    // just parsed: wait for them a little (tick() gives up after HINT_WAIT_NS).
    s.held = true;
    s.heldFlags = extraFlags;
    s.heldSince = s.lastTs;
    return;
  }
  emit(c, connId, s, extraFlags);
  dropStream(c, s);
}

function dropStream(c: Conn, s: H2Stream): void {
  c.listBytes -= s.listBytes;
  streamsAdd(-(<i64>s.listBytes + STREAM_COST));
  c.streams.delete(s.id);
}

/** A header list of `n` bytes is stored for s: past the connection's STREAM_LISTS_CAP the oldest
 *  other streams are flushed. */
function countList(c: Conn, connId: u32, s: H2Stream, n: i32, ts: u64): void {
  s.listBytes += n;
  c.listBytes += n;
  streamsAdd(n);
  // bounded: a stream waiting for hints is held by its first flush and dropped by the next
  for (let n = c.streams.size * 2; n > 0 && c.listBytes > STREAM_LISTS_CAP && c.streams.size > 1; n--) evictOldest(c, connId, ts, s);
}

function emit(c: Conn, connId: u32, s: H2Stream, flags: i32): void {
  // request bytes lost after its request ended, and no response end seen: a reset may have been in them
  if (s.reqLostAfterEnd && !s.respEnd) s.unknown = true;
  // bytes lost while a side was open, and its end not seen after them (or the response's
  // headers not seen: they may have been among them)
  if ((s.reqBodyLost && !s.reqEnd) || (s.respBodyLost && (!s.respEnd || s.respHdr == null))) s.unknown = true;
  for (let slot = 0; slot < 4; slot++) fillFromHints(c, s, slot, true);
  if (s.lateRst >= 0 && s.unknownBlocks > 0 && s.rstCode < 0) s.rstCode = s.lateRst;
  emitExchange(connId, s, flags, c.swap == 1);
  forgetHints(c, s.id);
}

@inline function isGrpcContentType(list: Uint8Array | null): bool {
  if (list == null) return false;
  const off = findHeader(list, "content-type");
  if (off < 0) return false;
  const p = listValPtr(list, off);
  const n = listValLen(list, off);
  if (n < 16) return false;
  const s = "application/grpc";
  for (let i = 0; i < 16; i++) {
    let ch = <u32>load<u8>(p + <usize>i);
    if (ch >= 65 && ch <= 90) ch += 32;
    if (ch != <u32>s.charCodeAt(i)) return false;
  }
  return n == 16 || load<u8>(p + 16) == 0x2b /* + */ || load<u8>(p + 16) == 0x3b /* ; */ || load<u8>(p + 16) == 0x2d /* - (grpc-web) */;
}

/** 1xx responses are interim (RFC 9113 §8.1): the final response follows in another block. */
function isInterim(list: Uint8Array): bool {
  const off = findHeader(list, ":status");
  if (off < 0) return false;
  return listValLen(list, off) == 3 && load<u8>(listValPtr(list, off)) == 0x31;
}

/** A complete header block (HEADERS + CONTINUATION) of stream `sid` was decoded. */
export function onHeaders(c: Conn, connId: u32, dir: i32, sid: u32, endStream: bool, bytes: u32, ts: u64): void {
  // A response to a stream we no longer hold (flushed to make room) has no request: no span. It
  // must not push out a stream still waiting for its own response: that one's answer would then
  // find no stream either, and so on, until no response of the connection met its request.
  // Past the decoder's STREAMS_BUDGET such a response is not kept either (no span is made of it).
  const s = getStream(c, connId, sid, ts, dir == DIR_REQUEST || (c.streams.size < MAX_STREAMS && !streamsOver()));
  if (s == null) return;
  s.lastTs = ts;
  const list = serialise(listRoom(c, connId, s, ts));
  countList(c, connId, s, list.length, ts);
  if (hpTruncated || serTruncated) s.truncated = true;
  if (dir == DIR_REQUEST) s.reqBytes += bytes; else s.respBytes += bytes;
  const slot = placeBlock(c, connId, s, dir, list, endStream, ts);
  if (slot < 0) return;
  if (hpUnknown) {
    s.unknownBlocks++;
    unchecked(s.want[slot] = fieldCount > 0 && !serTruncated ? fieldCount : -1);
    fillFromHints(c, s, slot, false);
  }
  if (dir == DIR_REQUEST && slot == 0 && refusable(c, s)) {
    // opened after the server's GOAWAY, above its last stream id: refused unprocessed (onGoaway)
    refuse(c, connId, s, ts);
    return;
  }
  if (dir != DIR_REQUEST && endStream) {
    s.respEnd = true;
    s.tsEnd = ts;
    finishStream(c, connId, s, 0);
  } else if (dir != DIR_REQUEST && s.rstWait && s.respHdr != null) {
    // the response to a stream the client reset: its status is what there is to have
    s.tsEnd = ts;
    finishStream(c, connId, s, 0);
  }
}

/** An interim response is not the exchange's status, but its fields are what the server sent
 *  (Link of a 103, for one): kept after each other in one list, up to 4 KiB. */
function keepInterim(s: H2Stream, list: Uint8Array): void {
  const had = s.respInfo;
  if (had == null) { s.respInfo = list; return; }
  if (had.length + list.length > 4096) { s.truncated = true; return; }
  const both = new Uint8Array(had.length + list.length);
  memory.copy(both.dataStart, had.dataStart, <usize>had.length);
  memory.copy(both.dataStart + <usize>had.length, list.dataStart, <usize>list.length);
  s.respInfo = both;
}

/** Stores a decoded block as the stream's headers or trailers; returns its slot, or -1 for an
 *  interim (1xx) response (kept apart, keepInterim). */
function placeBlock(c: Conn, connId: u32, s: H2Stream, dir: i32, list: Uint8Array, endStream: bool, ts: u64): i32 {
  // Headers carry pseudo-header fields, trailers never do (RFC 9113 §8.1). After a mid-stream
  // join the first block we see may be trailers: tell them apart by that, not by order.
  if (dir == DIR_REQUEST) {
    if (endStream) s.reqEnd = true;
    if (s.reqHdr == null && !isTrailers(list, ":method", endStream)) {
      s.reqHdr = list;
      s.tsStart = ts;
      if (isGrpcContentType(list)) s.grpc = true;
      else if (hasUnknownName(list) && findHeader(list, "content-type") < 0) s.grpcMaybe = true;
      return 0;
    }
    s.reqTrl = list;
    return 1;
  }
  if (s.respHdr == null && !isTrailers(list, ":status", endStream)) {
    if (isInterim(list)) { keepInterim(s, list); return -1; }
    s.respHdr = list;
    if (!s.grpc && s.reqHdr == null && isGrpcContentType(list)) s.grpc = true;
    return 2;
  }
  s.respTrl = list;
  return 3;
}

/**
 * A first block without the side's pseudo-header: trailers when every name is known; with
 * unknown names, trailers when it ends the stream (headers that end a stream are rarer).
 */
function isTrailers(list: Uint8Array, pseudo: string, endStream: bool): bool {
  if (findHeader(list, pseudo) >= 0) return false;
  if (!hasUnknownName(list)) return list.length > 0;
  return endStream;
}

/** The HTTP/1.1 request of an h2c upgrade (upgrade.ts): stream 1, the client's side complete. */
export function onUpgradeRequest(c: Conn, connId: u32, list: Uint8Array, bytes: u32, ts: u64): void {
  const s = getStream(c, connId, 1, ts, true)!;
  s.h2c = true;
  s.reqBytes += bytes;
  placeBlock(c, connId, s, DIR_REQUEST, list, true, ts);
}

/** The http1 decoder left fields of the h2c upgrade request out of what it handed over. */
export function upgradeCut(c: Conn): void {
  const s = getStream(c, 0, 1, 0, false);
  if (s != null) s.truncated = true;
}

/** Body bytes of the h2c upgrade request. */
export function onUpgradeBody(c: Conn, n: u32): void {
  const s = getStream(c, 0, 1, 0, false);
  if (s == null) return;
  s.reqBody += n;
  s.reqBytes += n;
}

/** PUSH_PROMISE: the server sends the request of stream `promised` itself. */
export function onPushPromise(c: Conn, connId: u32, promised: u32, bytes: u32, ts: u64): void {
  const s = getStream(c, connId, promised, ts, true)!;
  s.lastTs = ts;
  s.reqHdr = serialise(listRoom(c, connId, s, ts));
  countList(c, connId, s, s.reqHdr!.length, ts);
  if (hpUnknown) { s.unknown = true; s.hpackUnknown = true; }
  if (hpTruncated || serTruncated) s.truncated = true;
  s.pushed = true;
  s.reqEnd = true;
  s.respBytes += bytes;
  if (isGrpcContentType(s.reqHdr)) s.grpc = true;
}

/** A DATA frame header of `bytes` (header + payload) for stream sid. */
export function onDataFrame(c: Conn, dir: i32, sid: u32, bytes: u32, ts: u64): void {
  const s = getStream(c, 0, sid, ts, false);
  if (s == null) return;
  s.lastTs = ts;
  if (dir == DIR_REQUEST) s.reqBytes += bytes; else s.respBytes += bytes;
}

/**
 * DATA payload bytes (padding excluded) of stream sid. `frameContent` is the frame's whole
 * content length when this chunk starts it (0 otherwise).
 */
export function onData(c: Conn, dir: i32, sid: u32, ptr: usize, n: u32, frameContent: u32): void {
  const s = getStream(c, 0, sid, 0, false);
  if (s == null) return;
  if (dir == DIR_REQUEST) s.reqBody += n; else s.respBody += n;
  if (!s.grpc && !s.grpcMaybe) return;
  let g: GrpcDir;
  if (dir == DIR_REQUEST) {
    if (s.gReq == null) s.gReq = new GrpcDir();
    g = s.gReq!;
  } else {
    if (s.gResp == null) s.gResp = new GrpcDir();
    g = s.gResp!;
  }
  if (g.lost) {
    // After lost bytes, pick the framing up again at a DATA frame that holds exactly one whole
    // message (the common layout); until then nothing is counted. The exchange stays UNKNOWN.
    if (frameContent < 5 || n < 5) return;
    const flag = <u32>load<u8>(ptr);
    const mlen = bswap<u32>(load<u32>(ptr + 1));
    if (flag > 1 || <u64>mlen + 5 != <u64>frameContent) return;
    g.lost = false;
    g.have = 0;
    g.remain = 0;
  }
  grpcFrames(g, ptr, n);
}

/** gRPC length-prefixed messages: 1 byte compressed flag, 4 bytes big-endian length, message. */
function grpcFrames(g: GrpcDir, ptr: usize, n: u32): void {
  let p = ptr;
  const end = ptr + <usize>n;
  while (p < end) {
    if (g.remain > 0) {
      const avail = <u32>(end - p);
      const take = g.remain < avail ? g.remain : avail;
      g.remain -= take;
      p += <usize>take;
      continue;
    }
    const b = <u32>load<u8>(p);
    p++;
    if (g.have == 0) { g.flag = b; g.len = 0; }
    else g.len = (g.len << 8) | b;
    g.have++;
    if (g.have == 5) {
      g.have = 0;
      g.remain = g.len;
      // gRPC-Web puts trailers in the body as a frame with the high flag bit: not a message.
      if ((g.flag & 0x7e) != 0) { g.bad = true; g.lost = true; return; }
      if ((g.flag & 0x80) == 0) {
        g.msgs++;
        if (g.flag & 1) g.compressed++;
        if (g.nLens < GRPC_LENS_CAP) { unchecked(g.lens[g.nLens] = g.len); g.nLens++; }
      }
    }
  }
}

/** END_STREAM on a DATA frame. */
export function onEndStream(c: Conn, connId: u32, dir: i32, sid: u32, ts: u64): void {
  const s = getStream(c, connId, sid, ts, false);
  if (s == null) return;
  s.lastTs = ts;
  if (dir == DIR_REQUEST) { s.reqEnd = true; return; }
  s.respEnd = true;
  s.tsEnd = ts;
  finishStream(c, connId, s, s.respHdr == null ? unanswered(s, FLAG_NO_RESPONSE) : 0);
}

export function onRst(c: Conn, connId: u32, dir: i32, sid: u32, code: u32, ts: u64): void {
  const s = getStream(c, connId, sid, ts, false);
  if (s == null) return;
  // Already ended and only waiting for hints (finishStream): once they name its fields its
  // outcome is known, as for a stream already reported, and a reset after it (grpc-js resets a
  // call its deadline timer ended even when the server's DEADLINE_EXCEEDED came first) is not the
  // exchange's error; if they never do, the reset is what we know (emit()).
  if (s.held) { if (s.lateRst < 0) s.lateRst = <i64>code; return; }
  s.tsEnd = ts;
  s.lastTs = ts;
  if (dir == DIR_REQUEST && s.respHdr != null && s.respBodyLost && !s.respEnd) {
    // The response had begun and its end may have been in lost bytes (a write longer than the
    // capture: curl resets such a stream with STREAM_CLOSED after reading all of it): whether
    // the client cancelled it or it had ended is unknown, not an error.
    finishStream(c, connId, s, FLAG_UNKNOWN);
    return;
  }
  s.rstCode = <i64>code;
  if (dir == DIR_REQUEST && s.respHdr == null && !s.rstWait) {
    // The client gave up (a gRPC deadline, a cancel) before any response: the server's answer
    // may already be on its way (RFC 9113 §5.1, frames in flight), e.g. a Trailers-Only
    // DEADLINE_EXCEEDED. Wait for it up to RST_WAIT_NS (expire) before reporting none.
    s.rstWait = true;
    return;
  }
  finishStream(c, connId, s, s.respHdr == null ? FLAG_NO_RESPONSE : 0);
}

/** RST_STREAM's REFUSED_STREAM (RFC 9113 §7): what a stream a GOAWAY leaves unprocessed is closed with. */
const REFUSED_STREAM: i64 = 7;

/**
 * GOAWAY from the server (RFC 9113 §6.8): the streams the client opened above `last` were not
 * processed and are closed; the client may retry them on another connection. Its HTTP/2 library
 * closes them at once as refused (nghttp2 and Node: "Stream closed with error code
 * NGHTTP2_REFUSED_STREAM"), so they end here, REFUSED_STREAM, not at the connection's close as
 * unanswered (a Node server's goaway() with two more requests in flight: both lasted until the
 * close, no error). Streams the client opens after it, above `last`, are refused in onHeaders.
 * The last stream id never grows between GOAWAYs (§6.8), so the lowest one stands. A client's
 * GOAWAY (about pushed streams, which it may still be sent) changes nothing here.
 */
export function onGoaway(c: Conn, connId: u32, dir: i32, last: u32, ts: u64): void {
  // which side sent it must be known: a client's GOAWAY (Node's close() sends last stream 0)
  // read as the server's would refuse every open stream
  if (c.swap < 0 || dir == DIR_REQUEST || last >= c.goawayLast) return;
  c.goawayLast = last;
  const keys = c.streams.keys();
  for (let i = 0; i < keys.length; i++) {
    const s = c.streams.get(keys[i]);
    if (refusable(c, s)) refuse(c, connId, s, ts);
  }
}

/** A client stream above the server's GOAWAY last stream id, not answered nor reset. */
function refusable(c: Conn, s: H2Stream): bool {
  return (s.id & 1) == 1 && s.id > c.goawayLast && !s.held && !s.rstWait && s.respHdr == null;
}

function refuse(c: Conn, connId: u32, s: H2Stream, ts: u64): void {
  s.rstCode = REFUSED_STREAM;
  if (ts > s.tsStart) s.tsEnd = ts; else s.tsEnd = s.tsStart;
  s.lastTs = s.tsEnd;
  finishStream(c, connId, s, FLAG_NO_RESPONSE);
}

/** Bytes of one direction were lost: gRPC framing of open streams is unknown from here. */
export function onLost(c: Conn, dir: i32): void {
  const keys = c.streams.keys();
  for (let i = 0; i < keys.length; i++) {
    const s = c.streams.get(keys[i]);
    // A side that had ended (END_STREAM seen) sends no more DATA or headers on the stream (RFC
    // 9113 §5.1): the lost frames were other streams'. Only a client's RST_STREAM may still have
    // been among them: that matters only if no response completes the exchange (emit()).
    if (dir == DIR_REQUEST) {
      if (s.reqEnd) { s.reqLostAfterEnd = true; continue; }
      s.reqBodyLost = true;
      s.reqSizeLost = true;
    } else {
      if (s.respEnd) continue;
      s.respBodyLost = true;
      s.respSizeLost = true;
    }
    // Its side still open: some of the lost frames may have been its DATA (sizes left out), or
    // its end — unknown only if no END_STREAM of that side comes after them (emit()): the TLS
    // tracer keeps the tail of a long write, where it usually is.
    grpcLost(s, dir);
  }
}

/** The header block of stream sid was cut by lost bytes (parse.ts cutBlock): frames of unknown
 *  length followed it. */
export function onBlockCut(c: Conn, dir: i32, sid: u32): void {
  const s = getStream(c, 0, sid, 0, false);
  if (s == null) return;
  if (dir == DIR_REQUEST) s.reqSizeLost = true; else s.respSizeLost = true;
}

/** `content` bytes inside a DATA payload of stream sid were lost: the frame header gave its
 *  length, so the body size stays exact and the frame after it is in step; its gRPC framing is
 *  unknown (a plain HTTP exchange stays exact). */
export function onDataLost(c: Conn, dir: i32, sid: u32, content: u32): void {
  const s = getStream(c, 0, sid, 0, false);
  if (s == null) return;
  grpcLost(s, dir);
  if (dir == DIR_REQUEST) s.reqBody += content; else s.respBody += content;
}

/** gRPC message framing of one side of s is unknown from here; for a stream that is no gRPC
 *  call nothing it reports came from its body but the size. */
function grpcLost(s: H2Stream, dir: i32): void {
  if (s.grpc || s.grpcMaybe) s.unknown = true;
  if (dir == DIR_REQUEST) {
    if (s.gReq == null) s.gReq = new GrpcDir();
    s.gReq!.lost = true;
  } else {
    if (s.gResp == null) s.gResp = new GrpcDir();
    s.gResp!.lost = true;
  }
}

/** The connection closed: every open exchange is reported as it stands. */
export function flushAll(c: Conn, connId: u32): void {
  const keys = c.streams.keys();
  for (let i = 0; i < keys.length; i++) {
    const s = c.streams.get(keys[i]);
    // A response that began (final HEADERS) and was cut by the close was answered, its end
    // unseen: FLAG_UNKNOWN, as at the idle timeout and as http1 reports a body cut by the close.
    emit(c, connId, s, s.held ? s.heldFlags : s.respEnd ? 0 : s.respHdr != null ? FLAG_UNKNOWN : unanswered(s, FLAG_NO_RESPONSE));
  }
  streamsAdd(-(<i64>c.listBytes + <i64>c.streams.size * STREAM_COST));
  c.streams.clear();
  c.listBytes = 0;
  c.hints.clear();
  c.hintBytes = 0;
}

/** An exchange whose response end we did not see: no response — unless bytes of the response
 *  direction were lost while it was open (capture limit, ring full), which may have held it: then
 *  whether it was answered is unknown (FLAG_UNKNOWN), not a failure. */
function unanswered(s: H2Stream, flags: i32): i32 {
  return s.respBodyLost ? FLAG_UNKNOWN : flags;
}

export function expire(c: Conn, connId: u32, now: u64): void {
  const keys = c.streams.keys();
  for (let i = 0; i < keys.length; i++) {
    const s = c.streams.get(keys[i]);
    if (s.held) {
      // The hints did not come (or did not agree): report the exchange as the wire told it.
      if (now > s.heldSince && now - s.heldSince > HINT_WAIT_NS) { emit(c, connId, s, s.heldFlags); dropStream(c, s); }
      continue;
    }
    if (s.rstWait && now > s.lastTs && now - s.lastTs > RST_WAIT_NS) { finishStream(c, connId, s, unanswered(s, FLAG_NO_RESPONSE)); continue; }
    if (now > s.lastTs && now - s.lastTs > STREAM_TIMEOUT_NS) {
      // Given up while the connection is open: it was still unfinished at `now`, and lasts until
      // then. (A reset stream above ended at its RST_STREAM: a cancel, not a timeout.) A stream
      // whose response had begun is a long-lived one gone quiet (a server-streaming or bidi gRPC
      // call, a watch, a long poll): answered, not timed out, only its end unseen (FLAG_UNKNOWN).
      s.tsEnd = now;
      finishStream(c, connId, s, s.respHdr != null ? FLAG_UNKNOWN : unanswered(s, FLAG_NO_RESPONSE | FLAG_TIMEOUT));
    }
  }
}

