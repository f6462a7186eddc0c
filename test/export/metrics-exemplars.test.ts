// Exported metrics carry the RED histograms' exemplars on every path: OTLP/gRPC and
// HTTP/protobuf (gzip or not) decoded by the real receiver with the official protobuf
// definitions, and the OTLP/JSON file. Spans go through the real Analytics, a real SDK
// MeterProvider and the agent's QueueMetricExporter and queue. Without exemplars, our encoders
// give what the official otlp-transformer serializers give, for every kind of instrument.
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SpanKind, SpanStatusCode, ValueType } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationType, MeterProvider, MetricReader, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { Analytics, DURATION_BUCKETS_S } from '../../host/src/analytics';
import { BucketExemplars } from '../../host/src/analytics/exemplars';
import { TestProducers } from '../helpers/metric-producers';
import { createExportQueues, encodeMetricsRequest, encodeMetricsRequests, metricsRequestJson, QueueMetricExporter, resolveExportConfig, shutdownExportQueues } from '../../host/src/export';
import { flattenMetrics, startReceiver, type FlatMetric, type OtlpReceiver } from '../helpers/otlp-receiver';

/* eslint-disable @typescript-eslint/no-require-imports */
const { ProtobufMetricsSerializer, JsonMetricsSerializer } = require('@opentelemetry/otlp-transformer') as typeof import('@opentelemetry/otlp-transformer');
const otlpRoot = require('@opentelemetry/otlp-transformer/build/src/generated/root') as {
  opentelemetry: { proto: { collector: { metrics: { v1: { ExportMetricsServiceRequest: { decode(b: Uint8Array): object; toObject(m: object, o: object): object } } } } } };
};
/* eslint-enable @typescript-eslint/no-require-imports */
const Req = otlpRoot.opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest;

const receivers: OtlpReceiver[] = [];
after(async () => { for (const r of receivers) await r.stop(); });

class Collect extends MetricReader {
  protected onForceFlush(): Promise<void> { return Promise.resolve(); }
  protected onShutdown(): Promise<void> { return Promise.resolve(); }
}

test('without exemplars the encoders give what the official serializers give, every instrument kind', async () => {
  const reader = new Collect();
  const provider = new MeterProvider({
    resource: resourceFromAttributes({ 'service.name': 'x', 'a.int': 3, 'a.neg': -5, 'a.dbl': 1.5, 'a.bool': true, 'a.arr': ['p', 'q'], 'a.big': 2 ** 40, 'a.empty': '' }),
    readers: [reader],
    views: [{ instrumentName: 'exp', aggregation: { type: AggregationType.EXPONENTIAL_HISTOGRAM } }],
  });
  const m = provider.getMeter('scope-a', '1.2.3');
  const c = m.createCounter('c', { description: 'ints', unit: '{x}', valueType: ValueType.INT });
  c.add(5, { k: 'v' });
  c.add(0, { k: 'zero' });
  m.createUpDownCounter('ud').add(-3.5, { k: 'n' });
  const h = m.createHistogram('h', { unit: 's', advice: { explicitBucketBoundaries: [0.1, 1] } });
  h.record(0.05, { r: '/a' });
  h.record(3, { r: '/a' });
  const e = m.createHistogram('exp');
  for (const v of [0, 0.3, 17, 1e6]) e.record(v);
  m.createObservableGauge('og').addCallback((o) => { o.observe(2.25, { z: 1 }); o.observe(-7); });
  m.createGauge('g', { valueType: ValueType.INT }).record(-9, { w: 'x' });
  provider.getMeter('scope-b').createCounter('other').add(1);
  const { resourceMetrics: rm } = await reader.collect();
  assert.deepEqual(rm.scopeMetrics.flatMap((s) => s.metrics.map((x) => x.descriptor.name)).sort(), ['c', 'exp', 'g', 'h', 'og', 'other', 'ud']);

  const opts = { longs: String, bytes: String, enums: Number, defaults: true, oneofs: true };
  const ours = Req.toObject(Req.decode(encodeMetricsRequest([rm])), opts);
  const official = Req.toObject(Req.decode(ProtobufMetricsSerializer.serializeRequest(rm)!), opts);
  assert.deepEqual(ours, official);
  assert.deepEqual(JSON.parse(JSON.stringify(metricsRequestJson(rm))), JSON.parse(Buffer.from(JsonMetricsSerializer.serializeRequest(rm)!).toString('utf8')));
  // Several ResourceMetrics: one request, in order.
  const two = Req.toObject(Req.decode(encodeMetricsRequest([rm, rm])), opts) as { resourceMetrics: unknown[] };
  assert.deepEqual(two.resourceMetrics, [...(official as { resourceMetrics: unknown[] }).resourceMetrics, ...(official as { resourceMetrics: unknown[] }).resourceMetrics]);
  // Split by size: parts under the limit (one item per part here), together every item once, in order.
  const one = encodeMetricsRequest([rm]).length;
  const parts = encodeMetricsRequests([rm, rm, rm], one + 10);
  assert.equal(parts.length, 3);
  for (const p of parts) assert.deepEqual(Req.toObject(Req.decode(p), opts), official);
  assert.equal(encodeMetricsRequests([rm, rm, rm], 3 * one).length, 1);
  await provider.shutdown();
});

