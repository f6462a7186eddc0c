// HTTP/1.x decoder: ABI exports only (decoders/abi). Framing in parse.ts, matching in stitch.ts.
export { abi_version, input, input_cap } from "../abi/window";
import { input, metaBlock } from "../abi/window";
import { parseStream, closeStream, gapStream, tickStreams } from "./stitch";
import { detectHttp } from "./detect";
import { PRIVATE_ATTRS } from "./emit";

export function meta(): usize {
  return metaBlock('{"name":"http1","version":"1.0.0","protocols":["http"],"ports":[80,8080,8000,3000,5000,8888],"transport":"tcp","attributes":' + PRIVATE_ATTRS + "}");
}

export function detect(dir: i32, len: u32): i32 {
  return detectHttp(dir, input(), len);
}

export function parse(stream: u32, dir: i32, len: u32, ts: u64): i32 {
  return parseStream(stream, dir, input(), len, ts);
}

export function gap(stream: u32, dir: i32, len: u32): i32 {
  return gapStream(stream, dir, len, 0);
}

export function gap_at(stream: u32, dir: i32, len: u32, ts: u64): i32 {
  return gapStream(stream, dir, len, ts);
}

export function close(stream: u32): void {
  closeStream(stream);
}

export function tick(now: u64): void {
  tickStreams(now);
}
