// HTTP/1.x framing (RFC 9112): start lines, header blocks, chunked coding. Every function walks
// (ptr, n) with load<u8> and bounds checks; none throws and none allocates except to copy a
// captured field value into an Exchange's FieldBag.
import { PARSE_INVALID } from "../abi/abi";
import {
  A_HTTP_REQUEST_HEADER_CONTENT_TYPE, A_HTTP_RESPONSE_HEADER_CONTENT_TYPE, A_USER_AGENT_ORIGINAL,
  A_HTTP_REQUEST_HEADER_TRACEPARENT, A_HTTP_REQUEST_HEADER_TRACESTATE, A_HTTP_REQUEST_HEADER_B3,
  A_HTTP_REQUEST_HEADER_X_B3_TRACEID, A_HTTP_REQUEST_HEADER_X_B3_SPANID,
  A_HTTP_REQUEST_HEADER_X_B3_SAMPLED, A_HTTP_REQUEST_HEADER_X_B3_PARENTSPANID,
  A_HTTP_REQUEST_HEADER_AUTHORIZATION, A_HTTP_REQUEST_HEADER_COOKIE,
  A_HTTP_RESPONSE_HEADER_SET_COOKIE, A_HTTP_REQUEST_HEADER_PROXY_AUTHORIZATION,
  A_HTTP_RESPONSE_HEADER_CONTENT_ENCODING, A_HTTP_REQUEST_HEADER_TRANSFER_ENCODING,
  A_HTTP_RESPONSE_HEADER_TRANSFER_ENCODING, A_HTTP_REQUEST_HEADER_UPGRADE,
  A_SERVER_ADDRESS, A_HTTP_REQUEST_METHOD, A_URL_PATH, A_URL_QUERY, A_URL_SCHEME,
} from "../abi/attributes";
import { DirState, Exchange, HEADER_CAP, CHUNK_LINE_CAP } from "./types";

// RFC 9110 tchar: ! # $ % & ' * + - . ^ _ ` | ~ DIGIT ALPHA
const TCHAR: usize = memory.data<u8>([
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  0,1,0,1,1,1,1,1,0,0,1,1,0,1,1,0, 1,1,1,1,1,1,1,1,1,1,0,0,0,0,0,0,
  0,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,0,0,0,1,1,
  1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,0,1,0,1,0,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
]);

@inline export function isTchar(c: u32): bool { return load<u8>(TCHAR + <usize>(c & 0xff)) != 0; }
@inline function isDigit(c: u32): bool { return c - 0x30 < 10; }
@inline function isOws(c: u32): bool { return c == 0x20 || c == 0x09; }

const LF: u32 = 0x0a;
const CR: u32 = 0x0d;
const SP: u32 = 0x20;

/** Index of the first LF in [p + from, p + n), or -1. Eight bytes at a time (SWAR). */
export function findLF(p: usize, from: u32, n: u32): i32 {
  let i = from;
  while (i + 8 <= n) {
    const x = load<u64>(p + <usize>i) ^ 0x0a0a0a0a0a0a0a0a;
    const t = (x - 0x0101010101010101) & ~x & 0x8080808080808080;
    if (t != 0) return <i32>(i + <u32>(ctz(t) >> 3));
    i += 8;
  }
  while (i < n) {
    if (<u32>load<u8>(p + <usize>i) == LF) return <i32>i;
    i++;
  }
  return -1;
}

// ---------------------------------------------------------------------------------------------
// Start line: checked byte by byte as it arrives (resumable), so garbage is refused after a few
// bytes instead of after a whole window.

const SL_METHOD = 0, SL_TARGET = 1, SL_VERSION = 2, SL_EOL = 3, SL_LF = 4;
const SL_R_VERSION = 10, SL_R_SP = 11, SL_R_CODE = 12, SL_R_AFTER_CODE = 13, SL_R_REASON = 14;
const METHOD_CAP: u32 = 32;

/** Advances the start-line check of `ds` over the window. Returns 1 when the line is complete
 *  and well-formed (ds.scanPos = index of its LF), 0 when more bytes are needed, PARSE_INVALID. */
