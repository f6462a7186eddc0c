// The V8 old generation of the agent. After each full collection V8 lets the old space grow to
// a multiple of what survived (up to ~4x, from how fast its collections ran) before the next
// one. The agent promotes steadily (spans the correlator holds for 1.5 s outlive two scavenges),
// so at 1k req/s its old space went from ~19 MiB live to ~60 MiB of mostly garbage before each
// full GC: a 40 MiB sawtooth in RSS (bench/agent-rss). A fixed, smaller factor keeps it near
// what is live. It is not a cap: with more live data (queues filling during an export outage)
// the limit grows with it. V8 reads the flag at every full collection, so it can be set here.
import * as v8 from 'v8';

/** Default growth of the old space over what survived a full GC, in percent
 *  (TELEGEN_OLD_GEN_GROWING_PERCENT; 0 = V8's own factor). */
export const OLD_GEN_GROWING_PERCENT = 30;

export function oldGenGrowingPercent(env: NodeJS.ProcessEnv = process.env, execArgv: string[] = process.execArgv): number {
  // A growing factor given to node itself wins.
  if ([...execArgv, env.NODE_OPTIONS ?? ''].some((a) => a.includes('heap-growing-percent'))) return 0;
  const p = Number(env.TELEGEN_OLD_GEN_GROWING_PERCENT ?? OLD_GEN_GROWING_PERCENT);
  return Number.isFinite(p) && p > 0 ? Math.round(p) : 0;
}

/** Sets the factor; the returned function gives V8 its own back. */
export function limitOldGenerationGrowth(percent: number): () => void {
  v8.setFlagsFromString(`--heap-growing-percent=${percent}`);
  return () => v8.setFlagsFromString('--heap-growing-percent=0');
}
