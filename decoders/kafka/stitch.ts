// Request <-> response: frames each direction by its int32 size, remembers each request's api
// key/version by correlation id (responses carry only the id), and emits one record per pair.
import {
  PARSE_NEEDS_MORE, PARSE_INVALID, DIR_REQUEST, GAP_ABSORBED,
  FLAG_NO_RESPONSE, FLAG_NO_REQUEST, FLAG_UNKNOWN, FLAG_TIMEOUT,
} from "../abi/abi";
import { input, INPUT_CAP } from "../abi/window";
import { HeadPool, Head, held, forget, headBytes } from "../abi/head";
import {
  Exchange, StreamState, MAX_MESSAGE, MAX_PENDING, ONE_WAY_KEPT, MAX_GARBAGE, PENDING_TIMEOUT_NS, HEAD_CAP,
  API_PRODUCE, API_SASL_HANDSHAKE, requestHeaderVersion, knownApi, maxVersion, responseHeaderVersion,
} from "./types";
import {
  readerInit, readerOk, rdI16, rdI32, rdStrClassic, strPtr, strLen,
  parseRequestBody, parseResponseBody, plausibleRequest, producePlausible, beI32, copyStr,
} from "./parse";
import { emitExchange } from "./emit";

const states = new Map<u32, StreamState>();

function stateFor(stream: u32): StreamState {
  if (states.has(stream)) return states.get(stream);
  const st = new StreamState();
  states.set(stream, st);
  return st;
}

function take(st: StreamState): Exchange {
  if (st.free.length > 0) {
    const x = st.free.pop();
    x.reset();
    return x;
  }
  return new Exchange();
}

function release(st: StreamState, x: Exchange): void {
  if (st.free.length < MAX_PENDING) st.free.push(x);
}

function flushOne(stream: u32, st: StreamState, x: Exchange, flags: i32): void {
  emitExchange(stream, x, flags);
  release(st, x);
}

/** Response header check while resynchronising: a size and a correlation id we are waiting for. */
function matchesInflight(st: StreamState, p: usize, end: usize): bool {
  if (p + 8 > end) return false;
  const size = beI32(p);
  if (size < 4 || size > MAX_MESSAGE) return false;
  const corr = beI32(p + 4);
  for (let i = 0; i < st.inflight.length; i++) if (unchecked(st.inflight[i]).corr == corr) return true;
  return false;
}

/** First offset in [p, end) where a plausible header starts, or 0 if none. */
function scan(st: StreamState, dir: i32, p: usize, end: usize): usize {
  for (let q = p; q + 8 <= end; q++) {
    if (dir == DIR_REQUEST ? plausibleRequest(q, end, true) : matchesInflight(st, q, end)) return q;
  }
  return 0;
}

function handleRequest(stream: u32, st: StreamState, p: usize, avail: usize, tsStart: u64, ts: u64, full: bool): void {
  const size = beI32(p);
  if (st.saslRaw) {
    // A SASL token frame, unless it is a real request (authentication is over).
    if (!plausibleRequest(p, p + avail, true)) { st.saslResponses++; return; }
    st.saslRaw = false;
    st.saslResponses = 0;
  }
  readerInit(p + 4, p + avail, p + 4 + <usize>size, false);
  const key = rdI16();
  const ver = rdI16();
  const corr = rdI32();
  const x = take(st);
  x.apiKey = key;
  x.apiVersion = ver;
  x.corr = corr;
  x.tsStart = tsStart;
  x.tsEnd = ts;
  x.requestSize = 4 + <i64>size;
  const hv = requestHeaderVersion(key, ver);
  if (hv >= 1) {
    rdStrClassic();
    if (strLen() >= 0) x.clientIdLen = copyStr(x.clientId, strPtr(), strLen());
  }
  if (readerOk()) parseRequestBody(x, hv >= 2);
  if (!readerOk()) x.flags |= FLAG_UNKNOWN;

  // acks=0: the broker never answers; the exchange is a completed one-way send.
  if (key == API_PRODUCE && x.acks == 0) {
    x.oneWay = true;
    unchecked(st.oneWay[st.oneWayNext] = corr);
    st.oneWayNext = (st.oneWayNext + 1) % ONE_WAY_KEPT;
    if (st.oneWayCount < ONE_WAY_KEPT) st.oneWayCount++;
    if (full) flushOne(stream, st, x, 0);
    else st.deferredReq = x;
    return;
  }
  if (st.inflight.length >= MAX_PENDING) {
    // No longer waited for: unanswered at least until this request, the one that pushed it out.
    const old = st.inflight.shift();
    old.tsEnd = tsStart;
    flushOne(stream, st, old, FLAG_NO_RESPONSE);
  }
  st.inflight.push(x);
}

