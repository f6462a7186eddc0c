// `telegen replay` of an HTTP/1.1 capture taken with a short snaplen (`tcpdump -s 200`: each
// packet keeps its first 200 bytes, 134 of TCP payload on lo). Recorded here: curl against a Node
// http server on lo (dumpcap), then cut to 200 bytes a packet with `editcap -s 200`, which keeps
// the same bytes a capture with that snaplen would. Every head here is longer than what a packet
// keeps, so none is whole; tshark still names each request and status from the captured bytes.
// RFC 9112 puts the start line first: a cut head still says method, target and status. Before,
// a head under 8 KiB cut by the snaplen was held whole until its end, which never came: the gap
// reset the connection and the exchanges lost their status (GET /padded, /chunked: no status;
// the 204 lost too), and the bytes of an upload after its cut head (no line end in them) were
// taken for a start line, which reset the connection again (POST /upload: no 200).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { repoRoot } from '../helpers/decoder';
import { curl } from '../helpers/agent';
import { rootForCapture, recordOnLo, nodeServer } from '../helpers/capture';
import { replayToSpans } from '../../host/src/cli/replay';

const PAD = 'p'.repeat(300);
const serverJs = `
const http = require('http');
const s = http.createServer((req, res) => {
  let n = 0;
  req.on('data', (c) => { n += c.length; });
  req.on('end', () => {
    res.setHeader('x-pad', '${PAD}');
    if (req.url === '/nocontent') { res.statusCode = 204; res.end(); }
    else if (req.url === '/chunked') { res.write('first part,'); res.end('second part'); }
    else if (req.url === '/upload') res.end('got ' + n);
    else { res.setHeader('content-length', 1000); res.end('b'.repeat(1000)); }
  });
});
s.listen(Number(process.argv[1]), '127.0.0.1', () => process.stdout.write('listening ' + s.address().port + '\\n'));
process.on('SIGTERM', () => process.exit(0));
`;

test('replay of a capture cut to 200 bytes a packet: every exchange keeps method, target and status (telegen.truncated), as tshark names them', { timeout: 90_000 }, async (t) => {
  if (!rootForCapture(t)) return;
  const { file: full, tmp, port } = await recordOnLo(t, { prefix: 'telegen-snaplen-', file: 'full.pcapng', servers: [nodeServer(serverJs)] }, (p) => {
    const base = `http://127.0.0.1:${p}`;
    const pad = ['-H', `x-pad: ${PAD}`];
    // one connection, three exchanges: a Content-Length body, a 204, a chunked body
    assert.equal(curl([...pad, `${base}/padded?x=1`, `${base}/nocontent`, `${base}/chunked`]).length, 1000 + 22);
    // the head is cut, then 5000 body bytes without a line end, after a 100 Continue
    assert.equal(curl([...pad, '-H', 'Expect: 100-continue', '--data-binary', 'x'.repeat(5000), `${base}/upload`]), 'got 5000');
    // the same without Expect: the body follows the cut head at once
    assert.equal(curl([...pad, '-H', 'Expect:', '--data-binary', 'y'.repeat(3000), `${base}/upload`]), 'got 3000');
  });
  const cut = path.join(tmp, 'cut.pcapng');
  execFileSync('editcap', ['-s', '200', full, cut]);
  const { spans } = await replayToSpans(cut);
  const got = spans.map((s) => s.attributes)
    .map((a) => [a['http.request.method'], `${String(a['url.path'])}${a['url.query'] !== undefined ? `?${String(a['url.query'])}` : ''}`, a['http.response.status_code'], a['telegen.truncated'] === true])
    .sort((a, b) => `${a[1]}${a[2]}`.localeCompare(`${b[1]}${b[2]}`));
  assert.deepEqual(got, [
    ['GET', '/chunked', 200, true],
    ['GET', '/nocontent', 204, true],
    ['GET', '/padded?x=1', 200, true],
    ['POST', '/upload', 200, true],
    ['POST', '/upload', 200, true],
  ]);
  // tshark (the independent decoder) reads the same requests and final statuses from the cut packets
  const tsv = execFileSync('tshark', ['-r', cut, '-d', `tcp.port==${port},http`, '-Y', 'http', '-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=|',
    '-e', 'http.request.method', '-e', 'http.request.uri', '-e', 'http.response.code'], { encoding: 'utf8' });
  const requests: string[] = [], codes: number[] = [];
  for (const line of tsv.split('\n').filter(Boolean)) {
    const [m, u, c] = line.split('\t');
    const uris = u.split('|');
    m.split('|').filter(Boolean).forEach((x, i) => requests.push(`${x} ${uris[i]}`));
    for (const code of c.split('|').filter(Boolean)) if (Number(code) >= 200) codes.push(Number(code));
  }
  assert.deepEqual(got.map((g) => `${g[0]} ${g[1]}`).sort(), requests.sort(), 'requests as tshark reads them');
  assert.deepEqual(got.map((g) => g[2]).sort(), codes.sort(), 'final statuses as tshark reads them');
});
