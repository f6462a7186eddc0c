// Collector mode: polls remote targets (no eBPF) and exports what they report as OTLP metrics
// through the same byte-bounded export queues as the agent. Each replica polls only the targets
// it owns by rendezvous hashing (shard.ts), so N replicas split the work without talking.
import * as fs from 'fs';
import * as http from 'http';
import { HrTime } from '@opentelemetry/api';
import { hrTime } from '@opentelemetry/core';
import { MeterProvider, PeriodicExportingMetricReader, AggregationTemporality, MetricData, MetricProducer } from '@opentelemetry/sdk-metrics';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ResolvedExportConfig, createExportQueues, shutdownExportQueues, renderExportMetrics, ExportQueues, QueueMetricExporter } from '../export';
import { agentResource } from '../signals';
import { agentVersion } from '../paths';
import { SelfMetrics } from '../metrics/self';
import { cumulativeMetric } from '../metrics/points';
import { log } from '../log';
import { CollectConfig, Target } from './config';
import { ReplicaIdentity, ownedBy } from './shard';
import { Point, PollContext } from './types';
import { pollPrometheus } from './prometheus';
import { pollPostgres } from './postgres';
import { pollKafka } from './kafka';
import { startCollectApi } from './api';
import { loadApiToken } from '../api/server';

const clog = log.child({ component: 'collect' });

export const TARGET_ID = 'telegen.target.id';
export const TARGET_TYPE = 'telegen.target.type';

interface Instrument { kind: Point['kind']; description?: string; unit?: string; byTarget: Map<string, Point[]> }

export interface TargetState { id: string; type: string; up: boolean; lastPoll?: string; lastError?: string; points: number; polls: number }

export function pollTarget(t: Target, ctx: PollContext): Promise<Point[]> {
  switch (t.type) {
    case 'prometheus': return pollPrometheus(t, ctx);
    case 'postgresql': return pollPostgres(t, ctx);
    case 'kafka': return pollKafka(t, ctx);
  }
}

export class Collector {
  readonly metrics = new SelfMetrics();
  readonly owned: Target[];
  readonly state = new Map<string, TargetState>();
  private provider!: MeterProvider;
  private queues!: ExportQueues;
  private instruments = new Map<string, Instrument>();
  /** Sum series (name, attributes) → the start of its cumulative points, for series in the last poll. */
  private starts = new Map<string, HrTime>();
  private running = new Set<string>();
  private timer?: NodeJS.Timeout;
  private api?: http.Server;
  private firstRoundDone = false;
  private stopping = false;
  token = '';

  constructor(readonly cfg: CollectConfig, readonly exportCfg: ResolvedExportConfig, readonly id: ReplicaIdentity) {
    this.owned = ownedBy(cfg.collect.targets, id.index, id.replicas);
    for (const t of this.owned) this.state.set(t.id, { id: t.id, type: t.type, up: false, points: 0, polls: 0 });
  }

  async start(): Promise<void> {
    fs.mkdirSync(this.cfg.data_dir, { recursive: true });
    this.queues = createExportQueues(this.exportCfg, this.cfg.data_dir, { onEvent: (e) => clog.warn({ event: e }, 'export queue event') });
    // The replica is the OTLP resource's service.instance.id: a target's series come from one
    // instance at a time, which is what makes a re-shard visible downstream.
    const resource = agentResource(this.cfg.service_name ?? 'telegen-collector').merge(resourceFromAttributes({
      'service.instance.id': `${process.env.TELEGEN_POD_NAME || 'collector'}-${this.id.index}`,
      'telegen.collector.replica.index': this.id.index,
      'telegen.collector.replicas': this.id.replicas,
    }));
    const iv = this.cfg.collect.interval_ms;
    const scope = { name: 'telegen.collect', version: agentVersion() };
    const producer: MetricProducer = { collect: async () => ({ resourceMetrics: { resource, scopeMetrics: [{ scope, metrics: this.points() }] }, errors: [] }) };
    const readers = this.queues.metrics ? [new PeriodicExportingMetricReader({
      exporter: Object.assign(new QueueMetricExporter(this.queues.metrics, this.exportCfg.metrics.batchSize), { selectAggregationTemporality: () => AggregationTemporality.CUMULATIVE }),
      metricProducers: [producer],
      exportIntervalMillis: iv,
      exportTimeoutMillis: Math.max(1000, Math.min(iv, 30_000)),
    })] : [];
    this.provider = new MeterProvider({ resource, readers });
    const meter = this.provider.getMeter('telegen.collect', agentVersion());
    meter.createObservableGauge('telegen.collect.target.up', { description: 'Whether the last poll of a target succeeded (1) or not (0)', unit: '1' })
      .addCallback((r) => { for (const s of this.state.values()) r.observe(s.up ? 1 : 0, { [TARGET_ID]: s.id, [TARGET_TYPE]: s.type }); });

    this.metrics.addCollector((m) => {
      m.set('telegen_collect_targets', 'Targets this replica owns', this.owned.length);
      m.set('telegen_collect_targets_configured', 'Targets in the config (all replicas)', this.cfg.collect.targets.length);
      m.set('telegen_collect_replica_index', 'This replica\'s ordinal', this.id.index);
      m.set('telegen_collect_replicas', 'Replica count used for sharding', this.id.replicas);
      for (const s of this.state.values()) m.set('telegen_collect_target_up', 'Last poll succeeded', s.up ? 1 : 0, { target: s.id });
    });

    if (this.cfg.api.enabled) {
      this.token = loadApiToken(this.cfg.api.token_file, this.cfg.data_dir);
      this.api = await startCollectApi(this.cfg.api, {
        token: this.token,
        ready: () => this.firstRoundDone,
        metrics: () => this.metrics.render() + renderExportMetrics(this.queues),
        targets: () => ({ replica: this.id, targets: [...this.state.values()] }),
      });
    }
    clog.info({ replica: this.id.index, replicas: this.id.replicas, identity: this.id.source, owned: this.owned.length, configured: this.cfg.collect.targets.length }, 'collector running');
    const round = () => { void this.round(); };
    round();
    this.timer = setInterval(round, iv);
  }

