// HTTP/2 + HPACK + gRPC decoder: ABI exports only (decoders/abi/abi.ts).
export { abi_version, input, input_cap } from "../abi/window";
import { input as inputPtr, metaBlock } from "../abi/window";
import { GAP_ABSORBED } from "../abi/abi";
import { Conn } from "./types";
import { parseFrames, gapDir, detectFrames, releaseConn } from "./parse";
import { flushAll, expire, onHint } from "./stitch";
import { takeHint } from "./hint";
import { PRIVATE_ATTRS } from "./emit";

const conns = new Map<u32, Conn>();

export function meta(): usize {
  return metaBlock(
    '{"name":"http2","version":"1.0.0","protocols":["http2","grpc"],' +
    '"ports":[443,8443,50051,9090,8080],"transport":"tcp","attributes":' + PRIVATE_ATTRS + "}",
  );
}

/** Confidence 0–100 that the first bytes of a direction are HTTP/2 (see parse.ts). */
export function detect(dir: i32, len: u32): i32 {
  return detectFrames(dir, inputPtr(), len);
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
  gapDir(conn(stream), stream, dir, len);
  return GAP_ABSORBED;
}

/** A header field from the peer's own HTTP/2 library (decoders/abi/README.md, hints). */
export function hint(stream: u32, dir: i32, len: u32, ts: u64): i32 {
  if (dir != 0 && dir != 1) return -2;
  const c = conn(stream);
  const d = c.swap == 1 ? dir ^ 1 : dir;
  const sid = takeHint(c, d, inputPtr(), len);
  if (sid == 0xffffffff) return -3;
  onHint(c, stream, sid);
  return 0;
}

export function close(stream: u32): void {
  if (!conns.has(stream)) return;
  const c = conns.get(stream);
  flushAll(c, stream);
  releaseConn(c);
  conns.delete(stream);
}

export function tick(now: u64): void {
  const keys = conns.keys();
  for (let i = 0; i < keys.length; i++) expire(conns.get(keys[i]), keys[i], now);
}
