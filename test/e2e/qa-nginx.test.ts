// nginx serving static files (sendfile on, its default in Debian's config) through the running
// agent. nginx writes a response head with writev and the file with sendfile. The socket tracer
// hooks sendfile64 and splice (eae6789): their bytes reach the decoder as a gap of the size moved,
// so a body ends at its last sendfile with its exact size (test/e2e/qa-sendfile). Before that, and
// still on an agent whose object lacks those hooks, the http1 decoder ends such a body at the
// client's next request; without either, the next response head was taken as body and every
// other request of a keep-alive connection lost its server span's status (no_response).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync, execFileSync } from 'child_process';
import { randomBytes } from 'crypto';
import { requireBpf, startAgent, waitFor, freePort } from '../helpers/agent';
import { startNginx } from '../helpers/nginx';

const SERVER = 2;
const CLIENT = 3;
const ERROR = 2;

test('nginx static files with sendfile: one curl connection, 7 requests (200, 5 MB, 206, 304, 404, gzip, HEAD) — one server span each with its status and body size, linked to its curl span', { timeout: 120_000 }, async (t) => {
  if (!requireBpf(t)) return;
  if (spawnSync('sh', ['-c', 'command -v nginx']).status !== 0) { t.skip('nginx not installed'); return; }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-qa-nginx-'));
  fs.chmodSync(dir, 0o755); // nginx's worker runs as nobody
  const www = path.join(dir, 'www');
  fs.mkdirSync(www, { mode: 0o755 });
  fs.writeFileSync(path.join(www, 'small.txt'), 'hello small\n');
  fs.writeFileSync(path.join(www, 'big.bin'), randomBytes(5_000_000));
  fs.writeFileSync(path.join(www, 'text.html'), 'abcdefgh'.repeat(4000));
  const port = await freePort();
  const agent = await startAgent();
  const nginx = startNginx(dir, 'text/plain txt; text/html html; application/octet-stream bin;', `server {
    listen 127.0.0.1:${port};
    root ${www};
    location /gz/ { alias ${www}/; gzip on; gzip_types text/html; gzip_min_length 10; }
  }`);
  try {
    const base = `http://127.0.0.1:${port}`;
    await waitFor(() => spawnSync('curl', ['-sf', '-o', '/dev/null', `${base}/small.txt?warm=1`]).status === 0, 10_000);
    const lastModified = /last-modified: (.*)\r/i.exec(execFileSync('curl', ['-sSI', `${base}/small.txt?warm=2`], { encoding: 'latin1' }))![1];
    // One invocation, one connection (curl reuses it across --next): num_connects is 1, then 0.
    const w = (n: number) => ['-w', `${n} %{http_code} %{num_connects} %{size_download}\\n`, '-o', '/dev/null'];
    const out = execFileSync('curl', ['-sS',
      ...w(1), `${base}/small.txt?n=1`, '--next', ...w(2), `${base}/big.bin?n=2`,
      '--next', '-r', '100-199', ...w(3), `${base}/big.bin?n=3`,
      '--next', '-H', `If-Modified-Since: ${lastModified}`, ...w(4), `${base}/small.txt?n=4`,
      '--next', ...w(5), `${base}/nope?n=5`,
      '--next', '--compressed', ...w(6), `${base}/gz/text.html?n=6`,
      '--next', '-I', ...w(7), `${base}/big.bin?n=7`,
    ], { encoding: 'utf8' }).trim().split('\n').map((l) => l.split(' ').map(Number));
    assert.deepEqual(out.map((r) => [r[0], r[1], r[2]]), [[1, 200, 1], [2, 200, 0], [3, 206, 0], [4, 304, 0], [5, 404, 0], [6, 200, 0], [7, 200, 0]], 'one connection');
    const gzBytes = out[5][3];

    const mine = () => agent.spans().filter((s) => s.attributes['server.port'] === port && /^n=\d$/.test(String(s.attributes['url.query'])));
    await waitFor(() => mine().filter((s) => s.kind === SERVER).length >= 7 && mine().filter((s) => s.kind === CLIENT).length >= 7, 30_000).catch(() => undefined);
    assert.equal(await agent.stop(), 0);
    const spans = mine();
    const brief = spans.map((s) => `${s.kind} ${s.attributes['process.executable.name']} ${s.attributes['http.request.method']} ${s.attributes['url.path']}?${s.attributes['url.query']} ${s.attributes['http.response.status_code']} body=${s.attributes['http.response.body.size']}`).join('\n');
    const servers = spans.filter((s) => s.kind === SERVER);
    assert.equal(servers.length, 7, `one server span per request:\n${brief}`);
    const want: Array<[string, string, number, number | undefined]> = [
      ['GET', '/small.txt', 200, 12], ['GET', '/big.bin', 200, 5_000_000], ['GET', '/big.bin', 206, 100], ['GET', '/small.txt', 304, undefined],
      ['GET', '/nope', 404, undefined], ['GET', '/gz/text.html', 200, gzBytes], ['HEAD', '/big.bin', 200, undefined],
    ];
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    for (let n = 1; n <= 7; n++) {
      const [method, p, status, body] = want[n - 1];
      const s = servers.filter((x) => x.attributes['url.query'] === `n=${n}`);
      assert.equal(s.length, 1, `n=${n}: one server span\n${brief}`);
      const a = s[0].attributes;
      assert.equal(s[0].attributes['process.executable.name'], 'nginx');
      assert.deepEqual([a['http.request.method'], a['url.path'], a['http.response.status_code']], [method, p, status], `n=${n}\n${brief}`);
      assert.equal(a['telegen.no_response'], undefined, `n=${n} was answered`);
      assert.notEqual(s[0].status.code, ERROR, `n=${n}: no server error`);
      if (body !== undefined) assert.equal(a['http.response.body.size'], body, `n=${n}: body size\n${brief}`);
      if (p === '/nope') assert.ok(Number(a['http.response.body.size']) > 0, 'nginx writes its 404 page');
      const c = byId.get(s[0].parentSpanId ?? '');
      assert.ok(c && c.kind === CLIENT && c.attributes['url.query'] === `n=${n}`, `n=${n}: the curl span of the same request is its parent`);
      assert.equal(c!.attributes['http.response.status_code'], status);
      assert.equal(c!.status.code === ERROR, status >= 400, `n=${n}: client error for 4xx`);
    }
    assert.equal(spans.filter((s) => s.kind === CLIENT).length, 7, `one client span per request:\n${brief}`);
  } finally {
    nginx.kill('SIGTERM');
    if (agent.proc.exitCode === null) agent.proc.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 300));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
