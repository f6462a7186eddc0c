// Failed TLS handshakes through the running agent (bpf/tls.md, Handshakes): a client that does not
// trust the server's certificate, a server that finds no common cipher or ALPN protocol, an mTLS
// server refusing a client without a certificate. Each failure is a span of its connection with
// status ERROR, error.type tls.handshake_failed, tls.established false and what the library said;
// a successful handshake adds no span (curl -k's request is its usual HTTP span) and only counts.
// Before, such a connection left nothing at all: no plaintext ever reached a decoder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import * as net from 'net';
import { spawn, spawnSync } from 'child_process';
import { requireBpf, startAgent, startServer, curl, waitFor, freePort, outputOf, FlatSpan, RunningAgent, Served } from '../helpers/agent';
import { startNginx } from '../helpers/nginx';
import { tlsScratch } from './tls-helpers';
import { getterOffset, pltStubs, tlsErrorText } from '../../host/src/tracers/tls-handshake';
import { systemLibssl } from '../../host/src/tracers/tls';

const SERVER = 2;
const CLIENT = 3;
const ERROR = 2;

const NODE_SERVER_JS = `
const https = require('https'); const fs = require('fs');
const opts = { key: fs.readFileSync(process.argv[2]), cert: fs.readFileSync(process.argv[3]) };
if (process.argv[4]) { opts.ca = fs.readFileSync(process.argv[4]); opts.requestCert = true; opts.rejectUnauthorized = true; }
if (process.argv[5]) opts.ALPNProtocols = [process.argv[5]];
const srv = https.createServer(opts, (req, res) => { res.end('hello over tls ' + req.url); });
srv.on('tlsClientError', (e) => console.log('tlsClientError ' + e.code));
srv.listen(0, '127.0.0.1', () => console.log('listening ' + srv.address().port));
`;

/** A node https request (non-blocking: OpenSSL on memory BIOs, WANT_READ while the handshake
 *  waits), resolving to the status code or the error code. */
const NODE_GET_JS = `
const https = require('https'); const fs = require('fs');
const [port, ca] = process.argv.slice(2);
https.get({ host: 'localhost', port: Number(port), path: '/node', ...(ca ? { ca: fs.readFileSync(ca) } : {}) }, (r) => {
  r.resume(); r.on('end', () => process.stdout.write(String(r.statusCode)));
}).on('error', (e) => process.stdout.write(e.code || e.message));
`;

/** `openssl s_server` answering with `args`: plain mode, where it handshakes with SSL_read and
 *  quits at the end of its stdin (kept open here). */
