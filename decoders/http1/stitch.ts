// Request <-> response matching per connection, and the per-direction framing loop.
// HTTP/1 answers requests in order (RFC 9112 9.3.2), so each connection keeps a FIFO of requests;
// the next final response answers the oldest one.
import {
  PARSE_NEEDS_MORE, PARSE_INVALID, PARSE_IGNORED, DIR_REQUEST, GAP_ABSORBED,
  FLAG_NO_REQUEST, FLAG_NO_RESPONSE, FLAG_UNKNOWN, FLAG_TRUNCATED, FLAG_TIMEOUT,
} from "../abi/abi";
import { A_HTTP_REQUEST_HEADER_UPGRADE } from "../abi/attributes";
import {
  State, DirState, Exchange, PH_HEAD, PH_BODY_LEN, PH_CHUNK_SIZE, PH_CHUNK_DATA, PH_CHUNK_CRLF,
  PH_TRAILERS, PH_BODY_CLOSE, PH_WAIT_UPGRADE, PENDING_CAP, TRAILER_CAP, EXCHANGE_TIMEOUT_NS,
  IDLE_STATE_NS, takeExchange, releaseExchange, LIVE_EXCHANGE_CAP, STREAM_CAP, liveExchanges,
  exchangeQueued, exchangesDequeued, H2C_REQUEST_CAP, HEADER_CAP, PH_HEAD_MORE, PH_RESYNC, LINE_HOLD_CAP, HOLD_SMALL,
  PH_CHUNK_LOST, HELD, holdCounted,
} from "./types";
import {
  checkStartLine, findHeadEnd, findLF, walkRequestLine, walkHeaders, foldBreak, walkStatusLine, gRespMinor,
  parseChunkLine, parseTrailerLine, gLineLen, hContentLength, hTeSeen, hChunkedLast,
  hUpgradePtr, hUpgradeLen, requestLineOk, statusLineOk, namesKnownField,
} from "./parse";
import { emitExchange, emitUpgrade } from "./emit";
import { warn } from "../abi/emit";

const streams = new Map<u32, State>();

// the host usually calls several times in a row for one connection: skip the map lookup then
let lastId: u32 = 0;
let lastState: State | null = null;

let capWarned = false;
let liveWarned = false;

function stateOf(stream: u32): State | null {
  const c = lastState;
  if (c !== null && lastId == stream) return c;
  let st: State;
  if (streams.has(stream)) st = streams.get(stream);
  else {
    if (streams.size >= STREAM_CAP) {
      if (!capWarned) { capWarned = true; warn("http1: connection cap reached; new connections are not decoded until others close"); }
      return null;
    }
    st = new State();
    streams.set(stream, st);
  }
  lastId = stream;
  lastState = st;
  return st;
}

function forget(stream: u32): void {
  if (streams.has(stream)) {
    const st = streams.get(stream);
    // what its cut heads held goes with it (HELD)
    const a = st.req.hold, b = st.resp.hold;
    if (a !== null) HELD.give(holdCounted(a.length));
    if (b !== null) HELD.give(holdCounted(b.length));
    setH2c(st, null);
  }
  streams.delete(stream);
  if (lastId == stream) lastState = null;
}

@inline function done(pos: u32): i32 { return pos > 0 ? <i32>pos : PARSE_NEEDS_MORE; }

/** The byte at p can start a request line (a method is an uppercase token in practice). */
@inline function startsToken(p: usize): bool { return <u32>load<u8>(p) - 0x41 < 26; }

