// `telegen replay` of HTTP/2 captured from the middle of a connection whose server port is above
// the client's (a service on 61xxx; Linux hands clients 32768-60999): without the handshake the
// ports guess "the smaller port serves", backwards here. Recorded here: a Node http2 client and
// server on lo (dumpcap), then the packets up to the first response dropped with editcap. The
// http2 decoder turns its streams round at the first header block with :method or :status, but
// the spans kept the guessed ends: server.port was the client's port and client.port the
// server's on every span (a gRPC capture on 61010 joined at packet 40: 38 of 38 spans). Now the
// decoder marks such records and the host swaps the span's ends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'net';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { rootForCapture, recordOnLo, nodeServer } from '../helpers/capture';
import { replayToSpans } from '../../host/src/cli/replay';

const serverJs = `
const http2 = require('http2');
const s = http2.createServer();
s.on('stream', (st, h) => { st.respond({ ':status': h[':path'] === '/three' ? 404 : 200 }); st.end('body of ' + h[':path']); });
s.listen(Number(process.argv[1]), '127.0.0.1', () => process.stdout.write('listening ' + s.address().port + '\\n'));
process.on('SIGTERM', () => process.exit(0));
`;

const clientJs = `
const http2 = require('http2');
const c = http2.connect('http://127.0.0.1:' + process.argv[1]);
const get = (p) => new Promise((r) => { const q = c.request({ ':path': p }); q.resume(); q.on('end', r); q.end(); });
(async () => {
  for (const p of ['/one', '/two', '/three']) { await get(p); await new Promise((r) => setTimeout(r, 100)); }
  process.stdout.write('local ' + c.socket.localPort + '\\n');
  c.close();
})();
`;

/** A free port above the kernel's ephemeral range. */
async function highPort(): Promise<number> {
  for (let p = 61000 + Math.floor(Math.random() * 4000); p < 65535; p++) {
    const free = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(p, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) return p;
  }
  throw new Error('no free port above 61000');
}

test('replay of HTTP/2 joined mid-connection, server port above the client\'s: spans name the real client and server', { timeout: 90_000 }, async (t) => {
  if (!rootForCapture(t)) return;
  const { file: full, tmp, port, out: clientPort } = await recordOnLo(t, { prefix: 'telegen-mid-h2-', file: 'full.pcapng', servers: [nodeServer(serverJs, await highPort())] },
    (p) => Number(/local (\d+)/.exec(execFileSync(process.execPath, ['-e', clientJs, String(p)], { encoding: 'utf8' }))![1]));
  const mid = path.join(tmp, 'mid.pcapng');
  assert.ok(clientPort < port, `client port ${clientPort} below the server's ${port}`);
  // the capture begins after the first response: no handshake, no preface, no SETTINGS
  const first = execFileSync('tshark', ['-r', full, '-d', `tcp.port==${port},http2`, '-Y', `tcp.srcport == ${port} && http2.headers.status`, '-T', 'fields', '-e', 'frame.number'], { encoding: 'utf8' })
    .split('\n').filter(Boolean).map(Number)[0];
  assert.ok(first > 0, 'the first response is in the capture');
  execFileSync('editcap', ['-r', full, mid, `${first + 1}-1000000`]);
  const { spans } = await replayToSpans(mid);
  const got = spans.map((s) => [s.attributes['url.path'], s.attributes['http.response.status_code'], s.attributes['client.port'], s.attributes['server.port'], s.attributes['telegen.ends.swapped']]);
  assert.deepEqual(got, [
    ['/two', 200, clientPort, port, undefined],
    ['/three', 404, clientPort, port, undefined],
  ]);
});
