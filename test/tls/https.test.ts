// HTTPS through the running agent: OpenSSL uprobes (libssl.so.3 for curl, the node binary's own
// OpenSSL for Node) deliver plaintext, and the spans look exactly like cleartext HTTP/1.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import { spawnSync } from 'child_process';
import { requireBpf, startAgent, startServer, curl, waitFor, FlatSpan } from '../helpers/agent';
import { tlsScratch } from './tls-helpers';

const SERVER = 2;
const CLIENT = 3;

function summary(s: FlatSpan): string {
  return `${s.attributes['http.request.method']} ${s.attributes['url.path']} ${s.attributes['http.response.status_code']}`;
}

const SERVER_JS = `
const https = require('https'); const fs = require('fs');
const srv = https.createServer({ key: fs.readFileSync(process.argv[2]), cert: fs.readFileSync(process.argv[3]) }, (req, res) => {
  let n = 0; req.on('data', (d) => n += d.length);
  req.on('end', () => {
    const m = /^\\/status\\/(\\d+)/.exec(req.url);
    res.writeHead(m ? Number(m[1]) : 200, { 'content-type': 'text/plain' });
    res.end(req.method === 'POST' ? 'got ' + n : 'hello over tls ' + req.url);
  });
});
srv.listen(0, '127.0.0.1', () => console.log('listening ' + srv.address().port));
`;

test('HTTPS (self-made CA): curl and a Node client against a Node https server, plaintext spans', { timeout: 180_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const { pki, file, cfg } = tlsScratch({ 'server.js': SERVER_JS });
  const srvFile = file('server.js');
  const agent = await startAgent({ config: cfg });
  const server = await startServer(process.execPath, [srvFile, pki.key, pki.cert]);
  try {
    const P = server.port;
    const base = `https://localhost:${P}`;
    // curl (libssl.so.3 through its socket BIO): three requests on one keep-alive connection
    assert.match(curl(['--cacert', pki.ca, `${base}/hello`, `${base}/users/42`, `${base}/status/404`]), /hello over tls \/hello/);
    assert.equal(curl(['--cacert', pki.ca, '-X', 'POST', '--data-binary', 'x'.repeat(5000), `${base}/upload`]), 'got 5000');
    // a Node https client (node's own OpenSSL on memory BIOs), keep-alive agent
    const client = spawnSync(process.execPath, ['-e', `
      const https = require('https'); const fs = require('fs');
      const agent = new https.Agent({ keepAlive: true, ca: fs.readFileSync(${JSON.stringify(pki.ca)}) });
      const get = (p) => new Promise((ok, ko) => https.get({ host: 'localhost', port: ${P}, path: p, agent }, (r) => { let b = ''; r.on('data', (d) => b += d); r.on('end', () => ok(r.statusCode)); }).on('error', ko));
      (async () => { const a = await get('/node/one'); const b = await get('/status/503'); process.stdout.write(a + ',' + b); agent.destroy(); })();
    `], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(client.stdout, '200,503', client.stderr);

    const expectedServer = ['GET /hello 200', 'GET /users/42 200', 'GET /status/404 404', 'POST /upload 200', 'GET /node/one 200', 'GET /status/503 503'].sort();
    const onPort = (kind: number) => agent.spans().filter((s) => s.kind === kind && s.attributes['server.port'] === P);
    await waitFor(() => onPort(SERVER).length >= expectedServer.length && onPort(CLIENT).length >= expectedServer.length, 30_000).catch(() => undefined);
    assert.equal(await agent.stop(), 0);
    const spans = agent.spans().filter((s) => s.attributes['server.port'] === P);
    const srvSpans = spans.filter((s) => s.kind === SERVER);
    assert.deepEqual(srvSpans.map(summary).sort(), expectedServer, 'every HTTPS request decoded once on the server side');
    for (const s of srvSpans) {
      assert.equal(s.attributes['process.pid'], server.proc.pid);
      assert.equal(s.attributes['network.protocol.version'], '1.1');
      assert.equal(s.attributes['client.address'], '127.0.0.1');
    }
    const curlSpans = spans.filter((s) => s.kind === CLIENT && s.attributes['process.executable.name'] === 'curl');
    assert.deepEqual(curlSpans.map(summary).sort(), ['GET /hello 200', 'GET /users/42 200', 'GET /status/404 404', 'POST /upload 200'].sort(), 'curl side');
    const nodeClient = spans.filter((s) => s.kind === CLIENT && s.attributes['process.pid'] === client.pid);
    assert.deepEqual(nodeClient.map(summary).sort(), ['GET /node/one 200', 'GET /status/503 503'].sort(), 'node client side');
    // No span was made of ciphertext: nothing on this port that is not one of these requests.
    assert.equal(spans.length, srvSpans.length + curlSpans.length + nodeClient.length);
  } finally {
    await server.stop();
    if (agent.proc.exitCode === null) await agent.stop();
    fs.rmSync(pki.dir, { recursive: true, force: true });
  }
});
