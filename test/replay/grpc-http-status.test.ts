// gRPC calls answered with an HTTP error and no grpc-status (a proxy or a server that is no gRPC
// server: 503 from a load balancer, 404 for a path it does not route): the gRPC client takes its
// status from the HTTP one (gRPC doc/http-grpc-status-mapping.md), and that is the call's status.
// Recorded here: @grpc/grpc-js calls against a Node http2 server that answers plain HTTP errors,
// on lo (dumpcap). The oracle is the grpc-js client itself (the code it reports); tshark shows
// the :status and no grpc-status. Before, the spans had no rpc.grpc.status_code at all (a 404
// was even a gRPC call without error on both sides).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'child_process';
import { repoRoot } from '../helpers/decoder';
import { rootForCapture, recordOnLo, nodeServer } from '../helpers/capture';
import { replayToSpans } from '../../host/src/cli/replay';

// The HTTP status per method; Unary also carries a grpc-status of its own (it wins).
const serverJs = `
const http2 = require('http2');
const codes = { Unary: 200, ClientStream: 503, ServerStream: 404, Bidi: 401, Fail: 429 };
const s = http2.createServer();
s.on('stream', (st, h) => {
  st.on('error', () => {});
  st.resume();
  const code = codes[h[':path'].split('/').pop()];
  if (code === 200) { st.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '5', 'grpc-message': 'nope' }, { endStream: true }); return; }
  st.respond({ ':status': code, 'content-type': 'text/plain' });
  st.end('not a gRPC server');
});
s.listen(Number(process.argv[1]), '127.0.0.1', () => process.stdout.write('listening ' + s.address().port + '\\n'));
process.on('SIGTERM', () => process.exit(0));
`;

const clientJs = `
const path = require('path');
const root = process.argv[2];
const grpc = require(path.join(root, 'node_modules/@grpc/grpc-js'));
const loader = require(path.join(root, 'node_modules/@grpc/proto-loader'));
const def = loader.loadSync(path.join(root, 'decoders/http2/testdata/record/echo.proto'), { keepCase: true });
const Echo = grpc.loadPackageDefinition(def).telegen.test.Echo;
const c = new Echo('127.0.0.1:' + process.argv[1], grpc.credentials.createInsecure());
const out = {};
(async () => {
  for (const m of ['Unary', 'Fail']) await new Promise((r) => c[m]({ text: 'x' }, (e) => { out[m] = e ? e.code : 0; r(); }));
  await new Promise((r) => { const q = c.ClientStream((e) => { out.ClientStream = e ? e.code : 0; r(); }); q.write({ text: 'x' }); q.end(); });
  await new Promise((r) => { const q = c.ServerStream({ text: 'x' }); q.on('data', () => {}); q.on('error', (e) => { out.ServerStream = e.code; r(); }); q.on('end', r); });
  await new Promise((r) => { const q = c.Bidi(); q.on('data', () => {}); q.on('error', (e) => { out.Bidi = e.code; r(); }); q.on('end', r); q.write({ text: 'x' }); q.end(); });
  process.stdout.write(JSON.stringify(out) + '\\n');
  c.close();
})();
`;

test('gRPC calls answered with an HTTP error and no grpc-status: rpc.grpc.status_code is the status the grpc-js client reports', { timeout: 90_000 }, async (t) => {
  if (!rootForCapture(t)) return;
  const { file, port, out: reported } = await recordOnLo(t, { prefix: 'telegen-grpc-http-', file: 'calls.pcapng', servers: [nodeServer(serverJs)] },
    (p) => JSON.parse(execFileSync(process.execPath, ['-e', clientJs, String(p), repoRoot], { encoding: 'utf8' })) as Record<string, number>);
  // what grpc-js said (the mapping: 503, 429 UNAVAILABLE; 404 UNIMPLEMENTED; 401 UNAUTHENTICATED; a grpc-status wins)
  assert.deepEqual(reported, { Unary: 5, Fail: 14, ClientStream: 14, ServerStream: 12, Bidi: 16 });
  // tshark: every call has its :status, and only Unary's answer a grpc-status
  const tsv = execFileSync('tshark', ['-r', file, '-d', `tcp.port==${port},http2`, '-Y', 'http2.headers.status', '-T', 'fields', '-e', 'http2.headers.status', '-e', 'http2.header.name'], { encoding: 'utf8' });
  const rows = tsv.split('\n').filter(Boolean);
  assert.deepEqual(rows.map((r) => r.split('\t')[0]).sort(), ['200', '401', '404', '429', '503']);
  assert.equal(rows.filter((r) => r.includes('grpc-status')).length, 1);
  const { spans } = await replayToSpans(file);
  const got: Record<string, unknown> = {};
  for (const s of spans) got[String(s.attributes['rpc.method'])] = s.attributes['rpc.grpc.status_code'];
  assert.deepEqual(got, reported);
});
