// What the agent reports for web traffic, checked where it was wrong (QA pass over HTTP/1, HTTPS,
// HTTP/2 and gRPC on loopback). Each case is pinned twice: the rule on synthetic spans and records
// (no BPF), and the real clients and servers through the running agent.
//  - an HTTP/1 request whose client gave up before the response: its spans lasted 0 ns, were no
//    error, and client and server were never linked (they did not overlap in time);
//  - concurrent HTTP/2 streams of one connection: the socket link paired server spans with other
//    streams' client spans (time alone, no stream id);
//  - gRPC server spans were errors for every non-OK status (semconv: only the server's failures);
//  - HTTPS: a TLS client's request is stamped when SSL_write returns, which can come after the
//    server span ended: the two were not linked (about a third of curl's requests here);
//  - url.full was missing on HTTP client spans and url.scheme on HTTP/1 server spans.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync, execFileSync } from 'child_process';
import { randomBytes } from 'crypto';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { repoRoot } from '../helpers/decoder';
import { requireBpf, startAgent, startServer, waitFor, FlatSpan, freePort, Served } from '../helpers/agent';
import { Correlator, DEFAULT_CORRELATE } from '../../host/src/correlate/correlator';
import { recordToSpan, identityClock } from '../../host/src/pipeline/spans';
import { ConnMeta } from '../../host/src/model';
import { KIND_EXCHANGE, FLAG_ERROR, FLAG_NO_RESPONSE } from '../../decoders/abi/abi';
import { makePki } from '../tls/tls-helpers';

const SERVER = 2;
const CLIENT = 3;
const ERROR = 2;

// ---------------------------------------------------------------------------------------------
// Rules on synthetic spans and records.

