// h2c upgrade (RFC 7540 §3.2; RFC 9113 §3.1 deprecates it, clients still send it): the HTTP/1.1
// request that asked for `Upgrade: h2c` is the HTTP/2 connection's stream 1, half-closed from the
// client; its response arrives as HTTP/2 frames. The http1 decoder hands that request over (the
// host feeds it first on the request side), so it is read here into stream 1's request headers,
// in the form HTTP/2 would have sent them (RFC 9113 §8.3.1, §8.2.2).
import { PARSE_NEEDS_MORE } from "../abi/abi";
import { Conn, DirState } from "./types";
import { appendField, nameIs, onUpgradeRequest, onUpgradeBody, upgradeCut } from "./stitch";

/** The largest request head taken (the http1 decoder hands over at most 24 KiB). */
const HEAD_CAP: u32 = 24576;

/** `TOKEN SP` at p: an HTTP/1.x request line begins (the preface starts "PRI *", never taken). */
export function looksLikeRequest(p: usize, n: u32): bool {
  let i: u32 = 0;
  while (i < n && i < 16) {
    const c = <u32>load<u8>(p + <usize>i);
    if (c == 0x20) return i > 0 && !(i == 3 && load<u8>(p) == 0x50 && load<u8>(p + 1) == 0x52 && load<u8>(p + 2) == 0x49);
    if (c - 0x41 >= 26) return false; // methods are upper-case tokens
    i++;
  }
  return false;
}

/** Offset just past the CRLFCRLF ending the head within n bytes, or 0. */
function headEnd(p: usize, n: u32): u32 {
  for (let i: u32 = 3; i < n; i++) {
    if (load<u8>(p + <usize>i) == 0x0a && load<u8>(p + <usize>i - 1) == 0x0d &&
        load<u8>(p + <usize>i - 2) == 0x0a && load<u8>(p + <usize>i - 3) == 0x0d) return i + 1;
  }
  return 0;
}

/** Fields of HTTP/1.1 that HTTP/2 does not carry (RFC 9113 §8.2.2), and Host (→ :authority). */
function dropped(p: usize, n: u32): bool {
  if (n == 4) return nameIs(p, n, "host");
  if (n == 7) return nameIs(p, n, "upgrade");
  if (n == 10) return nameIs(p, n, "connection") || nameIs(p, n, "keep-alive");
  if (n == 14) return nameIs(p, n, "http2-settings");
  if (n == 16) return nameIs(p, n, "proxy-connection");
  if (n == 17) return nameIs(p, n, "transfer-encoding");
  return false;
}

@inline function isOws(c: u32): bool { return c == 0x20 || c == 0x09; }

// a pseudo-header's name from a string constant, copied once into memory the list can copy from
const nameBuf: usize = memory.data(16);
function putName(list: Uint8Array, at: i32, name: string, vp: usize, vl: u32): i32 {
  for (let i = 0; i < name.length; i++) store<u8>(nameBuf + <usize>i, <u8>name.charCodeAt(i));
  return appendField(list, at, nameBuf, <u32>name.length, vp, vl);
}

/**
 * Reads the upgrade request at the start of the client side: returns the bytes of its head (the
 * body, Content-Length bytes, is counted by the caller), PARSE_NEEDS_MORE, or 0 when it is not
 * a request head this decoder takes.
 */
