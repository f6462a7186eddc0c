// Analytics over correlated spans: RED metrics (OTel semconv histograms through agent.signals.meter),
// the service graph (Collector servicegraph-connector metric names) and a bounded store of the
// latest traces for the API and page.
//
// Exemplars: @opentelemetry/sdk-metrics 2.7 ships exemplar classes but does not wire them into
// its aggregation or export path, so histogram points carry none. Instead every RED series keeps
// one exemplar per bucket (exemplars.ts); the agent's metric exporter asks for them at each
// collection (`exemplarsFor`, ExemplarSource) and they go out on the exported points, and as trace
// ids per bucket in GET /api/topology → services[].series[].exemplars.
import { Attributes, Counter, Histogram, Meter, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { ns } from '../correlate/correlator';
import { recordReturnedRows, statementAttributes } from './db-statements';
import { BucketExemplars } from './exemplars';
import { SeriesLimit, OVERFLOW_ATTRIBUTES } from '../metrics/series-limit';
import type { ExemplarSource } from '../export/sdk-adapters';
import type { MetricExemplar } from '../export/metrics-proto';

export const DURATION_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];
const SLOT_MS = 5_000;
const SLOTS = 36;

export interface AnalyticsConfig {
  /** Distinct attribute sets per service and instrument before points go to the overflow series. */
  cardinalityLimit: number;
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
/** Each edge's latest traces kept for GET /api/traces?edge= however busy the node is. */
const EDGE_PINNED = 10;

export const DEFAULT_ANALYTICS: AnalyticsConfig = { cardinalityLimit: 200, edgeLimit: 1000, maxTraces: 500, edgeWaitMs: 2_000 };

export interface SpanView {
  traceId: string; spanId: string; parentSpanId?: string; name: string; kind: 'server' | 'client' | 'internal';
  service: string; pid?: number; startMs: number; durationMs: number; error: boolean; correlation?: string;
  attributes: Record<string, unknown>;
}

interface Slot { t: number; n: number; err: number; sumS: number }
function slotAdd(ring: Slot[], tMs: number, err: boolean, s: number): void {
  const t = Math.floor(tMs / SLOT_MS) * SLOT_MS;
  let last = ring[ring.length - 1];
  if (!last || last.t !== t) {
    if (last && t < last.t) { last = ring.find((x) => x.t === t) ?? last; } else { last = { t, n: 0, err: 0, sumS: 0 }; ring.push(last); if (ring.length > SLOTS) ring.shift(); }
  }
  last.n++; if (err) last.err++; last.sumS += s;
}

interface Series { instrument: string; attributes: Attributes; count: number; errors: number; sumS: number; buckets: number[]; exemplars: BucketExemplars }

interface Edge {
  client: string; server: string; connectionType: string; labels: Attributes; overflow: boolean; total: number; failed: number;
  clientSumS: number; serverSumS: number; serverCount: number; slots: Slot[]; traceIds: string[];
}

interface NodeInfo { id: string; type: 'service' | 'user' | 'external' | 'database' | 'broker' | 'dns' }

function serviceOf(s: ReadableSpan): string { return String(s.resource.attributes['service.name'] ?? 'unknown'); }
function seconds(s: ReadableSpan): number { return s.duration[0] + s.duration[1] / 1e9; }
function isError(s: ReadableSpan): boolean { return s.status.code === SpanStatusCode.ERROR; }

function pick(a: Attributes, keys: string[]): Attributes {
  const o: Attributes = {};
  for (const k of keys) if (a[k] !== undefined) o[k] = a[k];
  return o;
}

/** Which semconv instrument a span feeds and with which attributes. */
export function redFor(s: ReadableSpan): { instrument: string; attrs: Attributes } | undefined {
  const a = s.attributes;
  const server = s.kind === SpanKind.SERVER;
  const err = isError(s) ? { 'error.type': String(a['error.type'] ?? a['rpc.grpc.status_code'] ?? a['db.response.status_code'] ?? a['dns.response_code'] ?? '_OTHER') } : {};
  if (a['rpc.system']) {
    return { instrument: server ? 'rpc.server.duration' : 'rpc.client.duration', attrs: { ...pick(a, ['rpc.system', 'rpc.service', 'rpc.method', 'rpc.grpc.status_code', 'server.address', 'server.port']), ...err } };
  }
  if (a['http.request.method']) {
    return server
      ? { instrument: 'http.server.request.duration', attrs: { ...pick(a, ['http.request.method', 'http.response.status_code', 'http.route', 'network.protocol.version', 'url.scheme']), ...err } }
      : { instrument: 'http.client.request.duration', attrs: { ...pick(a, ['http.request.method', 'http.response.status_code', 'server.address', 'server.port', 'network.protocol.version']), ...err } };
  }
  if (a['db.system.name']) return { instrument: 'db.client.operation.duration', attrs: { ...pick(a, ['db.system.name', 'db.operation.name', 'db.collection.name', 'db.namespace', 'server.address', 'server.port']), ...statementAttributes(a), ...err } };
  if (a['messaging.system']) return { instrument: 'messaging.client.operation.duration', attrs: { ...pick(a, ['messaging.system', 'messaging.operation.name', 'messaging.destination.name', 'server.address', 'server.port']), ...err } };
  if (a['dns.question.name'] !== undefined) return { instrument: 'dns.lookup.duration', attrs: { ...pick(a, ['dns.question.name', 'server.address']), ...err } };
  return undefined;
}

const INSTRUMENTS: Record<string, string> = {
  'http.server.request.duration': 'Duration of HTTP server requests.',
  'http.client.request.duration': 'Duration of HTTP client requests.',
  'rpc.server.duration': 'Duration of inbound RPCs.',
  'rpc.client.duration': 'Duration of outbound RPCs.',
  'db.client.operation.duration': 'Duration of database client operations.',
  'messaging.client.operation.duration': 'Duration of messaging operations initiated by a producer or consumer client.',
  'dns.lookup.duration': 'Measures the time taken to perform a DNS lookup.',
};
// Semconv: rpc.*.duration are in milliseconds, the rest in seconds.
const UNIT_MS = new Set(['rpc.server.duration', 'rpc.client.duration']);

/** A peer no traced process answered for: what the service graph calls a virtual node. */
export function virtualPeer(s: ReadableSpan): { node: NodeInfo; connectionType: string } {
  const a = s.attributes;
  const hp = `${a['server.address'] ?? '?'}:${a['server.port'] ?? '?'}`;
  if (a['db.system.name']) return { node: { id: `${a['db.system.name']} ${hp}`, type: 'database' }, connectionType: 'database' };
  if (a['messaging.system']) return { node: { id: `${a['messaging.system']} ${hp}`, type: 'broker' }, connectionType: 'messaging_system' };
  if (a['dns.question.name'] !== undefined) return { node: { id: `dns ${a['server.address'] ?? '?'}`, type: 'dns' }, connectionType: 'virtual_node' };
  return { node: { id: hp, type: 'external' }, connectionType: 'virtual_node' };
}

export function spanView(s: ReadableSpan): SpanView {
  const c = s.spanContext();
  const a: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s.attributes)) if (!k.startsWith('http.request.header.') && !k.startsWith('http.response.header.')) a[k] = v;
  return {
    traceId: c.traceId, spanId: c.spanId, parentSpanId: s.parentSpanContext?.spanId, name: s.name,
    kind: s.kind === SpanKind.SERVER ? 'server' : s.kind === SpanKind.CLIENT ? 'client' : 'internal',
    service: serviceOf(s), pid: typeof s.attributes['process.pid'] === 'number' ? s.attributes['process.pid'] as number : undefined,
    startMs: Number(ns(s.startTime) / 1000n) / 1000, durationMs: seconds(s) * 1000, error: isError(s),
    correlation: s.attributes['telegen.correlation'] as string | undefined, attributes: a,
  };
}

