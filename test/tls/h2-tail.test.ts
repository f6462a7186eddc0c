// The tail of a TLS write longer than capture_max (bpf/include/tls_emit.h tls_emit_tail). nghttpd
// (libnghttp2 and the system's OpenSSL) serves a 40 KB file as one SSL_write of HEADERS and three
// DATA frames, END_STREAM on the last one, past the first 16 KiB; with --trailer the trailers'
// HEADERS end it instead, in the same write. With the head only, those exchanges had no end (it
// was lost with the frame headers) and were telegen.unknown, reported at the close; with the tail
// the decoder finds the last frames again. A Node http2 secure server's res.end() of 40 KB loses
// frame headers the same way but sends END_STREAM (an empty DATA frame) or the trailers in a
// later write, and grpc-js sends a 50 KB response message, then its trailers: the decoder must
// end those exchanges where it finds their end after the lost bytes (decoders/http2 onLost).
// Clients: curl --http2 (SSLKEYLOGFILE: tshark decrypts the connections and is the oracle for the
// frames, END_STREAM flags and trailers), nghttp (the requests at once on one connection), grpc-js.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { requireBpf, startAgent, startServer, waitFor, FlatSpan, RunningAgent, Served } from '../helpers/agent';
import { startLoCapture, stopLoCapture, Capture } from '../helpers/capture';
import { tlsScratch, startNghttpd, GRPC_ECHO_JS } from './tls-helpers';

const SERVER = 2;
const CLIENT = 3;
const BIG = 40_000;
const MSG = 50_000;

const H2_SERVER_JS = `
const http2 = require('http2'); const fs = require('fs');
const big = Buffer.alloc(${BIG}, 'b');
const srv = http2.createSecureServer({ key: fs.readFileSync(process.argv[2]), cert: fs.readFileSync(process.argv[3]) }, (req, res) => {
  req.resume();
  req.on('end', () => {
    if (req.url.startsWith('/big')) {
      res.writeHead(req.url.startsWith('/big/missing') ? 404 : 200, { 'content-type': 'application/octet-stream' });
      if (req.url.startsWith('/big/trailers')) res.addTrailers({ 'x-checksum': 'c0ffee' });
      res.end(big);
    } else { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('small ' + req.url); }
  });
});
srv.listen(0, '127.0.0.1', () => console.log('listening ' + srv.address().port));
`;

// Unary answers a blob of n bytes: one message (one SSL_write longer than the capture), then the trailers.
const GRPC_SERVER_JS = GRPC_ECHO_JS + `
const server = new grpc.Server();
server.addService(Echo.service, {
  Unary: (call, cb) => cb(null, { text: 'echo:' + call.request.text, blob: Buffer.alloc(call.request.n, 7) }),
  ClientStream: (call, cb) => cb(null, {}), ServerStream: (call) => call.end(), Bidi: (call) => call.end(),
  Fail: (call, cb) => cb({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'over quota' }),
});
const creds = grpc.ServerCredentials.createSsl(null, [{ private_key: fs.readFileSync(process.argv[2]), cert_chain: fs.readFileSync(process.argv[3]) }], false);
server.bindAsync('127.0.0.1:0', creds, (err, port) => { if (err) throw err; console.log('listening ' + port); });
`;

// Big, small, big, failing, big on one channel; prints "code bytes" per call.
const GRPC_CLIENT_JS = GRPC_ECHO_JS + `
const c = new Echo('127.0.0.1:' + process.argv[2], grpc.credentials.createSsl(fs.readFileSync(process.argv[3])), { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' });
const call = (m, msg) => new Promise((res) => c[m](msg, (err, r) => res(err ? err.code + ' 0' : '0 ' + r.blob.length)));
(async () => {
  const out = [];
  for (const [m, n] of [['Unary', ${MSG}], ['Unary', 10], ['Unary', ${MSG}], ['Fail', 0], ['Unary', ${MSG}]]) out.push(await call(m, { text: 't', n }));
  console.log(out.join(',')); c.close();
})();
`;

function brief(s: FlatSpan): string {
  const a = s.attributes;
  return `${a['http.request.method']} ${a['url.path']} ${a['http.response.status_code']}`;
}

