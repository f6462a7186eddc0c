// Query <-> response matching per stream: by message id, and by the question (name
// case-insensitively, type) when both sides carry one. QR tells queries from responses, so a
// capture taken on the server side stitches the same way as one taken on the client.
import {
  StreamState, Pending, MAX_PENDING, MAX_PENDING_TOTAL, MAX_STREAMS, MAX_QUERY_OPTIONS,
  QUERY_TIMEOUT_NS, IDLE_STREAM_NS, F_QR, T_ANY, T_CNAME, HEAD_CAP, HEAD_BUFFERS,
} from "./types";
import { warn } from "../abi/emit";
import { HeadPool } from "../abi/head";
import { msg, walkMessage, readName, nameScratch, namePtr, nameLen, u16be } from "./message";
import { emitExchange } from "./emit";
import { FLAG_TIMEOUT } from "../abi/abi";

export const streams = new Map<u32, StreamState>();
// Pending slots live in one decoder-wide table (a burst on one stream does not pin memory there)
// and are chained by index: per stream oldest first, the unused ones in a free list. No array
// operations or GC write barriers per message.
// A static table of slot addresses (no managed array: its accesses cost GC bookkeeping).
const slots: usize = memory.data(MAX_PENDING_TOTAL * 4);
let slotCount: i32 = 0; // never more than MAX_PENDING_TOTAL: only made while fewer are live
let freeHead: i32 = -1;
let liveTotal: i32 = 0;
let warnedPending = false;
let warnedStreams = false;

@inline function slotAt(i: i32): Pending {
  return changetype<Pending>(load<usize>(slots + (<usize>i << alignof<usize>())));
}

function takeSlot(): i32 {
  const f = freeHead;
  if (f >= 0) {
    freeHead = slotAt(f).next;
    return f;
  }
  const i = slotCount++;
  store<usize>(slots + (<usize>i << alignof<usize>()), changetype<usize>(new Pending()));
  return i;
}

function release(i: i32): void {
  liveTotal--;
  slotAt(i).next = freeHead;
  freeHead = i;
}

/** Unlinks the stream's oldest pending query; its index. */
function popOldest(st: StreamState): i32 {
  const i = st.head;
  st.head = slotAt(i).next;
  if (st.head < 0) st.tail = -1;
  st.count--;
  return i;
}

// Most calls continue the stream of the previous call: remember it to skip the hash lookups.
let lastStream: u32 = 0;
let lastState: StreamState | null = null;

/** The stream's state, or null when it has none yet. */
export function findState(stream: u32): StreamState | null {
  const cached = lastState;
  if (cached !== null && lastStream == stream) return cached;
  if (!streams.has(stream)) return null;
  const st = streams.get(stream);
  lastStream = stream;
  lastState = st;
  return st;
}

/** A new stream's state; null when the decoder-wide stream budget is spent. */
export function newState(stream: u32): StreamState | null {
  if (streams.size >= MAX_STREAMS) {
    sweepIdle(0, true);
    if (streams.size >= MAX_STREAMS) {
      if (!warnedStreams) { warnedStreams = true; warn("dns: stream budget spent, new streams refused"); }
      return null;
    }
  }
  const st = new StreamState();
  streams.set(stream, st);
  lastStream = stream;
  lastState = st;
  return st;
}

/** Kept starts of TCP messages (types.ts StreamState.headKept). */
export const heads = new HeadPool(<i64>HEAD_CAP, HEAD_BUFFERS);

export function dropState(stream: u32): void {
  if (lastStream == stream) lastState = null;
  if (!streams.has(stream)) return;
  const old = streams.get(stream);
  heads.free(old.headKept);
  heap.free(changetype<usize>(old));
  streams.delete(stream);
}

/** One whole DNS message of a stream. tsStart: its first byte; tsEnd: its last. */
export function onMessage(st: StreamState, stream: u32, base: usize, len: u32, tsStart: u64, tsEnd: u64): void {
  if (!walkMessage(base, len)) return; // not even a header: nothing to say about it
  if ((msg.flags & F_QR) == 0) onQuery(st, stream, tsStart);
  else onResponse(st, stream, tsStart, tsEnd);
}

/** Case-insensitive comparison of two uncompressed wire names (RFC 4343: ASCII case only). */
function sameName(a: usize, aLen: u32, b: usize, bLen: u32): bool {
  if (aLen != bLen) return false;
  // Nearly always the very same bytes: compared a word at a time; case only matters otherwise.
  if (sameBytes(a, b, aLen)) return true;
  for (let i: u32 = 0; i < aLen; i++) {
    let x = <u32>load<u8>(a + i);
    let y = <u32>load<u8>(b + i);
    if (x - 65 < 26) x += 32;
    if (y - 65 < 26) y += 32;
    if (x != y) return false;
  }
  return true;
}

/** Byte equality a word at a time (memory.compare goes byte by byte unless both sides share an
 *  alignment, and a name in the message rarely does). */
function sameBytes(a: usize, b: usize, n: u32): bool {
  let i: u32 = 0;
  for (; i + 8 <= n; i += 8) if (load<u64>(a + i) != load<u64>(b + i)) return false;
  for (; i < n; i++) if (load<u8>(a + i) != load<u8>(b + i)) return false;
  return true;
}

function matches(p: Pending): bool {
  const m = msg;
  if (<u32>p.id != m.id) return false;
  if (!p.hasQuestion) return true;
  if (!m.hasQuestion) return answersQuestion(p);
  return <u32>p.qtype == m.qtype && sameName(p.name, p.nameLen, m.qname, m.qnameLen);
}

