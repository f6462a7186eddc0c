// Our trace and log request encoders against the official ones: the same spans and log records
// encoded by otlp-transformer's ProtobufTraceSerializer / ProtobufLogsSerializer and by
// traces-proto.ts / logs-proto.ts, both decoded with the official protobuf definitions (zero
// values filled in: proto3 does not tell an absent field from a zero one) and compared field by
// field. Then over a real receiver: partial_success is counted as dropped{reason="rejected"}.
import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { SpanKind, SpanStatusCode, type Attributes, type HrTime, type Link } from '@opentelemetry/api';
import { TraceState } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { ProtobufLogsSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { BatchQueue, createOtlpLogExporter, createOtlpTraceExporter, encodeLogsRequest, encodeTracesRequest, estimateLogBytes, estimateSpanBytes, renderExportMetrics, resolveExportConfig, type QueueEvent } from '../../host/src/export';
import { decodeOtlpRequest, startReceiver, type OtlpReceiver } from '../helpers/otlp-receiver';
import { hex, makeLog, makeSpan } from './fixtures';

// Every AnyValue member, nested ones, and the edges of int64 and double.
const ALL_TYPES = {
  s: 'naïve ✓ '.repeat(20),
  empty: '',
  t: true,
  f: false,
  zero: 0,
  int: 42,
  neg: -7,
  big: 2 ** 53 - 1,
  negBig: -(2 ** 40),
  dbl: 3.25,
  negDbl: -0.5,
  strs: ['a', 'b', ''],
  nums: [1, 2.5, -3],
  bools: [true, false],
  mixed: ['x', 1, null, undefined, 2.5, true],
  bytes: new Uint8Array([0, 1, 254, 255]),
  kv: { inner: 'v', n: 1, deeper: { list: [1, 'two'] } },
  nul: null,
  undef: undefined,
} as unknown as Attributes;

const res1 = resourceFromAttributes({ 'service.name': 'a', 'host.name': 'n1', ...ALL_TYPES });
const res2 = resourceFromAttributes({ 'service.name': 'b' }, { schemaUrl: 'https://opentelemetry.io/schemas/1.24.0' });
const scopeA = { name: 'telegen', version: '0.1.0' };
const scopeA2 = { name: 'telegen', version: '0.1.0' }; // equal fields, another object
const scopeB = { name: 'other', schemaUrl: 'https://opentelemetry.io/schemas/1.21.0' };
const scopeC = { name: '' };

const t = (s: number, ns: number): HrTime => [s, ns];

function span(i: number, o: Partial<ReadableSpan> & { flags?: number; remoteParent?: boolean; parent?: string; traceState?: string } = {}): ReadableSpan {
  const traceId = hex(0x1000 + i, 16);
  const spanId = hex(0x2000 + i, 8);
  const ts = o.traceState ? new TraceState(o.traceState) : undefined;
  return {
    name: `op ${i}`,
    kind: SpanKind.INTERNAL,
    spanContext: () => ({ traceId, spanId, traceFlags: o.flags ?? 1, traceState: ts }),
    parentSpanContext: o.parent ? { traceId, spanId: o.parent, traceFlags: 1, isRemote: o.remoteParent } : undefined,
    startTime: t(1_700_000_000 + i, 999_999_999),
    endTime: t(1_700_000_001 + i, 1),
    status: { code: SpanStatusCode.UNSET },
    attributes: {},
    links: [],
    events: [],
    duration: [1, 2],
    ended: true,
    resource: res1,
    instrumentationScope: scopeA,
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
    ...o,
  } as ReadableSpan;
}

const link = (i: number, o: Partial<Link> & { remote?: boolean; flags?: number; traceState?: string } = {}): Link => ({
  context: { traceId: hex(0x3000 + i, 16), spanId: hex(0x4000 + i, 8), traceFlags: o.flags ?? 1, isRemote: o.remote, traceState: o.traceState ? new TraceState(o.traceState) : undefined },
  ...(o.attributes ? { attributes: o.attributes } : {}),
  ...(o.droppedAttributesCount ? { droppedAttributesCount: o.droppedAttributesCount } : {}),
});

/** Spans over two resources and four scope objects (two of them equal by key), every span kind and field. */
function spans(): ReadableSpan[] {
  return [
    span(0, { attributes: ALL_TYPES }),
    span(1, { kind: SpanKind.SERVER, resource: res2, parent: hex(0x99, 8), remoteParent: true, traceState: 'vendor=a,other=b' }),
    span(2, { kind: SpanKind.CLIENT, instrumentationScope: scopeA2, parent: hex(0x98, 8), remoteParent: false, flags: 0 }),
    span(3, { kind: SpanKind.PRODUCER, instrumentationScope: scopeB, status: { code: SpanStatusCode.ERROR, message: 'HTTP 503' }, droppedAttributesCount: 3, droppedEventsCount: 4, droppedLinksCount: 5 }),
    span(4, { kind: SpanKind.CONSUMER, resource: res2, instrumentationScope: scopeC, status: { code: SpanStatusCode.OK } }),
    span(5, { kind: undefined as unknown as SpanKind, status: { code: SpanStatusCode.ERROR } }),
    span(6, {
      events: [
        { name: 'e0', time: t(1_700_000_000, 5) },
        { name: 'e1', time: t(1_700_000_000, 6), attributes: ALL_TYPES, droppedAttributesCount: 2 },
        { name: '', time: t(0, 0), attributes: {} },
      ],
      links: [link(0), link(1, { attributes: { a: 1, b: ['x'] }, droppedAttributesCount: 7, remote: true, traceState: 'k=v' }), link(2, { flags: 0, remote: false })],
    }),
    span(7, { name: '', startTime: t(0, 0), endTime: t(4_000_000_000, 123) }),
    span(8, { resource: res2, instrumentationScope: scopeB }),
    makeSpan(9, { status: 503, parent: hex(0x77, 8), attrs: { 'url.full': 'http://x/é' } }),
  ];
}

function log(i: number, o: Partial<ReadableLogRecord> = {}): ReadableLogRecord {
  return {
    hrTime: t(1_700_000_100 + i, 5),
    hrTimeObserved: t(1_700_000_100 + i, 6),
    severityNumber: 9,
    severityText: 'INFO',
    body: `line ${i}`,
    resource: res1,
    instrumentationScope: scopeA,
    attributes: {},
    droppedAttributesCount: 0,
    ...o,
  } as ReadableLogRecord;
}

function logs(): ReadableLogRecord[] {
  return [
    log(0, { attributes: ALL_TYPES as never, spanContext: { traceId: hex(1, 16), spanId: hex(2, 8), traceFlags: 1 }, eventName: 'telegen.agent.event' }),
    log(1, { body: undefined, severityNumber: undefined, severityText: undefined, resource: res2 }),
    log(2, { body: 42, instrumentationScope: scopeA2, spanContext: { traceId: hex(3, 16), spanId: hex(4, 8), traceFlags: 0 } }),
    log(3, { body: { msg: 'structured', n: 2.5, list: [1, 'a'], b: new Uint8Array([9]) } as never, instrumentationScope: scopeB, droppedAttributesCount: 6 }),
    log(4, { body: new Uint8Array([1, 2, 3]) as never, resource: res2, instrumentationScope: scopeC }),
    log(5, { body: ['a', 1, true] as never, severityNumber: 24, severityText: 'FATAL4' }),
    log(6, { body: '', hrTime: t(0, 0) }),
    makeLog(7),
  ];
}

function decode(signal: 'traces' | 'logs', body: Uint8Array) {
  return decodeOtlpRequest(signal, body, { defaults: true });
}

test('spans: our encoding decodes to exactly what the official serializer produced', () => {
  const batch = spans();
  const official = decode('traces', ProtobufTraceSerializer.serializeRequest(batch) as Uint8Array);
  const ours = decode('traces', encodeTracesRequest(batch));
  // Grouping first (its own message on failure), then everything.
  type RS = { resource: { attributes: Array<{ key: string }> }; scopeSpans: Array<{ scope: { name: string }; spans: Array<{ name: string }> }> };
  const shape = (r: Record<string, unknown>) => (r.resourceSpans as RS[]).map((rs) => rs.scopeSpans.map((ss) => `${ss.scope.name}:${ss.spans.map((s) => s.name).join(',')}`));
  assert.deepEqual(shape(ours), shape(official));
  assert.equal((official.resourceSpans as RS[]).length, 3); // res1, res2, the fixtures' resource
  assert.deepEqual(ours, official);
});

test('log records: our encoding decodes to exactly what the official serializer produced', () => {
  const batch = logs();
  const official = decode('logs', ProtobufLogsSerializer.serializeRequest(batch) as Uint8Array);
  const ours = decode('logs', encodeLogsRequest(batch));
  assert.equal((official.resourceLogs as unknown[]).length, 3);
  assert.deepEqual(ours, official);
});

test('one resource and scope (the fast path) and large batches decode the same as the official', () => {
  const batch = Array.from({ length: 600 }, (_, i) => makeSpan(i, { attrs: { 'url.full': `http://checkout:8080/items/${i}?q=${'x'.repeat(i % 300)}` } }));
  assert.deepEqual(decode('traces', encodeTracesRequest(batch)), decode('traces', ProtobufTraceSerializer.serializeRequest(batch) as Uint8Array));
  const lbatch = Array.from({ length: 600 }, (_, i) => makeLog(i));
  assert.deepEqual(decode('logs', encodeLogsRequest(lbatch)), decode('logs', ProtobufLogsSerializer.serializeRequest(lbatch) as Uint8Array));
});

const receivers: OtlpReceiver[] = [];
after(async () => {
  for (const r of receivers) await r.stop();
});

for (const protocol of ['grpc', 'http'] as const) {
  test(`${protocol}: partial success is not retried; the rejected items are counted as dropped{rejected}`, async () => {
    const r = await startReceiver({ protocol });
    receivers.push(r);
    const resolved = resolveExportConfig({ endpoint: r.url, protocol, compression: 'gzip', timeout_ms: 5000 }, {});
    const events: QueueEvent[] = [];
    const opts = { batchSize: 5, maxQueueBytes: 1 << 24, flushIntervalMs: 20, maxConcurrentExports: 1, retry: { maxAttempts: 5, initialBackoffMs: 10, maxBackoffMs: 20 }, onEvent: (e: QueueEvent) => events.push(e) };
    const tq = new BatchQueue<ReadableSpan>({ signal: 'traces', exporter: createOtlpTraceExporter(resolved.traces), estimateBytes: estimateSpanBytes, ...opts });
    const lq = new BatchQueue<ReadableLogRecord>({ signal: 'logs', exporter: createOtlpLogExporter(resolved.logs), estimateBytes: estimateLogBytes, ...opts });
    r.setMode({ kind: 'partial', rejected: 2, message: 'span too large' }, 1);
    for (let i = 0; i < 5; i++) tq.enqueue(makeSpan(i));
    await tq.forceFlush();
    r.setMode({ kind: 'partial', rejected: 1, message: 'bad body' }, 1);
    for (let i = 0; i < 5; i++) lq.enqueue(makeLog(i));
    await lq.forceFlush();
    assert.equal(r.attempts.length, 2, 'one request each, no retry');
    const tc = tq.counters();
    const lc = lq.counters();
    assert.deepEqual([tc.exported, tc.dropped_rejected, tc.retries], [3, 2, 0]);
    assert.deepEqual([lc.exported, lc.dropped_rejected, lc.retries], [4, 1, 0]);
    assert.equal(r.spans().length, 5);
    const errors = events.filter((e) => e.type === 'export_error').map((e) => (e as { error?: Error }).error?.message);
    assert.deepEqual(errors, ['partial success: 2 rejected: span too large', 'partial success: 1 rejected: bad body']);
    assert.match(renderExportMetrics({ traces: tq, logs: lq }), /telegen_export_dropped_total\{signal="traces",reason="rejected"\} 2\n/);
    await tq.shutdown(1000);
    await lq.shutdown(1000);
  });
}
