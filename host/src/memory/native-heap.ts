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

/** Whether start-up relieves the heap before its heavy steps (TELEGEN_START_RELIEF; 0 = never). */
export function startReliefEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.TELEGEN_START_RELIEF !== '0';
}

let relief: (() => boolean) | null | undefined;
/** The addon's relieveHeap (a critical memory-pressure notification to V8, then malloc_trim);
 *  undefined without the addon. V8's collection for it evacuates only fragmented pages, into the
 *  free space the same collection made, so it compacts without copying the whole old space to new
 *  pages first: on a 28 MiB old space holding 16 MiB live (test heap, one process) its RSS
 *  high-water mark rose 0.5-1.3 MiB against 14-16 MiB for gc() with --compact-on-every-full-gc,
 *  both leaving 17 MiB of old space, in 74-128 ms against 48-61. */
export function nativeRelief(): (() => boolean) | undefined {
  if (relief === undefined) {
    relief = null;
    try {
      const n = loadNative() as unknown as { relieveHeap?: () => boolean };
      if (typeof n.relieveHeap === 'function') relief = n.relieveHeap;
    } catch { /* replay and doctor run without the addon */ }
  }
  return relief ?? undefined;
}

/** Whether the idle collection uses nativeRelief() where the addon has it
 *  (TELEGEN_COLLECT_RELIEF; 0 = gc() compacting every page, as before). */
export function collectReliefEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.TELEGEN_COLLECT_RELIEF !== '0';
}

let rssAfterRelief = 0;
/** Below this growth since the last relief (after a tracer disabled in config, a small one) the
 *  next one would free little: skipped. */
const RELIEF_MIN_GROWTH_BYTES = 2 << 20;
/**
 * Before each heavy start-up step (the decoders' compilation; each tracer's BPF objects, for
 * which libbpf holds two copies of the kernel's 5.3 MiB BTF while one loads): a full collection
 * that also shrinks the young generation (module loading grows it to 16 MiB), then a native heap
 * trim, so the step's transient lands on what is live rather than on start-up's garbage: this is
 * where the agent's peak RSS was (bench/README.md "Start-up peak RSS"). ~40-80 ms each, start-up
 * only (a tracer hooking a process at run time must not pause the agent). No-op without the addon.
 */
export function relieveHeapBeforeLoad(): void {
  const relieve = startReliefEnabled() ? nativeRelief() : undefined;
  if (!relieve) return;
  if (rssAfterRelief && process.memoryUsage.rss() < rssAfterRelief + RELIEF_MIN_GROWTH_BYTES) return;
  relieve();
  rssAfterRelief = process.memoryUsage.rss();
}
