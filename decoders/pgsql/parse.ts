// Framing of the PostgreSQL byte streams. Request side: first untyped messages (StartupMessage,
// SSLRequest, GSSENCRequest, CancelRequest: int32 length, int32 code), then typed messages
// (byte type, int32 length including itself). Response side: typed messages, except the single
// 'S'/'N' (or 'G'/'N') byte answering SSLRequest (GSSENCRequest).
// When we join a connection mid-stream, message boundaries are found by scanning for a type byte
// with a plausible length followed by another plausible header (or the end of the bytes).
// Messages larger than BIG_MSG are decoded from their head and the rest is skipped, so the
// host never needs to hold a whole big DataRow/CopyData/Query.
import { DIR_REQUEST, DIR_RESPONSE, PARSE_NEEDS_MORE, PARSE_INVALID, PARSE_IGNORED } from "../abi/abi";
import {
  Stream, PH_INIT, PH_AUTH, PH_MID, PH_CANCEL, CODE_SSL_REQUEST, CODE_GSSENC_REQUEST, CODE_CANCEL_REQUEST,
  MAX_MSG_LEN, MID_MAX_MSG_LEN, BIG_MSG, BIG_HEAD, HEAD_CAP,
} from "./types";
import { onStartup, onCancel, onRequest, onResponse, onSkippedRequest, onResponseGap } from "./stitch";
import { emitUpgrade } from "./emit";
import { HeadPool, Head, held, forget, headBytes } from "../abi/head";

// Message type tables: 0 unknown, 1 variable length, 2 exactly 4 (no body), 3 'Z' (5),
// 4 'K' BackendKeyData (12..264: protocol 3.2 allows longer keys), 5 'R' (>= 8).
const REQ_TYPES: usize = memory.data<u8>([
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  // @ A B C D E F G H I J K L M N O
  0,0,1,1,1,1,1,0,2,0,0,0,0,0,0,0,
  // P Q R S T U V W X Y Z
  1,1,0,2,0,0,0,0,2,0,0,0,0,0,0,0,
  // ` a b c d e f
  0,0,0,2,1,0,1,0,0,0,0,0,0,0,0,0,
  // p
  1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
]);
const RESP_TYPES: usize = memory.data<u8>([
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  // 0 1 2 3
  0,2,2,2,0,0,0,0,0,0,0,0,0,0,0,0,
  // @ A B C D E F G H I J K L M N O
  0,1,0,1,1,1,0,1,1,2,0,4,0,0,1,0,
  // P Q R S T U V W X Y Z
  0,0,5,1,1,0,1,1,0,0,3,0,0,0,0,0,
  // ` a b c d e f
  0,0,0,2,1,0,0,0,0,0,0,0,0,0,2,0,
  // p q r s t u v
  0,0,0,2,1,0,1,0,0,0,0,0,0,0,0,0,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
]);

@inline function be32(p: usize): u32 { return bswap<u32>(load<u32>(p)); }

/**
 * Total size (type byte included) of the message whose header is at p, or -1 when the header is
 * not a valid one for this direction. `status` is the byte after a 'Z' header when available.
 */
// Inlined: it runs for every message, and a call costs as much as the checks (plus the fuel check).
@inline export function frameSize(dir: i32, p: usize, avail: i32, maxLen: u32): i64 {
  if (avail < 5) return -1;
  const t = load<u8>(p);
  const cls = load<u8>((dir == DIR_REQUEST ? REQ_TYPES : RESP_TYPES) + <usize>t);
  if (cls == 0) return -1;
  const len = be32(p + 1);
  if (len < 4 || len >= maxLen) return -1;
  if (cls == 2 && len != 4) return -1;
  if (cls == 3) {
    if (len != 5) return -1;
    if (avail >= 6) { const s = load<u8>(p + 5); if (s != 0x49 && s != 0x54 && s != 0x45) return -1; } // I T E
  }
  if (cls == 4 && (len < 12 || len > 264)) return -1;
  if (cls == 5 && len < 8) return -1;
  return <i64>len + 1;
}

