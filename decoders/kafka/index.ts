// Kafka wire protocol decoder: ABI exports only (see parse.ts, stitch.ts, emit.ts).
export { abi_version, input, input_cap } from "../abi/window";
import { metaBlock } from "../abi/window";
import { parseStream, gapStream, closeStream, tickAll, detectBytes } from "./stitch";

export function meta(): usize {
  return metaBlock('{"name":"kafka","version":"0.1.0","protocols":["kafka"],"ports":[9092],"transport":"tcp","attributes":{"1024":"telegen.kafka.transaction_result"}}');
}

export function detect(dir: i32, len: i32): i32 {
  return detectBytes(dir, len);
}

export function parse(stream: u32, dir: i32, len: i32, ts: u64): i32 {
  return parseStream(stream, dir, len, ts);
}

export function gap(stream: u32, dir: i32, len: i32): i32 {
  return gapStream(stream, dir, len);
}

export function close(stream: u32): void {
  closeStream(stream);
}

export function tick(now: u64): void {
  tickAll(now);
}
