// Statement-level database metrics: PostgreSQL spans → Analytics → the SDK meter → the agent's
// metrics queue → OTLP gRPC → the real test receiver. Per normalized statement: calls (histogram
// count), latency buckets, errors (error.type = SQLSTATE) and returned rows.
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { Analytics } from '../../host/src/analytics';
import { TestProducers } from '../helpers/metric-producers';
import { normalizeStatement } from '../../host/src/analytics/db-statements';
import { createExportQueues, QueueMetricExporter, resolveExportConfig, shutdownExportQueues } from '../../host/src/export';
import { startReceiver, type OtlpReceiver } from '../helpers/otlp-receiver';

let r: OtlpReceiver | undefined;
after(async () => { await r?.stop(); });

test('normalization: literals, comments, whitespace and placeholder lists do not make new statements', () => {
  const cases: Array<[string, string]> = [
    ["SELECT * FROM items WHERE id = 42 AND name = 'it''s'", 'SELECT * FROM items WHERE id = ? AND name = ?'],
    ['select *\n  from items\twhere id = 7;', 'select * from items where id = ?'],
    ["/* traceparent='00-ab-cd-01' */ SELECT 1 -- trailing\n", 'SELECT ?'],
    ['SELECT * FROM t WHERE id IN (1, 2, 3, 4)', 'SELECT * FROM t WHERE id IN (?)'],
    ['SELECT * FROM t WHERE id IN ($1, $2, $3)', 'SELECT * FROM t WHERE id IN (?)'],
    ["INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'), (3, 'z')", 'INSERT INTO t (a, b) VALUES (?)'],
    ['SELECT "weird -- name", $1 FROM "t 1"', 'SELECT "weird -- name", $1 FROM "t 1"'],
    ['SELECT $body$ secret $body$', 'SELECT ?'],
  ];
  for (const [sql, want] of cases) assert.equal(normalizeStatement(sql), want, sql);
  assert.equal(normalizeStatement('SELECT ' + 'x, '.repeat(2000) + '1').length, 2048);
});

const T0 = 1_700_000_000_000;
let seq = 0;
function dbSpan(sql: string, ms: number, o: { rows?: number; sqlstate?: string; service?: string } = {}): ReadableSpan {
  const id = ++seq;
  const hr = (t: number): [number, number] => [Math.floor(t / 1000), (t % 1000) * 1e6];
  return {
    name: 'SELECT items', kind: SpanKind.CLIENT,
    spanContext: () => ({ traceId: id.toString(16).padStart(32, '0'), spanId: id.toString(16).padStart(16, '0'), traceFlags: 1 }),
    startTime: hr(T0 + id * 10), endTime: hr(T0 + id * 10 + ms), duration: [Math.floor(ms / 1000), (ms % 1000) * 1e6],
    status: o.sqlstate ? { code: SpanStatusCode.ERROR, message: o.sqlstate } : { code: SpanStatusCode.UNSET },
    attributes: {
      'db.system.name': 'postgresql', 'db.namespace': 'shop', 'db.operation.name': sql.split(' ')[0].toUpperCase(), 'db.query.text': sql,
      'server.address': '127.0.0.1', 'server.port': 5432,
      ...(o.rows !== undefined ? { 'db.response.returned_rows': o.rows } : {}),
      ...(o.sqlstate ? { 'db.response.status_code': o.sqlstate } : {}),
    },
    links: [], events: [], ended: true, resource: resourceFromAttributes({ 'service.name': o.service ?? 'api' }),
    instrumentationScope: { name: 't' }, droppedAttributesCount: 0, droppedEventsCount: 0, droppedLinksCount: 0,
  };
}