function answersOneWay(st: StreamState, corr: i32): bool {
  for (let i = 0; i < st.oneWayCount; i++) {
    if (unchecked(st.oneWay[i]) == corr) {
      unchecked(st.oneWay[i] = -1);
      return true;
    }
  }
  return false;
}

function handleResponse(stream: u32, st: StreamState, p: usize, avail: usize, tsStart: u64, ts: u64, full: bool): void {
  const size = beI32(p);
  readerInit(p + 4, p + avail, p + 4 + <usize>size, false);
  const corr = rdI32();
  let idx = -1;
  for (let i = 0; i < st.inflight.length; i++) {
    if (unchecked(st.inflight[i]).corr == corr) { idx = i; break; }
  }
  if (idx < 0 && answersOneWay(st, corr)) return;
  if (idx < 0 && st.saslResponses > 0) { st.saslResponses--; return; } // a SASL token answer
  if (idx < 0) {
    // Its request was never seen (joined mid-stream, or lost): only the header is known.
    const y = take(st);
    y.corr = corr;
    y.tsStart = tsStart;
    y.tsEnd = ts;
    y.responseSize = 4 + <i64>size;
    flushOne(stream, st, y, FLAG_NO_REQUEST);
    return;
  }
  // Kafka answers in request order on a connection: older unanswered requests never will be.
  // They waited until this answer began: it showed theirs were not coming.
  for (let i = 0; i < idx; i++) {
    const old = st.inflight.shift();
    old.tsEnd = tsStart;
    flushOne(stream, st, old, FLAG_NO_RESPONSE);
  }
  const x = st.inflight.shift();
  x.responseSize = 4 + <i64>size;
  x.tsEnd = ts;
  if (readerOk()) parseResponseBody(x, responseHeaderVersion(x.apiKey, x.apiVersion) == 1);
  if (!readerOk()) x.flags |= FLAG_UNKNOWN;
  if (x.apiKey == API_SASL_HANDSHAKE && x.apiVersion == 0 && x.errorCode == 0) st.saslRaw = true;
  if (full) flushOne(stream, st, x, 0);
  else st.deferredResp = x;
}

/** The skipped remainder of a large message has passed (or was lost): its exchange is done. */
function finishDeferred(stream: u32, st: StreamState, dir: i32, ts: u64, flags: i32): void {
  const x = dir == DIR_REQUEST ? st.deferredReq : st.deferredResp;
  if (x === null) return;
  if (dir == DIR_REQUEST) st.deferredReq = null; else st.deferredResp = null;
  if (ts > x.tsEnd) x.tsEnd = ts;
  flushOne(stream, st, x, flags);
}

