// gRPC C-core (Debian's python3-grpcio 1.51; the other captures are @grpc/grpc-js) recorded by
// decoders/http2/testdata/record/grpc-python.py: every call's gRPC attributes and the span status
// and error.type each side gets, against tshark's decoding of the same capture
// (grpc-python.expected-calls.tsv; http2-calls.test.ts checks method, path and message counts).
// Found with it: a unary call whose 10-100 ms deadline the server missed. The C-core client sends
// RST_STREAM CANCEL at its deadline; the server's own deadline timer sends a Trailers-Only
// grpc-status 4 (DEADLINE_EXCEEDED) a few µs later (tshark: RST_STREAM of stream 9 in frame 29,
// its HEADERS grpc-status 4 in frame 30, 109 µs later; stream 11: frames 32 and 35; on stream 5 the
// status came first). The exchange waits for that status (RST_WAIT_NS)
// and reported rpc.grpc.status_code 4, but error.type CANCEL, the reset's name: not what either
// library reported (DEADLINE_EXCEEDED on both), nor the value error.type has for every other
// failed call (its status code).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { loadDecoder, repoRoot } from '../helpers/decoder';
import { replayFile } from '../../host/src/replay';
import { recordToSpan, identityClock } from '../../host/src/pipeline/spans';
import { ConnMeta } from '../../host/src/model';
import { DIR_REQUEST, DIR_RESPONSE } from '../../decoders/abi/abi';
import { exchanges } from './http2-helpers';

const testdata = path.join(repoRoot, 'decoders', 'http2', 'testdata');
// gRPC statuses that say the server failed (semconv): its SERVER span is an error only for these
const SERVER_FAULTS = new Set([2, 4, 12, 13, 14, 15]);

interface Call { sid: number; path: string; grpcStatus: string; grpcMessage: string }

function tsharkCalls(): Call[] {
  const [head, ...lines] = fs.readFileSync(path.join(testdata, 'grpc-python.expected-calls.tsv'), 'utf8').split('\n').filter(Boolean);
  const cols = head.split('\t');
  return lines.map((l) => {
    const f = l.split('\t');
    const v = (c: string) => f[cols.indexOf(c)] ?? '';
    return { sid: Number(v('stream')), path: v('path'), grpcStatus: v('grpc.status'), grpcMessage: decodeURIComponent(v('grpc.message')) };
  });
}

async function records() {
  const h = loadDecoder('http2');
  await replayFile(path.join(testdata, 'grpc-python.pcap'), {
    onOpen: () => {},
    onData: (c, fromClient, bytes, ts) => { h.inst.feed(c.id, fromClient ? DIR_REQUEST : DIR_RESPONSE, bytes, ts); },
    onGap: () => { throw new Error('unexpected gap in a loopback recording'); },
    onClose: (c) => { h.inst.closeStream(c.id); },
  });
  assert.equal(h.inst.counters.traps, 0);
  return exchanges(h);
}

const meta = (role: 'client' | 'server'): ConnMeta => (role === 'client'
  ? { role, localAddr: '127.0.0.1', localPort: 40000, remoteAddr: '127.0.0.1', remotePort: 19520, transport: 'tcp' }
  : { role, localAddr: '127.0.0.1', localPort: 19520, remoteAddr: '127.0.0.1', remotePort: 40000, transport: 'tcp' });

test('gRPC C-core: every call with tshark\'s status; a failed call\'s error.type is its status code on both sides, also when its status crossed the client\'s RST_STREAM CANCEL', async () => {
  const recs = await records();
  const calls = tsharkCalls();
  assert.equal(recs.length, calls.length, 'one exchange per call tshark shows');
  let crossed = 0;
  for (const c of calls) {
    const r = recs.find((x) => x.attributes['telegen.http2.stream_id'] === c.sid);
    assert.ok(r, `stream ${c.sid}`);
    const a = r!.attributes;
    const [, service, method] = /^\/([^/]+)\/(.*)$/.exec(c.path)!;
    assert.deepEqual([a['rpc.system'], a['rpc.service'], a['rpc.method']], ['grpc', service, method], `stream ${c.sid}`);
    assert.equal(a['rpc.grpc.status_code'], c.grpcStatus === '' ? undefined : Number(c.grpcStatus), `stream ${c.sid} status`);
    if (c.grpcMessage !== '') assert.equal(a['rpc.grpc.status_message'], c.grpcMessage, `stream ${c.sid} message`);
    const gs = Number(c.grpcStatus);
    if (c.grpcStatus === '' || gs === 0) continue;
    if (a['telegen.http2.rst_stream.error'] === 8) crossed++;
    // each side's span from its own copy: a record becomes one span, which may edit its attributes
    const span = (role: 'client' | 'server') => recordToSpan({ ...r!, attributes: { ...a } } as Parameters<typeof recordToSpan>[0], meta(role), 'http2', { clock: identityClock })!;
    const cli = span('client'), srv = span('server');
    assert.equal(cli.kind, SpanKind.CLIENT);
    assert.equal(cli.status.code, SpanStatusCode.ERROR, `stream ${c.sid}: a failed call is its client's error`);
    assert.equal(cli.attributes['error.type'], c.grpcStatus, `stream ${c.sid}: client error.type`);
    assert.equal(cli.status.message, c.grpcMessage, `stream ${c.sid}: client status message`);
    const fault = SERVER_FAULTS.has(gs);
    assert.equal(srv.status.code, fault ? SpanStatusCode.ERROR : SpanStatusCode.UNSET, `stream ${c.sid}: server span status`);
    assert.equal(srv.attributes['error.type'], fault ? c.grpcStatus : undefined, `stream ${c.sid}: server error.type`);
  }
  // the capture holds the race it was recorded for: DEADLINE_EXCEEDED after the client's reset
  assert.ok(crossed >= 1, `calls whose status crossed the client's RST_STREAM: ${crossed}`);
});
