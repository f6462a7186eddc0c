// A binary that links OpenSSL statically and first runs after the agent started (and dropped to
// its run-time capabilities): the /proc rescan hooks it (uprobe_multi links, bpf/tls.md) and its
// HTTPS traffic becomes plaintext spans. A copy of node is such a binary (a new inode).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { requireBpf, startAgent, startServer, curl, waitFor } from '../helpers/agent';
import { makePki } from './tls-helpers';

const SERVER = 2;

const SERVER_JS = `
const https = require('https'); const fs = require('fs');
const srv = https.createServer({ key: fs.readFileSync(process.argv[2]), cert: fs.readFileSync(process.argv[3]) }, (req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' }); res.end('late ' + req.url);
});
srv.listen(0, '127.0.0.1', () => console.log('listening ' + srv.address().port));
`;

/** A copy of node (a new inode: no file the agent has hooked or looked at) and the agent's config. */
function lateServerFixture(name: string, tls: string) {
  const pki = makePki();
  const node = path.join(pki.dir, name);
  fs.copyFileSync(process.execPath, node);
  fs.chmodSync(node, 0o755);
  fs.writeFileSync(path.join(pki.dir, 'server.js'), SERVER_JS);
  const cfg = path.join(pki.dir, 'agent.yaml');
  fs.writeFileSync(cfg, `tracers:\n  profile: { enabled: false }\n  tls: ${tls}\n`);
  return { pki, node, cfg };
}

test('a TLS server binary first run after the agent started is hooked by the rescan', { timeout: 150_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const { pki, node, cfg } = lateServerFixture('node-copy', '{ rescan_ms: 500 }');
  const agent = await startAgent({ config: cfg });
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  try {
    assert.ok(agent.logs.join('').includes('capabilities dropped'), 'the agent runs with its run-time capabilities');
    server = await startServer(node, [path.join(pki.dir, 'server.js'), pki.key, pki.cert]);
    await waitFor(() => agent.logs.join('').split('\n').some((l) => l.includes('OpenSSL hooked') && l.includes('node-copy')), 30_000)
      .catch(() => { throw new Error(`node-copy not hooked: ${agent.logs.join('').slice(-3000)}`); });
    // its nghttp2 (node's own) too: the header-field probes of bpf/tls.md
    await waitFor(() => agent.logs.join('').split('\n').some((l) => l.includes('nghttp2 hooked') && l.includes('node-copy') && l.includes('OnHeaderCallback')), 10_000)
      .catch(() => { throw new Error(`node-copy's nghttp2 not hooked: ${agent.logs.join('').slice(-3000)}`); });
    const base = `https://localhost:${server.port}`;
    assert.equal(curl(['--cacert', pki.ca, `${base}/after/one`, `${base}/after/two`]), 'late /after/onelate /after/two');
    const mine = () => agent.spans().filter((s) => s.kind === SERVER && s.attributes['process.pid'] === server!.proc.pid);
    await waitFor(() => mine().length >= 2, 20_000).catch(() => undefined);
    assert.equal(await agent.stop(), 0);
    assert.deepEqual(mine().map((s) => `${s.attributes['http.request.method']} ${s.attributes['url.path']} ${s.attributes['http.response.status_code']}`).sort(),
      ['GET /after/one 200', 'GET /after/two 200']);
  } finally {
    await server?.stop();
    if (agent.proc.exitCode === null) await agent.stop();
    fs.rmSync(pki.dir, { recursive: true, force: true });
  }
});

// With exec events (the Go tracer's bpf/go_exec.bpf.c reports every executable not looked at
// yet) a new process's maps are read when it execs: no full /proc scan runs in this test after
// the start (the tick and the safety net are set past its end), so the hook can only come from
// the event. Timing is reported, not asserted (a loaded machine delays it).
test('a TLS server binary first run after the agent started is hooked from its exec event, without a full rescan', { timeout: 150_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const { pki, node, cfg } = lateServerFixture('node-exec', '{ rescan_ms: 600000, safety_rescan_ms: 3600000 }');
  const agent = await startAgent({ config: cfg });
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  try {
    await waitFor(() => agent.logs.join('').includes('exec-time attach on'), 30_000)
      .catch(() => { throw new Error(`no exec events: ${agent.logs.join('').slice(-3000)}`); });
    const started = Date.now();
    server = await startServer(node, [path.join(pki.dir, 'server.js'), pki.key, pki.cert]);
    await waitFor(() => agent.logs.join('').split('\n').some((l) => l.includes('OpenSSL hooked') && l.includes('node-exec')), 30_000)
      .catch(() => { throw new Error(`node-exec not hooked: ${agent.logs.join('').slice(-3000)}`); });
    t.diagnostic(`hooked ${Date.now() - started} ms after the server was started (its listen included)`);
    const base = `https://localhost:${server.port}`;
    assert.equal(curl(['--cacert', pki.ca, `${base}/exec/one`]), 'late /exec/one');
    const mine = () => agent.spans().filter((s) => s.kind === SERVER && s.attributes['process.pid'] === server!.proc.pid);
    await waitFor(() => mine().length >= 1, 20_000).catch(() => undefined);
    assert.equal(await agent.stop(), 0);
    assert.deepEqual(mine().map((s) => `${s.attributes['http.request.method']} ${s.attributes['url.path']} ${s.attributes['http.response.status_code']}`),
      ['GET /exec/one 200']);
  } finally {
    await server?.stop();
    if (agent.proc.exitCode === null) await agent.stop();
    fs.rmSync(pki.dir, { recursive: true, force: true });
  }
});