const T0 = 1_700_000_000_000; // ms
function span(name: string, kind: SpanKind, startMs: number, endMs: number, attrs: Record<string, string | number> = {}): ReadableSpan {
  const ctx = { traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex'), traceFlags: 1 };
  const hr = (ms: number): [number, number] => [Math.floor((T0 + ms) / 1000), Math.round(((T0 + ms) % 1000) * 1e6)];
  return {
    name, kind, spanContext: () => ctx, parentSpanContext: undefined, startTime: hr(startMs), endTime: hr(endMs), duration: [0, Math.round((endMs - startMs) * 1e6)],
    status: { code: 0 }, attributes: { ...attrs }, links: [], events: [], ended: true, resource: resourceFromAttributes({ 'service.name': 'svc' }),
    instrumentationScope: { name: 't' }, droppedAttributesCount: 0, droppedEventsCount: 0, droppedLinksCount: 0,
  };
}

function harness() {
  let now = T0 + 10_000;
  const out: ReadableSpan[] = [];
  const c = new Correlator(DEFAULT_CORRELATE, (s) => out.push(s), () => now);
  const by = (name: string) => { const s = out.find((x) => x.name === name); assert.ok(s, `${name} emitted`); return s!; };
  return { c, out, by, advance: (ms: number) => { now += ms; c.tick(); } };
}
const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;
const idOf = (s: ReadableSpan) => s.spanContext().spanId;

test('HTTP/2: concurrent streams of one connection link each server span to the client span of its own stream', () => {
  const h = harness();
  const tuple = '127.0.0.1|40000|127.0.0.1|8443';
  const sid = (n: number) => ({ 'telegen.http2.stream_id': n });
  // One write answered all three streams (the server spans end together) in the order 3, 5, 1;
  // the client reads them in another order. Every span overlaps every other in time.
  h.c.add(span('srv 3', SpanKind.SERVER, 1.2, 3, sid(3)), { pid: 2, tid: 2, tuple, peerLocal: true });
  h.c.add(span('srv 5', SpanKind.SERVER, 1.3, 3, sid(5)), { pid: 2, tid: 2, tuple, peerLocal: true });
  h.c.add(span('srv 1', SpanKind.SERVER, 1.1, 3, sid(1)), { pid: 2, tid: 2, tuple, peerLocal: true });
  h.c.add(span('cli 5', SpanKind.CLIENT, 1.0, 4, sid(5)), { pid: 1, tid: 1, tuple });
  h.c.add(span('cli 1', SpanKind.CLIENT, 1.0, 4.1, sid(1)), { pid: 1, tid: 1, tuple });
  h.c.add(span('cli 3', SpanKind.CLIENT, 1.0, 4.2, sid(3)), { pid: 1, tid: 1, tuple });
  h.advance(DEFAULT_CORRELATE.windowMs + 1);
  for (const n of [1, 3, 5]) {
    assert.equal(parentOf(h.by(`srv ${n}`)), idOf(h.by(`cli ${n}`)), `stream ${n}`);
    assert.equal(h.by(`srv ${n}`).attributes['telegen.correlation'], 'socket');
  }
});

test('a client span stamped after its server span ended (TLS: at SSL_write return) still links; an overlapping one wins', () => {
  const h = harness();
  const tuple = '127.0.0.1|40001|127.0.0.1|8443';
  // The server read, answered and ended at 1.9 ms; the client's request was stamped at 2.2 ms.
  h.c.add(span('srv late', SpanKind.SERVER, 1.0, 1.9), { pid: 2, tid: 2, tuple, peerLocal: true });
  h.c.add(span('cli late', SpanKind.CLIENT, 2.2, 2.4), { pid: 1, tid: 1, tuple });
  // Keep-alive: a stale server span (its client never seen) just before an exchange that overlaps.
  const t2 = '127.0.0.1|40002|127.0.0.1|8443';
  h.c.add(span('srv stale', SpanKind.SERVER, 10.0, 10.5), { pid: 2, tid: 2, tuple: t2, peerLocal: true });
  h.c.add(span('srv next', SpanKind.SERVER, 11.0, 11.5), { pid: 2, tid: 2, tuple: t2, peerLocal: true });
  h.c.add(span('cli next', SpanKind.CLIENT, 10.9, 12.0), { pid: 1, tid: 1, tuple: t2 });
  // Far apart (10 ms) is another exchange: no link.
  const t3 = '127.0.0.1|40003|127.0.0.1|8443';
  h.c.add(span('srv far', SpanKind.SERVER, 20.0, 21.0), { pid: 2, tid: 2, tuple: t3, peerLocal: true });
  h.c.add(span('cli far', SpanKind.CLIENT, 31.0, 32.0), { pid: 1, tid: 1, tuple: t3 });
  h.advance(DEFAULT_CORRELATE.windowMs + 1);
  assert.equal(parentOf(h.by('srv late')), idOf(h.by('cli late')));
  assert.equal(parentOf(h.by('srv next')), idOf(h.by('cli next')));
  assert.equal(parentOf(h.by('srv stale')), undefined);
  assert.equal(parentOf(h.by('srv far')), undefined);
});

function rec(flags: number, attributes: Record<string, unknown>, tsStart = 1_000_000n, tsEnd = 2_000_000n) {
  return { kind: KIND_EXCHANGE, flags, stream: 1, tsStart, tsEnd, attributes: { ...attributes } } as Parameters<typeof recordToSpan>[0];
}
function conn(role: 'client' | 'server', extra: Partial<ConnMeta> = {}): ConnMeta {
  return role === 'client'
    ? { role, localAddr: '127.0.0.1', localPort: 40000, remoteAddr: '127.0.0.1', remotePort: 8080, transport: 'tcp', ...extra }
    : { role, localAddr: '127.0.0.1', localPort: 8080, remoteAddr: '127.0.0.1', remotePort: 40000, transport: 'tcp', ...extra };
}
const durNs = (s: ReadableSpan) => s.duration[0] * 1e9 + s.duration[1];

test('gRPC status per semconv: server spans are errors only for the server\'s failures, client spans for every non-OK status', () => {
  const grpc = (code: number) => ({ 'http.request.method': 'POST', 'url.path': '/pkg.Svc/M', 'rpc.system': 'grpc', 'rpc.service': 'pkg.Svc', 'rpc.method': 'M',
    'http.response.status_code': 200, 'rpc.grpc.status_code': code, 'error.type': String(code), 'network.protocol.version': '2' });
  for (const code of [1, 3, 5, 6, 7, 8, 9, 10, 11, 16]) {
    const srv = recordToSpan(rec(FLAG_ERROR, grpc(code)), conn('server'), 'http2', { clock: identityClock })!;
    assert.equal(srv.status.code, SpanStatusCode.UNSET, `server, status ${code}`);
    assert.equal(srv.attributes['error.type'], undefined, `server, status ${code}: no error.type`);
    const cli = recordToSpan(rec(FLAG_ERROR, grpc(code)), conn('client'), 'http2', { clock: identityClock })!;
    assert.equal(cli.status.code, SpanStatusCode.ERROR, `client, status ${code}`);
    assert.equal(cli.attributes['error.type'], String(code));
  }
  for (const code of [2, 4, 12, 13, 14, 15]) {
    const srv = recordToSpan(rec(FLAG_ERROR, grpc(code)), conn('server'), 'http2', { clock: identityClock })!;
    assert.equal(srv.status.code, SpanStatusCode.ERROR, `server, status ${code}`);
    assert.equal(srv.attributes['error.type'], String(code));
  }
  // An HTTP 5xx around a gRPC status is the server's failure whatever the code.
  const g5 = { ...grpc(5), 'http.response.status_code': 503 };
  assert.equal(recordToSpan(rec(FLAG_ERROR, g5), conn('server'), 'http2', { clock: identityClock })!.status.code, SpanStatusCode.ERROR);
});

test('error status messages name the code: gRPC status names without grpc-message, Kafka error names', () => {
  const grpc = (code: number, extra: Record<string, unknown> = {}) => ({ 'http.request.method': 'POST', 'url.path': '/pkg.Svc/M', 'rpc.system': 'grpc',
    'http.response.status_code': 200, 'rpc.grpc.status_code': code, 'error.type': String(code), 'network.protocol.version': '2', ...extra });
  const msg = (attrs: Record<string, unknown>, role: 'client' | 'server' = 'client', proto = 'http2') => recordToSpan(rec(FLAG_ERROR, attrs), conn(role), proto, { clock: identityClock })!.status.message;
  assert.equal(msg(grpc(4)), 'gRPC status DEADLINE_EXCEEDED (4)');
  assert.equal(msg(grpc(14), 'server'), 'gRPC status UNAVAILABLE (14)');
  assert.equal(msg(grpc(16)), 'gRPC status UNAUTHENTICATED (16)');
  assert.equal(msg(grpc(99)), 'gRPC status 99', 'a code outside the table keeps its number');
  assert.equal(msg(grpc(5, { 'rpc.grpc.status_message': 'no such user' })), 'no such user', 'the server\'s own message wins');
  const kafka = (code: number, type: string) => ({ 'messaging.system': 'kafka', 'messaging.operation.name': 'send', 'kafka.error_code': code, 'error.type': type });
  assert.equal(msg(kafka(3, 'UNKNOWN_TOPIC_OR_PARTITION'), 'client', 'kafka'), 'Kafka error UNKNOWN_TOPIC_OR_PARTITION (3)');
  assert.equal(msg(kafka(5120, '5120'), 'client', 'kafka'), 'Kafka error 5120');
});

test('an HTTP request its connection closed on before any response: ends at the close, client error no_response, server unset', () => {
  const req = { 'http.request.method': 'GET', 'url.path': '/slow', 'url.query': 'a=1', 'server.address': '127.0.0.1', 'network.protocol.version': '1.1' };
  const closedTs = 300_000_000n;
  const cli = recordToSpan(rec(FLAG_NO_RESPONSE, req), conn('client', { closedTs }), 'http1', { clock: identityClock })!;
  assert.equal(cli.status.code, SpanStatusCode.ERROR);
  assert.equal(cli.attributes['error.type'], 'no_response');
  assert.equal(durNs(cli), Number(closedTs - 1_000_000n), 'from the request to the close');
  const srv = recordToSpan(rec(FLAG_NO_RESPONSE, req), conn('server', { closedTs }), 'http1', { clock: identityClock })!;
  assert.equal(srv.status.code, SpanStatusCode.UNSET);
  assert.equal(srv.attributes['error.type'], undefined);
  assert.equal(durNs(srv), Number(closedTs - 1_000_000n));
  // Not closed (the decoder's timeout, a decoder swap, the agent stopping with a long poll in
  // flight): no error, and the span keeps the decoder's end.
  const open = recordToSpan(rec(FLAG_NO_RESPONSE, req), conn('client'), 'http1', { clock: identityClock })!;
  assert.equal(open.status.code, SpanStatusCode.UNSET);
  assert.equal(durNs(open), 1_000_000);
  // A close long after a completed exchange does not stretch it.
  const done = recordToSpan(rec(0, { ...req, 'http.response.status_code': 200 }), conn('client', { closedTs }), 'http1', { clock: identityClock })!;
  assert.equal(durNs(done), 1_000_000);
});

test('url.full on HTTP client spans and url.scheme on every HTTP span', () => {
  const mk = (a: Record<string, unknown>, c: ConnMeta) => recordToSpan(rec(0, { 'http.request.method': 'GET', 'http.response.status_code': 200, ...a }), c, 'http1', { clock: identityClock })!.attributes;
  assert.equal(mk({ 'url.path': '/a', 'url.query': 'x=1&y', 'server.address': 'example.test' }, conn('client'))['url.full'], 'http://example.test:8080/a?x=1&y');
  assert.equal(mk({ 'url.path': '/a', 'url.query': '', 'server.address': 'example.test', 'server.port': 80 }, conn('client'))['url.full'], 'http://example.test/a?');
  assert.equal(mk({ 'url.path': '/', 'server.address': '::1', 'server.port': 443 }, conn('client', { tls: true }))['url.full'], 'https://[::1]/');
  assert.equal(mk({ 'url.path': '/', 'server.address': '::1', 'server.port': 8443 }, conn('client', { tls: true }))['url.full'], 'https://[::1]:8443/');
  // A proxy's absolute-form target names its scheme; CONNECT names no path.
  assert.equal(mk({ 'url.path': '/x', 'url.scheme': 'http', 'server.address': 'o.test', 'server.port': 80 }, conn('client', { tls: true }))['url.full'], 'http://o.test/x');
  assert.equal(mk({ 'http.request.method': 'CONNECT', 'server.address': 'o.test', 'server.port': 443 }, conn('client'))['url.full'], undefined);
  const srv = mk({ 'url.path': '/a', 'server.address': 'example.test' }, conn('server'));
  assert.equal(srv['url.scheme'], 'http');
  assert.equal(srv['url.full'], undefined, 'server spans carry path and query, not url.full');
  assert.equal(mk({ 'url.path': '/a' }, conn('server', { tls: true }))['url.scheme'], 'https');
});

// ---------------------------------------------------------------------------------------------
// Through the running agent.

/** Every metric data point of one name in DATA_DIR/metrics.jsonl. */
function metricPoints(dataDir: string, name: string): Array<{ attrs: Record<string, unknown>; count: number }> {
  const file = path.join(dataDir, 'metrics.jsonl');
  if (!fs.existsSync(file)) return [];
  const out: Array<{ attrs: Record<string, unknown>; count: number }> = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    let req;
    try { req = JSON.parse(line); } catch { continue; }
    for (const rm of req.resourceMetrics ?? []) for (const sm of rm.scopeMetrics ?? []) for (const m of sm.metrics ?? []) {
      if (m.name !== name) continue;
      for (const p of m.histogram?.dataPoints ?? m.sum?.dataPoints ?? []) {
        const attrs: Record<string, unknown> = {};
        for (const kv of p.attributes ?? []) attrs[kv.key] = Object.values(kv.value ?? {})[0];
        out.push({ attrs, count: Number(p.count ?? p.asInt ?? 0) });
      }
    }
  }
  return out;
}

