// The V8 young generation (new space) of the agent. V8 lets it grow to two 16 MiB semi-spaces on
// 64-bit and shrinks it when allocation slows: in the soak (issue 12) that was 16-32 MiB of the
// agent's RSS, moving up and down with load. Its maximum (--max-semi-space-size) is fixed when
// the isolate is created, and `node bin/telegen` — how the tests, the soak and the container
// start the agent — passes no V8 flags. What V8 reads at every growth is the growth factor, so
// after each collection the new space may double only while the doubled size stays under the cap.
import { PerformanceObserver } from 'perf_hooks';
import * as v8 from 'v8';

/** Default cap of both semi-spaces together (TELEGEN_YOUNG_GEN_MB; 0 = V8's own sizing). */
export const YOUNG_GEN_CAP_MB = 8;

export function youngGenCapBytes(env: NodeJS.ProcessEnv = process.env, execArgv: string[] = process.execArgv): number {
  // A semi-space size given to node itself wins.
  if ([...execArgv, env.NODE_OPTIONS ?? ''].some((a) => a.includes('semi-space-size'))) return 0;
  const mb = Number(env.TELEGEN_YOUNG_GEN_MB ?? YOUNG_GEN_CAP_MB);
  return Number.isFinite(mb) && mb > 0 ? mb * 2 ** 20 : 0;
}

const newSpaceBytes = (): number => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;

/** The growth factor V8 may use next: 2 (its default) while a doubling stays within the cap, else 1. */
export function growthFactor(newSpace: number, capBytes: number): number {
  return newSpace * 2 <= capBytes ? 2 : 1;
}

/** Keeps the new space at or under `capBytes` from now on; returns the stop function. */
export function capYoungGeneration(capBytes: number): () => void {
  let factor = 0;
  const check = () => {
    const f = growthFactor(newSpaceBytes(), capBytes);
    if (f !== factor) { v8.setFlagsFromString(`--semi-space-growth-factor=${f}`); factor = f; }
  };
  check();
  const obs = new PerformanceObserver(check);
  obs.observe({ entryTypes: ['gc'] });
  return () => { obs.disconnect(); v8.setFlagsFromString('--semi-space-growth-factor=2'); };
}
