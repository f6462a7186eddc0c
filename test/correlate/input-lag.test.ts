// Deadlines of held spans count input, not wall time: a server span waits for its client span
// while the client's record is still in the ring (read behind a backlog, or the ring paused by
// the overload gate), which test/tls/write-stamp "HTTPS under load" hit in 4 of 18 runs: both
// spans roots. Manual clock, spans built as in correlator.test.ts.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { randomBytes } from 'crypto';
import { SpanKind } from '@opentelemetry/api';
import { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { Correlator, SpanConn, DEFAULT_CORRELATE } from '../../host/src/correlate/correlator';

const T0 = 1_700_000_000_000; // ms
function span(name: string, kind: SpanKind, startMs: number, endMs: number): ReadableSpan {
  const ctx = { traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex'), traceFlags: 1 };
  const hr = (ms: number): [number, number] => [Math.floor((T0 + ms) / 1000), Math.round(((T0 + ms) % 1000) * 1e6)];
  return {
    name, kind, spanContext: () => ctx, parentSpanContext: undefined,
    startTime: hr(startMs), endTime: hr(endMs), duration: hr(endMs - startMs - T0),
    status: { code: 0 }, attributes: {}, links: [], events: [], ended: true,
    resource: resourceFromAttributes({ 'service.name': name }),
    instrumentationScope: { name: 't' }, droppedAttributesCount: 0, droppedEventsCount: 0, droppedLinksCount: 0,
  };
}

function harness() {
  let now = T0 + 10_000;
  const out: ReadableSpan[] = [];
  const c = new Correlator(DEFAULT_CORRELATE, (s) => out.push(s), () => now);
  const by = (name: string) => { const s = out.find((x) => x.name === name); assert.ok(s, `${name} emitted`); return s!; };
  return { c, out, by, advance: (ms: number) => { for (let d = 0; d < ms; d += 100) { now += Math.min(100, ms - d); c.tick(); } } };
}

const TUPLE = '127.0.0.1|40000|127.0.0.1|8443';
const server: SpanConn = { pid: 2, tid: 2, tuple: TUPLE, peerLocal: true };
const client: SpanConn = { pid: 1, tid: 1, tuple: TUPLE };
/** A span of another connection, decided at once (remote peer): input read, nothing held. */
const other = (i: number, endMs: number): [ReadableSpan, SpanConn] =>
  [span(`other ${i}`, SpanKind.SERVER, endMs - 1, endMs), { pid: 5, tid: 5, tuple: `10.0.0.9|${i}|10.0.0.1|80`, peerLocal: false }];

test('behind a backlog: the server span waits past 500 ms of wall time for a client span its input has not reached yet', () => {
  const h = harness();
  h.c.add(span('GET /s', SpanKind.SERVER, 100, 110), server);
  // 900 ms of wall time reading spans that ended within 100 ms after it: the input is behind.
  for (let i = 0; i < 9; i++) { h.c.add(...other(i, 111 + 10 * i)); h.advance(100); }
  h.c.add(span('GET', SpanKind.CLIENT, 95, 120), client);
  h.advance(DEFAULT_CORRELATE.windowMs + 100);
  assert.equal(h.by('GET /s').attributes['telegen.correlation'], 'socket');
  assert.equal(h.by('GET /s').parentSpanContext?.spanId, h.by('GET').spanContext().spanId);
});

test('the input moving 500 ms of span time past a server span without its client decides it a root, however fast it was read', () => {
  const h = harness();
  h.c.add(span('GET /s', SpanKind.SERVER, 100, 110), server);
  for (let i = 0; i < 7; i++) { h.c.add(...other(i, 400)); h.advance(100); }
  assert.equal(h.out.filter((s) => s.name === 'GET /s').length, 0, 'the input is at 400 ms: held');
  h.c.add(...other(7, 611));
  h.advance(100);
  assert.equal(h.by('GET /s').attributes['telegen.correlation'], 'root');
});

test('a paused input: the server span waits out the pause for its client span, then links', () => {
  const h = harness();
  h.c.add(span('GET /s', SpanKind.SERVER, 100, 110), server);
  h.c.inputPaused(true);
  h.advance(3000);
  assert.equal(h.out.length, 0, 'nothing decided while the ring is not read');
  h.c.inputPaused(false);
  h.c.add(span('GET', SpanKind.CLIENT, 95, 120), client);
  h.advance(DEFAULT_CORRELATE.windowMs + 100);
  assert.equal(h.by('GET /s').parentSpanContext?.spanId, h.by('GET').spanContext().spanId);
  // After the pause, an idle input decides as before: socketSlackMs after the last span read.
  h.c.add(span('lonely', SpanKind.SERVER, 5000, 5001), server);
  h.advance(DEFAULT_CORRELATE.socketSlackMs + 100);
  assert.equal(h.by('lonely').attributes['telegen.correlation'], 'root');
});

test('held at most the lookups\' horizon when spans keep coming that never move the input past it', () => {
  const h = harness();
  h.c.add(span('GET /s', SpanKind.SERVER, 100, 110), server);
  let i = 0;
  while (!h.out.some((s) => s.name === 'GET /s') && i < 200) { h.c.add(...other(i, 111)); h.advance(100); i++; }
  const keep = Math.max(DEFAULT_CORRELATE.windowMs, DEFAULT_CORRELATE.socketSlackMs) * 4;
  assert.equal(h.by('GET /s').attributes['telegen.correlation'], 'root');
  assert.ok(i * 100 >= DEFAULT_CORRELATE.socketSlackMs + keep && i * 100 <= DEFAULT_CORRELATE.socketSlackMs + keep + 200, `decided after ${i * 100} ms`);
});
