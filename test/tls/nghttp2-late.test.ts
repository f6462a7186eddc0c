// nghttpd (libnghttp2 + libssl) serving a TLS HTTP/2 connection that a node client opened and
// used before the agent started, then an nghttp client after it. The agent finds nghttpd's
// header callback inside the running session (bpf/tls.md: callback discovery) and hooks
// nghttp2_submit_response in libnghttp2, node's OnHeaderCallback and nghttp2_submit_request in
// node: the fields HPACK sent as references to entries inserted before the agent
// (:authority, user-agent, server, content-type…) are named from the processes' own memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawn, execFileSync } from 'child_process';
import { requireBpf, startAgent, waitFor, outputOf, FlatSpan } from '../helpers/agent';
import { makePki, startNghttpd } from './tls-helpers';

const SERVER = 2;
const CLIENT = 3;

// A node http2 client on one TLS connection: a first batch before the agent, then one batch per
// number on stdin ("batch K done" after each), "end" closes it. Every request carries the same
// user-agent and x-tenant (indexed after first use).
const CLIENT_JS = `
const http2 = require('http2'); const fs = require('fs');
const s = http2.connect('https://localhost:' + process.argv[2], { ca: fs.readFileSync(process.argv[3]) });
const get = (p) => new Promise((ok, ko) => { const q = s.request({ ':path': p, 'user-agent': 'telegen-test/1', 'x-tenant': 'blue' }); q.on('response', () => {}); q.on('data', () => {}); q.on('end', ok); q.on('error', ko); q.end(); });
let batches = 0;
(async () => {
  for (let i = 0; i < 3; i++) await get('/hello.txt');
  console.log('before-agent done');
  require('readline').createInterface({ input: process.stdin }).on('line', async (l) => {
    if (l === 'end') { s.close(); return; }
    for (let i = 0; i < Number(l); i++) await get('/r' + (i % 2) + '.txt');
    console.log('batch ' + (++batches) + ' done');
  });
})().catch((e) => { console.error(e); process.exit(1); });
`;

const N = 20;

