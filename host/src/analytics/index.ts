// Analytics over correlated spans: RED metrics (OTel semconv histograms, red.ts), the service
// graph (Collector servicegraph-connector metric names) and a bounded store of the latest traces
// for the API and page. Both kinds of metrics are aggregated here and become cumulative points at
// each collection (signals.addProducer): an sdk-metrics `record()` per span and instrument hashed
// its attribute set every time (~8% of the agent's CPU).
//
// Exemplars: @opentelemetry/sdk-metrics 2.7 ships exemplar classes but does not wire them into
// its aggregation or export path, so histogram points carry none. Instead every RED series keeps
// one exemplar per bucket (exemplars.ts); the agent's metric exporter asks for them at each
// collection (`exemplarsFor`, ExemplarSource) and they go out on the exported points, and as trace
// ids per bucket in GET /api/topology → services[].series[].exemplars.
import { Attributes, HrTime, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { hrTime } from '@opentelemetry/core';
import { MetricData } from '@opentelemetry/sdk-metrics';
import { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { ns } from '../correlate/correlator';
import { RedStore, Slot, slotAdd, SLOT_MS, DURATION_BUCKETS_S } from './red';
import { Hist, newHist, bucketOf, histAdd, histPoint } from './histogram';
import { SeriesLimit, OVERFLOW_ATTRIBUTES } from '../metrics/series-limit';
import { cumulativeMetric, InstrumentInfo } from '../metrics/points';
import type { ExemplarSource } from '../export/sdk-adapters';
import type { MetricExemplar } from '../export/metrics-proto';

export { DURATION_BUCKETS_S } from './red';

/** Where analytics hands its metrics at collection time (Signals.addProducer). */
export interface MetricProducers { addProducer(collect: () => MetricData[]): () => void }

export interface AnalyticsConfig {
  /** Distinct attribute sets per service and instrument before points go to the overflow series. */
  cardinalityLimit: number;
  /** RED series per instrument over all services before new ones share the instrument's
   *  overflow series (otel.metric.overflow=true): service names come from processes. */
  instrumentLimit: number;
  /** A RED series without a span for this long is exported once more, then forgotten. */
  seriesIdleMs: number;
  /** Service-graph edges (client → server, each one series per graph instrument) before new
   *  edges share the overflow series: peers without a traced caller are client addresses. */
  edgeLimit: number;
  maxTraces: number;
  /** How long a CLIENT span waits for the SERVER span that a traced peer will link to it. */
  edgeWaitMs: number;
  /** Spans that may become exemplars: those the pipeline will export (sampling), so an exemplar's
   *  trace id can be looked up. Default: all. */
  exemplarFilter?: (s: ReadableSpan) => boolean;
}
const USER_NODES: readonly NodeInfo[] = Object.freeze([Object.freeze({ id: 'user', type: 'user' as const })]);
const NO_NODES: readonly NodeInfo[] = Object.freeze([]);
/** Each edge's latest traces kept for GET /api/traces?edge= however busy the node is. */
const EDGE_PINNED = 10;
/** Trace ids an edge lists (its last); the list grows to twice that and is then cut back in one
 *  splice: a shift() per new trace moved all 100 (~1.7% of the analytics replay's samples). */
const EDGE_TRACES = 100;

export const DEFAULT_ANALYTICS: AnalyticsConfig = { cardinalityLimit: 200, instrumentLimit: 2000, seriesIdleMs: 600_000, edgeLimit: 1000, maxTraces: 500, edgeWaitMs: 2_000 };

export interface SpanView {
  traceId: string; spanId: string; parentSpanId?: string; name: string; kind: 'server' | 'client' | 'internal';
  service: string; pid?: number; startMs: number; durationMs: number; error: boolean; correlation?: string;
  attributes: Record<string, unknown>;
}

interface Edge {
  client: string; server: string; connectionType: string; labels: Attributes; overflow: boolean; total: number; failed: number;
  clientSumS: number; serverSumS: number; serverCount: number; slots: Slot[]; traceIds: string[];
  /** Exported series: created at `start`; client and server durations. */
  start: HrTime; client_s: Hist; server_s: Hist;
}

const GRAPH_TOTAL: InstrumentInfo = { name: 'traces_service_graph_request_total', unit: '', description: 'Requests between two nodes of the service graph', kind: 'counter' };
const GRAPH_FAILED: InstrumentInfo = { name: 'traces_service_graph_request_failed_total', unit: '', description: 'Failed requests between two nodes of the service graph', kind: 'counter' };
const GRAPH_SERVER: InstrumentInfo = { name: 'traces_service_graph_request_server_seconds', unit: 's', description: 'Server-side duration of requests between two nodes', kind: 'histogram', bounds: DURATION_BUCKETS_S };
const GRAPH_CLIENT: InstrumentInfo = { name: 'traces_service_graph_request_client_seconds', unit: 's', description: 'Client-side duration of requests between two nodes', kind: 'histogram', bounds: DURATION_BUCKETS_S };

interface NodeInfo { id: string; type: 'service' | 'user' | 'external' | 'database' | 'broker' | 'dns' }

function serviceOf(s: ReadableSpan): string { return String(s.resource.attributes['service.name'] ?? 'unknown'); }
function seconds(s: ReadableSpan): number { return s.duration[0] + s.duration[1] / 1e9; }
function isError(s: ReadableSpan): boolean { return s.status.code === SpanStatusCode.ERROR; }

/** A peer no traced process answered for: what the service graph calls a virtual node. */
export function virtualPeer(s: ReadableSpan): { node: NodeInfo; connectionType: string } {
  return peerOf(new PendingClient(s, 0));
}

function peerOf(c: PendingClient): { node: NodeInfo; connectionType: string } {
  const hp = `${c.address ?? '?'}:${c.port ?? '?'}`;
  if (c.db) return { node: { id: `${c.db} ${hp}`, type: 'database' }, connectionType: 'database' };
  if (c.messaging) return { node: { id: `${c.messaging} ${hp}`, type: 'broker' }, connectionType: 'messaging_system' };
  if (c.dns) return { node: { id: `dns ${c.address ?? '?'}`, type: 'dns' }, connectionType: 'virtual_node' };
  return { node: { id: hp, type: 'external' }, connectionType: 'virtual_node' };
}

/** A CLIENT span waiting (up to edgeWaitMs) for the SERVER span a traced peer links to it: what
 *  its edge needs, not the span, which was held 2 s for every call to an untraced peer. */
class PendingClient {
  readonly service: string; readonly traceId: string; readonly error: boolean; readonly sec: number;
  readonly address: unknown; readonly port: unknown; readonly db: unknown; readonly messaging: unknown; readonly dns: boolean;
  constructor(s: ReadableSpan, readonly at: number) {
    const a = s.attributes;
    this.service = serviceOf(s); this.traceId = s.spanContext().traceId; this.error = isError(s); this.sec = seconds(s);
    this.address = a['server.address']; this.port = a['server.port']; this.db = a['db.system.name'];
    this.messaging = a['messaging.system']; this.dns = a['dns.question.name'] !== undefined;
  }
}

/**
 * What the latest-traces store keeps of a span: the view's fixed fields, and the span's own
 * attribute object (read when the API asks, as the span's was: later stages see the same object).
 * Not the span: its object, context, parent context and three HrTimes were held for the store's
 * ~0.5 s at 1k req/s, past two young collections, and so copied and promoted.
 */
class StoredSpan {
  constructor(
    readonly traceId: string, readonly spanId: string, readonly parentSpanId: string | undefined, readonly name: string,
    readonly kind: SpanView['kind'], readonly service: string, readonly startMs: number, readonly durationMs: number,
    readonly error: boolean, readonly attributes: Attributes,
  ) {}
}

/** ms with µs resolution, as Number(ns / 1000n) / 1000, without BigInts. */
function startMsOf(t: HrTime): number {
  const us = t[0] * 1e6 + Math.floor(t[1] / 1000);
  return t[1] >= 0 && Number.isSafeInteger(us) ? us / 1000 : Number(ns(t) / 1000n) / 1000;
}

function stored(s: ReadableSpan): StoredSpan {
  const c = s.spanContext();
  return new StoredSpan(c.traceId, c.spanId, s.parentSpanContext?.spanId, s.name,
    s.kind === SpanKind.SERVER ? 'server' : s.kind === SpanKind.CLIENT ? 'client' : 'internal',
    serviceOf(s), startMsOf(s.startTime), seconds(s) * 1000, isError(s), s.attributes);
}

/** A trace's stored spans: its only span as itself (every trace at first, most of them for good),
 *  an array from the second on. A `[]` grown by `push` reserved 17 slots (~150 bytes) per trace,
 *  held the store's ~0.5 s at 1k req/s. */
type StoredTrace = StoredSpan | StoredSpan[];

function withSpan(t: StoredTrace, s: ReadableSpan): StoredTrace {
  if (t instanceof StoredSpan) return [t, stored(s)];
  if (t.length < 200) t.push(stored(s));
  return t;
}

function viewOf(t: StoredSpan): SpanView {
  const a: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(t.attributes)) if (!k.startsWith('http.request.header.') && !k.startsWith('http.response.header.')) a[k] = v;
  return {
    traceId: t.traceId, spanId: t.spanId, parentSpanId: t.parentSpanId, name: t.name, kind: t.kind,
    service: t.service, pid: typeof t.attributes['process.pid'] === 'number' ? t.attributes['process.pid'] as number : undefined,
    startMs: t.startMs, durationMs: t.durationMs, error: t.error,
    correlation: t.attributes['telegen.correlation'] as string | undefined, attributes: a,
  };
}

export function spanView(s: ReadableSpan): SpanView { return viewOf(stored(s)); }

export class Analytics implements ExemplarSource {
  /** RED series per service (bounded per service and per instrument, forgotten when idle or exited). */
  readonly red: RedStore;
  private readonly nodes = new Map<string, NodeInfo>();
  private readonly edges: SeriesLimit<Edge, { client: string; server: string; connectionType: string; nodes: readonly NodeInfo[] }>;
  /** client → server → its edge series (not the overflow one). */
  private readonly edgeOf = new Map<string, Map<string, Edge>>();
  private readonly pendingClients = new Map<string, PendingClient>();
  /** Latest traces' spans; views are built when the API asks, not for every span. */
  private readonly traces = new Map<string, StoredTrace>();
  private oldest?: Iterator<string>;
  /** How many edges hold a trace among their last EDGE_PINNED: those traces outlive the LRU
   *  above, so `?edge=` still answers on a busy node where maxTraces turn over in seconds. */
  private readonly pins = new Map<string, number>();
  /** Pinned traces the LRU let go of; dropped when their last pin goes. Bounded by edges × EDGE_PINNED. */
  private readonly pinnedTraces = new Map<string, StoredTrace>();
  private readonly cfg: AnalyticsConfig;
  get overflowPoints(): number { return this.red.overflowed; }

  /** `producers`: where the RED and service-graph metrics are collected (none: topology only). */
  constructor(producers: MetricProducers | undefined, cfg: Partial<AnalyticsConfig> = {}, private readonly now: () => number = Date.now, startTimeOf?: (pid: number) => string) {
    this.cfg = { ...DEFAULT_ANALYTICS, ...cfg };
    this.red = new RedStore({ perService: this.cfg.cardinalityLimit, perInstrument: this.cfg.instrumentLimit, idleMs: this.cfg.seriesIdleMs }, now, startTimeOf);
    this.edges = new SeriesLimit(this.cfg.edgeLimit, (_k, overflow, a) => {
      // A node is kept with its first edge: a node only an overflowed edge reaches is not.
      if (!overflow) for (const n of a.nodes) this.nodes.set(n.id, n);
      return {
        client: overflow ? '' : a.client, server: overflow ? '' : a.server, connectionType: overflow ? '' : a.connectionType, overflow,
        labels: overflow ? OVERFLOW_ATTRIBUTES : { client: a.client, server: a.server, connection_type: a.connectionType },
        total: 0, failed: 0, clientSumS: 0, serverSumS: 0, serverCount: 0, slots: [], traceIds: [],
        start: hrTime(), client_s: newHist(DURATION_BUCKETS_S), server_s: newHist(DURATION_BUCKETS_S),
      };
    });
    producers?.addProducer(() => this.collect());
  }

  /** Cumulative points: the service graph's, then RED's (the order the instruments had in the SDK). */
  collect(): MetricData[] {
    const end = hrTime();
    const total: object[] = [], failed: object[] = [], server: object[] = [], client: object[] = [];
    for (const e of this.edges.series.values()) {
      total.push({ attributes: e.labels, startTime: e.start, endTime: end, value: e.total });
      if (e.failed) failed.push({ attributes: e.labels, startTime: e.start, endTime: end, value: e.failed });
      if (e.server_s.count) server.push(histPoint(e.server_s, DURATION_BUCKETS_S, e.labels, e.start, end));
      if (e.client_s.count) client.push(histPoint(e.client_s, DURATION_BUCKETS_S, e.labels, e.start, end));
    }
    const out: MetricData[] = [];
    for (const [inst, points] of [[GRAPH_TOTAL, total], [GRAPH_FAILED, failed], [GRAPH_SERVER, server], [GRAPH_CLIENT, client]] as const) {
      if (points.length) out.push(cumulativeMetric(inst, points));
    }
    out.push(...this.red.collect());
    return out;
  }

  /** Tap: observe a final (correlated) span, then pass it on. */
  tap(out: (s: ReadableSpan) => void): (s: ReadableSpan) => void {
    return (s) => { try { this.observe(s); } finally { out(s); } };
  }

  observe(s: ReadableSpan): void {
    this.redObserve(s);
    this.storeTrace(s);
    const service = serviceOf(s);
    if (s.kind === SpanKind.CLIENT) {
      this.serviceNode(service);
      this.pendingClients.set(s.spanContext().spanId, new PendingClient(s, this.now()));
    } else if (s.kind === SpanKind.SERVER) {
      this.serviceNode(service);
      const parentId = s.parentSpanContext?.spanId;
      const c = parentId ? this.pendingClients.get(parentId) : undefined;
      if (c) {
        this.pendingClients.delete(parentId!);
        this.edge(c.service, service, '', s.spanContext().traceId, c, s);
      } else if (!s.parentSpanContext) {
        this.edge('user', service, 'virtual_node', s.spanContext().traceId, undefined, s, USER_NODES);
      } else {
        const peer = String(s.attributes['client.address'] ?? 'unknown');
        this.edge(peer, service, 'virtual_node', s.spanContext().traceId, undefined, s, [{ id: peer, type: 'external' }]);
      }
    }
  }

  /** A node object per span was garbage: kept while the id is already a service node. */
  private serviceNode(service: string): void {
    const n = this.nodes.get(service);
    if (n === undefined || n.type !== 'service') this.nodes.set(service, { id: service, type: 'service' });
  }

  /** Client spans nobody linked to: edges to virtual nodes. Call periodically. */
  tick(): void {
    const t = this.now();
    for (const [id, c] of this.pendingClients) {
      if (t - c.at < this.cfg.edgeWaitMs) continue;
      this.pendingClients.delete(id);
      const v = peerOf(c);
      this.edge(c.service, v.node.id, v.connectionType, c.traceId, c, undefined, [v.node]);
    }
  }

  flush(): void { this.edgeWaitFlush(); }
  private edgeWaitFlush(): void { const w = this.cfg.edgeWaitMs; this.cfg.edgeWaitMs = -1; this.tick(); this.cfg.edgeWaitMs = w; }

  private edge(client: string, server: string, connectionType: string, tid: string, cs: PendingClient | undefined, ss: ReadableSpan | undefined, nodes: readonly NodeInfo[] = NO_NODES): void {
    // Known edges (nearly every span) are found without the key string and the series' arguments
    // (edges are never forgotten; overflowed ones are not kept here, so each still counts).
    let byServer = this.edgeOf.get(client);
    let e = byServer?.get(server);
    if (e === undefined) {
      e = this.edges.get(`${client}->${server}`, { client, server, connectionType, nodes });
      if (!e.overflow) {
        if (!byServer) { byServer = new Map(); this.edgeOf.set(client, byServer); }
        byServer.set(server, e);
      }
    }
    const failed = (cs !== undefined && cs.error) || (ss !== undefined && isError(ss));
    e.total++;
    if (failed) e.failed++;
    const lat = cs ? cs.sec : seconds(ss!);
    if (cs) e.clientSumS += cs.sec;
    if (ss) { e.serverSumS += seconds(ss); e.serverCount++; }
    slotAdd(e.slots, this.now(), failed, lat);
    if (e.traceIds[e.traceIds.length - 1] !== tid) {
      e.traceIds.push(tid);
      this.pin(tid, 1);
      if (e.traceIds.length > EDGE_PINNED) this.pin(e.traceIds[e.traceIds.length - 1 - EDGE_PINNED], -1);
      if (e.traceIds.length >= 2 * EDGE_TRACES) e.traceIds.splice(0, e.traceIds.length - EDGE_TRACES);
    }
    if (ss) { const v = seconds(ss); histAdd(e.server_s, bucketOf(DURATION_BUCKETS_S, v), v); }
    if (cs) { const v = cs.sec; histAdd(e.client_s, bucketOf(DURATION_BUCKETS_S, v), v); }
  }

  private redObserve(s: ReadableSpan): void {
    this.red.observe(s, !this.cfg.exemplarFilter || this.cfg.exemplarFilter(s));
  }

  /** ExemplarSource: a RED histogram point's exemplars, one per bucket (collected: a new epoch). */
  exemplarsFor(metricName: string, attributes: Attributes): MetricExemplar[] | undefined {
    return this.red.exemplarsFor(metricName, attributes);
  }

  private storeTrace(s: ReadableSpan): void {
    const id = s.spanContext().traceId;
    const kept = this.pinnedTraces.get(id);
    if (kept !== undefined) { const t = withSpan(kept, s); if (t !== kept) this.pinnedTraces.set(id, t); return; }
    const prev = this.traces.get(id);
    if (prev !== undefined) this.traces.delete(id); // re-insert: Map order is recency
    this.traces.set(id, prev === undefined ? stored(s) : withSpan(prev, s));
    while (this.traces.size > this.cfg.maxTraces) {
      // One iterator kept across calls instead of one per span: every entry before its position
      // was evicted through it or deleted (re-inserted ones go to the end), so its next key is
      // the oldest.
      let r = (this.oldest ??= this.traces.keys()).next();
      if (r.done) { this.oldest = this.traces.keys(); r = this.oldest.next(); }
      const old = r.value as string;
      if (this.pins.has(old)) this.pinnedTraces.set(old, this.traces.get(old)!);
      this.traces.delete(old);
    }
  }

  private pin(traceId: string, by: 1 | -1): void {
    const n = (this.pins.get(traceId) ?? 0) + by;
    if (n > 0) { this.pins.set(traceId, n); return; }
    this.pins.delete(traceId);
    this.pinnedTraces.delete(traceId);
  }

  private spansOf(traceId: string): StoredSpan[] | undefined {
    const t = this.traces.get(traceId) ?? this.pinnedTraces.get(traceId);
    return t instanceof StoredSpan ? [t] : t;
  }

  /** GET /api/traces: ?limit=N latest, ?edge=client->server the traces that crossed that edge. */
  tracesQuery(q: URLSearchParams): { traces: Array<{ traceId: string; spans: SpanView[] }> } {
    const limit = Math.max(1, Math.min(500, Number(q.get('limit') ?? 20) || 20));
    let ids: string[];
    const edge = q.get('edge');
    if (edge) ids = (this.edges.series.get(edge)?.traceIds.slice(-EDGE_TRACES) ?? []).reverse().filter((t) => this.spansOf(t) !== undefined);
    else ids = [...this.traces.keys()].reverse();
    return { traces: ids.slice(0, limit).map((traceId) => ({ traceId, spans: this.spansOf(traceId)!.map(viewOf).sort((a, b) => a.startMs - b.startMs) })) };
  }

  topology(): Record<string, unknown> {
    const t = this.now();
    const recent = (slots: Slot[]) => {
      const from = t - 60_000;
      let n = 0, err = 0;
      for (const s of slots) if (s.t + SLOT_MS > from) { n += s.n; err += s.err; }
      return { ratePerSec: n / 60, errorsPerSec: err / 60 };
    };
    return {
      nodes: [...this.nodes.values()],
      edges: [...this.edges.series.values()].filter((e) => !e.overflow).map((e) => ({
        id: `${e.client}->${e.server}`, client: e.client, server: e.server, connectionType: e.connectionType,
        total: e.total, failed: e.failed, ...recent(e.slots),
        clientMeanSeconds: e.total - e.serverCount > 0 || e.clientSumS > 0 ? e.clientSumS / Math.max(1, e.total) : undefined,
        serverMeanSeconds: e.serverCount ? e.serverSumS / e.serverCount : undefined,
        lastTraceId: e.traceIds[e.traceIds.length - 1],
      })),
      services: [...this.red.services.values()].map((svc) => ({
        service: svc.name,
        timeline: svc.slots.map((s) => ({ t: s.t, count: s.n, errors: s.err, meanSeconds: s.n ? s.sumS / s.n : 0 })),
        series: [...this.red.seriesOf(svc)].map((s) => ({
          instrument: s.instrument, attributes: s.attributes, count: s.count, errors: s.errors, sumSeconds: s.sumS,
          bucketBounds: DURATION_BUCKETS_S, bucketCounts: s.hist.counts, exemplars: s.exemplars.traceIds(DURATION_BUCKETS_S),
        })),
      })),
      overflowPoints: this.overflowPoints,
      forgottenSeries: this.red.forgotten,
      edgeOverflowPoints: this.edges.overflowed,
    };
  }
}