/** Parses one direction's bytes in the window; returns bytes consumed or a ParseState. */
export function parseStream(stream: u32, dir: i32, p: usize, len: u32, ts: u64): i32 {
  const sto = stateOf(stream);
  if (sto === null) return PARSE_INVALID;
  const st = sto;
  st.lastTs = ts;
  if (st.upgraded) return PARSE_IGNORED;
  const isReq = dir == DIR_REQUEST;
  const ds = isReq ? st.req : st.resp;
  // A client sends its next request once the response is in: one whose end was lost with its
  // framing ended with the bytes seen before this request (pipelining clients are rare).
  if (isReq && st.resp.phase == PH_CHUNK_LOST && st.req.phase == PH_HEAD && !st.req.msgStarted) {
    st.resp.lostWin = 0;
    endMessage(st, stream, false, st.resp.lostTs);
  }
  // The same for a Content-Length body of which not one byte came after its head: the server
  // sent it by a call the capture does not see (nginx's static files: head by writev, body by
  // sendfile, on an agent whose socket object predates its sendfile hooks; io_uring sends;
  // kTLS sendfile), and the client, asking again, has it all. Waiting for it would take the next
  // response's head as body and lose that exchange. It ends at the head's last byte.
  if (isReq && st.resp.phase == PH_BODY_LEN && st.req.phase == PH_HEAD && !st.req.msgStarted && len > 0 && startsToken(p)) {
    const ex = st.respCur;
    if (ex !== null && ex.respBodySize == 0) {
      ex.respBodySize += st.resp.remaining;
      ex.respSize += st.resp.remaining;
      st.resp.remaining = 0;
      endMessage(st, stream, false, st.resp.lastTs);
    }
  }
  ds.lastTs = ts;
  let pos: u32 = 0;
  while (pos < len) {
    const q = p + <usize>pos;
    const avail = len - pos;
    switch (ds.phase) {
      case PH_HEAD: {
        if (!ds.msgStarted) {
          // RFC 9112 2.2: tolerate empty lines before a start line
          const c = <u32>load<u8>(q);
          if (c == 0x0d || c == 0x0a) { pos++; continue; }
          ds.msgStarted = true;
          ds.msgTs = ts;
        }
        if (!ds.slDone) {
          const r = checkStartLine(ds, q, avail, isReq);
          if (r < 0) return PARSE_INVALID;
          if (r == 0) return done(pos);
        }
        const h = findHeadEnd(ds, q, avail);
        if (h < 0) return PARSE_INVALID;
        if (h == 0) {
          if (ds.slDone) {
            const r = spillHead(st, q, avail, isReq);
            if (r < 0) return r;
            if (r > 0) { pos += avail; break; }
          }
          return done(pos);
        }
        const rc = isReq ? onRequestHead(st, stream, q, <u32>h) : onResponseHead(st, stream, q, <u32>h, ts);
        if (rc < 0) return rc;
        pos += <u32>h;
        if (st.upgraded) return <i32>pos; // what follows belongs to the next protocol
        break;
      }
      case PH_BODY_LEN:
      case PH_CHUNK_DATA: {
        const take: u32 = <i64>avail < ds.remaining ? avail : <u32>ds.remaining;
        pos += take;
        ds.remaining -= <i64>take;
        addBody(st, isReq, take, take);
        if (ds.remaining == 0) {
          if (ds.phase == PH_BODY_LEN) endMessage(st, stream, isReq, ts);
          else ds.phase = PH_CHUNK_CRLF;
        }
        break;
      }
      case PH_CHUNK_SIZE: {
        const v = parseChunkLine(q, avail);
        if (v == -1) return done(pos);
        if (v < 0) return PARSE_INVALID;
        pos += gLineLen;
        addBody(st, isReq, 0, gLineLen);
        if (v == 0) { ds.phase = PH_TRAILERS; ds.trailerBytes = 0; }
        else { ds.phase = PH_CHUNK_DATA; ds.remaining = v; }
        break;
      }
      case PH_CHUNK_CRLF: {
        const c = <u32>load<u8>(q);
        let n: u32 = 1;
        if (c == 0x0d) {
          if (avail < 2) return done(pos);
          if (<u32>load<u8>(q + 1) != 0x0a) return PARSE_INVALID;
          n = 2;
        } else if (c != 0x0a) return PARSE_INVALID;
        pos += n;
        addBody(st, isReq, 0, n);
        ds.phase = PH_CHUNK_SIZE;
        break;
      }
      case PH_TRAILERS: {
        const r = parseTrailerLine(q, avail);
        if (r == -1) return done(pos);
        if (r < 0) return PARSE_INVALID;
        ds.trailerBytes += gLineLen;
        if (ds.trailerBytes > TRAILER_CAP) return PARSE_INVALID;
        pos += gLineLen;
        addBody(st, isReq, 0, gLineLen);
        if (r == 0) endMessage(st, stream, isReq, ts);
        break;
      }
      case PH_BODY_CLOSE: {
        pos += avail;
        addBody(st, isReq, avail, avail);
        break;
      }
      case PH_HEAD_MORE: {
        const r = headMore(st, stream, q, avail, isReq, ts);
        if (r < 0) return r;
        pos += <u32>r;
        if (st.upgraded) return <i32>pos;
        break;
      }
      case PH_RESYNC: {
        const r = resync(q, avail, isReq);
        if (r < 0) { pos += <u32>(-1 - r); return done(pos); }
        pos += <u32>r;
        ds.resetHead();
        break;
      }
      case PH_CHUNK_LOST: {
        // Bytes are consumed as they come (nothing held: a gap with bytes held resets the
        // stream, and these bodies come as one gap per read); the last six live in lostWin.
        let w = ds.lostWin;
        let i: u32 = 0;
        while (i < avail) {
          w = ((w << 8) | <u64>load<u8>(q + <usize>i)) & 0xffffffffffff;
          i++;
          if (w == LAST_CHUNK_LINE) break;
        }
        pos += i;
        ds.lostTs = ts;
        if (w == LAST_CHUNK_LINE) {
          addBody(st, isReq, i >= 5 ? i - 5 : 0, i);
          ds.lostWin = 0;
          endMessage(st, stream, isReq, ts);
        } else {
          ds.lostWin = w;
          addBody(st, isReq, i, i);
        }
        break;
      }
      case PH_WAIT_UPGRADE: {
        // the request asked to switch protocols: until the response decides, what follows may
        // be the new protocol; keep it unconsumed. But a whole HTTP/1.x request line (no next
        // protocol starts with one: websocket frames, the h2c preface "PRI * HTTP/2.0") is a plain
        // request the client pipelined, for a server that may decline (RFC 9110 §7.8): read it
        // now. Held, it was read only with the client's next write, its response meanwhile taken
        // for one without request and the next response paired with it (Go net/http answering
        // /ws 200 and /next: /next got /third's response, /third none). Not after CONNECT: a
        // tunnel may carry HTTP/1 itself.
        const lf = findLF(q, 0, avail);
        const n = st.queue.length;
        if (lf < 0 || n == 0 || st.queue[n - 1].isConnect || !requestLineOk(q, <u32>lf)) return done(pos);
        ds.resetHead();
        break;
      }
      default:
        return PARSE_INVALID;
    }
  }
  return <i32>pos;
}