/** First offset in [from, len) where a plausible message chain starts, or -1. */
function findBoundary(dir: i32, base: usize, from: i32, len: i32): i32 {
  for (let q = from; q + 5 <= len; q++) {
    const sz = frameSize(dir, base + <usize>q, len - q, MID_MAX_MSG_LEN);
    if (sz < 0) continue;
    const next = <i64>q + sz;
    if (next == <i64>len) return q;
    if (next > <i64>len) { if (q == from) return q; continue; }
    const rest = len - <i32>next;
    if (rest < 5) return q;
    if (frameSize(dir, base + <usize>next, rest, MID_MAX_MSG_LEN) >= 0) return q;
  }
  return -1;
}

/** Untyped first messages of the request side. Returns bytes consumed, or a ParseState. */
function parseUntyped(stream: u32, st: Stream, base: usize, p: i32, len: i32, ts: u64): i32 {
  while (st.phase == PH_INIT && p < len) {
    const b0 = load<u8>(base + <usize>p);
    if (b0 == 0x16) {
      // A TLS ClientHello without SSLRequest ("direct SSL"): nothing more to decode here.
      emitUpgrade(stream, st, ts, ts, false);
      st.tls = true;
      return PARSE_IGNORED;
    }
    if (b0 != 0) { st.phase = PH_MID; break; } // a typed message: we joined mid-stream
    if (len - p < 8) return p > 0 ? p : PARSE_NEEDS_MORE;
    const mlen = be32(base + <usize>p);
    const code = be32(base + <usize>p + 4);
    if (mlen == 8 && code == CODE_SSL_REQUEST) { st.encWait = 1; st.encTs = ts; p += 8; continue; }
    if (mlen == 8 && code == CODE_GSSENC_REQUEST) { st.encWait = 2; st.encTs = ts; p += 8; continue; }
    if (mlen == 16 && code == CODE_CANCEL_REQUEST) {
      if (len - p < 16) return p > 0 ? p : PARSE_NEEDS_MORE;
      onCancel(stream, st, base + <usize>p + 4, ts);
      st.phase = PH_CANCEL;
      return len;
    }
    if ((code >> 16) == 3 && mlen >= 8 && mlen <= 65536) {
      if (len - p < <i32>mlen) return p > 0 ? p : PARSE_NEEDS_MORE;
      onStartup(st, base + <usize>p + 4, <i32>mlen - 4, ts);
      st.reqAligned = true; st.respAligned = true;
      st.reqTrusted = true; st.respTrusted = true;
      return p + <i32>mlen;
    }
    return PARSE_INVALID; // an untyped message that is not PostgreSQL's
  }
  return p;
}

