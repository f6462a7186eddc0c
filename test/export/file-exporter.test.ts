import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { BatchQueue, createFileLogExporter, createFileMetricExporter, createFileTraceExporter, createTraceExporter, estimateSpanBytes, resolveExportConfig } from '../../host/src/export';
import { decodeOtlpRequest, flattenLogs, flattenMetrics, flattenSpans } from '../helpers/otlp-receiver';
import { expectedFlatSpan, hex, makeLog, makeMetrics, makeSpan, RESOURCE_ATTRS, scope } from './fixtures';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { jsonPieces } from '../../host/src/export/file-exporter';
import { SpanKind, SpanStatusCode, type TraceState } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';

const dirs: string[] = [];
function tmpdir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-export-'));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const readLines = (f: string) => fs.readFileSync(f, 'utf8').split('\n').filter((l) => l !== '');

test('traces.jsonl: one OTLP/JSON ExportTraceServiceRequest per line with the exact span content', async () => {
  const dir = tmpdir();
  const exp = createTraceExporter(resolveExportConfig({}, {}), dir);
  assert.equal(exp.target, `file:${path.join(dir, 'traces.jsonl')}`);
  assert.deepEqual(await exp.export([makeSpan(1), makeSpan(2, { status: 503 })]), { code: 'success' });
  assert.deepEqual(await exp.export([makeSpan(3, { parent: '00000000000000aa' })]), { code: 'success' });
  await exp.shutdown();
  const lines = readLines(path.join(dir, 'traces.jsonl'));
  assert.equal(lines.length, 2);
  const first = JSON.parse(lines[0]);
  // Collector file-exporter shape: camelCase, hex ids, int64 as decimal strings, enums as numbers.
  assert.deepEqual(first.resourceSpans[0].resource.attributes, [
    { key: 'service.name', value: { stringValue: 'checkout' } },
    { key: 'host.name', value: { stringValue: 'node-1' } },
    { key: 'telegen.test', value: { boolValue: true } },
  ]);
  assert.deepEqual(first.resourceSpans[0].scopeSpans[0].scope, scope);
  const s1 = first.resourceSpans[0].scopeSpans[0].spans[0];
  assert.equal(s1.traceId, '000000000000000000000000abc00001');
  assert.equal(s1.spanId, '0000000000005501');
  assert.equal(s1.kind, 2);
  assert.equal(s1.startTimeUnixNano, '1700000001123456789');
  assert.equal(s1.endTimeUnixNano, '1700000001223456789');
  assert.deepEqual(s1.attributes, [
    { key: 'http.request.method', value: { stringValue: 'GET' } },
    { key: 'url.path', value: { stringValue: '/items/1' } },
    { key: 'http.response.status_code', value: { intValue: 200 } },
    { key: 'server.port', value: { intValue: 8080 } },
    { key: 'network.protocol.version', value: { stringValue: '1.1' } },
  ]);
  // Same content through the receiver's flat view (which reads the same OTLP field names).
  const flat = flattenSpans(first);
  assert.deepEqual(flat, [expectedFlatSpan(1), expectedFlatSpan(2, 503)]);
  const second = flattenSpans(JSON.parse(lines[1]));
  assert.equal(second[0].parentSpanId, '00000000000000aa');
  // The JSON line and the protobuf encoding carry the same request.
  const viaProto = flattenSpans(decodeOtlpRequest('traces', ProtobufTraceSerializer.serializeRequest([makeSpan(1), makeSpan(2, { status: 503 })])!));
  assert.deepEqual(viaProto.map((s) => ({ ...s })), flat.map((s) => ({ ...s })));
});

