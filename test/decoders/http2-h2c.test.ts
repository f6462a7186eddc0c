// h2c upgrade (RFC 7540 §3.2): the HTTP/1.1 request answered 101 is stream 1 of the HTTP/2
// connection that follows. In the decoder: a whole upgraded connection fed as bytes (request head,
// body, preface / 101 head, frames) at any split. Through the router (replay): the http1 -> http2
// handover with a preface sent before the 101. Through the running agent: curl --http2 and
// nghttp -u against Apache httpd (mod_http2, `Protocols h2c http/1.1`), client and server spans.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { loadDecoder, repoRoot, Harness } from '../helpers/decoder';
import { requireBpf, startAgent, startServer, waitFor, freePort, FlatSpan } from '../helpers/agent';
import { DIR_REQUEST, DIR_RESPONSE, FLAG_NO_REQUEST } from '../../decoders/abi/abi';
import { PREFACE, settings, headers, data, reqBlock, respBlock, exchanges, pairs } from './http2-helpers';
import { Conv, SYN, FIN, PSH } from '../replay/build';
import { replayToSpans } from '../../host/src/cli/replay';

const UPGRADE = 'GET /index.html?lang=en HTTP/1.1\r\nHost: web.example:8080\r\nUser-Agent: curl/7.88.1\r\n' +
  'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n' +
  'Authorization: Bearer secret\r\nX-Request-ID: 7\r\n\r\n';
const SWITCH = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n';

/** One upgraded connection in the order it happens: the request, the 101 with stream 1's
 *  response, the client's preface with stream 3, stream 3's response. */
function conversation(request = UPGRADE): Buffer[] {
  return [
    Buffer.from(request, 'latin1'),
    Buffer.concat([Buffer.from(SWITCH, 'latin1'), settings(), headers(1, respBlock('200', [['content-type', 'text/html']])), data(1, Buffer.from('hello'), true)]),
    Buffer.concat([PREFACE, settings(), headers(3, reqBlock('GET', '/big.txt', 'web.example:8080'), true)]),
    Buffer.concat([headers(3, respBlock('404')), data(3, Buffer.alloc(0), true)]),
  ];
}

/** Feeds the parts alternately from the client, each split in two reads at `cut`. */
function decode(parts: Buffer[], cut: number): Harness {
  const h = loadDecoder('http2');
  let ts = 10n;
  parts.forEach((b, i) => {
    const dir = i % 2 === 0 ? DIR_REQUEST : DIR_RESPONSE;
    const at = Math.min(cut, b.length);
    if (at > 0) h.inst.feed(9, dir, b.subarray(0, at), ts++);
    h.inst.feed(9, dir, b.subarray(at), ts++);
  });
  h.inst.closeStream(9);
  assert.equal(h.inst.counters.traps, 0, h.inst.lastError);
  return h;
}

test('h2c: the upgrade request is stream 1 with its HTTP/2 response; stream 3 follows (every split)', () => {
  const parts = conversation();
  for (let cut = 0; cut < UPGRADE.length + 10; cut += 5) {
    const h = decode(parts, cut);
    const ex = exchanges(h);
    assert.equal(ex.length, 2, `cut ${cut}`);
    const [one, three] = ex;
    const a = one.attributes;
    assert.equal(one.flags & FLAG_NO_REQUEST, 0);
    assert.deepEqual([a['telegen.http2.stream_id'], a['http.request.method'], a['url.path'], a['url.query'], a['server.address'], a['server.port'],
      a['user_agent.original'], a['http.response.status_code'], a['http.response.body.size'], a['telegen.http2.h2c_upgrade'], a['network.protocol.version']],
    [1, 'GET', '/index.html', 'lang=en', 'web.example', 8080, 'curl/7.88.1', 200, 5, true, '2'], `cut ${cut}`);
    // as HTTP/2 would have sent it: pseudo-headers first, names lower-cased, connection-specific
    // fields gone, credentials redacted
    assert.deepEqual(pairs(one, 'telegen.http2.request.headers'), [[':method', 'GET'], [':path', '/index.html?lang=en'], [':scheme', 'http'],
      [':authority', 'web.example:8080'], ['user-agent', 'curl/7.88.1'], ['authorization', 'REDACTED'], ['x-request-id', '7']]);
    assert.equal(a['telegen.request.size'], UPGRADE.length);
    assert.deepEqual([three.attributes['telegen.http2.stream_id'], three.attributes['url.path'], three.attributes['http.response.status_code'], three.attributes['telegen.http2.h2c_upgrade']],
      [3, '/big.txt', 404, undefined]);
    assert.ok(one.tsStart <= 11n, 'stream 1 starts with the HTTP/1.1 request');
  }
});

