// Service-graph edges are bounded like RED series: a server answering many untraced clients
// (each client address is a node and an edge, and a series of every traces_service_graph_*
// instrument) keeps `edgeLimit` edges, then one overflow series (otel.metric.overflow=true) that
// still counts every request; nodes only overflowed edges reach are not kept.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, MetricReader, AggregationTemporality, MetricProducer } from '@opentelemetry/sdk-metrics';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { Analytics } from '../../host/src/analytics';
import { TestProducers } from '../helpers/metric-producers';

let seq = 0;
/** A server span with no parent: its caller is the client address (an external node). */
function serverSpan(client: string): ReadableSpan {
  const id = ++seq;
  return {
    name: 'GET /', kind: SpanKind.SERVER,
    spanContext: () => ({ traceId: id.toString(16).padStart(32, '0'), spanId: id.toString(16).padStart(16, '0'), traceFlags: 1 }),
    parentSpanContext: { traceId: id.toString(16).padStart(32, '0'), spanId: 'ffffffffffffffff', traceFlags: 1 },
    startTime: [1_700_000_000, 0], endTime: [1_700_000_000, 5e6], duration: [0, 5e6],
    status: { code: SpanStatusCode.UNSET },
    attributes: { 'http.request.method': 'GET', 'http.route': '/', 'http.response.status_code': 200, 'client.address': client },
    links: [], events: [], ended: true, resource: resourceFromAttributes({ 'service.name': 'web' }),
    instrumentationScope: { name: 't' }, droppedAttributesCount: 0, droppedEventsCount: 0, droppedLinksCount: 0,
  };
}

class PullReader extends MetricReader {
  constructor(producer: MetricProducer) { super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE, metricProducers: [producer] }); }
  protected async onForceFlush(): Promise<void> { /* pull only */ }
  protected async onShutdown(): Promise<void> { /* pull only */ }
}

test('service graph: edgeLimit edges, then one overflow series; every request counted', async () => {
  const producers = new TestProducers();
  const reader = new PullReader(producers);
  new MeterProvider({ readers: [reader] });
  const an = new Analytics(producers, { edgeLimit: 3, edgeWaitMs: 0 });
  const clients = Array.from({ length: 10 }, (_, i) => `10.0.0.${i + 1}`);
  for (const c of clients) for (let k = 0; k < 2; k++) an.observe(serverSpan(c));

  const topo = an.topology() as { edges: Array<{ client: string; total: number }>; nodes: Array<{ id: string }>; edgeOverflowPoints: number };
  assert.deepEqual(topo.edges.map((e) => [e.client, e.total]), clients.slice(0, 3).map((c) => [c, 2]));
  assert.deepEqual(topo.nodes.map((n) => n.id).filter((id) => id.startsWith('10.')).sort(), clients.slice(0, 3).sort());
  assert.equal(topo.edgeOverflowPoints, 14);

  const metrics = (await reader.collect()).resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
  const total = metrics.find((m) => m.descriptor.name === 'traces_service_graph_request_total')!;
  assert.equal(total.dataPoints.length, 4);
  assert.deepEqual(total.dataPoints.map((p) => [p.attributes.client ?? p.attributes['otel.metric.overflow'], p.value]), [...clients.slice(0, 3).map((c) => [c, 2]), [true, 14]]);
  const server = metrics.find((m) => m.descriptor.name === 'traces_service_graph_request_server_seconds')!;
  assert.equal(server.dataPoints.length, 4);
});
