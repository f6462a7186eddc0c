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
//   cpu_budget     the agent's CPU over agent.max_cpu_percent of a core, kept on average: every
//                  tick (50 ms) the budget's share of the elapsed time is credited and the CPU used
//                  (every thread) is charged; reading pauses while the balance is negative. Judged
//                  over the last second instead (the first pausing version), each resume decoded
//                  what the ring held until the next tick: ~37% of a core for a 25% budget. Off by
//                  default: a budget also pauses at rates the agent could have kept up with.
//   memory         the agent's RSS, less what its OTLP export queues hold (those have their own
//                  byte caps and drop counted at them, so a receiver outage does not stop the spans
//                  that feed the RED metrics; a file exporter's backlog counts: it means the agent
//                  is short of CPU), over agent.max_rss_mb: reading pauses, the heap is
//                  collected (compacting where its copy fits under the bound) once the in-flight spans had time to leave, and reading
//                  resumes after that collection (or earlier, under RESUME_AT of the bound); a
//                  collection that cannot get under the mark raises it (MemoryBound). What a burst leaves on the heap is
//                  garbage and in-flight spans (bench/README.md "After a burst"), so a pause is
//                  what lets a collection free it while the burst lasts.
//   cpu_contention the host's CPU is contended: the CPU the machine spent on everything but the
//                  agent over the last CONTENTION_ENTER_WINDOW_MS was at least CONTENDED_AT of all
//                  its cores (until it is under UNCONTENDED_AT over CONTENTION_WINDOW_MS): the agent then keeps agent.contended_cpu_percent of a
//                  core as a budget, like cpu_budget. A traced service at saturation keeps its
//                  cores (the agent took 35-46% of a core there and cost it 5-10% of its
//                  throughput, while SIGSTOPped it cost nothing: bench/README.md); on a machine
//                  with CPU to spare the agent takes what its traffic needs, as without a budget.
//                  The ring holds what is not read meanwhile (16 MB: ~15k HTTP exchanges), decoded
//                  once the machine is no longer contended; beyond that the kernel drops, counted.
//   export_backlog the trace queue of the file exporter holds more than
//                  agent.shed_export_backlog_percent of its cap, until it is back under half of
//                  that. Only for the file exporter: a local write falls behind only when the agent
//                  is short of CPU, while an OTLP receiver outage must not stop the spans that feed
//                  the RED metrics (that queue drops at its cap, counted, and memory stays bounded).
import { rssNow } from './rss';
import { IngestPace, paceBytes, PACE_CHECK_MS } from './pace';
import * as fs from 'fs';
import * as v8 from 'v8';
import { z } from 'zod';
import type { SelfMetrics } from '../metrics/self';

export const SHED_REASONS = ['cpu_budget', 'export_backlog', 'memory', 'cpu_contention'] as const;
export type ShedReason = (typeof SHED_REASONS)[number];
const CPU = SHED_REASONS.indexOf('cpu_budget');
const BACKLOG = SHED_REASONS.indexOf('export_backlog');
const MEMORY = SHED_REASONS.indexOf('memory');
const CONTENTION = SHED_REASONS.indexOf('cpu_contention');
const LOG_ORDER = [BACKLOG, MEMORY, CPU, CONTENTION];

/** A numeric config default from the environment; unset, empty or not a number: `def`. */
export const envNumber = (name: string, def: number, env: NodeJS.ProcessEnv = process.env): number => {
  const v = env[name];
  return v !== undefined && v !== '' && Number.isFinite(Number(v)) ? Number(v) : def;
};

/** Default memory bound, MiB of RSS (README "Configuration" says why this value). */
export const MAX_RSS_MB = 128;

