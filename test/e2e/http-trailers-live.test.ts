// HTTP/1.1 chunked responses with trailer fields, through the running agent, from wget's side.
// wget reads a chunked body line by line (strace: recvfrom MSG_PEEK, then read of the chunk-size
// line, the data, its CRLF), reads one line after the last chunk and closes: with a trailer field
// that line is the field, and the empty line that ends the trailer section is never read. The
// client span was telegen.unknown (a body cut by the close) although wget had every byte of the
// body; the server's side, which wrote the whole message, was exact. Node's res.addTrailers and
// Go's http.ResponseWriter Trailer send such responses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { requireBpf, startAgent, startServer, waitFor, FlatSpan } from '../helpers/agent';

const SERVER = 2;
const CLIENT = 3;

const server = `
const http = require('http');
const srv = http.createServer((req, res) => {
  if (req.url === '/trailers') {
    res.writeHead(200, { 'Content-Type': 'text/plain', Trailer: 'X-Checksum' });
    res.write('part1'); res.write('part22');
    res.addTrailers({ 'X-Checksum': 'abc' });
    res.end();
  } else {
    res.writeHead(200, { 'Content-Type': 'text/plain' }); // chunked, no trailers
    res.write('plain'); res.end('-chunks');
  }
});
srv.listen(0, '127.0.0.1', () => console.log('listening ' + srv.address().port));
`;

test('wget reading chunked responses with and without trailers: client and server spans exact, none unknown', { timeout: 180_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const agent = await startAgent();
  const node = await startServer(process.execPath, ['-e', server]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-trailers-'));
  try {
    const base = `http://127.0.0.1:${node.port}`;
    // the bytes wget saved are the oracle for each body's size
    const sizes: Record<string, number> = {};
    for (const p of ['/trailers', '/plain']) {
      const out = path.join(dir, p.slice(1));
      execFileSync('wget', ['-q', '-O', out, `${base}${p}`], { timeout: 20_000 });
      sizes[p] = fs.statSync(out).size;
    }
    assert.deepEqual({ ...sizes }, { '/trailers': 11, '/plain': 12 });
    const mine = (kind: number) => agent.spans().filter((s: FlatSpan) => s.kind === kind && s.attributes['server.port'] === node.port);
    await waitFor(() => mine(CLIENT).length >= 2 && mine(SERVER).length >= 2, 30_000);
    assert.equal(await agent.stop(), 0);
    for (const kind of [CLIENT, SERVER]) {
      const spans = mine(kind);
      assert.deepEqual(spans.map((s) => s.attributes['url.path']).sort(), ['/plain', '/trailers'], `kind ${kind}`);
      for (const s of spans) {
        const p = String(s.attributes['url.path']);
        const what = `${kind === CLIENT ? 'wget' : 'node'} ${p}`;
        assert.equal(s.attributes['http.response.status_code'], 200, what);
        assert.equal(s.attributes['http.response.body.size'], sizes[p], `${what}: body size = the bytes wget saved`);
        assert.equal(s.attributes['telegen.unknown'], undefined, `${what}: not unknown`);
        assert.equal(s.status.code ?? 0, 0, what);
        if (kind === CLIENT) assert.equal(s.attributes['process.executable.name'], 'wget');
      }
    }
  } finally {
    await node.stop();
    if (agent.proc.exitCode === null) agent.proc.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
