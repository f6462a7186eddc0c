// GnuTLS plaintext: uprobes on libgnutls.so.30's gnutls_record_send/recv (host/src/tracers/tls.ts
// GNUTLS_FUNCS, the OpenSSL programs of bpf/tls.bpf.c). Real GnuTLS programs as Debian ships them:
// wget, git over https (git-remote-https → libcurl-gnutls, non-blocking; it polls before reading),
// apt's https method, gnutls-cli and a small ctypes client (the edges: E_AGAIN, 1 MiB in one send, 0 at close) as
// clients of a Node https server; gnutls-serv --http as a server of curl (OpenSSL) and wget.
// Before, a GnuTLS peer produced no span at all (ciphertext only).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawn, spawnSync, execFileSync } from 'child_process';
import { requireBpf, startAgent, startServer, waitFor, FlatSpan } from '../helpers/agent';
import { tlsScratch } from './tls-helpers';
import { libsslPaths, systemLibssl, LIBGNUTLS_NAME } from '../../host/src/tracers/tls';

const SERVER = 2;
const CLIENT = 3;
const BIG = 1 << 20;

function summary(s: FlatSpan): string {
  return `${s.attributes['http.request.method']} ${s.attributes['url.path']} ${s.attributes['http.response.status_code']}`;
}

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

// /big: 1 MiB, many records (GnuTLS moves at most one 16 KiB record per call). /info/refs (git's
// first request): the head, then the body 300 ms later in a record of its own (libcurl polls the
// non-blocking socket in between) — the span must still be one request with the whole body.
const SERVER_JS = `
const https = require('https'); const fs = require('fs');
const srv = https.createServer({ key: fs.readFileSync(process.argv[2]), cert: fs.readFileSync(process.argv[3]) }, (req, res) => {
  let n = 0; req.on('data', (d) => n += d.length);
  req.on('end', () => {
    if (req.method === 'POST') { res.writeHead(200, { 'content-type': 'text/plain' }); return res.end('got ' + n); }
    if (req.url === '/big') { res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': ${BIG} }); return res.end(Buffer.alloc(${BIG}, 97)); }
    if (req.url.includes('/info/refs')) { res.writeHead(404, { 'content-type': 'text/plain', 'content-length': 9 }); res.flushHeaders(); return setTimeout(() => res.end('not here\\n'), 300); }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('hello over tls ' + req.url);
  });
});
srv.listen(0, '127.0.0.1', () => console.log('listening ' + srv.address().port));
`;

