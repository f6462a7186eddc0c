// The main thread's side of the profiler worker (worker.ts): a bounded queue of drained
// intervals. At most `maxPending` intervals are posted and not yet answered; when the worker is
// that far behind the caller does not drain the kernel at all (the counts keep accumulating in
// the kernel's map and come out with the next drain), so a slow symbolizer costs resolution in
// time, never main-thread time or unbounded memory. A worker that dies is replaced; the jobs
// it held are answered with an error.
import { Worker } from 'worker_threads';
import * as path from 'path';
import { RawDrain, ProfileSample } from './model';
import type { KeyLinks } from './links';
import { SymbolizerStats } from './symbolizer';

export interface WorkerInit {
  dataDir: string;
  maxElfSymbols: number;
  pprof: boolean;
  pprofMaxFiles: number;
  exportOtlp: boolean;
  version: string;
  /** Send every symbolized sample back (tests, bench); the agent only needs folded stacks. */
  keepSamples: boolean;
}

export interface IntervalJob {
  id: number;
  raw: RawDrain;
  startMs: number;
  endMs: number;
  periodNs: number;
  /** Per drained key (same order): its count split by trace link, joined on the main thread. */
  links?: KeyLinks;
  /** Re-resolve services/containers to pids/cgroups after this interval. */
  resolve?: { services: string[]; containers: string[] };
}

export interface ResolvedTarget { pids: number[]; cgroups: bigint[] }

export type WorkerRequest =
  | { type: 'init'; init: WorkerInit }
  | { type: 'interval'; job: IntervalJob }
  | { type: 'resolve'; id: number; target: { services: string[]; containers: string[] } };

export interface IntervalReply {
  type: 'interval';
  id: number;
  startMs: number;
  endMs: number;
  samples: number;
  missing: number;
  /** service → folded stack line → count. */
  byService: Array<[string, Array<[string, number]>]>;
  /** trace_id → folded stack line → count, for samples linked to a trace. */
  byTrace: Array<[string, Array<[string, number]>]>;
  /** One ExportProfilesServiceRequest (OTLP/JSON shape), built in the worker. */
  otlp?: object;
  pprofError?: string;
  pprofFiles: number;
  workMs: number;
  symbolizer: SymbolizerStats;
  resolved?: ResolvedTarget;
  ivSamples?: ProfileSample[];
}

export type WorkerReply =
  | IntervalReply
  | { type: 'resolved'; id: number; resolved: ResolvedTarget }
  | { type: 'error'; id: number; error: string };

interface Waiter { resolve(r: WorkerReply): void; reject(e: Error): void }

export class ProfileWorker {
  private w!: Worker;
  private waiting = new Map<number, Waiter>();
  private intervals = new Set<number>();
  private nextId = 1;
  private closed = false;
  restarts = 0;

  constructor(private readonly init: WorkerInit, readonly maxPending = 2, private readonly onError?: (e: Error) => void) {
    this.spawn();
  }

  private spawn(): void {
    this.w = new Worker(path.join(__dirname, 'worker.js'));
    // The agent's shutdown is driven by its own signals; an idle worker must not hold it open.
    this.w.unref();
    this.w.on('message', (r: WorkerReply) => {
      const wt = this.waiting.get(r.id);
      if (!wt) return;
      this.waiting.delete(r.id);
      this.intervals.delete(r.id);
      if (r.type === 'error') wt.reject(new Error(`profile worker: ${r.error}`)); else wt.resolve(r);
    });
    this.w.on('error', (e) => this.onError?.(e));
    this.w.on('exit', () => {
      const lost = [...this.waiting.values()];
      this.waiting.clear();
      this.intervals.clear();
      for (const wt of lost) wt.reject(new Error('profile worker exited'));
      if (!this.closed) { this.restarts++; this.spawn(); }
    });
    this.w.postMessage({ type: 'init', init: this.init } satisfies WorkerRequest);
  }

  /** Intervals posted and not answered yet. */
  get pending(): number { return this.intervals.size; }
  get full(): boolean { return this.intervals.size >= this.maxPending; }

  private call<T extends WorkerReply>(id: number, msg: WorkerRequest, transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.closed) return Promise.reject(new Error('profile worker closed'));
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (r: WorkerReply) => void, reject });
      this.w.postMessage(msg, transfer);
    });
  }

  /** Posts a drain; its typed arrays move to the worker (the caller must not touch them again). */
  interval(job: Omit<IntervalJob, 'id'>): Promise<IntervalReply> {
    const id = this.nextId++;
    this.intervals.add(id);
    const r = job.raw;
    const bufs = new Set<ArrayBuffer>();
    for (const a of [r.keys, r.counts, r.stackIds, r.stackOffsets, r.frames, r.recKeys, r.recTimes]) if (a && a.buffer instanceof ArrayBuffer && a.buffer.byteLength) bufs.add(a.buffer);
    return this.call<IntervalReply>(id, { type: 'interval', job: { ...job, id } }, [...bufs]);
  }

  resolve(target: { services: string[]; containers: string[] }): Promise<ResolvedTarget> {
    const id = this.nextId++;
    return this.call<{ type: 'resolved'; id: number; resolved: ResolvedTarget }>(id, { type: 'resolve', id, target }).then((r) => r.resolved);
  }

  /** Waits for what is in flight (bounded by `ms`), then ends the thread. */
  async close(ms = 10_000): Promise<void> {
    if (this.closed) return;
    const inflight = [...this.waiting.values()].map((wt) => new Promise<void>((res) => { const o = wt.resolve; const e = wt.reject; wt.resolve = (r) => { o(r); res(); }; wt.reject = (x) => { e(x); res(); }; }));
    if (inflight.length) await Promise.race([Promise.all(inflight), new Promise((r) => setTimeout(r, ms).unref())]);
    this.closed = true;
    await this.w.terminate();
  }
}