async function sServer(args: string[]): Promise<Served> {
  const port = await freePort();
  const proc = spawn('openssl', ['s_server', '-accept', `127.0.0.1:${port}`, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out = outputOf(proc);
  await waitFor(() => { if (proc.exitCode !== null) throw new Error(`s_server exited: ${out()}`); return /ACCEPT/.test(out()); }, 15_000, 50);
  return {
    proc, port,
    stop: () => new Promise((resolve) => { if (proc.exitCode !== null || proc.signalCode !== null) return resolve(); proc.once('exit', () => resolve()); proc.kill('SIGTERM'); }),
  };
}

test('SSL field offsets from one-load getters: x86-64 (disp8, disp32, endbr64, xor edi), arm64; anything else is 0', () => {
  const x = (...b: number[]) => Buffer.from([...b, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(getterOffset(x(0x8b, 0x47, 0x64, 0x31, 0xff, 0xc3), 'x64'), 0x64); // libssl 3.0 SSL_in_init
  assert.equal(getterOffset(x(0x48, 0x8b, 0x87, 0xb8, 0x09, 0, 0, 0xc3), 'x64'), 0x9b8); // node's SSL_get_verify_result
  assert.equal(getterOffset(x(0xf3, 0x0f, 0x1e, 0xfa, 0x8b, 0x47, 0x64, 0xc3), 'x64'), 0x64);
  assert.equal(getterOffset(x(0x8b, 0x47, 0x64, 0x85, 0xc0, 0xc3), 'x64'), 0, 'more than one load: not a getter');
  assert.equal(getterOffset(x(0x48, 0x8b, 0x07, 0xc3), 'x64'), 0, 'offset 0: refused');
  const arm = Buffer.alloc(8);
  arm.writeUInt32LE((0xb9400000 | (25 << 10)) >>> 0, 0); // ldr w0, [x0, #100]
  arm.writeUInt32LE(0xd65f03c0, 4); // ret
  assert.equal(getterOffset(arm, 'arm64'), 100);
  assert.equal(tlsErrorText(1, -1, 20, 1048), 'alert unknown ca received');
  assert.equal(tlsErrorText(1, -1, 20, 134), 'certificate verify failed');
  assert.equal(tlsErrorText(2, -348, 0, 0), 'GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR');
});

test('libssl\'s PLT stubs for the error queue: each is an indirect jump through the GOT', { skip: process.arch !== 'x64' }, () => {
  const lib = systemLibssl().find((f) => fs.realpathSync(f).includes('libssl.so.3'));
  if (!lib) return;
  const stubs = pltStubs(fs.realpathSync(lib), ['ERR_vset_error', 'ERR_set_error']);
  assert.deepEqual([...stubs.keys()].sort(), ['ERR_set_error', 'ERR_vset_error']);
  const fd = fs.openSync(lib, 'r');
  try {
    for (const off of stubs.values()) {
      const b = Buffer.alloc(16);
      fs.readSync(fd, b, 0, 16, off);
      // .plt entry: jmp *GOT(%rip); .plt.sec entry: endbr64 then (bnd) jmp *GOT(%rip)
      const at = b[0] === 0xf3 ? (b[4] === 0xf2 ? 5 : 4) : 0;
      assert.deepEqual([b[at], b[at + 1]], [0xff, 0x25], b.toString('hex'));
    }
  } finally {
    fs.closeSync(fd);
  }
});

/** The last exported value of telegen.tls.handshakes per "outcome side" (metrics.jsonl). */
function handshakeCounts(agent: RunningAgent): Map<string, number> {
  const out = new Map<string, number>();
  const file = path.join(agent.dataDir, 'metrics.jsonl');
  if (!fs.existsSync(file)) return out;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.includes('telegen.tls.handshakes')) continue;
    for (const rm of JSON.parse(line).resourceMetrics ?? []) for (const sm of rm.scopeMetrics ?? []) for (const m of sm.metrics ?? []) {
      if (m.name !== 'telegen.tls.handshakes') continue;
      for (const dp of m.sum?.dataPoints ?? []) {
        const a = Object.fromEntries((dp.attributes ?? []).map((x: { key: string; value: { stringValue: string } }) => [x.key, x.value.stringValue]));
        out.set(`${a['telegen.tls.handshake.outcome']} ${a['telegen.tls.side']}`, Number(dp.asDouble ?? dp.asInt));
      }
    }
  }
  return out;
}

function handshakeFailures(agent: RunningAgent, port: number): FlatSpan[] {
  return agent.spans().filter((s) => s.attributes['error.type'] === 'tls.handshake_failed' && s.attributes['server.port'] === port);
}

function describe(s: FlatSpan): string {
  return `${s.kind === CLIENT ? 'CLIENT' : s.kind === SERVER ? 'SERVER' : s.kind} ${s.attributes['process.executable.name']} ${s.status?.message}`;
}

test('untrusted certificate: curl and a node client fail their handshake with a node https server; curl -k does not', { timeout: 180_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const { pki, file, cfg } = tlsScratch({ 'server.js': NODE_SERVER_JS, 'get.js': NODE_GET_JS });
  const agent = await startAgent({ config: cfg, env: { TELEGEN_METRICS_INTERVAL_MS: '1000' } });
  const server = await startServer(process.execPath, [file('server.js'), pki.key, pki.cert]);
  try {
    const P = server.port;
    // curl (libssl, SSL_connect on a non-blocking socket) does not know the CA.
    const c = spawnSync('curl', ['-sS', '--max-time', '20', `https://localhost:${P}/untrusted`], { encoding: 'utf8' });
    assert.equal(c.status, 60, `curl: ${c.stderr}`);
    // node's client (SSL_read/SSL_write on memory BIOs, verification after OpenSSL's handshake)
    const n = spawnSync(process.execPath, [file('get.js'), String(P)], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(n.stdout, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', n.stderr);
    // and the same two that do trust it, plus curl -k: plaintext, no failure.
    assert.equal(curl(['-k', `https://localhost:${P}/insecure`]), 'hello over tls /insecure');
    assert.equal(curl(['--cacert', pki.ca, `https://localhost:${P}/trusted`]), 'hello over tls /trusted');
    const ok = spawnSync(process.execPath, [file('get.js'), String(P), pki.ca], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(ok.stdout, '200', ok.stderr);

    const counted = () => { const c = handshakeCounts(agent); return (c.get('failed client') ?? 0) >= 2 && (c.get('failed server') ?? 0) >= 2 && (c.get('ok client') ?? 0) >= 3 && (c.get('ok server') ?? 0) >= 3; };
    await waitFor(() => handshakeFailures(agent, P).length >= 4 && agent.spans().filter((s) => s.attributes['url.path'] === '/node' && s.kind === SERVER).length >= 1 && counted(), 30_000).catch(() => undefined);
    assert.equal(await agent.stop(), 0);
    const failures = handshakeFailures(agent, P);
    const curlFail = failures.filter((s) => s.kind === CLIENT && s.attributes['process.executable.name'] === 'curl');
    assert.equal(curlFail.length, 1, failures.map(describe).join('\n'));
    assert.equal(curlFail[0].status?.code, ERROR);
    assert.match(String(curlFail[0].status?.message), /certificate verify failed/);
    assert.equal(curlFail[0].attributes['telegen.tls.verify_result'], 'unable to get local issuer certificate');
    assert.equal(curlFail[0].attributes['tls.established'], false);
    assert.equal(curlFail[0].attributes['server.address'], '127.0.0.1');
    assert.equal(curlFail[0].attributes['network.peer.port'], P);
    const nodeFail = failures.filter((s) => s.kind === CLIENT && s.attributes['process.pid'] === n.pid);
    assert.equal(nodeFail.length, 1, failures.map(describe).join('\n'));
    assert.match(String(nodeFail[0].status?.message), /rejected: unable to verify the first certificate/);
    // The server saw both handshakes end unfinished (curl's alert, node's close).
    const srvFail = failures.filter((s) => s.kind === SERVER && s.attributes['process.pid'] === server.proc.pid);
    assert.equal(srvFail.length, 2, failures.map(describe).join('\n'));
    for (const s of srvFail) assert.equal(s.attributes['client.address'], '127.0.0.1');
    assert.ok(srvFail.some((s) => /alert unknown ca received/.test(String(s.status?.message))), failures.map(describe).join('\n'));
    // Nothing else failed: the successful handshakes made their HTTP spans only.
    assert.equal(failures.length, 4, failures.map(describe).join('\n'));
    // The counter: every process's handshakes on this host since the agent started, so at least these.
    const counts = handshakeCounts(agent);
    assert.ok((counts.get('failed client') ?? 0) >= 2 && (counts.get('failed server') ?? 0) >= 2, JSON.stringify([...counts]));
    assert.ok((counts.get('ok client') ?? 0) >= 3 && (counts.get('ok server') ?? 0) >= 3, JSON.stringify([...counts]));
    const paths = agent.spans().filter((s) => s.attributes['server.port'] === P && s.attributes['url.path']).map((s) => `${s.kind} ${s.attributes['url.path']}`).sort();
    assert.deepEqual(paths, [`${CLIENT} /insecure`, `${CLIENT} /node`, `${CLIENT} /trusted`, `${SERVER} /insecure`, `${SERVER} /node`, `${SERVER} /trusted`].sort());
  } finally {
    await server.stop();
    if (agent.proc.exitCode === null) await agent.stop();
    fs.rmSync(pki.dir, { recursive: true, force: true });
  }
});

/** Sends a ClientHello made on memory BIOs (its SSL object never sees a socket, so the agent
 *  follows only the server's side) to the port, then hangs up before the handshake ends. */
const HELLO_THEN_CLOSE_PY = `
import socket, ssl, sys, time
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
obj = ctx.wrap_bio(inc, out, server_hostname='localhost')
try: obj.do_handshake()
except ssl.SSLWantReadError: pass
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
s.sendall(out.read())
s.recv(1)
s.close()
print('sent')
`;

test('a TCP connect-and-close to a TLS port (a probe) is no failed handshake; a ClientHello then a hang-up is', { timeout: 180_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const { pki, file, cfg } = tlsScratch({ 'server.js': NODE_SERVER_JS, 'hello.py': HELLO_THEN_CLOSE_PY });
  const agent = await startAgent({ config: cfg });
  const server = await startServer(process.execPath, [file('server.js'), pki.key, pki.cert]);
  try {
    const P = server.port;
    // Load balancers, kubelet tcpSocket probes and port scanners connect and close: node's server
    // made an SSL object for each and freed it unfinished, and each was a failure span.
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((resolve, reject) => { const c = net.connect(P, '127.0.0.1', () => { c.end(); }); c.on('close', () => resolve()); c.on('error', reject); });
    }
    const h = spawnSync('python3', [file('hello.py'), String(P)], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(h.stdout.trim(), 'sent', h.stderr);
    assert.equal(curl(['--cacert', pki.ca, `https://localhost:${P}/after-probes`]), 'hello over tls /after-probes');
    await waitFor(() => handshakeFailures(agent, P).length >= 1 && agent.spans().some((s) => s.attributes['url.path'] === '/after-probes' && s.kind === SERVER), 30_000).catch(() => undefined);
    // the probes' frees come at their close: give a late one time to show
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(await agent.stop(), 0);
    const failures = handshakeFailures(agent, P);
    assert.deepEqual(failures.map((s) => `${s.kind} ${s.attributes['process.pid']} ${s.status?.message}`),
      [`${SERVER} ${server.proc.pid} TLS handshake not completed: the connection ended before it`], failures.map(describe).join('\n'));
  } finally {
    await server.stop();
    if (agent.proc.exitCode === null) await agent.stop();
    fs.rmSync(pki.dir, { recursive: true, force: true });
  }
});

test('no common cipher (openssl s_server), no common ALPN protocol and a missing client certificate (node), gnutls-cli: failure spans on both sides', { timeout: 180_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const { pki, file, cfg } = tlsScratch({ 'server.js': NODE_SERVER_JS });
  const agent = await startAgent({ config: cfg });
  // TLS 1.2 with one cipher suite (cipher suites of 1.3 are separate): curl below offers another.
  const ossl = await sServer(['-cert', pki.cert, '-key', pki.key, '-tls1_2', '-cipher', 'AES128-SHA']);
  const sPort = ossl.port;
  const h2Only = await startServer(process.execPath, [file('server.js'), pki.key, pki.cert, '', 'h2']);
  const mtls = await startServer(process.execPath, [file('server.js'), pki.key, pki.cert, pki.ca]);
  try {
    const c1 = spawnSync('curl', ['-sS', '--max-time', '20', '--cacert', pki.ca, '--tls-max', '1.2', '--ciphers', 'AES256-GCM-SHA384', `https://localhost:${sPort}/`], { encoding: 'utf8' });
    assert.equal(c1.status, 35, `curl: ${c1.stderr}`);
    const c2 = spawnSync('curl', ['-sS', '--max-time', '20', '--cacert', pki.ca, '--http1.1', `https://localhost:${h2Only.port}/alpn`], { encoding: 'utf8' });
    assert.notEqual(c2.status, 0, `curl: ${c2.stdout}`);
    const c3 = spawnSync('curl', ['-sS', '--max-time', '20', '--cacert', pki.ca, `https://localhost:${mtls.port}/mtls`], { encoding: 'utf8' });
    assert.notEqual(c3.status, 0, `curl: ${c3.stdout}`);
    // GnuTLS verifies inside its handshake: the CA is not given.
    const g = spawnSync('gnutls-cli', ['--port', String(h2Only.port), 'localhost'], { encoding: 'utf8', input: '', timeout: 20_000 });
    assert.notEqual(g.status, 0, g.stdout);

    const failed = (port: number) => handshakeFailures(agent, port);
    await waitFor(() => failed(sPort).length >= 2 && failed(h2Only.port).length >= 4 && failed(mtls.port).length >= 2, 30_000).catch(() => undefined);
    assert.equal(await agent.stop(), 0);
    const all = [...failed(sPort), ...failed(h2Only.port), ...failed(mtls.port)].map(describe).join('\n');
    const one = (port: number, kind: number, exe: string): FlatSpan => {
      const s = failed(port).filter((x) => x.kind === kind && x.attributes['process.executable.name'] === exe);
      assert.equal(s.length, 1, `${port} ${kind} ${exe}:\n${all}`);
      assert.equal(s[0].status?.code, ERROR);
      assert.equal(s[0].attributes['tls.established'], false);
      return s[0];
    };
    assert.match(String(one(sPort, SERVER, 'openssl').status?.message), /no shared cipher/);
    assert.match(String(one(sPort, CLIENT, 'curl').status?.message), /alert handshake failure received/);
    // node's server: curl's ALPN offer, then gnutls-cli's alert about the certificate it refused.
    const h2Server = failed(h2Only.port).filter((x) => x.kind === SERVER && x.attributes['process.executable.name'] === 'node').map((x) => String(x.status?.message)).sort();
    assert.deepEqual(h2Server, ['TLS handshake failed: alert bad certificate received', 'TLS handshake failed: no application protocol'], all);
    assert.match(String(one(h2Only.port, CLIENT, 'curl').status?.message), /alert no application protocol received/);
    assert.match(String(one(mtls.port, SERVER, 'node').status?.message), /peer did not return a certificate/);
    assert.match(String(one(mtls.port, CLIENT, 'curl').status?.message), /alert certificate required received/);
    const gnutls = failed(h2Only.port).filter((x) => x.kind === CLIENT && x.attributes['process.executable.name'] === 'gnutls-cli');
    assert.equal(gnutls.length, 1, all);
    assert.equal(gnutls[0].attributes['telegen.tls.library'], 'gnutls');
    assert.match(String(gnutls[0].attributes['telegen.tls.error']), /^GNUTLS_E_CERTIFICATE_(VERIFICATION_)?ERROR$/);
    assert.equal(gnutls[0].attributes['network.peer.port'], h2Only.port);
  } finally {
    await ossl.stop();
    await h2Only.stop();
    await mtls.stop();
    if (agent.proc.exitCode === null) await agent.stop();
    fs.rmSync(pki.dir, { recursive: true, force: true });
  }
});

/** Python's ssl (OpenSSL checks the host name inside the handshake: X509_VERIFY_PARAM_set1_host)
 *  to 127.0.0.1 under a name the certificate does not carry. */
const PY_WRONG_HOST = `
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
s = socket.create_connection(('127.0.0.1', int(sys.argv[2])))
try:
    ctx.wrap_socket(s, server_hostname='wrong.example')
    print('connected')
except ssl.SSLCertVerificationError as e:
    print(e.verify_code)
`;

test('nginx (SSL_do_handshake, non-blocking): curl without the CA and python to a name the certificate does not carry fail on both sides; curl with the CA is served', { timeout: 180_000 }, async (t) => {
  if (!requireBpf(t)) return;
  if (spawnSync('sh', ['-c', 'command -v nginx']).status !== 0) {
    if (process.env.CI === 'true') throw new Error('needs nginx');
    t.skip('nginx not installed');
    return;
  }
  const { pki, cfg } = tlsScratch();
  fs.chmodSync(pki.dir, 0o755); // nginx's worker runs as nobody
  const port = await freePort();
  const agent = await startAgent({ config: cfg });
  const nginx = startNginx(pki.dir, 'text/plain txt;', `server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${pki.cert};
    ssl_certificate_key ${pki.key};
    location / { return 200 "served $uri\\n"; }
  }`);
  try {
    const url = (host: string, p: string) => [`--resolve`, `${host}:${port}:127.0.0.1`, `https://${host}:${port}${p}`];
    await waitFor(() => spawnSync('curl', ['-skf', '-o', '/dev/null', ...url('localhost', '/warm')]).status === 0, 10_000);
    const untrusted = spawnSync('curl', ['-sS', '--max-time', '20', ...url('localhost', '/untrusted')], { encoding: 'utf8' });
    assert.equal(untrusted.status, 60, untrusted.stderr);
    const wrongHost = spawnSync('python3', ['-c', PY_WRONG_HOST, pki.ca, String(port)], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(wrongHost.stdout.trim(), '62', wrongHost.stderr);
    assert.equal(curl(['--cacert', pki.ca, ...url('localhost', '/trusted')]), 'served /trusted\n');

    const failed = () => handshakeFailures(agent, port);
    await waitFor(() => failed().length >= 4 && agent.spans().some((s) => s.attributes['url.path'] === '/trusted' && s.kind === SERVER), 30_000).catch(() => undefined);
    assert.equal(await agent.stop(), 0);
    const all = agent.spans().filter((s) => ['curl', 'nginx'].includes(String(s.attributes['process.executable.name']))).map((s) => `${describe(s)} ${s.attributes['server.port']} ${s.attributes['url.path']}`).join('\n');
    const clients = failed().filter((s) => s.kind === CLIENT);
    assert.deepEqual(clients.map((s) => `${s.attributes['process.pid'] === wrongHost.pid ? 'python' : s.attributes['process.executable.name']} ${s.status?.message}`).sort(), [
      'curl TLS handshake failed: certificate verify failed: unable to get local issuer certificate',
      'python TLS handshake failed: certificate verify failed: hostname mismatch',
    ], all);
    const servers = failed().filter((s) => s.kind === SERVER && s.attributes['process.executable.name'] === 'nginx');
    assert.equal(servers.length, 2, all);
    for (const s of servers) assert.match(String(s.status?.message), /^TLS handshake failed: alert (unknown ca|bad certificate|certificate unknown) received$/, all);
    assert.equal(failed().length, 4, all);
    // The warm-up (curl -k) and the trusted request: their HTTP spans, no failure.
    const served = agent.spans().filter((s) => s.attributes['server.port'] === port && s.kind === SERVER && s.attributes['http.response.status_code'] === 200).map((s) => s.attributes['url.path']).sort();
    assert.deepEqual(served, ['/trusted', '/warm']);
  } finally {
    nginx.kill('SIGTERM');
    if (agent.proc.exitCode === null) await agent.stop();
    fs.rmSync(pki.dir, { recursive: true, force: true });
  }
});
