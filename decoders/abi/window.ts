// AssemblyScript-only: the fixed input window and the ABI marker exports every decoder re-exports
//   export { abi_version, input, input_cap } from "../abi/window";
import { ABI_VERSION } from "./abi";

// The host copies stream bytes here before each detect()/parse(); a decoder must never keep a
// pointer into it across calls. 256 KiB: a header block larger than this is refused as invalid.
export const INPUT_CAP: u32 = 262144;
const inputBuf: usize = memory.data(262144);

export function abi_version(): i32 { return ABI_VERSION; }
export function input(): usize { return inputBuf; }
export function input_cap(): u32 { return INPUT_CAP; }

let metaPtr: usize = 0;
/** Length-prefixed (u32 LE) UTF-8 JSON block, built once. */
export function metaBlock(json: string): usize {
  if (metaPtr == 0) {
    const bytes = String.UTF8.encode(json);
    const n = <u32>bytes.byteLength;
    metaPtr = heap.alloc(4 + n);
    store<u32>(metaPtr, n);
    memory.copy(metaPtr + 4, changetype<usize>(bytes), n);
  }
  return metaPtr;
}
