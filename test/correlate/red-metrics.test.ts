// RED and service-graph metrics are aggregated by analytics and handed to the reader at
// collection time. What a reader collects must be what sdk-metrics instruments give for the same
// measurements (names, units, descriptions, attributes, bucket boundaries and counts, sum, min,
// max, cumulative temporality). RED series are bounded per instrument over all services and
// forgotten once idle or once every process of their service exited.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Attributes, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationTemporality, MeterProvider, MetricData, MetricReader } from '@opentelemetry/sdk-metrics';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { Analytics, DURATION_BUCKETS_S } from '../../host/src/analytics';
import { ROWS_BUCKETS } from '../../host/src/analytics/db-statements';
import { TestProducers } from '../helpers/metric-producers';

class PullReader extends MetricReader {
  protected async onForceFlush(): Promise<void> { /* pull only */ }
  protected async onShutdown(): Promise<void> { /* pull only */ }
}

function reader(producers?: TestProducers): PullReader {
  return new PullReader({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE, ...(producers ? { metricProducers: [producers] } : {}) });
}

let seq = 0;
function span(kind: SpanKind, ms: number, attributes: Attributes, o: { service?: string; error?: boolean; parent?: string; id?: string } = {}): ReadableSpan {
  const id = ++seq;
  const traceId = id.toString(16).padStart(32, '0');
  const durNs = Math.round(ms * 1e6);
  return {
    name: 'x', kind,
    spanContext: () => ({ traceId, spanId: o.id ?? id.toString(16).padStart(16, '0'), traceFlags: 1 }),
    parentSpanContext: o.parent ? { traceId, spanId: o.parent, traceFlags: 1 } : undefined,
    startTime: [1_700_000_000 + id, 0], endTime: [1_700_000_000 + id + Math.floor(durNs / 1e9), durNs % 1e9], duration: [Math.floor(durNs / 1e9), durNs % 1e9],
    status: o.error ? { code: SpanStatusCode.ERROR } : { code: SpanStatusCode.UNSET },
    attributes, links: [], events: [], ended: true, resource: resourceFromAttributes({ 'service.name': o.service ?? 'shop' }),
    instrumentationScope: { name: 't' }, droppedAttributesCount: 0, droppedEventsCount: 0, droppedLinksCount: 0,
  } as unknown as ReadableSpan;
}

/** A point as comparable data: attributes, and the value (a number or the histogram). */
function points(metrics: MetricData[], name: string): Array<{ attributes: Attributes; value: unknown }> {
  const m = metrics.filter((x) => x.descriptor.name === name);
  assert.ok(m.length <= 1, `${name} once`);
  return (m[0]?.dataPoints ?? []).map((p) => ({ attributes: { ...p.attributes }, value: p.value }))
    .sort((a, b) => JSON.stringify(a.attributes).localeCompare(JSON.stringify(b.attributes)));
}

async function collect(r: PullReader): Promise<MetricData[]> {
  return (await r.collect()).resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
}

