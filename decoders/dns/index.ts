// DNS decoder (UDP and TCP, RFC 1035 / 6891 / 7766): ABI exports only.
import { GAP_ABSORBED, PARSE_INVALID } from "../abi/abi";
import { input, metaBlock } from "../abi/window";
import { parseStream, tcpGap } from "./parse";
import { confidence } from "./message";
import { findState, closeStream, expire } from "./stitch";
import { MODE_UDP } from "./types";

export { abi_version, input, input_cap } from "../abi/window";

export function meta(): usize {
  return metaBlock('{"name":"dns","version":"1.0.0","protocols":["dns"],"ports":[53,5353],"transport":"both"}');
}

export function detect(dir: i32, len: u32): i32 {
  return confidence(dir, input(), len);
}

export function parse(stream: u32, dir: i32, len: u32, ts: u64): i32 {
  return parseStream(stream, dir, input(), len, ts);
}

/** Lost datagrams cost only their own exchanges; lost TCP bytes lose the framing. */
export function gap(stream: u32, dir: i32, len: u32): i32 {
  const st = findState(stream);
  if (st !== null && st.mode == MODE_UDP) return GAP_ABSORBED;
  if (st !== null && st.mode != MODE_UDP && tcpGap(stream, st, dir, len)) return GAP_ABSORBED;
  return PARSE_INVALID;
}

export function close(stream: u32): void {
  closeStream(stream);
}

export function tick(now: u64): void {
  expire(now);
}
