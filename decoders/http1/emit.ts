// Record building: one KIND_EXCHANGE per request/response pair, KIND_UPGRADE on a protocol switch.
import { KIND_EXCHANGE, KIND_UPGRADE, FLAG_ERROR, FLAG_TRUNCATED } from "../abi/abi";
import {
  A_NETWORK_PROTOCOL_NAME, A_NETWORK_PROTOCOL_VERSION, A_SERVER_PORT, A_ERROR_TYPE,
  A_HTTP_REQUEST_BODY_SIZE, A_HTTP_RESPONSE_BODY_SIZE, A_HTTP_RESPONSE_STATUS_CODE,
  A_TELEGEN_REQUEST_SIZE, A_TELEGEN_RESPONSE_SIZE, A_TELEGEN_PROTOCOL_NEXT,
  A_HTTP_REQUEST_HEADER_CONTENT_TYPE, A_HTTP_REQUEST_HEADER_UPGRADE,
} from "../abi/attributes";
import { begin, finish, addBytes, addString, addInt, beginStrs, addStrsItem, endStrs } from "../abi/emit";
import { Exchange } from "./types";

/** http.{request,response}.header.* attributes are string[] (OpenTelemetry semantic conventions:
 *  a header may repeat); ids 25..44 except user_agent, body sizes and url.scheme. */
@inline function isHeaderList(id: i32): bool {
  return id >= A_HTTP_REQUEST_HEADER_CONTENT_TYPE && id <= A_HTTP_REQUEST_HEADER_UPGRADE &&
    id != 27 && id != 28 && id != 36;
}

function versionString(minor: i32): string {
  if (minor == 1) return "1.1";
  if (minor == 0) return "1.0";
  return "1." + minor.toString();
}

export function emitExchange(stream: u32, ex: Exchange): void {
  if (ex.emitted) return;
  ex.emitted = true;
  let flags = ex.flags;
  if (ex.hasResponse && ex.status >= 500) flags |= FLAG_ERROR;
  if (ex.fields.truncated) flags |= FLAG_TRUNCATED;
  begin(KIND_EXCHANGE, flags, <u64>stream, ex.tsStart, ex.tsEnd < ex.tsStart ? ex.tsStart : ex.tsEnd);
  addString(A_NETWORK_PROTOCOL_NAME, "http");
  addString(A_NETWORK_PROTOCOL_VERSION, versionString(ex.hasRequest ? ex.reqMinor : ex.respMinor));
  const bag = ex.fields;
  const base = bag.base;
  let off = 0;
  while (off < bag.len) {
    const e = base + <usize>off;
    const id = <i32>load<u16>(e);
    const n = load<u32>(e, 4);
    if (!isHeaderList(id)) addBytes(id, e + 8, n);
    off += 8 + <i32>n;
  }
  if (ex.serverPort >= 0) addInt(A_SERVER_PORT, ex.serverPort);
  if (ex.hasRequest) {
    if (ex.reqHasBody) addInt(A_HTTP_REQUEST_BODY_SIZE, ex.reqBodySize);
    addInt(A_TELEGEN_REQUEST_SIZE, ex.reqSize);
  }
  if (ex.hasResponse) {
    addInt(A_HTTP_RESPONSE_STATUS_CODE, ex.status);
    if (ex.status >= 500) addString(A_ERROR_TYPE, ex.status.toString());
    if (ex.respHasBody) addInt(A_HTTP_RESPONSE_BODY_SIZE, ex.respBodySize);
    addInt(A_TELEGEN_RESPONSE_SIZE, ex.respSize);
  }
  // header lists: one T_STRS field per id, values in arrival order
  off = 0;
  while (off < bag.len) {
    const e = base + <usize>off;
    const id = <i32>load<u16>(e);
    const n = load<u32>(e, 4);
    if (isHeaderList(id) && !seenBefore(base, off, id)) {
      beginStrs(id);
      let o2 = off;
      while (o2 < bag.len) {
        const f = base + <usize>o2;
        const m = load<u32>(f, 4);
        if (<i32>load<u16>(f) == id) addStrsItem(f + 8, m);
        o2 += 8 + <i32>m;
      }
      endStrs();
    }
    off += 8 + <i32>n;
  }
  finish();
}

function seenBefore(base: usize, upTo: i32, id: i32): bool {
  let off = 0;
  while (off < upTo) {
    const e = base + <usize>off;
    if (<i32>load<u16>(e) == id) return true;
    off += 8 + <i32>load<u32>(e, 4);
  }
  return false;
}

export function emitUpgrade(stream: u32, ts: u64, nextPtr: usize, nextLen: u32): void {
  begin(KIND_UPGRADE, 0, <u64>stream, ts, ts);
  addString(A_NETWORK_PROTOCOL_NAME, "http");
  addBytes(A_TELEGEN_PROTOCOL_NEXT, nextPtr, nextLen);
  finish();
}