export const overloadSchema = z.object({
  max_cpu_percent: z.number().min(0).max(10_000).default(envNumber('TELEGEN_MAX_CPU_PERCENT', 0))
    .describe('CPU budget of the agent, % of one core on average (user + system, every thread); while over it, the socket ring is not read (the kernel drops and counts what does not fit: telegen_bpf_ring_full_total; paused time: telegen_ingest_ring_paused_seconds_total{reason="cpu_budget"}). 0 = no budget. Env: TELEGEN_MAX_CPU_PERCENT'),
  contended_cpu_percent: z.number().min(0).max(10_000).default(envNumber('TELEGEN_CONTENDED_CPU_PERCENT', 10))
    .describe('CPU budget of the agent, % of one core on average, kept only while the host CPU is contended (everything but the agent used at least 60% of all cores over the last 250 ms, until under 50% over a second): a traced service at saturation keeps its cores; the socket ring holds what is not read meanwhile and the kernel drops and counts what does not fit (telegen_bpf_ring_full_total; paused time: telegen_ingest_ring_paused_seconds_total{reason="cpu_contention"}; telegen_host_cpu_contended). 0 = never. Env: TELEGEN_CONTENDED_CPU_PERCENT'),
  max_rss_mb: z.number().min(0).max(1_048_576).default(envNumber('TELEGEN_MAX_RSS_MB', MAX_RSS_MB))
    .describe('Memory bound of the agent, MiB of RSS not counting what the OTLP export queues hold (they have their own caps, otlp.*.queue_bytes); near it the socket ring is not read and the heap is collected until the agent is back under (kernel drops counted in telegen_bpf_ring_full_total; paused time: telegen_ingest_ring_paused_seconds_total{reason="memory"}). 0 = no bound. Env: TELEGEN_MAX_RSS_MB'),
  shed_export_backlog_percent: z.number().min(0).max(100).default(envNumber('TELEGEN_SHED_EXPORT_BACKLOG_PERCENT', 90))
    .describe('File exporter only: when the trace queue holds more than this % of its cap, ring data records are skipped (counted, reason export_backlog) until it is under half of it. 0 = never. Env: TELEGEN_SHED_EXPORT_BACKLOG_PERCENT'),
}).strict();
export type OverloadConfig = z.infer<typeof overloadSchema>;

/** What the gate switches: KernelIngest skips data records while `shedReason` >= 0 and counts
 *  them in `shedRecords[shedReason]` (a plain field read per record, no call). It calls `onRead`
 *  (set by the gate) after each batch of records it read: what the bound and the backlog measure
 *  grows only with records read, so the gate looks often only while they come (GateCadence). */
export interface Sheddable {
  shedReason: number;
  readonly shedRecords: Float64Array;
  onRead?: (records: number) => void;
}

/** The trace queue's fill, read without allocating. */
export interface QueueFill { readonly heldBytes: number; readonly capBytes: number }

/** How often CPU, memory and the queue are looked at while records are read: with a CPU budget or
 *  a memory bound, 50 ms (the granularity of the budget's duty cycle; a resumed reader decoding a
 *  full ring grows the heap ~10 MiB in 100 ms), else 100 ms. */
export const TICK_MS = 100;
export const BUDGET_TICK_MS = 50;
/** How often they are looked at when nothing was read for QUIET_TICKS ticks (and no budget is
 *  kept, nothing paused or shed): RSS read every 50 ms was 1.7% of the idle agent's samples
 *  (bench/README.md "Idle CPU, 2026-11-27 evening"). The first batch read brings the fast ticks
 *  back, so a burst is looked at within one fast tick of its first records, as before. */
export const IDLE_TICK_MS = 1000;
/** Between batches, RSS is read at most this often for the memory bound (see startOverloadGate). */
export const MEMORY_CHECK_MS = 5;
/** Ring records a resumed reader takes before a CPU budget may pause it again
 *  (TELEGEN_RESUME_MIN_RECORDS; 0 = none). What the kernel writes while the ring is read is runs
 *  of exchanges cut at both ends. With 256-record calls (tracers.socket.max_batch) the contention
 *  budget paused the reader after 2,176-2,560 records a resume (median; 8,192 with 4096-record
 *  calls, two a resume), and a 15 s wrk burst took 3.7-4.5 ring records a span. With this
 *  minimum: 9,600-10,624 a resume, 2.5-2.9 records a span, 1.3-1.5x the spans (bench/README.md
 *  "Ring batch size"). The overspend is the budget's debt: the next pause is longer, the average
 *  the same. */
export const RESUME_MIN_RECORDS = 8192;
export function resumeMinRecords(env: NodeJS.ProcessEnv = process.env): number {
  return Math.max(0, envNumber('TELEGEN_RESUME_MIN_RECORDS', RESUME_MIN_RECORDS, env));
}
export const QUIET_TICKS = 20;
const round2 = (x: number) => Math.round(x * 100) / 100;

/** When the gate ticks, apart from the timers: `fast` while records are read, a budget is kept or
 *  the gate holds the ring paused or sheds; after QUIET_TICKS fast ticks with none of that, slow. */
export class GateCadence {
  fast = true;
  private read = false;
  private quiet = 0;
  /** A budget is kept (fast ticks always); set again when a config reload changes the budget. */
  constructor(public always: boolean) {}
  /** Records were read; true when this brings the fast ticks back. */
  onRead(): boolean {
    this.read = true;
    if (this.fast) return false;
    this.fast = true;
    this.quiet = 0;
    return true;
  }
  /** After a fast tick: false when the gate goes slow. */
  afterFastTick(holding: boolean): boolean {
    if (this.always || holding || this.read) { this.read = false; this.quiet = 0; return true; }
    if (++this.quiet < QUIET_TICKS) return true;
    this.fast = false;
    return false;
  }
}
const LOG_EVERY_MS = 60_000;

