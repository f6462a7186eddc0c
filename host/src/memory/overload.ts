// What the agent does when it cannot keep up (issue 12: RSS near 100 MB while overloaded, the
// traced service keeps its cores). Measured before (bench/README.md, agent-overhead saturation):
// the agent's user-space CPU took the cores wrk and the server share (0.54x untraced throughput,
// 0.92x with the agent stopped), and the spans it built at that rate were dropped at the full
// trace queue anyway, after costing their decode, correlation and analytics.
//
// Over the CPU budget the agent stops reading the socket ring (when its reader can pause, which
// the native one can): the kernel's producers then drop and count what does not fit
// (telegen_bpf_ring_full_total), at no cost to the agent, and what was read is decoded in full.
// Skipping records in user space instead (the first version) spent most of a 25% budget on the
// skipping itself at ~60k records/s and kept 0.03 server spans per request (bench/README.md).
// Paused time is counted (telegen_ingest_ring_paused_seconds_total).
//
// Otherwise the agent sheds at the cheapest point: ring data records are skipped before any decoding
// (connection open/close and process exit still apply, so no state leaks). A skipped record ends
// its stream (ingest/kernel.ts shed()): the next record starts a fresh one, as for a connection
// older than the agent, so at most the exchanges the record was part of are lost. Every skipped record is counted by reason
// (telegen_ingest_shed_records_total) and one log line a minute says how many.
//   cpu_budget     the agent used more than agent.max_cpu_percent of a core over the last second
//                  (off by default: a budget also sheds at rates the agent could have kept up with).
//   export_backlog the trace queue of the file exporter holds more than
//                  agent.shed_export_backlog_percent of its cap, until it is back under half of
//                  that. Only for the file exporter: a local write falls behind only when the agent
//                  is short of CPU, while an OTLP receiver outage must not stop the spans that feed
//                  the RED metrics (that queue drops at its cap, counted, and memory stays bounded).
import { z } from 'zod';
import type { SelfMetrics } from '../metrics/self';

export const SHED_REASONS = ['cpu_budget', 'export_backlog'] as const;
export type ShedReason = (typeof SHED_REASONS)[number];

const envNumber = (name: string, def: number): number => {
  const v = process.env[name];
  return v !== undefined && v !== '' && Number.isFinite(Number(v)) ? Number(v) : def;
};

export const overloadSchema = z.object({
  max_cpu_percent: z.number().min(0).max(10_000).default(envNumber('TELEGEN_MAX_CPU_PERCENT', 0))
    .describe('CPU budget of the agent, % of one core over the last second (user + system, every thread); above it, the socket ring is not read until it is back under (the kernel drops and counts what does not fit: telegen_bpf_ring_full_total; paused time: telegen_ingest_ring_paused_seconds_total). 0 = no budget. Env: TELEGEN_MAX_CPU_PERCENT'),
  shed_export_backlog_percent: z.number().min(0).max(100).default(envNumber('TELEGEN_SHED_EXPORT_BACKLOG_PERCENT', 90))
    .describe('File exporter only: when the trace queue holds more than this % of its cap, ring data records are skipped (counted, reason export_backlog) until it is under half of it. 0 = never. Env: TELEGEN_SHED_EXPORT_BACKLOG_PERCENT'),
}).strict();
export type OverloadConfig = z.infer<typeof overloadSchema>;

/** What the gate switches: KernelIngest skips data records while `shedReason` >= 0 and counts
 *  them in `shedRecords[shedReason]` (a plain field read per record, no call). */
export interface Sheddable {
  shedReason: number;
  readonly shedRecords: Float64Array;
}

/** The trace queue's fill, read without allocating. */
export interface QueueFill { readonly heldBytes: number; readonly capBytes: number }

/** How often CPU and the queue are looked at; the CPU window is the last WINDOW_TICKS of them. */
export const TICK_MS = 100;
const WINDOW_TICKS = 10;
const LOG_EVERY_MS = 60_000;

export interface OverloadLog { warn(obj: object, msg: string): void }

/** The decision apart from the timer, for tests: the reason to shed now, or -1. */
export function shedDecision(cfg: OverloadConfig, cpuMicrosInWindow: number, windowMs: number, fill: QueueFill | undefined, backlogShedding: boolean): number {
  if (fill && cfg.shed_export_backlog_percent > 0) {
    const high = (fill.capBytes * cfg.shed_export_backlog_percent) / 100;
    // Hysteresis: once on, it stays on until the queue is under half the mark, so it does not
    // flip on every batch the exporter takes.
    if (fill.heldBytes > high || (backlogShedding && fill.heldBytes > high / 2)) return SHED_REASONS.indexOf('export_backlog');
  }
  if (cfg.max_cpu_percent > 0 && cpuMicrosInWindow > (cfg.max_cpu_percent / 100) * windowMs * 1000) return SHED_REASONS.indexOf('cpu_budget');
  return -1;
}

/**
 * Starts the gate; undefined when nothing is configured to shed. `fill` is the trace queue when
 * traces go to the file exporter, else undefined.
 */
