// Failed TLS handshakes through the running agent (bpf/tls.md, Handshakes): a client that does not
// trust the server's certificate, a server that finds no common cipher or ALPN protocol, an mTLS
// server refusing a client without a certificate. Each failure is a span of its connection with
// status ERROR, error.type tls.handshake_failed, tls.established false and what the library said;
// a successful handshake adds no span (curl -k's request is its usual HTTP span) and only counts.
// Before, such a connection left nothing at all: no plaintext ever reached a decoder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import { spawnSync } from 'child_process';
import { requireBpf, startAgent, startServer, curl, waitFor, FlatSpan, RunningAgent } from '../helpers/agent';
import { tlsScratch } from './tls-helpers';

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

function handshakeFailures(agent: RunningAgent, port: number): FlatSpan[] {
  return agent.spans().filter((s) => s.attributes['error.type'] === 'tls.handshake_failed' && s.attributes['server.port'] === port);
}

function describe(s: FlatSpan): string {
  return `${s.kind === CLIENT ? 'CLIENT' : s.kind === SERVER ? 'SERVER' : s.kind} ${s.attributes['process.executable.name']} ${s.status?.message}`;
}

test('untrusted certificate: curl and a node client fail their handshake with a node https server; curl -k does not', { timeout: 180_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const { pki, file, cfg } = tlsScratch({ 'server.js': NODE_SERVER_JS, 'get.js': NODE_GET_JS });
  const agent = await startAgent({ config: cfg });
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

    await waitFor(() => handshakeFailures(agent, P).length >= 4 && agent.spans().filter((s) => s.attributes['url.path'] === '/node' && s.kind === SERVER).length >= 1, 30_000).catch(() => undefined);
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
    const paths = agent.spans().filter((s) => s.attributes['server.port'] === P && s.attributes['url.path']).map((s) => `${s.kind} ${s.attributes['url.path']}`).sort();
    assert.deepEqual(paths, [`${CLIENT} /insecure`, `${CLIENT} /node`, `${CLIENT} /trusted`, `${SERVER} /insecure`, `${SERVER} /node`, `${SERVER} /trusted`].sort());
  } finally {
    await server.stop();
    if (agent.proc.exitCode === null) await agent.stop();
    fs.rmSync(pki.dir, { recursive: true, force: true });
  }
});