export interface OverloadLog { warn(obj: object, msg: string): void }

/** The export backlog decision apart from the timer: shed while the file trace queue is over its
 *  mark, and (hysteresis) until it is under half of it, so it does not flip on every batch the
 *  exporter takes. */
export function backlogShedding(cfg: OverloadConfig, fill: QueueFill | undefined, on: boolean): boolean {
  if (!fill || cfg.shed_export_backlog_percent <= 0) return false;
  const high = (fill.capBytes * cfg.shed_export_backlog_percent) / 100;
  return fill.heldBytes > high || (on && fill.heldBytes > high / 2);
}

/** The most a budget banks while under it (a quiet agent cannot save up for a long burst) and the
 *  most debt it carries (when the paused agent's other work, export and collections, costs more
 *  than the budget, reading resumes within about this long of that work ending), in ms of budget. */
const CREDIT_MS = 100;
const DEBT_MS = 1000;
/** The contention budget carries more: what a resumed reader sets off after it pauses (its spans'
 *  export, collections) is most of what a small budget is spent on, and with a 1 s debt a 10%
 *  budget averaged 18-22% of a core at saturation; the ring holds what waits meanwhile. */
const CONTENDED_DEBT_MS = 5000;

/** A CPU budget kept on average: `charge` credits the budget's share of the elapsed time, debits
 *  the CPU used, and says whether to pause (the balance is negative). Paused, the agent's CPU
 *  falls under the budget and the debt is paid back, so over any stretch longer than a few ticks
 *  the agent uses its budget, not more. */
export class CpuBudget {
  /** µs of CPU the agent may still use now; negative while paused. */
  balance = 0;
  private readonly maxCredit: number;
  private readonly maxDebt: number;
  constructor(readonly percent: number, debtMs = DEBT_MS) {
    this.maxCredit = (percent / 100) * CREDIT_MS * 1000;
    this.maxDebt = (percent / 100) * debtMs * 1000;
  }
  charge(usedMicros: number, elapsedMs: number): boolean {
    const b = this.balance + (this.percent / 100) * elapsedMs * 1000 - usedMicros;
    this.balance = Math.max(-this.maxDebt, Math.min(this.maxCredit, b));
    return this.balance < 0;
  }
}

/** The share of all cores that the machine spends on everything but the agent, at or over which
 *  the host is contended, and under which it no longer is (hysteresis: the agent's own pauses
 *  move it). A Node server and wrk at saturation on this 2-core machine use 83-88% of it with
 *  nothing traced; at 954 req/s, 7-17% (per-second samples, untraced). */
export const CONTENDED_AT = 0.6;
export const UNCONTENDED_AT = 0.5;
/** How often the host's CPU is read while contended: /proc/stat counts in 10 ms ticks per CPU, so
 *  a second is what resolves a few percent, and the budget is not lifted on a short lull. */
export const CONTENTION_WINDOW_MS = 1000;
/** How often it is read while not contended, so a saturated host is seen sooner: until then the
 *  agent reads at full speed (a whole window of a core at saturation: in an 8 s agent-overhead
 *  case, 1 s of it was ~60% of what the contended agent used). 250 ms on 2 CPUs is 50 ticks, a 2%
 *  resolution against a 60% threshold. */
export const CONTENTION_ENTER_WINDOW_MS = 250;
/** /proc/stat's unit (USER_HZ, 100 on every Linux ABI), in µs. */
const JIFFY_US = 10_000;

/** Host CPU contention apart from where its numbers come from: `step` takes the machine's busy and
 *  total CPU time (/proc/stat jiffies, all CPUs) and the agent's own CPU time (µs, every thread)
 *  so far, and says whether the host is contended over the time since the last step. */
export class Contention {
  contended = false;
  /** Share of all cores used by everything but the agent over the last window (-1: none yet). */
  othersShare = -1;
  private busy = -1;
  private total = 0;
  private agent = 0;
  step(busyJiffies: number, totalJiffies: number, agentMicros: number): boolean {
    const dTotal = totalJiffies - this.total;
    if (this.busy >= 0 && dTotal > 0) {
      const others = (busyJiffies - this.busy) / dTotal - (agentMicros - this.agent) / (dTotal * JIFFY_US);
      this.othersShare = Math.max(0, others);
      this.contended = this.othersShare >= (this.contended ? UNCONTENDED_AT : CONTENDED_AT);
    }
    if (dTotal > 0 || this.busy < 0) { this.busy = busyJiffies; this.total = totalJiffies; this.agent = agentMicros; }
    return this.contended;
  }
}

