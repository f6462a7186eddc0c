// A TLS client's span encloses its server's: a plaintext write is stamped when SSL_write began,
// not when it returned (bpf/tls.bpf.c). Stamped at the return, a request sent by a long SSL_write
// started its client span after its server span (the 16 MiB case: 50 ms after, in both runs
// with the old object). Under load: concurrent curl clients, both cores kept busy, against a
// Node https server (node's statically linked OpenSSL is hooked), all asserted; the old object
// passed that one here too (its window is the few µs between curl's write(2) and the uretprobe).
// The same clients over plain HTTP are reported on: the socket tracer stamps a write at syscall
// exit, which is what READ_ORDER_SLACK_NS in host/src/correlate/correlator.ts still covers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawn, spawnSync, ChildProcess } from 'child_process';
import { requireBpf, startAgent, startServer, waitFor, freePort, FlatSpan, Served } from '../helpers/agent';
import { makePki } from './tls-helpers';

const SERVER = 2;
const CLIENT = 3;
const CURLS = 4;        // concurrent curl processes per scheme
const PER_CURL = 10;    // keep-alive requests each
const PER_SCHEME = CURLS * PER_CURL;

// One process serving HTTPS and HTTP; each response, once the body is read, is computed (a few
// ms of CPU), so requests of concurrent clients interleave in the server.
const SERVER_JS = `
const https = require('https'); const http = require('http'); const fs = require('fs');
const handler = (req, res) => {
  let n = 0; req.on('data', (d) => n += d.length);
  req.on('end', () => {
    let x = 0; for (let i = 0; i < 2e5; i++) x += i % 7;
    res.writeHead(200, { 'content-type': 'text/plain' }); res.end('ok ' + req.url + ' ' + n + ' ' + x);
  });
};
const s = https.createServer({ key: fs.readFileSync(process.argv[2]), cert: fs.readFileSync(process.argv[3]) }, handler);
const p = http.createServer(handler);
p.listen(Number(process.argv[4]), '127.0.0.1', () => s.listen(0, '127.0.0.1', () => console.log('listening ' + s.address().port)));
`;

// One request, head and a 16 MiB body, sent by one SSL_write (Python's ssl sendall: SSL_write_ex
// of the whole buffer, libssl.so.3, socket BIO). Loopback's socket buffers hold a few MiB: the call
// cannot return before the server has read most of the body, and so the request's first bytes.
const BIG_WRITE_PY = `
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
body = b'x' * (16 << 20)
head = b'POST /https/big HTTP/1.1\\r\\nHost: localhost\\r\\nContent-Length: %d\\r\\nConnection: close\\r\\n\\r\\n' % len(body)
s = ssl.create_default_context(cafile=ca).wrap_socket(socket.create_connection(('127.0.0.1', port)), server_hostname='localhost')
s.sendall(head + body)
resp = b''
while True:
    d = s.recv(65536)
    if not d: break
    resp += d
assert resp.startswith(b'HTTP/1.1 200'), resp[:100]
sys.stdout.write(resp.split(b'\\r\\n\\r\\n', 1)[1].decode())
`;

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((ok, ko) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr!.on('data', (d) => err += d);
    p.on('exit', (code) => code === 0 ? ok() : ko(new Error(`${cmd} ${args.slice(0, 3).join(' ')}: exit ${code} ${err}`)));
  });
}

/** The exchanges of one scheme: each server span with the client span of the same request. */
function pairs(spans: FlatSpan[], scheme: string, port: number) {
  const mine = spans.filter((s) => s.attributes['server.port'] === port && String(s.attributes['url.path']).startsWith(`/${scheme}/`));
  const clients = new Map(mine.filter((s) => s.kind === CLIENT).map((s) => [String(s.attributes['url.path']), s]));
  const servers = mine.filter((s) => s.kind === SERVER);
  return { clients, servers, pairs: servers.map((s) => ({ server: s, client: clients.get(String(s.attributes['url.path'])) })) };
}

/** An unlinked exchange: how each span was decided, and how far the client started after and
 *  ended before the server span. */
function why({ server, client }: { server: FlatSpan; client?: FlatSpan }): string {
  const us = (d: bigint) => `${Number(d) / 1e3} µs`;
  return `${server.attributes['url.path']}: server ${server.attributes['telegen.correlation']}, ` +
    (client ? `client ${client.attributes['telegen.correlation']}, starts ${us(client.start - server.start)} after, ends ${us(server.end - client.end)} before` : 'no client');
}

/** The requests without both spans, each once. */
function missing(p: ReturnType<typeof pairs>, scheme: string): string[] {
  const want = Array.from({ length: CURLS }, (_, c) => Array.from({ length: PER_CURL }, (_, r) => `/${scheme}/c${c}/r${r}`)).flat();
  const served = p.servers.map((s) => String(s.attributes['url.path']));
  return want.flatMap((w) => {
    const n = served.filter((x) => x === w).length;
    return n === 1 && p.clients.has(w) ? [] : [`${w}: ${n} server, ${p.clients.has(w) ? 1 : 0} client`];
  });
}

