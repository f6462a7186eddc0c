// Record building: one KIND_EXCHANGE per HTTP/2 stream, KIND_EVENT for protocol problems.
import {
  KIND_EXCHANGE, KIND_EVENT, FLAG_ERROR, FLAG_NO_REQUEST, FLAG_UNKNOWN, FLAG_TRUNCATED,
} from "../abi/abi";
import {
  begin, finish, addBytes, addString, addInt, addBool, beginStrs, addStrsItem, endStrs, warn,
} from "../abi/emit";
import {
  A_NETWORK_PROTOCOL_NAME, A_NETWORK_PROTOCOL_VERSION, A_SERVER_ADDRESS, A_SERVER_PORT, A_ERROR_TYPE,
  A_TELEGEN_REQUEST_SIZE, A_TELEGEN_RESPONSE_SIZE, A_HTTP_REQUEST_METHOD, A_URL_PATH, A_URL_QUERY,
  A_HTTP_RESPONSE_STATUS_CODE, A_USER_AGENT_ORIGINAL, A_HTTP_REQUEST_HEADER_CONTENT_TYPE,
  A_HTTP_RESPONSE_HEADER_CONTENT_TYPE, A_HTTP_REQUEST_BODY_SIZE, A_HTTP_RESPONSE_BODY_SIZE,
  A_HTTP_REQUEST_HEADER_TRACEPARENT, A_HTTP_REQUEST_HEADER_TRACESTATE, A_HTTP_REQUEST_HEADER_B3,
  A_HTTP_REQUEST_HEADER_X_B3_TRACEID, A_HTTP_REQUEST_HEADER_X_B3_SPANID, A_HTTP_REQUEST_HEADER_X_B3_SAMPLED,
  A_HTTP_REQUEST_HEADER_X_B3_PARENTSPANID, A_URL_SCHEME, A_HTTP_RESPONSE_HEADER_CONTENT_ENCODING,
  A_TELEGEN_HTTP2_STREAM_ID, A_TELEGEN_HPACK_UNKNOWN, A_RPC_SYSTEM, A_RPC_SERVICE, A_RPC_METHOD,
  A_RPC_GRPC_STATUS_CODE, A_RPC_GRPC_STATUS_MESSAGE, A_TELEGEN_RPC_REQUEST_MESSAGES,
  A_TELEGEN_RPC_RESPONSE_MESSAGES, A_TELEGEN_RPC_REQUEST_COMPRESSED, A_TELEGEN_RPC_RESPONSE_COMPRESSED,
  A_ERROR_MESSAGE, A_HTTP_REQUEST_HEADER_AUTHORIZATION, A_HTTP_REQUEST_HEADER_PROXY_AUTHORIZATION,
  A_HTTP_REQUEST_HEADER_COOKIE, A_HTTP_RESPONSE_HEADER_SET_COOKIE,
} from "../abi/attributes";
import { H2Stream, GrpcDir, HF_NAME_UNKNOWN, HF_VALUE_UNKNOWN, Conn, EVENTS_PER_CONN } from "./types";

// Decoder-private attribute ids (named in meta()).
export const P_REQUEST_HEADERS = 1024;
export const P_RESPONSE_HEADERS = 1025;
export const P_REQUEST_TRAILERS = 1026;
export const P_RESPONSE_TRAILERS = 1027;
export const P_RST_STREAM_ERROR = 1028;
export const P_REQUEST_MESSAGE_LENGTHS = 1029;
export const P_RESPONSE_MESSAGE_LENGTHS = 1030;
export const P_PUSHED = 1031;
export const P_HPACK_RECOVERED = 1032;
export const P_H2C_UPGRADE = 1033;
export const P_RESPONSE_INFORMATIONAL = 1034;
export const P_ENDS_SWAPPED = 1035;

export const PRIVATE_ATTRS =
  '{"1024":"telegen.http2.request.headers","1025":"telegen.http2.response.headers",' +
  '"1026":"telegen.http2.request.trailers","1027":"telegen.http2.response.trailers",' +
  '"1028":"telegen.http2.rst_stream.error","1029":"telegen.rpc.request.message_lengths",' +
  '"1030":"telegen.rpc.response.message_lengths","1031":"telegen.http2.pushed",' +
  '"1032":"telegen.hpack.recovered","1033":"telegen.http2.h2c_upgrade",' +
  '"1034":"telegen.http2.response.informational","1035":"telegen.ends.swapped"}';

