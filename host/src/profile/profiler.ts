// The CPU profiler as a unit: native sampler → drain every interval (main thread: a few map
// syscalls) → worker thread (symbolize, fold, OTLP/pprof encode) → keep for the API, export.
// Switched on/off and re-targeted at run time; the kernel side is loaded on the first switch-on
// and detached at switch-off, so a profiler off in the config costs nothing until asked for.
import * as os from 'os';
import { NativeProfiler, ProfileStats, ProfileAttachReport, PROFILE_STATS, recordRingBytes } from './native';
import { IntervalProfile, RawDrain } from './model';
import { ThreadSpans, joinSamples, KeyLinks } from './links';
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
  /** Server spans by thread (fed by the agent): samples taken while one of them was in flight on
   *  their thread get its trace/span id. Turns on the kernel's per-sample time records. */
  spans?: ThreadSpans;
  /** Kernel monotonic ns → epoch ns (the clock the spans were stamped with). */
  toEpochNs?: (ktime: bigint) => bigint;
  /** Called after every interval (tests, metrics). */
  onInterval?: (iv: IntervalProfile) => void;
  /** Bring every symbolized sample back from the worker into IntervalProfile.samples. */
  keepSamples?: boolean;
  version?: string;
  onError?: (err: Error) => void;
}

export class Profiler {
  /** Loaded on switch-on, released on switch-off (undefined while off). */
  private native?: NativeProfiler;
  private lastReport?: ProfileAttachReport;
  /** Kernel counters of the attachments already released, so the totals never go back. */
  private releasedStats: ProfileStats = zeroStats();
  readonly store: ProfileStore;
  private worker?: ProfileWorker;
  private timer?: NodeJS.Timeout;
  private kernelTurn: Promise<void> = Promise.resolve();
  private lastDrain = Date.now();
  private enabled = false;
  private stopping = false;
  private target: Target = { pids: [], services: [], containers: [] };
  private readonly periodNs: number;
  private symStats: SymbolizerStats = { elfs: 0, elfSymbols: 0, processes: 0, frames: 0, elfErrors: 0, demangled: 0 };
  /** `drainedSamples`: counts taken from the kernel (its own `samples` counter also counts idle
   *  and filtered-out samples); `exportedSamples`: those the worker has processed.
   *  `deferredDrains`: ticks skipped because the worker was `maxPending` intervals behind.
   *  `workerMs`: time spent in the worker;
   *  `drainWaitMs`: wall time of the kernel drains (thread pool); `drainMs`: main-thread time
   *  spent on a drain's result (trace links, counting). `linkedSamples`/`unlinkedSamples`:
   *  drained samples with and without a trace link (`ambiguousSamples`: unlinked because several
   *  requests were in flight on the thread). `attaches`: kernel side loaded (first switch-on). */
  readonly totals = { intervals: 0, drainedSamples: 0, exportedSamples: 0, missingStacks: 0, pprofFiles: 0, exportErrors: 0, workerMs: 0, drainMs: 0, drainWaitMs: 0, deferredDrains: 0, workerRestarts: 0, linkedSamples: 0, unlinkedSamples: 0, ambiguousSamples: 0, attaches: 0 };

  constructor(private readonly o: ProfilerOptions) {
    this.store = new ProfileStore(o.cfg.window_seconds * 1000);
    this.periodNs = Math.round(1e9 / o.cfg.frequency_hz);
    this.target = { pids: o.cfg.pids, services: o.cfg.services, containers: o.cfg.containers };
    // Enabled in the config: attached now, so a kernel that refuses shows at start-up.
    if (o.cfg.enabled) this.attach();
  }

  /** Loads the program, sets the target (pids now; services and containers once the worker has
   *  read /proc), then switches sampling on. */
  private attach(): void {
    const recordBytes = this.o.spans ? recordRingBytes(os.cpus().length || 1, this.o.cfg.frequency_hz, this.o.cfg.interval_ms) : 0;
    const n = new NativeProfiler(this.o.cfg.frequency_hz, false, recordBytes);
    this.native = n;
    this.lastReport = n.report;
    this.totals.attaches++;
    this.worker ??= new ProfileWorker({
      dataDir: this.o.dataDir, maxElfSymbols: this.o.cfg.max_elf_symbols, pprof: this.o.cfg.pprof.enabled, pprofMaxFiles: this.o.cfg.pprof.max_files,
      exportOtlp: !!this.o.exportOtlp, version: this.o.version ?? '', keepSamples: !!this.o.keepSamples,
    }, 2, (e) => this.o.onError?.(e));
    n.setTarget(this.targeted() ? { pids: this.target.pids, cgroups: [] } : null);
    if (this.resolvesNames()) void this.applyTarget().catch((e) => this.o.onError?.(e as Error));
    this.lastDrain = Date.now();
    this.enabled = true;
    n.setEnabled(true);
  }

