// The V8 heap after a burst. V8 collects the old generation when allocation reaches its limit, so
// an agent that goes quiet after a burst (saturation, a drained export backlog) allocates too
// little to ever reach it: the burst's garbage stays resident. Measured (bench/agent-rss, burst
// phase): heap used 54 MiB of which ~16 MiB live, old space 77 MiB, RSS 142-146 MiB still 60 s
// after a 15 s saturation burst, against 74 MiB before it. So when the agent is quiet and its heap
// is well above where the last full collection left it, one full collection is run. At idle that
// costs tens of ms of one thread, only after the heap grew, and never while the agent is busy
// (busy, V8's own collections run often and keep the old space near what is live).
import * as v8 from 'v8';
import * as vm from 'vm';

/** How often the heap is looked at, and the quiet window judged (TELEGEN_IDLE_GC_MS; 0 = never).
 *  2 s, not the 10 s it was: a window counts only if the agent was quiet all through it, so after
 *  a burst the first one began up to a window after the ring's backlog was decoded, and the burst's
 *  garbage stayed resident that long (a probe in the agent: heap used 35 MiB of 14 live, RSS 103
 *  MiB, for 8 s after a saturation burst). Collections stay bounded by GROWN_BYTES, not by this. */
export const IDLE_GC_INTERVAL_MS = 2_000;
/** Quiet: the whole process used at most this share of a core over the last interval (the idle
 *  agent uses ~2.5%, at 1k req/s 11-17%: bench/README.md). */
export const QUIET_CPU_SHARE = 0.05;
/** Collect when the committed heap is this far above what the last full collection left. */
export const GROWN_BYTES = 16 * 2 ** 20;

export function idleGcIntervalMs(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env.TELEGEN_IDLE_GC_MS ?? IDLE_GC_INTERVAL_MS);
  return Number.isFinite(v) && v >= 0 ? v : IDLE_GC_INTERVAL_MS;
}

/** The decision, apart from the timer: collect when quiet and grown. */
export function shouldCollect(cpuMicros: number, intervalMs: number, heapBytes: number, floorBytes: number): boolean {
  return cpuMicros <= QUIET_CPU_SHARE * intervalMs * 1000 && heapBytes > floorBytes + GROWN_BYTES;
}

/** V8's gc(), without `--expose-gc` on the command line (a flag set now applies to new contexts),
 *  compacting unless told not to: a plain full collection leaves the survivors scattered over the
 *  burst's pages, and a page with one live object stays resident (old space 90 MiB for 8 MiB live
 *  after one gc(), 9 MiB compacted: a 1.5 M-object burst with every 15th object kept). Compacting
 *  costs memory while it runs: the survivors are copied to new pages before the old ones are
 *  unmapped (RSS +21-23 MiB for 25-36 MiB of heap used, 110-210 ms; a plain one: +0, 25-47 ms;
 *  test/faults/shed.test.ts). */
export function compactingGc(): (compact?: boolean) => void {
  let gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) {
    v8.setFlagsFromString('--expose-gc');
    gc = vm.runInNewContext('gc') as () => void;
    v8.setFlagsFromString('--no-expose-gc');
  }
  const collect = gc;
  return (compact = true) => {
    if (!compact) { collect(); return; }
    v8.setFlagsFromString('--compact-on-every-full-gc');
    try { collect(); } finally { v8.setFlagsFromString('--no-compact-on-every-full-gc'); }
  };
}

export interface IdleCollectStats { collections: number; lastFreedBytes: number }

/** Starts the check; undefined when turned off. The timer does not keep the process alive.
 *  `afterCollect` runs after each collection (the native heap trim, so freed malloc memory
 *  goes back too). With `maxRssBytes` (agent.max_rss_mb), a collection whose copy of the heap in
 *  use would take RSS over it frees in place instead of compacting. With `relieve`
 *  (memory/native-heap.ts nativeRelief) that collection is run instead: it compacts without the
 *  copy. The copy was the agent's highest RSS at a steady 1k req/s: the agent uses ~4-5% of a
 *  core there, so this collection runs while it serves, and the copy took RSS from ~95 to 108-112
 *  MiB for 0.1-0.2 s (VmHWM over the fixed rate, bench/agent-rss: 2 of 5 rounds; 94-95.5 in 5 of
 *  5 with the relief), and after a burst to 112-116. */
export function startIdleCollect(intervalMs = idleGcIntervalMs(), afterCollect?: () => void, maxRssBytes = 0, relieve?: () => void): { stop: () => void; stats: IdleCollectStats } | undefined {
  if (intervalMs === 0) return undefined;
  const gc = compactingGc();
  const stats: IdleCollectStats = { collections: 0, lastFreedBytes: 0 };
  const heap = () => v8.getHeapStatistics().total_heap_size;
  let floor = heap();
  let cpu = process.cpuUsage();
  const timer = setInterval(() => {
    const used = process.cpuUsage(cpu);
    cpu = process.cpuUsage();
    const before = heap();
    // A heap that shrank on its own lowers the floor, so the next growth is measured from there.
    if (before < floor) floor = before;
    if (!shouldCollect(used.user + used.system, intervalMs, before, floor)) return;
    if (relieve) relieve();
    else gc(!maxRssBytes || process.memoryUsage.rss() + v8.getHeapStatistics().used_heap_size <= maxRssBytes);
    afterCollect?.();
    // What is live now (full queues during an outage) is the new floor: a heap that cannot shrink
    // is not collected again until it grows another GROWN_BYTES.
    floor = heap();
    stats.collections++;
    stats.lastFreedBytes = Math.max(0, before - floor);
    // This interval's own collection is not load.
    cpu = process.cpuUsage();
  }, intervalMs).unref();
  return { stop: () => clearInterval(timer), stats };
}