// ---- exemplars through Analytics -----------------------------------------------------------------

const T0 = 1_700_000_000;
let seq = 0;
interface Made { span: ReadableSpan; traceId: string; spanId: string; seconds: number; endNs: string }

/** A server span of `ms` milliseconds: HTTP (route /users/{id}) or gRPC. */
function serverSpan(ms: number, o: { status?: number; grpc?: boolean } = {}): Made {
  const id = ++seq;
  const traceId = (0xe0000000 + id).toString(16).padStart(32, '0');
  const spanId = (0x7700 + id).toString(16).padStart(16, '0');
  const startNs = id * 1_000_000_000 + 1000;
  const durNs = Math.round(ms * 1e6);
  const hr = (ns: number): [number, number] => [T0 + Math.floor(ns / 1e9), ns % 1e9];
  const status = o.status ?? 200;
  const attributes = o.grpc
    ? { 'rpc.system': 'grpc', 'rpc.service': 'shop.Cart', 'rpc.method': 'Add', 'rpc.grpc.status_code': 0, 'server.port': 50051, 'client.address': '10.0.0.9' }
    : { 'http.request.method': 'GET', 'http.route': '/users/{id}', 'url.path': `/users/${id}`, 'http.response.status_code': status, 'url.scheme': 'http', 'client.address': '10.0.0.9', 'process.pid': 4242 };
  const span = {
    name: o.grpc ? 'shop.Cart/Add' : 'GET /users/{id}', kind: SpanKind.SERVER,
    spanContext: () => ({ traceId, spanId, traceFlags: 1 }),
    startTime: hr(startNs), endTime: hr(startNs + durNs), duration: [Math.floor(durNs / 1e9), durNs % 1e9] as [number, number],
    status: status >= 500 ? { code: SpanStatusCode.ERROR, message: `HTTP ${status}` } : { code: SpanStatusCode.UNSET },
    attributes, links: [], events: [], ended: true, resource: resourceFromAttributes({ 'service.name': 'shop' }),
    instrumentationScope: { name: 'telegen' }, droppedAttributesCount: 0, droppedEventsCount: 0, droppedLinksCount: 0,
  } as unknown as ReadableSpan;
  return { span, traceId, spanId, seconds: durNs / 1e9, endNs: String(BigInt(T0) * 1_000_000_000n + BigInt(startNs + durNs)) };
}

const bucketOf = (s: number): number => { const i = DURATION_BUCKETS_S.findIndex((b) => s <= b); return i < 0 ? DURATION_BUCKETS_S.length : i; };

