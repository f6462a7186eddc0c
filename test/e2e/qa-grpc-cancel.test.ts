// gRPC calls the client cancels (call.cancel(), a deadline it gives up at): the client sends
// RST_STREAM CANCEL and no grpc-status is ever sent. Found by a QA pass with @grpc/grpc-js:
//  - the server span was an ERROR with error.type=CANCEL, while the gRPC protocol maps a client's
//    RST_STREAM CANCEL to CANCELLED (grpc-js reports that status on both sides) and semconv keeps
//    CANCELLED off a server span's status (the caller's doing, as NOT_FOUND or INVALID_ARGUMENT);
//  - a unary call cancelled before any response, on a connection closed within RST_WAIT (1 s)
//    after, lasted until that close on both spans (474 ms for a call cancelled at 200 ms; tshark: RST_STREAM
//    at +201 ms, FIN at +472 ms): the host stretched "unanswered at close" exchanges to the close,
//    though the stream had ended at its RST_STREAM;
//  - a client span of a stream reset after its 200 header block (a server stream cancelled) had the
//    status message "HTTP 200".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'path';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { repoRoot } from '../helpers/decoder';
import { requireBpf, withPeers } from '../helpers/agent';
import { recordToSpan, identityClock } from '../../host/src/pipeline/spans';
import { ConnMeta } from '../../host/src/model';
import { KIND_EXCHANGE, FLAG_ERROR, FLAG_NO_RESPONSE } from '../../decoders/abi/abi';

const SERVER = 2;
const CLIENT = 3;

function rec(flags: number, attributes: Record<string, unknown>) {
  return { kind: KIND_EXCHANGE, flags, stream: 1, tsStart: 1_000_000n, tsEnd: 2_000_000n, attributes: { ...attributes } } as Parameters<typeof recordToSpan>[0];
}
function conn(role: 'client' | 'server', extra: Partial<ConnMeta> = {}): ConnMeta {
  return role === 'client'
    ? { role, localAddr: '127.0.0.1', localPort: 40000, remoteAddr: '127.0.0.1', remotePort: 50051, transport: 'tcp', ...extra }
    : { role, localAddr: '127.0.0.1', localPort: 50051, remoteAddr: '127.0.0.1', remotePort: 40000, transport: 'tcp', ...extra };
}

test('rule: a gRPC stream reset with CANCEL and no grpc-status — server span unset, client span error; both end at the reset, not at a later close', () => {
  const cancelled = { 'http.request.method': 'POST', 'url.path': '/qa.Svc/Slow', 'rpc.system': 'grpc', 'rpc.service': 'qa.Svc', 'rpc.method': 'Slow',
    'network.protocol.version': '2', 'telegen.http2.stream_id': 1, 'telegen.http2.rst_stream.error': 8, 'error.type': 'CANCEL' };
  const closedTs = 500_000_000n;
  const srv = recordToSpan(rec(FLAG_ERROR | FLAG_NO_RESPONSE, cancelled), conn('server', { closedTs }), 'http2', { clock: identityClock })!;
  assert.equal(srv.kind, SpanKind.SERVER);
  assert.equal(srv.status.code, SpanStatusCode.UNSET);
  assert.equal(srv.attributes['error.type'], undefined);
  assert.equal(srv.duration[0] * 1e9 + srv.duration[1], 1_000_000, 'server span ends at the RST_STREAM');
  const cli = recordToSpan(rec(FLAG_ERROR | FLAG_NO_RESPONSE, cancelled), conn('client', { closedTs }), 'http2', { clock: identityClock })!;
  assert.equal(cli.status.code, SpanStatusCode.ERROR);
  assert.equal(cli.attributes['error.type'], 'CANCEL');
  assert.equal(cli.duration[0] * 1e9 + cli.duration[1], 1_000_000, 'client span ends at the RST_STREAM');
  assert.equal(cli.status.message, 'RST_STREAM CANCEL');
  // a server stream cancelled after its 200 header block: failed by the reset, not by "HTTP 200"
  const streamed = recordToSpan(rec(FLAG_ERROR, { ...cancelled, 'http.response.status_code': 200 }), conn('client'), 'http2', { clock: identityClock })!;
  assert.equal(streamed.status.code, SpanStatusCode.ERROR);
  assert.equal(streamed.status.message, 'RST_STREAM CANCEL');
  assert.equal(streamed.attributes['error.type'], 'CANCEL');
  // what stays an error on the server: a reset by the server's own failure, a server-fault status
  const internal = recordToSpan(rec(FLAG_ERROR | FLAG_NO_RESPONSE, { ...cancelled, 'telegen.http2.rst_stream.error': 2, 'error.type': 'INTERNAL_ERROR' }), conn('server'), 'http2', { clock: identityClock })!;
  assert.equal(internal.status.code, SpanStatusCode.ERROR);
  const deadline = recordToSpan(rec(FLAG_ERROR, { ...cancelled, 'rpc.grpc.status_code': 4, 'http.response.status_code': 200, 'error.type': '4' }), conn('server'), 'http2', { clock: identityClock })!;
  assert.equal(deadline.status.code, SpanStatusCode.ERROR);
  // an HTTP/2 exchange left unanswered without a reset still lasts until its connection closed
  const open = { ...cancelled, 'telegen.http2.rst_stream.error': undefined, 'error.type': undefined };
  const unanswered = recordToSpan(rec(FLAG_NO_RESPONSE, open), conn('client', { closedTs }), 'http2', { clock: identityClock })!;
  assert.equal(unanswered.duration[0] * 1e9 + unanswered.duration[1], Number(closedTs - 1_000_000n));
});