/** The machine's busy and total CPU time from /proc/stat's first line, read into one buffer kept
 *  for the agent's life (no allocation per read: ~10 µs a read here). Undefined where /proc/stat
 *  cannot be read (the contention budget is then never kept). */
export function hostCpuReader(file = '/proc/stat'): ((out: Float64Array) => boolean) | undefined {
  let fd: number;
  try { fd = fs.openSync(file, 'r'); } catch { return undefined; }
  const buf = Buffer.alloc(256);
  return (out) => {
    let n: number;
    try { n = fs.readSync(fd, buf, 0, buf.length, 0); } catch { return false; }
    return parseCpuLine(buf, n, out);
  };
}

/** "cpu  user nice system idle iowait irq softirq steal ...": out[0] = busy, out[1] = total
 *  jiffies (idle and iowait are not busy; guest time is already in user). */
export function parseCpuLine(buf: Uint8Array, n: number, out: Float64Array): boolean {
  if (n < 5 || buf[0] !== 0x63 || buf[1] !== 0x70 || buf[2] !== 0x75 || buf[3] !== 0x20) return false;
  let i = 4;
  let field = 0;
  let total = 0;
  let idle = 0;
  while (i < n && field < 8) {
    while (i < n && buf[i] === 0x20) i++;
    if (i >= n || buf[i] === 0x0a) break;
    let v = 0;
    while (i < n && buf[i] >= 0x30 && buf[i] <= 0x39) v = v * 10 + (buf[i++] - 0x30);
    total += v;
    if (field === 3 || field === 4) idle += v;
    field++;
  }
  if (field < 5) return false;
  out[0] = total - idle;
  out[1] = total;
  return true;
}

/** Over this share of agent.max_rss_mb, reading pauses: what is in flight when it pauses (the
 *  batch being decoded, spans the correlator holds) still grows the heap: 11 MiB over a 0.92
 *  mark with a 100 ms tick in test/faults/shed.test.ts. */
export const PAUSE_AT = 0.88;
/** Under this share, reading resumes: low enough that it does not flip on every batch (or under
 *  PAUSE_AT right after a collection). */
export const RESUME_AT = 0.8;
/** After pausing, the first collection waits this long: spans the correlator holds (1.5 s for a
 *  server span) and the batch in flight leave the heap, so one collection frees them too. */
export const SETTLE_MS = 1000;
/** How long after a collection the memory it left is read (see MemoryBound). */
export const JUDGE_MS = 100;
/** The memory bound's state apart from the timer: `step` takes the agent's memory (bytes) at time
 *  `t` (ms), updates `paused` and says whether a collection is due now; `collected` takes the
 *  time that collection ended.
 *
 *  The collection is judged a judge time after it, not as it returns: a compacting collection
 *  holds its old and new pages until V8 unmaps the old ones in the background, and RSS read right
 *  after it was up to 18 MiB over what it settled at a moment later (124 vs 103 MiB with a 120 MiB
 *  bound in test/faults/shed.test.ts: the mark was raised over the bound, the resumed reader's
 *  backlog took the agent to 121 MiB and the test failed).
 *
 *  A pause lasts one settle time, one collection and one judge time at most. If the collection leaves the agent
 *  over the mark, what is left is live (connections, series, the stores' windows) and would not go
 *  while nothing is read: staying paused would stop tracing for good (it did, with a bound 110 MiB
 *  in test/faults/shed.test.ts). Reading resumes and the mark is raised to that live memory plus
 *  the gap between the marks, so only growth beyond it pauses again; `raised` says so (logged and
 *  on /metrics). Back under the resume mark, the configured marks apply again. */
export class MemoryBound {
  paused = false;
  /** Bytes of live memory a collection left over the configured mark (0: marks as configured). */
  raised = 0;
  private readonly high: number;
  private readonly low: number;
  private pauseAt: number;
  private collectAt = 0;
  /** When the collection whose outcome the next step after JUDGE_MS reads ended; -1: none. */
  private collectedAt = -1;
  constructor(readonly maxBytes: number) {
    this.high = maxBytes * PAUSE_AT;
    this.low = maxBytes * RESUME_AT;
    this.pauseAt = this.high;
  }
  /** The mark reading pauses above now, bytes. */
  get mark(): number { return this.pauseAt; }
  collected(t: number): void {
    this.collectedAt = t;
  }
  step(bytes: number, t: number): boolean {
    if (!this.paused) {
      if (bytes < this.low && this.raised) { this.raised = 0; this.pauseAt = this.high; }
      if (bytes <= this.pauseAt) return false;
      this.paused = true;
      this.collectAt = t + SETTLE_MS;
      return false;
    }
    if (bytes < this.low) { this.resume(); return false; }
    if (this.collectedAt >= 0) {
      if (t - this.collectedAt < JUDGE_MS) return false;
      this.resume();
      if (bytes > this.high) {
        this.raised = bytes;
        this.pauseAt = bytes + (this.high - this.low);
      }
      return false;
    }
    return t >= this.collectAt;
  }
  private resume(): void {
    this.paused = false;
    this.collectedAt = -1;
  }
}

