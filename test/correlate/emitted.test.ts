// The correlator keeps emitted SERVER spans for 6 s (log lines and late CLIENT spans look them up):
// as columns per pid (host/src/correlate/emitted.ts), not as Node objects holding their contexts.
// These check that the lookups still find what they found, and that nothing of the span is held.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as v8 from 'v8';
import * as vm from 'vm';
import { randomBytes } from 'crypto';
import { SpanKind, SpanContext, TraceFlags } from '@opentelemetry/api';
import { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { Correlator, DEFAULT_CORRELATE } from '../../host/src/correlate/correlator';
import { PipelineSpan } from '../../host/src/pipeline/spans';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const T0 = 1_700_000_000_000; // ms
const RES = resourceFromAttributes({ 'service.name': 'api' });
const hr = (ms: number): [number, number] => [Math.floor((T0 + ms) / 1000), Math.round(((T0 + ms) % 1000) * 1e6)];
/** A span as the pipeline builds it (PipelineSpan: a root keeps its own context object). */
function span(name: string, kind: SpanKind, startMs: number, endMs: number, parent?: SpanContext): PipelineSpan {
  const ctx = { traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex'), traceFlags: 1 };
  return new PipelineSpan(name, kind, ctx, parent, hr(startMs), hr(endMs), [0, Math.round((endMs - startMs) * 1e6)], { code: 0 }, {}, RES);
}
const epochNs = (ms: number) => BigInt(Math.round((T0 + ms) * 1e6));

function harness() {
  let now = T0 + 10_000;
  const out: ReadableSpan[] = [];
  const c = new Correlator(DEFAULT_CORRELATE, (s) => out.push(s), () => now);
  const by = (name: string) => { const s = out.find((x) => x.name === name); assert.ok(s, `${name} emitted`); return s!; };
  return { c, out, by, advance: (ms: number) => { for (let t = 0; t < ms; t += 100) { now += 100; c.tick(); } } };
}

test('an emitted server span is found 5 s after its end: by a log line, and by a client span of a process that opened its first client connection since', () => {
  const h = harness();
  // A server that has made no call (server scope: its client would be untraced): each request
  // span goes out at once. 400 requests on 4 threads, 3 ms each, back to back per thread.
  h.c.peerMayBeTraced = () => false;
  h.c.mayServe = () => true;
  for (let i = 0; i < 400; i++) {
    const t = 9_600 + Math.floor(i / 4) * 4;
    h.c.add(span(`GET /${i}`, SpanKind.SERVER, t, t + 3), { pid: 10, tid: 100 + (i % 4), tuple: `127.0.0.1|${40000 + (i % 4)}|127.0.0.1|8080`, peerLocal: true, connId: BigInt(i % 4) });
  }
  assert.equal(h.out.length, 400, 'emitted without a tick');
  assert.deepEqual(h.c.retained, { lookupNodes: 0, emittedServers: 400 }, 'kept as columns, no Node object');
  // 3 s later the process opens its first client connection: a call made on thread 101 during
  // request 201 (t 9_800..9_803) arrives and waits for the window; it becomes that request's
  // child (thread), and a Go-style call tied to connection 3 at 9_802 becomes request 203's
  // (goroutine: four requests were in flight, so time alone could not tell).
  h.advance(3_000);
  h.c.add(span('SELECT', SpanKind.CLIENT, 9_801, 9_802), { pid: 10, tid: 101, tuple: '127.0.0.1|50000|127.0.0.1|5432' });
  h.c.add(span('GET upstream', SpanKind.CLIENT, 9_801.5, 9_802.5), { pid: 10, tid: 999, tuple: '127.0.0.1|50001|127.0.0.1|9000', goParent: { connId: 3n, at: epochNs(9_802) } });
  h.advance(DEFAULT_CORRELATE.windowMs + 100);
  const sel = h.by('SELECT'), p = h.by('GET /201').spanContext();
  assert.equal(sel.parentSpanContext?.spanId, p.spanId);
  assert.equal(sel.spanContext().traceId, p.traceId);
  assert.equal(sel.attributes['telegen.correlation'], 'thread');
  const up = h.by('GET upstream'), q = h.by('GET /203').spanContext();
  assert.equal(up.parentSpanContext?.spanId, q.spanId);
  assert.equal(up.spanContext().traceId, q.traceId);
  assert.equal(up.attributes['telegen.correlation'], 'goroutine');
  // 5 s after: a log line written on thread 102 during request 202 is read now.
  h.advance(400);
  assert.equal(h.c.retained.emittedServers, 400, 'still kept 5 s later');
  const r = h.by('GET /202').spanContext();
  assert.deepEqual(h.c.logLink(10, 102, epochNs(9_801.5)), { traceId: r.traceId, spanId: r.spanId });
  assert.deepEqual(h.c.logContext(10, 102, epochNs(9_801.5)), { traceId: r.traceId, spanId: r.spanId });
  // Without a thread, four requests were in flight: no guess.
  assert.equal(h.c.logLink(10, undefined, epochNs(9_801.5)), undefined);
  assert.equal(h.c.logLink(10, 102, epochNs(9_803.5)), undefined, 'between two requests');
  assert.deepEqual([...h.c.serverPids()], [10]);
  // Past the retention (max(windowMs, socketSlackMs) x 4 after the end) they are gone.
  h.advance(2_000);
  assert.equal(h.c.retained.emittedServers, 0);
  assert.equal(h.c.logLink(10, 102, epochNs(9_504)), undefined);
  assert.deepEqual([...h.c.serverPids()], []);
});

test('a header context with tracestate or a b3 64-bit trace id is given back as it was', () => {
  const h = harness();
  const withState: SpanContext = { traceId: 'ab'.repeat(16), spanId: 'cd'.repeat(8), traceFlags: TraceFlags.SAMPLED, isRemote: true,
    traceState: { get: () => 'x', set() { return this; }, unset() { return this; }, serialize: () => 'vendor=x' } };
  h.c.add(span('srv', SpanKind.SERVER, 9_000, 9_100, withState), { pid: 11, tid: 1 });
  // b3 single header with a 64-bit trace id, as spans.ts pads it, and an unsampled flag.
  const b3: SpanContext = { traceId: '0'.repeat(16) + 'A1B2C3D4E5F60718', spanId: '1122334455667788', traceFlags: TraceFlags.NONE, isRemote: true };
  h.c.add(span('srv-b3', SpanKind.SERVER, 9_200, 9_300, b3), { pid: 11, tid: 1 });
  h.c.add(span('db', SpanKind.CLIENT, 9_010, 9_020), { pid: 11, tid: 1 });
  h.c.add(span('db-b3', SpanKind.CLIENT, 9_210, 9_220), { pid: 11, tid: 1 });
  h.advance(DEFAULT_CORRELATE.windowMs + 100);
  const srv = h.by('srv').spanContext(), db = h.by('db').spanContext();
  assert.equal(db.traceId, withState.traceId);
  assert.equal(db.traceState?.serialize(), 'vendor=x');
  assert.equal(h.by('db').parentSpanContext?.spanId, srv.spanId);
  assert.deepEqual(h.c.logLink(11, 1, epochNs(9_050)), { traceId: srv.traceId, spanId: srv.spanId });
  const s2 = h.by('srv-b3').spanContext();
  assert.equal(h.by('db-b3').spanContext().traceId, b3.traceId);
  assert.equal(h.by('db-b3').spanContext().traceFlags, TraceFlags.NONE);
  assert.deepEqual(h.c.logLink(11, 1, epochNs(9_250)), { traceId: s2.traceId, spanId: s2.spanId });
});

test('the correlator holds nothing of an emitted server span while it keeps it for lookups', async () => {
  const h = harness();
  h.c.peerMayBeTraced = () => false;
  // Spans made in a function of their own: none stays in this async function's frame.
  const refs = ((): Array<WeakRef<object>> => {
    const r: Array<WeakRef<object>> = [];
    for (let i = 0; i < 200; i++) {
      const s = span(`GET /${i}`, SpanKind.SERVER, 9_000 + i, 9_000 + i + 0.5);
      // A root keeps its own context object; the old correlator kept it (with its id strings) in
      // its Node for the 6 s.
      r.push(new WeakRef(s.spanContext()));
      h.c.add(s, { pid: 12, tid: 12, tuple: `127.0.0.1|${40000 + i}|127.0.0.1|8080`, peerLocal: true });
    }
    return r;
  })();
  // The exporter is done with the spans (the harness's output list let go of).
  const ids = h.out.map((s) => s.spanContext().spanId);
  h.out.length = 0;
  h.advance(100);
  await new Promise((r) => setImmediate(r));
  gc();
  assert.deepEqual(refs.flatMap((r, i) => r.deref() ? [i] : []), [], 'no span context held');
  assert.equal(h.c.retained.lookupNodes, 0);
  assert.equal(h.c.logContext(12, 12, epochNs(9_150.25))?.spanId, ids[150], 'still found');
});
