// The CPU profiler as a unit: native sampler → drain every interval (main thread: a few map
// syscalls) → worker thread (symbolize, fold, OTLP/pprof encode) → keep for the API, export.
// Switched on/off and re-targeted at run time.
import { NativeProfiler, ProfileStats } from './native';
import { IntervalProfile, RawDrain, TraceLink } from './model';
import { ProfileStore } from './store';
import { ProfileConfig } from './config';
import { ProfileWorker, IntervalReply } from './offload';
import { SymbolizerStats } from './symbolizer';

export interface Target { pids: number[]; services: string[]; containers: string[] }

export interface ProfilerOptions {
  cfg: ProfileConfig;
  dataDir: string;
  /** Receives one ExportProfilesServiceRequest-shaped object per interval. */
  exportOtlp?: (req: object) => void;
  /** Trace context of the request in flight on (pid, tid) — the correlation layer's hook. */
  traceLink?: (pid: number, tid: number) => TraceLink | undefined;
  /** Called after every interval (tests, metrics). */
  onInterval?: (iv: IntervalProfile) => void;
  /** Bring every symbolized sample back from the worker into IntervalProfile.samples. */
  keepSamples?: boolean;
  version?: string;
  onError?: (err: Error) => void;
}

export class Profiler {
  readonly native: NativeProfiler;
  readonly store: ProfileStore;
  private readonly worker: ProfileWorker;
  private timer?: NodeJS.Timeout;
  private kernelTurn: Promise<void> = Promise.resolve();
  private lastDrain = Date.now();
  private enabled = true;
  private target: Target = { pids: [], services: [], containers: [] };
  private readonly periodNs: number;
  private symStats: SymbolizerStats = { elfs: 0, elfSymbols: 0, processes: 0, frames: 0, elfErrors: 0, demangled: 0 };
  /** `drainedSamples`: counts taken from the kernel (its own `samples` counter also counts idle
   *  and filtered-out samples); `exportedSamples`: those the worker has processed.
   *  `deferredDrains`: ticks skipped because the worker was `maxPending` intervals behind.
   *  `workerMs`: time spent in the worker;
   *  `drainWaitMs`: wall time of the kernel drains (thread pool); `drainMs`: main-thread time
   *  spent on a drain's result (trace links, counting). */
  readonly totals = { intervals: 0, drainedSamples: 0, exportedSamples: 0, missingStacks: 0, pprofFiles: 0, exportErrors: 0, workerMs: 0, drainMs: 0, drainWaitMs: 0, deferredDrains: 0, workerRestarts: 0 };

  constructor(private readonly o: ProfilerOptions) {
    this.native = new NativeProfiler(o.cfg.frequency_hz, false);
    this.store = new ProfileStore(o.cfg.window_seconds * 1000);
    this.periodNs = Math.round(1e9 / o.cfg.frequency_hz);
    this.worker = new ProfileWorker({
      dataDir: o.dataDir, maxElfSymbols: o.cfg.max_elf_symbols, pprof: o.cfg.pprof.enabled, pprofMaxFiles: o.cfg.pprof.max_files,
      exportOtlp: !!o.exportOtlp, version: o.version ?? '', keepSamples: !!o.keepSamples,
    }, 2, (e) => o.onError?.(e));
    this.target = { pids: o.cfg.pids, services: o.cfg.services, containers: o.cfg.containers };
    // Pids apply now; services and containers once the worker has read /proc.
    this.native.setTarget(this.targeted() ? { pids: this.target.pids, cgroups: [] } : null);
    if (this.resolvesNames()) void this.applyTarget().catch((e) => o.onError?.(e as Error));
    this.enabled = o.cfg.enabled;
    if (this.enabled) this.native.setEnabled(true);
  }

  start(): void {
    this.timer = setInterval(() => { this.drainNow().catch((e) => this.o.onError?.(e as Error)); }, this.o.cfg.interval_ms);
    this.timer.unref();
  }

  isEnabled(): boolean { return this.enabled; }
  getTarget(): Target { return this.target; }
  symbolizerStats(): SymbolizerStats { return this.symStats; }

  /** Switching off flushes: the program stops counting first, then what it counted before
   *  the switch is drained from the kernel before the promise resolves (and exported once the
   *  worker gets to it), so the drained count does not move afterwards. */
  async setEnabled(on: boolean): Promise<void> {
    const was = this.enabled;
    this.enabled = on;
    this.native.setEnabled(on);
    if (was && !on) await this.flush();
  }

  /** The new target applies in the kernel before the promise resolves, and the counts taken
   *  under the old one are drained right then, so no interval mixes two targets. */
  async retarget(t: Partial<Target>): Promise<Target> {
    const want = { pids: t.pids ?? [], services: t.services ?? [], containers: t.containers ?? [] };
    this.target = want;
    await this.applyTarget();
    if (this.target === want && this.enabled) await this.flush();
    return want;
  }

