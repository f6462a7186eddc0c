// HTTP/2 + HPACK + gRPC decoder: ABI exports only (decoders/abi/abi.ts).
export { abi_version, input, input_cap } from "../abi/window";
import { input as inputPtr, metaBlock } from "../abi/window";
import { DIR_REQUEST, GAP_ABSORBED } from "../abi/abi";
import { Conn, T_HEADERS, T_PUSH_PROMISE, T_SETTINGS, F_PADDED, F_PRIORITY, FRAME_HEADER, PREFACE_LEN } from "./types";
import { parseFrames, gapDir, prefaceMatch, plausibleHeader } from "./parse";
import { flushAll, expire } from "./stitch";
import { PRIVATE_ATTRS } from "./emit";

const conns = new Map<u32, Conn>();

export function meta(): usize {
  return metaBlock(
    '{"name":"http2","version":"1.0.0","protocols":["http2","grpc"],' +
    '"ports":[443,8443,50051,9090,8080],"transport":"tcp","attributes":' + PRIVATE_ATTRS + "}",
  );
}

/** Request (1) or response (2) evidence from the first field of a header block, 0 if none. */
function blockSide(p: usize, n: u32): i32 {
  let i: u32 = 0;
  // Skip dynamic table size updates (001xxxxx); only single-byte ones are worth the trouble here.
  while (i < n && (load<u8>(p + <usize>i) & 0xe0) == 0x20 && (load<u8>(p + <usize>i) & 0x1f) != 0x1f) i++;
  if (i >= n) return 0;
  const b = <u32>load<u8>(p + <usize>i);
  let idx: u32;
  if (b & 0x80) idx = b & 0x7f;
  else if (b & 0x40) idx = b & 0x3f;
  else idx = b & 0x0f;
  if (idx == 0 && (b & 0x80) == 0 && i + 3 < n) {
    // Literal with a new name: look at the raw (not Huffman) name.
    const nl = <u32>load<u8>(p + <usize>i + 1);
    if (nl < 0x80 && nl >= 5 && i + 2 + nl <= n && load<u8>(p + <usize>i + 2) == 0x3a /* : */) {
      const c1 = <u32>load<u8>(p + <usize>i + 3);
      const c2 = <u32>load<u8>(p + <usize>i + 4);
      if (c1 == 0x6d || c1 == 0x70 || c1 == 0x61 || (c1 == 0x73 && c2 == 0x63)) return 1; // :method :path :authority :scheme
      if (c1 == 0x73 && c2 == 0x74) return 2; // :status
    }
    return 0;
  }
  // Static indices 1..7 are :authority, :method, :path, :scheme; 8..14 are :status.
  if (idx >= 1 && idx <= 7) return 1;
  if (idx >= 8 && idx <= 14) return 2;
  return 0;
}

/**
 * Confidence that the first bytes of a direction are HTTP/2: the client preface is certain; a
 * server SETTINGS frame first is likely; otherwise a chain of plausible frames (a connection
 * older than us). HEADERS starting with :method/:path or :status tell the two sides apart.
 */
export function detect(dir: i32, len: u32): i32 {
  const base = inputPtr();
  const m = prefaceMatch(base, len);
  if (m >= 0 && len > 0) {
    if (<u32>m >= PREFACE_LEN) return dir == DIR_REQUEST ? 100 : 10;
    return m >= 4 && dir == DIR_REQUEST ? 60 : 0;
  }
  let q: u32 = 0;
  let frames = 0;
  let settingsFirst = false;
  let reqEv = 0;
  let respEv = 0;
  while (q + FRAME_HEADER <= len) {
    const fl = plausibleHeader(base + <usize>q, 16384);
    if (fl < 0) break;
    const type = load<u8>(base + <usize>q + 3);
    const flags = load<u8>(base + <usize>q + 4);
    if (frames == 0) settingsFirst = type == T_SETTINGS && (flags & 1) == 0;
    const payload = base + <usize>q + FRAME_HEADER;
    if (type == T_PUSH_PROMISE) respEv++;
    if (type == T_HEADERS && q + FRAME_HEADER + <u32>fl <= len) {
      let off: u32 = 0;
      let pad: u32 = 0;
      if (flags & F_PADDED) { pad = <u32>load<u8>(payload); off = 1; }
      if (flags & F_PRIORITY) off += 5;
      if (off + pad < <u32>fl) {
        const side = blockSide(payload + <usize>off, <u32>fl - off - pad);
        if (side == 1) reqEv++;
        else if (side == 2) respEv++;
      }
    }
    q += FRAME_HEADER + <u32>fl;
    frames++;
  }
  if (frames == 0) return 0;
  const whole = q == len || frames >= 2;
  if (!whole) return 20;
  if (dir == DIR_REQUEST) {
    if (respEv > 0 && reqEv == 0) return 10;
    return reqEv > 0 ? 80 : 55;
  }
  if (reqEv > 0 && respEv == 0) return 10;
  if (settingsFirst || respEv > 0) return 80;
  return 55;
}

function conn(stream: u32): Conn {
  if (conns.has(stream)) return conns.get(stream);
  const c = new Conn();
  conns.set(stream, c);
  return c;
}

export function parse(stream: u32, dir: i32, len: u32, ts: u64): i32 {
  if (dir != 0 && dir != 1) return -2;
  return parseFrames(conn(stream), stream, dir, inputPtr(), len, ts);
}

export function gap(stream: u32, dir: i32, len: u32): i32 {
  if (dir != 0 && dir != 1) return -2;
  gapDir(conn(stream), dir, len);
  return GAP_ABSORBED;
}

export function close(stream: u32): void {
  if (!conns.has(stream)) return;
  flushAll(conns.get(stream), stream);
  conns.delete(stream);
}

export function tick(now: u64): void {
  const keys = conns.keys();
  for (let i = 0; i < keys.length; i++) expire(conns.get(keys[i]), keys[i], now);
}
