// CPU profiler costs (issue 9): (1) a CPU-bound C workload profiled vs not (the profiler on every
// CPU at 99 Hz, all processes, as the agent runs it, switched on and off between alternating
// rounds after a warm-up whose cold-start cost is reported apart), as a ratio of the workload's
// wall and CPU time; (2) the host process's event-loop delay meanwhile — the agent's main
// thread, which only drains the kernel while the worker symbolizes; (3) symbolization time per
// 10k unique stacks (real addresses in this process's executable mappings: node's own symbols)
// cold and warm, and the heap those caches hold. Needs root (BPF). Reports; never asserts.
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { monitorEventLoopDelay } from 'perf_hooks';
import { spread, writeResult, rssBytesOf } from './lib';
import { Profiler } from '../host/src/profile/profiler';
import { profileSchema } from '../host/src/profile/config';
import { RawDrain, symbolizeDrain } from '../host/src/profile/model';
import { Symbolizer } from '../host/src/profile/symbolizer';
import { readMaps } from '../host/src/profile/procmaps';
import { ThreadSpans } from '../host/src/profile/links';
import { monotonicClock } from '../host/src/pipeline/spans';

const WORK_C = `
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sys/resource.h>
volatile unsigned long sink;
__attribute__((noinline)) void step(unsigned long i) { sink += i * 2654435761UL; }
int main(int argc, char **argv) {
  unsigned long n = strtoul(argv[1], 0, 10);
  struct timespec a, b; clock_gettime(CLOCK_MONOTONIC, &a);
  for (unsigned long i = 0; i < n; i++) step(i);
  clock_gettime(CLOCK_MONOTONIC, &b);
  struct rusage u; getrusage(RUSAGE_SELF, &u);
  printf("%f %f\\n", (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9,
         u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6);
  return 0;
}
`;