export function startOverloadGate(cfg: OverloadConfig, target: Sheddable, fill: QueueFill | undefined, metrics: SelfMetrics, log: OverloadLog, pauseRing?: (paused: boolean) => void): { stop: () => void } | undefined {
  if (cfg.max_cpu_percent <= 0 && (!fill || cfg.shed_export_backlog_percent <= 0)) return undefined;
  // CPU at each of the last WINDOW_TICKS ticks (µs, user + system) and when it was read.
  const cpuAt = new Float64Array(WINDOW_TICKS);
  const timeAt = new Float64Array(WINDOW_TICKS);
  let slot = 0;
  const now0 = performance.now();
  const u0 = process.cpuUsage();
  cpuAt.fill(u0.user + u0.system);
  timeAt.fill(now0);
  const logged = new Float64Array(SHED_REASONS.length);
  let loggedPaused = 0;
  let lastLog = now0;
  const report = (force: boolean) => {
    const t = performance.now();
    const paused = pausedSeconds();
    let changed = paused !== loggedPaused;
    for (let i = 0; i < logged.length; i++) if (target.shedRecords[i] !== logged[i]) changed = true;
    if (!changed || (!force && t - lastLog < LOG_EVERY_MS)) return;
    const shed: Record<string, number> = {};
    for (let i = 0; i < logged.length; i++) { shed[SHED_REASONS[i]] = target.shedRecords[i] - logged[i]; logged[i] = target.shedRecords[i]; }
    const ringPausedS = Math.round((paused - loggedPaused) * 10) / 10;
    loggedPaused = paused;
    log.warn({ shed, ring_paused_s: ringPausedS || undefined, since_ms: Math.round(t - lastLog), max_cpu_percent: cfg.max_cpu_percent || undefined, trace_queue_bytes: fill?.heldBytes },
      'agent overloaded: ring data records skipped (telegen_ingest_shed_records_total) or the ring not read (telegen_ingest_ring_paused_seconds_total)');
    lastLog = t;
  };
  let first = true;
  const CPU = SHED_REASONS.indexOf('cpu_budget');
  // While the ring is paused for the budget: since when (performance.now()), else -1.
  let pausedAt = -1;
  let pausedMs = 0;
  const setPaused = (on: boolean, t: number) => {
    if (on === pausedAt >= 0 || !pauseRing) return;
    if (on) pausedAt = t; else { pausedMs += t - pausedAt; pausedAt = -1; }
    pauseRing(on);
  };
  const pausedSeconds = () => (pausedMs + (pausedAt >= 0 ? performance.now() - pausedAt : 0)) / 1000;
  const timer = setInterval(() => {
    const u = process.cpuUsage();
    const t = performance.now();
    const cpu = u.user + u.system;
    // The oldest sample of the window is the one about to be overwritten.
    const used = cpu - cpuAt[slot];
    const span = t - timeAt[slot];
    cpuAt[slot] = cpu;
    timeAt[slot] = t;
    slot = (slot + 1) % WINDOW_TICKS;
    const backlog = target.shedReason === SHED_REASONS.indexOf('export_backlog');
    const reason = shedDecision(cfg, used, span, fill, backlog);
    const pause = reason === CPU && !!pauseRing;
    setPaused(pause, t);
    target.shedReason = pause ? -1 : reason;
    // The first shedding is logged when it starts (DESIGN: log the first event), later ones once a minute.
    if (reason >= 0 && first) {
      first = false;
      log.warn({ reason: SHED_REASONS[reason], max_cpu_percent: cfg.max_cpu_percent || undefined, trace_queue_bytes: fill?.heldBytes, trace_queue_cap: fill?.capBytes },
        pause ? 'agent overloaded: ring reading paused, the kernel drops and counts what does not fit (telegen_bpf_ring_full_total)' : 'agent overloaded: skipping ring data records (counted per reason)');
    }
    report(false);
  }, TICK_MS);
  timer.unref();
  metrics.addCollector((m) => {
    for (let i = 0; i < SHED_REASONS.length; i++) {
      m.set('telegen_ingest_shed_records_total', 'Ring data records skipped before decoding because the agent was overloaded, by reason (cpu_budget: over agent.max_cpu_percent; export_backlog: the file trace queue near its cap)', target.shedRecords[i], { reason: SHED_REASONS[i] }, 'counter');
      m.set('telegen_ingest_shedding', 'Whether the agent sheds now (1) for this reason: skips ring data records, or (cpu_budget) has paused reading the ring', target.shedReason === i || (i === CPU && pausedAt >= 0) ? 1 : 0, { reason: SHED_REASONS[i] });
    }
    if (pauseRing && cfg.max_cpu_percent > 0) m.set('telegen_ingest_ring_paused_seconds_total', 'Time the socket ring was not read because the agent was over agent.max_cpu_percent (the kernel counts what it dropped meanwhile in telegen_bpf_ring_full_total)', pausedSeconds(), { reason: 'cpu_budget' }, 'counter');
  });
  return { stop: () => { clearInterval(timer); setPaused(false, performance.now()); target.shedReason = -1; report(true); } };
}