// ---- serialised header lists (layout in stitch.ts) ----

function nameEq(p: usize, n: u32, s: string): bool {
  if (n != <u32>s.length) return false;
  for (let i: u32 = 0; i < n; i++) {
    if (<u32>load<u8>(p + <usize>i) != <u32>s.charCodeAt(<i32>i)) return false;
  }
  return true;
}

/** Offset of the value-length word of the first field called `name` with a known value, or -1. */
export function findHeader(list: Uint8Array, name: string): i32 {
  const base = list.dataStart;
  const end = <u32>list.length;
  let o: u32 = 0;
  while (o + 9 <= end) {
    const flags = load<u8>(base + <usize>o);
    const nl = load<u32>(base + <usize>o + 1);
    const vo = o + 5 + nl;
    const vl = load<u32>(base + <usize>vo);
    if ((flags & (HF_NAME_UNKNOWN | HF_VALUE_UNKNOWN)) == 0 && nameEq(base + <usize>o + 5, nl, name)) return <i32>vo;
    o = vo + 4 + vl;
  }
  return -1;
}
export function hasUnknownName(list: Uint8Array): bool {
  const base = list.dataStart;
  const end = <u32>list.length;
  let o: u32 = 0;
  while (o + 9 <= end) {
    const flags = load<u8>(base + <usize>o);
    if (flags & HF_NAME_UNKNOWN) return true;
    const nl = load<u32>(base + <usize>o + 1);
    const vo = o + 5 + nl;
    o = vo + 4 + load<u32>(base + <usize>vo);
  }
  return false;
}
@inline export function listValPtr(list: Uint8Array, off: i32): usize { return list.dataStart + <usize>off + 4; }
@inline export function listValLen(list: Uint8Array, off: i32): u32 { return load<u32>(list.dataStart + <usize>off); }

function addHeader(list: Uint8Array | null, name: string, id: i32): void {
  if (list == null) return;
  const off = findHeader(list, name);
  if (off >= 0) addBytes(id, listValPtr(list, off), listValLen(list, off));
}

/** `http.request.header.<key>` / `http.response.header.<key>` are string[] in the semantic
 *  conventions (as HTTP/1 emits them): every field of that name in arrival order, so a repeated
 *  tracestate or a cookie split into several fields (RFC 9113 §8.2.3) is not cut to its first. */
function addHeaderList(list: Uint8Array | null, name: string, id: i32): void {
  if (list == null) return;
  const base = list.dataStart;
  const end = <u32>list.length;
  let o: u32 = 0;
  let open = false;
  while (o + 9 <= end) {
    const flags = load<u8>(base + <usize>o);
    const nl = load<u32>(base + <usize>o + 1);
    const vo = o + 5 + nl;
    const vl = load<u32>(base + <usize>vo);
    if ((flags & (HF_NAME_UNKNOWN | HF_VALUE_UNKNOWN)) == 0 && nameEq(base + <usize>o + 5, nl, name)) {
      if (!open) { beginStrs(id); open = true; }
      addStrsItem(base + <usize>vo + 4, vl);
    }
    o = vo + 4 + vl;
  }
  if (open) endStrs();
}

/** The request/response fields exported as http.*.header.<name>. Credentials are present as
 *  REDACTED (see stitch.ts), so the span still says the request carried them. */
const REQ_LIST_NAMES: string[] = ["content-type", "traceparent", "tracestate", "b3", "x-b3-traceid", "x-b3-spanid",
  "x-b3-sampled", "x-b3-parentspanid", "authorization", "proxy-authorization", "cookie"];
