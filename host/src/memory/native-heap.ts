// The agent's native heap (glibc malloc, where Node's ArrayBuffers, V8's compiler zones and
// libbpf allocate). Its defaults suit short programs: it raises its mmap and trim thresholds
// after every large freed block, and never returns free pages below the top of a heap. In the
// soak (issue 12) that held 25-30 MiB of freed memory resident in the main heap alone.
import { loadNative } from '../native';

interface NativeHeap {
  tuneNativeHeap(mmapThresholdBytes: number, trimThresholdBytes: number): boolean;
  trimNativeHeap(): boolean;
}

/** Blocks from this size up are mmapped, so freeing them returns them at once. */
export const MMAP_THRESHOLD_BYTES = 256 << 10;
/** Free bytes at the top of a heap that free() keeps before giving them back. */
export const TRIM_THRESHOLD_BYTES = 1 << 20;
/** How often free pages inside the heaps go back to the kernel (TELEGEN_HEAP_TRIM_MS; 0 = never,
 *  and glibc's adaptive defaults are kept). */
export function trimIntervalMs(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env.TELEGEN_HEAP_TRIM_MS ?? 10_000);
  return Number.isFinite(v) && v >= 0 ? v : 10_000;
}

/** Fixes malloc's thresholds and trims on an interval; undefined when turned off or the addon is
 *  missing (replay and doctor run without it). The timer does not keep the process alive. */
export function startHeapTrim(intervalMs = trimIntervalMs()): { timer: NodeJS.Timeout; trim: () => void } | undefined {
  if (intervalMs === 0) return undefined;
  let heap: NativeHeap;
  try { heap = loadNative() as unknown as NativeHeap; } catch { return undefined; }
  if (typeof heap.tuneNativeHeap !== 'function') return undefined; // an addon built before this
  heap.tuneNativeHeap(MMAP_THRESHOLD_BYTES, TRIM_THRESHOLD_BYTES);
  const trim = () => { heap.trimNativeHeap(); };
  trim();
  return { timer: setInterval(trim, intervalMs).unref(), trim };
}
