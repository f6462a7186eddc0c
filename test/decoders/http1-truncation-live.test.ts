// Header blocks longer than the agent's capture through the running agent: curl sends a 40 KB
// request head, a Node server (max header size raised to 64 KiB) answers one request with a 40 KB
// Set-Cookie head; the server side reads and writes them in one syscall each, so the kernel hands
// the agent the first 16 KiB (capture_max), a gap and the last 16 KiB (capture_tail): the rest of
// the head and what follows it. Each exchange is a span with its method, target and status, marked
// telegen.truncated, and the requests after it on the same connection are decoded as usual. A
// 20 KiB head fits in the head and tail records whole: not truncated (it was, head-only).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import { requireBpf, startAgent, startServer, curl, waitFor, FlatSpan } from '../helpers/agent';

const SERVER = 2;

const serverJs = `
const http = require('http');
const s = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    if (req.url === '/cookie') res.writeHead(200, { 'content-type': 'text/plain', 'set-cookie': 's=' + 'c'.repeat(40000) });
    else res.writeHead(req.url === '/missing' ? 404 : 200, { 'content-type': 'text/plain' });
    res.end('body of ' + req.url + '\\n');
  });
});
s.listen(0, '127.0.0.1', () => process.stdout.write('listening ' + s.address().port + '\\n'));
process.on('SIGTERM', () => process.exit(0));
`;

test('a request head and a response head over 16 KiB through the agent: spans with method, target and status, telegen.truncated; the connection decodes on', { timeout: 120_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const agent = await startAgent();
  const server = await startServer(process.execPath, ['--max-http-header-size=65536', '-e', serverJs]);
  try {
    const base = `http://127.0.0.1:${server.port}`;
    // one connection: the 20 KiB request head, then two ordinary requests
    // (--next: curl's -H is for every URL of its group; the connection is reused across groups)
    const out = curl(['-H', `X-Pad: ${'p'.repeat(40000)}`, `${base}/padded?x=1`, '--next', `${base}/after`, `${base}/missing`,
      '--next', '-H', `X-Pad: ${'p'.repeat(20000)}`, `${base}/padded-20k`]);
    assert.match(out, /body of \/padded\?x=1\nbody of \/after\nbody of \/missing\nbody of \/padded-20k/);
    // another: the 20 KiB response head, then one more request
    assert.match(curl([`${base}/cookie`, `${base}/after-cookie`]), /body of \/cookie\nbody of \/after-cookie/);
    const mine = (): FlatSpan[] => agent.spans().filter((s) => s.kind === SERVER && s.attributes['server.port'] === server.port);
    await waitFor(() => mine().length >= 6, 20_000).catch((e: Error) => {
      // What was there and what the agent said (overload, pauses): a missing span is otherwise silent.
      const seen = agent.spans().map((s) => `${s.kind} ${s.attributes['url.path']} ${s.attributes['server.port']}`);
      throw new Error(`${e.message}: spans ${JSON.stringify(seen)}; agent log tail ${agent.logs.slice(-15).join('\n')}`);
    });
    await agent.stop();
    const conn = (p: string) => mine().find((s) => s.attributes['url.path'] === p)?.attributes['client.port'];
    assert.deepEqual([conn('/after'), conn('/missing'), conn('/padded-20k')], [conn('/padded'), conn('/padded'), conn('/padded')], 'one connection');
    assert.equal(conn('/after-cookie'), conn('/cookie'), 'one connection');
    const got = mine().map((s) => [s.attributes['http.request.method'], s.attributes['url.path'], s.attributes['http.response.status_code'], s.attributes['telegen.truncated'] ?? false])
      .sort((a, b) => String(a[1]).localeCompare(String(b[1])));
    assert.deepEqual(got, [
      ['GET', '/after', 200, false],
      ['GET', '/after-cookie', 200, false],
      ['GET', '/cookie', 200, true],
      ['GET', '/missing', 404, false],
      ['GET', '/padded', 200, true],
      ['GET', '/padded-20k', 200, false],
    ]);
  } finally {
    await server.stop();
    await agent.stop();
    fs.rmSync(agent.dataDir, { recursive: true, force: true });
  }
});
