// The agent: wires tracers → router → decoders → span stages → export queues, plus the API.
// Every tracer starts on its own; one that cannot attach is reported and the rest keep running.
import * as fs from 'fs';
import * as os from 'os';
import * as http from 'http';
import { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { Config } from './config';
import { FLAG_NO_REQUEST, KIND_EVENT } from '../../decoders/abi/abi';
import { log, setLogLevel } from './log';
import { SelfMetrics } from './metrics/self';
import { DecoderRegistry, defaultDecodersDir } from './decoders/registry';
import { Router } from './ingest/router';
import { KernelIngest } from './ingest/kernel';
import { recordToSpan, monotonicClock, SpanClock } from './pipeline/spans';
import { recordToLog } from './pipeline/events';
import { LineBudget } from './logs/limit';
import { countStage, filterStage, sampleStage, sampledIn, redactStage, SpanIn } from './pipeline/stages';
import { PipelineConfig } from './pipeline/config';
import { mergeRedaction } from './pipeline/redact';
import { planReload, ReloadPlan, isGateKey } from './config/reload';
import { activeDiscovery } from './discovery';
import { ResolvedExportConfig, createExportQueues, shutdownExportQueues, renderExportMetrics, ExportQueues } from './export';
import { startApi, loadApiToken } from './api/server';
import { dropToRuntimeCapabilities, effectiveCapabilities } from './security/caps';
import { ensureMounts } from './doctor/probe';
import { Policy, loadPolicy, checkHotSwap, PolicyRefusal } from './decoders/policy';
import { DecoderLoadError } from './decoders/instance';
import { installRoot } from './paths';
import * as crypto from 'crypto';
import * as path from 'path';
import { createSignals, Signals } from './signals';
import { startMemoryTuning } from './memory';
import { relieveHeapBeforeLoad } from './memory/native-heap';
import { startOverloadGate, OverloadGate } from './memory/overload';
import { collectMapFill, MapDesc, registerMaps } from './tracers/map-fill';
import { correlateStage, CorrelateStage } from './correlate';
import { Analytics } from './analytics';
import { DnsMetrics } from './analytics/dns-metrics';

/**
 * A tracer beyond the socket tracer (TCP metrics, XDP, file I/O, security, profiler): started on
 * its own; a failure is reported (doctor, /metrics telegen_tracer_up, one log line) and the rest
 * keep running. Register factories in host/src/tracers/index.ts.
 */
export interface TracerContext {
  cfg: Config;
  signals: Signals;
  metrics: SelfMetrics;
  agent: Agent;
  /** The process whose traffic is never traced (default: this one); the privilege-separated
   *  loader runs the TLS tracer for its worker and passes the worker's pid. */
  selfPid?: number;
}
export interface RunningTracer {
  name: string;
  /** One line for /api/status and the log, e.g. "4 programs attached on lo". */
  detail: string;
  /** For a tracer switched on and off at run time (the profiler's PUT /api/profile/enabled):
   *  whether it runs now, and its line, read at each /api/status and metric collection. */
  state?(): { ok: boolean; detail: string };
  stop(): Promise<void> | void;
}
export type TracerFactory = (ctx: TracerContext) => Promise<RunningTracer | null> | RunningTracer | null;

const alog = log.child({ component: 'agent' });

export interface TracerStatus { name: string; ok: boolean; detail: string }

interface NativeTracer { close(): void; pause?(paused: boolean): void; stats(): Record<string, number>; mapStats?(): { conns: number; connMax: number }; maps?(): MapDesc[]; report: { attached: string[]; failed: Array<{ name: string; error: string }>; iovMax?: number } }

export interface StartOptions {
  /** The CLI's `run` (not an embedding process such as a bench) ends start-up holding only the
   *  run-time capabilities. */
  dropPrivileges?: boolean;
  /** Where the socket tracer comes from: the privilege-separated worker adopts the loader's fds. */
  openSocketTracer?: typeof import('./native').openSocketTracer;
  /** Set (to the reason) when only the socket tracer can run here: the others are reported down. */
  onlySocketTracer?: string;
}

export class Agent {
  readonly metrics = new SelfMetrics();
  readonly tracers: TracerStatus[] = [];
  registry!: DecoderRegistry;
  router!: Router;
  kernel!: KernelIngest;
  queues!: ExportQueues;
  private api?: http.Server;
  private socketTracer?: NativeTracer;
  private untrackSocketMaps?: () => void;
  private stopMemoryTuning?: () => void;
  signals!: Signals;
  private extraTracers: RunningTracer[] = [];
  private timers: NodeJS.Timeout[] = [];
  private started = 0;
  private ready = false;
  private firstSpanLogged = false;
  readonly policy: Policy;
  apiToken = '';
  private watcher?: fs.FSWatcher;
  /** Correlation (trace joining) and analytics (RED, service graph, latest traces); see docs/correlation.md. */
  correlate?: CorrelateStage;
  analytics?: Analytics;
  /** Kernel monotonic ns → epoch ns, one offset for every signal so spans, logs and profiles line up. */
  readonly clock: SpanClock = monotonicClock();

  constructor(readonly cfg: Config, readonly exportCfg: ResolvedExportConfig) {
    const file = cfg.policy_file ?? process.env.TELEGEN_POLICY_FILE ?? path.join(installRoot(), 'policies', 'default.yaml');
    this.policy = loadPolicy(fs.existsSync(file) || cfg.policy_file ? file : undefined);
  }

  /** Hot-swap: policy first (signature / allowlist), then ABI verification and load. */
  swap(name: string, bytes: Uint8Array, signature: string | undefined, source: string): { code: number; body: Record<string, unknown> } {
    try {
      const approvedBy = checkHotSwap(this.policy, bytes, signature);
      const d = this.registry.add(bytes, `${source}:${name}`, source, approvedBy, name);
      this.metrics.inc('telegen_decoder_swaps_total', 'Decoder modules swapped in at run time', { decoder: name, result: 'ok' });
      return { code: 200, body: { name: d.name, version: d.version, sha256: d.sha256, generation: d.generation, state: d.state, approvedBy } };
    } catch (e) {
      const refused = e instanceof PolicyRefusal;
      const bad = e instanceof DecoderLoadError || /calls itself/.test((e as Error).message);
      this.metrics.inc('telegen_decoder_swaps_total', 'Decoder modules swapped in at run time', { decoder: name, result: refused ? 'refused' : bad ? 'invalid' : 'error' });
      alog.warn({ decoder: name, source, err: (e as Error).message }, 'decoder swap refused');
      return { code: refused ? 403 : bad ? 400 : 500, body: { error: (e as Error).message } };
    }
  }

  rollback(name: string): { code: number; body: Record<string, unknown> } {
    try {
      const d = this.registry.rollback(name);
      return { code: 200, body: { name: d.name, version: d.version, sha256: d.sha256, generation: d.generation, state: d.state } };
    } catch (e) { return { code: 409, body: { error: (e as Error).message } }; }
  }

  /** watch_dir: NAME.wasm (+ NAME.wasm.sig) dropped there is swapped in like a PUT. */
  private watchDir(dir: string): void {
    const seen = new Map<string, string>();
    const scan = () => {
      let files: string[];
      // dot-files are an installer's temporaries (write, then rename into place)
      try { files = fs.readdirSync(dir).filter((f) => f.endsWith('.wasm') && !f.startsWith('.')); } catch { return; }
      let again = false;
      for (const f of files) {
        const full = path.join(dir, f);
        let bytes: Buffer;
        try {
          // a file written in place may be half-written: wait until it has been still for 300 ms
          if (Date.now() - fs.statSync(full).mtimeMs < 300) { again = true; continue; }
          bytes = fs.readFileSync(full);
        } catch { continue; }
        const sigFile = `${full}.sig`;
        const sig = fs.existsSync(sigFile) ? fs.readFileSync(sigFile, 'utf8').trim() : undefined;
        const key = crypto.createHash('sha256').update(bytes).update(sig ?? '').digest('hex');
        if (seen.get(f) === key) continue;
        seen.set(f, key);
        const r = this.swap(path.basename(f, '.wasm'), bytes, sig, 'watch');
        alog.info({ file: full, code: r.code, result: r.body }, 'watched decoder file processed');
      }
      if (again) setTimeout(scan, 350).unref();
    };
    scan();
    try {
      this.watcher = fs.watch(dir, () => setTimeout(scan, 200));
    } catch (e) { alog.error({ dir, err: (e as Error).message }, 'cannot watch decoder directory'); }
    this.timers.push(setInterval(scan, 5000).unref());
  }

  async start(opts: StartOptions = {}): Promise<void> {
    this.started = Date.now();
    fs.mkdirSync(this.cfg.data_dir, { recursive: true });
    const mounted = ensureMounts();
    if (mounted.length) alog.info({ mounted }, 'mounted kernel filesystems');

    this.queues = createExportQueues(this.exportCfg, this.cfg.data_dir, {
      onEvent: (e) => alog.warn({ event: e }, 'export queue event'),
    });
    this.signals = createSignals(this.queues, {
      intervalMs: Number(process.env.TELEGEN_METRICS_INTERVAL_MS || 15_000),
      metricsBatchPoints: this.exportCfg.metrics.batchSize,
      serviceName: this.cfg.service_name,
    });
    this.setSpanStages(this.cfg.pipeline);
    const exportIn = countStage(this.metrics, (s) => this.spanStages(s));
    // Correlation first (sampling must see final trace ids), analytics on every correlated span.
    this.analytics = new Analytics(this.signals, { exemplarFilter: (s) => this.exemplarKeep(s) });
    this.signals.useExemplars(this.analytics);
    this.correlate = correlateStage({}, this.analytics.tap(exportIn));
    const analytics = this.analytics;
    this.timers.push(setInterval(() => analytics.tick(), 500).unref());
    const spanIn = this.correlate;

    const clock = this.clock;
    const hostName = os.hostname();
    this.registry = new DecoderRegistry({
      onRecord: (rec, inst) => this.router.onRecord(rec, inst.meta.name),
      onLog: (level, msg, inst) => { if (level >= 2) alog.warn({ decoder: inst.meta.name, msg }, 'decoder log'); },
      onBadRecord: (err, inst) => {
        this.metrics.inc('telegen_decoder_bad_records_total', 'Malformed records a decoder emitted', { decoder: inst.meta.name });
        alog.debug({ decoder: inst.meta.name, err: err.message }, 'bad record');
      },
      onHostError: (err, inst) => {
        this.metrics.inc('telegen_host_record_errors_total', 'Host-side failures handling a decoder record', { decoder: inst.meta.name });
        alog.error({ decoder: inst.meta.name, err: err.message, stack: err.stack }, 'host failed on a record');
      },
    }, this.policy);
    this.registry.onChange((event, d) => {
      if (event === 'quarantined') this.metrics.inc('telegen_decoder_quarantined_total', 'Decoder versions quarantined after repeated failures', { decoder: d.name });
    });
    // Start-up peak RSS (bench/README.md): each heavy step starts from a collected, trimmed heap.
    relieveHeapBeforeLoad();
    this.registry.loadDir(this.cfg.decoders.dir ?? defaultDecodersDir(), this.cfg.decoders.disabled);
    this.registry.addPortHints(this.cfg.decoders.ports);
    const dnsMetrics = new DnsMetrics(this.signals.meter);
    // Protocol events (PostgreSQL notices and notifications, HTTP/2 protocol problems) are log
    // records; a process sending them in a loop is held to 100 a second (as log lines are).
    const eventBudget = new LineBudget(100);
    this.router = new Router(this.registry, (rec, conn, decoder) => {
      if (rec.kind === KIND_EVENT) {
        const logs = this.queues.logs;
        if (!logs) return;
        if (!eventBudget.take(conn.meta.pid ?? 0)) { this.metrics.inc('telegen_protocol_events_dropped_total', 'Protocol events over the per-process rate (no log record)', { decoder }); return; }
        const l = recordToLog(rec, conn.meta, decoder, clock);
        if (l) { logs.enqueue(l); this.metrics.inc('telegen_protocol_events_total', 'Protocol events exported as log records', { decoder }); }
        return;
      }
      const span = recordToSpan(rec, conn.meta, decoder, { clock, hostName });
      if (!span) {
        if (rec.flags & FLAG_NO_REQUEST) this.metrics.inc('telegen_exchanges_without_request_total', 'Responses whose request was never seen (no span)', { decoder });
        return;
      }
      if (!this.firstSpanLogged) { this.firstSpanLogged = true; alog.info({ name: span.name, decoder }, 'first span'); }
      if (decoder === 'dns') dnsMetrics.observe(span);
      spanIn(span, conn.meta);
    }, this.metrics, { detectThreshold: this.cfg.decoders.detect_threshold, listening: (port) => activeDiscovery()?.listensOn(port) ?? false });
    this.kernel = new KernelIngest(this.router, this.metrics);
    const kernel = this.kernel;
    this.correlate.correlator.mayServe = (pid) => kernel.mayServe(pid);
    const only = this.cfg.tracers.socket.target_pid;
    if (only) this.correlate.correlator.peerMayBeTraced = () => kernel.mayCall(only);

    if (this.cfg.tracers.socket.enabled) { relieveHeapBeforeLoad(); this.startSocketTracer(opts.openSocketTracer); }
    else this.tracers.push({ name: 'socket', ok: false, detail: 'disabled in config' });
    await this.startExtraTracers(opts.onlySocketTracer);

    this.metrics.addCollector((m) => this.collect(m));
    this.timers.push(setInterval(() => {
      if (this.kernel.lastTs > 0n) this.router.tick(this.kernel.lastTs);
      this.kernel.expireIdle(300_000_000_000n);
      this.router.migrateDrained(this.policy.hot_swap.drain_timeout_ms);
    }, 1000).unref());
    if (this.policy.hot_swap.watch_dir) this.watchDir(this.policy.hot_swap.watch_dir);

    if (this.cfg.api.enabled) {
      this.apiToken = loadApiToken(this.cfg.api.token_file, this.cfg.data_dir);
      this.api = await startApi(this.cfg.api.listen, {
        metrics: { render: () => this.metrics.render() + renderExportMetrics(this.queues) },
        registry: this.registry,
        ready: () => this.ready,
        status: () => this.status(),
        token: this.apiToken,
        tls: this.cfg.api.tls,
        maxBodyBytes: this.policy.hot_swap.max_module_bytes,
        swap: (name, bytes, sig) => this.swap(name, bytes, sig, 'api'),
        rollback: (name) => this.rollback(name),
        analytics: this.analytics,
      });
      const where = this.api.address();
      if (where && typeof where === 'object') this.router.setAgentApi(where.address, where.port);
      alog.info({ listen: this.cfg.api.listen }, 'API listening');
    }
    if (opts.dropPrivileges) this.dropPrivileges();
    const tuning = startMemoryTuning(this.cfg.agent.max_rss_mb * 2 ** 20);
    const q = this.queues;
    // Only OTLP queues are left out of the memory bound (they ride out a receiver outage up to
    // their own caps); a file backlog means the agent is short of CPU, which the bound is for.
    const otlpHeld = (queue: { heldBytes: number } | undefined, mode: string) => (mode === 'otlp' ? queue?.heldBytes ?? 0 : 0);
    const gate = startOverloadGate(this.cfg.agent, this.kernel, this.metrics, alog, {
      fill: this.exportCfg.traces.mode === 'file' ? q.traces : undefined,
      queuedBytes: () => otlpHeld(q.traces, this.exportCfg.traces.mode) + otlpHeld(q.metrics, this.exportCfg.metrics.mode) + otlpHeld(q.logs, this.exportCfg.logs.mode) + otlpHeld(q.profiles, this.exportCfg.profiles.mode),
      // The correlator's deadlines stop with the ring: what it holds waits for records still in it.
      pauseRing: this.socketTracer?.pause ? (p) => { this.socketTracer?.pause?.(p); this.correlate?.correlator.inputPaused(p); } : undefined,
      collect: tuning.collect,
    });
    this.gate = gate;
    this.stopMemoryTuning = () => { gate?.stop(); tuning(); };
    this.ready = true;
    alog.info({ tracers: this.tracers.map((t) => `${t.name}:${t.ok ? 'up' : 'down'}`), traces: this.queues.traces ? this.describeTarget() : 'disabled' }, 'telegen running');
  }

  /** filter → sample → redact → trace queue, and the sampling decision exemplars follow: built
   *  whole and swapped between two spans by reload() (one reference each, read per span). */
  private spanStages: SpanIn = () => undefined;
  /** The overload gate, for reload() (undefined: nothing to shed or pause was configured at start). */
  private gate?: OverloadGate;
  private exemplarKeep: (s: ReadableSpan) => boolean = () => true;
  private setSpanStages(p: PipelineConfig): void {
    const tracesQ = this.queues.traces;
    const toExport = (s: ReadableSpan) => { tracesQ?.enqueue(s); };
    const redaction = mergeRedaction(this.policy.redaction, p.redaction);
    this.spanStages = filterStage(p.filter, this.metrics, sampleStage(p.sampling, this.metrics, redactStage(redaction, toExport)));
    this.exemplarKeep = sampledIn(p.sampling);
  }

  /** SIGHUP: applies what a changed config can change live (config/reload.ts says which keys and
   *  why) and names the rest. */
  reload(next: Config): ReloadPlan {
    const plan = planReload(this.cfg, next);
    let live = plan.live;
    let restart = plan.restart;
    // With no gate running (everything was off at start) there is nothing to update: a restart starts one.
    if (!this.gate) { restart = [...restart, ...live.filter(isGateKey)]; live = live.filter((k) => !isGateKey(k)); }
    // First: a rule's regular expression that does not compile throws here, before anything changed.
    if (plan.live.includes('discovery.service_rules')) {
      try { activeDiscovery()?.setServiceRules(next.discovery.service_rules); } catch (e) { throw new Error(`discovery.service_rules: ${(e as Error).message}`); }
      this.cfg.discovery.service_rules = next.discovery.service_rules;
    }
    if (plan.live.some((k) => k.startsWith('pipeline.'))) {
      this.setSpanStages(next.pipeline);
      this.cfg.pipeline = next.pipeline;
    }
    if (this.gate && live.some(isGateKey)) {
      this.gate.update(next.agent);
      this.cfg.agent = { ...next.agent, max_rss_mb: this.cfg.agent.max_rss_mb };
    }
    if (next.log_level !== this.cfg.log_level) {
      setLogLevel(next.log_level);
      this.cfg.log_level = next.log_level;
    }
    return { live, restart };
  }

  /** Everything is loaded and attached: keep only the capabilities run-time work needs (docs/security.md). */
  private dropPrivileges(): void {
    if (process.env.TELEGEN_DROP_CAPABILITIES === '0' || effectiveCapabilities() === 0n) return;
    try {
      const r = dropToRuntimeCapabilities();
      if (r.unchanged.length) alog.warn({ kept: r.kept, threads: r.unchanged }, 'capabilities: some threads kept more than the run-time set');
      else alog.info({ kept: r.kept, threads: r.threads, unreachable: r.unreachable }, 'capabilities dropped to the run-time set');
    } catch (e) {
      alog.warn({ err: (e as Error).message }, 'capabilities: could not drop (running with the start-up set)');
    }
  }

  private describeTarget(): string {
    const t = this.exportCfg.traces;
    return t.mode === 'file' ? `file ${this.cfg.data_dir}/traces.jsonl` : `${t.mode} ${t.endpoint}`;
  }

  private startSocketTracer(open?: StartOptions['openSocketTracer']): void {
    const sc = this.cfg.tracers.socket;
    try {
      // Loaded lazily: replay and doctor must work where the addon was not built.
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      const native = require('./native') as typeof import('./native');
      const t = (open ?? native.openSocketTracer)({
        ringBytes: sc.ring_bytes, captureMax: sc.capture_max, captureTail: sc.capture_tail, connMax: sc.conn_max, selfPid: process.pid, targetPid: sc.target_pid, iovWalk: sc.iov_walk, maxBatch: sc.max_batch,
      }, (ring, index, count) => this.kernel.onBatch(ring, index, count));
      this.socketTracer = t as unknown as NativeTracer;
      const st = this.socketTracer;
      if (st.maps) this.untrackSocketMaps = registerMaps('socket', () => st.maps!());
      const rep = this.socketTracer.report;
      for (const f of rep.failed) alog.warn({ tracer: 'socket', program: f.name, err: f.error }, 'program did not attach; the rest keep running');
      this.tracers.push({ name: 'socket', ok: rep.attached.length > 0, detail: `${rep.attached.length} programs attached${rep.iovMax ? `, ${rep.iovMax} iovecs walked per call` : ''}${rep.failed.length ? `, ${rep.failed.length} failed: ${rep.failed.map((f) => f.name).join(', ')}` : ''}` });
    } catch (e) {
      const msg = (e as Error).message;
      alog.error({ tracer: 'socket', err: msg }, 'socket tracer could not start; run `telegen doctor`');
      this.tracers.push({ name: 'socket', ok: false, detail: msg });
    }
  }

  private async startExtraTracers(onlySocket?: string): Promise<void> {
    let factories: Array<[string, TracerFactory]> = [];
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      factories = (require('./tracers') as { TRACERS: Array<[string, TracerFactory]> }).TRACERS;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw e;
    }
    for (const [name, factory] of factories) {
      if (onlySocket) {
        const enabled = (this.cfg.tracers as Record<string, { enabled?: boolean } | undefined>)[name]?.enabled;
        this.tracers.push({ name, ok: false, detail: enabled === false ? 'disabled in config' : onlySocket });
        continue;
      }
      try {
        relieveHeapBeforeLoad();
        const t = await factory({ cfg: this.cfg, signals: this.signals, metrics: this.metrics, agent: this });
        if (!t) { this.tracers.push({ name, ok: false, detail: 'disabled in config' }); continue; }
        this.extraTracers.push(t);
        this.tracers.push({ name, ok: true, detail: t.detail, ...t.state?.() });
      } catch (e) {
        const msg = (e as Error).message;
        alog.error({ tracer: name, err: msg }, 'tracer could not start; the others keep running (see telegen doctor)');
        this.tracers.push({ name, ok: false, detail: msg });
      }
    }
  }

  /** Brings the entries of tracers switched at run time up to date. */
  private refreshTracers(): void {
    for (const t of this.extraTracers) {
      if (!t.state) continue;
      const i = this.tracers.findIndex((x) => x.name === t.name);
      if (i >= 0) this.tracers[i] = { name: t.name, ...t.state() };
    }
  }

  private collect(m: SelfMetrics): void {
    collectMapFill(m);
    this.refreshTracers();
    for (const t of this.tracers) m.set('telegen_tracer_up', 'Whether a tracer is running (1) or not (0)', t.ok ? 1 : 0, { tracer: t.name });
    if (this.socketTracer) {
      const s = this.socketTracer.stats();
      for (const [k, v] of Object.entries(s)) m.set(`telegen_bpf_${k}_total`.replace(/[^a-zA-Z0-9_]/g, '_'), `Kernel-side socket tracer counter ${k}`, v, { tracer: 'socket' }, 'counter');
      // Privilege separation: the loader holds the maps; the worker walks the connection map it was given.
      if (!this.socketTracer.maps) try {
        const ms = this.socketTracer.mapStats?.();
        if (ms) {
          m.set('telegen_bpf_map_entries', 'Entries in a tracer BPF map', ms.conns, { tracer: 'socket', map: 'tg_conns' });
          m.set('telegen_bpf_map_capacity', 'max_entries of a tracer BPF map', ms.connMax, { tracer: 'socket', map: 'tg_conns' });
        }
      } catch { /* closed */ }
    }
    m.set('telegen_connections_active', 'Connections the router tracks', this.router.activeConnections());
    m.clear('telegen_decoder_state');
    for (const d of this.registry.all()) {
      const l = { decoder: d.name, generation: d.generation };
      for (const [k, v] of Object.entries(d.inst.counters)) m.set(`telegen_decoder_${k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}_total`, `Decoder counter ${k}`, v, l, 'counter');
      m.set('telegen_decoder_memory_bytes', 'Decoder linear memory size', d.inst.memoryBytes(), l);
      m.set('telegen_decoder_streams', 'Streams bound to a decoder version', d.streams, l);
      m.set('telegen_decoder_state', 'Decoder version state (1 for the current state)', 1, { ...l, state: d.state });
    }
    const mu = process.memoryUsage();
    m.set('telegen_process_rss_bytes', 'Agent resident set size', mu.rss);
    // The peak catches what a scrape misses (a collection's copy lasts ~0.1 s): the number to hold
    // against a container memory limit.
    m.set('telegen_process_max_rss_bytes', 'Highest resident set size of the agent since it started (getrusage maxrss)', process.resourceUsage().maxRSS * 1024);
    m.set('telegen_process_heap_used_bytes', 'Agent V8 heap used', mu.heapUsed);
  }

  status(): Record<string, unknown> {
    this.refreshTracers();
    return {
      pid: process.pid,
      uptimeSeconds: (Date.now() - this.started) / 1000,
      tracers: this.tracers,
      exportTarget: this.describeTarget(),
      connections: this.router?.activeConnections() ?? 0,
    };
  }

  /** Stops capture first, lets decoders flush what they hold, then drains every queue. */
  async stop(deadlineMs = this.exportCfg.shutdownTimeoutMs): Promise<void> {
    const t0 = Date.now();
    this.ready = false;
    for (const t of this.timers) clearInterval(t);
    this.watcher?.close();
    this.untrackSocketMaps?.();
    this.stopMemoryTuning?.();
    const detach: Record<string, number> = {};
    let at = Date.now();
    try { this.socketTracer?.close(); } catch (e) { alog.error({ err: (e as Error).message }, 'socket tracer close failed'); }
    if (this.socketTracer) detach.socket = Date.now() - at;
    for (const t of this.extraTracers) {
      at = Date.now();
      try { await t.stop(); } catch (e) { alog.error({ tracer: t.name, err: (e as Error).message }, 'tracer stop failed'); }
      detach[t.name] = Date.now() - at;
    }
    for (const conn of [...this.router.streams.values()]) this.router.close(conn);
    this.correlate?.stop();
    this.analytics?.flush();
    // Detaching uprobes and links costs the kernel an RCU grace period each: seconds with many
    // hooked libraries. Reported apart from the flush, which is what shutdown_timeout_ms bounds.
    const t1 = Date.now();
    // After the spans held in decoders and the correlator came out: the final collection counts them.
    await this.signals.shutdown();
    const reports = await shutdownExportQueues(this.queues, deadlineMs);
    for (const r of reports) if ((r as { dropped?: number }).dropped) alog.warn({ report: r }, 'export items not sent before shutdown');
    const t2 = Date.now();
    await new Promise<void>((resolve) => (this.api ? this.api.close(() => resolve()) : resolve()));
    alog.info({ reports, detach_ms: t1 - t0, detach_ms_by_tracer: detach, flush_ms: t2 - t1, flush_deadline_ms: deadlineMs }, 'telegen stopped');
  }
}