export function parseStream(stream: u32, dir: i32, len: i32, ts: u64): i32 {
  const st = stateFor(stream);
  const isReq = dir == DIR_REQUEST;
  const base = input();
  const end = base + <usize>len;
  let p = base;
  // The bytes held for an incomplete message come again at the start of this read.
  forget(isReq ? st.headReq : st.headResp);

  // The rest of a message larger than the window: discard, then finish its exchange.
  let skipLeft = isReq ? st.skipReq : st.skipResp;
  if (skipLeft > 0) {
    const n = skipLeft < <i64>len ? skipLeft : <i64>len;
    p += <usize>n;
    skipLeft -= n;
    if (isReq) st.skipReq = skipLeft; else st.skipResp = skipLeft;
    if (skipLeft == 0) finishDeferred(stream, st, dir, ts, 0);
    if (p == end) return len;
  }

  const started = isReq ? st.startedReq : st.startedResp;
  let desync = isReq ? st.desyncReq : st.desyncResp;
  // A request direction seen from its first byte must start at a header; else we joined
  // mid-stream and look for one.
  if (!started) {
    if (isReq) st.startedReq = true; else st.startedResp = true;
    if (isReq && !plausibleRequest(p, end, false)) {
      if (end - p < 14) {
        st.startedReq = false;
        if (st.partialTsReq == 0) st.partialTsReq = ts;
        return PARSE_NEEDS_MORE;
      }
      desync = true;
    }
  }

  while (true) {
    if (desync) {
      const found = scan(st, dir, p, end);
      if (found == 0) {
        // Keep the tail: a header (with its client id) may straddle the window's end.
        const keep: usize = isReq ? 300 : 7;
        const to = end - p > keep ? end - keep : p;
        // Responses to requests we never saw prove nothing about the protocol; count only
        // bytes that should have held a header we could recognise.
        if (isReq || st.inflight.length > 0) st.garbage += <i64>(to - p);
        p = to;
        if (st.garbage > MAX_GARBAGE) return PARSE_INVALID;
        break;
      }
      st.garbage += <i64>(found - p);
      if (st.garbage > MAX_GARBAGE) return PARSE_INVALID;
      p = found;
      desync = false;
    }
    if (end - p < 4) break;
    const size = beI32(p);
    if (!isReq && st.saslResponses > 0 && size >= 0 && size < 4) {
      // A short (often empty) SASL token answer: no correlation id to read.
      if (p + 4 + <usize>size > end) break;
      st.saslResponses--;
      p += 4 + <usize>size;
      continue;
    }
    let ok = size >= (isReq ? 8 : 4) && size <= MAX_MESSAGE;
    if (ok && isReq) {
      if (end - p < 8) break;
      ok = beI32(p + 4) >= 0; // api key and version are non-negative int16s
    }
    if (!ok) { desync = true; continue; }
    const total: usize = <usize>size + 4;
    const partialTs = isReq ? st.partialTsReq : st.partialTsResp;
    const tsStart = partialTs != 0 ? partialTs : ts;
    if (p + total <= end) {
      if (isReq) handleRequest(stream, st, p, total, tsStart, ts, true);
      else handleResponse(stream, st, p, total, tsStart, ts, true);
      if (isReq) st.partialTsReq = 0; else st.partialTsResp = 0;
      st.garbage = 0;
      p += total;
      continue;
    }
    if (total > <usize>INPUT_CAP && p == base && <u32>len == INPUT_CAP) {
      // Larger than the window can ever hold: describe the prefix, discard the rest as it comes.
      if (isReq) handleRequest(stream, st, p, <usize>len, tsStart, ts, false);
      else handleResponse(stream, st, p, <usize>len, tsStart, ts, false);
      if (isReq) { st.skipReq = <i64>total - <i64>len; st.partialTsReq = 0; }
      else { st.skipResp = <i64>total - <i64>len; st.partialTsResp = 0; }
      st.garbage = 0;
      p = end;
      break;
    }
    keepHead(st, isReq, p, end - p, <i64>total, tsStart);
    break;
  }
  // Bytes left for the next call start a message: remember when its first byte was seen.
  if (p < end && !desync) {
    if (isReq) { if (st.partialTsReq == 0) st.partialTsReq = ts; }
    else if (st.partialTsResp == 0) st.partialTsResp = ts;
  }
  if (isReq) st.desyncReq = desync; else st.desyncResp = desync;
  if (p == base) return PARSE_NEEDS_MORE;
  return <i32>(p - base);
}

// Kept starts of incomplete messages (StreamState.headReq/headResp): at most 1024 of 4 KiB; past
// that a stream without one loses a cut message whole, as before.
const heads = new HeadPool(<i64>HEAD_CAP, 1024);

/** Keeps the start of an incomplete message (see StreamState.headReq). */
function keepHead(st: StreamState, isReq: bool, p: usize, have: usize, total: i64, tsStart: u64): void {
  if (isReq) st.headReq = heads.keep(st.headReq, p, <i64>have, total, tsStart);
  else st.headResp = heads.keep(st.headResp, p, <i64>have, total, tsStart);
}