test('RED and service-graph points equal what sdk-metrics instruments give for the same measurements', async () => {
  const producers = new TestProducers();
  const ours = reader(producers);
  new MeterProvider({ readers: [ours] });
  const an = new Analytics(producers, { edgeWaitMs: 0 });
  // The oracle: sdk-metrics instruments, recorded with the attributes semconv gives each span.
  const sdk = reader();
  const meter = new MeterProvider({ readers: [sdk] }).getMeter('telegen');
  const hist = (name: string, unit: string, description: string, bounds = unit === 'ms' ? DURATION_BUCKETS_S.map((x) => x * 1000) : DURATION_BUCKETS_S) => meter.createHistogram(name, { unit, description, advice: { explicitBucketBoundaries: bounds } });
  const httpServer = hist('http.server.request.duration', 's', 'Duration of HTTP server requests.');
  const httpClient = hist('http.client.request.duration', 's', 'Duration of HTTP client requests.');
  const rpcServer = hist('rpc.server.duration', 'ms', 'Duration of inbound RPCs.');
  const db = hist('db.client.operation.duration', 's', 'Duration of database client operations.');
  const rows = hist('db.client.response.returned_rows', '{row}', 'Actual number of records returned by the database operation.', ROWS_BUCKETS);
  const msg = hist('messaging.client.operation.duration', 's', 'Duration of messaging operations initiated by a producer or consumer client.');
  const dns = hist('dns.lookup.duration', 's', 'Measures the time taken to perform a DNS lookup.');
  const gTotal = meter.createCounter('traces_service_graph_request_total', { description: 'Requests between two nodes of the service graph' });
  const gFailed = meter.createCounter('traces_service_graph_request_failed_total', { description: 'Failed requests between two nodes of the service graph' });
  const gServer = hist('traces_service_graph_request_server_seconds', 's', 'Server-side duration of requests between two nodes');
  const gClient = hist('traces_service_graph_request_client_seconds', 's', 'Client-side duration of requests between two nodes');

  const route = { 'http.request.method': 'GET', 'http.route': '/users/{id}', 'network.protocol.version': '1.1', 'url.scheme': 'http' };
  // Durations on and around bucket bounds, in both units.
  for (const ms of [0.4, 5, 5.0001, 10, 99, 250, 12_000]) {
    an.observe(span(SpanKind.SERVER, ms, { ...route, 'http.response.status_code': 200, 'url.path': '/users/1', 'client.address': '10.0.0.1' }));
    httpServer.record(ms / 1000, { 'service.name': 'shop', ...pick(route), 'http.response.status_code': 200 });
    gTotal.add(1, { client: 'user', server: 'shop', connection_type: 'virtual_node' });
    gServer.record(ms / 1000, { client: 'user', server: 'shop', connection_type: 'virtual_node' });
  }
  an.observe(span(SpanKind.SERVER, 3, { ...route, 'http.response.status_code': 503 }, { error: true }));
  httpServer.record(0.003, { 'service.name': 'shop', ...pick(route), 'http.response.status_code': 503, 'error.type': '_OTHER' });
  gTotal.add(1, { client: 'user', server: 'shop', connection_type: 'virtual_node' });
  gFailed.add(1, { client: 'user', server: 'shop', connection_type: 'virtual_node' });
  gServer.record(0.003, { client: 'user', server: 'shop', connection_type: 'virtual_node' });
  for (const ms of [1, 5, 1000.5]) {
    an.observe(span(SpanKind.SERVER, ms, { 'rpc.system': 'grpc', 'rpc.service': 'shop.Cart', 'rpc.method': 'Add', 'rpc.grpc.status_code': 0, 'server.port': 50051 }));
    rpcServer.record(ms, { 'service.name': 'shop', 'rpc.system': 'grpc', 'rpc.service': 'shop.Cart', 'rpc.method': 'Add', 'rpc.grpc.status_code': 0, 'server.port': 50051 });
    gTotal.add(1, { client: 'user', server: 'shop', connection_type: 'virtual_node' });
    gServer.record(ms / 1000, { client: 'user', server: 'shop', connection_type: 'virtual_node' });
  }
  const pg = { 'db.system.name': 'postgresql', 'db.operation.name': 'SELECT', 'db.collection.name': 'items', 'server.address': '127.0.0.1', 'server.port': 5432 };
  for (const [id, n] of [[1, 1], [2, 0], [3, 7]]) {
    an.observe(span(SpanKind.CLIENT, 2 * id, { ...pg, 'db.query.text': `SELECT * FROM items WHERE id = ${id}`, 'db.response.returned_rows': n }));
    const a = { 'service.name': 'shop', ...pg, 'db.query.text': 'SELECT * FROM items WHERE id = ?' };
    db.record(0.002 * id, a);
    rows.record(n, a);
  }
  an.observe(span(SpanKind.CLIENT, 1, { ...pg, 'db.response.status_code': '42P01' }, { error: true }));
  db.record(0.001, { 'service.name': 'shop', ...pg, 'error.type': '42P01' });
  an.observe(span(SpanKind.CLIENT, 4, { 'messaging.system': 'kafka', 'messaging.operation.name': 'send', 'messaging.destination.name': 'orders', 'server.address': '127.0.0.1', 'server.port': 9092 }));
  msg.record(0.004, { 'service.name': 'shop', 'messaging.system': 'kafka', 'messaging.operation.name': 'send', 'messaging.destination.name': 'orders', 'server.address': '127.0.0.1', 'server.port': 9092 });
  // Messages sent and consumed: a client's Produce requests and Fetch responses, failed sends
  // included (under their error.type); a span without a count or of another type adds none.
  const sent = meter.createCounter('messaging.client.sent.messages', { unit: '{message}', description: 'Number of messages producer attempted to send to the broker.' });
  const consumed = meter.createCounter('messaging.client.consumed.messages', { unit: '{message}', description: 'Number of messages that were delivered to the application.' });
  const kafkaEdges: boolean[] = [];
  const kafka = { 'messaging.system': 'kafka', 'messaging.destination.name': 'orders', 'server.address': '127.0.0.1', 'server.port': 9092 };
  for (const [op, type, n, err] of [['produce', 'send', 5, false], ['produce', 'send', 7, false], ['produce', 'send', 2, true], ['fetch', 'receive', 3, false], ['fetch', 'receive', 0, false], ['metadata', undefined, 9, false]] as const) {
    const a: Attributes = { ...kafka, 'messaging.operation.name': op, 'messaging.batch.message_count': n, ...(type ? { 'messaging.operation.type': type } : {}), ...(err ? { 'error.type': 'NOT_LEADER_OR_FOLLOWER' } : {}) };
    an.observe(span(SpanKind.CLIENT, 2, a, { error: err }));
    const l = { 'service.name': 'shop', ...kafka, 'messaging.operation.name': op, ...(err ? { 'error.type': 'NOT_LEADER_OR_FOLLOWER' } : {}) };
    msg.record(0.002, l);
    if (type === 'send') sent.add(n, l); else if (type === 'receive') consumed.add(n, l);
    kafkaEdges.push(err);
  }
  an.observe(span(SpanKind.CLIENT, 0.7, { 'dns.question.name': 'example.com', 'server.address': '127.0.0.53' }));
  dns.record(0.0007, { 'service.name': 'shop', 'dns.question.name': 'example.com', 'server.address': '127.0.0.53' });
  // An HTTP call to a traced server: one edge with client and server durations.
  an.observe(span(SpanKind.CLIENT, 9, { 'http.request.method': 'GET', 'http.response.status_code': 200, 'server.address': '127.0.0.1', 'server.port': 8080 }, { service: 'web', id: 'c0c0c0c0c0c0c0c0' }));
  httpClient.record(0.009, { 'service.name': 'web', 'http.request.method': 'GET', 'http.response.status_code': 200, 'server.address': '127.0.0.1', 'server.port': 8080 });
  an.observe(span(SpanKind.SERVER, 6, { ...route, 'http.response.status_code': 200 }, { service: 'api', parent: 'c0c0c0c0c0c0c0c0' }));
  httpServer.record(0.006, { 'service.name': 'api', ...pick(route), 'http.response.status_code': 200 });
  gTotal.add(1, { client: 'web', server: 'api', connection_type: '' });
  gServer.record(0.006, { client: 'web', server: 'api', connection_type: '' });
  gClient.record(0.009, { client: 'web', server: 'api', connection_type: '' });
  an.tick();
  // A client span no server claimed: an edge to a virtual node, after edgeWaitMs (0 here).
  an.observe(span(SpanKind.CLIENT, 3, { 'http.request.method': 'POST', 'http.response.status_code': 500, 'server.address': 'pay.example', 'server.port': 443 }, { service: 'web', error: true }));
  httpClient.record(0.003, { 'service.name': 'web', 'http.request.method': 'POST', 'http.response.status_code': 500, 'server.address': 'pay.example', 'server.port': 443, 'error.type': '_OTHER' });
  an.tick();
  gTotal.add(1, { client: 'web', server: 'pay.example:443', connection_type: 'virtual_node' });
  gFailed.add(1, { client: 'web', server: 'pay.example:443', connection_type: 'virtual_node' });
  gClient.record(0.003, { client: 'web', server: 'pay.example:443', connection_type: 'virtual_node' });
  // The database, broker and DNS client spans: edges to their virtual nodes.
  const virtual = (server: string, type: string, ms: number, failed = false) => {
    const l = { client: 'shop', server, connection_type: type };
    gTotal.add(1, l);
    if (failed) gFailed.add(1, l);
    gClient.record(ms / 1000, l);
  };
  for (const ms of [2, 4, 6]) virtual('postgresql 127.0.0.1:5432', 'database', ms);
  virtual('postgresql 127.0.0.1:5432', 'database', 1, true);
  virtual('kafka 127.0.0.1:9092', 'messaging_system', 4);
  for (const failed of kafkaEdges) virtual('kafka 127.0.0.1:9092', 'messaging_system', 2, failed);
  virtual('dns 127.0.0.53', 'virtual_node', 0.7);

  const got = await collect(ours);
  const want = await collect(sdk);
  assert.deepEqual(got.map((m) => m.descriptor.name).sort(), want.map((m) => m.descriptor.name).sort());
  for (const w of want) {
    const g = got.find((m) => m.descriptor.name === w.descriptor.name)!;
    const name = w.descriptor.name;
    assert.equal(g.descriptor.unit, w.descriptor.unit, name);
    assert.equal(g.descriptor.description, w.descriptor.description, name);
    assert.equal(g.dataPointType, w.dataPointType, name);
    assert.equal(g.aggregationTemporality, AggregationTemporality.CUMULATIVE, name);
    const gp = points(got, name), wp = points(want, name);
    assert.equal(gp.length, wp.length, name);
    gp.forEach((p, i) => {
      assert.deepEqual(p.attributes, wp[i].attributes, name);
      const gv = p.value as { sum?: number }, wv = wp[i].value as { sum?: number };
      if (typeof wv === 'number') { assert.equal(gv, wv, name); return; }
      // Sums may differ in the last bits (the SDK adds per interval, then merges).
      assert.ok(Math.abs((gv.sum ?? 0) - (wv.sum ?? 0)) < 1e-9, `${name} sum`);
      assert.deepEqual({ ...gv, sum: 0 }, { ...wv, sum: 0 }, `${name} ${JSON.stringify(p.attributes)}`);
    });
  }
  // Exemplars follow each exported point (the exporter asks with the point's own attributes).
  const http = got.find((m) => m.descriptor.name === 'http.server.request.duration')!;
  const shop200 = http.dataPoints.find((p) => p.attributes['service.name'] === 'shop' && p.attributes['http.response.status_code'] === 200)!;
  const ex = an.exemplarsFor('http.server.request.duration', shop200.attributes)!;
  assert.equal(ex.length, (shop200.value as { buckets: { counts: number[] } }).buckets.counts.filter((c) => c > 0).length);
  assert.equal(an.exemplarsFor('rpc.server.duration', shop200.attributes), undefined, 'another instrument\'s point');
});

