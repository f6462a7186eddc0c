// The profiler's worker thread: everything slow about an interval happens here — reading ELF
// symbol tables, /proc/PID/maps, /proc/kallsyms and JIT maps, demangling, /proc/*/environ for
// service names, folding, OTLP and pprof encoding, writing pprof files — so the agent's main
// thread (API, ring drain, pipeline) never waits on it. The main thread only drains the kernel
// maps and posts the raw arrays here (see offload.ts for the bounded queue in front of it).
import { parentPort } from 'worker_threads';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Symbolizer } from './symbolizer';
import { ProcessTable, listProcesses, cgroupId } from './process';
import { IntervalProfile, symbolizeDrain } from './model';
import { foldByService, foldByTrace } from './store';
import { toOtlpProfiles } from './otlp';
import { toPprof, encodePprof } from './pprof';
import type { WorkerInit, WorkerRequest, WorkerReply, IntervalJob, ResolvedTarget } from './offload';

class IntervalWorker {
  private readonly symbolizer: Symbolizer;
  private readonly procs = new ProcessTable();
  private prevStacks = new Map<number, BigUint64Array>();
  private readonly hostName = os.hostname();
  private readonly pprofDir: string;
  private pprofFiles = 0;

  constructor(private readonly init: WorkerInit) {
    this.symbolizer = new Symbolizer({ maxElfSymbols: init.maxElfSymbols });
    this.pprofDir = path.join(init.dataDir, 'pprof');
  }

  private info = (pid: number, comm: string) => this.procs.get(pid, comm);

  async interval(job: IntervalJob): Promise<WorkerReply> {
    const t0 = performance.now();
    const { samples, stacks, missing } = await symbolizeDrain(job.raw, this.symbolizer, this.prevStacks, job.links, PAUSE);
    // Copies: the drained typed arrays are views of one transferred buffer.
    this.prevStacks = new Map([...stacks].map(([id, a]) => [id, a.slice()]));
    const iv: IntervalProfile = { startMs: job.startMs, endMs: job.endMs, periodNs: job.periodNs, samples, missingStacks: missing };
    const byService = foldByService(iv, this.info);
    const byTrace = foldByTrace(iv);
    let otlp: object | undefined;
    let pprofError: string | undefined;
    if (samples.length) {
      if (this.init.exportOtlp) otlp = toOtlpProfiles(iv, this.info, this.hostName, this.init.version);
      if (this.init.pprof) pprofError = this.writePprof(iv);
    }
    let count = 0;
    for (const s of samples) count += s.count;
    return {
      type: 'interval', id: job.id, startMs: job.startMs, endMs: job.endMs, samples: count, missing, byService: [...byService].map(([svc, m]) => [svc, [...m]]), byTrace: [...byTrace].map(([t, m]) => [t, [...m]]),
      otlp, pprofError, pprofFiles: this.pprofFiles, workMs: performance.now() - t0, symbolizer: this.symbolizer.stats(),
      resolved: job.resolve ? this.resolve(job.resolve) : undefined,
      ivSamples: this.init.keepSamples ? samples : undefined,
    };
  }

  private writePprof(iv: IntervalProfile): string | undefined {
    try {
      fs.mkdirSync(this.pprofDir, { recursive: true });
      const p = toPprof(iv.samples, { startMs: iv.startMs, endMs: iv.endMs, periodNs: iv.periodNs, service: (pid) => this.procs.get(pid).serviceName });
      const name = `cpu-${new Date(iv.endMs).toISOString().replace(/[:.]/g, '-')}-${this.pprofFiles}.pb.gz`;
      fs.writeFileSync(path.join(this.pprofDir, name), encodePprof(p));
      this.pprofFiles++;
      const files = fs.readdirSync(this.pprofDir).filter((f) => f.startsWith('cpu-') && f.endsWith('.pb.gz')).sort();
      for (const f of files.slice(0, Math.max(0, files.length - this.init.pprofMaxFiles))) fs.rmSync(path.join(this.pprofDir, f), { force: true });
      return undefined;
    } catch (e) { return (e as Error).message; }
  }

  /** Services and containers → the pids and cgroup ids the kernel filter matches. */
  resolve(t: { services: string[]; containers: string[] }): ResolvedTarget {
    const pids: number[] = [];
    const cgroups = new Set<bigint>();
    for (const p of listProcesses(this.procs)) {
      if (t.services.includes(p.serviceName)) pids.push(p.pid);
      if (p.containerId && t.containers.some((c) => p.containerId.startsWith(c))) {
        const id = cgroupId(p.cgroupPath);
        if (id !== undefined) cgroups.add(id);
      }
    }
    return { pids, cgroups: [...cgroups] };
  }
}

const PAUSE = { every: 256, wait: () => new Promise<void>((r) => setImmediate(r)) };

let w: IntervalWorker | undefined;
/** Intervals run one after another (they share the previous interval's stacks); re-target
 *  lookups run in the pauses of the current one. */
let chain: Promise<void> = Promise.resolve();
const fail = (id: number, e: unknown) => parentPort!.postMessage({ type: 'error', id, error: (e as Error).stack ?? String(e) } satisfies WorkerReply);
parentPort?.on('message', (m: WorkerRequest) => {
  if (m.type === 'init') { w = new IntervalWorker(m.init); return; }
  const iw = w;
  if (!iw) { fail(m.type === 'interval' ? m.job.id : m.id, new Error('profile worker used before init')); return; }
  if (m.type === 'interval') {
    chain = chain.then(() => iw.interval(m.job)).then((r) => parentPort!.postMessage(r), (e) => fail(m.job.id, e));
  } else if (m.type === 'resolve') {
    try { parentPort!.postMessage({ type: 'resolved', id: m.id, resolved: iw.resolve(m.target) } satisfies WorkerReply); } catch (e) { fail(m.id, e); }
  }
});