/**
 * Whether a response without a (readable) question answers the pending query `p` (same id). A
 * FORMERR (or any error) answer may carry no question: the id alone has to do. A NOERROR one without a
 * question is multicast DNS (RFC 6762: responses carry no question (section 6) and id 0, which
 * "MUST be ignored on reception" (18.1)): it answers the query only when one of its answers is for
 * the question's name and type (or a CNAME of the name); an announcement of anything else, sent
 * while an id-0 query waits, is nobody's answer. tshark pairs by id alone and gets this wrong.
 */
function answersQuestion(p: Pending): bool {
  const m = msg;
  // A question counted but unreadable (a looping pointer) or an error answer: by id.
  if (m.qd > 0 || (m.flags & 0xf) != 0) return true;
  let off = m.answersOff;
  for (let i: u32 = 0; i < m.answersWalked; i++) {
    const r = readName(m.base, m.len, off, nameScratch);
    if (r < 0) return false;
    const type = u16be(m.base + <usize>r);
    if ((<u32>type == <u32>p.qtype || p.qtype == T_ANY || type == <u32>T_CNAME) && sameName(p.name, p.nameLen, namePtr, nameLen)) return true;
    off = <u32>r + 10 + u16be(m.base + <usize>r + 8);
  }
  return false;
}

function onQuery(st: StreamState, stream: u32, tsStart: u64): void {
  const m = msg;
  // A retransmission (same id and question) keeps the first send's time: the latency a user saw.
  for (let i = st.head; i >= 0; i = slotAt(i).next) {
    if (matches(slotAt(i))) return;
  }
  if (st.count >= MAX_PENDING) {
    const o = popOldest(st);
    const oldest = slotAt(o);
    // unanswered until this query pushed it out
    emitExchange(stream, oldest, false, oldest.tsStart, tsStart);
    release(o);
  }
  if (liveTotal >= MAX_PENDING_TOTAL) {
    // Untracked: its response will be reported without its query.
    if (!warnedPending) { warnedPending = true; warn("dns: pending query budget spent, queries untracked"); }
    return;
  }
  const si = takeSlot();
  const slot = slotAt(si);
  liveTotal++;
  slot.id = <u16>m.id;
  slot.flags = <u16>m.flags;
  slot.hasQuestion = m.hasQuestion;
  slot.qtype = <u16>m.qtype;
  slot.nameLen = m.hasQuestion ? m.qnameLen : 0;
  if (m.hasQuestion) memory.copy(slot.name, m.qname, m.qnameLen);
  slot.tsStart = tsStart;
  slot.udpSize = m.hasOpt ? <i32>m.udpSize : -1;
  slot.doBit = m.doBit;
  const n = m.optionCount < MAX_QUERY_OPTIONS ? m.optionCount : MAX_QUERY_OPTIONS;
  memory.copy(slot.options, m.options, <usize>n << 1);
  slot.optionCount = n;
  slot.next = -1;
  if (st.tail >= 0) slotAt(st.tail).next = si;
  else st.head = si;
  st.tail = si;
  st.count++;
}

function onResponse(st: StreamState, stream: u32, tsStart: u64, tsEnd: u64): void {
  let prev: i32 = -1;
  for (let i = st.head; i >= 0; i = slotAt(i).next) {
    const p = slotAt(i);
    if (!matches(p)) { prev = i; continue; }
    emitExchange(stream, p, true, p.tsStart, tsEnd);
    // unlinked keeping order
    if (prev < 0) st.head = p.next;
    else slotAt(prev).next = p.next;
    if (st.tail == i) st.tail = prev;
    st.count--;
    release(i);
    return;
  }
  // A response nobody asked for that does not even parse is noise, not an exchange.
  if (!msg.complete && !msg.hasQuestion) return;
  emitExchange(stream, null, true, tsStart, tsEnd);
}

/** Every pending query of the stream ends unanswered; the stream's state goes. */
export function closeStream(stream: u32): void {
  if (!streams.has(stream)) return;
  const st = streams.get(stream);
  while (st.head >= 0) {
    const i = popOldest(st);
    const p = slotAt(i);
    emitExchange(stream, p, false, p.tsStart, p.tsStart);
    release(i);
  }
  dropState(stream);
}

/** Queries older than the timeout end unanswered; idle empty streams are forgotten. */
export function expire(now: u64): void {
  sweepIdle(now, false);
}

/** Expires old queries (unless `emptyOnly`) and drops streams with nothing pending that are idle
 *  (or, when `emptyOnly`, every such stream: their state is only the framing, found again). */
function sweepIdle(now: u64, emptyOnly: bool): void {
  const keys = streams.keys();
  for (let k = 0; k < keys.length; k++) {
    const stream = unchecked(keys[k]);
    const st = streams.get(stream);
    while (!emptyOnly && st.head >= 0) {
      const p = slotAt(st.head);
      if (now < p.tsStart || now - p.tsStart < QUERY_TIMEOUT_NS) break;
      // still unanswered at `now`: the lookup lasted (at least) until then
      emitExchange(stream, p, false, p.tsStart, now, FLAG_TIMEOUT);
      release(popOldest(st));
    }
    if (st.count > 0 || st.partial0 || st.partial1) continue;
    if (emptyOnly || (now > st.lastSeen && now - st.lastSeen >= IDLE_STREAM_NS)) dropState(stream);
  }
}
