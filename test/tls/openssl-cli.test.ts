// The openssl CLI as an HTTPS server: `openssl s_server -www` (status page) and `-WWW` (files) do
// their I/O through an SSL BIO under a buffering BIO (BIO_gets/BIO_puts), whose read and write call
// libssl's internals, never SSL_read/SSL_write. Their server spans come from the SSL BIO's own
// functions, found through BIO_f_ssl's method table (host/src/tracers/tls-bio.ts). Clients: curl
// and `openssl s_client` (plain SSL_read/SSL_write). On the old tracer the two servers gave no
// span at all, while the clients' did.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { requireBpf, startAgent, startServer, curl, waitFor, freePort, FlatSpan, Served } from '../helpers/agent';
import { makePki, Pki } from './tls-helpers';
import { sslBioFuncs, sslBioFuncsByScan, returnedAddress } from '../../host/src/tracers/tls-bio';
import { systemLibssl } from '../../host/src/tracers/tls';

const SERVER = 2;
const CLIENT = 3;

function summary(s: FlatSpan): string {
  return `${s.attributes['http.request.method']} ${s.attributes['url.path']} ${s.attributes['http.response.status_code']}`;
}

/** `openssl s_server` with its HTTP mode flag, on a free port of 127.0.0.1, from `cwd`. */
async function sServer(pki: Pki, mode: '-www' | '-WWW', cwd: string): Promise<Served> {
  const port = await freePort();
  return startServer('openssl', ['s_server', mode, '-accept', `127.0.0.1:${port}`, '-cert', pki.cert, '-key', pki.key], { port, readyPattern: /ACCEPT/, cwd });
}