test('per normalized statement over OTLP: calls, latency, errors by SQLSTATE, rows; bounded by the series limit', async () => {
  r = await startReceiver({ protocol: 'grpc' });
  const resolved = resolveExportConfig({ endpoint: r.url, protocol: 'grpc', traces: { enabled: false }, logs: { enabled: false }, profiles: { enabled: false } }, {});
  const queues = createExportQueues(resolved, '/nonexistent');
  const producers = new TestProducers();
  const reader = new PeriodicExportingMetricReader({ exporter: new QueueMetricExporter(queues.metrics!, resolved.metrics.batchSize), exportIntervalMillis: 3_600_000, metricProducers: [producers] });
  const provider = new MeterProvider({ readers: [reader] });
  const an = new Analytics(producers, { cardinalityLimit: 5, edgeWaitMs: 0 });

  for (const id of [1, 2, 3]) an.observe(dbSpan(`SELECT * FROM items WHERE id = ${id}`, 3, { rows: 1 }));
  an.observe(dbSpan('SELECT * FROM items WHERE id = 99', 30, { rows: 0 }));
  an.observe(dbSpan("INSERT INTO items VALUES (1, 'a'), (2, 'b')", 2, { rows: 0 }));
  an.observe(dbSpan('INSERT INTO items VALUES (3, $1)', 2));
  for (let i = 0; i < 2; i++) an.observe(dbSpan('SELECT * FROM missing_table', 1, { sqlstate: '42P01' }));
  // Past the limit (5 series for this service: 3 above, 2 of these): one overflow series.
  for (let i = 0; i < 4; i++) an.observe(dbSpan(`SELECT c${i} FROM wide`, 1, { rows: 10 }));

  await provider.forceFlush();
  await queues.metrics!.forceFlush();
  await r.waitFor(() => r!.metrics().some((m) => m.name === 'db.client.response.returned_rows'), 10_000, 'metrics at the receiver');
  type Point = { attributes: Record<string, unknown>; count?: unknown; sum?: unknown; unit?: string; type: string };
  const points = (name: string): Point[] => r!.metrics().filter((m) => m.name === name).flatMap((m) => m.dataPoints.map((p) => ({ ...p, unit: m.unit, type: m.type })));
  const dur = points('db.client.operation.duration');
  const rows = points('db.client.response.returned_rows');
  const byText = (ps: Point[], text: string, err?: string) => ps.filter((p) => p.attributes['db.query.text'] === text && p.attributes['error.type'] === err);

  const sel = byText(dur, 'SELECT * FROM items WHERE id = ?');
  assert.equal(sel.length, 1);
  assert.equal(sel[0].type, 'histogram');
  assert.equal(sel[0].unit, 's');
  assert.equal(Number(sel[0].count), 4, 'four calls of one statement');
  assert.ok(Math.abs(Number(sel[0].sum) - 0.039) < 1e-9, `sum ${sel[0].sum}`);
  assert.deepEqual({ ...sel[0].attributes }, {
    'service.name': 'api', 'db.system.name': 'postgresql', 'db.namespace': 'shop', 'db.operation.name': 'SELECT',
    'server.address': '127.0.0.1', 'server.port': 5432, 'db.query.text': 'SELECT * FROM items WHERE id = ?',
  });
  const selRows = byText(rows, 'SELECT * FROM items WHERE id = ?');
  assert.equal(selRows[0].unit, '{row}');
  assert.deepEqual([Number(selRows[0].count), Number(selRows[0].sum)], [4, 3]);

  // Literal rows and a parameter row are one statement shape.
  assert.equal(Number(byText(dur, 'INSERT INTO items VALUES (?)')[0]?.count), 2);
  assert.equal(Number(byText(rows, 'INSERT INTO items VALUES (?)')[0]?.count), 1, 'a span without returned_rows records no rows');
  const err = byText(dur, 'SELECT * FROM missing_table', '42P01');
  assert.equal(Number(err[0]?.count), 2, 'errors per statement and SQLSTATE');

  const overflow = dur.filter((p) => p.attributes['otel.metric.overflow'] === true);
  assert.equal(overflow.length, 1);
  assert.equal(Number(overflow[0].count), 2, 'statements past the limit share the overflow series');
  assert.equal(dur.filter((p) => String(p.attributes['db.query.text'] ?? '').includes('wide')).length, 2);
  assert.equal(Number(rows.find((p) => p.attributes['otel.metric.overflow'] === true)?.sum), 20);

  await provider.shutdown();
  await shutdownExportQueues(queues, 5000);
});