export function upgradeRequest(c: Conn, connId: u32, d: DirState, p: usize, len: u32, ts: u64): i32 {
  // request line: method SP target SP HTTP/1.x CRLF; bytes that only start like one (a
  // connection joined mid-stream) are turned down as soon as their first line is complete
  const scan = len < HEAD_CAP ? len : HEAD_CAP;
  let sp1: u32 = 0;
  while (sp1 < scan && load<u8>(p + <usize>sp1) != 0x20) sp1++;
  let sp2 = sp1 + 1;
  while (sp2 < scan && load<u8>(p + <usize>sp2) != 0x20 && load<u8>(p + <usize>sp2) != 0x0d) sp2++;
  let eol = sp2;
  while (eol < scan && load<u8>(p + <usize>eol) != 0x0d) eol++;
  if (eol >= scan) return len < HEAD_CAP ? PARSE_NEEDS_MORE : 0;
  if (eol - sp2 != 9 || load<u8>(p + <usize>sp2 + 5) != 0x2f || load<u8>(p + <usize>sp2 + 1) != 0x48) return 0;
  const h = headEnd(p, scan);
  if (h == 0) return len < HEAD_CAP ? PARSE_NEEDS_MORE : 0;
  // a field takes 9 + name + value bytes of the serialised list (stitch.ts), a redacted value 8
  const list = new Uint8Array(<i32>h * 3 + 128);
  let at = putName(list, 0, ":method", p, sp1);
  at = putName(list, at, ":path", p + <usize>sp1 + 1, sp2 - sp1 - 1);
  at = putName(list, at, ":scheme", memory.data<u8>([0x68, 0x74, 0x74, 0x70]), 4);
  const authAt = at;
  let hasAuthority = false;
  let bodyLen: i64 = 0;
  // the http1 decoder's copy ends with `:telegen-h1: SIZE BODY CUT` (no field name starts with
  // ':' on the wire): the request's sizes, its body not following
  let handed = false;
  let wireSize: i64 = 0;
  let handedBody: i64 = 0;
  let cut = false;
  let q = eol + 2;
  while (q + 2 <= h) {
    let e = q;
    while (e < h && load<u8>(p + <usize>e) != 0x0d) e++;
    if (e == q) break; // the empty line
    let colon = q;
    while (colon < e && load<u8>(p + <usize>colon) != 0x3a) colon++;
    if (colon == q && e - q > 13 && nameIs(p + <usize>q + 1, 10, "telegen-h1")) {
      let k = q + 13;
      let m = k;
      while (m < e && load<u8>(p + <usize>m) != 0x20) m++;
      wireSize = decimal(p + <usize>k, m - k);
      k = m + 1;
      m = k;
      while (m < e && load<u8>(p + <usize>m) != 0x20) m++;
      handedBody = decimal(p + <usize>k, m - k);
      cut = m + 1 < e && load<u8>(p + <usize>m + 1) == 0x31;
      handed = wireSize >= handedBody && handedBody >= 0 && wireSize < 0xffffffff;
    } else if (colon < e && colon > q) {
      const np = p + <usize>q;
      const nl = colon - q;
      let vs = colon + 1;
      while (vs < e && isOws(<u32>load<u8>(p + <usize>vs))) vs++;
      let ve = e;
      while (ve > vs && isOws(<u32>load<u8>(p + <usize>ve - 1))) ve--;
      const vp = p + <usize>vs;
      const vl = ve - vs;
      if (nl == 4 && nameIs(np, nl, "host") && !hasAuthority) {
        // :authority goes before the regular fields (RFC 9113 §8.3); shift what follows it
        hasAuthority = true;
        at = insertAuthority(list, authAt, at, vp, vl);
      } else if (!dropped(np, nl)) {
        const from = at;
        at = appendField(list, at, np, nl, vp, vl);
        lowerName(list, from, nl);
        if (nl == 14 && nameIs(np, nl, "content-length")) bodyLen = decimal(vp, vl);
      }
    }
    q = e + 2;
  }
  if (handed) {
    onUpgradeRequest(c, connId, list.slice(0, at), <u32>(wireSize - handedBody), ts);
    if (handedBody > 0) onUpgradeBody(c, <u32>handedBody);
    if (cut) upgradeCut(c);
    d.h1Body = 0;
    return <i32>h;
  }
  onUpgradeRequest(c, connId, list.slice(0, at), h, ts);
  d.h1Body = bodyLen > 0 && bodyLen < 0xffffffff ? <u32>bodyLen : 0;
  return <i32>h;
}

/**
 * The server side of an h2c connection fed whole (not through the http1 decoder): the bytes of a
 * leading `HTTP/1.1 101` head, PARSE_NEEDS_MORE, or 0 when the side does not start with one.
 */
export function switchingHead(p: usize, len: u32): i32 {
  const s = "HTTP/1.1 101 ";
  const n = <u32>s.length;
  for (let i: u32 = 0; i < n && i < len; i++) if (<u32>load<u8>(p + <usize>i) != <u32>s.charCodeAt(<i32>i)) return 0;
  const h = headEnd(p, len < HEAD_CAP ? len : HEAD_CAP);
  if (h == 0) return len < HEAD_CAP ? PARSE_NEEDS_MORE : 0;
  return <i32>h;
}

function insertAuthority(list: Uint8Array, authAt: i32, at: i32, vp: usize, vl: u32): i32 {
  const moved = at - authAt;
  const tmp = list.slice(authAt, at);
  const end = putName(list, authAt, ":authority", vp, vl);
  memory.copy(list.dataStart + <usize>end, tmp.dataStart, <usize>moved);
  return end + moved;
}

/** HTTP/2 field names are lower case (RFC 9113 §8.2.1). */
function lowerName(list: Uint8Array, at: i32, nl: u32): void {
  const np = list.dataStart + <usize>at + 5;
  for (let i: u32 = 0; i < nl; i++) {
    const c = <u32>load<u8>(np + <usize>i);
    if (c - 0x41 < 26) store<u8>(np + <usize>i, <u8>(c | 0x20));
  }
}

function decimal(p: usize, n: u32): i64 {
  if (n == 0 || n > 12) return -1;
  let v: i64 = 0;
  for (let i: u32 = 0; i < n; i++) {
    const c = <u32>load<u8>(p + <usize>i) - 0x30;
    if (c > 9) return -1;
    v = v * 10 + <i64>c;
  }
  return v;
}