test('h2c: an upgrade request with a body counts it as stream 1 request body', () => {
  const post = 'POST /form HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n' +
    'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\na=1&b=2';
  const parts = conversation(post);
  for (const cut of [0, 60, post.length - 3]) {
    const a = exchanges(decode(parts, cut))[0].attributes;
    assert.deepEqual([a['telegen.http2.stream_id'], a['http.request.method'], a['http.request.header.content-type'], a['http.request.body.size'], a['telegen.request.size']],
      [1, 'POST', ['application/x-www-form-urlencoded'], 7, post.length], `cut ${cut}`);
  }
});

test('h2c: http1 hands over a chunked 20 KB POST with 10 KiB of fields; stream 1 has its method, path, sizes and HTTP/2 response', () => {
  const big = 'z'.repeat(5000);
  const head = `POST /upload?id=3 HTTP/1.1\r\nHost: web.example\r\nX-A: ${big}\r\nX-B: ${big}\r\nContent-Type: text/plain\r\n` +
    'Transfer-Encoding: chunked\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n';
  const body = '4e20\r\n' + 'b'.repeat(20000) + '\r\n0\r\n\r\n';
  const h1 = loadDecoder('http1');
  const wire = Buffer.from(head + body, 'latin1');
  for (let at = 0; at < wire.length; at += 4096) h1.inst.feed(2, DIR_REQUEST, wire.subarray(at, at + 4096), 10n);
  h1.inst.feed(2, DIR_RESPONSE, Buffer.from(SWITCH, 'latin1'), 20n);
  assert.equal(h1.records.length, 1);
  const a1 = h1.records[0].attributes;
  // what the router does with the pieces (host/src/ingest/router.ts)
  const handed = Buffer.from(['', '.1', '.2', '.3'].map((x) => a1[`telegen.upgrade.request${x}`] ?? '').join(''), 'base64');
  const [, ...rest] = conversation();
  const ex = exchanges(decode([handed, ...rest], 0));
  const a = ex[0].attributes;
  assert.deepEqual([a['telegen.http2.stream_id'], a['http.request.method'], a['url.path'], a['url.query'], a['server.address'], a['http.request.header.content-type'],
    a['http.request.body.size'], a['telegen.request.size'], a['http.response.status_code'], a['http.response.body.size'], a['telegen.http2.h2c_upgrade'], a['telegen.truncated']],
  [1, 'POST', '/upload', 'id=3', 'web.example', ['text/plain'], 20000, wire.length, 200, 5, true, undefined]);
  assert.deepEqual(pairs(ex[0], 'telegen.http2.request.headers').map(([n]) => n),
    [':method', ':path', ':scheme', ':authority', 'x-a', 'x-b', 'content-type']);
  assert.equal(ex[1].attributes['url.path'], '/big.txt');
});

test('h2c through the replay path: a preface sent before the 101 (held by http1) and a 101 alone in its segment', async () => {
  const conv = new Conv({ addr: '10.0.0.1', port: 40000 }, { addr: '10.0.0.2', port: 8080 });
  const [req, resp1, req3, resp3] = conversation();
  let cs = 1000, ss = 5000;
  const send = (fromClient: boolean, b: Buffer) => {
    if (fromClient) { conv.tcp(true, cs, PSH, b, ss); cs += b.length; } else { conv.tcp(false, ss, PSH, b, cs); ss += b.length; }
  };
  conv.tcp(true, cs - 1, SYN); conv.tcp(false, ss - 1, SYN, '', cs);
  // an optimistic client: the preface right behind the request, before the server decided
  send(true, Buffer.concat([req, req3.subarray(0, PREFACE.length)]));
  send(false, Buffer.from(SWITCH, 'latin1'));
  send(false, resp1.subarray(SWITCH.length));
  send(true, req3.subarray(PREFACE.length));
  send(false, resp3);
  conv.tcp(true, cs, FIN, '', ss); conv.tcp(false, ss, FIN, '', cs + 1);
  const { spans } = await replayToSpans(conv.write('h2c-optimistic.pcap'));
  assert.deepEqual(spans.map((x) => {
    const a = x.attributes;
    return [a['telegen.http2.stream_id'], a['http.request.method'], a['url.path'], a['http.response.status_code'], a['telegen.http2.h2c_upgrade'], a['telegen.hpack.unknown'], a['telegen.no_response']];
  }), [[1, 'GET', '/index.html', 200, true, undefined, undefined], [3, 'GET', '/big.txt', 404, undefined, undefined, undefined]]);
});

// ------------------------------------------------------------------ through the running agent