/** Feeds spans, collects into the agent's metrics queue, returns what the exported points carry. */
async function run(resolved: ReturnType<typeof resolveExportConfig>, dir: string, filter?: (s: ReadableSpan) => boolean) {
  const queues = createExportQueues(resolved, dir);
  const exporter = new QueueMetricExporter(queues.metrics!, resolved.metrics.batchSize);
  const producers = new TestProducers();
  const provider = new MeterProvider({ readers: [new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000, metricProducers: [producers] })] });
  const an = new Analytics(producers, { edgeWaitMs: 0, exemplarFilter: filter });
  exporter.exemplars = an;
  const spans: Made[] = [];
  const see = (m: Made) => { spans.push(m); an.observe(m.span); };
  // Bucket 0.005: two successes and an error (a series of its own: status 503, error.type).
  see(serverSpan(3)); see(serverSpan(4, { status: 503 })); see(serverSpan(2));
  // Bucket 0.1: three successes (the latest wins); bucket 0.25; the +Inf bucket (a slow one).
  see(serverSpan(80)); see(serverSpan(90)); see(serverSpan(95));
  see(serverSpan(200));
  see(serverSpan(12_000));
  // gRPC: milliseconds.
  see(serverSpan(30, { grpc: true }));
  await provider.forceFlush();
  await queues.metrics!.forceFlush();
  return { spans, queues, provider, an, see };
}

type ExPoint = { attributes: Record<string, unknown>; exemplars?: Array<Record<string, unknown>>; explicitBounds: number[]; bucketCounts: Array<string | number> };

function checkExemplars(metrics: FlatMetric[], spans: Made[], want: Map<string, Made>): void {
  const http = metrics.filter((m) => m.name === 'http.server.request.duration');
  assert.equal(http.length, 1);
  assert.equal(http[0].type, 'histogram');
  const points = http[0].dataPoints as ExPoint[];
  assert.equal(points.length, 2, 'status 200 and status 503 series');
  let seen = 0;
  for (const p of points) {
    assert.equal(p.attributes['http.route'], '/users/{id}');
    const ex = p.exemplars ?? [];
    // One per non-empty bucket, lowest first.
    const nonEmpty = p.bucketCounts.map((c, i) => (Number(c) > 0 ? i : -1)).filter((i) => i >= 0);
    assert.equal(ex.length, nonEmpty.length, JSON.stringify(ex));
    ex.forEach((e, k) => {
      const span = spans.find((s) => s.traceId === e.traceId);
      assert.ok(span, `exemplar trace ${String(e.traceId)} is one of the spans`);
      assert.equal(e.spanId, span.spanId);
      assert.equal(e.asDouble, span.seconds);
      assert.equal(String(e.timeUnixNano), span.endNs);
      assert.equal(span.span.attributes['http.response.status_code'], p.attributes['http.response.status_code'], 'a span of this series');
      const b = nonEmpty[k];
      const lo = b === 0 ? -Infinity : p.explicitBounds[b - 1];
      const hi = b < p.explicitBounds.length ? p.explicitBounds[b] : Infinity;
      assert.ok(Number(e.asDouble) > lo && Number(e.asDouble) <= hi, `exemplar ${String(e.asDouble)} in bucket (${lo}, ${hi}]`);
      assert.equal(e.traceId, want.get(`${String(p.attributes['http.response.status_code'])}/${b}`)?.traceId, `status ${String(p.attributes['http.response.status_code'])} bucket ${b}: the latest span`);
      const fa = Object.fromEntries(((e.filteredAttributes ?? []) as Array<{ key: string; value: Record<string, unknown> }>).map((kv) => [kv.key, Object.values(kv.value)[0]]));
      assert.equal(fa['url.path'], `/users/${Number.parseInt(span.spanId, 16) - 0x7700}`);
      assert.equal(fa['client.address'], '10.0.0.9');
      assert.equal(Number(fa['process.pid']), 4242);
      assert.equal(fa['http.route'], undefined, 'attributes of the point are not repeated');
      seen++;
    });
  }
  assert.equal(seen, want.size);
  const rpc = metrics.find((m) => m.name === 'rpc.server.duration')!;
  assert.equal(rpc.unit, 'ms');
  const re = (rpc.dataPoints[0] as ExPoint).exemplars ?? [];
  assert.equal(re.length, 1);
  assert.equal(re[0].asDouble, 30, 'in the instrument unit (ms)');
}