const PEERS = (grpcJs: string) => `
const grpc = require(${JSON.stringify(grpcJs)});
const ser = (o) => Buffer.from(JSON.stringify(o)); const de = (b) => JSON.parse(b.toString() || '{}');
const m = (name, ss) => ({ path: '/qa.Svc/' + name, requestStream: false, responseStream: ss, requestSerialize: ser, requestDeserialize: de, responseSerialize: ser, responseDeserialize: de });
const def = { Slow: m('Slow', false), Ticks: m('Ticks', true) };
if (process.argv[2] === 'server') {
  const s = new grpc.Server();
  s.addService(def, {
    Slow: (c, cb) => { const t = setTimeout(() => cb(null, { late: true }), 5000); c.on('cancelled', () => clearTimeout(t)); },
    Ticks: (c) => { let i = 0; const t = setInterval(() => c.write({ i: i++ }), 20); c.on('cancelled', () => clearInterval(t)); },
  });
  s.bindAsync('127.0.0.1:' + process.argv[3], grpc.ServerCredentials.createInsecure(), () => console.log('listening'));
} else {
  const C = grpc.makeGenericClientConstructor(def, 'Svc');
  const c = new C('127.0.0.1:' + process.argv[3], grpc.credentials.createInsecure());
  (async () => {
    // a server stream cancelled after 5 messages, then a unary call cancelled before any answer;
    // the channel is closed 600 ms after that cancel (within the decoder's 1 s RST wait)
    const ticks = await new Promise((r) => { let n = 0; const call = c.Ticks({}); call.on('data', () => { if (++n === 5) call.cancel(); }); call.on('status', (s) => r(s.code)); call.on('error', () => {}); });
    let cancelAt = 0;
    const slow = await new Promise((r) => { const call = c.Slow({}, (e) => r(e ? e.code : 0)); setTimeout(() => { cancelAt = Date.now(); call.cancel(); }, 150); });
    await new Promise((r) => setTimeout(r, 600));
    const closeAt = Date.now();
    console.log('done ' + ticks + ' ' + slow + ' ' + cancelAt + ' ' + closeAt);
    c.close(); setTimeout(() => process.exit(0), 100);
  })();
}
`;

test('grpc-js calls the client cancels: server spans unset, client spans CANCEL errors, a cancelled unary call ends at its cancel', { timeout: 120_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const script = PEERS(path.join(repoRoot, 'node_modules', '@grpc', 'grpc-js'));
  await withPeers({ script, mode: 'client', minSpans: 4, keep: (s) => s.attributes['rpc.system'] === 'grpc' }, ({ clientOutput, spans }) => {
    const m = /done (\d+) (\d+) (\d+) (\d+)/.exec(clientOutput);
    assert.ok(m, `client: ${clientOutput}`);
    assert.deepEqual([Number(m![1]), Number(m![2])], [1, 1], 'grpc-js saw CANCELLED (1) for both calls');
    const cancelAtNs = BigInt(m![3]) * 1_000_000n;
    const closeAtNs = BigInt(m![4]) * 1_000_000n;
    for (const method of ['Ticks', 'Slow']) {
      const srv = spans.filter((s) => s.attributes['rpc.method'] === method && s.kind === SERVER);
      const cli = spans.filter((s) => s.attributes['rpc.method'] === method && s.kind === CLIENT);
      assert.equal(srv.length, 1, `${method}: one server span`);
      assert.equal(cli.length, 1, `${method}: one client span`);
      assert.equal(srv[0].status.code ?? 0, 0, `${method}: the server span is not an error (CANCELLED is the caller's)`);
      assert.equal(srv[0].attributes['error.type'], undefined);
      assert.equal(cli[0].status.code, 2, `${method}: the client span is an error`);
      assert.equal(cli[0].attributes['error.type'], 'CANCEL');
      assert.equal(cli[0].status.message, 'RST_STREAM CANCEL', `${method}: the client span's status message names the reset`);
      assert.equal(srv[0].parentSpanId, cli[0].spanId);
    }
    // the cancelled unary call ended at the cancel, 600 ms before the channel closed
    const half = (cancelAtNs + closeAtNs) / 2n;
    for (const s of spans.filter((x) => x.attributes['rpc.method'] === 'Slow')) {
      assert.ok(s.end < half, `Slow ${s.kind === SERVER ? 'server' : 'client'} span ends at its RST_STREAM (${(s.end - cancelAtNs) / 1_000_000n} ms after the cancel, the close ${(closeAtNs - cancelAtNs) / 1_000_000n} ms after it)`);
    }
  });
});