function addBody(st: State, isReq: bool, body: u32, wire: u32): void {
  const ex = isReq ? st.reqCur : st.respCur;
  if (ex === null) return;
  if (isReq) { ex.reqBodySize += <i64>body; ex.reqSize += <i64>wire; }
  else { ex.respBodySize += <i64>body; ex.respSize += <i64>wire; }
}

function onRequestHead(st: State, stream: u32, q: usize, h: u32): i32 {
  if (st.queue.length >= PENDING_CAP) return PARSE_INVALID;
  if (liveExchanges >= LIVE_EXCHANGE_CAP) {
    if (!liveWarned) { liveWarned = true; warn("http1: cap of waiting requests reached; connections adding more are reset"); }
    return PARSE_INVALID;
  }
  const ds = st.req;
  const ex = takeExchange();
  ex.hasRequest = true;
  ex.tsStart = ds.msgTs;
  ex.reqSize = <i64>h;
  const lf = findLF(q, 0, h);
  if (lf < 0) return PARSE_INVALID;
  const from = walkRequestLine(q, <u32>lf, ex);
  if (from == 0 || walkHeaders(q, from, h, true, ex) < 0) {
    ex.fields.shrink();
    releaseExchange(ex);
    return PARSE_INVALID;
  }
  ex.wantsUpgrade = hUpgradePtr != 0;
  setH2c(st, null);
  if (ex.wantsUpgrade && upgradeToken(hUpgradePtr, hUpgradeLen) == 3 && isH2c()) {
    h2cBegin(st, q, <u32>lf);
    h2cLines(st, q, from, h);
  }
  ds.resetHead();
  st.queue.push(ex);
  exchangeQueued();
  st.reqCur = ex;
  return frameRequest(st, stream, ex, hContentLength, hTeSeen, hChunkedLast);
}

function frameRequest(st: State, stream: u32, ex: Exchange, cl: i64, te: bool, chunkedLast: bool): i32 {
  const ds = st.req;
  // RFC 9112 6.3: Transfer-Encoding overrides Content-Length; a request whose final coding is
  // not chunked cannot be delimited
  if (te) {
    if (!chunkedLast) return PARSE_INVALID;
    ex.reqHasBody = true;
    ds.phase = PH_CHUNK_SIZE;
  } else if (cl >= 0) {
    ex.reqHasBody = true;
    if (cl > 0) { ds.phase = PH_BODY_LEN; ds.remaining = cl; }
    else endMessage(st, stream, true, ds.msgTs);
  } else {
    endMessage(st, stream, true, ds.msgTs);
  }
  return 0;
}

/** nextBuf holds "h2c" (after upgradeToken returned 3). */
@inline function isH2c(): bool {
  return load<u8>(nextBuf) == 0x68 && load<u8>(nextBuf + 1) == 0x32 && load<u8>(nextBuf + 2) == 0x63;
}

// scratch for the lowercased protocol name of an upgrade
const NEXT_CAP: u32 = 64;
const nextBuf: usize = memory.data(64);

/** First token of an Upgrade value, lowercased ("WebSocket" -> "websocket"). */
function upgradeToken(p: usize, n: u32): u32 {
  let k: u32 = 0;
  while (k < n && k < NEXT_CAP) {
    let c = <u32>load<u8>(p + <usize>k);
    if (c == 0x2c || c == 0x20 || c == 0x09) break;
    if (c - 0x41 < 26) c |= 0x20;
    store<u8>(nextBuf + <usize>k, <u8>c);
    k++;
  }
  return k;
}

function onResponseHead(st: State, stream: u32, q: usize, h: u32, ts: u64): i32 {
  const ds = st.resp;
  const status = walkStatusLine(q);
  const lf = findLF(q, 0, h);
  if (lf < 0) return PARSE_INVALID;
  if (status < 100) return PARSE_INVALID;
  if (status < 200 && status != 101) {
    // interim (100 Continue, 103 Early Hints): the final response still completes the exchange
    ds.resetHead();
    return 0;
  }
  const ex = answered(st, status, h);
  if (walkHeaders(q, <u32>lf + 1, h, false, ex) < 0) return PARSE_INVALID;
  ds.resetHead();
  st.respCur = ex;

  if (status == 101 || (ex.isConnect && status >= 200 && status < 300)) {
    // the connection now carries another protocol (RFC 9110 15.2.2, 9.3.6)
    let nlen: u32 = 0;
    if (status == 101) {
      if (hUpgradeLen > 0) nlen = upgradeToken(hUpgradePtr, hUpgradeLen);
      if (nlen == 0) nlen = requestUpgradeToken(ex);
      if (nlen == 0) nlen = copyAscii("unknown");
    } else nlen = copyAscii("tunnel");
    const h2c = st.h2cReq;
    if (status == 101 && nlen == 3 && isH2c() && h2c !== null && ex.reqDone && ex.wantsUpgrade) {
      // h2c: the request continues as stream 1 of HTTP/2, whose response the http2 decoder
      // reads; it gets the request from the upgrade record and emits the exchange
      st.resp.resetHead();
      st.respCur = null;
      removeExchange(st, ex);
      ex.fields.shrink();
      if (st.reqCur !== ex) releaseExchange(ex);
      emitUpgrade(stream, ex.tsStart, ts, nextBuf, nlen, h2cFinish(st, ex));
    } else {
      endMessage(st, stream, false, ts);
      emitUpgrade(stream, ts, ts, nextBuf, nlen, null);
    }
    setH2c(st, null);
    st.upgraded = true;
    flushAll(st, stream, FLAG_NO_RESPONSE);
    return 0;
  }
  return frameResponse(st, stream, ex, ts, hContentLength, hTeSeen, hChunkedLast);
}

