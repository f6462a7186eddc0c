// A request the decoder gave up on (its tick's timeout, the connection still open) lasts until it
// gave up and is an error with error.type=timeout, on both sides. It was a span of 0 s with no
// error: a request hung for a minute read as the fastest one in the duration histograms.
// The rule on synthetic records (no BPF), then a real client and server through the agent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, execFileSync } from 'child_process';
import { SpanStatusCode } from '@opentelemetry/api';
import { requireBpf, startAgent, startServer, waitFor, FlatSpan, Served } from '../helpers/agent';
import { recordToSpan, identityClock } from '../../host/src/pipeline/spans';
import { ConnMeta } from '../../host/src/model';
import { KIND_EXCHANGE, FLAG_NO_RESPONSE, FLAG_TIMEOUT } from '../../decoders/abi/abi';

const SERVER = 2;
const CLIENT = 3;
const ERROR = 2;

function rec(flags: number, attributes: Record<string, unknown>, tsStart: bigint, tsEnd: bigint) {
  return { kind: KIND_EXCHANGE, flags, stream: 1, tsStart, tsEnd, attributes: { ...attributes } } as Parameters<typeof recordToSpan>[0];
}
function conn(role: 'client' | 'server', port: number): ConnMeta {
  return role === 'client'
    ? { role, localAddr: '127.0.0.1', localPort: 40000, remoteAddr: '127.0.0.1', remotePort: port, transport: 'tcp' }
    : { role, localAddr: '127.0.0.1', localPort: port, remoteAddr: '127.0.0.1', remotePort: 40000, transport: 'tcp' };
}

test('timed out by the decoder (FLAG_TIMEOUT): every protocol, both sides, an error with error.type=timeout lasting until the decoder gave up', () => {
  const cases: Array<[string, number, Record<string, unknown>]> = [
    ['http1', 8080, { 'http.request.method': 'GET', 'url.path': '/hang', 'network.protocol.version': '1.1' }],
    ['http2', 50051, { 'http.request.method': 'POST', 'url.path': '/pkg.Svc/M', 'rpc.system': 'grpc', 'rpc.service': 'pkg.Svc', 'rpc.method': 'M' }],
    ['kafka', 9092, { 'messaging.system': 'kafka', 'messaging.operation.name': 'produce', 'messaging.destination.name': 't' }],
    ['postgresql', 5432, { 'db.system.name': 'postgresql', 'db.query.text': 'select pg_sleep(600)' }],
    ['dns', 53, { 'dns.question.name': 'slow.example' }],
  ];
  const start = 1_000_000_000n, gaveUp = 61_000_000_000n;
  for (const [protocol, port, attrs] of cases) {
    for (const role of ['client', 'server'] as const) {
      const s = recordToSpan(rec(FLAG_NO_RESPONSE | FLAG_TIMEOUT, attrs, start, gaveUp), conn(role, port), protocol, { clock: identityClock })!;
      const what = `${protocol} ${role}`;
      assert.equal(s.status.code, SpanStatusCode.ERROR, what);
      assert.equal(s.attributes['error.type'], 'timeout', what);
      assert.equal(s.attributes['telegen.no_response'], true, what);
      assert.equal(s.duration[0] * 1e9 + s.duration[1], Number(gaveUp - start), `${what}: from the request to the decoder's give-up`);
    }
  }
  // Without FLAG_TIMEOUT (the agent stopping, a decoder swap) an open connection's HTTP request
  // is no error: it may still be answered.
  const open = recordToSpan(rec(FLAG_NO_RESPONSE, cases[0][2], start, start), conn('client', 8080), 'http1', { clock: identityClock })!;
  assert.equal(open.status.code, SpanStatusCode.UNSET);
  assert.equal(open.attributes['error.type'], undefined);
});

// ---------------------------------------------------------------------------------------------
// Through the running agent: the HTTP/1 decoder gives up after 60 s (decoders/http1/types.ts
// EXCHANGE_TIMEOUT_NS, not configurable); the agent ticks it once a second with the time of the
// last socket event, so answered requests keep that clock moving past the timeout.

