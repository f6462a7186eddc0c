// The CPU profiler as a unit: native sampler → drain every interval → symbolize → keep for
// the API, export OTLP profiles and pprof files. Switched on/off and re-targeted at run time.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { NativeProfiler, ProfileStats } from './native';
import { Symbolizer } from './symbolizer';
import { ProcessTable, ProcessInfo, listProcesses, cgroupId } from './process';
import { IntervalProfile, symbolizeDrain, TraceLink } from './model';
import { ProfileStore } from './store';
import { ProfileConfig } from './config';
import { toOtlpProfiles } from './otlp';
import { toPprof, encodePprof } from './pprof';

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
  version?: string;
  onError?: (err: Error) => void;
}

export class Profiler {
  readonly native: NativeProfiler;
  readonly symbolizer: Symbolizer;
  readonly procs = new ProcessTable();
  readonly store: ProfileStore;
  private prevStacks = new Map<number, BigUint64Array>();
  private timer?: NodeJS.Timeout;
  private lastDrain = Date.now();
  private enabled = true;
  private target: Target = { pids: [], services: [], containers: [] };
  private readonly periodNs: number;
  private readonly hostName = os.hostname();
  /** `drainedSamples`: counts taken from the kernel and exported (the kernel's own `samples`
   *  counter also counts idle and filtered-out samples). */
  readonly totals = { intervals: 0, drainedSamples: 0, missingStacks: 0, pprofFiles: 0, exportErrors: 0, symbolizeMs: 0 };
  private pprofDir: string;

  constructor(private readonly o: ProfilerOptions) {
    this.native = new NativeProfiler(o.cfg.frequency_hz);
    this.symbolizer = new Symbolizer({ maxElfSymbols: o.cfg.max_elf_symbols });
    this.store = new ProfileStore(o.cfg.window_seconds * 1000);
    this.periodNs = Math.round(1e9 / o.cfg.frequency_hz);
    this.pprofDir = path.join(o.dataDir, 'pprof');
    this.target = { pids: o.cfg.pids, services: o.cfg.services, containers: o.cfg.containers };
    this.applyTarget();
    if (!o.cfg.enabled) { this.enabled = false; this.native.setEnabled(false); }
  }

  start(): void {
    this.timer = setInterval(() => {
      try { this.drainNow(); } catch (e) { this.o.onError?.(e as Error); }
    }, this.o.cfg.interval_ms);
    this.timer.unref();
  }

  isEnabled(): boolean { return this.enabled; }
  getTarget(): Target { return this.target; }

  /** Switching off flushes: the program stops counting first, then what it counted before
   *  the switch is drained and exported now, so no count appears after the call returns. */
  setEnabled(on: boolean): void {
    const was = this.enabled;
    this.enabled = on;
    this.native.setEnabled(on);
    if (was && !on) this.drainNow();
  }

  retarget(t: Partial<Target>): Target {
    this.target = { pids: t.pids ?? [], services: t.services ?? [], containers: t.containers ?? [] };
    this.applyTarget();
    return this.target;
  }

  private targeted(): boolean { return this.target.pids.length + this.target.services.length + this.target.containers.length > 0; }

  /** Services and containers are resolved to pids/cgroups now and again at every drain, so
   *  processes started later are picked up. */
  private applyTarget(): void {
    if (!this.targeted()) { this.native.setTarget(null); return; }
    const pids = new Set(this.target.pids);
    const cgroups = new Set<bigint>();
    if (this.target.services.length || this.target.containers.length) {
      for (const p of listProcesses(this.procs)) {
        if (this.target.services.includes(p.serviceName)) pids.add(p.pid);
        if (p.containerId && this.target.containers.some((c) => p.containerId.startsWith(c))) {
          const id = cgroupId(p.cgroupPath);
          if (id !== undefined) cgroups.add(id);
        }
      }
    }
    this.native.setTarget({ pids: [...pids], cgroups: [...cgroups] });
  }

  private info = (pid: number, comm: string): ProcessInfo => this.procs.get(pid, comm);

  /** Drains the kernel counts of the interval that just ended and exports them. */
  drainNow(): IntervalProfile {
    const t0 = performance.now();
    const raw = this.native.drain();
    const startMs = this.lastDrain;
    const endMs = Date.now();
    this.lastDrain = endMs;
    const { samples, stacks, missing } = symbolizeDrain(raw, this.symbolizer, this.prevStacks, this.o.traceLink);
    // Copies: the drained typed arrays are views of one buffer the next drain replaces.
    this.prevStacks = new Map([...stacks].map(([id, a]) => [id, a.slice()]));
    for (const s of samples) this.info(s.pid, s.comm);
    this.totals.symbolizeMs += performance.now() - t0;
    const iv: IntervalProfile = { startMs, endMs, periodNs: this.periodNs, samples, missingStacks: missing };
    this.totals.intervals++;
    this.totals.missingStacks += missing;
    for (const s of samples) this.totals.drainedSamples += s.count;
    this.store.add(iv, this.info);
    if (samples.length) {
      if (this.o.exportOtlp) {
        try { this.o.exportOtlp(toOtlpProfiles(iv, this.info, this.hostName, this.o.version ?? '')); } catch (e) { this.totals.exportErrors++; this.o.onError?.(e as Error); }
      }
      if (this.o.cfg.pprof.enabled) this.writePprof(iv);
    }
    if (this.targeted() && (this.target.services.length || this.target.containers.length)) this.applyTarget();
    this.o.onInterval?.(iv);
    return iv;
  }

  private writePprof(iv: IntervalProfile): void {
    try {
      fs.mkdirSync(this.pprofDir, { recursive: true });
      const p = toPprof(iv.samples, { startMs: iv.startMs, endMs: iv.endMs, periodNs: iv.periodNs, service: (pid) => this.procs.get(pid).serviceName });
      const name = `cpu-${new Date(iv.endMs).toISOString().replace(/[:.]/g, '-')}-${this.totals.intervals}.pb.gz`;
      fs.writeFileSync(path.join(this.pprofDir, name), encodePprof(p));
      this.totals.pprofFiles++;
      const files = fs.readdirSync(this.pprofDir).filter((f) => f.startsWith('cpu-') && f.endsWith('.pb.gz')).sort();
      for (const f of files.slice(0, Math.max(0, files.length - this.o.cfg.pprof.max_files))) fs.rmSync(path.join(this.pprofDir, f), { force: true });
    } catch (e) { this.totals.exportErrors++; this.o.onError?.(e as Error); }
  }

  stats(): ProfileStats & typeof this.totals { return { ...this.native.stats(), ...this.totals }; }

  /** Stops sampling; the last partial interval is drained and exported first. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    try { this.drainNow(); } catch (e) { this.o.onError?.(e as Error); }
    this.native.close();
  }
}
