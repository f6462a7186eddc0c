// `telegen replay` of an HTTP/2 server that sends GOAWAY while more requests are in flight (a
// graceful shutdown, a drain before a deploy): RFC 9113 §6.8, the streams the client opened above
// the GOAWAY's last stream id were not processed and are closed; the client's library fails them
// at once as refused and may retry them elsewhere. Recorded here: a Node http2 client sends three
// requests in one go to a Node http2 server that answers the first with goaway(0, its stream id)
// and its response 100 ms later. The client reports "Stream closed with error code
// NGHTTP2_REFUSED_STREAM" for the other two. Before, their spans lasted until the connection
// closed (after the first response), no error, as if the server had kept them waiting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'child_process';
import { rootForCapture, recordOnLo, nodeServer } from '../helpers/capture';
import { replayToSpans, spanToJsonLine } from '../../host/src/cli/replay';

const serverJs = `
const http2 = require('http2');
const s = http2.createServer();
s.on('stream', (st, h) => {
  st.on('error', () => {}); // the refused streams close with REFUSED_STREAM on this side too
  if (h[':path'] === '/drain') {
    st.session.goaway(0, st.id);
    setTimeout(() => { st.respond({ ':status': 200 }); st.end('draining'); }, 100);
    return;
  }
  st.respond({ ':status': 200 }); st.end('ok');
});
s.listen(Number(process.argv[1]), '127.0.0.1', () => process.stdout.write('listening ' + s.address().port + '\\n'));
process.on('SIGTERM', () => process.exit(0));
`;

const clientJs = `
const http2 = require('http2');
const c = http2.connect('http://127.0.0.1:' + process.argv[1]);
c.on('error', () => {});
const out = {};
let n = 0;
for (const p of ['/drain', '/after1', '/after2']) {
  const r = c.request({ ':path': p }); n++;
  r.on('response', (h) => { out[p] = h[':status']; });
  r.resume();
  r.on('error', (e) => { out[p] = e.code + ' ' + e.message; });
  r.on('close', () => { if (--n === 0) { process.stdout.write(JSON.stringify(out) + '\\n'); c.close(); } });
}
`;

test('replay of an HTTP/2 GOAWAY with requests in flight: the streams above its last stream id end at it, refused (REFUSED_STREAM), as the client reports them', { timeout: 90_000 }, async (t) => {
  if (!rootForCapture(t)) return;
  const { file, port, out: client } = await recordOnLo(t, { prefix: 'telegen-goaway-', file: 'goaway.pcapng', servers: [nodeServer(serverJs)] },
    (p) => JSON.parse(execFileSync(process.execPath, ['-e', clientJs, String(p)], { encoding: 'utf8', timeout: 20_000 })) as Record<string, string | number>);
  // the real client: the first request answered, the two after the GOAWAY refused
  assert.equal(client['/drain'], 200);
  assert.match(String(client['/after1']), /REFUSED_STREAM/);
  assert.match(String(client['/after2']), /REFUSED_STREAM/);

  // tshark: the server's GOAWAY names stream 1 as the last it processes; when it was sent
  const goaways = execFileSync('tshark', ['-r', file, '-d', `tcp.port==${port},http2`, '-Y', `tcp.srcport == ${port} && http2.type == 7`,
    '-T', 'fields', '-e', 'frame.time_epoch', '-e', 'http2.goaway.last_stream_id'], { encoding: 'utf8' }).split('\n').filter(Boolean).map((l) => l.split('\t'));
  assert.ok(goaways.length >= 1, 'the server sent GOAWAY');
  assert.equal(goaways[0][1].split(',')[0], '1');
  const goawayNs = BigInt(goaways[0][0].replace('.', '').padEnd(19, '0').slice(0, 19));

  const { spans } = await replayToSpans(file);
  const got = spans.map((s) => JSON.parse(spanToJsonLine(s)) as { status: string; endTimeUnixNano: string; attributes: Record<string, unknown> })
    .sort((a, b) => String(a.attributes['url.path']).localeCompare(String(b.attributes['url.path'])));
  assert.deepEqual(got.map((s) => [s.attributes['url.path'], s.attributes['telegen.http2.stream_id'], s.attributes['http.response.status_code'], s.attributes['error.type'], s.status]), [
    ['/after1', 3, undefined, 'REFUSED_STREAM', 'ERROR'],
    ['/after2', 5, undefined, 'REFUSED_STREAM', 'ERROR'],
    ['/drain', 1, 200, undefined, 'UNSET'],
  ], JSON.stringify(got.map((s) => s.attributes)));
  // refused at the GOAWAY, not stretched to the connection's close after the first response
  for (const s of got.slice(0, 2)) assert.equal(BigInt(s.endTimeUnixNano), goawayNs, `${String(s.attributes['url.path'])} ends at the GOAWAY`);
  assert.ok(BigInt(got[2].endTimeUnixNano) > goawayNs);
});