const durMs = (s: FlatSpan) => Number(s.end - s.start) / 1e6;
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-qa-web-'));

const SLOW_SERVER = `
const http = require('http');
const s = http.createServer((req, res) => {
  const u = new URL(req.url, 'http://x');
  const ms = Number(u.searchParams.get('ms') || 0);
  setTimeout(() => { if (!res.destroyed) { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('late\\n'); } }, ms);
});
s.listen(0, '127.0.0.1', () => console.log('listening ' + s.address().port));
`;

test('HTTP/1 client gives up before the response (curl --max-time, a raw socket): spans last until the close, linked, client error', { timeout: 120_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const dir = tmp();
  fs.writeFileSync(path.join(dir, 'slow.js'), SLOW_SERVER);
  const agent = await startAgent({ env: { TELEGEN_METRICS_INTERVAL_MS: '1000' } });
  let srv: Served | undefined;
  try {
    srv = await startServer(process.execPath, [path.join(dir, 'slow.js')]);
    const P = srv.port;
    const r = spawnSync('curl', ['-sS', '--max-time', '0.4', `http://127.0.0.1:${P}/slow?ms=1500`], { encoding: 'utf8' });
    assert.equal(r.status, 28, 'curl timed out');
    spawnSync(process.execPath, ['-e', `
      const s = require('net').connect(${P}, '127.0.0.1', () => { s.write('GET /slow?ms=1500&raw=1 HTTP/1.1\\r\\nHost: 127.0.0.1:${P}\\r\\n\\r\\n'); setTimeout(() => s.destroy(), 300); });
    `], { timeout: 10_000 });
    // And one answered request, for url.full / url.scheme.
    assert.equal(execFileSync('curl', ['-sS', `http://127.0.0.1:${P}/slow?ms=0&q=a%20b`], { encoding: 'utf8' }), 'late\n');
    const mine = () => agent.spans().filter((s) => s.attributes['server.port'] === P);
    await waitFor(() => mine().length >= 6, 30_000).catch(() => undefined);
    const red = () => metricPoints(agent.dataDir, 'http.client.request.duration').filter((p) => p.attrs['server.port'] === P && p.attrs['error.type'] === 'no_response');
    await waitFor(() => red().length > 0, 15_000).catch(() => undefined);
    assert.equal(await agent.stop(), 0);
    const spans = mine();
    const brief = spans.map((s) => `${s.kind} ${s.attributes['process.executable.name']} ${s.attributes['url.query']} ${durMs(s).toFixed(1)}ms status=${s.status.code ?? 0}`).join('\n');
    for (const [query, cliExe, gaveUpMs] of [['ms=1500', 'curl', 400], ['ms=1500&raw=1', 'node', 300]] as const) {
      const cli = spans.filter((s) => s.kind === CLIENT && s.attributes['url.query'] === query);
      const srvS = spans.filter((s) => s.kind === SERVER && s.attributes['url.query'] === query);
      assert.equal(cli.length, 1, `one client span for ${query}:\n${brief}`);
      assert.equal(srvS.length, 1, `one server span for ${query}:\n${brief}`);
      const c = cli[0], s = srvS[0];
      assert.equal(c.attributes['process.executable.name'], cliExe);
      assert.equal(c.attributes['telegen.no_response'], true);
      assert.equal(c.status.code, ERROR, `the client's request failed: ${brief}`);
      assert.equal(c.attributes['error.type'], 'no_response');
      assert.equal(c.attributes['http.response.status_code'], undefined);
      assert.ok(durMs(c) >= gaveUpMs - 50 && durMs(c) < 1400, `client waited ~${gaveUpMs} ms, not the server's 1500: ${durMs(c)}`);
      assert.notEqual(s.status.code, ERROR, 'no status was sent: the server span is no error');
      assert.equal(s.attributes['error.type'], undefined);
      assert.ok(durMs(s) >= gaveUpMs - 50, `server span lasts until the client left: ${durMs(s)}`);
      assert.equal(s.parentSpanId, c.spanId, 'server span is the client span\'s child (4-tuple)');
      assert.equal(s.traceId, c.traceId);
      assert.equal(s.attributes['telegen.correlation'], 'socket');
    }
    const ok = spans.filter((s) => s.attributes['url.query'] === 'ms=0&q=a%20b');
    assert.equal(ok.length, 2);
    const okCli = ok.find((s) => s.kind === CLIENT)!, okSrv = ok.find((s) => s.kind === SERVER)!;
    assert.equal(okCli.attributes['url.full'], `http://127.0.0.1:${P}/slow?ms=0&q=a%20b`);
    assert.equal(okCli.attributes['url.scheme'], 'http');
    assert.equal(okSrv.attributes['url.scheme'], 'http');
    assert.equal(okSrv.attributes['url.full'], undefined);
    assert.equal(okCli.status.code ?? 0, 0);
    // RED: the failed request is an error of the client's duration series, with its type.
    const pts = red();
    assert.ok(pts.length > 0 && pts.some((p) => p.count >= 1), 'http.client.request.duration{error.type=no_response}');
  } finally {
    await srv?.stop();
    if (agent.proc.exitCode === null) agent.proc.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('HTTP/2 cleartext: nghttp\'s concurrent streams to nghttpd — each server span is the child of its own stream\'s client span', { timeout: 120_000 }, async (t) => {
  if (!requireBpf(t)) return;
  if (spawnSync('sh', ['-c', 'command -v nghttp && command -v nghttpd']).status !== 0) { t.skip('nghttp2 tools not installed'); return; }
  const dir = tmp();
  const files = ['a.txt', 'b.txt', 'c.txt', 'd.bin', 'e.txt'];
  for (const f of files) fs.writeFileSync(path.join(dir, f), f.endsWith('.bin') ? randomBytes(12_000) : `${f}\n`);
  const agent = await startAgent();
  const port = await freePort();
  // nghttpd prints nothing when it listens: ready once nghttp gets an answer.
  const d = spawn('nghttpd', ['--no-tls', '-d', dir, String(port)], { stdio: 'ignore' });
  try {
    await waitFor(() => spawnSync('nghttp', ['-n', `http://127.0.0.1:${port}/a.txt`]).status === 0, 10_000);
    // Three runs of five concurrent streams (and one missing file) on one connection each.
    const urls = [...files, 'missing'].map((f) => `http://127.0.0.1:${port}/${f}`);
    for (let i = 0; i < 3; i++) assert.equal(spawnSync('nghttp', ['-n', ...urls], { timeout: 10_000 }).status, 0);
    const mine = () => agent.spans().filter((s) => s.attributes['server.port'] === port && s.attributes['process.executable.name'] !== 'node');
    const want = 3 * urls.length;
    await waitFor(() => mine().filter((s) => s.kind === SERVER).length >= want + 1 && mine().filter((s) => s.kind === CLIENT).length >= want + 1, 30_000).catch(() => undefined);
    assert.equal(await agent.stop(), 0);
    const spans = mine();
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const servers = spans.filter((s) => s.kind === SERVER && s.attributes['process.executable.name'] === 'nghttpd');
    assert.ok(servers.length >= want, `server spans: ${servers.length}`);
    for (const s of servers) {
      const p = byId.get(s.parentSpanId ?? '');
      assert.ok(p, `${s.attributes['url.path']} (stream ${s.attributes['telegen.http2.stream_id']}) has its client span as parent`);
      assert.equal(p!.kind, CLIENT);
      assert.equal(p!.attributes['url.path'], s.attributes['url.path'], 'the parent is the client span of the same request');
      assert.equal(p!.attributes['telegen.http2.stream_id'], s.attributes['telegen.http2.stream_id']);
      assert.equal(p!.attributes['process.executable.name'], 'nghttp');
    }
    const missing = spans.filter((s) => s.attributes['url.path'] === '/missing');
    for (const s of missing) {
      assert.equal(s.attributes['http.response.status_code'], 404);
      assert.equal(s.status.code === ERROR, s.kind === CLIENT, '404: client error, server not');
    }
    for (const c of spans.filter((s) => s.kind === CLIENT)) assert.equal(c.attributes['url.full'], `http://127.0.0.1:${port}${c.attributes['url.path']}`);
  } finally {
    d.kill('SIGTERM');
    if (agent.proc.exitCode === null) agent.proc.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

const GRPC = (grpcJs: string) => `
const grpc = require(${JSON.stringify(grpcJs)});
const ser = (o) => Buffer.from(JSON.stringify(o)); const de = (b) => JSON.parse(b.toString() || '{}');
const m = (name) => ({ path: '/qa.Svc/' + name, requestStream: false, responseStream: false, requestSerialize: ser, requestDeserialize: de, responseSerialize: ser, responseDeserialize: de });
const def = { Ok: m('Ok'), NotFound: m('NotFound'), Invalid: m('Invalid'), Internal: m('Internal'), Slow: m('Slow') };
if (process.argv[2] === 'server') {
  const s = new grpc.Server();
  s.addService(def, {
    Ok: (c, cb) => cb(null, { ok: true }),
    NotFound: (c, cb) => cb({ code: grpc.status.NOT_FOUND, details: 'no such thing' }),
    Invalid: (c, cb) => cb({ code: grpc.status.INVALID_ARGUMENT, details: 'bad' }),
    Internal: (c, cb) => cb({ code: grpc.status.INTERNAL, details: 'boom' }),
    Slow: (c, cb) => setTimeout(() => cb(null, { late: true }), 600),
  });
  s.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, port) => console.log('listening ' + port));
} else {
  const C = grpc.makeGenericClientConstructor(def, 'Svc');
  const c = new C('127.0.0.1:' + process.argv[3], grpc.credentials.createInsecure());
  const call = (name, o = {}) => new Promise((r) => c[name]({}, new grpc.Metadata(), o, (e) => r(e ? e.code : 0)));
  (async () => {
    const out = [await call('Ok'), await call('NotFound'), await call('Invalid'), await call('Internal'), await call('Slow', { deadline: Date.now() + 200 })];
    console.log(out.join(',')); c.close(); setTimeout(() => process.exit(0), 300);
  })();
}
`;

test('gRPC (grpc-js): server spans are errors only for the server\'s failures; the RED series say the same', { timeout: 120_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const dir = tmp();
  const script = path.join(dir, 'grpc.js');
  fs.writeFileSync(script, GRPC(path.join(repoRoot, 'node_modules', '@grpc', 'grpc-js')));
  const agent = await startAgent({ env: { TELEGEN_METRICS_INTERVAL_MS: '1000' } });
  let srv: Served | undefined;
  try {
    srv = await startServer(process.execPath, [script, 'server']);
    const port = srv.port;
    const out = spawnSync(process.execPath, [script, 'client', String(port)], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(out.stdout.trim(), '0,5,3,13,4', out.stderr);
    const mine = () => agent.spans().filter((s) => s.attributes['server.port'] === port && s.attributes['rpc.system'] === 'grpc');
    await waitFor(() => mine().filter((s) => s.kind === SERVER).length >= 5 && mine().filter((s) => s.kind === CLIENT).length >= 5, 30_000).catch(() => undefined);
    const rpcPoints = () => metricPoints(agent.dataDir, 'rpc.server.duration').filter((p) => p.attrs['server.port'] === port);
    await waitFor(() => rpcPoints().length >= 5, 15_000).catch(() => undefined);
    assert.equal(await agent.stop(), 0);
    const spans = mine();
    const want: Record<string, [number, boolean]> = { Ok: [0, false], NotFound: [5, false], Invalid: [3, false], Internal: [13, true], Slow: [4, true] };
    for (const [method, [code, serverError]] of Object.entries(want)) {
      const s = spans.filter((x) => x.attributes['rpc.method'] === method && x.kind === SERVER);
      const c = spans.filter((x) => x.attributes['rpc.method'] === method && x.kind === CLIENT);
      assert.equal(s.length, 1, `${method} server`);
      assert.equal(c.length, 1, `${method} client`);
      if (method === 'Slow' && c[0].attributes['rpc.grpc.status_code'] === undefined) {
        // The client's RST_STREAM (CANCEL, at its deadline) crossed before the server's own
        // DEADLINE_EXCEEDED trailers: no status on the wire. The gRPC protocol makes that
        // CANCELLED, the caller's doing: the client span is the error, the server span is not
        // (d9e009b, test/e2e/qa-grpc-cancel).
        t.diagnostic('Slow: the client\'s reset crossed before the server\'s trailers');
        for (const x of [s[0], c[0]]) assert.equal(x.attributes['telegen.http2.rst_stream.error'], 8);
        assert.equal(c[0].attributes['error.type'], 'CANCEL');
        assert.notEqual(s[0].status.code, ERROR, 'Slow: a call the client cancelled is no server error');
        assert.equal(s[0].attributes['error.type'], undefined);
      } else {
        assert.equal(s[0].status.code === ERROR, serverError, `${method}: server span error only for the server's failures; server ${JSON.stringify(s[0].attributes)} client ${JSON.stringify(c[0].attributes)}`);
        assert.equal(s[0].attributes['rpc.grpc.status_code'], code);
        assert.equal(c[0].attributes['rpc.grpc.status_code'], code);
        assert.equal(s[0].attributes['error.type'], serverError ? String(code) : undefined);
      }
      assert.equal(c[0].status.code === ERROR, code !== 0, `${method}: client span error for every non-OK status`);
      assert.equal(s[0].parentSpanId, c[0].spanId, `${method}: linked`);
    }
    const nf = rpcPoints().filter((p) => p.attrs['rpc.method'] === 'NotFound');
    assert.ok(nf.length > 0 && nf.every((p) => p.attrs['error.type'] === undefined), 'NOT_FOUND is no server error in rpc.server.duration');
    const internal = rpcPoints().filter((p) => p.attrs['rpc.method'] === 'Internal');
    assert.ok(internal.length > 0 && internal.every((p) => p.attrs['error.type'] === '13'));
  } finally {
    await srv?.stop();
    if (agent.proc.exitCode === null) agent.proc.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

const HTTPS_SERVER = `
const https = require('https'); const fs = require('fs');
const s = https.createServer({ key: fs.readFileSync(process.argv[2]), cert: fs.readFileSync(process.argv[3]) }, (req, res) => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('tls ' + req.url); });
s.listen(0, '127.0.0.1', () => console.log('listening ' + s.address().port));
`;

test('HTTPS: each of 20 curl requests (one connection each) is linked to the node server span of the same request; url.full https', { timeout: 180_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const pki = makePki();
  const script = path.join(pki.dir, 'server.js');
  fs.writeFileSync(script, HTTPS_SERVER);
  const cfg = path.join(pki.dir, 'agent.yaml');
  fs.writeFileSync(cfg, 'tracers:\n  profile: { enabled: false }\n');
  const agent = await startAgent({ config: cfg });
  let srv: Served | undefined;
  try {
    srv = await startServer(process.execPath, [script, pki.key, pki.cert]);
    const P = srv.port;
    for (let i = 0; i < 20; i++) assert.equal(execFileSync('curl', ['-sS', '--http1.1', '--cacert', pki.ca, `https://localhost:${P}/r${i}?i=${i}`], { encoding: 'utf8' }), `tls /r${i}?i=${i}`);
    const mine = () => agent.spans().filter((s) => s.attributes['server.port'] === P);
    await waitFor(() => mine().filter((s) => s.kind === SERVER).length >= 20 && mine().filter((s) => s.kind === CLIENT).length >= 20, 30_000).catch(() => undefined);
    assert.equal(await agent.stop(), 0);
    const spans = mine();
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const servers = spans.filter((s) => s.kind === SERVER);
    const clients = spans.filter((s) => s.kind === CLIENT);
    assert.equal(servers.length, 20);
    assert.equal(clients.length, 20);
    const unlinked = servers.filter((s) => byId.get(s.parentSpanId ?? '')?.attributes['url.path'] !== s.attributes['url.path']);
    assert.deepEqual(unlinked.map((s) => s.attributes['url.path']), [], 'every server span is the child of the curl span of its request');
    for (const s of servers) assert.equal(s.attributes['url.scheme'], 'https');
    for (const c of clients) {
      assert.equal(c.attributes['url.scheme'], 'https');
      assert.equal(c.attributes['url.full'], `https://localhost:${P}${c.attributes['url.path']}?${c.attributes['url.query']}`);
    }
  } finally {
    await srv?.stop();
    if (agent.proc.exitCode === null) agent.proc.kill('SIGKILL');
    fs.rmSync(pki.dir, { recursive: true, force: true });
  }
});
