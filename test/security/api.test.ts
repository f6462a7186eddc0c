// The agent's HTTP API under hostile clients: real agent processes, raw requests. Loopback by
// default (reads open, writes need the token); bound elsewhere (inside a network namespace this
// test creates) every endpoint but the probes needs the token, over TLS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as https from 'https';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { repoRoot } from '../helpers/decoder';
import { startAgent, freePort } from '../helpers/agent';

interface Reply { status: number; body: string; headers: http.IncomingHttpHeaders }

function request(o: { port: number; host?: string; method?: string; path: string; headers?: Record<string, string>; body?: Buffer | Buffer[]; ca?: Buffer }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const mod = o.ca ? https : http;
    const req = mod.request({ host: o.host ?? '127.0.0.1', port: o.port, method: o.method ?? 'GET', path: o.path, headers: o.headers, ca: o.ca, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (Array.isArray(o.body)) {
      // Chunked, no content-length: the server only learns the size while reading.
      let i = 0;
      const next = () => { if (i < o.body!.length) { if (req.write((o.body as Buffer[])[i++])) setImmediate(next); else req.once('drain', next); } else req.end(); };
      next();
    } else req.end(o.body);
  });
}

/** Sends raw bytes and returns the status line (or '' when the server just closed). */
function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.end(text));
    let out = '';
    s.on('data', (d) => { out += d.toString(); });
    s.on('close', () => resolve(out.split('\r\n')[0]));
    s.on('error', () => resolve(out.split('\r\n')[0]));
  });
}

/** Streams a chunked body over a raw socket while reading: the status line the server sent
 *  (a server may answer 413 and close before the client finished writing: EPIPE is expected). */
function rawStream(port: number, head: string, chunks: Buffer[]): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    const s = net.connect(port, '127.0.0.1', () => {
      s.write(head + 'Transfer-Encoding: chunked\r\n\r\n');
      let i = 0;
      const next = () => {
        if (s.destroyed) return;
        if (i >= chunks.length) { s.end('0\r\n\r\n'); return; }
        const c = chunks[i++];
        if (s.write(Buffer.concat([Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from('\r\n')]))) setImmediate(next); else s.once('drain', next);
      };
      next();
    });
    s.on('data', (d) => { out += d.toString(); });
    s.on('close', () => resolve(out.split('\r\n')[0]));
    s.on('error', () => { /* EPIPE/ECONNRESET after the answer */ });
  });
}

function noTracersConfig(dir: string, extra: Record<string, unknown> = {}): string {
  const f = path.join(dir, 'telegen.json');
  fs.writeFileSync(f, JSON.stringify({ tracers: { socket: { enabled: false } }, ...extra }));
  return f;
}

