// HTTP semantic conventions: http.request.method holds only the methods they know (RFC 9110's,
// PATCH, QUERY) and exactly so (methods are case-sensitive); any other is `_OTHER`, the method as
// sent is http.request.method_original, and the span is named `HTTP` (`HTTP {route}`). Recorded
// here: curl against python's http.server (HTTP/1.1, any method answered) and a Node http2 server
// (prior knowledge), with PURGE, PROPFIND, a lower-case `get`, an invented FOO and known methods.
// Before, each unknown method was a span name and an http.server.request.duration series of its
// own: any token is a method on the wire, so a scanner made them without bound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'child_process';
import { curl } from '../helpers/agent';
import { rootForCapture, recordOnLo, nodeServer, pythonServer } from '../helpers/capture';
import { replayToSpans, spanToJsonLine } from '../../host/src/cli/replay';

const pyServer = `
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def answer(self):
        body = (self.command + ' ' + self.path).encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def __getattr__(self, name):
        if name.startswith('do_'): return self.answer
        raise AttributeError(name)
    def log_message(self, *a): pass
s = HTTPServer(('127.0.0.1', int(sys.argv[1])), H)
print('listening', s.server_port, flush=True)
s.serve_forever()
`;

const h2Server = `
const http2 = require('http2');
const s = http2.createServer();
s.on('stream', (st, h) => { st.respond({ ':status': 200 }); st.end(h[':method'] + ' ' + h[':path']); });
s.listen(Number(process.argv[1]), '127.0.0.1', () => process.stdout.write('listening ' + s.address().port + '\\n'));
process.on('SIGTERM', () => process.exit(0));
`;

test('replay: HTTP/1.1 and HTTP/2 methods the semantic conventions do not know are _OTHER with http.request.method_original, spans named HTTP', { timeout: 90_000 }, async (t) => {
  if (!rootForCapture(t)) return;
  const h1Methods = ['GET', 'PATCH', 'PURGE', 'PROPFIND', 'get', 'FOO'];
  const h2Methods = ['DELETE', 'FOO', 'MKCOL'];
  const { file, ports: [, h2Port] } = await recordOnLo(t, { prefix: 'telegen-methods-', file: 'methods.pcapng', servers: [pythonServer(pyServer), nodeServer(h2Server)] }, (h1Port, [, h2]) => {
    for (const m of h1Methods) assert.equal(curl(['-X', m, `http://127.0.0.1:${h1Port}/m/${m}`]), `${m} /m/${m}`);
    for (const m of h2Methods) assert.equal(curl(['--http2-prior-knowledge', '-X', m, `http://127.0.0.1:${h2}/m/${m}`]), `${m} /m/${m}`);
  });
  // tshark reads the HTTP/2 methods from the HEADERS blocks (its HTTP/1 dissector knows methods
  // from a list and skips PURGE, `get` and FOO)
  const tsharkH2 = execFileSync('tshark', ['-r', file, '-d', `tcp.port==${h2Port},http2`, '-Y', 'http2.headers.method', '-T', 'fields', '-e', 'http2.headers.method'], { encoding: 'utf8' })
    .split('\n').filter(Boolean).sort();
  assert.deepEqual(tsharkH2, [...h2Methods].sort());

  const { spans } = await replayToSpans(file);
  const got = spans.map((s) => JSON.parse(spanToJsonLine(s)) as { name: string; attributes: Record<string, unknown> })
    .map((s) => [s.attributes['network.protocol.version'], s.attributes['url.path'], s.attributes['http.request.method'], s.attributes['http.request.method_original'], s.name, s.attributes['http.response.status_code']])
    .sort((a, b) => { const x = `${String(a[0])} ${String(a[1])}`, y = `${String(b[0])} ${String(b[1])}`; return x < y ? -1 : x > y ? 1 : 0; });
  assert.deepEqual(got, [
    ['1.1', '/m/FOO', '_OTHER', 'FOO', 'HTTP /m/FOO', 200],
    ['1.1', '/m/GET', 'GET', undefined, 'GET /m/GET', 200],
    ['1.1', '/m/PATCH', 'PATCH', undefined, 'PATCH /m/PATCH', 200],
    ['1.1', '/m/PROPFIND', '_OTHER', 'PROPFIND', 'HTTP /m/PROPFIND', 200],
    ['1.1', '/m/PURGE', '_OTHER', 'PURGE', 'HTTP /m/PURGE', 200],
    ['1.1', '/m/get', '_OTHER', 'get', 'HTTP /m/get', 200],
    ['2', '/m/DELETE', 'DELETE', undefined, 'DELETE /m/DELETE', 200],
    ['2', '/m/FOO', '_OTHER', 'FOO', 'HTTP /m/FOO', 200],
    ['2', '/m/MKCOL', '_OTHER', 'MKCOL', 'HTTP /m/MKCOL', 200],
  ]);
});