// A GnuTLS client as small as it gets (python ctypes on libgnutls.so.30), to drive the edges a
// user's program meets: a non-blocking gnutls_record_recv with nothing to read (GNUTLS_E_AGAIN, no
// bytes: nothing may be emitted), a 1 MiB request given to gnutls_record_send in one call (GnuTLS
// moves at most one 16 KiB record per call: no call is cut to the 16 KiB the tracer copies), a
// send retried after GNUTLS_E_AGAIN with the same arguments, and gnutls_record_recv's 0 at close.
const CTYPES_CLIENT = `
import ctypes, select, socket, sys
g = ctypes.CDLL('libgnutls.so.30')
P, I, Z = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
for name, res, args in [('gnutls_record_send', ctypes.c_ssize_t, [P, P, Z]), ('gnutls_record_recv', ctypes.c_ssize_t, [P, P, Z]),
                        ('gnutls_certificate_allocate_credentials', I, [P]), ('gnutls_certificate_set_x509_trust_file', I, [P, ctypes.c_char_p, I]),
                        ('gnutls_init', I, [P, ctypes.c_uint]), ('gnutls_set_default_priority', I, [P]), ('gnutls_credentials_set', I, [P, I, P]),
                        ('gnutls_server_name_set', I, [P, I, ctypes.c_char_p, Z]), ('gnutls_session_set_verify_cert', None, [P, ctypes.c_char_p, ctypes.c_uint]),
                        ('gnutls_transport_set_int2', None, [P, I, I]), ('gnutls_handshake', I, [P]), ('gnutls_error_is_fatal', I, [I])]:
    f = getattr(g, name); f.restype = res; f.argtypes = args
E_AGAIN = -28
port, ca, size = int(sys.argv[1]), sys.argv[2].encode(), int(sys.argv[3])
cred, sess = P(), P()
assert g.gnutls_certificate_allocate_credentials(ctypes.byref(cred)) == 0
assert g.gnutls_certificate_set_x509_trust_file(cred, ca, 1) >= 1
assert g.gnutls_init(ctypes.byref(sess), 2) == 0  # GNUTLS_CLIENT
g.gnutls_set_default_priority(sess)
g.gnutls_credentials_set(sess, 1, cred)  # GNUTLS_CRD_CERTIFICATE
g.gnutls_server_name_set(sess, 1, b'localhost', 9)
g.gnutls_session_set_verify_cert(sess, b'localhost', 0)
s = socket.create_connection(('127.0.0.1', port))
g.gnutls_transport_set_int2(sess, s.fileno(), s.fileno())
while True:
    r = g.gnutls_handshake(sess)
    if r == 0: break
    if g.gnutls_error_is_fatal(r): sys.exit('handshake %d' % r)
s.setblocking(False)
buf = ctypes.create_string_buffer(65536)
r = g.gnutls_record_recv(sess, buf, len(buf))  # nothing asked yet
if r != E_AGAIN: sys.exit('recv before the request: %d' % r)
agains = 1
req = b'POST /gnutls/upload HTTP/1.1\\r\\nHost: localhost\\r\\nContent-Length: %d\\r\\nConnection: close\\r\\n\\r\\n' % size + b'x' * size
out = ctypes.create_string_buffer(req, len(req))
off, sends = 0, []
while off < len(req):
    r = g.gnutls_record_send(sess, ctypes.byref(out, off), len(req) - off)
    if r == E_AGAIN:
        agains += 1; select.select([], [s], [], 10); continue  # the same arguments again, as GnuTLS asks
    if r < 0: sys.exit('send %d' % r)
    sends.append(r); off += r
resp = b''
while True:
    r = g.gnutls_record_recv(sess, buf, len(buf))
    if r == E_AGAIN:
        agains += 1; select.select([s], [], [], 10); continue
    if r < 0: sys.exit('recv %d' % r)
    if r == 0: break  # the server closed (close_notify)
    resp += buf.raw[:r]
print('sends %d max %d agains %d' % (len(sends), max(sends), agains))
sys.stdout.write(resp.decode('latin1'))
`;

// gnutls-serv has no listen-address option (it binds every address): it runs, with its clients,
// in a network namespace of its own. curl is an OpenSSL client, wget a GnuTLS one.
const NETNS_SH = `
set -e
ip link set lo up
gnutls-serv --http -p 4443 --x509certfile "$1/server.pem" --x509keyfile "$1/server.key" > "$1/serv.log" 2>&1 &
srv=$!
echo "gnutls-serv $srv"
i=0; until grep -q 'listening on IPv4' "$1/serv.log"; do i=$((i+1)); [ $i -lt 100 ] || exit 3; sleep 0.1; done
curl -sS --max-time 20 --cacert "$1/ca.pem" -o /dev/null -w 'curl %{http_code}\\n' https://127.0.0.1:4443/from/curl
wget -q -O /dev/null --ca-certificate="$1/ca.pem" https://127.0.0.1:4443/from/wget && echo 'wget ok'
kill $srv
`;

const APT_HTTPS = '/usr/lib/apt/methods/https';

/** One file fetched by apt's https method (libgnutls), spoken to in apt's method protocol on its
 *  stdin, which must stay open until the answer (the method exits at its end). */