/** The exchange a final response head (status, `head` bytes so far) answers: the oldest request,
 *  or, joined mid-connection, a new one whose request was never seen. */
function answered(st: State, status: i32, head: u32): Exchange {
  let ex: Exchange;
  if (st.queue.length > 0) ex = st.queue[0];
  else {
    ex = takeExchange();
    ex.flags |= FLAG_NO_REQUEST;
    ex.tsStart = st.resp.msgTs;
    st.queue.push(ex);
    exchangeQueued();
  }
  ex.hasResponse = true;
  ex.status = status;
  ex.respMinor = gRespMinor;
  ex.respSize = <i64>head;
  return ex;
}

function frameResponse(st: State, stream: u32, ex: Exchange, ts: u64, cl: i64, te: bool, chunkedLast: bool): i32 {
  const ds = st.resp;
  const status = ex.status;
  // the upgrade (if asked for) was declined: the request side is plain HTTP again
  if (st.req.phase == PH_WAIT_UPGRADE) st.req.resetHead();

  // RFC 9112 6.3: message body length of a response
  if (ex.isHead || status == 204 || status == 304) {
    endMessage(st, stream, false, ts);
  } else if (te) {
    ex.respHasBody = true;
    ds.phase = chunkedLast ? PH_CHUNK_SIZE : PH_BODY_CLOSE;
  } else if (cl >= 0) {
    ex.respHasBody = true;
    if (cl > 0) { ds.phase = PH_BODY_LEN; ds.remaining = cl; }
    else endMessage(st, stream, false, ts);
  } else {
    ex.respHasBody = true;
    ds.phase = PH_BODY_CLOSE;
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// h2c hand-over. A request asking for h2c keeps a copy of what HTTP/2 stream 1 needs of it: if
// the server switches, the request is the new connection's stream 1 and the http2 decoder,
// which answers for that stream, reads it (decoders/http2/upgrade.ts). The copy must fit one
// record field once base64-encoded, so it holds the request line, then the fields HTTP/2 keeps
// in order as long as they fit (a field too long is left out, the ones after it still taken),
// then `:telegen-h1: SIZE BODY CUT` (written at the 101: the request's wire bytes, its body
// bytes, 1 if a field was left out). The body is not copied, only counted: the request of any
// size or framing (chunked too) keeps its stream-1 exchange.

/** Room kept for the `:telegen-h1:` line and the empty line. */
const H2C_TAIL: i32 = 64;

/** Starts the copy with the request line of the head at q (its LF at lf). */
function h2cBegin(st: State, q: usize, lf: u32): void {
  st.h2cCut = false;
  let e = lf;
  if (e > 0 && <u32>load<u8>(q + <usize>e - 1) == 0x0d) e--;
  const room = <u32>(H2C_REQUEST_CAP - H2C_TAIL) / 2;
  let n = e;
  // Every request head cut across reads starts a copy (whether it asks for h2c is known at its
  // end): start small, grown as lines come (h2cLines), so slow heads on many connections do not
  // each hold H2C_REQUEST_CAP.
  const size = n > room ? H2C_REQUEST_CAP : min(<i32>n + 2 + H2C_TAIL + 256, H2C_REQUEST_CAP);
  const old = st.h2cReq;
  if (!HELD.take(<i64>size - <i64>(old === null ? 0 : old.length))) { setH2c(st, null); return; }
  st.h2cReq = null;
  const buf = new Uint8Array(size);
  if (n > room) {
    // a target of kilobytes: keep its start (method, path) and the version after it
    let sp1: u32 = 0;
    while (sp1 < e && load<u8>(q + <usize>sp1) != 0x20) sp1++;
    if (sp1 + 16 > room || e < 9) { HELD.give(<i64>size); return; }
    const keep = room - 9;
    memory.copy(buf.dataStart, q, <usize>keep);
    store<u8>(buf.dataStart + <usize>keep, 0x20);
    memory.copy(buf.dataStart + <usize>keep + 1, q + <usize>e - 8, 8);
    n = room;
    st.h2cCut = true;
  } else memory.copy(buf.dataStart, q, <usize>n);
  store<u16>(buf.dataStart + <usize>n, 0x0a0d);
  st.h2cReq = buf;
  st.h2cLen = <i32>n + 2;
}

/** Adds the field lines of [from, to) at p that HTTP/2 keeps and that fit. */
function h2cLines(st: State, p: usize, from: u32, to: u32): void {
  let buf = st.h2cReq;
  if (buf === null) return;
  let i = from;
  while (i < to) {
    const lf = findLF(p, i, to);
    if (lf < 0) break;
    const ls = i;
    let le = <u32>lf;
    i = le + 1;
    if (le > ls && <u32>load<u8>(p + <usize>le - 1) == 0x0d) le--;
    if (le == ls) break;
    const c0 = <u32>load<u8>(p + <usize>ls);
    if (c0 == 0x20 || c0 == 0x09) { st.h2cCut = true; continue; } // obs-fold: not re-folded
    let colon = ls;
    while (colon < le && load<u8>(p + <usize>colon) != 0x3a) colon++;
    if (h2cDropped(p + <usize>ls, colon - ls)) continue;
    const n = <i32>(le - ls);
    if (st.h2cLen + n + 2 > H2C_REQUEST_CAP - H2C_TAIL) { st.h2cCut = true; continue; }
    const need = st.h2cLen + n + 2 + H2C_TAIL;
    if (need > buf.length) {
      const size = min(max(need, buf.length * 2), H2C_REQUEST_CAP);
      // past the decoder's budget for cut heads the field is left out, as past H2C_REQUEST_CAP
      if (!HELD.take(<i64>(size - buf.length))) { st.h2cCut = true; continue; }
      const nb = new Uint8Array(size);
      memory.copy(nb.dataStart, buf.dataStart, <usize>st.h2cLen);
      buf = nb;
      st.h2cReq = nb;
    }
    memory.copy(buf.dataStart + <usize>st.h2cLen, p + <usize>ls, <usize>n);
    store<u16>(buf.dataStart + <usize>(st.h2cLen + n), 0x0a0d);
    st.h2cLen += n + 2;
  }
}

/** Connection-specific fields HTTP/2 does not carry (RFC 9113 §8.2.2): not worth the room. */
function h2cDropped(p: usize, n: u32): bool {
  if (n == 7) return lowerIs(p, n, "upgrade");
  if (n == 10) return lowerIs(p, n, "connection") || lowerIs(p, n, "keep-alive");
  if (n == 14) return lowerIs(p, n, "http2-settings");
  if (n == 16) return lowerIs(p, n, "proxy-connection");
  if (n == 17) return lowerIs(p, n, "transfer-encoding");
  return false;
}

function lowerIs(p: usize, n: u32, lit: string): bool {
  for (let i: u32 = 0; i < n; i++) {
    let c = <u32>load<u8>(p + <usize>i);
    if (c - 0x41 < 26) c |= 0x20;
    if (c != <u32>lit.charCodeAt(<i32>i)) return false;
  }
  return true;
}

/** Ends the copy with the request's sizes; the bytes handed over. */
function h2cFinish(st: State, ex: Exchange): Uint8Array {
  const buf = st.h2cReq!;
  let o = buf.dataStart + <usize>st.h2cLen;
  const tag = ":telegen-h1: ";
  for (let i = 0; i < tag.length; i++) store<u8>(o + <usize>i, <u8>tag.charCodeAt(i));
  o += <usize>tag.length;
  o = putDecimal(o, ex.reqSize);
  store<u8>(o++, 0x20);
  o = putDecimal(o, ex.reqBodySize);
  store<u8>(o++, 0x20);
  store<u8>(o++, st.h2cCut ? 0x31 : 0x30);
  store<u32>(o, 0x0a0d0a0d);
  o += 4;
  return buf.subarray(0, <i32>(o - buf.dataStart));
}

function putDecimal(o: usize, v: i64): usize {
  if (v < 0) v = 0;
  let n: usize = 1;
  for (let t = v; t >= 10; t /= 10) n++;
  for (let i = n; i > 0; i--) { store<u8>(o + i - 1, <u8>(0x30 + v % 10)); v /= 10; }
  return o + n;
}

// ---------------------------------------------------------------------------------------------
// Header blocks not ended in the bytes at hand: walked line by line as they arrive, so that the
// window holds none of them when the capture cuts the block (a gap then keeps what was read). Not
// only long ones: a capture with a short snaplen (tcpdump -s 200) cuts heads of a few hundred bytes.

/** Starts PH_HEAD_MORE for the block at [q, q+n) (start line complete, no empty line yet).
 *  1: spilled; 0: left to the whole-block path (interim, 101, tunnels, caps); PARSE_INVALID. */
function spillHead(st: State, q: usize, n: u32, isReq: bool): i32 {
  const ds = isReq ? st.req : st.resp;
  const lf = findLF(q, 0, n);
  if (lf < 0) return 0;
  const linesEnd = ds.scanPos + 1; // ds.scanPos: the LF before the first incomplete line
  let ex: Exchange;
  if (isReq) {
    if (st.queue.length >= PENDING_CAP || liveExchanges >= LIVE_EXCHANGE_CAP) return 0;
    ex = takeExchange();
    ex.hasRequest = true;
    ex.tsStart = ds.msgTs;
    const from = walkRequestLine(q, <u32>lf, ex);
    if (from == 0 || walkHeaders(q, from, linesEnd, true, ex) < 0) {
      ex.fields.shrink();
      releaseExchange(ex);
      return PARSE_INVALID;
    }
    // whether it asks for h2c is known only at its end (finishMore): copied meanwhile
    h2cBegin(st, q, <u32>lf);
    h2cLines(st, q, from, linesEnd);
    st.queue.push(ex);
    exchangeQueued();
    st.reqCur = ex;
    ex.reqSize = <i64>n;
  } else {
    const status = walkStatusLine(q);
    if (status < 200) return 0;
    if (st.queue.length > 0 && st.queue[0].isConnect) return 0;
    ex = answered(st, status, n);
    if (walkHeaders(q, <u32>lf + 1, linesEnd, false, ex) < 0) return PARSE_INVALID;
    st.respCur = ex;
  }
  ds.moreCL = -1;
  if (!mergeFraming(ds)) return PARSE_INVALID;
  ds.moreEx = ex;
  holdLine(ds, q + <usize>linesEnd, n - linesEnd);
  ds.phase = PH_HEAD_MORE;
  return 1;
}

/** What one walkHeaders() said about framing, added to the block's so far; false on conflict. */
function mergeFraming(ds: DirState): bool {
  if (hContentLength >= 0) {
    if (ds.moreCL >= 0 && ds.moreCL != hContentLength) return false;
    ds.moreCL = hContentLength;
  }
  if (hTeSeen) { ds.moreTe = true; ds.moreChunkedLast = hChunkedLast; }
  if (hUpgradePtr != 0) ds.moreUpgrade = true;
  return true;
}

/** Keeps the start of a header line cut by the end of the bytes (a line too long is skipped). */
function holdLine(ds: DirState, p: usize, n: u32): void {
  if (n == 0 || ds.holdOver) return;
  if (ds.holdLen + n > LINE_HOLD_CAP || !holdCopy(ds, p, n)) {
    // what is held (the line's start, its name) says whether the line mattered
    ds.holdOver = true;
    if (ds.holdLen == 0) holdCopy(ds, p, n < 64 ? n : 64);
  }
}

/** The hold grows with the line (up to LINE_HOLD_CAP) and a grown one goes at the head's end
 *  (resetHead): any head cut across reads holds its cut line here, on every connection. */
function holdCopy(ds: DirState, p: usize, n: u32): bool {
  let h = ds.hold;
  const need = ds.holdLen + n;
  if (h === null || <u32>h.length < need) {
    let cap: u32 = h === null ? HOLD_SMALL : <u32>h.length * 2;
    while (cap < need) cap <<= 1;
    if (cap > LINE_HOLD_CAP) cap = LINE_HOLD_CAP;
    // the decoder's budget for cut heads (HELD): past it the line is skipped as a long one
    if (!HELD.take(holdCounted(<i32>cap) - (h === null ? 0 : holdCounted(h.length)))) return false;
    const nh = new StaticArray<u8>(<i32>cap);
    if (h !== null && ds.holdLen > 0) memory.copy(changetype<usize>(nh), changetype<usize>(h), <usize>ds.holdLen);
    h = nh;
    ds.hold = h;
  }
  memory.copy(changetype<usize>(h) + <usize>ds.holdLen, p, n);
  ds.holdLen += n;
  return true;
}

/** st.h2cReq = buf, the difference in bytes counted against HELD (null always fits). */
function setH2c(st: State, buf: Uint8Array | null): bool {
  const old = st.h2cReq;
  if (!HELD.take(<i64>(buf === null ? 0 : buf.length) - <i64>(old === null ? 0 : old.length))) return false;
  st.h2cReq = buf;
  return true;
}

@inline function isEmptyLine(p: usize, n: u32): bool {
  return n == 1 || (n == 2 && <u32>load<u8>(p) == 0x0d);
}

@inline function addHead(ex: Exchange, isReq: bool, n: u32): void {
  if (isReq) ex.reqSize += <i64>n; else ex.respSize += <i64>n;
}

/** PH_HEAD_MORE over [q, q+n): walks the complete lines, holds a cut one; at the empty line the
 *  message is framed as usual. Returns the bytes consumed (all of them, or up to the empty line). */
function headMore(st: State, stream: u32, q: usize, n: u32, isReq: bool, ts: u64): i32 {
  const ds = isReq ? st.req : st.resp;
  const ex = changetype<Exchange>(ds.moreEx);
  let i: u32 = 0;
  if (ds.holdLen > 0 || ds.holdOver) {
    const lf = findLF(q, 0, n);
    if (lf < 0) { holdLine(ds, q, n); addHead(ex, isReq, n); return <i32>n; }
    i = <u32>lf + 1;
    holdLine(ds, q, i);
    addHead(ex, isReq, i);
    if (ds.holdOver) {
      // a line longer than LINE_HOLD_CAP: not in the record; if it was a field we read, say so
      if (namesKnownField(changetype<usize>(ds.hold), ds.holdLen)) ex.fields.truncated = true;
      foldBreak();
    } else {
      const hp = changetype<usize>(ds.hold);
      const hl = ds.holdLen;
      ds.holdLen = 0;
      if (isEmptyLine(hp, hl)) return finishMore(st, stream, isReq, ts, i);
      if (walkHeaders(hp, 0, hl, isReq, ex, true) < 0 || !mergeFraming(ds)) return PARSE_INVALID;
      if (isReq) h2cLines(st, hp, 0, hl);
    }
    ds.holdLen = 0;
    ds.holdOver = false;
  }
  let ls = i;
  while (ls < n) {
    const lf = findLF(q, ls, n);
    if (lf < 0) break;
    if (isEmptyLine(q + <usize>ls, <u32>lf + 1 - ls)) {
      if (ls > i && (walkHeaders(q, i, ls, isReq, ex, true) < 0 || !mergeFraming(ds))) return PARSE_INVALID;
      if (isReq) h2cLines(st, q, i, ls);
      addHead(ex, isReq, <u32>lf + 1 - i);
      return finishMore(st, stream, isReq, ts, <u32>lf + 1);
    }
    ls = <u32>lf + 1;
  }
  if (ls > i && (walkHeaders(q, i, ls, isReq, ex, true) < 0 || !mergeFraming(ds))) return PARSE_INVALID;
  if (isReq) h2cLines(st, q, i, ls);
  holdLine(ds, q + <usize>ls, n - ls);
  addHead(ex, isReq, n - i);
  // the same bound as a block read whole (findHeadEnd)
  if ((isReq ? ex.reqSize : ex.respSize) >= <i64>HEADER_CAP) return PARSE_INVALID;
  return <i32>n;
}

/** The long block ended (its empty line seen): the message is framed as a whole one would be. */
function finishMore(st: State, stream: u32, isReq: bool, ts: u64, consumed: u32): i32 {
  const ds = isReq ? st.req : st.resp;
  const ex = changetype<Exchange>(ds.moreEx);
  const cl = ds.moreCL, te = ds.moreTe, chunkedLast = ds.moreChunkedLast, upgrade = ds.moreUpgrade;
  ds.resetHead();
  if (isReq && !upgrade) setH2c(st, null);
  const rc = isReq ? (ex.wantsUpgrade = upgrade, frameRequest(st, stream, ex, cl, te, chunkedLast))
    : frameResponse(st, stream, ex, ts, cl, te, chunkedLast);
  return rc < 0 ? rc : <i32>consumed;
}

/** LF "0" CRLF CRLF: a last chunk without extensions or trailers, at the start of a line. A
 *  chunk's data could hold the same bytes; taking them as the end is the price of keeping the
 *  exchange and the connection once the framing was lost (the record says UNKNOWN). */
const LAST_CHUNK_LINE: u64 = 0x0a300d0a0d0a;

/** PH_RESYNC: the offset of the first line that is a start line (at 0 or after an LF), or, when
 *  there is none, -1 - (bytes to drop): all but a last line still incomplete (kept for the next
 *  call). The -1 keeps "drop nothing" apart from "a start line at 0": bytes without an LF after a
 *  cut head (the rest of an upload) were once taken for a start line and reset the stream. */
function resync(q: usize, n: u32, isReq: bool): i32 {
  let j: u32 = 0;
  while (j < n) {
    const lf = findLF(q, j, n);
    if (lf < 0) {
      // an incomplete last line may be a start line: kept unless already too long for one
      return -1 - <i32>(n - j < 8192 ? j : n);
    }
    const p = q + <usize>j;
    if (isReq ? requestLineOk(p, <u32>lf - j) : statusLineOk(p, <u32>lf - j)) return <i32>j;
    j = <u32>lf + 1;
  }
  return -1 - <i32>n;
}

function copyAscii(s: string): u32 {
  const n = <u32>s.length;
  for (let i: u32 = 0; i < n; i++) store<u8>(nextBuf + <usize>i, <u8>s.charCodeAt(i));
  return n;
}

function requestUpgradeToken(ex: Exchange): u32 {
  const bag = ex.fields;
  const base = bag.base;
  let off = 0;
  while (off < bag.len) {
    const e = base + <usize>off;
    const n = load<u32>(e, 4);
    if (<i32>load<u16>(e) == A_HTTP_REQUEST_HEADER_UPGRADE) return upgradeToken(e + 8, n);
    off += 8 + <i32>n;
  }
  return 0;
}

/** A message of one direction ended at `ts`. */
function endMessage(st: State, stream: u32, isReq: bool, ts: u64): void {
  if (isReq) {
    const ex = st.reqCur;
    st.req.resetHead();
    st.reqCur = null;
    if (ex !== null) {
      ex.reqDone = true;
      // answered before its body ended (early response): nothing refers to it any more
      if (ex.emitted) releaseExchange(ex);
      else if ((ex.wantsUpgrade || ex.isConnect) && !ex.hasResponse) st.req.phase = PH_WAIT_UPGRADE;
    }
    return;
  }
  const ex = st.respCur;
  st.resp.resetHead();
  st.respCur = null;
  if (ex === null) return;
  ex.tsEnd = ts;
  emitExchange(stream, ex);
  removeExchange(st, ex);
  if (st.reqCur !== ex) releaseExchange(ex);
}

function removeExchange(st: State, ex: Exchange): void {
  const i = st.queue.indexOf(ex);
  if (i == 0) st.queue.shift();
  else if (i > 0) st.queue.splice(i, 1);
  if (i >= 0) exchangesDequeued(1);
}

/** Emits every exchange still waiting, with `flags` added; one not ended yet ends at `end`
 *  (the tick that gave up on it), or at the connection's last byte when `end` is 0. */
function flushAll(st: State, stream: u32, flags: i32, end: u64 = 0): void {
  const q = st.queue;
  for (let i = 0; i < q.length; i++) {
    const ex = q[i];
    ex.flags |= flags;
    if (ex.tsEnd == 0) ex.tsEnd = end != 0 ? end : st.lastTs;
    emitExchange(stream, ex);
    if (ex !== st.reqCur && ex !== st.respCur) releaseExchange(ex);
  }
  exchangesDequeued(q.length);
  st.queue.length = 0;
}

export function closeStream(stream: u32): void {
  if (!streams.has(stream)) return;
  const st = streams.get(stream);
  const ex = st.respCur;
  if (ex !== null) {
    // A body delimited by the close ends here; any other body was cut short, except a chunked
    // one past its last chunk: only the trailer section's end is missing, the body is whole.
    // wget reads one line after the last chunk and closes, so the empty line that ends a
    // trailer section (Node's addTrailers, Go's Trailer) is never read on its side.
    if (st.resp.phase != PH_BODY_CLOSE && st.resp.phase != PH_TRAILERS) ex.flags |= FLAG_UNKNOWN;
    st.resp.phase = PH_HEAD;
    endMessage(st, stream, false, st.resp.lastTs);
  }
  st.reqCur = null; // the state goes away with its references
  flushAll(st, stream, FLAG_NO_RESPONSE);
  forget(stream);
}

/** `ts` (0: not known) is when the lost bytes had moved: a body sent by sendfile ends with its
 *  last sendfile, not at its head. */
export function gapStream(stream: u32, dir: i32, len: u32, ts: u64): i32 {
  if (!streams.has(stream)) return PARSE_INVALID;
  const st = streams.get(stream);
  if (st.upgraded) return GAP_ABSORBED;
  const isReq = dir == DIR_REQUEST;
  const ds = isReq ? st.req : st.resp;
  if (ts > ds.lastTs) ds.lastTs = ts;
  switch (ds.phase) {
    case PH_BODY_LEN:
    case PH_CHUNK_DATA: {
      // inside a body of known remaining length: the lost bytes are body bytes we skip anyway
      if (<i64>len > ds.remaining) return ds.phase == PH_CHUNK_DATA ? chunkFramingLost(st, stream, ds, isReq, len) : PARSE_INVALID;
      ds.remaining -= <i64>len;
      addBody(st, isReq, len, len);
      if (ds.remaining == 0) {
        if (ds.phase == PH_BODY_LEN) endMessage(st, stream, isReq, ds.lastTs);
        else ds.phase = PH_CHUNK_CRLF;
      }
      return GAP_ABSORBED;
    }
    case PH_BODY_CLOSE:
      addBody(st, isReq, len, len);
      return GAP_ABSORBED;
    case PH_HEAD_MORE: {
      // The capture cut this header block (bpf/socket.h keeps at most capture_max bytes of a
      // read): what its captured lines said stays, the exchange is flagged TRUNCATED, and the
      // message is taken to end with the lost bytes (one read held all of it, the usual case);
      // the next bytes are searched for a start line.
      const ex = changetype<Exchange>(ds.moreEx);
      ex.flags |= FLAG_TRUNCATED;
      addHead(ex, isReq, len);
      ds.resetHead();
      if (isReq) {
        setH2c(st, null);
        ex.wantsUpgrade = false;
        endMessage(st, stream, true, ds.msgTs);
      } else {
        endMessage(st, stream, false, ds.lastTs);
      }
      ds.phase = PH_RESYNC;
      return GAP_ABSORBED;
    }
    case PH_RESYNC:
      return GAP_ABSORBED;
    case PH_CHUNK_SIZE:
    case PH_CHUNK_CRLF:
    case PH_CHUNK_LOST:
      return chunkFramingLost(st, stream, ds, isReq, len);
    default:
      return PARSE_INVALID;
  }
}

/** A gap across chunk boundaries (a read longer than the capture, holding several chunks, is the
 *  usual one): what the lost chunk-size lines said is gone, so the rest of the body is skipped up
 *  to its last chunk (PH_CHUNK_LOST). The exchange keeps its start, status and fields and ends
 *  where the body does; its body size counts the lost framing too, so it is flagged UNKNOWN.
 *  Lost bytes exactly as many as the body's end needs (the current chunk's rest, its CRLF,
 *  "0" CRLF CRLF: a writev with more iovecs than the capture walks loses just these) end it here. */
function chunkFramingLost(st: State, stream: u32, ds: DirState, isReq: bool, len: u32): i32 {
  const ex = isReq ? st.reqCur : st.respCur;
  if (ex === null) return PARSE_INVALID;
  ex.flags |= FLAG_UNKNOWN;
  const tail: i64 = ds.phase == PH_CHUNK_DATA ? ds.remaining + 7 : ds.phase == PH_CHUNK_CRLF ? 7 : ds.phase == PH_CHUNK_SIZE ? 5 : -1;
  if (<i64>len == tail) {
    addBody(st, isReq, ds.phase == PH_CHUNK_DATA ? <u32>ds.remaining : 0, len);
    endMessage(st, stream, isReq, ds.lastTs);
    return GAP_ABSORBED;
  }
  if (ds.phase != PH_CHUNK_LOST) ds.lostTs = ds.lastTs;
  addBody(st, isReq, len, len);
  ds.phase = PH_CHUNK_LOST;
  ds.lostWin = 0x0a;
  return GAP_ABSORBED;
}

export function tickStreams(now: u64): void {
  const keys = streams.keys();
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    const st = streams.get(k);
    const q = st.queue;
    if (q.length > 0) {
      const head = q[0];
      if (!head.hasResponse && head.tsStart + EXCHANGE_TIMEOUT_NS < now) {
        // the oldest request went unanswered: give up on everything waiting behind it too. All
        // were still unanswered at `now`: they last until then (a hung request is not instant).
        st.reqCur = null;
        flushAll(st, k, FLAG_NO_RESPONSE | FLAG_TIMEOUT, now);
      }
    } else if (st.lastTs + IDLE_STATE_NS < now && idle(st.req) && idle(st.resp) && st.respCur === null) {
      // a connection whose close we never saw; nothing is lost by forgetting it at a boundary
      forget(k);
    }
  }
}

@inline function idle(ds: DirState): bool { return ds.phase == PH_HEAD && !ds.msgStarted; }

export function streamCount(): i32 { return streams.size; }