export function checkStartLine(ds: DirState, p: usize, n: u32, isReq: bool): i32 {
  if (ds.slPos == 0 && ds.slCount == 0 && ds.slState == 0) {
    // usual case: the whole line is already here; check it in tight loops
    const lf = findLF(p, 0, n < HEADER_CAP ? n : HEADER_CAP);
    if (lf >= 0) {
      if (!(isReq ? requestLineOk(p, <u32>lf) : statusLineOk(p, <u32>lf))) return PARSE_INVALID;
      ds.slDone = true;
      ds.scanPos = <u32>lf;
      return 1;
    }
    ds.slState = isReq ? SL_METHOD : SL_R_VERSION;
  }
  let i = ds.slPos;
  let st = ds.slState;
  let cnt = ds.slCount;
  while (i < n) {
    const c = <u32>load<u8>(p + <usize>i);
    switch (st) {
      case SL_METHOD: {
        if (c == SP && cnt > 0) { st = SL_TARGET; cnt = 0; break; }
        if (!isTchar(c) || ++cnt > METHOD_CAP) return PARSE_INVALID;
        break;
      }
      case SL_TARGET: {
        if (c == SP && cnt > 0) { st = SL_VERSION; cnt = 0; break; }
        if (c <= SP || c == 0x7f) return PARSE_INVALID;
        cnt++;
        break;
      }
      case SL_VERSION:
      case SL_R_VERSION: {
        // "HTTP/1." DIGIT; only major version 1 is this decoder's (HTTP/2's preface is "PRI * HTTP/2.0")
        if (cnt < 5) { if (c != <u32>load<u8>(changetype<usize>("HTTP/") + (<usize>cnt << 1))) return PARSE_INVALID; }
        else if (cnt == 5) { if (c != 0x31) return PARSE_INVALID; }
        else if (cnt == 6) { if (c != 0x2e) return PARSE_INVALID; }
        else if (!isDigit(c)) return PARSE_INVALID;
        cnt++;
        if (cnt == 8) { st = st == SL_VERSION ? SL_EOL : SL_R_SP; cnt = 0; }
        break;
      }
      case SL_EOL: {
        if (c == CR) { st = SL_LF; break; }
        if (c == LF) { ds.slDone = true; ds.scanPos = i; return 1; }
        return PARSE_INVALID;
      }
      case SL_LF: {
        if (c != LF) return PARSE_INVALID;
        ds.slDone = true; ds.scanPos = i; return 1;
      }
      case SL_R_SP: {
        if (c != SP) return PARSE_INVALID;
        st = SL_R_CODE; cnt = 0;
        break;
      }
      case SL_R_CODE: {
        if (!isDigit(c)) return PARSE_INVALID;
        if (++cnt == 3) st = SL_R_AFTER_CODE;
        break;
      }
      case SL_R_AFTER_CODE: {
        if (c == SP) { st = SL_R_REASON; break; }
        if (c == CR) { st = SL_LF; break; }
        if (c == LF) { ds.slDone = true; ds.scanPos = i; return 1; }
        return PARSE_INVALID;
      }
      case SL_R_REASON: {
        if (c == CR) { st = SL_LF; break; }
        if (c == LF) { ds.slDone = true; ds.scanPos = i; return 1; }
        if ((c < SP && c != 0x09) || c == 0x7f) return PARSE_INVALID;
        break;
      }
      default: return PARSE_INVALID;
    }
    i++;
  }
  ds.slPos = i;
  ds.slState = st;
  ds.slCount = cnt;
  if (i >= HEADER_CAP) return PARSE_INVALID;
  return 0;
}

@inline function versionOk(p: usize): bool {
  // "HTTP/1." DIGIT
  return (load<u32>(p) == 0x50545448) && load<u8>(p, 4) == 0x2f && load<u8>(p, 5) == 0x31 &&
    load<u8>(p, 6) == 0x2e && isDigit(<u32>load<u8>(p, 7));
}

/** method SP request-target SP HTTP-version, over [0, lf) (a CR before lf allowed). */
export function requestLineOk(p: usize, lf: u32): bool {
  let le = lf;
  if (le > 0 && <u32>load<u8>(p + <usize>le - 1) == CR) le--;
  let i: u32 = 0;
  while (i < le && isTchar(<u32>load<u8>(p + <usize>i))) i++;
  if (i == 0 || i > METHOD_CAP || i >= le || <u32>load<u8>(p + <usize>i) != SP) return false;
  let j = i + 1;
  while (j < le) {
    const c = <u32>load<u8>(p + <usize>j);
    if (c <= SP || c == 0x7f) break;
    j++;
  }
  if (j == i + 1 || j >= le || <u32>load<u8>(p + <usize>j) != SP) return false;
  return le - j - 1 == 8 && versionOk(p + <usize>j + 1);
}