export function parseInput(stream: u32, st: Stream, dir: i32, base: usize, len: i32, ts: u64): i32 {
  if (st.tls) return PARSE_IGNORED;
  if (len <= 0) return PARSE_NEEDS_MORE;
  let p: i32 = 0;
  const req = dir == DIR_REQUEST;
  // The bytes held for an incomplete message come again at the start of this read.
  forget(req ? st.headReq : st.headResp);
  // The tail of a big message decoded from its head.
  const skip = req ? st.reqSkip : st.respSkip;
  if (skip > 0) {
    const take = skip < <u32>len ? <i32>skip : len;
    if (req) st.reqSkip -= <u32>take; else st.respSkip -= <u32>take;
    p = take;
    if (p >= len) return p;
  }
  if (st.phase == PH_CANCEL) return len;
  if (!req && st.encWait != 0) {
    const b = load<u8>(base + <usize>p);
    const gss = st.encWait == 2;
    if ((b == 0x53 && !gss) || (b == 0x47 && gss)) {
      emitUpgrade(stream, st, st.encTs, ts, gss);
      st.tls = true;
      return PARSE_IGNORED;
    }
    if (b == 0x4e) { st.encRefused = st.encWait; st.encRefusedTs = ts; }
    st.encWait = 0;
    if (b == 0x4e) { p++; if (p >= len) return p; } // 'N': the plain StartupMessage follows (or the client gives up)
  }
  if (req && st.phase == PH_INIT) {
    const r = parseUntyped(stream, st, base, p, len, ts);
    if (r < 0) return r;
    if (st.phase == PH_CANCEL || st.tls) return r;
    p = r;
    if (st.phase == PH_INIT || p >= len) return p > 0 ? p : PARSE_NEEDS_MORE;
  }
  if (!req && st.phase == PH_INIT) st.phase = PH_MID; // the server spoke first: joined mid-stream
  let aligned = req ? st.reqAligned : st.respAligned;
  let trusted = req ? st.reqTrusted : st.respTrusted;
  while (p < len) {
    if (!aligned) {
      const q = findBoundary(dir, base, p, len);
      if (q < 0) {
        // Keep the last bytes: a header may straddle the next chunk.
        if (len - p > 65536) p = len - 8;
        break;
      }
      if (req && q > p && st.phase == PH_MID) onSkippedRequest(stream, st, ts);
      p = q;
      aligned = true;
    }
    if (len - p < 5) break;
    const at = base + <usize>p;
    const total = frameSize(dir, at, len - p, MAX_MSG_LEN);
    if (total < 0) {
      if (trusted) { saveAlign(st, req, aligned, trusted); return PARSE_INVALID; }
      aligned = false;   // our guess of a boundary was wrong: hunt again past it
      p++;
      continue;
    }
    const type = load<u8>(at);
    const full = <u32>(total - 1);            // the length field: body + 4
    const avail = len - p;
    const whole = total <= <i64>avail;
    // A big message is decoded from its head; what is left of it is skipped as it arrives.
    if (!whole && !(<u32>total > BIG_MSG && avail >= 5 + BIG_HEAD)) { keepHead(st, req, at, avail, total, ts); break; }
    const body = whole ? <i32>full - 4 : avail - 5;
    // One call site each: onResponse is inlined (a call and its fuel check per message cost
    // about as much as the dispatch itself).
    if (req) onRequest(stream, st, type, at + 5, body, full, ts);
    else onResponse(stream, st, type, at + 5, body, full, ts);
    if (whole) { p += <i32>total; continue; }
    if (req) st.reqSkip = <u32>(total - <i64>avail); else st.respSkip = <u32>(total - <i64>avail);
    p = len;
    break;
  }
  saveAlign(st, req, aligned, trusted);
  return p > 0 ? p : PARSE_NEEDS_MORE;
}

function saveAlign(st: Stream, req: bool, aligned: bool, trusted: bool): void {
  if (req) { st.reqAligned = aligned; st.reqTrusted = trusted && aligned; }
  else { st.respAligned = aligned; st.respTrusted = trusted && aligned; }
}

// Kept starts of incomplete messages (Stream.headReq/headResp): at most 256 of 8.25 KiB; past
// that a stream without one loses a cut message whole, as before.
const heads = new HeadPool(<i64>HEAD_CAP, 256);

/** Keeps the start of an incomplete message (see Stream.headReq). */
function keepHead(st: Stream, req: bool, at: usize, avail: i32, total: i64, ts: u64): void {
  if (req) st.headReq = heads.keep(st.headReq, at, <i64>avail, total, ts);
  else st.headResp = heads.keep(st.headResp, at, <i64>avail, total, ts);
}

/** A stream object is dropped (not pooled): its head buffers are no longer in use. */
export function releaseHeads(st: Stream): void {
  heads.free(st.headReq);
  heads.free(st.headResp);
  st.headReq = 0;
  st.headResp = 0;
}