/** What the gate reads and switches, besides the ingest it sheds in. */
export interface GateHooks {
  /** The file exporter's trace queue (backlog shedding), else undefined. */
  fill?: QueueFill;
  /** Bytes the OTLP export queues hold now (left out of the memory bound). */
  queuedBytes?: () => number;
  /** Stops (true) or resumes reading the socket ring, when its reader can pause. */
  pauseRing?: (paused: boolean) => void;
  /** One full collection (compacting when `compact`) and the native heap trim (memory/index.ts). */
  collect?: (compact: boolean) => void;
  /** Reads the host's busy and total CPU jiffies into out[0], out[1] (tests); default /proc/stat.
   *  null: none (the contention budget is never kept). */
  hostCpu?: ((out: Float64Array) => boolean) | null;
  /** Ingest pacing mark over the file trace queue (`fill`), bytes (memory/pace.ts); default
   *  paceBytes() (TELEGEN_INGEST_PACE_BYTES), 0 = never. */
  paceBytes?: number;
  /** The longest a paced ring stays paused (tests); default PACE_MAX_MS. */
  paceMaxMs?: number;
  /** Records a resumed reader takes before a CPU budget pauses it again (tests); default
   *  resumeMinRecords(). */
  resumeMinRecords?: number;
}

/** Time the ring was paused for one reason; overlapping pauses count for each reason. */
class PausedTime {
  since = -1;
  ms = 0;
  set(on: boolean, t: number): void {
    if (on === this.since >= 0) return;
    if (on) this.since = t; else { this.ms += t - this.since; this.since = -1; }
  }
  seconds(t: number): number { return (this.ms + (this.since >= 0 ? t - this.since : 0)) / 1000; }
}

/** Starts the gate; undefined when nothing is configured to shed or pause. */
export interface OverloadGate {
  stop(): void;
  /** Config reload: agent.max_cpu_percent and shed_export_backlog_percent apply from the next
   *  tick (a new budget starts with an empty balance); max_rss_mb is not read (the bound and the
   *  idle collection's compaction limit are set together at start). */
  update(cfg: OverloadConfig): void;
}

