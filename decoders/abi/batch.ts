// AssemblyScript-only: the optional parse_batch export (decoders/abi/README.md, "Batches").
// A decoder whose parse can read its bytes where they lie re-exports
//   export function parse_batch(count: u32): u32 { return parseBatch(count, parseAt); }
//   export { records } from "../abi/emit";
import { batchRecords } from "./emit";
import { input } from "./window";

// Window layout of a batch: u32 index of the chunk being parsed (read by the host after a trap)
// | u32 0 | chunks, each: u32 stream | u32 dir | u32 len | i32 result | u64 ts | bytes, padded to 8.
export const BATCH_HEADER: usize = 8;
export const CHUNK_HEADER: usize = 24;

/** Parses `count` chunks in order with the decoder's `parse` (given where each chunk's bytes lie).
 *  Stops at the first chunk not consumed whole and leaves that parse's result in its header (the
 *  host then handles it as after a single parse). Returns the number of chunks consumed whole. */
@inline
export function parseBatch(count: u32, parse: (stream: u32, dir: i32, ptr: usize, len: i32, ts: u64) => i32): u32 {
  const base = input();
  batchRecords(true);
  let p = base + BATCH_HEADER;
  let i: u32 = 0;
  for (; i < count; i++) {
    store<u32>(base, i);
    const len = load<i32>(p, 8);
    const r = parse(load<u32>(p), load<i32>(p, 4), p + CHUNK_HEADER, len, load<u64>(p, 16));
    if (r < len) { store<i32>(p, r, 12); break; }
    p += CHUNK_HEADER + <usize>((len + 7) & ~7);
  }
  batchRecords(false);
  return i;
}