test('loopback API: writes need the token; bad requests are 4xx; the agent survives all of it', { timeout: 120_000 }, async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-sec-'));
  const a = await startAgent({ config: noTracersConfig(tmp) });
  try {
    const tokenFile = path.join(a.dataDir, 'api-token');
    assert.equal(fs.statSync(tokenFile).mode & 0o777, 0o600, 'token file readable by its owner only');
    const token = fs.readFileSync(tokenFile, 'utf8').trim();
    assert.ok(token.length >= 32);
    const port = a.apiPort;
    const wasm = Buffer.from('0061736d01000000', 'hex');

    // Reads are open on loopback.
    assert.equal((await request({ port, path: '/healthz' })).status, 200);
    assert.equal((await request({ port, path: '/metrics' })).status, 200);

    // Writes: no token, wrong token, malformed header, token with the right length but wrong.
    const put = (headers: Record<string, string>, body: Buffer | Buffer[] = wasm, p = '/api/decoders/http1') => request({ port, method: 'PUT', path: p, headers, body });
    for (const h of [<Record<string, string>>{}, { authorization: 'Bearer nope' }, { authorization: `Basic ${token}` }, { authorization: 'Bearer' }, { authorization: `Bearer ${'x'.repeat(token.length)}` }, { authorization: `Bearer ${token}x` }]) {
      const r = await put(h);
      assert.equal(r.status, 401, `PUT with ${JSON.stringify(h).slice(0, 40)}`);
      assert.equal(r.headers['www-authenticate'], 'Bearer');
    }
    assert.equal((await request({ port, method: 'POST', path: '/api/decoders/http1/rollback' })).status, 401);
    assert.equal((await request({ port, method: 'DELETE', path: '/api/decoders/http1' })).status, 401);

    const auth = { authorization: `Bearer ${token}` };
    // Oversized (the policy's max_module_bytes is 16 MiB): declared, and streamed without a length.
    const declared = await put({ ...auth, 'content-length': String(64 * 1024 * 1024) }, Buffer.alloc(0));
    assert.equal(declared.status, 413);
    const streamed = await rawStream(port, `PUT /api/decoders/http1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n`, Array.from({ length: 80 }, () => Buffer.alloc(256 * 1024, 1)));
    assert.match(streamed, /^HTTP\/1\.1 413/);
    // Invalid bodies and names.
    assert.equal((await put(auth, Buffer.from('hi'))).status, 400);
    const notWasm = await put(auth, Buffer.from('this is not a WebAssembly module at all'));
    assert.ok(notWasm.status === 400 || notWasm.status === 403, `not wasm → ${notWasm.status}`);
    assert.equal((await put(auth, wasm, '/api/decoders/..%2f..%2fetc')).status, 400);
    assert.equal((await put(auth, wasm, '/api/decoders/%E0%A4%A')).status, 400);
    assert.equal((await put(auth, wasm, `/api/decoders/${'a'.repeat(200)}`)).status, 400);
    assert.equal((await request({ port, method: 'DELETE', path: '/api/decoders/http1', headers: auth })).status, 405);
    // Request targets URL parsing rejects, huge headers, garbage.
    assert.match(await raw(port, 'GET // HTTP/1.1\r\nHost: x\r\n\r\n'), /^HTTP\/1\.1 400/);
    assert.match(await raw(port, 'GET //[ HTTP/1.1\r\nHost: x\r\n\r\n'), /^HTTP\/1\.1 400/);
    assert.match(await raw(port, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(100_000)}\r\n\r\n`), /^HTTP\/1\.1 431/);
    assert.match(await raw(port, '\x16\x03\x01\x02\x00garbage\r\n\r\n'), /^HTTP\/1\.1 400|^$/);

    // Still alive and answering.
    assert.equal(a.proc.exitCode, null, 'agent still running');
    assert.equal((await request({ port, path: '/healthz' })).status, 200);
    assert.equal((await request({ port, path: '/api/decoders' })).status, 200);
  } finally {
    assert.equal(await a.stop(), 0);
    fs.rmSync(a.dataDir, { recursive: true, force: true });
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

// ---- off loopback, TLS, inside a network namespace this test owns ---------------------------------

const canNetns = process.getuid?.() === 0 && fs.existsSync('/usr/bin/openssl') && (fs.existsSync('/usr/sbin/ip') || fs.existsSync('/usr/bin/ip'));

test('bound off loopback: HTTPS, and every endpoint but the probes needs the token', { timeout: 120_000 }, async (t) => {
  if (!canNetns || process.getuid?.() !== 0) {
    if (process.env.CI === 'true') assert.fail('needs root, ip and openssl');
    t.skip('needs root, ip and openssl');
    return;
  }
  const tag = String(process.pid % 100000);
  const ns = `tgsec${tag}`;
  const oct = 10 + (process.pid % 200);
  const hostIp = `10.231.${oct}.1`;
  const agentIp = `10.231.${oct}.2`;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-sec-tls-'));
  const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });
  let proc: ChildProcess | undefined;
  try {
    ip('netns', 'add', ns);
    ip('link', 'add', `tgs${tag}a`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    ip('addr', 'add', `${hostIp}/30`, 'dev', `tgs${tag}a`);
    ip('link', 'set', `tgs${tag}a`, 'up');
    ip('-n', ns, 'addr', 'add', `${agentIp}/30`, 'dev', 'eth0');
    ip('-n', ns, 'link', 'set', 'eth0', 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');

    const key = path.join(tmp, 'key.pem');
    const cert = path.join(tmp, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert,
      '-days', '1', '-subj', '/CN=telegen-test', '-addext', `subjectAltName=IP:${agentIp}`], { stdio: 'ignore' });
    const tokenFile = path.join(tmp, 'token');
    const token = 'secret-token-from-a-kubernetes-secret-0123456789';
    fs.writeFileSync(tokenFile, token + '\n', { mode: 0o600 });
    const port = await freePort();
    const cfg = noTracersConfig(tmp, { api: { listen: `${agentIp}:${port}`, token_file: tokenFile, tls: { cert_file: cert, key_file: key } } });
    const dataDir = path.join(tmp, 'data');
    const logs: string[] = [];
    proc = spawn('ip', ['netns', 'exec', ns, process.execPath, path.join(repoRoot, 'bin', 'telegen'), 'run', '--config', cfg, '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout!.on('data', (d) => logs.push(String(d)));
    proc.stderr!.on('data', (d) => logs.push(String(d)));
    const ca = fs.readFileSync(cert);
    const get = (p: string, headers: Record<string, string> = {}) => request({ host: agentIp, port, path: p, headers, ca });
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`agent exited: ${logs.join('')}`);
      try { if ((await get('/readyz')).status === 200) break; } catch { /* not yet */ }
      if (Date.now() > deadline) throw new Error(`agent not ready: ${logs.join('')}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal((await get('/healthz')).status, 200, 'probes need no token');
    for (const p of ['/metrics', '/api/status', '/api/decoders', '/']) {
      assert.equal((await get(p)).status, 401, `${p} without a token`);
      assert.equal((await get(p, { authorization: 'Bearer wrong' })).status, 401, `${p} with a wrong token`);
    }
    const ok = await get('/metrics', { authorization: `Bearer ${token}` });
    assert.equal(ok.status, 200);
    assert.match(ok.body, /telegen_/);
    // Plain HTTP to the TLS port gets no API answer.
    const plain = await request({ host: agentIp, port, path: '/healthz' }).then((r) => r.status, () => 0);
    assert.notEqual(plain, 200);
    // A certificate the client does not trust is refused (the server really presents cert.pem).
    await assert.rejects(request({ host: agentIp, port, path: '/healthz', ca: fs.readFileSync(path.join(repoRoot, 'package.json')) }));
    assert.equal(proc.exitCode, null);
  } finally {
    if (proc && proc.exitCode === null) {
      const p = proc;
      await new Promise<void>((resolve) => { const k = setTimeout(() => p.kill('SIGKILL'), 20_000); p.once('exit', () => { clearTimeout(k); resolve(); }); p.kill('SIGTERM'); });
    }
    try { ip('netns', 'del', ns); } catch { /* not created */ }
    try { ip('link', 'del', `tgs${tag}a`); } catch { /* went with the namespace */ }
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