test('openssl s_server -www and -WWW: server spans from the SSL BIO, linked to curl and s_client', { timeout: 180_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const pki = makePki();
  const docs = path.join(pki.dir, 'docs');
  fs.mkdirSync(docs);
  fs.writeFileSync(path.join(docs, 'hello.txt'), 'hello from s_server -WWW\n');
  const cfg = path.join(pki.dir, 'agent.yaml');
  fs.writeFileSync(cfg, 'tracers:\n  profile: { enabled: false }\n');
  // -WWW runs before the agent, -www is started after it: the hook is on libssl, not a process.
  const files = await sServer(pki, '-WWW', docs);
  let status: Served | undefined;
  const agent = await startAgent({ config: cfg });
  try {
    status = await sServer(pki, '-www', docs);
    const W = files.port;
    const P = status.port;
    assert.match(curl(['--cacert', pki.ca, `https://127.0.0.1:${P}/`]), /<HTML>/);
    assert.equal(curl(['--cacert', pki.ca, `https://127.0.0.1:${W}/hello.txt`]), 'hello from s_server -WWW\n');
    // s_client -quiet ignores the end of its input and exits when -www closes after its answer
    const sc = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${P}`, '-CAfile', pki.ca, '-quiet'],
      { input: 'GET /from/s_client HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n', encoding: 'latin1', timeout: 20_000 });
    assert.match(sc.stdout, /^HTTP\/1\.0 200 ok\r\n/, sc.stderr);

    const onPort = (port: number) => agent.spans().filter((s) => s.attributes['server.port'] === port);
    await waitFor(() => onPort(P).length >= 4 && onPort(W).length >= 2, 30_000).catch(() => undefined);
    assert.equal(await agent.stop(), 0);

    const www = onPort(P);
    const wwwServer = www.filter((s) => s.kind === SERVER);
    assert.deepEqual(wwwServer.map(summary).sort(), ['GET / 200', 'GET /from/s_client 200'], 's_server -www: one server span per request');
    for (const s of wwwServer) {
      assert.equal(s.attributes['process.pid'], status.proc.pid);
      assert.equal(s.attributes['process.executable.name'], 'openssl');
    }
    const curlSpan = www.filter((s) => s.kind === CLIENT && s.attributes['process.executable.name'] === 'curl');
    const scSpan = www.filter((s) => s.kind === CLIENT && s.attributes['process.pid'] === sc.pid);
    assert.deepEqual(curlSpan.map(summary), ['GET / 200'], 'curl side');
    assert.deepEqual(scSpan.map(summary), ['GET /from/s_client 200'], 's_client side');
    // No span was made of ciphertext: nothing else on this port.
    assert.equal(www.length, 4);

    const wwwFiles = onPort(W);
    const filesServer = wwwFiles.filter((s) => s.kind === SERVER);
    const filesClient = wwwFiles.filter((s) => s.kind === CLIENT);
    assert.deepEqual(filesServer.map(summary), ['GET /hello.txt 200'], 's_server -WWW (running before the agent)');
    assert.equal(filesServer[0].attributes['process.pid'], files.proc.pid);
    assert.deepEqual(filesClient.map(summary), ['GET /hello.txt 200']);
    assert.equal(wwwFiles.length, 2);

    // Each server span is its client's child, as for any other TLS server.
    for (const [client, server] of [
      [curlSpan[0], wwwServer.find((s) => s.attributes['url.path'] === '/')!],
      [scSpan[0], wwwServer.find((s) => s.attributes['url.path'] === '/from/s_client')!],
      [filesClient[0], filesServer[0]],
    ]) {
      assert.equal(server.traceId, client.traceId, `${summary(server)}: same trace as its client`);
      assert.equal(server.parentSpanId, client.spanId, `${summary(server)}: child of its client span`);
    }
  } finally {
    await status?.stop();
    await files.stop();
    if (agent.proc.exitCode === null) await agent.stop();
    fs.rmSync(pki.dir, { recursive: true, force: true });
  }
});

test('the SSL BIO method table: read from BIO_f_ssl\'s code, the same as a data scan finds', () => {
  const libssl = systemLibssl().map((f) => fs.realpathSync(f));
  assert.ok(libssl.length, 'a system libssl');
  for (const file of [...new Set(libssl)]) {
    const f = sslBioFuncs(file);
    assert.ok(f, `${file}: SSL BIO found`);
    assert.equal(f.via, 'code', file);
    assert.notEqual(f.read, f.write);
    assert.deepEqual(sslBioFuncsByScan(file), { read: f.read, write: f.write }, file);
  }
  // node links OpenSSL statically, non-PIE on Debian (an immediate, not a PC-relative address)
  const node = sslBioFuncs(process.execPath);
  if (node) assert.deepEqual(sslBioFuncsByScan(process.execPath), { read: node.read, write: node.write });
  // libcrypto has no SSL BIO
  const crypto = libssl.map((f) => f.replace(/libssl\.so/, 'libcrypto.so')).filter((f) => fs.existsSync(f));
  for (const f of crypto) assert.equal(sslBioFuncs(f), null, f);
});

test('BIO_f_ssl code shapes: x86-64 PIC and non-PIE, arm64 adrp+add', () => {
  const X86 = 62;
  const ARM64 = 183;
  // endbr64; lea rax, [rip+0x78729]; ret   (Debian 12 libssl.so.3 at 0x230d0)
  const lea = Buffer.from('f30f1efa488d0529870700c3', 'hex');
  assert.equal(returnedAddress(lea, 0x230d0, X86), 0x230d0 + 4 + 7 + 0x78729);
  assert.equal(returnedAddress(lea.subarray(4), 0x230d0, X86), 0x230d0 + 7 + 0x78729);
  // mov eax, 0x2d437a0; ret   (node)
  assert.equal(returnedAddress(Buffer.from('b8a037d402c3', 'hex'), 0x1a56ae0, X86), 0x2d437a0);
  // lea rax, …; followed by anything but ret: not `return &table`
  assert.equal(returnedAddress(Buffer.from('488d052987070048', 'hex'), 0, X86), -1);
  // bti c; adrp x0, #0x3000; add x0, x0, #0x7a0; ret — encodings from llvm-mc --triple=aarch64
  const arm = (adrp: number) => {
    const b = Buffer.alloc(16);
    b.writeUInt32LE(0xd503245f, 0); b.writeUInt32LE(adrp, 4); b.writeUInt32LE(0x911e8000, 8); b.writeUInt32LE(0xd65f03c0, 12);
    return b;
  };
  assert.equal(returnedAddress(arm(0xf0000000), 0x10230, ARM64), 0x13000 + 0x7a0);
  assert.equal(returnedAddress(arm(0xf0ffffc0), 0x10230, ARM64), 0x10000 - 0x5000 + 0x7a0); // adrp x0, #-0x5000
  assert.equal(returnedAddress(arm(0xf0000001), 0x10230, ARM64), -1); // adrp x1: not the return register
});