test('traces.jsonl lines are byte for byte what the official OTLP/JSON serializer writes', async () => {
  const dir = tmpdir();
  const exp = createFileTraceExporter(dir, { maxBytes: 1 << 30, keep: 0 });
  // A parent, an error status, non-ASCII attributes (multi-byte UTF-8).
  const batches = [
    [makeSpan(1), makeSpan(2, { status: 503 })],
    [makeSpan(3, { parent: '00000000000000aa' }), makeSpan(4, { attrs: { 'url.path': '/caf\u00e9/\u{1F600}', 'user_agent.original': ['a', 'b\u00e9'] } })],
  ];
  for (const b of batches) assert.deepEqual(await exp.export(b), { code: 'success' });
  await exp.shutdown();
  const want = Buffer.concat(batches.flatMap((b) => [Buffer.from(JsonTraceSerializer.serializeRequest(b)!), Buffer.from('\n')]));
  assert.ok(fs.readFileSync(path.join(dir, 'traces.jsonl')).equals(want));
});

/** Spans touching every part of the OTLP/JSON mapping: attribute values of every type (nested
 *  arrays and maps, bytes, doubles, negative and huge ints, NaN), events, links with trace state,
 *  remote parents, status variants, two resources (one with a schema URL) and scopes, strings
 *  with quotes, backslashes, control characters, non-ASCII, surrogate pairs and lone surrogates. */
function richSpans(): ReadableSpan[] {
  const odd = 'q"b\\s/\b\f\n\r\t\u0000\u0001\u001f\u007f caf\u00e9 \u4e2d \u{1F600} lone\ud800 \udc00end';
  const attrs = {
    s: odd, i: 42, neg: -7, big: 2 ** 60, d: 0.25, nan: NaN, t: true, f: false,
    arr: ['a', 1, 1.5, false, odd], nested: { k: 'v', deep: { n: [1, [2]] } }, bytes: new Uint8Array([0, 1, 254, 255]), empty: [], nul: null,
  } as unknown as Record<string, string>;
  const ts = { serialize: () => 'vendor=a,other=b' } as unknown as TraceState;
  const other = { ...resourceFromAttributes({ 'service.name': 'sv\u00e9c', 'x': odd }), attributes: { 'service.name': 'sv\u00e9c', 'x': odd }, schemaUrl: 'https://opentelemetry.io/schemas/1.26.0' } as unknown as ReadableSpan['resource'];
  const base = makeSpan(10, { attrs });
  const linked: ReadableSpan = {
    ...base,
    name: odd,
    kind: SpanKind.CLIENT,
    spanContext: () => ({ traceId: hex(0xfeed, 16), spanId: hex(0xbeef, 8), traceFlags: 0, traceState: ts }),
    parentSpanContext: { traceId: hex(0xfeed, 16), spanId: hex(0xcafe, 8), traceFlags: 1, isRemote: true },
    events: [
      { name: odd, time: [1_700_000_000, 5], attributes: attrs, droppedAttributesCount: 2 },
      { name: 'bare', time: [0, 999] },
    ],
    links: [
      { context: { traceId: hex(1, 16), spanId: hex(2, 8), traceFlags: 1, isRemote: true, traceState: ts }, attributes: attrs, droppedAttributesCount: 1 },
      { context: { traceId: hex(3, 16), spanId: hex(4, 8), traceFlags: 0 } },
    ],
    status: { code: SpanStatusCode.OK, message: odd },
    droppedAttributesCount: 3,
    droppedEventsCount: 4,
    droppedLinksCount: 5,
    resource: other,
    instrumentationScope: { name: 'other-scope', schemaUrl: 'https://example.com/s' },
  };
  const internal: ReadableSpan = { ...makeSpan(11), kind: SpanKind.INTERNAL, status: { code: SpanStatusCode.ERROR }, instrumentationScope: { name: 'telegen', version: '' } };
  return [base, linked, makeSpan(12, { status: 500 }), internal, { ...linked, name: 'second of other' }];
}

/** OTLP/JSON → the protobuf message by the official definitions (the JSON mapping with OTLP's
 *  hex trace and span ids), decoded back to a plain object for comparison. */