  /** Releases the kernel side (perf events, links, maps), after the last drain took its counts. */
  private async detach(): Promise<void> {
    const turn = this.kernelTurn;
    let release!: () => void;
    this.kernelTurn = new Promise<void>((r) => { release = r; });
    await turn;
    try {
      const n = this.native;
      if (!n || this.enabled) return; // switched on again meanwhile: keep it
      const s = n.stats();
      for (const k of PROFILE_STATS) this.releasedStats[k] += s[k];
      this.native = undefined;
      n.close();
    } finally { release(); }
  }

  start(): void {
    this.timer = setInterval(() => { this.drainNow().catch((e) => this.o.onError?.(e as Error)); }, this.o.cfg.interval_ms);
    this.timer.unref();
  }

  isEnabled(): boolean { return this.enabled; }
  getTarget(): Target { return this.target; }
  symbolizerStats(): SymbolizerStats { return this.symStats; }
  /** Where the sampler is attached (the last attachment while off; undefined before the first). */
  report(): ProfileAttachReport | undefined { return this.lastReport; }
  /** Whether the kernel side is loaded now (it is released at switch-off). */
  isAttached(): boolean { return this.native !== undefined; }

  /** Switching off flushes: the program stops counting first, then what it counted before
   *  the switch is drained from the kernel before the promise resolves (and exported once the
   *  worker gets to it), so the drained count does not move afterwards. */
  async setEnabled(on: boolean): Promise<void> {
    if (on) {
      if (this.enabled) return;
      // Still attached (a switch-off is between its drain and its detach): reuse it.
      if (this.native) { this.enabled = true; this.native.setEnabled(true); return; }
      this.attach();
      return;
    }
    if (!this.enabled) return;
    this.enabled = false;
    this.native?.setEnabled(false);
    await this.flush();
    await this.detach();
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
    // Off: the target is kept and applied by the next switch-on.
    if (!this.native || !this.worker) return;
    if (!this.targeted()) { this.native.setTarget(null); return; }
    const want = this.target;
    const r = this.resolvesNames() ? await this.worker.resolve({ services: want.services, containers: want.containers }) : { pids: [], cgroups: [] };
    if (want !== this.target) return; // re-targeted meanwhile: the newer call applies its own
    this.native?.setTarget({ pids: [...new Set([...want.pids, ...r.pids])], cgroups: r.cgroups });
  }