/** The SDK hands the series' own attribute object back on its points, so the key order matches. */
const pointKey = (instrument: string, attributes: Attributes): string => `${instrument}\u0000${JSON.stringify(attributes)}`;

export class Analytics implements ExemplarSource {
  private readonly hist = new Map<string, Histogram>();
  private readonly graphTotal?: Counter;
  private readonly graphFailed?: Counter;
  private readonly graphServer?: Histogram;
  private readonly graphClient?: Histogram;
  /** service → instrument → series key → series (bounded: cfg.cardinalityLimit, then overflow) */
  private readonly series = new Map<string, Map<string, SeriesLimit<Series, { service: string; instrument: string; attrs: Attributes }>>>();
  /** instrument NUL JSON(point attributes) → series: how an exported point finds its exemplars. */
  private readonly byPoint = new Map<string, Series>();
  private readonly serviceSlots = new Map<string, Slot[]>();
  private readonly nodes = new Map<string, NodeInfo>();
  private readonly edges: SeriesLimit<Edge, { client: string; server: string; connectionType: string; nodes: NodeInfo[] }>;
  private readonly pendingClients = new Map<string, { span: ReadableSpan; at: number }>();
  /** Latest traces' spans; views are built when the API asks, not for every span. */
  private readonly traces = new Map<string, ReadableSpan[]>();
  /** How many edges hold a trace among their last EDGE_PINNED: those traces outlive the LRU
   *  above, so `?edge=` still answers on a busy node where maxTraces turn over in seconds. */
  private readonly pins = new Map<string, number>();
  /** Pinned traces the LRU let go of; dropped when their last pin goes. Bounded by edges × EDGE_PINNED. */
  private readonly pinnedTraces = new Map<string, ReadableSpan[]>();
  private readonly cfg: AnalyticsConfig;
  get overflowPoints(): number {
    let n = 0;
    for (const byInst of this.series.values()) for (const lim of byInst.values()) n += lim.overflowed;
    return n;
  }