function viaOfficialJsonMapping(line: string): Record<string, unknown> {
  const idKeys = new Set(['traceId', 'spanId', 'parentSpanId']);
  const req = JSON.parse(line, function (k, v) {
    if (idKeys.has(k) && typeof v === 'string') return Buffer.from(v, 'hex');
    if (k === 'bytesValue') return Buffer.from(v as string, 'base64');
    if ((k === 'doubleValue' && v === null)) return NaN;
    return v as unknown;
  });
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const root = require('@opentelemetry/otlp-transformer/build/src/generated/root') as { opentelemetry: { proto: { collector: { trace: { v1: { ExportTraceServiceRequest: { fromObject(o: object): object; encode(m: object): { finish(): Uint8Array } } } } } } } };
  const T = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
  return decodeOtlpRequest('traces', T.encode(T.fromObject(req)).finish(), { defaults: true });
}

test('traces.jsonl from the spans themselves: the official serializer bytes, and the official protobuf definitions read the same request', async () => {
  const dir = tmpdir();
  const exp = createFileTraceExporter(dir, { maxBytes: 1 << 30, keep: 0 });
  const batches = [richSpans(), [makeSpan(20)], richSpans().reverse()];
  for (const b of batches) assert.deepEqual(await exp.export(b), { code: 'success' });
  await exp.shutdown();
  const lines = readLines(path.join(dir, 'traces.jsonl'));
  assert.equal(lines.length, batches.length);
  for (let i = 0; i < batches.length; i++) {
    assert.equal(lines[i], Buffer.from(JsonTraceSerializer.serializeRequest(batches[i])!).toString('utf8'), `line ${i}: the official JSON serializer's text`);
    // Field by field: the file line through the official JSON mapping against the official
    // protobuf encoder's request for the same spans (zero values filled in on both sides).
    const want = decodeOtlpRequest('traces', ProtobufTraceSerializer.serializeRequest(batches[i])!, { defaults: true });
    assert.deepEqual(viaOfficialJsonMapping(lines[i]), want, `line ${i}: same request as the protobuf encoder`);
  }
});

test('traces.jsonl: attribute values repeated, changed and alternating from span to span (the writer keeps a repeated value\'s bytes) are still the official serializer bytes', async () => {
  const dir = tmpdir();
  const exp = createFileTraceExporter(dir, { maxBytes: 1 << 30, keep: 0 });
  const longKey = `x.${'k'.repeat(300)}`;
  const shared = ['a', 'b'];
  const values: Array<Record<string, unknown>> = [
    { 'http.request.method': 'GET', 'server.port': 8080, ok: true, arr: shared, [longKey]: 'v', z: 0, nested: { 'http.request.method': 'GET' } },
    { 'http.request.method': 'GET', 'server.port': 8080, ok: true, arr: shared, [longKey]: 'v', z: -0, nested: { 'http.request.method': 'GET' } },
    { 'http.request.method': 'GET', 'server.port': 8080, ok: true, arr: shared, [longKey]: 'v', z: 0, nested: { 'http.request.method': 'POST' } },
    // The same keys in another order (the first one written without a comma), changed values and types.
    { 'server.port': 8080, 'http.request.method': 'POST', ok: false, z: '0', arr: ['a', 'b'] },
    { 'server.port': '8080', 'http.request.method': 'POST', ok: false, z: 0.5, arr: shared },
    { 'http.request.method': 'GET', 'server.port': 8080, ok: true, z: NaN, 'caf\u00e9 "q"': 'caf\u00e9 \u{1F600}' },
    { 'caf\u00e9 "q"': 'caf\u00e9 \u{1F600}', 'http.request.method': 'GET', 'server.port': 8080, ok: true, z: NaN },
    { 'caf\u00e9 "q"': 'caf\u00e9 \u{1F600}', 'http.request.method': 'G\nET', 'server.port': 2 ** 60, ok: true, z: -1 },
  ];
  // Without events, with no status message and no drops (the agent's usual span, whose tail the
  // writer copies as one piece), and beside it the near misses that take the general path.
  const plain = (i: number, a: Record<string, unknown>): ReadableSpan => ({ ...makeSpan(i, { attrs: a as Record<string, string> }), events: [], droppedLinksCount: 0 });
  const nearMisses: ReadableSpan[] = [
    { ...plain(50, values[0]), status: { code: SpanStatusCode.UNSET, message: '' } },
    { ...plain(51, values[0]), droppedLinksCount: undefined as unknown as number },
    { ...plain(52, values[0]), droppedAttributesCount: 1 },
    { ...plain(53, values[0]), status: { code: SpanStatusCode.OK } },
  ];
  const batches = [
    values.map((a, i) => makeSpan(30 + i, { attrs: a as Record<string, string> })),
    values.map((a, i) => makeSpan(40 + i, { attrs: a as Record<string, string> })).reverse(),
    [...values.map((a, i) => plain(60 + i, a)), ...nearMisses],
  ];
  for (const b of batches) assert.deepEqual(await exp.export(b), { code: 'success' });
  await exp.shutdown();
  const lines = readLines(path.join(dir, 'traces.jsonl'));
  assert.equal(lines.length, batches.length);
  for (let i = 0; i < batches.length; i++) assert.equal(lines[i], Buffer.from(JsonTraceSerializer.serializeRequest(batches[i])!).toString('utf8'), `line ${i}`);
});