  /** Drains now; resolves once the kernel maps are drained, not when the worker is done. */
  private async flush(): Promise<void> {
    let drained!: () => void;
    const wait = new Promise<void>((r) => { drained = r; });
    this.drainNow(true, drained).catch((e) => { drained(); this.o.onError?.(e as Error); });
    await wait;
  }

  private targeted(): boolean { return this.target.pids.length + this.target.services.length + this.target.containers.length > 0; }
  private resolvesNames(): boolean { return this.target.services.length + this.target.containers.length > 0; }

  /** Services and containers are resolved to pids/cgroups (in the worker) now and again after
   *  every interval, so processes started later are picked up. */
  private async applyTarget(): Promise<void> {
    if (!this.targeted()) { this.native.setTarget(null); return; }
    const want = this.target;
    const r = this.resolvesNames() ? await this.worker.resolve({ services: want.services, containers: want.containers }) : { pids: [], cgroups: [] };
    if (want !== this.target) return; // re-targeted meanwhile: the newer call applies its own
    this.native.setTarget({ pids: [...new Set([...want.pids, ...r.pids])], cgroups: r.cgroups });
  }

  /**
   * Drains the kernel counts of the interval that just ended and hands them to the worker.
   * Resolves with the interval once the worker has processed it, or undefined when the tick was
   * skipped because the worker is `maxPending` intervals behind. `force` (switch-off,
   * re-target, stop, tests) may go two past that bound and waits beyond it.
   */
  async drainNow(force = false, onDrained?: () => void): Promise<IntervalProfile | undefined> {
    if (this.worker.full) {
      if (!force) { this.totals.deferredDrains++; return undefined; }
      while (this.worker.pending >= this.worker.maxPending + 2) await new Promise((r) => setTimeout(r, 20));
    }
    // One kernel drain at a time (a tick and a switch-off may meet).
    const turn = this.kernelTurn;
    let release!: () => void;
    this.kernelTurn = new Promise<void>((r) => { release = r; });
    await turn;
    let raw: RawDrain;
    const t0 = performance.now();
    try { raw = await this.native.drainAsync(); } finally { release(); }
    this.totals.drainWaitMs += performance.now() - t0;
    const t1 = performance.now();
    const startMs = this.lastDrain;
    const endMs = Date.now();
    this.lastDrain = endMs;
    let links: Array<TraceLink | undefined> | undefined;
    if (this.o.traceLink && raw.n) {
      links = new Array(raw.n);
      for (let i = 0; i < raw.n; i++) links[i] = this.o.traceLink(raw.keys[i * 4], raw.keys[i * 4 + 1]);
    }
    for (let i = 0; i < raw.n; i++) this.totals.drainedSamples += raw.counts[i];
    this.totals.drainMs += performance.now() - t1;
    onDrained?.();
    const target = this.target;
    const resolve = this.resolvesNames() ? { services: target.services, containers: target.containers } : undefined;
    if (!raw.n && !resolve) {
      this.totals.intervals++;
      const iv: IntervalProfile = { startMs, endMs, periodNs: this.periodNs, samples: [], missingStacks: 0 };
      this.o.onInterval?.(iv);
      return iv;
    }
    let r: IntervalReply;
    try {
      r = await this.worker.interval({ raw, startMs, endMs, periodNs: this.periodNs, links, resolve });
    } finally { this.totals.workerRestarts = this.worker.restarts; }
    return this.finish(r, target);
  }

  private finish(r: IntervalReply, target: Target): IntervalProfile {
    this.totals.intervals++;
    this.totals.workerMs += r.workMs;
    this.totals.missingStacks += r.missing;
    this.totals.exportedSamples += r.samples;
    this.totals.pprofFiles = r.pprofFiles;
    this.symStats = r.symbolizer;
    if (r.pprofError) { this.totals.exportErrors++; this.o.onError?.(new Error(`pprof: ${r.pprofError}`)); }
    this.store.addFolded(r.endMs, new Map(r.byService.map(([svc, lines]) => [svc, new Map(lines)])));
    if (r.otlp && this.o.exportOtlp) {
      try { this.o.exportOtlp(r.otlp); } catch (e) { this.totals.exportErrors++; this.o.onError?.(e as Error); }
    }
    if (r.resolved && target === this.target && this.targeted()) {
      this.native.setTarget({ pids: [...new Set([...target.pids, ...r.resolved.pids])], cgroups: r.resolved.cgroups });
    }
    const iv: IntervalProfile = { startMs: r.startMs, endMs: r.endMs, periodNs: this.periodNs, samples: r.ivSamples ?? [], missingStacks: r.missing };
    this.o.onInterval?.(iv);
    return iv;
  }

  stats(): ProfileStats & typeof this.totals & { pending: number } { return { ...this.native.stats(), ...this.totals, pending: this.worker.pending }; }

  /** Stops sampling and the worker; the last partial interval is drained and exported first. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    try { await this.drainNow(true); } catch (e) { this.o.onError?.(e as Error); }
    await this.close();
  }

  /** Releases the kernel side and the worker without a last drain. */
  async close(): Promise<void> {
    this.native.close();
    await this.worker.close();
  }
}
