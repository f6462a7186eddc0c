// `telegen replay` of a WebSocket upgrade the server declines (RFC 9110 §7.8: it may ignore
// Upgrade and answer as HTTP/1.1) with a plain request pipelined behind it. Recorded here: a
// client writes `GET /ws` (Upgrade: websocket) and `GET /next` in one write to python's
// http.server, which answers both 200 (the body names the request), then sends `GET /third`.
// The decoder held every byte after an upgrade request until the response decided (they could be
// the next protocol), so /next was read only with /third's write: /next's response was taken for
// one without a request, /next got /third's response and /third none (reported unanswered).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'child_process';
import { rootForCapture, recordOnLo, nodeServer, pythonServer } from '../helpers/capture';
import { replayToSpans, spanToJsonLine } from '../../host/src/cli/replay';

const pyServer = `
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def do_GET(self):
        body = ('GET ' + self.path).encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
s = HTTPServer(('127.0.0.1', int(sys.argv[1])), H)
print('listening', s.server_port, flush=True)
s.serve_forever()
`;

const client = `
import socket, sys, time
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
def read(n):
    got = b''
    while got.count(b'HTTP/1.1 200') < n or not got.endswith(b'GET /next' if n == 2 else b'GET /third'):
        d = s.recv(65536)
        if not d: break
        got += d
    return got
s.sendall(b'GET /ws HTTP/1.1\\r\\nHost: x\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n'
          b'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n'
          b'GET /next HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')
a = read(2)
time.sleep(0.1)
s.sendall(b'GET /third HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')
b = read(1)
print(a.count(b'HTTP/1.1 200') + b.count(b'HTTP/1.1 200'))
s.close()
`;

test('replay of a declined WebSocket upgrade with a request pipelined behind it: each request has its own response, as tshark pairs them', { timeout: 90_000 }, async (t) => {
  if (!rootForCapture(t)) return;
  const { file, port } = await recordOnLo(t, { prefix: 'telegen-upgrade-declined-', file: 'declined.pcapng', servers: [pythonServer(pyServer)] },
    (p) => assert.equal(execFileSync('python3', ['-c', client, String(p)], { encoding: 'utf8', timeout: 20_000 }).trim(), '3'));
  // tshark: three requests, three 200 responses on the one connection
  const tsv = execFileSync('tshark', ['-r', file, '-d', `tcp.port==${port},http`, '-Y', 'http', '-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=|',
    '-e', 'http.request.uri', '-e', 'http.response.code', '-e', 'http.file_data'], { encoding: 'utf8' });
  const uris: string[] = [], codes: string[] = [];
  for (const line of tsv.split('\n').filter(Boolean)) {
    const [u, c] = line.split('\t');
    uris.push(...u.split('|').filter(Boolean));
    codes.push(...c.split('|').filter(Boolean));
  }
  assert.deepEqual(uris, ['/ws', '/next', '/third']);
  assert.deepEqual(codes, ['200', '200', '200']);

  const { spans } = await replayToSpans(file);
  const got = spans.map((s) => JSON.parse(spanToJsonLine(s)) as { status: string; attributes: Record<string, unknown> })
    .map((s) => [s.attributes['url.path'], s.attributes['http.response.status_code'], s.attributes['http.response.body.size'], s.attributes['telegen.no_response'] ?? false]);
  // the body is "GET " + the path: its size says which response each span got
  assert.deepEqual(got, [
    ['/ws', 200, 'GET /ws'.length, false],
    ['/next', 200, 'GET /next'.length, false],
    ['/third', 200, 'GET /third'.length, false],
  ]);
});