async function aptFetch(uri: string, ca: string, file: string): Promise<{ pid: number; out: string }> {
  const m = spawn(APT_HTTPS, [], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  m.stdout.on('data', (d) => { out += String(d); });
  m.stderr.on('data', (d) => { out += String(d); });
  m.stdin.write(`601 Configuration\nConfig-Item: Acquire::https::CaInfo=${ca}\n\n600 URI Acquire\nURI: ${uri}\nFilename: ${file}\n\n`);
  await waitFor(() => /^(201 URI Done|400 URI Failure)/m.test(out), 30_000).catch(() => undefined);
  m.stdin.end();
  await new Promise((r) => { if (m.exitCode !== null) r(null); else m.once('exit', r); });
  return { pid: m.pid!, out };
}

test('GnuTLS library and process maps: libgnutls is named like libssl', () => {
  assert.deepEqual(libsslPaths('7f00-7f10 r-xp 00000000 08:01 42 /usr/lib/x86_64-linux-gnu/libgnutls.so.30.34.3\n'), ['/usr/lib/x86_64-linux-gnu/libgnutls.so.30.34.3']);
  assert.ok(!LIBGNUTLS_NAME.test('libgnutls-openssl.so.27') && !LIBGNUTLS_NAME.test('libgnutlsxx.so.30'));
  if (fs.existsSync('/lib/x86_64-linux-gnu/libgnutls.so.30')) assert.ok(systemLibssl(undefined, LIBGNUTLS_NAME).includes('/lib/x86_64-linux-gnu/libgnutls.so.30'));
});

test('GnuTLS clients (wget, git/libcurl-gnutls, gnutls-cli) and gnutls-serv: plaintext spans', { timeout: 240_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const missing = ['wget', 'git', 'gnutls-cli', 'gnutls-serv', 'unshare', 'python3', APT_HTTPS].filter((c) => !has(c));
  if (missing.length) {
    if (process.env.CI) assert.fail(`missing ${missing.join(', ')} (scripts/setup.sh installs them)`);
    t.skip(`needs ${missing.join(', ')}`);
    return;
  }
  // Debian's wget is a GnuTLS build; without that this test would prove nothing.
  assert.match(execFileSync('ldd', ['/usr/bin/wget'], { encoding: 'utf8' }), /libgnutls\.so\.30/);
  const { pki, file, cfg } = tlsScratch({ 'server.js': SERVER_JS, 'run.sh': NETNS_SH });
  const srvFile = file('server.js');
  const agent = await startAgent({ config: cfg });
  const server = await startServer(process.execPath, [srvFile, pki.key, pki.cert]);
  try {
    const P = server.port;
    const base = `https://localhost:${P}`;
    const wget = (p: string) => spawnSync('wget', ['-q', '-O', '-', `--ca-certificate=${pki.ca}`, `${base}${p}`], { encoding: 'latin1', timeout: 30_000, maxBuffer: 4 << 20 });
    const one = wget('/wget/one');
    assert.equal(one.stdout, 'hello over tls /wget/one', one.stderr);
    const big = wget('/big');
    assert.equal(big.stdout.length, BIG, big.stderr);
    // git over https: GET /repo.git/info/refs answered 404 → git gives up ("not found")
    const git = spawnSync('git', ['ls-remote', `${base}/repo.git`], {
      encoding: 'utf8', timeout: 30_000,
      env: { ...process.env, GIT_SSL_CAINFO: pki.ca, GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1', HOME: pki.dir },
    });
    assert.notEqual(git.status, 0);
    assert.match(git.stderr, /not found/, git.stderr);
    const py = spawnSync('python3', ['-c', CTYPES_CLIENT, String(P), pki.ca, String(BIG)], { encoding: 'latin1', timeout: 30_000 });
    assert.equal(py.status, 0, py.stdout + py.stderr);
    const calls = /^sends (\d+) max (\d+) agains (\d+)\n/.exec(py.stdout)!;
    assert.ok(Number(calls[1]) >= BIG / 16384 && Number(calls[2]) <= 16384, `one record per gnutls_record_send: ${calls[0]}`);
    assert.match(py.stdout, /\r\n\r\nb\r\ngot 1048576\r\n0\r\n\r\n$/);
    // apt's https transport
    const apt = await aptFetch(`${base}/apt/InRelease`, pki.ca, path.join(pki.dir, 'apt-out'));
    assert.match(apt.out, /^201 URI Done/m, apt.out);
    assert.equal(fs.readFileSync(path.join(pki.dir, 'apt-out'), 'latin1'), 'hello over tls /apt/InRelease');
    // gnutls-cli: the request on stdin; the server closes after its answer (HTTP/1.0)
    const cli = spawnSync('gnutls-cli', ['--x509cafile', pki.ca, '-p', String(P), 'localhost'],
      { input: 'GET /gnutls-cli HTTP/1.0\r\nHost: localhost\r\n\r\n', encoding: 'latin1', timeout: 30_000 });
    assert.match(cli.stdout, /hello over tls \/gnutls-cli/, cli.stderr);

    fs.copyFileSync(pki.cert, path.join(pki.dir, 'server.pem'));
    const ns = spawnSync('unshare', ['--net', 'sh', path.join(pki.dir, 'run.sh'), pki.dir], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(ns.status, 0, ns.stdout + ns.stderr);
    assert.match(ns.stdout, /curl 200\n/);
    assert.match(ns.stdout, /wget ok\n/);
    const servPid = Number(/gnutls-serv (\d+)/.exec(ns.stdout)![1]);

    const expected = ['GET /wget/one 200', 'GET /big 200', 'GET /repo.git/info/refs 404', 'POST /gnutls/upload 200', 'GET /apt/InRelease 200', 'GET /gnutls-cli 200'];
    const onPort = (port: number) => agent.spans().filter((s) => s.attributes['server.port'] === port);
    await waitFor(() => onPort(P).filter((s) => s.kind === CLIENT).length >= expected.length && onPort(4443).length >= 4, 30_000).catch(() => undefined);
    assert.equal(await agent.stop(), 0);

    const spans = onPort(P);
    const byExe = (exe: string) => spans.filter((s) => s.kind === CLIENT && s.attributes['process.executable.name'] === exe).map(summary);
    assert.deepEqual(byExe('wget'), ['GET /wget/one 200', 'GET /big 200'], 'wget (GnuTLS) client spans');
    // the name is the thread's comm: git-remote-https cut to 15 characters
    assert.deepEqual(byExe('git-remote-http'), ['GET /repo.git/info/refs 404'], 'git over https (libcurl-gnutls) client span');
    assert.deepEqual(byExe('gnutls-cli'), ['GET /gnutls-cli 200'], 'gnutls-cli client span');
    assert.deepEqual(spans.filter((s) => s.kind === CLIENT && s.attributes['process.pid'] === apt.pid).map(summary), ['GET /apt/InRelease 200'], "apt's https method");
    const upload = spans.filter((s) => s.kind === CLIENT && s.attributes['process.pid'] === py.pid);
    assert.deepEqual(upload.map(summary), ['POST /gnutls/upload 200'], 'the ctypes client: one span, nothing from its E_AGAIN reads');
    assert.equal(upload[0].attributes['http.request.body.size'], BIG, 'every 16 KiB record of the request body');
    const bigSpan = spans.find((s) => s.kind === CLIENT && s.attributes['url.path'] === '/big')!;
    assert.equal(bigSpan.attributes['http.response.body.size'], BIG, 'every record of the 1 MiB answer reached the decoder');
    const refs = spans.find((s) => s.kind === CLIENT && s.attributes['url.path'] === '/repo.git/info/refs')!;
    assert.equal(refs.attributes['http.response.body.size'], 9, 'the body read 300 ms after the head');
    // The Node server's own spans (OpenSSL): each client span has its server span, nothing else.
    const srv = spans.filter((s) => s.kind === SERVER);
    assert.deepEqual(srv.map(summary).sort(), [...expected].sort());
    assert.equal(spans.length, 2 * expected.length, 'no span made of ciphertext');

    const served = onPort(4443);
    const servSpans = served.filter((s) => s.kind === SERVER);
    assert.deepEqual(servSpans.map(summary).sort(), ['GET /from/curl 200', 'GET /from/wget 200'], 'gnutls-serv server spans');
    for (const s of servSpans) assert.equal(s.attributes['process.pid'], servPid);
    const nsClients = served.filter((s) => s.kind === CLIENT);
    assert.deepEqual(nsClients.map((s) => `${s.attributes['process.executable.name']} ${summary(s)}`).sort(), ['curl GET /from/curl 200', 'wget GET /from/wget 200']);
    for (const c of nsClients) {
      const server = servSpans.find((s) => s.attributes['url.path'] === c.attributes['url.path'])!;
      assert.equal(server.parentSpanId, c.spanId, `gnutls-serv's ${c.attributes['url.path']} span is its client's child`);
    }
  } finally {
    await server.stop();
    if (agent.proc.exitCode === null) await agent.stop();
    fs.rmSync(pki.dir, { recursive: true, force: true });
  }
});