  constructor(private readonly meter: Meter | undefined, cfg: Partial<AnalyticsConfig> = {}, private readonly now: () => number = Date.now) {
    this.cfg = { ...DEFAULT_ANALYTICS, ...cfg };
    this.edges = new SeriesLimit(this.cfg.edgeLimit, (_k, overflow, a) => {
      // A node is kept with its first edge: a node only an overflowed edge reaches is not.
      if (!overflow) for (const n of a.nodes) this.nodes.set(n.id, n);
      return {
        client: overflow ? '' : a.client, server: overflow ? '' : a.server, connectionType: overflow ? '' : a.connectionType, overflow,
        labels: overflow ? OVERFLOW_ATTRIBUTES : { client: a.client, server: a.server, connection_type: a.connectionType },
        total: 0, failed: 0, clientSumS: 0, serverSumS: 0, serverCount: 0, slots: [], traceIds: [],
      };
    });
    if (meter) {
      this.graphTotal = meter.createCounter('traces_service_graph_request_total', { description: 'Requests between two nodes of the service graph' });
      this.graphFailed = meter.createCounter('traces_service_graph_request_failed_total', { description: 'Failed requests between two nodes of the service graph' });
      this.graphServer = meter.createHistogram('traces_service_graph_request_server_seconds', { unit: 's', description: 'Server-side duration of requests between two nodes', advice: { explicitBucketBoundaries: DURATION_BUCKETS_S } });
      this.graphClient = meter.createHistogram('traces_service_graph_request_client_seconds', { unit: 's', description: 'Client-side duration of requests between two nodes', advice: { explicitBucketBoundaries: DURATION_BUCKETS_S } });
    }
  }

  /** Tap: observe a final (correlated) span, then pass it on. */
  tap(out: (s: ReadableSpan) => void): (s: ReadableSpan) => void {
    return (s) => { try { this.observe(s); } finally { out(s); } };
  }

