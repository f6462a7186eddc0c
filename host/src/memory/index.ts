// The agent's own memory (issue 12: RSS flat, aim ≤ 100 MB): the V8 young generation capped,
// the old generation's growth between full collections bounded, a burst's garbage collected once
// the agent is quiet again, the native heap returning what it frees. docs: bench/README.md §Soak and §Agent memory.
import { compactingGc, startIdleCollect } from './idle-collect';
import { collectReliefEnabled, nativeRelief, startHeapTrim } from './native-heap';
import { limitOldGenerationGrowth, oldGenGrowingPercent } from './old-generation';
import { capYoungGeneration, youngGenCapBytes } from './young-generation';

/** Starts all four; calling the result stops them (agent shutdown). Its `collect` runs one full
 *  collection, compacting unless told not to, and the native heap trim (the memory bound,
 *  memory/overload.ts). `maxRssBytes`: agent.max_rss_mb (the idle collection's compaction too
 *  stays under it). */
export function startMemoryTuning(maxRssBytes = 0): (() => void) & { collect: (compact: boolean) => void } {
  const cap = youngGenCapBytes();
  const uncap = cap ? capYoungGeneration(cap) : undefined;
  const growing = oldGenGrowingPercent();
  const unlimit = growing ? limitOldGenerationGrowth(growing) : undefined;
  const trim = startHeapTrim();
  // Compacts without copying every survivor first (native-heap.ts nativeRelief). The memory
  // bound keeps its own collection: with the relief, test/faults/shed.test.ts's 110 MiB bound
  // peaked at 98 MiB (101-102 before) but paused 9.2 s over 8 collections and the ring dropped
  // 1363 records; not measured beyond that one run.
  const relieve = collectReliefEnabled() ? nativeRelief() : undefined;
  const idle = startIdleCollect(undefined, trim?.trim, maxRssBytes, relieve);
  const gc = compactingGc();
  const stop = () => { uncap?.(); unlimit?.(); if (trim) clearInterval(trim.timer); idle?.stop(); };
  return Object.assign(stop, { collect: (compact: boolean) => { gc(compact); trim?.trim(); } });
}
