// The SDK providers feeding telegen's queues: spans, log records and metric collections made
// with the OpenTelemetry APIs arrive at a real receiver through BatchQueue.
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import {
  createExportQueues,
  QueueLogRecordProcessor,
  QueueMetricExporter,
  QueueSpanProcessor,
  resolveExportConfig,
  shutdownExportQueues,
  splitResourceMetrics,
} from '../../host/src/export';
import { startReceiver, type OtlpReceiver } from '../helpers/otlp-receiver';
import { makeMetrics, resource, RESOURCE_ATTRS } from './fixtures';

let r: OtlpReceiver | undefined;
after(async () => {
  await r?.stop();
});

test('splitResourceMetrics bounds data points per item and keeps everything', () => {
  const rm = makeMetrics(1);
  const m = rm.scopeMetrics[0].metrics[0];
  const many = { ...rm, scopeMetrics: [{ ...rm.scopeMetrics[0], metrics: [{ ...m, dataPoints: Array.from({ length: 7 }, (_, i) => ({ ...m.dataPoints[0], value: i })) }, m] }] } as typeof rm;
  const parts = splitResourceMetrics(many, 3);
  const points = parts.map((p) => p.scopeMetrics.flatMap((s) => s.metrics.flatMap((x) => x.dataPoints.map((d) => d.value))));
  assert.deepEqual(points, [[0, 1, 2], [3, 4, 5], [6, 1]]);
  assert.ok(parts.every((p) => p.resource === rm.resource));
  assert.deepEqual(splitResourceMetrics(rm, 3), [rm]);
});

test('SDK tracer, logger and meter providers export through the queues', async () => {
  r = await startReceiver({ protocol: 'grpc' });
  const resolved = resolveExportConfig({ endpoint: r.url, protocol: 'grpc', flush_interval_ms: 50, metrics: { batch_size: 2 } }, {});
  const q = createExportQueues(resolved, '/nonexistent');

  const tp = new BasicTracerProvider({ resource, spanProcessors: [new QueueSpanProcessor(q.traces!)] });
  const tracer = tp.getTracer('telegen', '0.1.0');
  const span = tracer.startSpan('GET /cart', { kind: SpanKind.SERVER, attributes: { 'http.request.method': 'GET', 'url.path': '/cart' } });
  span.setAttribute('http.response.status_code', 503);
  span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();

  const lp = new LoggerProvider({ resource, processors: [new QueueLogRecordProcessor(q.logs!)] });
  lp.getLogger('telegen', '0.1.0').emit({ severityNumber: 13, severityText: 'WARN', body: 'ring buffer 90% full', attributes: { 'telegen.ring': 'events' } });

  const reader = new PeriodicExportingMetricReader({ exporter: new QueueMetricExporter(q.metrics!, resolved.metrics.batchSize), exportIntervalMillis: 60_000 });
  const mp = new MeterProvider({ resource, readers: [reader] });
  const counter = mp.getMeter('telegen', '0.1.0').createCounter('telegen.events', { description: 'events read' });
  for (const ring of ['a', 'b', 'c']) counter.add(10, { ring });
  await mp.forceFlush();

  await r.waitFor(() => r!.spans().length === 1 && r!.logs().length === 1 && r!.metrics().length >= 2, 10_000, 'all three signals');
  const s = r.spans()[0];
  assert.equal(s.name, 'GET /cart');
  assert.equal(s.kind, 2);
  assert.equal(s.status.code, 2);
  assert.deepEqual(s.attributes, { 'http.request.method': 'GET', 'url.path': '/cart', 'http.response.status_code': 503 });
  assert.deepEqual(s.resource, RESOURCE_ATTRS);
  assert.deepEqual(s.scope, { name: 'telegen', version: '0.1.0' });

  const l = r.logs()[0];
  assert.equal(l.body, 'ring buffer 90% full');
  assert.equal(l.severityText, 'WARN');
  assert.deepEqual(l.attributes, { 'telegen.ring': 'events' });

  // Three points with batch_size 2: two requests, two points then one.
  const ms = r.metrics();
  assert.deepEqual(ms.map((m) => m.dataPoints.length), [2, 1]);
  assert.deepEqual(ms.flatMap((m) => m.dataPoints.map((d) => d.attributes.ring)).sort(), ['a', 'b', 'c']);
  assert.ok(ms.every((m) => m.name === 'telegen.events' && m.type === 'sum'));

  await tp.shutdown();
  await lp.shutdown();
  await mp.shutdown();
  await shutdownExportQueues(q, 1000);
});
