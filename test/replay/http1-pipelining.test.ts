// `telegen replay` of deep HTTP/1.1 pipelining: h2load --h1 -m 300 keeps 300 requests in flight on
// one connection and writes all of them before the first response comes back (RFC 9112 §9.3.2:
// responses in request order). Recorded here against a Node http server on lo. The decoder queued
// at most 128 waiting requests per connection and reset the connection at the 129th: of 600
// exchanges h2load counted as succeeded (and tshark reads), 409 spans came out, 153 with a status,
// the rest unanswered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'child_process';
import { rootForCapture, recordOnLo, nodeServer } from '../helpers/capture';
import { replayToSpans, spanToJsonLine } from '../../host/src/cli/replay';

const serverJs = `
const http = require('http');
const s = http.createServer((req, res) => { res.setHeader('content-type', 'text/plain'); res.end(req.url); });
s.listen(Number(process.argv[1]), '127.0.0.1', () => process.stdout.write('listening ' + s.address().port + '\\n'));
process.on('SIGTERM', () => process.exit(0));
`;

test('replay of h2load --h1 -m 300 (300 pipelined requests per write): every exchange has its status, as h2load and tshark count them', { timeout: 90_000 }, async (t) => {
  if (!rootForCapture(t)) return;
  const { file, port, out } = await recordOnLo(t, { prefix: 'telegen-pipeline-', file: 'pipeline.pcapng', servers: [nodeServer(serverJs)] },
    (p) => execFileSync('h2load', ['--h1', '-n', '600', '-c', '1', '-m', '300', `http://127.0.0.1:${p}/deep?d=300`], { encoding: 'utf8', timeout: 60_000 }));
  assert.match(out, /600 succeeded/, out);
  assert.match(out, /status codes: 600 2xx/, out);
  // tshark reads 600 requests and 600 responses on the one connection
  const count = (field: string) => execFileSync('tshark', ['-r', file, '-d', `tcp.port==${port},http`, '-Y', field, '-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=|', '-e', field], { encoding: 'utf8' })
    .split('\n').filter(Boolean).flatMap((l) => l.split('|')).filter(Boolean);
  const codes = count('http.response.code');
  assert.equal(count('http.request.uri').length, 600);
  assert.deepEqual([...new Set(codes)], ['200']);
  assert.equal(codes.length, 600);

  const { spans } = await replayToSpans(file);
  const got = spans.map((s) => JSON.parse(spanToJsonLine(s)) as { status: string; attributes: Record<string, unknown> });
  const shape = new Map<string, number>();
  for (const s of got) {
    const k = JSON.stringify([s.attributes['http.request.method'], s.attributes['url.path'], s.attributes['url.query'], s.attributes['http.response.status_code'],
      s.attributes['http.response.body.size'], s.attributes['telegen.no_response'] ?? false, s.status]);
    shape.set(k, (shape.get(k) ?? 0) + 1);
  }
  assert.deepEqual([...shape], [[JSON.stringify(['GET', '/deep', 'd=300', 200, 11, false, 'UNSET']), 600]]);
});