test('HTTPS under load: every curl client span starts no later and ends no earlier than its server span, and is its parent', { timeout: 240_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const pki = makePki();
  const script = path.join(pki.dir, 'server.js');
  fs.writeFileSync(script, SERVER_JS);
  const cfg = path.join(pki.dir, 'agent.yaml');
  fs.writeFileSync(cfg, 'tracers:\n  profile: { enabled: false }\n');
  const agent = await startAgent({ config: cfg });
  let srv: Served | undefined;
  const burners: ChildProcess[] = [];
  try {
    const plainPort = await freePort();
    srv = await startServer(process.execPath, [script, pki.key, pki.cert, String(plainPort)]);
    const tlsPort = srv.port;
    // Both cores busy while the clients run: the machine a client's write returns late on.
    for (let i = 0; i < 2; i++) burners.push(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
    const load = (scheme: 'https' | 'http', port: number) => [
      ...Array.from({ length: CURLS }, (_, c) => run('curl', ['-sS', '--http1.1', '--max-time', '60', '--cacert', pki.ca,
        ...Array.from({ length: PER_CURL }, (_, r) => `${scheme}://localhost:${port}/${scheme}/c${c}/r${r}`)])),
    ];
    await Promise.all([...load('https', tlsPort), ...load('http', plainPort)]);
    for (const b of burners) b.kill('SIGKILL');
    const done = (scheme: string, port: number) => {
      const p = pairs(agent.spans(), scheme, port);
      return p.servers.length >= PER_SCHEME && p.clients.size >= PER_SCHEME;
    };
    await waitFor(() => done('https', tlsPort) && done('http', plainPort), 60_000).catch(() => undefined);
    assert.equal(await agent.stop(), 0);
    const spans = agent.spans();

    const tls = pairs(spans, 'https', tlsPort);
    const outOfOrder = tls.pairs.filter(({ server, client }) => !client || client.start > server.start || client.end < server.end)
      .map(({ server, client }) => `${server.attributes['url.path']}: client ${client ? `starts ${Number(client.start - server.start) / 1e3} µs after, ends ${Number(server.end - client.end) / 1e3} µs before` : 'missing'}`);
    assert.deepEqual(outOfOrder, [], 'each HTTPS client span encloses its server span');
    const unlinked = tls.pairs.filter(({ server, client }) => server.parentSpanId !== client?.spanId).map(why);
    assert.deepEqual(unlinked, [], 'each HTTPS server span is the child of its client span');
    assert.deepEqual(missing(tls, 'https'), [], 'a server and a client span for each HTTPS request');

    // Plain HTTP: every exchange decoded on both sides; how often a client's start (write(2)
    // exit) came after its server span's start or end is reported, since READ_ORDER_SLACK_NS
    // covers the latter.
    const plain = pairs(spans, 'http', plainPort);
    assert.deepEqual(missing(plain, 'http'), [], 'a server and a client span for each HTTP request');
    const plainUnlinked = plain.pairs.filter(({ server, client }) => server.parentSpanId !== client?.spanId).map(why);
    // Reported, not asserted: in about 1 run of 20 here one plain exchange (a curl's last) was
    // left unlinked, with READ_ORDER_SLACK_NS in place; the socket tracer is not this test's.
    if (plainUnlinked.length) t.diagnostic(`plain HTTP unlinked: ${plainUnlinked.join('; ')}`);
    const late = plain.pairs.filter(({ server, client }) => client && client.start > server.start);
    const after = plain.pairs.filter(({ server, client }) => client && client.start > server.end);
    t.diagnostic(`plain HTTP: ${late.length}/${plain.pairs.length} client spans start after their server span starts, ${after.length} after it ended` +
      (after.length ? ` (by up to ${Math.max(...after.map(({ server, client }) => Number(client!.start - server.end))) / 1e3} µs)` : ''));
  } finally {
    for (const b of burners) if (b.exitCode === null) b.kill('SIGKILL');
    await srv?.stop();
    if (agent.proc.exitCode === null) agent.proc.kill('SIGKILL');
    fs.rmSync(pki.dir, { recursive: true, force: true });
  }
});

test('HTTPS: a 16 MiB request sent by one SSL_write (Python) is stamped when the call began: its client span starts before the node server span and is its parent', { timeout: 180_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const pki = makePki();
  const script = path.join(pki.dir, 'server.js');
  fs.writeFileSync(script, SERVER_JS);
  const cfg = path.join(pki.dir, 'agent.yaml');
  // 1 KiB of each call is plenty for the HTTP head: the body's 16 MiB, in plaintext and in
  // ciphertext, need not cross the ring (the client's request record comes after all of it).
  fs.writeFileSync(cfg, 'tracers:\n  profile: { enabled: false }\n  tls: { capture_max: 1024 }\n  socket: { capture_max: 1024 }\n');
  const agent = await startAgent({ config: cfg });
  let srv: Served | undefined;
  try {
    srv = await startServer(process.execPath, [script, pki.key, pki.cert, String(await freePort())]);
    const P = srv.port;
    const py = spawnSync('python3', ['-c', BIG_WRITE_PY, String(P), pki.ca], { encoding: 'utf8', timeout: 60_000 });
    assert.match(py.stdout, new RegExp(`ok /https/big ${16 << 20} `), py.stderr);
    const mine = () => agent.spans().filter((s) => s.attributes['server.port'] === P && s.attributes['url.path'] === '/https/big');
    await waitFor(() => mine().length >= 2, 30_000).catch(() => undefined);
    assert.equal(await agent.stop(), 0);
    const server = mine().find((s) => s.kind === SERVER);
    const client = mine().find((s) => s.kind === CLIENT && s.attributes['process.pid'] === py.pid);
    assert.ok(server && client, `a server and a python client span: ${JSON.stringify(agent.spans().filter((s) => s.kind === CLIENT).map((s) => [s.name, s.attributes]))}`);
    assert.ok(client.start <= server.start, `the client span starts ${Number(client.start - server.start) / 1e6} ms after its server span`);
    assert.ok(client.end >= server.end, `the client span ends ${Number(server.end - client.end) / 1e6} ms before its server span`);
    assert.equal(server.parentSpanId, client.spanId, `the server span's parent is the client span (${server.attributes['telegen.correlation']})`);
  } finally {
    await srv?.stop();
    if (agent.proc.exitCode === null) agent.proc.kill('SIGKILL');
    fs.rmSync(pki.dir, { recursive: true, force: true });
  }
});