function pick(r: Record<string, string>): Attributes { return { 'http.request.method': r['http.request.method'], 'http.route': r['http.route'], 'network.protocol.version': r['network.protocol.version'], 'url.scheme': r['url.scheme'] }; }

test('RED series are bounded per instrument over all services: past the limit one otel.metric.overflow series', async () => {
  const producers = new TestProducers();
  const r = reader(producers);
  new MeterProvider({ readers: [r] });
  const an = new Analytics(producers, { instrumentLimit: 3, cardinalityLimit: 2, edgeWaitMs: 0 });
  // Ten short-lived processes, each its own service: three get series, the rest share one.
  for (let i = 0; i < 10; i++) an.observe(span(SpanKind.SERVER, 1, { 'http.request.method': 'GET', 'http.route': '/' }, { service: `job-${i}` }));
  // Within one service the per-service limit still applies first.
  for (let i = 0; i < 2; i++) an.observe(span(SpanKind.SERVER, 1, { 'http.request.method': 'GET', 'http.route': `/r${i}` }, { service: 'job-0' }));
  const p = points(await collect(r), 'http.server.request.duration');
  const count = (x: { value: unknown }) => (x.value as { count: number }).count;
  assert.equal(p.length, 4, JSON.stringify(p.map((x) => x.attributes)));
  const overflow = p.find((x) => x.attributes['otel.metric.overflow'] === true)!;
  assert.deepEqual(overflow.attributes, { 'otel.metric.overflow': true }, 'no service: it holds many');
  assert.equal(count(overflow), 7 + 2, 'seven services and job-0\'s routes past the limits');
  assert.deepEqual(p.filter((x) => x !== overflow).map((x) => x.attributes['service.name']).sort(), ['job-0', 'job-1', 'job-2']);
  assert.equal(p.reduce((n, x) => n + count(x), 0), 12, 'every span counted once');
  const topo = an.topology() as { overflowPoints: number; services: Array<{ service: string }> };
  assert.equal(topo.overflowPoints, 9);
  assert.deepEqual(topo.services.map((x) => x.service).sort(), ['job-0', 'job-1', 'job-2'], 'services past the limit are not remembered either');
});

