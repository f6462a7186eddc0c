// Commands ↔ replies: RESP is strictly in order per connection, so a FIFO per stream suffices.
import { KIND_EXCHANGE, FLAG_ERROR, FLAG_NO_RESPONSE, FLAG_NO_REQUEST, FLAG_TIMEOUT } from "../abi/abi";
import {
  A_DB_SYSTEM_NAME, A_DB_OPERATION_NAME, A_DB_QUERY_TEXT, A_ERROR_MESSAGE, A_NETWORK_PROTOCOL_NAME,
  A_TELEGEN_REQUEST_SIZE, A_TELEGEN_RESPONSE_SIZE,
} from "../abi/attributes";
import { begin, addString, addBytes, addInt, finish } from "../abi/emit";
import { Conn, Pending, MAX_PENDING, REPLY_TIMEOUT_NS } from "./types";

const conns = new Map<u32, Conn>();

export function conn(stream: u32): Conn {
  if (!conns.has(stream)) conns.set(stream, new Conn());
  return conns.get(stream);
}

export function push(stream: u32, op: string, text: string, ts: u64, size: u32): void {
  const c = conn(stream);
  if (c.queue.length - c.head >= MAX_PENDING) {
    // Bounded memory: the oldest command will never be matched; report it unanswered.
    const old = c.queue[c.head++];
    emit(stream, old, 0, old.start, 0, 0, 0, FLAG_NO_RESPONSE);
  }
  const p = new Pending();
  p.op = op; p.text = text; p.start = ts; p.reqBytes = size;
  c.queue.push(p);
}

export function reply(stream: u32, ts: u64, errPtr: usize, errLen: u32, size: u32): void {
  const c = conn(stream);
  if (c.owed > 0) { c.owed--; return; } // the late reply of a command already reported
  if (c.head >= c.queue.length) {
    const p = new Pending();
    p.start = ts;
    emit(stream, p, errPtr, ts, errLen, size, 0, FLAG_NO_REQUEST);
    return;
  }
  const p = c.queue[c.head++];
  if (c.head > 64 && c.head * 2 > c.queue.length) { c.queue = c.queue.slice(c.head); c.head = 0; }
  emit(stream, p, errPtr, ts, errLen, size, 1, 0);
}

function emit(stream: u32, p: Pending, errPtr: usize, end: u64, errLen: u32, size: u32, answered: i32, flags: i32): void {
  if (errLen > 0) flags |= FLAG_ERROR;
  // a timeout ends when the tick gave up (abi.ts FLAG_TIMEOUT); a close ends nothing known
  begin(KIND_EXCHANGE, flags, stream, p.start, answered || (flags & FLAG_TIMEOUT) ? end : p.start);
  addString(A_DB_SYSTEM_NAME, "redis");
  addString(A_NETWORK_PROTOCOL_NAME, "redis");
  if (p.op.length) addString(A_DB_OPERATION_NAME, p.op);
  if (p.text.length) addString(A_DB_QUERY_TEXT, p.text);
  if (errLen > 0) addBytes(A_ERROR_MESSAGE, errPtr, errLen);
  addInt(A_TELEGEN_REQUEST_SIZE, p.reqBytes);
  if (answered) addInt(A_TELEGEN_RESPONSE_SIZE, size);
  finish();
}

export function closeStream(stream: u32): void {
  if (!conns.has(stream)) return;
  const c = conns.get(stream);
  for (let i = c.head; i < c.queue.length; i++) emit(stream, c.queue[i], 0, c.queue[i].start, 0, 0, 0, FLAG_NO_RESPONSE);
  conns.delete(stream);
}

/** Commands that wait for data by design (BLPOP key 0 may wait for hours): never a timeout, nor
 *  the commands queued behind them on their connection. */
function blocks(op: string): bool {
  return op == "BLPOP" || op == "BRPOP" || op == "BRPOPLPUSH" || op == "BLMOVE" || op == "BLMPOP"
    || op == "BZPOPMIN" || op == "BZPOPMAX" || op == "BZMPOP" || op == "XREAD" || op == "XREADGROUP"
    || op == "WAIT" || op == "WAITAOF" || op == "SUBSCRIBE" || op == "PSUBSCRIBE" || op == "SSUBSCRIBE"
    || op == "MONITOR";
}

/** A connection whose oldest command has waited REPLY_TIMEOUT_NS: it and every command behind it
 *  (in order, none can be answered first) are reported unanswered, ending at `now`. */
export function tickStreams(now: u64): void {
  const ids = conns.keys();
  for (let i = 0; i < ids.length; i++) {
    const c = conns.get(ids[i]);
    if (c.head >= c.queue.length) continue;
    const first = c.queue[c.head];
    if (blocks(first.op) || first.start + REPLY_TIMEOUT_NS >= now) continue;
    for (let k = c.head; k < c.queue.length; k++) emit(ids[i], c.queue[k], 0, now, 0, 0, 0, FLAG_NO_RESPONSE | FLAG_TIMEOUT);
    c.owed += c.queue.length - c.head;
    c.queue = new Array<Pending>();
    c.head = 0;
  }
}