/** Bytes lost: inside a skipped tail they cost nothing; a message whose start the host held (its
 *  rest lost: a segment cut by the snaplen) is decoded from that start, as tshark decodes a cut
 *  segment, and the stream stays in step when the loss ends inside or at the end of it; elsewhere
 *  boundaries must be found again. */
export function parseGap(stream: u32, st: Stream, dir: i32, lost: u32): void {
  const req = dir == DIR_REQUEST;
  const head = req ? st.headReq : st.headResp;
  const have = held(head);
  forget(head);
  // Only when the loss ends inside or at the end of the held message (a segment cut by the
  // snaplen): a loss past it took more messages, and the recovery below reads the answers after
  // it (a cut CommandComplete read as a whole one would give its operation a wrong tag).
  const heldTotal = have > 0 ? changetype<Head>(head).total : 0;
  if (have >= 5 && <i64>lost >= have && heldTotal >= <i64>lost && !st.tls) {
    const at = headBytes(head);
    const ts = changetype<Head>(head).ts;
    const avail = <i32>heads.kept(have);
    const type = load<u8>(at);
    const full = <u32>(heldTotal - 1);
    if (req) onRequest(stream, st, type, at + 5, avail - 5, full, ts);
    else if (type == 0x43) onResponseGap(st); // a cut tag is no tag: what is pending is unknown
    else onResponse(stream, st, type, at + 5, avail - 5, full, ts);
    const rest = heldTotal - <i64>lost;
    if (rest > 0) { if (req) st.reqSkip = <u32>rest; else st.respSkip = <u32>rest; }
    return;
  } else {
    const skip = req ? st.reqSkip : st.respSkip;
    if (skip >= lost) {
      if (req) st.reqSkip -= lost; else st.respSkip -= lost;
      return;
    }
  }
  if (req) { st.reqSkip = 0; st.reqAligned = false; st.reqTrusted = false; }
  else { st.respSkip = 0; st.respAligned = false; st.respTrusted = false; onResponseGap(st); }
  if (st.phase == PH_INIT || st.phase == PH_AUTH) st.phase = PH_MID;
}

/** Confidence that these first bytes of a direction are PostgreSQL. */
export function detectBytes(dir: i32, base: usize, len: i32): i32 {
  if (dir == DIR_REQUEST && len >= 8 && load<u8>(base) == 0) {
    const mlen = be32(base);
    const code = be32(base + 4);
    if (mlen == 8 && (code == CODE_SSL_REQUEST || code == CODE_GSSENC_REQUEST)) return 100;
    if (mlen == 16 && code == CODE_CANCEL_REQUEST) return 100;
    if (code == 0x00030000 && mlen >= 8 && mlen <= 65536) return 100;
    return 0;
  }
  if (dir == DIR_RESPONSE && len >= 9 && load<u8>(base) == 0x52) {
    const sz = frameSize(dir, base, len, 65536);
    if (sz > 0 && be32(base + 1) <= 64) return 90;
  }
  // Typed messages: a chain of plausible headers that ends exactly at the end of the bytes.
  let p: i32 = 0;
  let n = 0;
  while (p < len) {
    const sz = frameSize(dir, base + <usize>p, len - p, MID_MAX_MSG_LEN);
    if (sz < 0) return 0;
    if (len - p >= 6 && load<u8>(base + <usize>p) == 0x44 && !describeOrDataRow(dir, load<u8>(base + <usize>p + 5))) return 0;
    p += <i32>sz;
    n++;
    if (p > len) return n >= 2 ? 40 : 20;
  }
  return n >= 2 ? 70 : 40;
}

/** 'D' is Describe from the frontend (Byte1 'S' or 'P' first) and DataRow from the backend (Int16
 *  column count first, at most 1664: the result-set column limit, docs "PostgreSQL Limits"): the
 *  body's first byte tells which, so a run of DataRows does not also read as Describes. */
@inline function describeOrDataRow(dir: i32, b: u8): bool {
  return dir == DIR_REQUEST ? b == 0x53 || b == 0x50 : b <= 0x06;
}