test('RED series of an exited process are exported once more, then forgotten; idle ones too', async () => {
  const producers = new TestProducers();
  const r = reader(producers);
  new MeterProvider({ readers: [r] });
  let now = 1_000_000;
  const an = new Analytics(producers, { edgeWaitMs: 0, seriesIdleMs: 60_000 }, () => now);
  const proc = spawn('sleep', ['60'], { stdio: 'ignore' });
  const exited = new Promise((res) => proc.once('exit', res));
  const feed = (service: string, pid?: number) => an.observe(span(SpanKind.SERVER, 2, { 'http.request.method': 'GET', 'http.route': '/', ...(pid ? { 'process.pid': pid } : {}) }, { service }));
  const counts = async () => Object.fromEntries(points(await collect(r), 'http.server.request.duration').map((x) => [x.attributes['service.name'], (x.value as { count: number }).count]));
  try {
    feed('short', proc.pid); feed('short', proc.pid);
    feed('steady', process.pid);
    feed('idle');
    assert.deepEqual(await counts(), { short: 2, steady: 1, idle: 1 });
    proc.kill('SIGKILL');
    await exited;
    now += 10_000;
    feed('steady', process.pid);
    // Its process exited and no span came since the last collection: the final values go out once.
    assert.deepEqual(await counts(), { short: 2, steady: 2, idle: 1 });
    assert.deepEqual(await counts(), { steady: 2, idle: 1 }, 'forgotten after its final export');
    assert.equal((an.topology() as { services: Array<{ service: string }> }).services.some((s) => s.service === 'short'), false);
    // No span for seriesIdleMs: exported once more, then forgotten; the live process's series stays.
    now += 60_001;
    feed('steady', process.pid);
    assert.deepEqual(await counts(), { steady: 3, idle: 1 });
    assert.deepEqual(await counts(), { steady: 3 });
    // A series that comes back starts over (a new cumulative stream).
    feed('idle');
    assert.deepEqual(await counts(), { steady: 3, idle: 1 });
    assert.equal((an.topology() as { forgottenSeries: number }).forgottenSeries, 2);
  } finally {
    proc.kill('SIGKILL');
  }
});