function dumpOf(spans: FlatSpan[]): string {
  return JSON.stringify(spans.map((s) => [s.kind, s.attributes['process.executable.name'], brief(s), s.attributes['http.response.body.size'],
    s.attributes['telegen.http2.response.trailers'], s.attributes['telegen.unknown'], s.attributes['error.type']]));
}

interface Frame { sid: number; type: number; len: number; end: boolean }

/** tshark's decoding (with the clients' key log) of curl's HTTP/2 connection to `port`: the
 *  paths requested, in order (curl's streams 1, 3, 5…), and the frames the server sent on each. */
function tsharkStreams(pcap: string, keylog: string, port: number, paths: string[]): Map<string, Frame[]> {
  const fields = (filter: string, f: string[]) => execFileSync('tshark', ['-r', pcap, '-o', `tls.keylog_file:${keylog}`, '-Y', filter, '-T', 'fields',
    '-E', 'occurrence=a', '-E', 'aggregator=,', ...f.flatMap((x) => ['-e', x])], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
    .split('\n').filter((l) => l.trim()).map((l) => l.split('\t').map((c) => c.split(',')));
  const sent = fields(`http2 && tcp.srcport == ${port}`, ['http2.streamid', 'http2.type', 'http2.length', 'http2.flags.end_stream'])
    .flatMap(([sid, ty, len, end]) => sid.map((x, i) => ({ sid: Number(x), type: Number(ty[i]), len: Number(len[i]), end: ['1', 'True', 'true'].includes(end[i]) })));
  assert.deepEqual(fields(`http2.headers.path && tcp.dstport == ${port}`, ['http2.headers.path']).flatMap((r) => r[0]), paths, `tshark: requests to ${port}`);
  return new Map(paths.map((p, i) => [p, sent.filter((f) => f.sid === 2 * i + 1)]));
}

async function tlsCounter(agent: RunningAgent, name: string): Promise<number> {
  const m = new RegExp(`^telegen_bpf_tls_${name}_total\\{[^}]*\\} (\\d+)`, 'm').exec(await (await agent.api('/metrics')).text());
  return m ? Number(m[1]) : 0;
}

test('HTTP/2 over TLS: the END_STREAM frame and trailers after the 16 KiB capture of one SSL_write end their exchanges', { timeout: 240_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const { pki, file, cfg } = tlsScratch({ 'h2.js': H2_SERVER_JS, 'gs.js': GRPC_SERVER_JS, 'gc.js': GRPC_CLIENT_JS });
  const docs = file('htdocs');
  fs.mkdirSync(docs);
  const body = crypto.randomBytes(BIG);
  for (const f of ['big1', 'big2', 'big3']) fs.writeFileSync(path.join(docs, f), body);
  fs.writeFileSync(path.join(docs, 'small'), 'small answer\n');
  const agent = await startAgent({ config: cfg });
  const servers: Served[] = [];
  let cap: Capture | undefined;
  try {
    const nd = await startNghttpd(pki, docs);
    servers.push(nd);
    const ndTrl = await startNghttpd(pki, docs, ['--trailer=x-checksum: c0ffee']);
    servers.push(ndTrl);
    const h2 = await startServer(process.execPath, [file('h2.js'), pki.key, pki.cert]);
    servers.push(h2);
    const gs = await startServer(process.execPath, [file('gs.js'), pki.key, pki.cert]);
    servers.push(gs);
    const tails0 = await tlsCounter(agent, 'tails');
    const pcap = path.join(pki.dir, 'h2.pcapng');
    const keylog = path.join(pki.dir, 'keys.txt');
    cap = await startLoCapture(pcap, [nd, ndTrl, h2].map((x) => `tcp port ${x.port}`).join(' or '), nd.port);
    // curl: one connection per server, the paths one after another
    const curlTo = (port: number, paths: string[]) => execFileSync('curl', ['-sS', '--http2', '--cacert', pki.ca, '-w', '%{http_code} %{size_download}\\n',
      ...paths.flatMap((u) => ['-o', '/dev/null', `https://localhost:${port}${u}`])], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, SSLKEYLOGFILE: keylog } });
    const ndPaths = ['/big1', '/small', '/big2', '/missing', '/big3'];
    assert.match(curlTo(nd.port, ndPaths), new RegExp(`^200 ${BIG}\\n200 13\\n200 ${BIG}\\n404 \\d+\\n200 ${BIG}\\n$`));
    const trlPaths = ['/big1', '/small', '/big2'];
    assert.equal(curlTo(ndTrl.port, trlPaths), `200 ${BIG}\n200 13\n200 ${BIG}\n`);
    const h2Paths = ['/big/1', '/small/1', '/big/trailers/1', '/small/2', '/big/missing/1'];
    assert.equal(curlTo(h2.port, h2Paths), `200 ${BIG}\n200 14\n200 ${BIG}\n200 14\n404 ${BIG}\n`);
    await stopLoCapture(cap);
    cap = undefined;
    // nghttp: the requests at once on one connection (their frames interleave)
    execFileSync('nghttp', ['-n', ...['/big1', '/small', '/big3'].map((u) => `https://127.0.0.1:${ndTrl.port}${u}`)], { timeout: 30_000, stdio: 'ignore' });
    const grpcOut = execFileSync(process.execPath, [file('gc.js'), String(gs.port), pki.ca], { encoding: 'utf8', timeout: 30_000 }).trim();
    assert.equal(grpcOut, `0 ${MSG},0 10,0 ${MSG},8 0,0 ${MSG}`);

    // tshark: each big answer is 40,000 bytes of DATA in three frames or more; nghttpd sets
    // END_STREAM on the last one (or, with --trailer, on the trailers after it), node sends it on
    // an empty DATA frame of its own
    const ends = (frames: Frame[]) => frames.filter((f) => f.end && (f.type === 0 || f.type === 1) && f !== frames[0]).map((f) => (f.type === 0 ? `DATA ${f.len > 0 ? 'payload' : 'empty'}` : 'HEADERS'));
    for (const [port, paths, asked] of [[nd.port, ndPaths, ndPaths], [ndTrl.port, trlPaths, trlPaths], [h2.port, h2Paths, h2Paths]]) {
      const streams = tsharkStreams(pcap, keylog, port as number, asked as string[]);
      for (const p of (paths as string[]).filter((x) => x.includes('big'))) {
        const end = port === nd.port ? 'DATA payload' : port === ndTrl.port || p.includes('trailers') ? 'HEADERS' : 'DATA empty';
        const f = streams.get(p)!;
        const data = f.filter((x) => x.type === 0);
        assert.equal(data.reduce((n, x) => n + x.len, 0), BIG, `tshark ${port} ${p}: ${JSON.stringify(f)}`);
        assert.ok(data.length >= 3, `tshark ${port} ${p}: ${JSON.stringify(f)}`);
        assert.deepEqual(ends(f), [end], `tshark ${port} ${p}: ${JSON.stringify(f)}`);
      }
    }

    const onPort = (p: number) => agent.spans().filter((s) => s.attributes['server.port'] === p);
    const counts: Array<[number, number]> = [[nd.port, ndPaths.length], [ndTrl.port, trlPaths.length + 3], [h2.port, h2Paths.length], [gs.port, 5]];
    await waitFor(() => counts.every(([p, n]) => onPort(p).filter((s) => s.kind === SERVER).length >= n && onPort(p).filter((s) => s.kind === CLIENT).length >= n), 30_000).catch(() => undefined);
    // the tails were written: nghttpd's five and node's three big answers, nghttp's two
    assert.ok(await tlsCounter(agent, 'tails') - tails0 >= 10, `tails: ${await tlsCounter(agent, 'tails') - tails0}`);

    for (const [port, paths] of [[nd.port, ndPaths], [ndTrl.port, trlPaths], [h2.port, h2Paths]] as Array<[number, string[]]>) {
      const spans = onPort(port);
      const dump = dumpOf(spans);
      const srv = spans.filter((s) => s.kind === SERVER && String(s.attributes['user_agent.original']).startsWith('curl/'));
      const curlSrv = paths.map((p) => srv.find((s) => s.attributes['url.path'] === p)!);
      assert.ok(curlSrv.every((s) => s), `${port}: ${dump}`);
      for (const x of curlSrv) {
        const p = String(x.attributes['url.path']);
        const missing = p.includes('missing');
        assert.equal(x.attributes['http.response.status_code'], missing ? 404 : 200, `${p}: ${dump}`);
        // an answered exchange like any other: not unknown, no error, its end seen
        assert.equal(x.attributes['telegen.unknown'], undefined, `${port} ${p}: ${dump}`);
        assert.equal(x.attributes['telegen.no_response'], undefined, `${port} ${p}: ${dump}`);
        assert.equal(x.status.code ?? 0, 0, `${port} ${p}: ${dump}`);
        // the body size is left out when the lost bytes held frame headers, never reported short
        if (p.includes('big')) assert.ok([undefined, BIG].includes(x.attributes['http.response.body.size'] as number), `${port} ${p}: ${dump}`);
        if (port === ndTrl.port || p.includes('trailers')) assert.deepEqual(x.attributes['telegen.http2.response.trailers'], ['x-checksum', 'c0ffee'], `${port} ${p}: ${dump}`);
      }
      // curl's next request on the connection began after the big answer had ended
      for (let i = 0; i + 1 < curlSrv.length; i++) assert.ok(curlSrv[i].end <= curlSrv[i + 1].start, `${port}: ${paths[i]} ends before ${paths[i + 1]}: ${dump}`);
      // curl read every answer in reads within the capture: its spans are exact
      for (const x of spans.filter((s) => s.kind === CLIENT && s.attributes['process.executable.name'] === 'curl')) {
        const p = String(x.attributes['url.path']);
        if (p.includes('big')) assert.equal(x.attributes['http.response.body.size'], BIG, `${port} curl ${p}: ${dump}`);
      }
    }
    // nghttp's concurrent requests: nghttpd may answer all three in one write, the small answer's
    // end in its lost middle: that one is then unknown (its end unseen), never an error or short
    const ng = onPort(ndTrl.port).filter((s) => s.kind === SERVER && String(s.attributes['user_agent.original']).startsWith('nghttp2/'));
    assert.deepEqual(ng.map(brief).sort(), ['GET /big1 200', 'GET /big3 200', 'GET /small 200'], dumpOf(ng));
    for (const x of ng) {
      assert.equal(x.status.code ?? 0, 0, dumpOf(ng));
      assert.equal(x.attributes['telegen.no_response'], undefined, dumpOf(ng));
      assert.ok([undefined, x.attributes['url.path'] === '/small' ? 13 : BIG].includes(x.attributes['http.response.body.size'] as number), dumpOf(ng));
    }
    t.diagnostic(`nghttp: ${dumpOf(ng)}`);

    // gRPC: each 50 KB message lost frame headers; grpc-status came from the trailers after them
    const gSpans = onPort(gs.port);
    const gDump = JSON.stringify(gSpans.map((s) => [s.kind, s.attributes['rpc.method'], s.attributes['rpc.grpc.status_code'], s.attributes['telegen.unknown'], String(s.start), String(s.end)]));
    for (const kind of [SERVER, CLIENT]) {
      const g = gSpans.filter((s) => s.kind === kind).sort((a, b) => (a.start < b.start ? -1 : 1));
      assert.deepEqual(g.map((s) => `${s.attributes['rpc.method']} ${s.attributes['rpc.grpc.status_code']}`), ['Unary 0', 'Unary 0', 'Unary 0', 'Fail 8', 'Unary 0'], gDump);
      for (const s of g) assert.equal(s.attributes['http.response.status_code'], 200, gDump);
      for (let i = 0; i + 1 < g.length; i++) assert.ok(g[i].end <= g[i + 1].start, `${kind}: call ${i} ends before call ${i + 1}: ${gDump}`);
    }
  } finally {
    if (cap) await stopLoCapture(cap);
    for (const x of servers) await x.stop();
    if (agent.proc.exitCode === null) await agent.stop();
    fs.rmSync(pki.dir, { recursive: true, force: true });
  }
});