export function startOverloadGate(cfg: OverloadConfig, target: Sheddable, metrics: SelfMetrics, log: OverloadLog, hooks: GateHooks = {}): OverloadGate | undefined {
  const { fill, pauseRing, collect } = hooks;
  const queuedBytes = hooks.queuedBytes ?? (() => 0);
  // Pacing needs a reader that can pause and the file exporter's queue (memory/pace.ts).
  const paceMark = fill && pauseRing ? hooks.paceBytes ?? paceBytes() : 0;
  if (cfg.max_cpu_percent <= 0 && cfg.max_rss_mb <= 0 && cfg.contended_cpu_percent <= 0 && (!fill || cfg.shed_export_backlog_percent <= 0) && paceMark <= 0) return undefined;
  let budget = cfg.max_cpu_percent > 0 ? new CpuBudget(cfg.max_cpu_percent) : undefined;
  // The contention budget exists only while the host is contended (a new one, empty, each time).
  const readHost = hooks.hostCpu !== undefined ? hooks.hostCpu : hostCpuReader();
  const contention = new Contention();
  const hostCpu = new Float64Array(2);
  let contendedBudget: CpuBudget | undefined;
  let lastHostRead = -Infinity;
  let contendedSince = -1;
  let contendedMs = 0;
  const bound = cfg.max_rss_mb > 0 ? new MemoryBound(cfg.max_rss_mb * 2 ** 20) : undefined;
  let tickMs = budget || bound ? BUDGET_TICK_MS : TICK_MS;
  const paused = SHED_REASONS.map(() => new PausedTime());
  let ringPaused = false;
  /** The ring is paused for the budget, the bound or contention; it is also paused while paced. */
  let overloadPaused = false;
  const pace = paceMark > 0 ? new IngestPace(paceMark, hooks.paceMaxMs) : undefined;
  let paceTimer: NodeJS.Timeout | undefined;
  const applyRing = () => {
    const p = overloadPaused || !!pace?.paused;
    if (p !== ringPaused) { ringPaused = p; pauseRing?.(p); }
  };
  const paceCheck = () => {
    paceTimer = undefined;
    if (!pace!.check(fill!.heldBytes, performance.now())) { paceTimer = setTimeout(paceCheck, PACE_CHECK_MS); paceTimer.unref(); return; }
    applyRing();
  };
  let collections = 0;
  const minResume = hooks.resumeMinRecords ?? resumeMinRecords();
  /** Records read since the ring was last resumed (none paused yet: no minimum to wait for). */
  let readSinceResume = Infinity;
  let u = process.cpuUsage();
  let lastCpu = u.user + u.system;
  let lastT = performance.now();
  const logged = new Float64Array(SHED_REASONS.length);
  const loggedPaused = new Float64Array(SHED_REASONS.length);
  let lastLog = lastT;
  const firstLogged = SHED_REASONS.map(() => false);
  const report = (force: boolean) => {
    const t = performance.now();
    let changed = false;
    for (let i = 0; i < logged.length; i++) if (target.shedRecords[i] !== logged[i] || paused[i].seconds(t) !== loggedPaused[i]) changed = true;
    if (!changed || (!force && t - lastLog < LOG_EVERY_MS)) return;
    const shed: Record<string, number> = {};
    const ringPausedS: Record<string, number> = {};
    for (let i = 0; i < logged.length; i++) {
      shed[SHED_REASONS[i]] = target.shedRecords[i] - logged[i];
      logged[i] = target.shedRecords[i];
      const s = paused[i].seconds(t);
      if (s > loggedPaused[i]) ringPausedS[SHED_REASONS[i]] = Math.round((s - loggedPaused[i]) * 10) / 10;
      loggedPaused[i] = s;
    }
    log.warn({ shed, ring_paused_s: Object.keys(ringPausedS).length ? ringPausedS : undefined, since_ms: Math.round(t - lastLog), max_cpu_percent: cfg.max_cpu_percent || undefined, max_rss_mb: cfg.max_rss_mb || undefined, rss_bytes: process.memoryUsage.rss(), collections, trace_queue_bytes: fill?.heldBytes },
      'agent overloaded: ring data records skipped (telegen_ingest_shed_records_total) or the ring not read (telegen_ingest_ring_paused_seconds_total)');
    lastLog = t;
  };
  const memoryNow = () => rssNow() - queuedBytes();
  const over = SHED_REASONS.map(() => false);
  const setContended = (on: boolean, t: number) => {
    contention.contended = on;
    contendedBudget = on ? new CpuBudget(cfg.contended_cpu_percent, CONTENDED_DEBT_MS) : undefined;
    cadence.always = !!budget || on;
    if (on) contendedSince = t;
    else if (contendedSince >= 0) { contendedMs += t - contendedSince; contendedSince = -1; }
  };
  const tick = () => {
    const t = performance.now();
    u = process.cpuUsage();
    const cpu = u.user + u.system;
    const overCpu = budget ? budget.charge(cpu - lastCpu, t - lastT) : false;
    if (readHost && cfg.contended_cpu_percent > 0 && t - lastHostRead >= (contention.contended ? CONTENTION_WINDOW_MS : CONTENTION_ENTER_WINDOW_MS)) {
      lastHostRead = t;
      const was = contention.contended;
      if (readHost(hostCpu) && contention.step(hostCpu[0], hostCpu[1], cpu) !== was) setContended(contention.contended, t);
    }
    const overContention = contendedBudget ? contendedBudget.charge(cpu - lastCpu, t - lastT) : false;
    lastCpu = cpu;
    lastT = t;
    let overMemory = false;
    if (bound) {
      const wasRaised = bound.raised;
      if (bound.step(memoryNow(), t)) {
        if (collect) {
          // A compacting collection copies the survivors before it frees their old pages, up to
          // the heap in use: only where that fits under the bound. A plain one frees in place.
          const bytes = memoryNow();
          collect(bytes + v8.getHeapStatistics().used_heap_size <= bound.maxBytes);
          collections++;
        }
        // The collection's own CPU is the agent's, charged at the next tick like any other work.
        bound.collected(performance.now());
      } else if (bound.raised > wasRaised) {
        log.warn({ max_rss_mb: cfg.max_rss_mb, live_mb: Math.round(bound.raised / 2 ** 20), pause_above_mb: Math.round(bound.mark / 2 ** 20) },
          'memory bound under what the agent holds after a full collection: reading resumed, pausing only above the raised mark (raise agent.max_rss_mb)');
      }
      overMemory = bound.paused;
    }
    const backlog = backlogShedding(cfg, fill, target.shedReason === BACKLOG);
    // A backlog is named first: it is the cause an operator can act on.
    const reason = backlog ? BACKLOG : overMemory ? MEMORY : overCpu ? CPU : overContention ? CONTENTION : -1;
    // A budget does not pause a reader that resumed less than minResume records ago (the memory
    // bound does): nothing is skipped meanwhile, the budget's debt grows.
    const defer = !!pauseRing && !overMemory && (overCpu || overContention) && !overloadPaused && readSinceResume < minResume;
    const pause = !!pauseRing && (overMemory || overCpu || overContention) && !defer;
    if (overloadPaused && !pause) readSinceResume = 0;
    over[CPU] = overCpu;
    over[BACKLOG] = backlog;
    over[MEMORY] = overMemory;
    over[CONTENTION] = overContention;
    paused[CPU].set(pause && overCpu, t);
    paused[MEMORY].set(pause && overMemory, t);
    paused[CONTENTION].set(pause && overContention, t);
    overloadPaused = pause;
    applyRing();
    // Records are skipped for the backlog, and for the budget or the bound only when the reader
    // cannot pause.
    target.shedReason = backlog ? BACKLOG : pause || defer ? -1 : reason;
    // The first overload of each reason is logged when it starts (DESIGN: log the first event),
    // later ones once a minute.
    for (const r of LOG_ORDER) {
      if (firstLogged[r] || !over[r]) continue;
      firstLogged[r] = true;
      const pausing = r !== BACKLOG && pause;
      log.warn({ reason: SHED_REASONS[r], max_cpu_percent: r === CPU ? cfg.max_cpu_percent : undefined,
        contended_cpu_percent: r === CONTENTION ? cfg.contended_cpu_percent : undefined, host_cpu_other_utilization: r === CONTENTION ? round2(contention.othersShare) : undefined, max_rss_mb: r === MEMORY ? cfg.max_rss_mb : undefined, rss_bytes: r === MEMORY ? process.memoryUsage.rss() : undefined, trace_queue_bytes: fill?.heldBytes, trace_queue_cap: fill?.capBytes },
        pausing ? 'agent overloaded: ring reading paused, the kernel drops and counts what does not fit (telegen_bpf_ring_full_total)' : 'agent overloaded: skipping ring data records (counted per reason)');
    }
    report(false);
  };
  // Fast ticks while records are read (or the gate holds the ring), one a second otherwise.
  const cadence = new GateCadence(!!budget);
  let fast: NodeJS.Timeout | undefined;
  const fastTick = () => {
    tick();
    if (!cadence.afterFastTick(overloadPaused || target.shedReason >= 0 || !!bound?.paused) && fast) { clearInterval(fast); fast = undefined; }
  };
  const goFast = () => { fast = setInterval(fastTick, tickMs); fast.unref(); };
  goFast();
  const slow = setInterval(() => {
    if (cadence.fast) return;
    tick();
    // Paused or shedding (a backlog, memory grown while idle): looked at fast again.
    if ((overloadPaused || target.shedReason >= 0 || !!bound?.paused) && cadence.onRead()) goFast();
  }, IDLE_TICK_MS);
  slow.unref();
  // A resumed reader decodes the ring's backlog a 4096-record batch per loop turn, each long
  // enough to delay the next tick (the file trace queue grew ~7 MiB between two ticks in
  // test/faults/shed.test.ts): the bound is also looked at after each batch, RSS read at most
  // every MEMORY_CHECK_MS, so a pause does not wait for the timer.
  let lastMemoryCheck = 0;
  target.onRead = (records) => {
    readSinceResume += records;
    if (cadence.onRead()) goFast();
    // Paced: the next batch is read once the exporter has taken this one's spans (memory/pace.ts).
    if (pace && pace.afterBatch(fill!.heldBytes, performance.now())) {
      applyRing();
      paceTimer = setTimeout(paceCheck, PACE_CHECK_MS);
      paceTimer.unref();
    }
    if (!bound || bound.paused) return;
    const t = performance.now();
    if (t - lastMemoryCheck < MEMORY_CHECK_MS) return;
    lastMemoryCheck = t;
    if (memoryNow() > bound.mark) tick();
  };
  metrics.addCollector((m) => {
    const t = performance.now();
    for (let i = 0; i < SHED_REASONS.length; i++) {
      m.set('telegen_ingest_shed_records_total', 'Ring data records skipped before decoding because the agent was overloaded, by reason (cpu_budget: over agent.max_cpu_percent; export_backlog: the file trace queue near its cap; memory: over agent.max_rss_mb; cpu_contention: over agent.contended_cpu_percent while the host CPU is contended) when the ring reader cannot pause', target.shedRecords[i], { reason: SHED_REASONS[i] }, 'counter');
      m.set('telegen_ingest_shedding', 'Whether the agent sheds now (1) for this reason: skips ring data records, or (cpu_budget, memory) has paused reading the ring', target.shedReason === i || paused[i].since >= 0 ? 1 : 0, { reason: SHED_REASONS[i] });
    }
    if (cfg.contended_cpu_percent > 0 && readHost) {
      m.set('telegen_host_cpu_contended', 'Whether the host CPU is contended now (1): everything but the agent used at least 60% of all cores over the last 250 ms (until under 50% over a second); the agent then keeps agent.contended_cpu_percent of a core', contention.contended ? 1 : 0);
      m.set('telegen_host_cpu_contended_seconds_total', 'Time the host CPU was contended (see telegen_host_cpu_contended)', (contendedMs + (contendedSince >= 0 ? t - contendedSince : 0)) / 1000, {}, 'counter');
      if (contention.othersShare >= 0) m.set('telegen_host_cpu_other_utilization', 'Share of all cores used by everything but the agent over the last second it was read', round2(contention.othersShare));
      if (pauseRing) m.set('telegen_ingest_ring_paused_seconds_total', 'Time the socket ring was not read because the agent was over agent.max_cpu_percent (cpu_budget), agent.max_rss_mb (memory) or, while the host CPU was contended, agent.contended_cpu_percent (cpu_contention); the kernel counts what it dropped meanwhile in telegen_bpf_ring_full_total', paused[CONTENTION].seconds(t), { reason: 'cpu_contention' }, 'counter');
    }
    if (pauseRing) {
      if (budget) m.set('telegen_ingest_ring_paused_seconds_total', 'Time the socket ring was not read because the agent was over agent.max_cpu_percent (cpu_budget), agent.max_rss_mb (memory) or, while the host CPU was contended, agent.contended_cpu_percent (cpu_contention); the kernel counts what it dropped meanwhile in telegen_bpf_ring_full_total', paused[CPU].seconds(t), { reason: 'cpu_budget' }, 'counter');
      if (bound) m.set('telegen_ingest_ring_paused_seconds_total', 'Time the socket ring was not read because the agent was over agent.max_cpu_percent (cpu_budget), agent.max_rss_mb (memory) or, while the host CPU was contended, agent.contended_cpu_percent (cpu_contention); the kernel counts what it dropped meanwhile in telegen_bpf_ring_full_total', paused[MEMORY].seconds(t), { reason: 'memory' }, 'counter');
    }
    if (pace) {
      m.set('telegen_ingest_paced_total', 'Times the socket ring was not read after a batch because the file trace queue held more than the pacing mark (TELEGEN_INGEST_PACE_BYTES): the next batch is read once the exporter has taken most of it, so a ring backlog is not decoded into spans all at once', pace.pauses, {}, 'counter');
      m.set('telegen_ingest_paced_seconds_total', 'Time the socket ring was not read for pacing (see telegen_ingest_paced_total)', pace.seconds(t), {}, 'counter');
    }
    if (bound) {
      m.set('telegen_agent_memory_bound_collections_total', 'Full collections run because the agent was over agent.max_rss_mb', collections, {}, 'counter');
      m.set('telegen_agent_memory_bound_mark_bytes', 'Memory (RSS less the OTLP export queues) above which the socket ring is not read: 88% of agent.max_rss_mb, or, when a full collection could not get the agent under that, what it held then plus 8% of the bound', bound.mark);
    }
  });
  return {
    update: (next: OverloadConfig) => {
      cfg = { ...next, max_rss_mb: cfg.max_rss_mb };
      if (next.max_cpu_percent !== (budget?.percent ?? 0)) budget = next.max_cpu_percent > 0 ? new CpuBudget(next.max_cpu_percent) : undefined;
      // A changed contention budget applies from the next contended second.
      if (contention.contended) setContended(false, performance.now());
      cadence.always = !!budget;
      const t = budget || bound ? BUDGET_TICK_MS : TICK_MS;
      if (t !== tickMs && fast) { clearInterval(fast); tickMs = t; goFast(); } else tickMs = t;
      if (budget && !fast) { cadence.onRead(); goFast(); }
    },
    stop: () => {
      clearInterval(fast);
      clearInterval(slow);
      target.onRead = undefined;
      const t = performance.now();
      for (const p of paused) p.set(false, t);
      clearTimeout(paceTimer);
      pace?.end(t);
      overloadPaused = false;
      if (ringPaused) { ringPaused = false; pauseRing?.(false); }
      target.shedReason = -1;
      report(true);
    },
  };
}
