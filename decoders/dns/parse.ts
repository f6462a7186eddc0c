// DNS framing: a UDP datagram is one message, consumed whole; TCP prefixes each message with a
// u16 length (RFC 1035 4.2.2, RFC 7766) and may carry several per read or split one across reads.
import { PARSE_NEEDS_MORE, PARSE_INVALID, DIR_REQUEST } from "../abi/abi";
import { MODE_UNKNOWN, MODE_UDP, MODE_TCP, HEADER_SIZE, StreamState } from "./types";
import { classify, u16be, CLASS_NEEDS_MORE, CLASS_INVALID } from "./message";
import { findState, newState, dropState, onMessage, heads } from "./stitch";
import { held, forget, headBytes, Head } from "../abi/head";

@inline function partialOf(st: StreamState, dir: i32): bool {
  return dir == DIR_REQUEST ? st.partial0 : st.partial1;
}
@inline function partialTsOf(st: StreamState, dir: i32): u64 {
  return dir == DIR_REQUEST ? st.partialTs0 : st.partialTs1;
}
@inline function setPartial(st: StreamState, dir: i32, on: bool, ts: u64): void {
  if (dir == DIR_REQUEST) { st.partial0 = on; st.partialTs0 = ts; }
  else { st.partial1 = on; st.partialTs1 = ts; }
}

/** Remembers when a message still incomplete after this call started (its first byte's time). */
@inline function holdPartial(st: StreamState, dir: i32, ts: u64): void {
  if (!partialOf(st, dir)) setPartial(st, dir, true, ts);
}

/** Keeps the start of an incomplete TCP message (StreamState.headKept). */
function keepHead(st: StreamState, dir: i32, at: usize, have: u32, total: u32, ts: u64): void {
  const head = heads.keep(st.headKept, at, <i64>have, <i64>total, ts);
  if (head == 0) return;
  st.headKept = head;
  st.headDir = dir;
}

export function parseStream(stream: u32, dir: i32, base: usize, len: u32, ts: u64): i32 {
  const found = findState(stream);
  const known = found !== null;
  const made = known ? found : newState(stream);
  if (made === null) return PARSE_INVALID; // decoder-wide stream budget spent
  const st = changetype<StreamState>(made);
  st.lastSeen = ts;
  if (st.mode == MODE_UNKNOWN) {
    const c = classify(base, len);
    if (c == CLASS_NEEDS_MORE) {
      holdPartial(st, dir, ts);
      // a length then a plausible header: a TCP message's start (classify)
      if (len >= HEADER_SIZE + 2) keepHead(st, dir, base, len, 2 + u16be(base), partialTsOf(st, dir));
      return PARSE_NEEDS_MORE;
    }
    if (c == CLASS_INVALID) {
      if (!known) dropState(stream);
      return PARSE_INVALID;
    }
    st.mode = <u8>c;
  }

  if (st.mode == MODE_UDP) {
    // The host hands over one datagram per call: whatever it holds, it is consumed.
    const start = partialOf(st, dir) ? partialTsOf(st, dir) : ts;
    setPartial(st, dir, false, 0);
    onMessage(st, stream, base, len, start, ts);
    return <i32>len;
  }

  // TCP
  let p: u32 = 0;
  // The rest of a message decoded from its start when the capture lost its middle (tcpGap).
  const skip = dir == DIR_REQUEST ? st.skip0 : st.skip1;
  if (skip > 0) {
    p = skip < len ? skip : len;
    if (dir == DIR_REQUEST) st.skip0 = skip - p; else st.skip1 = skip - p;
    if (p == len) return <i32>len;
  }
  // The bytes held for an incomplete message come again at the start of this read.
  if (st.headDir == dir) forget(st.headKept);
  let start = partialOf(st, dir) ? partialTsOf(st, dir) : ts;
  while (len - p >= 2) {
    const n = u16be(base + <usize>p);
    if (n < HEADER_SIZE) return PARSE_INVALID; // no DNS message is shorter: framing is lost
    if (p + 2 + n > len) {
      keepHead(st, dir, base + <usize>p, len - p, 2 + n, p == 0 ? start : ts);
      break;
    }
    onMessage(st, stream, base + <usize>p + 2, n, start, ts);
    setPartial(st, dir, false, 0);
    start = ts;
    p += 2 + n;
  }
  if (p < len) holdPartial(st, dir, ts);
  return p > 0 ? <i32>p : PARSE_NEEDS_MORE;
}

/**
 * TCP bytes lost. When the host held the start of a message and the loss ends inside it or at its
 * end (a segment cut by the snaplen), that start is decoded as the message cut short (sections past
 * it are FLAG_UNKNOWN, as with a cut datagram), the rest of it is skipped as it comes and the
 * framing holds. Otherwise the framing is lost: false.
 */
export function tcpGap(stream: u32, st: StreamState, dir: i32, lost: u32): bool {
  const have = st.headDir == dir ? held(st.headKept) : 0;
  if (have < <i64>(2 + HEADER_SIZE)) return false;
  const h = changetype<Head>(st.headKept);
  const total = h.total;
  if (<i64>lost < have || <i64>lost > total) return false;
  const ts = h.ts;
  const kept = <u32>heads.kept(have);
  forget(st.headKept);
  st.mode = MODE_TCP; // a stream cut in its first message: that message was length-prefixed
  onMessage(st, stream, headBytes(st.headKept) + 2, kept - 2, ts, ts);
  setPartial(st, dir, false, 0);
  const rest = <u32>(total - <i64>lost);
  if (dir == DIR_REQUEST) st.skip0 = rest; else st.skip1 = rest;
  return true;
}
