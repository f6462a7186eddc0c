// The file exporter's span JSON writer must stay byte-identical to the official OTLP/JSON trace
// serializer (what the Collector's otlpjsonfile receiver reads): same spans through both.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { TraceState } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { JsonTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { traceRequestJson } from '../../host/src/export/trace-json';
import { serializeTracesJson } from '../../host/src/export/file-exporter';
import { makeSpan, hex } from './fixtures';

const official = (spans: ReadableSpan[]) => Buffer.from(JsonTraceSerializer.serializeRequest(spans)!).toString('utf8');

/** Deterministic pseudo-random spans covering every field and value type the format has. */
function variedSpans(n: number): ReadableSpan[] {
  let seed = 7;
  const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x7fffffff; };
  const resources = [
    resourceFromAttributes({ 'service.name': 'a', 'process.pid': 12, 'host.arch': 'amd64' }),
    resourceFromAttributes({ 'service.name': 'b "quoted" \\ \u2028 é 日本', 'k8s.pod.uid': 'x' }, { schemaUrl: 'https://opentelemetry.io/schemas/1.30.0' }),
    resourceFromAttributes({}),
  ];
  const scopes = [{ name: 'telegen', version: '1.2.3' }, { name: 'other' }, { name: 'third', version: '', schemaUrl: 'https://s' }];
  const values: unknown[] = ['', 'plain', 'ctl\u0000\u001f\n\t"\\', 'lone \ud800 surrogate', 'emoji 😀', 0, -0, 42, -7, 2 ** 53 + 2, 1e21, 1.5, -0.25, NaN, Infinity,
    true, false, ['a', 'b'], [1, 2.5, true, 'x', null], [], new Uint8Array([0, 255, 7]), { nested: 'kv', n: 1 }, null, undefined];
  const out: ReadableSpan[] = [];
  for (let i = 0; i < n; i++) {
    const attrs: Record<string, unknown> = {};
    const k = Math.floor(rnd() * 12);
    for (let j = 0; j < k; j++) attrs[`attr.${j}${j === 3 ? '"q"' : ''}`] = values[Math.floor(rnd() * values.length)];
    const traceId = hex(Math.floor(rnd() * 2 ** 31), 16);
    const spanId = hex(Math.floor(rnd() * 2 ** 31), 8);
    const hasParent = rnd() < 0.6;
    const withState = rnd() < 0.3;
    const traceState = withState ? new TraceState('vendor=abc,other=1') : undefined;
    const start: [number, number] = [1_700_000_000 + i, Math.floor(rnd() * 1e9)];
    const end: [number, number] = rnd() < 0.1 ? [0, 5] : [start[0] + 1, Math.floor(rnd() * 1e9)];
    const status = rnd() < 0.3 ? { code: SpanStatusCode.ERROR, message: rnd() < 0.5 ? 'HTTP 503' : '' } : { code: rnd() < 0.5 ? SpanStatusCode.UNSET : SpanStatusCode.OK };
    out.push({
      name: i % 5 === 0 ? 'GET /é "x"' : `span ${i}`,
      kind: [SpanKind.INTERNAL, SpanKind.SERVER, SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER][i % 5],
      spanContext: () => ({ traceId, spanId, traceFlags: i % 2, ...(traceState ? { traceState } : {}) }),
      parentSpanContext: hasParent ? { traceId, spanId: i % 7 === 0 ? '' : hex(i + 1, 8), traceFlags: 1, isRemote: rnd() < 0.5 ? true : rnd() < 0.5 ? false : undefined } : undefined,
      startTime: start,
      endTime: end,
      duration: [1, 0],
      status,
      attributes: attrs as ReadableSpan['attributes'],
      links: rnd() < 0.3 ? [{ context: { traceId, spanId: hex(9, 8), traceFlags: 1, isRemote: true, traceState }, attributes: { l: 'x' } }, { context: { traceId, spanId: hex(10, 8), traceFlags: 0 }, droppedAttributesCount: 2 }] : [],
      events: rnd() < 0.3 ? [{ name: 'ev', time: [1_700_000_000, 1], attributes: { e: 1.25 } }, { name: 'bare', time: [1_700_000_001, 999_999_999], droppedAttributesCount: 1 }] : [],
      ended: true,
      resource: resources[i % resources.length],
      instrumentationScope: scopes[Math.floor(i / 3) % scopes.length],
      droppedAttributesCount: i % 4,
      droppedEventsCount: 0,
      droppedLinksCount: i % 3,
    });
  }
  return out;
}

test('trace JSON: byte-identical to the official serializer over every field and value type', () => {
  for (const spans of [variedSpans(300), variedSpans(1), [], [makeSpan(1), makeSpan(2, { status: 503, parent: hex(3, 8), attrs: { tags: ['a', 'b'] } })]]) {
    assert.equal(traceRequestJson(spans), official(spans));
  }
});

test('trace JSON: a resource reused across batches serializes the same each time', () => {
  const spans = variedSpans(30);
  const first = traceRequestJson(spans);
  assert.equal(traceRequestJson(spans), first);
  assert.equal(first, official(spans));
});

test('trace JSON: the file exporter writes it as UTF-8, one request per line', () => {
  const spans = variedSpans(50);
  const lines = serializeTracesJson(spans);
  assert.equal(lines.length, 1);
  assert.deepEqual(Buffer.from(lines[0]), Buffer.from(JsonTraceSerializer.serializeRequest(spans)!));
  assert.doesNotThrow(() => JSON.parse(Buffer.from(lines[0]).toString('utf8')));
});