function runWork(exe: string, n: number): Promise<{ wall: number; cpu: number }> {
  return new Promise((resolve, reject) => {
    const p = spawn(exe, [String(n)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout!.on('data', (d) => { out += d; });
    p.on('exit', (c) => {
      const m = /([\d.]+) ([\d.]+)/.exec(out);
      if (c !== 0 || !m) reject(new Error(`workload exited ${c}: ${out}`)); else resolve({ wall: Number(m[1]), cpu: Number(m[2]) });
    });
  });
}

const ms = (ns: number) => Math.round(ns / 1e4) / 100;

async function overhead(exe: string, rounds: number, n: number, warmupMs: number, intervalMs: number) {
  const off: Array<{ wall: number; cpu: number }> = [];
  const on: Array<{ wall: number; cpu: number }> = [];
  const delayOff: number[][] = [];
  const delayOn: number[][] = [];
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-bench-prof-'));
  // The agent's defaults (99 Hz, every process) with a shorter drain interval than its 10 s, so
  // several drains and symbolizations land inside each run. Trace links on, as in the agent: every
  // sample's time goes through the kernel ring and is joined (no spans here, so none link).
  const clock = monotonicClock();
  const p = new Profiler({ cfg: profileSchema.parse({ enabled: true, interval_ms: intervalMs, pprof: { enabled: true } }), dataDir, exportOtlp: () => {}, spans: new ThreadSpans(), toEpochNs: (t) => clock.toEpochNs(t) });
  p.start();
  // Cold start: the first intervals read every process's maps and ELF files; measured apart.
  const w0 = performance.now();
  await new Promise((r) => setTimeout(r, warmupMs));
  const warm = p.stats();
  const cold = { seconds: Math.round((performance.now() - w0) / 100) / 10, intervalsDone: warm.intervals, workerSeconds: Math.round(warm.workerMs / 100) / 10, deferredDrains: warm.deferredDrains, symbolizer: p.symbolizerStats() };
  const before = p.stats();
  for (let r = 0; r < rounds; r++) {
    for (const profiled of [false, true]) {
      await p.setEnabled(profiled);
      const h = monitorEventLoopDelay({ resolution: 5 });
      h.enable();
      const res = await runWork(exe, n);
      h.disable();
      (profiled ? on : off).push(res);
      (profiled ? delayOn : delayOff).push([ms(h.percentile(50)), ms(h.percentile(99)), ms(h.max)]);
    }
  }
  const after = p.stats();
  await p.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
  const ratio = (k: 'wall' | 'cpu') => spread(on.map((x, i) => x[k] / off[i][k]));
  const col = (a: number[][], i: number) => spread(a.map((x) => x[i]));
  return {
    rounds, iterations: n, drainIntervalMs: intervalMs, coldStart: cold,
    wallSeconds: { off: spread(off.map((x) => x.wall)), on: spread(on.map((x) => x.wall)) },
    cpuSeconds: { off: spread(off.map((x) => x.cpu)), on: spread(on.map((x) => x.cpu)) },
    ratioWall: ratio('wall'), ratioCpu: ratio('cpu'),
    hostEventLoopDelayMs: {
      off: { p50: col(delayOff, 0), p99: col(delayOff, 1), max: col(delayOff, 2) },
      on: { p50: col(delayOn, 0), p99: col(delayOn, 1), max: col(delayOn, 2) },
    },
    measuredRounds: {
      intervals: after.intervals - before.intervals, samples: after.drainedSamples - before.drainedSamples,
      workerSeconds: Math.round((after.workerMs - before.workerMs) / 100) / 10,
      drainWaitMs: Math.round(after.drainWaitMs - before.drainWaitMs), mainThreadDrainMs: Math.round(after.drainMs - before.drainMs),
      deferredDrains: after.deferredDrains - before.deferredDrains,
      sampleRecordsLost: after.records_lost - before.records_lost,
      unlinkedSamples: after.unlinkedSamples - before.unlinkedSamples,
    },
  };
}

/** 10k distinct stacks of 16 frames, each frame a random address in one of this process's
 *  file-backed executable mappings (node and its libraries: real symbol tables). */
function syntheticDrain(stacks: number, depth: number): RawDrain {
  const maps = (readMaps(process.pid) ?? []).filter((m) => m.path.startsWith('/'));
  const size = maps.reduce((a, m) => a + (m.end - m.start), 0);
  const pick = (): bigint => {
    let x = Math.floor(Math.random() * size);
    for (const m of maps) { if (x < m.end - m.start) return BigInt(m.start + x); x -= m.end - m.start; }
    return BigInt(maps[0].start);
  };
  const keys = new Int32Array(stacks * 4);
  const counts = new Float64Array(stacks).fill(1);
  const frames = new BigUint64Array(stacks * depth);
  const offsets = new Uint32Array(stacks + 1);
  const ids = new Int32Array(stacks);
  for (let i = 0; i < stacks; i++) {
    keys.set([process.pid, process.pid, i, -14], i * 4);
    ids[i] = i;
    for (let d = 0; d < depth; d++) frames[i * depth + d] = pick();
    offsets[i + 1] = (i + 1) * depth;
  }
  return { n: stacks, keys, counts, comms: new Array(stacks).fill('node'), stackIds: ids, stackOffsets: offsets, frames };
}

async function symbolization(stacks: number) {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const heap0 = process.memoryUsage().heapUsed;
  const rss0 = rssBytesOf(process.pid);
  const sym = new Symbolizer();
  const d = syntheticDrain(stacks, 16);
  let t = performance.now();
  const cold = await symbolizeDrain(d, sym, new Map());
  const coldMs = performance.now() - t;
  t = performance.now();
  await symbolizeDrain(d, sym, new Map());
  const warmMs = performance.now() - t;
  const resolved = cold.samples.reduce((a, s) => a + s.stack.filter((f) => !f.unresolved).length, 0);
  cold.samples.length = 0;
  gc?.();
  return {
    uniqueStacks: stacks, framesPerStack: 16,
    coldMs: Math.round(coldMs), warmMs: Math.round(warmMs),
    framesResolvedShare: Math.round((resolved / (stacks * 16)) * 1000) / 1000,
    heapHeldMiB: Math.round(((process.memoryUsage().heapUsed - heap0) / 2 ** 20) * 10) / 10,
    rssGrowthMiB: Math.round(((rssBytesOf(process.pid) - rss0) / 2 ** 20) * 10) / 10,
    symbolizer: sym.stats(),
  };
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) { console.error('profiler bench needs root (BPF)'); process.exit(1); }
  const rounds = Number(process.env.BENCH_ROUNDS || 3);
  const n = Number(process.env.BENCH_PROFILER_ITERATIONS || 400_000_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-bench-work-'));
  const exe = path.join(dir, 'work');
  fs.writeFileSync(`${exe}.c`, WORK_C);
  execFileSync('gcc', ['-O1', '-fno-omit-frame-pointer', '-o', exe, `${exe}.c`]);
  const sym = await symbolization(10_000);
  const ov = await overhead(exe, rounds, n, Number(process.env.BENCH_PROFILER_WARMUP_MS || 30_000), Number(process.env.BENCH_PROFILER_INTERVAL_MS || 2000));
  fs.rmSync(dir, { recursive: true, force: true });
  writeResult('profiler', { overhead: ov, symbolization: sym });
}

main().catch((e) => { console.error(e); process.exit(1); });