const REQ_LIST_IDS: i32[] = [A_HTTP_REQUEST_HEADER_CONTENT_TYPE, A_HTTP_REQUEST_HEADER_TRACEPARENT, A_HTTP_REQUEST_HEADER_TRACESTATE,
  A_HTTP_REQUEST_HEADER_B3, A_HTTP_REQUEST_HEADER_X_B3_TRACEID, A_HTTP_REQUEST_HEADER_X_B3_SPANID, A_HTTP_REQUEST_HEADER_X_B3_SAMPLED,
  A_HTTP_REQUEST_HEADER_X_B3_PARENTSPANID, A_HTTP_REQUEST_HEADER_AUTHORIZATION, A_HTTP_REQUEST_HEADER_PROXY_AUTHORIZATION,
  A_HTTP_REQUEST_HEADER_COOKIE];
const RESP_LIST_NAMES: string[] = ["content-type", "content-encoding", "set-cookie"];
const RESP_LIST_IDS: i32[] = [A_HTTP_RESPONSE_HEADER_CONTENT_TYPE, A_HTTP_RESPONSE_HEADER_CONTENT_ENCODING, A_HTTP_RESPONSE_HEADER_SET_COOKIE];

const UNKNOWN_NAME = "<unknown>";
function addList(id: i32, list: Uint8Array | null): void {
  if (list == null) return;
  beginStrs(id);
  const base = list.dataStart;
  const end = <u32>list.length;
  let o: u32 = 0;
  while (o + 9 <= end) {
    const flags = load<u8>(base + <usize>o);
    const nl = load<u32>(base + <usize>o + 1);
    const vo = o + 5 + nl;
    const vl = load<u32>(base + <usize>vo);
    if (flags & HF_NAME_UNKNOWN) addStrsString(UNKNOWN_NAME);
    else addStrsItem(base + <usize>o + 5, nl);
    addStrsItem(base + <usize>vo + 4, (flags & HF_VALUE_UNKNOWN) ? 0 : vl);
    o = vo + 4 + vl;
  }
  endStrs();
}

function addStrsString(s: string): void {
  const b = String.UTF8.encode(s);
  addStrsItem(changetype<usize>(b), <u32>b.byteLength);
}