  observe(s: ReadableSpan): void {
    this.red(s);
    this.storeTrace(s);
    const service = serviceOf(s);
    if (s.kind === SpanKind.CLIENT) {
      this.nodes.set(service, { id: service, type: 'service' });
      this.pendingClients.set(s.spanContext().spanId, { span: s, at: this.now() });
    } else if (s.kind === SpanKind.SERVER) {
      this.nodes.set(service, { id: service, type: 'service' });
      const parentId = s.parentSpanContext?.spanId;
      const c = parentId ? this.pendingClients.get(parentId) : undefined;
      if (c) {
        this.pendingClients.delete(parentId!);
        this.edge(serviceOf(c.span), service, '', s, c.span, s);
      } else if (!s.parentSpanContext) {
        this.edge('user', service, 'virtual_node', s, undefined, s, [{ id: 'user', type: 'user' }]);
      } else {
        const peer = String(s.attributes['client.address'] ?? 'unknown');
        this.edge(peer, service, 'virtual_node', s, undefined, s, [{ id: peer, type: 'external' }]);
      }
    }
  }

  /** Client spans nobody linked to: edges to virtual nodes. Call periodically. */
  tick(): void {
    const t = this.now();
    for (const [id, c] of this.pendingClients) {
      if (t - c.at < this.cfg.edgeWaitMs) continue;
      this.pendingClients.delete(id);
      const v = virtualPeer(c.span);
      this.edge(serviceOf(c.span), v.node.id, v.connectionType, c.span, c.span, undefined, [v.node]);
    }
  }

  flush(): void { this.edgeWaitFlush(); }
  private edgeWaitFlush(): void { const w = this.cfg.edgeWaitMs; this.cfg.edgeWaitMs = -1; this.tick(); this.cfg.edgeWaitMs = w; }

  private edge(client: string, server: string, connectionType: string, any: ReadableSpan, cs: ReadableSpan | undefined, ss: ReadableSpan | undefined, nodes: NodeInfo[] = []): void {
    const e = this.edges.get(`${client}->${server}`, { client, server, connectionType, nodes });
    const failed = (cs !== undefined && isError(cs)) || (ss !== undefined && isError(ss));
    e.total++;
    if (failed) e.failed++;
    const lat = cs ? seconds(cs) : seconds(ss!);
    if (cs) e.clientSumS += seconds(cs);
    if (ss) { e.serverSumS += seconds(ss); e.serverCount++; }
    slotAdd(e.slots, this.now(), failed, lat);
    const tid = any.spanContext().traceId;
    if (e.traceIds[e.traceIds.length - 1] !== tid) {
      e.traceIds.push(tid);
      this.pin(tid, 1);
      if (e.traceIds.length > EDGE_PINNED) this.pin(e.traceIds[e.traceIds.length - 1 - EDGE_PINNED], -1);
      if (e.traceIds.length > 100) e.traceIds.shift();
    }
    const labels = e.labels;
    this.graphTotal?.add(1, labels);
    if (failed) this.graphFailed?.add(1, labels);
    if (ss) this.graphServer?.record(seconds(ss), labels);
    if (cs) this.graphClient?.record(seconds(cs), labels);
  }

  private red(s: ReadableSpan): void {
    const r = redFor(s);
    if (!r) return;
    const service = serviceOf(s);
    let byInst = this.series.get(service);
    if (!byInst) { byInst = new Map(); this.series.set(service, byInst); }
    let bySeries = byInst.get(r.instrument);
    if (!bySeries) { bySeries = new SeriesLimit(this.cfg.cardinalityLimit, (_k, overflow, a) => this.newSeries(overflow, a)); byInst.set(r.instrument, bySeries); }
    // Past the limit every new combination shares one series, so a bad route never explodes storage.
    const ser = bySeries.get(JSON.stringify(r.attrs), { service, instrument: r.instrument, attrs: r.attrs });
    const sec = seconds(s);
    const err = isError(s);
    ser.count++; if (err) ser.errors++; ser.sumS += sec;
    let b = DURATION_BUCKETS_S.findIndex((x) => sec <= x);
    if (b < 0) b = DURATION_BUCKETS_S.length;
    ser.buckets[b]++;
    const ms = UNIT_MS.has(r.instrument);
    if (!this.cfg.exemplarFilter || this.cfg.exemplarFilter(s)) ser.exemplars.offer(b, s, ms ? sec * 1000 : sec, err);
    if (s.kind === SpanKind.SERVER) {
      let ring = this.serviceSlots.get(service);
      if (!ring) { ring = []; this.serviceSlots.set(service, ring); }
      slotAdd(ring, this.now(), err, sec);
    }
    if (this.meter) {
      let h = this.hist.get(r.instrument);
      if (!h) {
        h = this.meter.createHistogram(r.instrument, { unit: ms ? 'ms' : 's', description: INSTRUMENTS[r.instrument], advice: { explicitBucketBoundaries: ms ? DURATION_BUCKETS_S.map((x) => x * 1000) : DURATION_BUCKETS_S } });
        this.hist.set(r.instrument, h);
      }
      h.record(ms ? sec * 1000 : sec, ser.attributes);
      if (r.instrument === 'db.client.operation.duration') recordReturnedRows(this.meter, s, ser.attributes);
    }
  }