const HTTP1_TIMEOUT_MS = 60_000;
const HANG_SERVER = `
const http = require('http');
const s = http.createServer((req, res) => {
  if (req.url.startsWith('/hang')) return; // never answered; the connection stays open
  res.writeHead(200, { 'content-type': 'text/plain' }); res.end('ok\\n');
});
s.keepAliveTimeout = 0; s.headersTimeout = 0; s.requestTimeout = 0; s.timeout = 0;
s.listen(0, '127.0.0.1', () => console.log('listening ' + s.address().port));
`;

const durMs = (s: FlatSpan) => Number(s.end - s.start) / 1e6;

test('HTTP/1 request a 127.0.0.1 server never answers, connection kept open past the decoder timeout: both spans last ≥ 60 s and are errors (timeout)', { timeout: 180_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-decoder-timeout-'));
  fs.writeFileSync(path.join(dir, 'hang.js'), HANG_SERVER);
  const agent = await startAgent();
  let srv: Served | undefined;
  let client: ReturnType<typeof spawn> | undefined;
  try {
    srv = await startServer(process.execPath, [path.join(dir, 'hang.js')]);
    const P = srv.port;
    // A client that sends its request and waits, connection open, far past the decoder's timeout.
    client = spawn(process.execPath, ['-e', `
      const s = require('net').connect(${P}, '127.0.0.1', () => { s.write('GET /hang?q=1 HTTP/1.1\\r\\nHost: 127.0.0.1:${P}\\r\\n\\r\\n'); console.log('sent'); });
      s.on('data', (d) => console.log('answered ' + d));
      setTimeout(() => s.destroy(), 170_000);
    `], { stdio: ['ignore', 'pipe', 'pipe'] });
    let cliOut = '';
    client.stdout!.on('data', (d) => { cliOut += String(d); });
    await waitFor(() => cliOut.includes('sent'), 10_000);
    const sentAt = Date.now();
    const hung = () => agent.spans().filter((s) => s.attributes['server.port'] === P && s.attributes['url.path'] === '/hang');
    await new Promise((r) => setTimeout(r, HTTP1_TIMEOUT_MS - 2_000));
    // Answered requests (their socket events) move the agent's clock past the timeout.
    await waitFor(() => {
      execFileSync('curl', ['-sS', '--max-time', '5', `http://127.0.0.1:${P}/ok`], { encoding: 'utf8' });
      return hung().length >= 2;
    }, 40_000, 1_000).catch(() => undefined);
    const gaveUpAfterMs = Date.now() - sentAt;
    assert.equal(client.exitCode, null, 'the client still holds its connection open');
    assert.ok(!cliOut.includes('answered'), 'the server never answered');
    assert.equal(await agent.stop(), 0);
    const spans = hung();
    const brief = spans.map((s) => `${s.kind} ${durMs(s).toFixed(0)}ms status=${s.status.code ?? 0} ${s.attributes['error.type']}`).join('\n');
    for (const kind of [CLIENT, SERVER]) {
      const k = spans.filter((s) => s.kind === kind);
      assert.equal(k.length, 1, `one ${kind === CLIENT ? 'client' : 'server'} span of the hung request:\n${brief}`);
      const s = k[0];
      assert.equal(s.attributes['telegen.no_response'], true);
      assert.equal(s.status.code, ERROR, `the request timed out: ${brief}`);
      assert.equal(s.attributes['error.type'], 'timeout');
      assert.equal(s.attributes['http.response.status_code'], undefined);
      assert.ok(durMs(s) >= HTTP1_TIMEOUT_MS, `it lasted until the decoder gave up (≥ 60 s), not 0 s: ${brief}`);
      assert.ok(durMs(s) <= gaveUpAfterMs + 1_000, `and no longer than it was waited for (${gaveUpAfterMs} ms): ${brief}`);
    }
  } finally {
    if (client && client.exitCode === null) client.kill('SIGKILL');
    await srv?.stop();
    if (agent.proc.exitCode === null) agent.proc.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