test('traces.jsonl: one-string header lists repeated, changed, retyped, and span times in one second or across seconds (the writer keeps their bytes) are still the official serializer bytes', async () => {
  const dir = tmpdir();
  const exp = createFileTraceExporter(dir, { maxBytes: 1 << 30, keep: 0 });
  const ct = 'http.response.header.content-type';
  // Each list is a fresh array, as the decoder makes one per record.
  const lists: Array<Record<string, unknown>> = [
    { [ct]: ['application/json'] },
    { [ct]: ['application/json'] },
    { [ct]: ['application/json'] },
    { [ct]: 'application/json' },
    { [ct]: ['application/json'] },
    { [ct]: ['application/json', 'text/plain'] },
    { [ct]: ['application/json'] },
    { [ct]: ['text/html; charset=\u00e9"'] },
    { [ct]: ['text/html; charset=\u00e9"'] },
    { [ct]: [''] },
    { [ct]: [] },
    { [ct]: ['application/json'] },
  ];
  // Times: the same second with nanoseconds that need leading zeros, then other seconds and back.
  const times: Array<[number, number]> = [[1_700_000_000, 5], [1_700_000_000, 999_999_999], [1_700_000_000, 0], [1_700_000_001, 10_000_000],
    [9, 120], [1_700_000_000, 100_000_000], [1_700_000_000, 1], [2 ** 40, 7], [1_700_000_000, 99], [1_700_000_000, 123_456_789], [1_700_000_000, 990_000_000], [1_700_000_000, 50]];
  const batch = lists.map((a, i) => ({ ...makeSpan(70 + i, { attrs: a as Record<string, string[]> }), startTime: times[i], endTime: times[(i + 3) % times.length] }));
  for (const b of [batch, [...batch].reverse()]) assert.deepEqual(await exp.export(b), { code: 'success' });
  await exp.shutdown();
  const lines = readLines(path.join(dir, 'traces.jsonl'));
  assert.equal(lines.length, 2);
  assert.equal(lines[0], Buffer.from(JsonTraceSerializer.serializeRequest(batch)!).toString('utf8'));
  assert.equal(lines[1], Buffer.from(JsonTraceSerializer.serializeRequest([...batch].reverse())!).toString('utf8'));
});

test('jsonPieces joined is JSON.stringify at every depth (omitted values, nulls, empty containers, toJSON)', () => {
  const v = { a: [1, undefined, () => 0, null, { b: 'x"\n', c: undefined }], e: {}, f: [], g: new Date(0), h: { i: [[{ j: 'é' }]] }, k: NaN };
  for (let d = 0; d <= 6; d++) assert.equal(jsonPieces(v, d, []).join(''), JSON.stringify(v), `depth ${d}`);
});