export function gapStream(stream: u32, dir: i32, len: i32): i32 {
  const st = stateFor(stream);
  const isReq = dir == DIR_REQUEST;
  const head = isReq ? st.headReq : st.headResp;
  const have = held(head);
  forget(head);
  if (have > 0 && <i64>len >= have) {
    // The host held the start of a message and the rest (or more) was lost: decode what its
    // start holds (header, client id, topics; FLAG_UNKNOWN when a value lay past it), as tshark
    // does with a segment cut by the snaplen, and stay in step when the gap ends where the
    // message ends or inside it (the rest is skipped as it arrives). Lost record bytes that end
    // the message (a Produce or Fetch of one big batch whose write or read was captured to its
    // first 16 KiB) hide nothing reported: the batch header counted them, as past the window.
    const total = changetype<Head>(head).total;
    const ts = changetype<Head>(head).ts;
    const avail = <usize>heads.kept(have);
    if (isReq) st.partialTsReq = 0; else st.partialTsResp = 0;
    const p = headBytes(head);
    if (isReq) handleRequest(stream, st, p, avail, ts, ts, false);
    else handleResponse(stream, st, p, avail, ts, ts, false);
    const rest = total - <i64>len;
    if (rest > 0) {
      if (isReq) st.skipReq = rest; else st.skipResp = rest;
      return GAP_ABSORBED;
    }
    if (rest == 0) { finishDeferred(stream, st, dir, 0, 0); return GAP_ABSORBED; }
    finishDeferred(stream, st, dir, 0, FLAG_UNKNOWN);
    if (isReq) { st.desyncReq = true; st.startedReq = true; } else { st.desyncResp = true; st.startedResp = true; }
    return GAP_ABSORBED;
  }
  const skipLeft = isReq ? st.skipReq : st.skipResp;
  if (skipLeft >= <i64>len) {
    // The lost bytes were inside a message we were discarding anyway: nothing reported was in them.
    if (isReq) st.skipReq = skipLeft - len; else st.skipResp = skipLeft - len;
    if (skipLeft == <i64>len) finishDeferred(stream, st, dir, 0, 0);
    return GAP_ABSORBED;
  }
  if (isReq) { st.skipReq = 0; st.desyncReq = true; st.partialTsReq = 0; st.startedReq = true; }
  else { st.skipResp = 0; st.desyncResp = true; st.partialTsResp = 0; st.startedResp = true; }
  finishDeferred(stream, st, dir, 0, FLAG_UNKNOWN);
  return GAP_ABSORBED;
}

export function closeStream(stream: u32): void {
  if (!states.has(stream)) return;
  const st = states.get(stream);
  finishDeferred(stream, st, 0, 0, FLAG_UNKNOWN);
  finishDeferred(stream, st, 1, 0, FLAG_UNKNOWN);
  while (st.inflight.length > 0) {
    const x = st.inflight.shift();
    x.tsEnd = x.tsStart;
    flushOne(stream, st, x, FLAG_NO_RESPONSE);
  }
  heads.free(st.headReq);
  heads.free(st.headResp);
  states.delete(stream);
}

export function tickAll(now: u64): void {
  const keys = states.keys();
  for (let i = 0; i < keys.length; i++) {
    const stream = unchecked(keys[i]);
    const st = states.get(stream);
    while (st.inflight.length > 0) {
      const x = unchecked(st.inflight[0]);
      if (now <= x.tsStart || now - x.tsStart < PENDING_TIMEOUT_NS) break;
      st.inflight.shift();
      // Still unanswered at `now`: it lasts that long (at its start it read as the fastest request).
      x.tsEnd = now;
      flushOne(stream, st, x, FLAG_NO_RESPONSE | FLAG_TIMEOUT);
    }
  }
}

/** Confidence that the first bytes of a direction are Kafka. */
export function detectBytes(dir: i32, len: i32): i32 {
  const base = input();
  const end = base + <usize>len;
  if (len < 8) return 0;
  const size = beI32(base);
  if (dir == DIR_REQUEST) {
    if (!plausibleRequest(base, end, false)) return 0;
    const key = <i32><i16>bswap<u16>(load<u16>(base + 4));
    const ver = <i32><i16>bswap<u16>(load<u16>(base + 6));
    if (!knownApi(key) || ver > maxVersion(key)) return 5;
    if (key == API_PRODUCE) {
      const pp = producePlausible(base, end, ver);
      if (pp == 0) return 5;
      if (pp < 0) return 40; // the head is cut off: not enough to tell it from a response
    }
    if (<i64>size + 4 == <i64>len) return 90;
    if (<i64>size + 4 < <i64>len) return 80;
    return 60;
  }
  if (size < 4 || size > MAX_MESSAGE || beI32(base + 4) < 0) return 0;
  return <i64>size + 4 == <i64>len ? 25 : 10;
}