function brief(s: FlatSpan): string {
  const a = s.attributes;
  return [a['telegen.http2.stream_id'] ?? '-', a['http.request.method'], `${String(a['url.path'])}${a['url.query'] ? '?' + String(a['url.query']) : ''}`,
    a['http.response.status_code'], a['network.protocol.version'], a['telegen.http2.h2c_upgrade'] ? 'h2c' : ''].join(' ') + (a['telegen.no_response'] ? ' (no response)' : '');
}

/** nghttp -v's account of its calls as `brief` lines: stream 1 is the upgrade request, every
 *  other stream the HEADERS it sent (:path) and the :status it received, if any. */
function nghttpSaw(verbose: string, upgradePath: string): string[] {
  const paths = new Map<number, string>([[1, upgradePath]]);
  const status = new Map<number, string>();
  let sending = 0;
  for (const line of verbose.split('\n')) {
    const sent = /send HEADERS frame <.*stream_id=(\d+)>/.exec(line);
    if (sent) { sending = Number(sent[1]); continue; }
    const p = /^\s+:path: (\S+)/.exec(line);
    if (p && sending) { paths.set(sending, p[1]); sending = 0; continue; }
    const st = /recv \(stream_id=(\d+)\) :status: (\d+)/.exec(line);
    if (st) status.set(Number(st[1]), st[2]);
  }
  return [...paths].map(([id, p]) => `${id} GET ${p} ${status.get(id) ?? ''} 2 ${id === 1 ? 'h2c' : ''}${status.has(id) ? '' : ' (no response)'}`);
}

test('h2c through the running agent: curl --http2 and nghttp -u upgrade against Apache httpd, client and server spans', { timeout: 180_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const www = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-h2c-www-'));
  const run = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-h2c-run-'));
  fs.chmodSync(www, 0o755);
  fs.writeFileSync(path.join(www, 'index.html'), 'hello from apache\n');
  // under the socket tracer's capture_max (16 KiB a syscall): a longer read loses its END_STREAM to a gap
  fs.writeFileSync(path.join(www, 'big.txt'), 'x'.repeat(12000));
  for (const f of fs.readdirSync(www)) fs.chmodSync(path.join(www, f), 0o644);
  const port = await freePort();
  const apache = await startServer(path.join(repoRoot, 'decoders', 'http2', 'testdata', 'record', 'apache-h2c.sh'), [www, run, String(port)],
    { port, readyPattern: /^listening/m });
  const agent = await startAgent().catch(async (e) => { await apache.stop(); throw e; });
  try {
    const B = `http://127.0.0.1:${port}`;
    // curl: one upgrade per connection (curl 7.88 fails a second request on a connection Apache
    // ends with GOAWAY right after the upgraded stream); nghttp: the upgrade, then a second stream
    for (const url of [`${B}/index.html?via=curl`, `${B}/big.txt`, `${B}/index.html?via=big`]) {
      // the last one: a 7 KiB field, more than the 6 KiB copy of the request http1 once handed over
      const big = url.endsWith('big') ? ['-H', `x-big: ${'b'.repeat(7000)}`] : [];
      assert.equal(execFileSync('curl', ['-sS', '--max-time', '20', '--http2', ...big, '-o', '/dev/null', '-w', '%{http_version} %{http_code}', url], { encoding: 'utf8' }), '2 200');
    }
    // the oracle for nghttp's streams is nghttp itself: the ids it opened and the statuses it got
    // (Apache may end the connection with GOAWAY before answering the second stream)
    const verbose = execFileSync('nghttp', ['-nuv', `${B}/index.html?via=nghttp`, `${B}/missing`], { encoding: 'utf8', timeout: 20_000 });
    const want = ['1 GET /index.html?via=curl 200 2 h2c', '1 GET /big.txt 200 2 h2c', '1 GET /index.html?via=big 200 2 h2c', ...nghttpSaw(verbose, '/index.html?via=nghttp')];
    const ours = (kind: number) => agent.spans().filter((s) => s.kind === kind && s.attributes['server.port'] === port).map(brief);
    const SERVER = 2, CLIENT = 3;
    for (const kind of [SERVER, CLIENT]) await waitFor(() => want.every((w) => ours(kind).includes(w)), 45_000).catch(() => undefined);
    for (const kind of [SERVER, CLIENT]) {
      assert.deepEqual(ours(kind).sort(), [...want].sort(), `${kind === SERVER ? 'server (apache2)' : 'client (curl, nghttp)'} spans`);
    }
  } finally {
    await apache.stop();
    await agent.stop();
    fs.rmSync(www, { recursive: true, force: true });
    fs.rmSync(run, { recursive: true, force: true });
  }
});