test('metrics.jsonl and logs.jsonl hold OTLP/JSON requests', async () => {
  const dir = tmpdir();
  const r = { maxBytes: 1 << 20, keep: 2 };
  const m = createFileMetricExporter(dir, r);
  assert.equal((await m.export([makeMetrics(7), makeMetrics(9)])).code, 'success');
  await m.shutdown();
  const ml = readLines(path.join(dir, 'metrics.jsonl'));
  assert.equal(ml.length, 2);
  const fm = flattenMetrics(JSON.parse(ml[1]));
  assert.equal(fm[0].name, 'http.server.request.count');
  assert.equal(fm[0].type, 'sum');
  assert.deepEqual(fm[0].dataPoints[0].attributes, { 'http.request.method': 'GET' });
  assert.equal(Number(fm[0].dataPoints[0].asInt), 9);
  assert.deepEqual(fm[0].resource, RESOURCE_ATTRS);

  const l = createFileLogExporter(dir, r);
  assert.equal((await l.export([makeLog(1), makeLog(2)])).code, 'success');
  await l.shutdown();
  const ll = readLines(path.join(dir, 'logs.jsonl'));
  assert.equal(ll.length, 1);
  const fl = flattenLogs(JSON.parse(ll[0]));
  assert.equal(fl.length, 2);
  assert.equal(fl[1].body, 'connection reset 2');
  assert.equal(fl[1].severityNumber, 17);
  assert.equal(fl[1].severityText, 'ERROR');
  assert.equal(fl[1].eventName, 'telegen.agent.event');
  assert.deepEqual(fl[1].attributes, { 'process.pid': 1002, 'process.executable.name': 'nginx' });
  assert.equal(fl[1].traceId, '000000000000000000000000abc00002');
});

test('size-based rotation keeps N files and only whole lines', async () => {
  const dir = tmpdir();
  const exp = createFileTraceExporter(dir, { maxBytes: 4096, keep: 2 });
  const lineLen = Buffer.byteLength(new TextDecoder().decode(ProtobufTraceSerializer.serializeRequest([makeSpan(0)])!)); // sanity only
  assert.ok(lineLen > 0);
  for (let i = 0; i < 40; i++) assert.equal((await exp.export([makeSpan(i)])).code, 'success');
  await exp.shutdown();
  const files = fs.readdirSync(dir).sort();
  assert.deepEqual(files, ['traces.jsonl', 'traces.jsonl.1', 'traces.jsonl.2']);
  for (const f of files) {
    assert.ok(fs.statSync(path.join(dir, f)).size <= 4096, `${f} exceeds max_bytes`);
    for (const line of readLines(path.join(dir, f))) assert.equal(flattenSpans(JSON.parse(line)).length, 1);
  }
  // Newest data in traces.jsonl, older in .1, then .2; the oldest were deleted.
  const last = flattenSpans(JSON.parse(readLines(path.join(dir, 'traces.jsonl')).at(-1)!))[0];
  assert.equal(last.name, 'GET /items/39');
  const n = files.reduce((a, f) => a + readLines(path.join(dir, f)).length, 0);
  assert.ok(n < 40 && n > 3);
  assert.ok(exp.counters().rotations >= 2);
});

