// Per-call agreement with tshark through the same path as `telegen replay` (router, http1 ->
// http2 handover on h2c, span building): every call tshark decodes in a self-recorded capture
// (decoders/http2/testdata/NAME.expected-calls.tsv, written by record/calls.js) is one span with
// the same method, path, status, h2c upgrade, rpc.system/service/method, grpc status code and
// message, and gRPC message counts; no span is left over.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { repoRoot } from '../helpers/decoder';
import { replayToSpans } from '../../host/src/cli/replay';

const testdata = path.join(repoRoot, 'decoders', 'http2', 'testdata');

interface Call {
  clientPort: number; stream: string; h2c: boolean; method: string; path: string; status: string;
  grpcStatus: string; grpcMessage: string; reqMsgs: number; respMsgs: number;
}

function expectedCalls(file: string): Call[] {
  const [head, ...lines] = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0);
  const cols = head.split('\t');
  return lines.map((line) => {
    const f = line.split('\t');
    const v = (c: string) => f[cols.indexOf(c)] ?? '';
    return {
      clientPort: Number(v('client.port')), stream: v('stream'), h2c: v('h2c') === '1', method: v('method'), path: v('path'),
      status: v('status'), grpcStatus: v('grpc.status'), grpcMessage: v('grpc.message'),
      reqMsgs: Number(v('grpc.request.messages')), respMsgs: Number(v('grpc.response.messages')),
    };
  });
}

/** The span's call in the TSV's shape. */
function asCall(a: Record<string, unknown>): Record<string, unknown> {
  const query = a['url.query'] !== undefined ? `?${String(a['url.query'])}` : '';
  const grpc = a['rpc.system'] === 'grpc';
  return {
    stream: a['telegen.http2.stream_id'] !== undefined ? String(a['telegen.http2.stream_id']) : '-',
    version: String(a['network.protocol.version']),
    h2c: a['telegen.http2.h2c_upgrade'] === true,
    method: a['http.request.method'],
    path: `${String(a['url.path'])}${query}`,
    status: String(a['http.response.status_code'] ?? ''),
    rpc: grpc ? [a['rpc.service'], a['rpc.method']].join('/') : '',
    grpcStatus: grpc ? String(a['rpc.grpc.status_code'] ?? '') : '',
    grpcMessage: grpc ? String(a['rpc.grpc.status_message'] ?? '') : '',
    reqMsgs: grpc ? Number(a['telegen.rpc.request.messages']) : 0,
    respMsgs: grpc ? Number(a['telegen.rpc.response.messages']) : 0,
  };
}

/** tshark's call as the span should say it (grpc-message is percent-encoded on the wire). */
function want(c: Call): Record<string, unknown> {
  const grpc = c.grpcStatus !== '' || c.reqMsgs + c.respMsgs > 0;
  const m = /^\/([^/?]+)\/([^/?]*)/.exec(c.path);
  return {
    stream: c.stream, version: c.stream === '-' ? '1.1' : '2', h2c: c.h2c, method: c.method, path: c.path, status: c.status,
    rpc: grpc && m ? `${m[1]}/${m[2]}` : '',
    grpcStatus: c.grpcStatus,
    grpcMessage: decodeURIComponent(c.grpcMessage),
    reqMsgs: c.reqMsgs, respMsgs: c.respMsgs,
  };
}

const files = fs.readdirSync(testdata).filter((f) => f.endsWith('.expected-calls.tsv')).sort();

test('self-recorded captures with per-call expectations are present', () => {
  for (const need of ['h2c-apache', 'h2c-large', 'grpc-calls']) assert.ok(files.includes(`${need}.expected-calls.tsv`), need);
});

for (const tsv of files) {
  const name = tsv.replace(/\.expected-calls\.tsv$/, '');
  test(`every call tshark decodes is one span with the same values: ${name}.pcap`, async () => {
    const calls = expectedCalls(path.join(testdata, tsv));
    const { spans } = await replayToSpans(path.join(testdata, `${name}.pcap`));
    const left = spans.map((s) => s.attributes as Record<string, unknown>);
    for (const c of calls) {
      const i = left.findIndex((a) => a['client.port'] === c.clientPort && (c.stream === '-' ? a['telegen.http2.stream_id'] === undefined : String(a['telegen.http2.stream_id']) === c.stream)
        && (c.stream !== '-' || a['http.request.method'] === c.method));
      assert.ok(i >= 0, `no span for ${JSON.stringify(c)}`);
      const a = left.splice(i, 1)[0];
      const got = asCall(a);
      assert.deepEqual(got, want(c), `client port ${c.clientPort} stream ${c.stream}`);
    }
    assert.deepEqual(left.map((a) => `${String(a['client.port'])} ${String(a['telegen.http2.stream_id'] ?? '-')} ${String(a['http.request.method'])} ${String(a['url.path'])}`), [], 'spans tshark has no call for');
  });
}
