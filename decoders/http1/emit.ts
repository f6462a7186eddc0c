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

// Decoder-private attributes (named in meta()): the request the next protocol continues, base64
// (T_STR is UTF-8 and the request is bytes) in pieces of H2C_PIECE bytes, one record field each
// (FIELD_CAP); the host joins them, feeds them to the next decoder and drops them.
export const P_UPGRADE_REQUEST = 1024;
export const PRIVATE_ATTRS = '{"1024":"telegen.upgrade.request","1025":"telegen.upgrade.request.1","1026":"telegen.upgrade.request.2","1027":"telegen.upgrade.request.3"}';
const H2C_PIECE: i32 = 6144;

/** KIND_UPGRADE; `request` (h2c) spans from the request's start, else the record is at `ts`. */
export function emitUpgrade(stream: u32, tsStart: u64, ts: u64, nextPtr: usize, nextLen: u32, request: Uint8Array | null): void {
  begin(KIND_UPGRADE, 0, <u64>stream, tsStart, ts);
  addBytes(A_NETWORK_PROTOCOL_NAME, HTTP, 4);
  addBytes(A_TELEGEN_PROTOCOL_NEXT, nextPtr, nextLen);
  if (request !== null) {
    // a piece is a multiple of 3 bytes: the base64 of the pieces joined is that of the whole
    for (let at = 0, id = P_UPGRADE_REQUEST; at < request.length && id < P_UPGRADE_REQUEST + 4; at += H2C_PIECE, id++) {
      const end = at + H2C_PIECE < request.length ? at + H2C_PIECE : request.length;
      addBytes(id, b64Buf, base64(request.subarray(at, end)));
    }
  }
  finish();
}

const B64 = memory.data<u8>([
  65,66,67,68,69,70,71,72,73,74,75,76,77,78,79,80,81,82,83,84,85,86,87,88,89,90,
  97,98,99,100,101,102,103,104,105,106,107,108,109,110,111,112,113,114,115,116,117,118,119,120,121,122,
  48,49,50,51,52,53,54,55,56,57,43,47,
]);
const b64Buf: usize = memory.data(8192);

/** RFC 4648 base64 of `src` into b64Buf (the caller keeps src within 6144 bytes); returns its length. */
function base64(src: Uint8Array): u32 {
  const p = src.dataStart;
  const n = <u32>src.length;
  let o: usize = b64Buf;
  let i: u32 = 0;
  for (; i + 3 <= n; i += 3) {
    const v = (<u32>load<u8>(p + <usize>i) << 16) | (<u32>load<u8>(p + <usize>i + 1) << 8) | <u32>load<u8>(p + <usize>i + 2);
    store<u8>(o, load<u8>(B64 + <usize>(v >> 18)));
    store<u8>(o + 1, load<u8>(B64 + <usize>((v >> 12) & 63)));
    store<u8>(o + 2, load<u8>(B64 + <usize>((v >> 6) & 63)));
    store<u8>(o + 3, load<u8>(B64 + <usize>(v & 63)));
    o += 4;
  }
  const left = n - i;
  if (left > 0) {
    let v = <u32>load<u8>(p + <usize>i) << 16;
    if (left == 2) v |= <u32>load<u8>(p + <usize>i + 1) << 8;
    store<u8>(o, load<u8>(B64 + <usize>(v >> 18)));
    store<u8>(o + 1, load<u8>(B64 + <usize>((v >> 12) & 63)));
    store<u8>(o + 2, left == 2 ? load<u8>(B64 + <usize>((v >> 6) & 63)) : 61);
    store<u8>(o + 3, 61);
    o += 4;
  }
  return <u32>(o - b64Buf);
}