test('ENOSPC is a counted failure, never a throw; writing resumes after', async () => {
  const dir = tmpdir();
  // /dev/full accepts open() and fails every write with ENOSPC.
  fs.symlinkSync('/dev/full', path.join(dir, 'traces.jsonl'));
  const exp = createFileTraceExporter(dir, { maxBytes: 1 << 20, keep: 1 });
  const r = await exp.export([makeSpan(1)]);
  assert.equal(r.code, 'failure');
  assert.equal((r.error as NodeJS.ErrnoException).code, 'ENOSPC');
  assert.equal(exp.counters().write_errors, 1);

  // Through a queue: the batch is counted as dropped{export_failed}, the producer never sees an error.
  const q = new BatchQueue({ signal: 'traces', exporter: exp, estimateBytes: estimateSpanBytes, batchSize: 2, maxQueueBytes: 1 << 20, flushIntervalMs: 0 });
  for (let i = 0; i < 4; i++) assert.equal(q.enqueue(makeSpan(i)), true);
  await q.forceFlush();
  assert.equal(q.counters().dropped_export_failed, 4);
  assert.equal(exp.counters().write_errors, 3);

  // Disk "fixed": the next export writes a whole line.
  fs.unlinkSync(path.join(dir, 'traces.jsonl'));
  assert.equal((await exp.export([makeSpan(9)])).code, 'success');
  await exp.shutdown();
  assert.equal(readLines(path.join(dir, 'traces.jsonl')).length, 1);
  await q.shutdown(100);
});

test('unwritable directory: failure result, no crash', async () => {
  const dir = tmpdir();
  const blocker = path.join(dir, 'not-a-dir');
  fs.writeFileSync(blocker, 'x');
  const exp = createFileTraceExporter(blocker, { maxBytes: 1 << 20, keep: 1 });
  const r = await exp.export([makeSpan(1)]);
  assert.equal(r.code, 'failure');
  assert.match(String((r.error as NodeJS.ErrnoException).code), /ENOTDIR|EEXIST/);
  await exp.shutdown();
});

test('concurrent exports never interleave lines', async () => {
  const dir = tmpdir();
  const exp = createFileTraceExporter(dir, { maxBytes: 1 << 20, keep: 1 });
  const results = await Promise.all(Array.from({ length: 50 }, (_, i) => exp.export([makeSpan(i), makeSpan(i + 1000)])));
  assert.ok(results.every((r) => r.code === 'success'));
  await exp.shutdown();
  const lines = readLines(path.join(dir, 'traces.jsonl'));
  assert.equal(lines.length, 50);
  const names = lines.flatMap((l) => flattenSpans(JSON.parse(l)).map((s) => s.name));
  assert.equal(new Set(names).size, 100);
  assert.deepEqual((await exp.export([makeSpan(1)])).code, 'failure'); // after shutdown
});

test('traces.jsonl: a write slower than the export watchdog lands once, not twice', async () => {
  // traces.jsonl is a FIFO nobody reads yet: the first batch's open() waits until a reader comes,
  // well past the watchdog a network exporter gets (2 × timeout + 5 s). A resend would write it twice.
  const dir = tmpdir();
  const file = path.join(dir, 'traces.jsonl');
  execFileSync('mkfifo', [file]);
  const { createExportQueues, shutdownExportQueues } = await import('../../host/src/export');
  const resolved = resolveExportConfig({ timeout_ms: 1, traces: { batch_size: 2 } }, {});
  const queues = createExportQueues({ ...resolved, metrics: { ...resolved.metrics, enabled: false }, logs: { ...resolved.logs, enabled: false }, profiles: { ...resolved.profiles, enabled: false } }, dir);
  queues.traces!.enqueue(makeSpan(1));
  queues.traces!.enqueue(makeSpan(2));
  await new Promise((r) => setTimeout(r, 8000));
  const reader = spawn('cat', [file], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  reader.stdout!.on('data', (d) => { out += String(d); });
  await shutdownExportQueues(queues, 10_000);
  await new Promise((r) => reader.once('exit', r));
  const c = queues.traces!.counters();
  assert.equal(c.unconfirmed_resent, 0);
  assert.equal(c.exported, 2);
  const spans = out.split('\n').filter((l) => l).flatMap((l) => JSON.parse(l).resourceSpans[0].scopeSpans[0].spans);
  assert.equal(spans.length, 2, 'each span written once');
});