function parseDec(p: usize, n: u32): i64 {
  if (n == 0 || n > 10) return -1;
  let v: i64 = 0;
  for (let i: u32 = 0; i < n; i++) {
    const c = <i32>load<u8>(p + <usize>i) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

/** :authority (or Host) → server.address / server.port; userinfo is dropped, [v6] unbracketed. */
function addAuthority(list: Uint8Array): void {
  let off = findHeader(list, ":authority");
  if (off < 0) off = findHeader(list, "host");
  if (off < 0) return;
  let p = listValPtr(list, off);
  let n = listValLen(list, off);
  for (let i: u32 = 0; i < n; i++) {
    if (load<u8>(p + <usize>i) == 0x40 /* @ */) { p += <usize>i + 1; n -= i + 1; i = 0xfffffffe; }
  }
  if (n == 0) return;
  let hostEnd = n;
  let portStart: u32 = 0;
  if (load<u8>(p) == 0x5b /* [ */) {
    let close: u32 = 0;
    for (let i: u32 = 1; i < n; i++) if (load<u8>(p + <usize>i) == 0x5d) { close = i; break; }
    if (close == 0) { addBytes(A_SERVER_ADDRESS, p, n); return; }
    addBytes(A_SERVER_ADDRESS, p + 1, close - 1);
    if (close + 1 < n && load<u8>(p + <usize>close + 1) == 0x3a) portStart = close + 2;
  } else {
    for (let i: u32 = 0; i < n; i++) if (load<u8>(p + <usize>i) == 0x3a) { hostEnd = i; portStart = i + 1; break; }
    addBytes(A_SERVER_ADDRESS, p, hostEnd);
  }
  if (portStart > 0 && portStart < n) {
    const port = parseDec(p + <usize>portStart, n - portStart);
    if (port >= 0 && port <= 65535) addInt(A_SERVER_PORT, port);
  }
}

/** grpc-message is percent-encoded (gRPC over HTTP/2 spec); decode into a scratch buffer. */
const PCT_BUF: usize = memory.data(8192);
function hexv(c: u32): i32 {
  if (c >= 48 && c <= 57) return <i32>c - 48;
  if (c >= 65 && c <= 70) return <i32>c - 55;
  if (c >= 97 && c <= 102) return <i32>c - 87;
  return -1;
}
function addPercentDecoded(id: i32, p: usize, n: u32): void {
  let o: u32 = 0;
  let i: u32 = 0;
  while (i < n && o < 8192) {
    const c = <u32>load<u8>(p + <usize>i);
    if (c == 0x25 && i + 2 < n) {
      const h = hexv(<u32>load<u8>(p + <usize>i + 1));
      const l = hexv(<u32>load<u8>(p + <usize>i + 2));
      if (h >= 0 && l >= 0) { store<u8>(PCT_BUF + <usize>o, <u8>(h * 16 + l)); o++; i += 3; continue; }
    }
    store<u8>(PCT_BUF + <usize>o, <u8>c);
    o++;
    i++;
  }
  addBytes(id, PCT_BUF, o);
}

const H2_ERRORS: string[] = [
  "NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
  "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR",
  "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED",
];
export function h2ErrorName(code: u32): string {
  return code < <u32>H2_ERRORS.length ? H2_ERRORS[<i32>code] : "UNKNOWN_" + code.toString();
}

function addLens(id: i32, g: GrpcDir | null): void {
  if (g == null || g.nLens == 0) return;
  beginStrs(id);
  for (let i = 0; i < g.nLens; i++) addStrsString(unchecked(g.lens[i]).toString());
  endStrs();
}

/** A direction framed as gRPC from start to end: whole messages only, no foreign flag bits. */
function cleanGrpc(g: GrpcDir | null): bool {
  return g == null || (!g.bad && !g.lost && g.have == 0 && g.remain == 0);
}

/**
 * content-type was an unknown table entry: call it gRPC only when both bodies were exactly
 * gRPC-framed (flags 0/1, lengths ending on the stream's last byte), with at least one message,
 * and :path is /Service/Method. Other HTTP bodies essentially never line up like that.
 */
function inferGrpc(s: H2Stream): bool {
  if (!s.grpcMaybe || s.reqHdr == null || !s.reqEnd) return false;
  const gq = s.gReq;
  const gr = s.gResp;
  if (!cleanGrpc(gq) || !cleanGrpc(gr)) return false;
  if ((gq != null ? gq.msgs : 0) + (gr != null ? gr.msgs : 0) == 0) return false;
  const po = findHeader(s.reqHdr!, ":path");
  if (po < 0) return false;
  const p = listValPtr(s.reqHdr!, po);
  const n = listValLen(s.reqHdr!, po);
  if (n < 4 || load<u8>(p) != 0x2f) return false;
  let slashes = 0;
  for (let i: u32 = 0; i < n; i++) {
    const c = load<u8>(p + <usize>i);
    if (c == 0x2f) slashes++;
    if (c == 0x3f || c == 0x20) return false;
  }
  return slashes == 2 && load<u8>(p + <usize>n - 1) != 0x2f;
}

/** `swapped`: the connection was joined mid-way and its first header block showed the host's
 *  client/server guess backwards (parse.ts dispatchBlock); the host then swaps the span's ends. */
/** The gRPC status a client reports for an HTTP status without grpc-status (gRPC
 *  doc/http-grpc-status-mapping.md). */
function grpcFromHttp(st: i64): i64 {
  if (st == 400) return 13; // INTERNAL
  if (st == 401) return 16; // UNAUTHENTICATED
  if (st == 403) return 7;  // PERMISSION_DENIED
  if (st == 404) return 12; // UNIMPLEMENTED
  if (st == 429 || st == 502 || st == 503 || st == 504) return 14; // UNAVAILABLE
  return 2;                 // UNKNOWN
}

export function emitExchange(connId: u32, s: H2Stream, extraFlags: i32, swapped: bool = false): void {
  if (!s.grpc && inferGrpc(s)) s.grpc = true;
  let flags = extraFlags;
  const req = s.reqHdr;
  const resp = s.respHdr;
  if (req == null) flags |= FLAG_NO_REQUEST;
  const hpackUnknown = s.hpackUnknown || s.unknownBlocks > 0;
  if (s.unknown || hpackUnknown) flags |= FLAG_UNKNOWN;
  if (s.truncated) flags |= FLAG_TRUNCATED;
  const tsEnd = s.tsEnd > 0 ? s.tsEnd : s.lastTs;
  begin(KIND_EXCHANGE, flags, <u64>connId, s.tsStart, tsEnd);
  addString(A_NETWORK_PROTOCOL_NAME, "http");
  addString(A_NETWORK_PROTOCOL_VERSION, "2");
  addInt(A_TELEGEN_HTTP2_STREAM_ID, <i64>s.id);
  let isError = false;
  let errorType: string | null = null;
  let grpcFailed = false;
  if (req != null) {
    addHeader(req, ":method", A_HTTP_REQUEST_METHOD);
    const po = findHeader(req, ":path");
    if (po >= 0) {
      const p = listValPtr(req, po);
      const n = listValLen(req, po);
      let q: u32 = n;
      for (let i: u32 = 0; i < n; i++) if (load<u8>(p + <usize>i) == 0x3f) { q = i; break; }
      addBytes(A_URL_PATH, p, q);
      if (q < n) addBytes(A_URL_QUERY, p + <usize>q + 1, n - q - 1);
      if (s.grpc && n > 1 && load<u8>(p) == 0x2f) {
        // /package.Service/Method
        let slash: u32 = 0;
        for (let i: u32 = n - 1; i > 0; i--) if (load<u8>(p + <usize>i) == 0x2f) { slash = i; break; }
        if (slash > 1) {
          addBytes(A_RPC_SERVICE, p + 1, slash - 1);
          addBytes(A_RPC_METHOD, p + <usize>slash + 1, q > slash ? q - slash - 1 : 0);
        }
      }
    }
    addHeader(req, ":scheme", A_URL_SCHEME);
    addAuthority(req);
    addHeader(req, "user-agent", A_USER_AGENT_ORIGINAL);
    for (let i = 0; i < REQ_LIST_NAMES.length; i++) addHeaderList(req, REQ_LIST_NAMES[i], REQ_LIST_IDS[i]);
  }
  if (resp != null) {
    const so = findHeader(resp, ":status");
    if (so >= 0) {
      const st = parseDec(listValPtr(resp, so), listValLen(resp, so));
      if (st >= 0) {
        addInt(A_HTTP_RESPONSE_STATUS_CODE, st);
        if (st >= 500) { isError = true; errorType = st.toString(); }
      }
    }
    for (let i = 0; i < RESP_LIST_NAMES.length; i++) addHeaderList(resp, RESP_LIST_NAMES[i], RESP_LIST_IDS[i]);
  }
  // sizes a gap made unknowable are left out, not reported short (types.ts H2Stream.reqBodyLost)
  if (!s.reqBodyLost) addInt(A_HTTP_REQUEST_BODY_SIZE, s.reqBody);
  if (!s.respBodyLost && (resp != null || s.respBody > 0)) addInt(A_HTTP_RESPONSE_BODY_SIZE, s.respBody);
  if (!s.reqSizeLost) addInt(A_TELEGEN_REQUEST_SIZE, s.reqBytes);
  if (!s.respSizeLost) addInt(A_TELEGEN_RESPONSE_SIZE, s.respBytes);
  if (s.grpc) {
    addString(A_RPC_SYSTEM, "grpc");
    // grpc-status: in the trailers, or in the only response block (Trailers-Only).
    let src = s.respTrl;
    let go = src != null ? findHeader(<Uint8Array>src, "grpc-status") : -1;
    if (go < 0 && resp != null) { src = resp; go = findHeader(resp, "grpc-status"); }
    if (go >= 0) {
      const gs = parseDec(listValPtr(src!, go), listValLen(src!, go));
      if (gs >= 0) {
        addInt(A_RPC_GRPC_STATUS_CODE, gs);
        if (gs != 0) { isError = true; errorType = gs.toString(); grpcFailed = true; }
      }
      const mo = findHeader(src!, "grpc-message");
      if (mo >= 0) addPercentDecoded(A_RPC_GRPC_STATUS_MESSAGE, listValPtr(src!, mo), listValLen(src!, mo));
    } else if (resp != null) {
      // No grpc-status, a final HTTP status other than 200 (a proxy or a server that is no gRPC
      // server answered): the client takes its status from the HTTP one (gRPC
      // http-grpc-status-mapping.md; grpc-js: 503 -> UNAVAILABLE, 404 -> UNIMPLEMENTED).
      const so = findHeader(resp, ":status");
      const st = so >= 0 ? parseDec(listValPtr(resp, so), listValLen(resp, so)) : -1;
      if (st >= 200 && st != 200) {
        const gs = grpcFromHttp(st);
        addInt(A_RPC_GRPC_STATUS_CODE, gs);
        isError = true;
        errorType = gs.toString();
        grpcFailed = true;
      }
    }
    const gq = s.gReq;
    const gr = s.gResp;
    addInt(A_TELEGEN_RPC_REQUEST_MESSAGES, gq != null ? gq.msgs : 0);
    addInt(A_TELEGEN_RPC_RESPONSE_MESSAGES, gr != null ? gr.msgs : 0);
    addInt(A_TELEGEN_RPC_REQUEST_COMPRESSED, gq != null ? gq.compressed : 0);
    addInt(A_TELEGEN_RPC_RESPONSE_COMPRESSED, gr != null ? gr.compressed : 0);
    addLens(P_REQUEST_MESSAGE_LENGTHS, gq);
    addLens(P_RESPONSE_MESSAGE_LENGTHS, gr);
  }
  if (s.rstCode >= 0) {
    addInt(P_RST_STREAM_ERROR, s.rstCode);
    // A failed grpc-status that came with the reset (it crossed the client's RST_STREAM CANCEL:
    // its deadline timer and the server's own DEADLINE_EXCEEDED) is what both libraries report:
    // error.type names the status, as for any failed call, not the reset.
    if (s.rstCode != 0) { isError = true; if (!grpcFailed) errorType = h2ErrorName(<u32>s.rstCode); }
  }
  if (isError) {
    flags |= FLAG_ERROR;
    if (errorType != null) addString(A_ERROR_TYPE, <string>errorType);
  }
  if (hpackUnknown) addBool(A_TELEGEN_HPACK_UNKNOWN, true);
  // Fields HPACK could not know were filled from the peer's own HTTP/2 library (hint.ts).
  if (s.recovered) addBool(P_HPACK_RECOVERED, true);
  if (s.pushed) addBool(P_PUSHED, true);
  if (s.h2c) addBool(P_H2C_UPGRADE, true);
  if (swapped) addBool(P_ENDS_SWAPPED, true);
  addList(P_REQUEST_HEADERS, req);
  addList(P_RESPONSE_HEADERS, resp);
  addList(P_REQUEST_TRAILERS, s.reqTrl);
  addList(P_RESPONSE_TRAILERS, s.respTrl);
  addList(P_RESPONSE_INFORMATIONAL, s.respInfo);
  if (flags & FLAG_ERROR) {
    // begin() wrote the flags before we knew; patch them in place.
    orFlagsLocal(flags);
  }
  finish();
}

import { orFlags } from "../abi/emit";
@inline function orFlagsLocal(f: i32): void { orFlags(f); }

/** A protocol problem on a connection: a KIND_EVENT record (capped per connection). */
export function emitEvent(c: Conn, connId: u32, ts: u64, what: string, detail: string, sid: u32): void {
  if (c.events >= EVENTS_PER_CONN) { c.suppressed++; return; }
  if (c.events == 0) warn("http2: " + what + " (" + detail + ")");
  c.events++;
  begin(KIND_EVENT, 0, <u64>connId, ts, ts);
  addString(A_NETWORK_PROTOCOL_NAME, "http");
  addString(A_NETWORK_PROTOCOL_VERSION, "2");
  addString(A_ERROR_TYPE, what);
  if (detail.length > 0) addString(A_ERROR_MESSAGE, detail);
  if (sid > 0) addInt(A_TELEGEN_HTTP2_STREAM_ID, <i64>sid);
  finish();
}
