// Pure tests of the correlation rules: spans built like the pipeline builds them, fed in the order
// the kernel delivers them (children end first), with a manual clock.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { randomBytes } from 'crypto';
import { SpanKind, SpanContext } from '@opentelemetry/api';
import { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { Correlator, SpanConn, DEFAULT_CORRELATE } from '../../host/src/correlate/correlator';
import { Analytics } from '../../host/src/analytics';
import { GoLinks } from '../../host/src/gotrace/links';

const T0 = 1_700_000_000_000; // ms
function span(name: string, kind: SpanKind, startMs: number, endMs: number, opts: { parent?: SpanContext; service?: string; attrs?: Record<string, string | number> } = {}): ReadableSpan {
  const ctx = { traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex'), traceFlags: 1 };
  const toHr = (ms: number): [number, number] => [Math.floor((T0 + ms) / 1000), Math.round(((T0 + ms) % 1000) * 1e6)];
  return {
    name, kind, spanContext: () => ctx, parentSpanContext: opts.parent,
    startTime: toHr(startMs), endTime: toHr(endMs), duration: [Math.floor((endMs - startMs) / 1000), Math.round(((endMs - startMs) % 1000) * 1e6)],
    status: { code: 0 }, attributes: { ...(opts.attrs ?? {}) }, links: [], events: [], ended: true,
    resource: resourceFromAttributes({ 'service.name': opts.service ?? 'svc' }),
    instrumentationScope: { name: 't' }, droppedAttributesCount: 0, droppedEventsCount: 0, droppedLinksCount: 0,
  };
}

function harness(cfg = DEFAULT_CORRELATE) {
  let now = T0 + 10_000;
  const out: ReadableSpan[] = [];
  const c = new Correlator(cfg, (s) => out.push(s), () => now);
  const by = (name: string) => { const s = out.find((x) => x.name === name); assert.ok(s, `${name} emitted`); return s!; };
  return { c, out, by, advance: (ms: number) => { now += ms; c.tick(); } };
}
const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;
const id = (s: ReadableSpan) => s.spanContext().spanId;
const corr = (s: ReadableSpan) => s.attributes['telegen.correlation'];

test('thread-per-request: concurrent requests on two threads each get their own client call (exact)', () => {
  const h = harness();
  const conn = (tid: number, tuple?: string): SpanConn => ({ pid: 10, tid, tuple });
  // Two overlapping requests on threads 11 and 12; each makes a DB call; DB calls end first.
  h.c.add(span('db-a', SpanKind.CLIENT, 2, 5), conn(11, 'a|1|db|5432'));
  h.c.add(span('db-b', SpanKind.CLIENT, 3, 6), conn(12, 'a|2|db|5432'));
  h.c.add(span('GET /a', SpanKind.SERVER, 1, 8), conn(11));
  h.c.add(span('GET /b', SpanKind.SERVER, 1, 9), conn(12));
  assert.equal(h.out.length, 2, 'servers are roots and go out at once; clients wait for the window');
  h.advance(DEFAULT_CORRELATE.windowMs + 1);
  assert.equal(parentOf(h.by('db-a')), id(h.by('GET /a')));
  assert.equal(parentOf(h.by('db-b')), id(h.by('GET /b')));
  assert.equal(h.by('db-a').spanContext().traceId, h.by('GET /a').spanContext().traceId);
  assert.equal(corr(h.by('db-a')), 'thread');
  // Parents are always emitted before their children.
  assert.ok(h.out.indexOf(h.by('GET /a')) < h.out.indexOf(h.by('db-a')));
});

test('event loop: one request in flight → child (time); two in flight on one thread → ambiguous root', () => {
  const h = harness();
  const c = { pid: 20, tid: 20 };
  h.c.add(span('q1', SpanKind.CLIENT, 2, 3), c);
  h.c.add(span('GET /one', SpanKind.SERVER, 1, 4), c);
  // Two concurrent requests on the event loop thread; the call inside them cannot be attributed.
  h.c.add(span('q2', SpanKind.CLIENT, 12, 13), c);
  h.c.add(span('GET /x', SpanKind.SERVER, 10, 15), c);
  h.c.add(span('GET /y', SpanKind.SERVER, 11, 16), c);
  h.advance(DEFAULT_CORRELATE.windowMs + 1);
  assert.equal(parentOf(h.by('q1')), id(h.by('GET /one')));
  assert.equal(parentOf(h.by('q2')), undefined);
  assert.equal(corr(h.by('q2')), 'ambiguous');
  assert.notEqual(h.by('q2').spanContext().traceId, h.by('GET /x').spanContext().traceId);
});

test('event loop: a client call outside any request stays a root; other pids never adopt it', () => {
  const h = harness();
  h.c.add(span('bg', SpanKind.CLIENT, 50, 60), { pid: 30, tid: 30 });
  h.c.add(span('GET /other', SpanKind.SERVER, 40, 70), { pid: 31, tid: 31 });
  h.advance(DEFAULT_CORRELATE.windowMs + 1);
  assert.equal(parentOf(h.by('bg')), undefined);
  assert.equal(corr(h.by('bg')), 'root');
});

test('across processes: the server span of the same 4-tuple becomes the client span\'s child, and the chain shares one trace', () => {
  const h = harness();
  const tuple = '127.0.0.1|40000|127.0.0.1|8080';
  // Kernel order: DB call of the backend, backend server, frontend client, frontend server.
  h.c.add(span('SELECT', SpanKind.CLIENT, 4, 6, { service: 'backend' }), { pid: 2, tid: 2, tuple: '127.0.0.1|40001|127.0.0.1|5432' });
  h.c.add(span('GET /api', SpanKind.SERVER, 3, 7, { service: 'backend' }), { pid: 2, tid: 2, tuple, peerLocal: true });
  h.c.add(span('GET', SpanKind.CLIENT, 2, 8, { service: 'frontend' }), { pid: 1, tid: 5, tuple });
  h.c.add(span('GET /', SpanKind.SERVER, 1, 9, { service: 'frontend' }), { pid: 1, tid: 5, tuple: '127.0.0.1|39999|127.0.0.1|8000' });
  h.advance(DEFAULT_CORRELATE.windowMs + 1);
  assert.equal(h.out.length, 4);
  const root = h.by('GET /');
  assert.equal(parentOf(root), undefined);
  assert.equal(parentOf(h.by('GET')), id(root));
  assert.equal(parentOf(h.by('GET /api')), id(h.by('GET')));
  assert.equal(corr(h.by('GET /api')), 'socket');
  assert.equal(parentOf(h.by('SELECT')), id(h.by('GET /api')));
  assert.equal(new Set(h.out.map((s) => s.spanContext().traceId)).size, 1, 'one trace');
  const order = h.out.map((s) => s.name);
  assert.ok(order.indexOf('GET /') < order.indexOf('GET') && order.indexOf('GET') < order.indexOf('GET /api') && order.indexOf('GET /api') < order.indexOf('SELECT'));
});

test('a server span waits for a client span that arrives after it, then roots itself when none comes', () => {
  const h = harness();
  h.c.add(span('lonely', SpanKind.SERVER, 1, 2), { pid: 3, tid: 3, tuple: '127.0.0.1|1|127.0.0.1|2', peerLocal: true });
  assert.equal(h.out.length, 0);
  h.advance(DEFAULT_CORRELATE.socketSlackMs + 1);
  assert.equal(corr(h.by('lonely')), 'root');
  // A remote peer cannot be a traced process on this node: no wait.
  h.c.add(span('remote', SpanKind.SERVER, 1, 2), { pid: 3, tid: 3, tuple: '10.9.9.9|1|10.0.0.1|2', peerLocal: false });
  assert.equal(corr(h.by('remote')), 'root');
});

test('tracing one process (target_pid): a server span whose client cannot be traced goes out at once, as the wait would have decided it', () => {
  const conn = { pid: 3, tid: 3, tuple: '127.0.0.1|1|127.0.0.1|2', peerLocal: true };
  const waited = harness();
  waited.c.add(span('GET /hello', SpanKind.SERVER, 1, 2), conn);
  assert.equal(waited.out.length, 0);
  waited.advance(DEFAULT_CORRELATE.socketSlackMs + 1);

  const h = harness();
  let calls = false;
  h.c.peerMayBeTraced = () => calls;
  h.c.add(span('GET /hello', SpanKind.SERVER, 1, 2), conn);
  assert.equal(h.out.length, 1, 'emitted without a tick');
  assert.equal(corr(h.by('GET /hello')), corr(waited.by('GET /hello')));
  assert.equal(h.by('GET /hello').parentSpanContext, undefined);
  assert.equal(h.c.size, 0, 'nothing held');
  // Once the traced process has opened a client connection, its own client span may be the peer.
  calls = true;
  h.c.add(span('GET /again', SpanKind.SERVER, 3, 4), { ...conn, tuple: '127.0.0.1|5|127.0.0.1|2' });
  h.c.add(span('GET', SpanKind.CLIENT, 2, 5), { pid: 3, tid: 4, tuple: '127.0.0.1|5|127.0.0.1|2' });
  h.advance(DEFAULT_CORRELATE.windowMs + 1);
  assert.equal(parentOf(h.by('GET /again')), id(h.by('GET')));
  assert.equal(corr(h.by('GET /again')), 'socket');
});

test('keep-alive: two requests on the same connection link by time overlap', () => {
  const h = harness();
  const tuple = '127.0.0.1|40000|127.0.0.1|8080';
  h.c.add(span('s1', SpanKind.SERVER, 2, 3), { pid: 2, tuple, peerLocal: true });
  h.c.add(span('c1', SpanKind.CLIENT, 1, 4), { pid: 1, tuple });
  h.c.add(span('s2', SpanKind.SERVER, 12, 13), { pid: 2, tuple, peerLocal: true });
  h.c.add(span('c2', SpanKind.CLIENT, 11, 14), { pid: 1, tuple });
  h.advance(DEFAULT_CORRELATE.windowMs + 1);
  assert.equal(parentOf(h.by('s1')), id(h.by('c1')));
  assert.equal(parentOf(h.by('s2')), id(h.by('c2')));
});

test('header context is kept even when the caller is traced on this node', () => {
  const h = harness();
  const remote = { traceId: 'ab'.repeat(16), spanId: 'cd'.repeat(8), traceFlags: 1, isRemote: true };
  const tuple = '127.0.0.1|40000|127.0.0.1|8080';
  h.c.add(span('srv', SpanKind.SERVER, 2, 3, { parent: remote }), { pid: 2, tid: 2, tuple, peerLocal: true });
  h.c.add(span('cli', SpanKind.CLIENT, 1, 4), { pid: 1, tid: 1, tuple });
  h.c.add(span('db', SpanKind.CLIENT, 2.2, 2.8), { pid: 2, tid: 2 });
  h.advance(DEFAULT_CORRELATE.windowMs + 1);
  const srv = h.by('srv');
  assert.equal(srv.spanContext().traceId, remote.traceId);
  assert.equal(parentOf(srv), remote.spanId);
  assert.equal(corr(srv), 'header');
  assert.equal(h.by('db').spanContext().traceId, remote.traceId);
  assert.equal(parentOf(h.by('db')), id(srv));
});

test('memory bound: beyond maxPending the oldest spans are decided at once, none lost', () => {
  const h = harness({ ...DEFAULT_CORRELATE, maxPending: 10 });
  for (let i = 0; i < 50; i++) h.c.add(span(`c${i}`, SpanKind.CLIENT, i, i + 0.5), { pid: 9, tid: 9 });
  assert.ok(h.c.size <= 10);
  assert.equal(h.out.length, 40);
  h.c.flush();
  assert.equal(h.out.length, 50);
});

test('logContext: the request in flight on the thread at a time', () => {
  const h = harness();
  h.c.add(span('GET /a', SpanKind.SERVER, 1, 8), { pid: 10, tid: 11 });
  h.c.add(span('GET /b', SpanKind.SERVER, 1, 9), { pid: 10, tid: 12 });
  const ts = BigInt(T0 + 5) * 1_000_000n;
  assert.equal(h.c.logContext(10, 12, ts)?.spanId, id(h.by('GET /b')));
  assert.equal(h.c.logContext(10, 12, ts)?.traceId, h.by('GET /b').spanContext().traceId);
  assert.equal(h.c.logContext(10, undefined, ts), undefined, 'two in flight without a thread: unknown');
  assert.equal(h.c.logContext(10, 11, BigInt(T0 + 100) * 1_000_000n), undefined);
});

test('logLink: a known request whose trace waits for its caller is pending, never mistaken for another', () => {
  const h = harness();
  const tuple = '127.0.0.1|40000|127.0.0.1|8080';
  // /a came from a local peer: it waits for that client span before its trace is decided.
  h.c.add(span('GET /a', SpanKind.SERVER, 10_001, 10_008), { pid: 10, tid: 11, tuple, peerLocal: true });
  h.c.add(span('GET /b', SpanKind.SERVER, 10_001, 10_009), { pid: 10, tid: 12 });
  // Span times near the harness clock: older decided spans are pruned after a few windows.
  const ts = BigInt(T0 + 10_005) * 1_000_000n;
  assert.equal(h.c.logLink(10, 11, ts), 'pending');
  assert.equal(h.c.logContext(10, 11, ts), undefined);
  // A thread of neither request: two known in flight, so no guess (not "the only decided one").
  assert.equal(h.c.logLink(10, 99, ts), undefined);
  h.c.add(span('GET', SpanKind.CLIENT, 10_000.5, 10_008.5), { pid: 20, tid: 21, tuple });
  // Its caller is known now, but the caller itself waits for its own parent: still pending.
  assert.equal(h.c.logLink(10, 11, ts), 'pending');
  h.advance(DEFAULT_CORRELATE.windowMs + 1);
  const a = h.by('GET /a');
  assert.deepEqual(h.c.logLink(10, 11, ts), { traceId: a.spanContext().traceId, spanId: a.spanContext().spanId });
  assert.equal(a.spanContext().traceId, h.by('GET').spanContext().traceId, 'decided into its caller\'s trace');
});

test('analytics: service graph edges, RED series with route and overflow bucket', () => {
  const h = harness();
  const an = new Analytics(undefined, { cardinalityLimit: 3, edgeWaitMs: 0 });
  const tuple = '127.0.0.1|40000|127.0.0.1|8080';
  const feed = new Correlator(DEFAULT_CORRELATE, (s) => an.observe(s), () => T0 + 10_000);
  feed.add(span('GET /users/{id}', SpanKind.SERVER, 2, 7, { service: 'backend', attrs: { 'http.request.method': 'GET', 'http.route': '/users/{id}', 'http.response.status_code': 200 } }), { pid: 2, tuple, peerLocal: true });
  feed.add(span('GET', SpanKind.CLIENT, 1, 8, { service: 'frontend', attrs: { 'http.request.method': 'GET', 'server.address': '127.0.0.1', 'server.port': 8080, 'http.response.status_code': 200 } }), { pid: 1, tuple });
  feed.add(span('SELECT users', SpanKind.CLIENT, 3, 4, { service: 'backend', attrs: { 'db.system.name': 'postgresql', 'db.operation.name': 'SELECT', 'server.address': '127.0.0.1', 'server.port': 5432 } }), { pid: 2 });
  feed.flush();
  an.tick();
  const topo = an.topology() as { edges: Array<{ id: string; total: number; connectionType: string }>; nodes: Array<{ id: string; type: string }>; services: Array<{ service: string; series: Array<{ instrument: string; attributes: Record<string, unknown>; count: number }> }> };
  const edges = Object.fromEntries(topo.edges.map((e) => [e.id, e]));
  assert.equal(edges['frontend->backend']?.total, 1);
  assert.equal(edges['backend->postgresql 127.0.0.1:5432']?.connectionType, 'database');
  assert.equal(topo.nodes.find((n) => n.id === 'postgresql 127.0.0.1:5432')?.type, 'database');
  const backend = topo.services.find((s) => s.service === 'backend')!;
  const srv = backend.series.find((s) => s.instrument === 'http.server.request.duration')!;
  assert.equal(srv.attributes['http.route'], '/users/{id}');
  assert.equal(backend.series.find((s) => s.instrument === 'db.client.operation.duration')?.count, 1);
  // Cardinality: 3 distinct routes fit, the rest share the overflow series.
  for (let i = 0; i < 6; i++) an.observe(span(`GET /r${i}`, SpanKind.SERVER, 1, 2, { service: 'many', attrs: { 'http.request.method': 'GET', 'http.route': `/r${i}` } }));
  const many = (an.topology() as typeof topo).services.find((s) => s.service === 'many')!;
  assert.equal(many.series.length, 4);
  assert.equal(many.series.find((s) => s.attributes['otel.metric.overflow'] === true)?.count, 3);
  const tr = an.tracesQuery(new URLSearchParams('edge=frontend->backend'));
  assert.equal(tr.traces.length, 1);
  assert.equal(tr.traces[0].spans.length, 3);
  void h;
});

test('analytics: an edge\'s latest traces stay queryable after the latest-traces store turned over', () => {
  const an = new Analytics(undefined, { maxTraces: 5, edgeWaitMs: 0 });
  const call = (port: number) => {
    const tuple = `127.0.0.1|${port}|127.0.0.1|8080`;
    const feed = new Correlator(DEFAULT_CORRELATE, (s) => an.observe(s), () => T0 + 10_000);
    feed.add(span('GET /users/{id}', SpanKind.SERVER, 2, 7, { service: 'backend', attrs: { 'http.request.method': 'GET', 'http.route': '/users/{id}', 'http.response.status_code': 200 } }), { pid: 2, tuple, peerLocal: true });
    feed.add(span('GET', SpanKind.CLIENT, 1, 8, { service: 'frontend', attrs: { 'http.request.method': 'GET', 'server.address': '127.0.0.1', 'server.port': 8080, 'http.response.status_code': 200 } }), { pid: 1, tuple });
    feed.flush();
    an.tick();
  };
  const edgeTraces = () => an.tracesQuery(new URLSearchParams('edge=frontend->backend&limit=500')).traces;
  call(40001);
  const first = edgeTraces();
  assert.equal(first.length, 1);
  // a busy node: 50 unrelated traces push every earlier trace out of the 5-trace store
  for (let i = 0; i < 50; i++) an.observe(span(`GET /noise/${i}`, SpanKind.SERVER, 1, 2, { service: 'noise' }));
  assert.equal(an.tracesQuery(new URLSearchParams('limit=500')).traces.length, 5, 'the latest-traces store stays at maxTraces');
  const kept = edgeTraces();
  assert.deepEqual(kept.map((t) => t.traceId), first.map((t) => t.traceId), 'the edge still answers with its trace');
  assert.equal(kept[0].spans.length, 2, 'with both of its spans');
  // pinning is bounded: after 12 more calls over the edge only its 10 latest traces are kept
  for (let i = 0; i < 12; i++) call(40100 + i);
  for (let i = 0; i < 50; i++) an.observe(span(`GET /noise2/${i}`, SpanKind.SERVER, 1, 2, { service: 'noise' }));
  const later = edgeTraces();
  assert.equal(later.length, 10);
  assert.ok(!later.some((t) => t.traceId === first[0].traceId), 'the oldest edge trace was let go');
});

test('goroutine links (Go tracer): each call goes to the request its goroutine serves, among concurrent ones on shared threads', () => {
  const h = harness();
  const ns = (ms: number) => (BigInt(T0) + BigInt(ms)) * 1_000_000n;
  // What the kernel said, as gotrace/links.ts holds it: calls on connections 101/102 were made
  // for the requests in flight on connections 1 and 2 (handler start times 2 ms and 3 ms).
  const links = new GoLinks((t) => t);
  links.add(101n, ns(4), 1n, ns(2));
  links.add(102n, ns(5), 2n, ns(3));
  h.c.goParent = (connId, start) => links.take(connId, start);
  // Goroutines migrate between threads: every span here ran on thread 7, and the requests
  // overlap, so thread and time alone could only say "ambiguous".
  const c = (connId: bigint): SpanConn => ({ pid: 30, tid: 7, connId });
  h.c.add(span('call-b', SpanKind.CLIENT, 6, 8), c(102n));
  h.c.add(span('call-a', SpanKind.CLIENT, 5, 9), c(101n));
  h.c.add(span('call-bg', SpanKind.CLIENT, 6, 7), c(103n)); // no link: a goroutine outside any request
  h.c.add(span('GET /a', SpanKind.SERVER, 1, 10), c(1n));
  h.c.add(span('GET /b', SpanKind.SERVER, 2, 11), c(2n));
  h.advance(DEFAULT_CORRELATE.windowMs + 1);
  assert.equal(parentOf(h.by('call-a')), id(h.by('GET /a')));
  assert.equal(parentOf(h.by('call-b')), id(h.by('GET /b')));
  assert.equal(corr(h.by('call-a')), 'goroutine');
  assert.equal(corr(h.by('call-bg')), 'ambiguous');
  // A link is used once: a later exchange on 101 by a goroutine outside requests gets none.
  assert.equal(links.take(101n, ns(20)), undefined);
});

test('goroutine links: a span takes the latest link made before it started, never a later one', () => {
  const links = new GoLinks((t) => t);
  links.add(5n, 100n, 1n, 50n);
  links.add(5n, 300n, 2n, 250n);
  assert.equal(links.take(5n, 90n), undefined, 'started before any link');
  assert.deepEqual(links.take(5n, 200n), { connId: 1n, at: 50n });
  assert.deepEqual(links.take(5n, 400n), { connId: 2n, at: 250n });
  assert.equal(links.size, 0);
  const small = new GoLinks((t) => t, 2);
  for (let i = 0n; i < 5n; i++) small.add(i, 1n, 9n, 0n);
  assert.equal(small.size, 2, 'bounded in connections');
});

test('a process that serves nothing (a load generator): its client span and the server span linked to it go out at once, as the window would have decided them', () => {
  const tuple = '127.0.0.1|40000|127.0.0.1|8080';
  const feed = (h: ReturnType<typeof harness>) => {
    // Kernel order: the server answers, then the load generator (pid 7) reads the response.
    h.c.add(span('GET /hello', SpanKind.SERVER, 2, 3, { service: 'api' }), { pid: 2, tid: 2, tuple, peerLocal: true });
    h.c.add(span('GET', SpanKind.CLIENT, 1, 4, { service: 'wrk' }), { pid: 7, tid: 8, tuple });
  };
  const waited = harness();
  feed(waited);
  assert.equal(waited.out.length, 0, 'without the hint both wait for the client span\'s window');
  waited.advance(DEFAULT_CORRELATE.windowMs + 1);

  const h = harness();
  h.c.mayServe = (pid) => pid !== 7;
  feed(h);
  assert.deepEqual(h.out.map((s) => s.name), ['GET', 'GET /hello'], 'both emitted without a tick, parent first');
  for (const name of ['GET', 'GET /hello']) {
    assert.equal(corr(h.by(name)), corr(waited.by(name)), `${name}: same correlation mode`);
    assert.equal(parentOf(h.by(name)) === undefined, parentOf(waited.by(name)) === undefined, `${name}: same root-ness`);
  }
  assert.equal(parentOf(h.by('GET /hello')), id(h.by('GET')));
  assert.equal(corr(h.by('GET /hello')), 'socket');
  assert.equal(h.c.size, 0, 'nothing held');
});

test('a process that may serve (or has served) keeps its client spans for the window: the enclosing server span ends later', () => {
  const h = harness();
  // pid 1 opened a server connection (mayServe true): its DB call waits for the request around it.
  h.c.mayServe = (pid) => pid === 1;
  h.c.add(span('SELECT', SpanKind.CLIENT, 9_998, 9_999), { pid: 1, tid: 1, tuple: '127.0.0.1|40001|127.0.0.1|5432' });
  assert.equal(h.out.length, 0);
  h.c.add(span('GET /', SpanKind.SERVER, 9_997, 10_000), { pid: 1, tid: 1 });
  h.advance(DEFAULT_CORRELATE.windowMs + 1);
  assert.equal(parentOf(h.by('SELECT')), id(h.by('GET /')));
  // A pid the correlator has seen serve is held even when the hint says otherwise (pid reuse, a
  // server connection delivered by another source).
  h.c.mayServe = () => false;
  // (times near the clock's: the lookup lists keep what ended in the last few windows)
  h.c.add(span('SELECT 2', SpanKind.CLIENT, 11_502, 11_503), { pid: 1, tid: 1, tuple: '127.0.0.1|40001|127.0.0.1|5432' });
  h.c.add(span('GET /2', SpanKind.SERVER, 11_501, 11_504), { pid: 1, tid: 1 });
  h.advance(DEFAULT_CORRELATE.windowMs + 1);
  assert.equal(parentOf(h.by('SELECT 2')), id(h.by('GET /2')));
});

// Deadlines of held spans count input, not wall time: a server span waits for its client span
// while the client's record is still in the ring (read behind a backlog, or the ring paused by the
// overload gate), which test/tls/write-stamp "HTTPS under load" hit in 4 of 18 runs: both roots.
const LAG_TUPLE = '127.0.0.1|40000|127.0.0.1|8443';
const lagServer: SpanConn = { pid: 2, tid: 2, tuple: LAG_TUPLE, peerLocal: true };
const lagClient: SpanConn = { pid: 1, tid: 1, tuple: LAG_TUPLE };
/** A span of another connection, decided at once (remote peer): input read, nothing held. */
const otherConn = (i: number, endMs: number): [ReadableSpan, SpanConn] =>
  [span(`other ${i}`, SpanKind.SERVER, endMs - 1, endMs), { pid: 5, tid: 5, tuple: `10.0.0.9|${i}|10.0.0.1|80`, peerLocal: false }];
/** The clock moved `ms` with a tick every 100 ms, as the agent's timer ticks. */
function advanceTicking(h: ReturnType<typeof harness>, ms: number): void {
  for (let d = 0; d < ms; d += 100) h.advance(Math.min(100, ms - d));
}

test('behind a backlog: the server span waits past 500 ms of wall time for a client span its input has not reached yet', () => {
  const h = harness();
  h.c.add(span('GET /s', SpanKind.SERVER, 100, 110), lagServer);
  // 900 ms of wall time reading spans that ended within 100 ms after it: the input is behind.
  for (let i = 0; i < 9; i++) { h.c.add(...otherConn(i, 111 + 10 * i)); advanceTicking(h, 100); }
  h.c.add(span('GET', SpanKind.CLIENT, 95, 120), lagClient);
  advanceTicking(h, DEFAULT_CORRELATE.windowMs + 100);
  assert.equal(h.by('GET /s').attributes['telegen.correlation'], 'socket');
  assert.equal(h.by('GET /s').parentSpanContext?.spanId, h.by('GET').spanContext().spanId);
});

test('the input moving 500 ms of span time past a server span without its client decides it a root, however fast it was read', () => {
  const h = harness();
  h.c.add(span('GET /s', SpanKind.SERVER, 100, 110), lagServer);
  for (let i = 0; i < 7; i++) { h.c.add(...otherConn(i, 400)); advanceTicking(h, 100); }
  assert.equal(h.out.filter((s) => s.name === 'GET /s').length, 0, 'the input is at 400 ms: held');
  h.c.add(...otherConn(7, 611));
  advanceTicking(h, 100);
  assert.equal(h.by('GET /s').attributes['telegen.correlation'], 'root');
});

test('a paused input: the server span waits out the pause for its client span, then links', () => {
  const h = harness();
  h.c.add(span('GET /s', SpanKind.SERVER, 100, 110), lagServer);
  h.c.inputPaused(true);
  advanceTicking(h, 3000);
  assert.equal(h.out.length, 0, 'nothing decided while the ring is not read');
  h.c.inputPaused(false);
  h.c.add(span('GET', SpanKind.CLIENT, 95, 120), lagClient);
  advanceTicking(h, DEFAULT_CORRELATE.windowMs + 100);
  assert.equal(h.by('GET /s').parentSpanContext?.spanId, h.by('GET').spanContext().spanId);
  // After the pause, an idle input decides as before: socketSlackMs after the last span read.
  h.c.add(span('lonely', SpanKind.SERVER, 5000, 5001), lagServer);
  advanceTicking(h, DEFAULT_CORRELATE.socketSlackMs + 100);
  assert.equal(h.by('lonely').attributes['telegen.correlation'], 'root');
});

test('held at most the lookups\' horizon when spans keep coming that never move the input past it', () => {
  const h = harness();
  h.c.add(span('GET /s', SpanKind.SERVER, 100, 110), lagServer);
  let i = 0;
  while (!h.out.some((s) => s.name === 'GET /s') && i < 200) { h.c.add(...otherConn(i, 111)); advanceTicking(h, 100); i++; }
  const keep = Math.max(DEFAULT_CORRELATE.windowMs, DEFAULT_CORRELATE.socketSlackMs) * 4;
  assert.equal(h.by('GET /s').attributes['telegen.correlation'], 'root');
  assert.ok(i * 100 >= DEFAULT_CORRELATE.socketSlackMs + keep && i * 100 <= DEFAULT_CORRELATE.socketSlackMs + keep + 200, `decided after ${i * 100} ms`);
});

test('a ring paused for good (the contended budget on a busy host) still decides a held span after the lookups\' horizon of wall time', () => {
  const h = harness();
  h.c.add(span('GET /s', SpanKind.SERVER, 100, 110), lagServer);
  h.c.inputPaused(true);
  const keep = Math.max(DEFAULT_CORRELATE.windowMs, DEFAULT_CORRELATE.socketSlackMs) * 4;
  let waited = 0;
  while (!h.out.some((s) => s.name === 'GET /s') && waited < 60_000) { advanceTicking(h, 100); waited += 100; }
  assert.equal(h.by('GET /s').attributes['telegen.correlation'], 'root');
  assert.ok(waited >= DEFAULT_CORRELATE.socketSlackMs + keep && waited <= DEFAULT_CORRELATE.socketSlackMs + keep + 200, `decided after ${waited} ms`);
});