/** Which span each (status, bucket) exemplar must show for the spans run() feeds: the latest. */
function expected(spans: Made[]): Map<string, Made> {
  const http = spans.filter((s) => s.span.attributes['http.route']);
  return new Map([['200/0', http[2]], ['503/0', http[1]], [`200/${bucketOf(0.08)}`, http[5]], [`200/${bucketOf(0.2)}`, http[6]], [`200/${DURATION_BUCKETS_S.length}`, http[7]]]);
}

test('a bucket keeps an error span over later successes until the next collection', () => {
  const r = new BucketExemplars(3);
  const ok1 = serverSpan(1), bad = serverSpan(1, { status: 500 }), ok2 = serverSpan(1), ok3 = serverSpan(1);
  r.offer(0, ok1.span, 0.001, false);
  r.offer(0, bad.span, 0.001, true);
  r.offer(0, ok2.span, 0.001, false);
  assert.deepEqual(r.collect({}).map((e) => e.traceId), [bad.traceId]);
  r.offer(0, ok3.span, 0.001, false);
  r.offer(2, ok1.span, 9, false);
  assert.deepEqual(r.collect({}).map((e) => e.traceId), [ok3.traceId, ok1.traceId]);
});

for (const protocol of ['grpc', 'http'] as const) {
  for (const compression of ['gzip', 'none'] as const) {
    test(`exemplars over ${protocol} (${compression}): trace and span ids of spans in the bucket, at the real receiver`, async () => {
      const r = await startReceiver({ protocol });
      receivers.push(r);
      const resolved = resolveExportConfig({ endpoint: r.url, protocol, compression, traces: { enabled: false }, logs: { enabled: false }, profiles: { enabled: false } }, {});
      const { spans, queues, provider } = await run(resolved, '/nonexistent');
      await r.waitFor(() => r.metrics().some((m) => m.name === 'rpc.server.duration'), 10_000, 'metrics at the receiver');
      if (protocol === 'http') assert.equal(r.attempts[0].headers['content-encoding'], compression === 'gzip' ? 'gzip' : undefined);
      checkExemplars(r.metrics(), spans, expected(spans));
      await provider.shutdown();
      await shutdownExportQueues(queues, 5000);
    });
  }
}

test('exemplars in metrics.jsonl (OTLP/JSON: ids as hex); the filter keeps unsampled spans out', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-exemplars-'));
  const resolved = resolveExportConfig({ traces: { enabled: false }, logs: { enabled: false }, profiles: { enabled: false } }, {});
  assert.equal(resolved.metrics.mode, 'file');
  // Spans whose trace id ends in 0x…ff are "not sampled": never exemplars.
  const { spans, queues, provider, see } = await run(resolved, dir, (s) => !s.spanContext().traceId.endsWith('ff'));
  const lines = () => fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => flattenMetrics(JSON.parse(l)));
  checkExemplars(lines().flat(), spans, expected(spans));
  const raw = fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8');
  assert.match(raw, /"exemplars":\[\{"filteredAttributes":\[.*?\],"timeUnixNano":"\d+","asDouble":[\d.e-]+,"spanId":"[0-9a-f]{16}","traceId":"[0-9a-f]{32}"\}/);

  // Next interval: a newer span in bucket 0 replaces the exemplar; an unsampled one does not.
  const next = serverSpan(1);
  see(next);
  while (!serverSpanIdEndsFF()) { /* advance seq to an id whose trace id ends in ff */ }
  const unsampled = serverSpan(1);
  assert.ok(unsampled.traceId.endsWith('ff'));
  see(unsampled);
  await provider.forceFlush();
  await queues.metrics!.forceFlush();
  const last = lines().at(-1)!.find((m) => m.name === 'http.server.request.duration')!;
  const ok = (last.dataPoints as ExPoint[]).find((p) => p.attributes['http.response.status_code'] === 200)!;
  const ex0 = ok.exemplars![0];
  assert.equal(ex0.traceId, next.traceId);
  await provider.shutdown();
  await shutdownExportQueues(queues, 5000);
});

/** True when the next serverSpan() gets a trace id ending in ff (consumes one id otherwise). */
function serverSpanIdEndsFF(): boolean {
  if (((0xe0000000 + seq + 1) & 0xff) === 0xff) return true;
  seq++;
  return false;
}