  /** Polls every owned target not still busy from the last round, `concurrency` at a time. */
  private async round(): Promise<void> {
    const queue = this.owned.filter((t) => !this.running.has(t.id));
    const ctx: PollContext = { timeoutMs: this.cfg.collect.timeout_ms, userAgent: `telegen-collector/${agentVersion()} (replica ${this.id.index}/${this.id.replicas})` };
    const worker = async () => {
      for (let t = queue.shift(); t && !this.stopping; t = queue.shift()) {
        this.running.add(t.id);
        try { this.accept(t, await pollTarget(t, ctx), undefined); } catch (e) { this.accept(t, [], e as Error); } finally { this.running.delete(t.id); }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.cfg.collect.concurrency, queue.length) }, worker));
    this.firstRoundDone = true;
  }

  /** Replaces a target's series wholesale: series it stopped reporting disappear with it. */
  private accept(t: Target, points: Point[], err: Error | undefined): void {
    const s = this.state.get(t.id)!;
    const wasUp = s.up;
    s.polls++;
    s.up = !err;
    s.lastPoll = new Date().toISOString();
    s.lastError = err?.message;
    s.points = points.length;
    this.metrics.inc('telegen_collect_polls_total', 'Target polls by type and result', { type: t.type, result: err ? 'error' : 'ok' });
    if (err && (wasUp || s.polls === 1)) clog.warn({ target: t.id, err: err.message }, 'target poll failed');
    const grouped = new Map<string, Point[]>();
    for (const p of points) {
      let inst = this.instruments.get(p.name);
      if (!inst) { inst = { kind: p.kind, description: p.description, unit: p.unit, byTarget: new Map() }; this.instruments.set(p.name, inst); }
      if (inst.kind !== p.kind) continue; // first kind seen for a name wins; OTLP needs one type per name
      let g = grouped.get(p.name);
      if (!g) grouped.set(p.name, (g = []));
      g.push(p);
    }
    for (const [name, inst] of this.instruments) {
      const g = grouped.get(name);
      if (g) inst.byTarget.set(t.id, g); else inst.byTarget.delete(t.id);
    }
  }

  /** The last poll's points of every target. Built here, not by observable instruments:
   *  sdk-metrics 2.7 keeps every attribute set an observable ever reported in its cumulative
   *  history, so series a target stopped reporting (a pod gone, a consumer group deleted) were
   *  exported forever with their last value. */
  private points(): MetricData[] {
    const now = hrTime();
    const starts = new Map<string, HrTime>();
    const out: MetricData[] = [];
    for (const [name, inst] of this.instruments) {
      const dataPoints = [];
      for (const [id, pts] of inst.byTarget) {
        const type = this.state.get(id)?.type ?? '';
        for (const x of pts) {
          if (Number.isNaN(x.value) && inst.kind === 'sum') continue;
          const attributes = { ...x.attributes, [TARGET_ID]: id, [TARGET_TYPE]: type };
          let startTime = now;
          if (inst.kind === 'sum') {
            const key = `${name}\u0000${JSON.stringify(attributes)}`;
            startTime = this.starts.get(key) ?? now;
            starts.set(key, startTime);
          }
          dataPoints.push({ attributes, startTime, endTime: now, value: x.value });
        }
      }
      if (dataPoints.length) out.push(cumulativeMetric({ name, description: inst.description ?? '', unit: inst.unit ?? '', kind: inst.kind === 'sum' ? 'observable-counter' : 'observable-gauge' }, dataPoints));
    }
    this.starts = starts;
    return out;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    await this.provider?.forceFlush().catch(() => undefined);
    await this.provider?.shutdown().catch(() => undefined);
    await shutdownExportQueues(this.queues, this.exportCfg.shutdownTimeoutMs);
    await new Promise<void>((resolve) => (this.api ? this.api.close(() => resolve()) : resolve()));
    clog.info('collector stopped');
  }
}