test('nghttpd + node client opened before the agent, nghttp after it: header fields from nghttp2 memory', { timeout: 150_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const pki = makePki();
  const docs = path.join(pki.dir, 'htdocs');
  fs.mkdirSync(docs);
  for (const f of ['hello.txt', 'r0.txt', 'r1.txt']) fs.writeFileSync(path.join(docs, f), `body of ${f}\n`);
  const cliFile = path.join(pki.dir, 'client.js');
  fs.writeFileSync(cliFile, CLIENT_JS);
  const cfg = path.join(pki.dir, 'agent.yaml');
  fs.writeFileSync(cfg, 'tracers:\n  profile: { enabled: false }\n');
  const served = await startNghttpd(pki, docs);
  const { port, proc: nghttpd } = served;
  const client = spawn(process.execPath, [cliFile, String(port), pki.ca], { stdio: ['pipe', 'pipe', 'pipe'] });
  const cliOut = outputOf(client);
  let agent: Awaited<ReturnType<typeof startAgent>> | undefined;
  try {
    await waitFor(() => /before-agent done/.test(cliOut()) || (client.exitCode !== null && Promise.reject(new Error(cliOut()))), 30_000, 50);
    // Header callbacks are found while the agent runs, after its capability drop: they are
    // hooked through uprobe_multi links (bpf/tls.md), which need no CAP_SYS_ADMIN.
    agent = await startAgent({ config: cfg });
    await waitFor(() => agent!.logs.join('').split('\n').some((l) => l.includes('nghttp2 hooked') && l.includes('libnghttp2')), 30_000)
      .catch(() => { throw new Error(`libnghttp2 not hooked: ${agent!.logs.join('').slice(-3000)}`); });
    const batch = async (n: number, k: number) => {
      client.stdin!.write(`${n}\n`);
      await waitFor(() => cliOut().includes(`batch ${k} done`) || (client.exitCode !== null && Promise.reject(new Error(cliOut()))), 60_000, 50);
    };
    // The first request after the start is the one whose nghttp2_session_mem_recv shows the
    // agent nghttpd's header callback (bpf/tls.md); fields pass unseen until it is hooked.
    await batch(1, 1);
    await waitFor(() => agent!.logs.join('').includes('nghttp2 header callback hooked'), 20_000)
      .catch(() => { throw new Error(`nghttpd's header callback not hooked: ${agent!.logs.join('').slice(-3000)}`); });
    assert.ok(agent.logs.join('').includes('capabilities dropped'), 'the callback was hooked after the capability drop');
    await batch(N, 2);
    client.stdin!.write('end\n');
    // nghttp (libnghttp2 client) on a new connection: its fields must agree with the wire.
    const nghttp = execFileSync('nghttp', ['-n', '-s', '--cert', pki.cert, '--key', pki.key, '-y', `https://127.0.0.1:${port}/r0.txt`, `https://127.0.0.1:${port}/r1.txt`, `https://127.0.0.1:${port}/missing`], { encoding: 'utf8', timeout: 20_000 });
    assert.match(nghttp, /\/missing/);

    const spansOf = (kind: number, pid: number | undefined, comm?: string) => agent!.spans().filter((s) => s.kind === kind && s.attributes['network.protocol.version'] === '2'
      && s.attributes['server.port'] === port && (pid === undefined || s.attributes['process.pid'] === pid) && (!comm || s.attributes['process.executable.name'] === comm));
    // client streams 1, 3, 5 were before the agent, 7 the first one after it
    const late = (s: FlatSpan) => Number(s.attributes['telegen.http2.stream_id']) > 2 * 4;
    const nodeSpans = () => spansOf(CLIENT, client.pid).filter(late);
    const srvSpans = () => spansOf(SERVER, nghttpd.pid).filter((s) => String(s.attributes['url.path']).startsWith('/r'));
    const srvLate = () => srvSpans().filter((s) => !String(s.attributes['user_agent.original'] ?? '').startsWith('nghttp2/')).filter(late);
    const nghttpSpans = () => spansOf(CLIENT, undefined, 'nghttp');
    await waitFor(() => nodeSpans().length >= N && srvLate().length >= N && nghttpSpans().length >= 3, 20_000).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 2500)); // exchanges held for their fields
    assert.equal(await agent.stop(), 0);

    const enough = Math.ceil(0.9 * N);
    // nghttpd's spans of the late connection: :authority and user-agent came as table
    // references the agent never saw; nghttpd's header callback knew them.
    const authority = (s: FlatSpan) => {
      const h = (s.attributes['telegen.http2.request.headers'] as string[] | undefined) ?? [];
      for (let i = 0; i + 1 < h.length; i += 2) if (h[i] === ':authority') return h[i + 1];
      return undefined;
    };
    for (const s of srvSpans()) {
      assert.match(String(s.attributes['url.path']), /^\/r[01]\.txt$/);
      const a = authority(s);
      if (a !== undefined) assert.match(a, /^(localhost|127\.0\.0\.1):\d+$/);
      const ua = s.attributes['user_agent.original'];
      if (ua !== undefined) assert.match(String(ua), /^(telegen-test\/1|nghttp2\/.*)$/);
    }
    const srvNamed = srvLate().filter((s) => authority(s) === `localhost:${port}` && s.attributes['user_agent.original'] === 'telegen-test/1');
    t.diagnostic(`nghttpd: ${srvNamed.length}/${N} late requests with :authority and user-agent; ${srvLate().filter((s) => s.attributes['telegen.hpack.recovered']).length} filled from nghttp2`);
    assert.ok(srvNamed.length >= enough, `nghttpd: ${srvNamed.length} of ${N} (spans ${srvLate().length}): ${JSON.stringify(srvLate()[0]?.attributes)}`);
    // The node client's side: request fields from nghttp2_submit_request, response fields
    // (nghttpd's server header, content-type) from node's OnHeaderCallback.
    const node = nodeSpans();
    for (const s of node) assert.match(String(s.attributes['url.path']), /^\/r[01]\.txt$/);
    const nodeNamed = node.filter((s) => authority(s) === `localhost:${port}` && String(s.attributes['http.response.header.content-type']) === 'text/plain');
    t.diagnostic(`node client: ${nodeNamed.length}/${N} late requests with :authority and the response content-type`);
    assert.ok(nodeNamed.length >= enough, `node client: ${nodeNamed.length} of ${N} (spans ${node.length}): ${JSON.stringify(node[node.length - 1]?.attributes)}`);
    // nghttp's own connection: complete, and nothing contradicts the wire.
    const ng = nghttpSpans().map((s) => `${s.attributes['url.path']} ${s.attributes['http.response.status_code']}`).sort();
    assert.deepEqual(ng, ['/missing 404', '/r0.txt 200', '/r1.txt 200']);
  } finally {
    if (client.exitCode === null) client.kill('SIGKILL');
    if (nghttpd.exitCode === null) nghttpd.kill('SIGTERM');
    if (agent && agent.proc.exitCode === null) await agent.stop();
    fs.rmSync(pki.dir, { recursive: true, force: true });
  }
});