  private newSeries(overflow: boolean, a: { service: string; instrument: string; attrs: Attributes }): Series {
    // The series keeps its attribute object: the SDK is handed the same one for every point.
    const attributes: Attributes = { 'service.name': a.service, ...(overflow ? OVERFLOW_ATTRIBUTES : a.attrs) };
    const ser: Series = { instrument: a.instrument, attributes, count: 0, errors: 0, sumS: 0, buckets: new Array(DURATION_BUCKETS_S.length + 1).fill(0), exemplars: new BucketExemplars(DURATION_BUCKETS_S.length + 1) };
    this.byPoint.set(pointKey(a.instrument, attributes), ser);
    return ser;
  }

  /** ExemplarSource: a RED histogram point's exemplars, one per bucket (collected: a new epoch). */
  exemplarsFor(metricName: string, attributes: Attributes): MetricExemplar[] | undefined {
    return this.byPoint.get(pointKey(metricName, attributes))?.exemplars.collect(attributes);
  }

  private storeTrace(s: ReadableSpan): void {
    const id = s.spanContext().traceId;
    const kept = this.pinnedTraces.get(id);
    if (kept) { if (kept.length < 200) kept.push(s); return; }
    let list = this.traces.get(id);
    if (list) this.traces.delete(id); // re-insert: Map order is recency
    else list = [];
    if (list.length < 200) list.push(s);
    this.traces.set(id, list);
    while (this.traces.size > this.cfg.maxTraces) {
      const old = this.traces.keys().next().value as string;
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

  private spansOf(traceId: string): ReadableSpan[] | undefined { return this.traces.get(traceId) ?? this.pinnedTraces.get(traceId); }

  /** GET /api/traces: ?limit=N latest, ?edge=client->server the traces that crossed that edge. */
  tracesQuery(q: URLSearchParams): { traces: Array<{ traceId: string; spans: SpanView[] }> } {
    const limit = Math.max(1, Math.min(500, Number(q.get('limit') ?? 20) || 20));
    let ids: string[];
    const edge = q.get('edge');
    if (edge) ids = [...(this.edges.series.get(edge)?.traceIds ?? [])].reverse().filter((t) => this.spansOf(t) !== undefined);
    else ids = [...this.traces.keys()].reverse();
    return { traces: ids.slice(0, limit).map((traceId) => ({ traceId, spans: this.spansOf(traceId)!.map(spanView).sort((a, b) => a.startMs - b.startMs) })) };
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
      services: [...this.series.entries()].map(([service, byInst]) => ({
        service,
        timeline: (this.serviceSlots.get(service) ?? []).map((s) => ({ t: s.t, count: s.n, errors: s.err, meanSeconds: s.n ? s.sumS / s.n : 0 })),
        series: [...byInst.values()].flatMap((m) => [...m.series.values()].map((s) => ({
          instrument: s.instrument, attributes: s.attributes, count: s.count, errors: s.errors, sumSeconds: s.sumS,
          bucketBounds: DURATION_BUCKETS_S, bucketCounts: s.buckets, exemplars: s.exemplars.traceIds(DURATION_BUCKETS_S),
        }))),
      })),
      overflowPoints: this.overflowPoints,
      edgeOverflowPoints: this.edges.overflowed,
    };
  }
}