/** HTTP-version SP 3DIGIT [SP reason-phrase], over [0, lf). */
export function statusLineOk(p: usize, lf: u32): bool {
  let le = lf;
  if (le > 0 && <u32>load<u8>(p + <usize>le - 1) == CR) le--;
  if (le < 12 || !versionOk(p) || <u32>load<u8>(p + 8) != SP) return false;
  if (!isDigit(<u32>load<u8>(p + 9)) || !isDigit(<u32>load<u8>(p + 10)) || !isDigit(<u32>load<u8>(p + 11))) return false;
  if (le == 12) return true;
  if (<u32>load<u8>(p + 12) != SP) return false;
  for (let k: u32 = 13; k < le; k++) {
    const c = <u32>load<u8>(p + <usize>k);
    if ((c < SP && c != 0x09) || c == 0x7f) return false;
  }
  return true;
}

/** Finds the end of the header block (just past the empty line). Returns its length, 0 when
 *  more bytes are needed, PARSE_INVALID past HEADER_CAP. Resumes from ds.scanPos. */
export function findHeadEnd(ds: DirState, p: usize, n: u32): i32 {
  let i = ds.scanPos; // always at an LF: the end of the start line or of a header line
  while (true) {
    // i is an LF: is the next line empty?
    if (i + 1 >= n) break;
    const c1 = <u32>load<u8>(p + <usize>i + 1);
    if (c1 == LF) return <i32>(i + 2);
    if (c1 == CR) {
      if (i + 2 >= n) break;
      if (<u32>load<u8>(p + <usize>i + 2) == LF) return <i32>(i + 3);
    }
    const nx = findLF(p, i + 1, n);
    if (nx < 0) break;
    i = <u32>nx;
  }
  ds.scanPos = i;
  if (n >= HEADER_CAP) return PARSE_INVALID;
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Header block walk: what the framing needs (module globals, reset per block) and the captured
// attribute values (copied into the exchange's bag).

export let hContentLength: i64 = -1;
export let hTeSeen: bool = false;
export let hChunkedLast: bool = false;
export let hHostSet: bool = false;
export let hUpgradePtr: usize = 0;
export let hUpgradeLen: u32 = 0;
export let hExpectContinue: bool = false;

// header names this decoder looks at
const H_OTHER = 0, H_HOST = 1, H_CL = 2, H_TE = 3, H_CT = 4, H_CE = 5, H_UA = 6, H_UPGRADE = 7,
  H_TRACEPARENT = 8, H_TRACESTATE = 9, H_B3 = 10, H_XB3_TRACEID = 11, H_XB3_SPANID = 12,
  H_XB3_SAMPLED = 13, H_XB3_PARENT = 14, H_AUTH = 15, H_COOKIE = 16, H_SETCOOKIE = 17,
  H_PROXYAUTH = 18;

// Header names (and "chunked") as lowercase bytes, each padded to 24 bytes, for u64 compares.
// GENERATED from the list in the comment of each entry; order = NAME_* indexes below.
const NAMES: usize = memory.data<u8>([
  98,51,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, // b3
  104,111,115,116,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, // host
  99,111,111,107,105,101,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, // cookie
  117,112,103,114,97,100,101,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, // upgrade
  117,115,101,114,45,97,103,101,110,116,0,0,0,0,0,0,0,0,0,0,0,0,0,0, // user-agent
  116,114,97,99,101,115,116,97,116,101,0,0,0,0,0,0,0,0,0,0,0,0,0,0, // tracestate
  115,101,116,45,99,111,111,107,105,101,0,0,0,0,0,0,0,0,0,0,0,0,0,0, // set-cookie
  116,114,97,99,101,112,97,114,101,110,116,0,0,0,0,0,0,0,0,0,0,0,0,0, // traceparent
  120,45,98,51,45,115,112,97,110,105,100,0,0,0,0,0,0,0,0,0,0,0,0,0, // x-b3-spanid
  99,111,110,116,101,110,116,45,116,121,112,101,0,0,0,0,0,0,0,0,0,0,0,0, // content-type
  120,45,98,51,45,116,114,97,99,101,105,100,0,0,0,0,0,0,0,0,0,0,0,0, // x-b3-traceid
  120,45,98,51,45,115,97,109,112,108,101,100,0,0,0,0,0,0,0,0,0,0,0,0, // x-b3-sampled
  97,117,116,104,111,114,105,122,97,116,105,111,110,0,0,0,0,0,0,0,0,0,0,0, // authorization
  99,111,110,116,101,110,116,45,108,101,110,103,116,104,0,0,0,0,0,0,0,0,0,0, // content-length
  99,111,110,116,101,110,116,45,101,110,99,111,100,105,110,103,0,0,0,0,0,0,0,0, // content-encoding
  116,114,97,110,115,102,101,114,45,101,110,99,111,100,105,110,103,0,0,0,0,0,0,0, // transfer-encoding
  120,45,98,51,45,112,97,114,101,110,116,115,112,97,110,105,100,0,0,0,0,0,0,0, // x-b3-parentspanid
  112,114,111,120,121,45,97,117,116,104,111,114,105,122,97,116,105,111,110,0,0,0,0,0, // proxy-authorization
  99,104,117,110,107,101,100,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, // chunked
]);
const NAME_B3 = 0;
const NAME_HOST = 1;
const NAME_COOKIE = 2;
const NAME_UPGRADE = 3;
const NAME_USER_AGENT = 4;
const NAME_TRACESTATE = 5;
const NAME_SET_COOKIE = 6;
const NAME_TRACEPARENT = 7;
const NAME_X_B3_SPANID = 8;
const NAME_CONTENT_TYPE = 9;
const NAME_X_B3_TRACEID = 10;
const NAME_X_B3_SAMPLED = 11;
const NAME_AUTHORIZATION = 12;
const NAME_CONTENT_LENGTH = 13;
const NAME_CONTENT_ENCODING = 14;
const NAME_TRANSFER_ENCODING = 15;
const NAME_X_B3_PARENTSPANID = 16;
const NAME_PROXY_AUTHORIZATION = 17;
const NAME_CHUNKED = 18;

/** Case-insensitive match of a tchar-validated name (length n) against NAMES[idx]: |0x20 lowercases
 *  letters and maps no other tchar onto [a-z0-9-], so a whole word compares at once. Reads up to 7
 *  bytes past the name: they are inside the input window (the header line goes on after it) or,
 *  at worst, other static memory, never out of bounds. */
function nameIs(p: usize, n: u32, idx: i32): bool {
  if (n == 0 || n > 23) return false;
  const q = NAMES + <usize>idx * 24;
  if (load<u8>(q + <usize>n) != 0 || load<u8>(q + <usize>n - 1) == 0) return false;
  let i: u32 = 0;
  while (i + 8 <= n) {
    if ((load<u64>(p + <usize>i) | 0x2020202020202020) != load<u64>(q + <usize>i)) return false;
    i += 8;
  }
  const rem = n - i;
  if (rem == 0) return true;
  const mask: u64 = (<u64>1 << (<u64>rem << 3)) - 1;
  return ((load<u64>(p + <usize>i) | 0x2020202020202020) & mask) == load<u64>(q + <usize>i);
}

/** 80 for "http", 443 for "https" (any case, RFC 3986 3.1), else -1. */
function defaultPort(p: usize, n: u32): i32 {
  if (n < 4 || n > 5) return -1;
  const w = load<u32>(p) | 0x20202020;
  if (w != 0x70747468) return -1; // "http" little-endian
  if (n == 4) return 80;
  return (<u32>load<u8>(p + 4) | 0x20) == 0x73 ? 443 : -1;
}

/** Exact match of bytes against an ASCII literal. */
export function bytesAre(p: usize, n: u32, lit: string): bool {
  if (<i32>n != lit.length) return false;
  const q = changetype<usize>(lit);
  for (let i: u32 = 0; i < n; i++) {
    if (<u32>load<u8>(p + <usize>i) != <u32>load<u16>(q + (<usize>i << 1))) return false;
  }
  return true;
}

function headerKind(p: usize, n: u32): i32 {
  switch (n) {
    case 2: return nameIs(p, n, NAME_B3) ? H_B3 : H_OTHER;
    case 4: return nameIs(p, n, NAME_HOST) ? H_HOST : H_OTHER;
    case 6: return nameIs(p, n, NAME_COOKIE) ? H_COOKIE : H_OTHER;
    case 7: return nameIs(p, n, NAME_UPGRADE) ? H_UPGRADE : H_OTHER;
    case 10:
      if (nameIs(p, n, NAME_USER_AGENT)) return H_UA;
      if (nameIs(p, n, NAME_TRACESTATE)) return H_TRACESTATE;
      if (nameIs(p, n, NAME_SET_COOKIE)) return H_SETCOOKIE;
      return H_OTHER;
    case 11:
      if (nameIs(p, n, NAME_TRACEPARENT)) return H_TRACEPARENT;
      if (nameIs(p, n, NAME_X_B3_SPANID)) return H_XB3_SPANID;
      return H_OTHER;
    case 12:
      if (nameIs(p, n, NAME_CONTENT_TYPE)) return H_CT;
      if (nameIs(p, n, NAME_X_B3_TRACEID)) return H_XB3_TRACEID;
      if (nameIs(p, n, NAME_X_B3_SAMPLED)) return H_XB3_SAMPLED;
      return H_OTHER;
    case 13: return nameIs(p, n, NAME_AUTHORIZATION) ? H_AUTH : H_OTHER;
    case 14: return nameIs(p, n, NAME_CONTENT_LENGTH) ? H_CL : H_OTHER;
    case 16: return nameIs(p, n, NAME_CONTENT_ENCODING) ? H_CE : H_OTHER;
    case 17:
      if (nameIs(p, n, NAME_TRANSFER_ENCODING)) return H_TE;
      if (nameIs(p, n, NAME_X_B3_PARENTSPANID)) return H_XB3_PARENT;
      return H_OTHER;
    case 19: return nameIs(p, n, NAME_PROXY_AUTHORIZATION) ? H_PROXYAUTH : H_OTHER;
    default: return H_OTHER;
  }
}

function requestAttr(kind: i32): i32 {
  switch (kind) {
    case H_CT: return A_HTTP_REQUEST_HEADER_CONTENT_TYPE;
    case H_UA: return A_USER_AGENT_ORIGINAL;
    case H_TE: return A_HTTP_REQUEST_HEADER_TRANSFER_ENCODING;
    case H_UPGRADE: return A_HTTP_REQUEST_HEADER_UPGRADE;
    case H_TRACEPARENT: return A_HTTP_REQUEST_HEADER_TRACEPARENT;
    case H_TRACESTATE: return A_HTTP_REQUEST_HEADER_TRACESTATE;
    case H_B3: return A_HTTP_REQUEST_HEADER_B3;
    case H_XB3_TRACEID: return A_HTTP_REQUEST_HEADER_X_B3_TRACEID;
    case H_XB3_SPANID: return A_HTTP_REQUEST_HEADER_X_B3_SPANID;
    case H_XB3_SAMPLED: return A_HTTP_REQUEST_HEADER_X_B3_SAMPLED;
    case H_XB3_PARENT: return A_HTTP_REQUEST_HEADER_X_B3_PARENTSPANID;
    case H_AUTH: return A_HTTP_REQUEST_HEADER_AUTHORIZATION;
    case H_COOKIE: return A_HTTP_REQUEST_HEADER_COOKIE;
    case H_PROXYAUTH: return A_HTTP_REQUEST_HEADER_PROXY_AUTHORIZATION;
    default: return 0;
  }
}

function responseAttr(kind: i32): i32 {
  switch (kind) {
    case H_CT: return A_HTTP_RESPONSE_HEADER_CONTENT_TYPE;
    case H_CE: return A_HTTP_RESPONSE_HEADER_CONTENT_ENCODING;
    case H_TE: return A_HTTP_RESPONSE_HEADER_TRANSFER_ENCODING;
    case H_SETCOOKIE: return A_HTTP_RESPONSE_HEADER_SET_COOKIE;
    default: return 0;
  }
}

/** Content-Length: 1*DIGIT, or a list of identical values (RFC 9110 8.6). -2 when invalid. */
function parseContentLength(p: usize, n: u32): i64 {
  let v: i64 = -1;
  let i: u32 = 0;
  while (i < n) {
    while (i < n && isOws(<u32>load<u8>(p + <usize>i))) i++;
    let x: i64 = 0;
    let digits = 0;
    while (i < n && isDigit(<u32>load<u8>(p + <usize>i))) {
      if (++digits > 15) return -2;
      x = x * 10 + <i64>(<u32>load<u8>(p + <usize>i) - 0x30);
      i++;
    }
    if (digits == 0) return -2;
    while (i < n && isOws(<u32>load<u8>(p + <usize>i))) i++;
    if (i < n) { if (<u32>load<u8>(p + <usize>i) != 0x2c) return -2; i++; }
    if (v >= 0 && v != x) return -2;
    v = x;
  }
  return v < 0 ? -2 : v;
}

/** Transfer-Encoding list: remember whether the last non-empty coding is "chunked". */
function noteTransferEncoding(p: usize, n: u32): void {
  hTeSeen = true;
  let i: u32 = 0;
  while (i <= n) {
    let j = i;
    while (j < n && <u32>load<u8>(p + <usize>j) != 0x2c) j++;
    let a = i, b = j;
    while (a < b && isOws(<u32>load<u8>(p + <usize>a))) a++;
    while (b > a && isOws(<u32>load<u8>(p + <usize>b - 1))) b--;
    if (b > a) hChunkedLast = nameIs(p + <usize>a, b - a, NAME_CHUNKED);
    i = j + 1;
  }
}

/** Sets server.address / server.port from an authority ("host", "host:port", "[v6]:port"). */
export function setAuthority(ex: Exchange, p: usize, n: u32): void {
  // drop userinfo
  for (let k: i32 = <i32>n - 1; k >= 0; k--) {
    if (<u32>load<u8>(p + <usize>k) == 0x40) { p += <usize>k + 1; n -= <u32>k + 1; break; }
  }
  if (n == 0) return;
  let hostStart: u32 = 0, hostEnd: u32 = n, portStart: u32 = n;
  if (<u32>load<u8>(p) == 0x5b) { // [v6]
    let k: u32 = 1;
    while (k < n && <u32>load<u8>(p + <usize>k) != 0x5d) k++;
    if (k >= n) return;
    hostStart = 1; hostEnd = k;
    if (k + 1 < n && <u32>load<u8>(p + <usize>k + 1) == 0x3a) portStart = k + 2;
  } else {
    for (let k: u32 = 0; k < n; k++) {
      if (<u32>load<u8>(p + <usize>k) == 0x3a) { hostEnd = k; portStart = k + 1; break; }
    }
  }
  if (hostEnd > hostStart) ex.fields.add(A_SERVER_ADDRESS, p + <usize>hostStart, hostEnd - hostStart);
  if (portStart < n && n - portStart <= 5) {
    let port = 0;
    for (let k = portStart; k < n; k++) {
      const c = <u32>load<u8>(p + <usize>k);
      if (!isDigit(c)) { port = -1; break; }
      port = port * 10 + <i32>(c - 0x30);
    }
    if (port >= 0 && port <= 65535) ex.serverPort = port;
  }
  hHostSet = true;
}

/** Whether the last field line walked was captured: an obs-fold line at the start of the next
 *  walk of the same block (`cont`, a block walked as it arrives) continues it. */
let hLastCaptured = false;

/** A line of the block was skipped unwalked (too long to hold): a fold after it continues nothing. */
export function foldBreak(): void { hLastCaptured = false; }

/** Walks the header lines [from, end) of a complete block, or with `cont` the next lines of a
 *  block walked as it arrives. Captured values go to ex.fields (request or response names per
 *  isReq); framing facts to the h* globals. 0 or PARSE_INVALID. */
export function walkHeaders(p: usize, from: u32, end: u32, isReq: bool, ex: Exchange, cont: bool = false): i32 {
  hContentLength = -1;
  hTeSeen = false;
  hChunkedLast = false;
  hUpgradePtr = 0;
  hUpgradeLen = 0;
  hExpectContinue = false;
  let lastCaptured = cont && hLastCaptured;
  hLastCaptured = false;
  let i = from;
  while (i < end) {
    const lf = findLF(p, i, end);
    if (lf < 0) break;
    let le = <u32>lf;
    if (le > i && <u32>load<u8>(p + <usize>le - 1) == CR) le--;
    const ls = i;
    i = <u32>lf + 1;
    if (le == ls) break; // the empty line
    const c0 = <u32>load<u8>(p + <usize>ls);
    if (isOws(c0)) {
      // obs-fold (RFC 9112 5.2): the line continues the previous field value
      if (lastCaptured) {
        let a = ls, b = le;
        while (a < b && isOws(<u32>load<u8>(p + <usize>a))) a++;
        while (b > a && isOws(<u32>load<u8>(p + <usize>b - 1))) b--;
        if (b > a) ex.fields.extendLast(p + <usize>a, b - a);
      }
      continue;
    }
    let colon = ls;
    while (colon < le && isTchar(<u32>load<u8>(p + <usize>colon))) colon++;
    if (colon == ls || colon >= le || <u32>load<u8>(p + <usize>colon) != 0x3a) return PARSE_INVALID;
    let a = colon + 1, b = le;
    while (a < b && isOws(<u32>load<u8>(p + <usize>a))) a++;
    while (b > a && isOws(<u32>load<u8>(p + <usize>b - 1))) b--;
    const vp = p + <usize>a;
    const vn = b - a;
    const kind = headerKind(p + <usize>ls, colon - ls);
    lastCaptured = false;
    if (kind == H_OTHER) continue;
    if (kind == H_CL) {
      const v = parseContentLength(vp, vn);
      if (v < 0 || (hContentLength >= 0 && hContentLength != v)) return PARSE_INVALID;
      hContentLength = v;
      continue;
    }
    if (kind == H_TE) noteTransferEncoding(vp, vn);
    if (kind == H_UPGRADE && hUpgradePtr == 0) { hUpgradePtr = vp; hUpgradeLen = vn; }
    if (kind == H_HOST) {
      if (isReq && !hHostSet) setAuthority(ex, vp, vn);
      continue;
    }
    const id = isReq ? requestAttr(kind) : responseAttr(kind);
    if (id == 0) continue;
    if (id == A_USER_AGENT_ORIGINAL && ex.fields.has(id)) continue;
    ex.fields.add(id, vp, vn);
    lastCaptured = true;
  }
  hLastCaptured = lastCaptured;
  return 0;
}

/** Whether the header line starting at p (n bytes of it, maybe not all) names a field this
 *  decoder reads; true when it cannot tell (no name and colon in those bytes). */
export function namesKnownField(p: usize, n: u32): bool {
  let colon: u32 = 0;
  while (colon < n && isTchar(<u32>load<u8>(p + <usize>colon))) colon++;
  if (colon == 0 || colon >= n || <u32>load<u8>(p + <usize>colon) != 0x3a) return true;
  return headerKind(p, colon) != H_OTHER;
}

/** Request line (already validated): method, target split into path/query, version. Returns the
 *  index where header lines start, 0 if the line is not a request line after all. */
export function walkRequestLine(p: usize, lfAt: u32, ex: Exchange): u32 {
  hHostSet = false;
  // the line was validated by checkStartLine; the bounds only guard against a host that broke
  // the contract by presenting different bytes
  let sp1: u32 = 0;
  while (sp1 < lfAt && <u32>load<u8>(p + <usize>sp1) != SP) sp1++;
  let sp2 = sp1 + 1;
  while (sp2 < lfAt && <u32>load<u8>(p + <usize>sp2) != SP) sp2++;
  if (sp1 == 0 || sp2 <= sp1 + 1 || sp2 + 8 >= lfAt + 1) return 0;
  ex.fields.add(A_HTTP_REQUEST_METHOD, p, sp1);
  ex.reqMinor = <i32>load<u8>(p + <usize>sp2 + 8) - 0x30;
  // methods are case-sensitive (RFC 9110 9.1)
  ex.isHead = bytesAre(p, sp1, "HEAD");
  ex.isConnect = bytesAre(p, sp1, "CONNECT");
  const t = p + <usize>sp1 + 1;
  const tn = sp2 - sp1 - 1;
  if (ex.isConnect) {
    setAuthority(ex, t, tn); // authority-form: the tunnel's destination
  } else {
    let pathStart: u32 = 0;
    const c0 = <u32>load<u8>(t);
    if (c0 != 0x2f && c0 != 0x2a) {
      // absolute-form (RFC 9112 3.2.2): scheme "://" authority path; the authority replaces Host
      let k: u32 = 0;
      while (k + 2 < tn && !(<u32>load<u8>(t + <usize>k) == 0x3a && <u32>load<u8>(t + <usize>k + 1) == 0x2f && <u32>load<u8>(t + <usize>k + 2) == 0x2f)) k++;
      if (k + 2 < tn) {
        const as = k + 3;
        let ae = as;
        while (ae < tn) {
          const c = <u32>load<u8>(t + <usize>ae);
          if (c == 0x2f || c == 0x3f || c == 0x23) break;
          ae++;
        }
        if (k > 0) ex.fields.add(A_URL_SCHEME, t, k);
        setAuthority(ex, t + <usize>as, ae - as);
        // the authority names the origin (a proxy's client asks for it): without a port it is the
        // scheme's default (RFC 9110 4.2), never the port of the proxy the request was sent to
        if (ex.serverPort < 0) ex.serverPort = defaultPort(t, k);
        pathStart = ae;
      }
    }
    let q = pathStart;
    while (q < tn && <u32>load<u8>(t + <usize>q) != 0x3f) q++;
    if (q > pathStart) ex.fields.add(A_URL_PATH, t + <usize>pathStart, q - pathStart);
    else ex.fields.add(A_URL_PATH, SLASH, 1);
    if (q < tn) ex.fields.add(A_URL_QUERY, t + <usize>q + 1, tn - q - 1);
  }
  return lfAt + 1;
}

const SLASH: usize = memory.data<u8>([0x2f]);

/** Status line (already validated): returns the status code; sets gRespMinor. */
export let gRespMinor: i32 = 1;
export function walkStatusLine(p: usize): i32 {
  gRespMinor = <i32>load<u8>(p + 7) - 0x30;
  return (<i32>load<u8>(p + 9) - 0x30) * 100 + (<i32>load<u8>(p + 10) - 0x30) * 10 + (<i32>load<u8>(p + 11) - 0x30);
}

// ---------------------------------------------------------------------------------------------
// Chunked coding (RFC 9112 7.1)

export let gLineLen: u32 = 0;

/** chunk-size [ chunk-ext ] CRLF. Returns the size (>= 0), -1 when more bytes are needed,
 *  -2 when invalid; gLineLen = bytes of the line including its LF. */
export function parseChunkLine(p: usize, n: u32): i64 {
  const lf = findLF(p, 0, n < CHUNK_LINE_CAP ? n : CHUNK_LINE_CAP);
  if (lf < 0) return n >= CHUNK_LINE_CAP ? -2 : -1;
  let i: u32 = 0;
  let v: i64 = 0;
  let digits = 0;
  while (i < <u32>lf) {
    const c = <u32>load<u8>(p + <usize>i);
    let d: i32 = 0;
    if (isDigit(c)) d = <i32>(c - 0x30);
    else if ((c | 0x20) - 0x61 < 6) d = <i32>((c | 0x20) - 0x61 + 10);
    else break;
    if (++digits > 15) return -2;
    v = (v << 4) | <i64>d;
    i++;
  }
  if (digits == 0) return -2;
  // BWS, extensions: anything printable up to the line end
  while (i < <u32>lf) {
    const c = <u32>load<u8>(p + <usize>i);
    if (c == CR && i + 1 == <u32>lf) break;
    if ((c < SP && c != 0x09) || c == 0x7f) return -2;
    i++;
  }
  gLineLen = <u32>lf + 1;
  return v;
}

/** One trailer line: returns its length including LF (0 when it is the empty line that ends the
 *  message: gLineLen holds its length), -1 when more bytes are needed, -2 when invalid. */
export function parseTrailerLine(p: usize, n: u32): i32 {
  const lf = findLF(p, 0, n);
  if (lf < 0) return n >= HEADER_CAP ? -2 : -1;
  gLineLen = <u32>lf + 1;
  if (lf == 0 || (lf == 1 && <u32>load<u8>(p) == CR)) return 0;
  let k: u32 = 0;
  while (k < <u32>lf && isTchar(<u32>load<u8>(p + <usize>k))) k++;
  if (k == 0 || <u32>load<u8>(p + <usize>k) != 0x3a) {
    if (!isOws(<u32>load<u8>(p))) return -2;
  }
  return <i32>gLineLen;
}
