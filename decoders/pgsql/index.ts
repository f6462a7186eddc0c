// PostgreSQL frontend/backend protocol 3.0 decoder: ABI exports only (see parse.ts, stitch.ts).
import { metaBlock } from "../abi/window";
import { GAP_ABSORBED, PARSE_NEEDS_MORE } from "../abi/abi";
import { parseInput, parseGap, detectBytes } from "./parse";
import { streams, getStream, closeStream, expire } from "./stitch";
import { input } from "../abi/window";

export { abi_version, input, input_cap } from "../abi/window";

let lastTs: u64 = 0;

export function meta(): usize {
  return metaBlock('{"name":"pgsql","version":"1.0.0","protocols":["postgresql"],"ports":[5432],"transport":"tcp"}');
}

export function detect(dir: i32, len: i32): i32 {
  if (len <= 0) return 0;
  return detectBytes(dir, input(), len);
}

export function parse(stream: u32, dir: i32, len: i32, ts: u64): i32 {
  if (len <= 0) return PARSE_NEEDS_MORE;
  if (ts > lastTs) lastTs = ts;
  return parseInput(stream, getStream(stream), dir, input(), len, ts);
}

export function gap(stream: u32, dir: i32, len: u32): i32 {
  if (!streams.has(stream)) return GAP_ABSORBED;
  parseGap(streams.get(stream), dir, len);
  return GAP_ABSORBED;
}

export function close(stream: u32): void {
  closeStream(stream, lastTs);
}

export function tick(now: u64): void {
  expire(now);
}