  /**
   * Drains the kernel counts of the interval that just ended and hands them to the worker.
   * Resolves with the interval once the worker has processed it, or undefined when the tick was
   * skipped because the worker is `maxPending` intervals behind. `force` (switch-off,
   * re-target, stop, tests) may go two past that bound and waits beyond it.
   */
  async drainNow(force = false, onDrained?: () => void): Promise<IntervalProfile | undefined> {
    const worker = this.worker;
    if (!this.native || !worker) { onDrained?.(); return undefined; }
    if (worker.full) {
      if (!force) { this.totals.deferredDrains++; this.native.collectRecords(); return undefined; }
      while (worker.pending >= worker.maxPending + 2) await new Promise((r) => setTimeout(r, 20));
    }
    // One kernel drain at a time (a tick and a switch-off may meet).
    const turn = this.kernelTurn;
    let release!: () => void;
    this.kernelTurn = new Promise<void>((r) => { release = r; });
    await turn;
    let raw: RawDrain;
    const t0 = performance.now();
    try {
      // Detached while this drain waited for its turn: nothing left to take.
      if (!this.native) { onDrained?.(); return undefined; }
      raw = await this.native.drainAsync();
    } finally { release(); }
    this.totals.drainWaitMs += performance.now() - t0;
    const startMs = this.lastDrain;
    const endMs = Date.now();
    this.lastDrain = endMs;
    for (let i = 0; i < raw.n; i++) this.totals.drainedSamples += raw.counts[i];
    onDrained?.();
    const links = raw.n ? await this.link(raw) : undefined;
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
      r = await worker.interval({ raw, startMs, endMs, periodNs: this.periodNs, links, resolve });
    } finally { this.totals.workerRestarts = worker.restarts; }
    return this.finish(r, target);
  }

  /** Trace links of a drain's samples. The requests in flight when the interval ended have not
   *  ended (nor been decoded and correlated) yet: the join waits `link_wait_ms` for their spans. */
  private async link(raw: RawDrain): Promise<KeyLinks | undefined> {
    const spans = this.o.spans;
    if (!spans || !this.o.toEpochNs) { this.totals.unlinkedSamples += countOf(raw); return undefined; }
    // Stopping: the agent's pipeline is shutting down too, no span will come. Otherwise at least
    // link_wait_ms, longer when spans have lately reached the index later than that (a loaded
    // host), bounded so held drains stay few.
    const wait = this.stopping ? 0 : linkWait(this.o.cfg.link_wait_ms, spans.recentLagMs());
    if (wait > 0 && raw.recKeys?.length) await new Promise((r) => setTimeout(r, wait));
    const t = performance.now();
    const { links, counts } = joinSamples(raw, spans, this.o.toEpochNs);
    this.totals.linkedSamples += counts.linked;
    this.totals.unlinkedSamples += counts.unlinked;
    this.totals.ambiguousSamples += counts.ambiguous;
    // Spans that ended before this interval's start (and the wait) cannot cover later samples.
    spans.prune(BigInt(this.lastDrain - this.o.cfg.interval_ms - wait - 5000) * 1_000_000n);
    this.totals.drainMs += performance.now() - t;
    return links;
  }

  private finish(r: IntervalReply, target: Target): IntervalProfile {
    this.totals.intervals++;
    this.totals.workerMs += r.workMs;
    this.totals.missingStacks += r.missing;
    this.totals.exportedSamples += r.samples;
    this.totals.pprofFiles = r.pprofFiles;
    this.symStats = r.symbolizer;
    if (r.pprofError) { this.totals.exportErrors++; this.o.onError?.(new Error(`pprof: ${r.pprofError}`)); }
    this.store.addFolded(r.endMs, new Map(r.byService.map(([svc, lines]) => [svc, new Map(lines)])), new Map(r.byTrace.map(([t, lines]) => [t, new Map(lines)])));
    if (r.otlp && this.o.exportOtlp) {
      try { this.o.exportOtlp(r.otlp); } catch (e) { this.totals.exportErrors++; this.o.onError?.(e as Error); }
    }
    if (r.resolved && target === this.target && this.targeted()) {
      this.native?.setTarget({ pids: [...new Set([...target.pids, ...r.resolved.pids])], cgroups: r.resolved.cgroups });
    }
    const iv: IntervalProfile = { startMs: r.startMs, endMs: r.endMs, periodNs: this.periodNs, samples: r.ivSamples ?? [], missingStacks: r.missing };
    this.o.onInterval?.(iv);
    return iv;
  }

  stats(): ProfileStats & typeof this.totals & { pending: number } {
    const k = { ...this.releasedStats };
    if (this.native) { const s = this.native.stats(); for (const n of PROFILE_STATS) k[n] += s[n]; }
    return { ...k, ...this.totals, pending: this.worker?.pending ?? 0 };
  }

  /** Stops sampling and the worker; the last partial interval is drained and exported first. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.stopping = true;
    try { await this.drainNow(true); } catch (e) { this.o.onError?.(e as Error); }
    await this.close();
  }

  /** Releases the kernel side and the worker without a last drain. */
  async close(): Promise<void> {
    this.enabled = false;
    this.native?.close();
    this.native = undefined;
    await this.worker?.close();
  }
}

/** The configured wait, or the recent slowest span arrival plus a margin, at most 15 s more. */
export function linkWait(configuredMs: number, recentLagMs: number): number {
  return Math.max(configuredMs, Math.min(recentLagMs + 500, configuredMs + 15_000));
}

function zeroStats(): ProfileStats {
  const s = {} as ProfileStats;
  for (const k of PROFILE_STATS) s[k] = 0;
  return s;
}

function countOf(raw: RawDrain): number {
  let n = 0;
  for (let i = 0; i < raw.n; i++) n += raw.counts[i];
  return n;
}
