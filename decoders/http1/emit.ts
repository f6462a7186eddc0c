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

// constant values as bytes (no UTF-16 -> UTF-8 conversion per record)
const HTTP: usize = memory.data<u8>([0x68, 0x74, 0x74, 0x70]);
const VERSION: usize = memory.data<u8>([0x31, 0x2e, 0x30]); // "1.x": the minor digit is patched in

function addVersion(minor: i32): void {
  store<u8>(VERSION + 2, <u8>(0x30 + (minor & 0xf) % 10));
  addBytes(A_NETWORK_PROTOCOL_VERSION, VERSION, 3);
}

export function emitExchange(stream: u32, ex: Exchange): void {
  if (ex.emitted) return;
  ex.emitted = true;
  let flags = ex.flags;
  if (ex.hasResponse && ex.status >= 500) flags |= FLAG_ERROR;
  if (ex.fields.truncated) flags |= FLAG_TRUNCATED;
  begin(KIND_EXCHANGE, flags, <u64>stream, ex.tsStart, ex.tsEnd < ex.tsStart ? ex.tsStart : ex.tsEnd);
  addBytes(A_NETWORK_PROTOCOL_NAME, HTTP, 4);
  addVersion(ex.hasRequest ? ex.reqMinor : ex.respMinor);
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
  let done: u32 = 0; // bit (id - first header id) once that list was written
  while (off < bag.len) {
    const e = base + <usize>off;
    const id = <i32>load<u16>(e);
    const n = load<u32>(e, 4);
    const bit: u32 = 1 << <u32>(id - A_HTTP_REQUEST_HEADER_CONTENT_TYPE);
    if (isHeaderList(id) && (done & bit) == 0) {
      done |= bit;
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
  bag.shrink();
}

export function emitUpgrade(stream: u32, ts: u64, nextPtr: usize, nextLen: u32): void {
  begin(KIND_UPGRADE, 0, <u64>stream, ts, ts);
  addBytes(A_NETWORK_PROTOCOL_NAME, HTTP, 4);
  addBytes(A_TELEGEN_PROTOCOL_NEXT, nextPtr, nextLen);
  finish();
}
