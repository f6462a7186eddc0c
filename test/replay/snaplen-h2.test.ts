// `telegen replay` of HTTP/2 captured with a short snaplen (`tcpdump -s 200`: 134 bytes of TCP
// payload a packet on lo). Recorded here: h2load (10 concurrent streams) against a Node http2
// server on lo (dumpcap), then cut to 200 bytes a packet with `editcap -s 200`, which keeps the
// same bytes a capture with that snaplen would. Each response carries a new 188-character x-id
// (characters of 5-bit Huffman codes: a 122-byte HEADERS frame), and the server writes many frames
// a packet: a packet that begins with a response HEADERS frame keeps it whole but not the next
// frame's header. tshark reads :status there (RFC 9113 §8.3: pseudo-header fields come first).
// Before, after lost bytes the decoder wanted two chained frame headers, which such a packet never
// holds: those streams had no status (2 of 2 per connection that tshark names). Now a HEADERS
// frame right after lost bytes whose block starts with a pseudo-header of its side is taken as a
// frame boundary.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { rootForCapture, recordOnLo, nodeServer } from '../helpers/capture';
import { replayToSpans } from '../../host/src/cli/replay';

const serverJs = `
const http2 = require('http2');
const body = Buffer.alloc(3000, 97);
const five = '012aceiost';
const s = http2.createServer();
s.on('stream', (st, h) => {
  let id = '';
  for (let i = 0; i < 188; i++) id += five[Math.floor(Math.random() * 10)];
  st.respond({ ':status': h[':path'] === '/missing' ? 404 : 200, date: 'Thu, 01 Jan 2026 00:00:00 GMT', 'x-id': id });
  st.end(h[':path'] === '/missing' ? 'no' : body);
});
s.listen(Number(process.argv[1]), '127.0.0.1', () => process.stdout.write('listening ' + s.address().port + '\\n'));
process.on('SIGTERM', () => process.exit(0));
`;

test('replay of HTTP/2 cut to 200 bytes a packet: every stream whose :status tshark reads has it', { timeout: 90_000 }, async (t) => {
  if (!rootForCapture(t)) return;
  const { file: full, tmp, port } = await recordOnLo(t, { prefix: 'telegen-snaplen-h2-', file: 'full.pcapng', servers: [nodeServer(serverJs)] }, (p) => {
    const base = `http://127.0.0.1:${p}`;
    const out = execFileSync('h2load', ['-c', '2', '-m', '10', '-n', '60', `${base}/a`, `${base}/missing`, `${base}/b`], { encoding: 'utf8' });
    assert.match(out, /60 done, 40 succeeded, 20 failed/); // the 404s count as failed
  });
  const cut = path.join(tmp, 'cut.pcapng');
  execFileSync('editcap', ['-s', '200', full, cut]);
  // tshark's :status per connection (client port) and stream, from the packets that hold them, for
  // the streams whose request it reads too (a response without its request is no span of ours)
  const tsv = execFileSync('tshark', ['-r', cut, '-d', `tcp.port==${port},http2`, '-Y', 'http2.type == 1', '-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=|',
    '-e', 'tcp.srcport', '-e', 'tcp.dstport', '-e', 'http2.streamid', '-e', 'http2.type', '-e', 'http2.headers.method', '-e', 'http2.headers.status'], { encoding: 'utf8' });
  const asked = new Set<string>();
  const want = new Map<string, number>();
  for (const line of tsv.split('\n').filter(Boolean)) {
    const [src, dst, sids, types, methods, statuses] = line.split('\t');
    const headerSids = sids.split('|').filter((_, i) => types.split('|')[i] === '1');
    if (Number(dst) === port) methods.split('|').filter(Boolean).forEach((_, i) => asked.add(`${src}/${headerSids[i]}`));
    else statuses.split('|').filter(Boolean).forEach((st, i) => want.set(`${dst}/${headerSids[i]}`, Number(st)));
  }
  for (const k of [...want.keys()]) if (!asked.has(k)) want.delete(k);
  const { spans } = await replayToSpans(cut);
  const got = new Map<string, unknown>();
  for (const s of spans) got.set(`${String(s.attributes['client.port'])}/${String(s.attributes['telegen.http2.stream_id'])}`, s.attributes['http.response.status_code']);
  assert.ok(want.size >= 2, `tshark read ${want.size} statuses from the cut packets`);
  const mine = [...want.keys()].map((k) => `${k} ${String(got.get(k))}`);
  assert.deepEqual(mine, [...want].map(([k, v]) => `${k} ${v}`), 'the status of every stream tshark reads one for');
});
