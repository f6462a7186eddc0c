// http2 decoder hints: header fields reported by the peer's own HTTP/2 library (nghttp2 uprobes,
// bpf/tls.bpf.c) fill what HPACK on the wire could not know — only when they agree with it.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { loadDecoder, Harness } from '../helpers/decoder';
import { DIR_REQUEST as REQ, DIR_RESPONSE as RESP, FLAG_UNKNOWN } from '../../decoders/abi/abi';
import { exchanges, pairs, headers, data, grpcMsg, idx, lit, hint, hints } from './http2-helpers';

// A connection older than the agent: :path, content-type and grpc-status are dynamic-table
// references inserted before we looked (indices 62, 63); the rest is static or literal.
const REQ_WIRE = Buffer.concat([idx(3), idx(7), idx(62), lit(':authority', 'svc'), idx(63)]);
const REQ_TRUE: Array<[string, string]> = [[':method', 'POST'], [':scheme', 'https'], [':path', '/pkg.Echo/Unary'], [':authority', 'svc'], ['content-type', 'application/grpc']];
const RESP_WIRE = Buffer.concat([idx(8), idx(62)]);
const RESP_TRUE: Array<[string, string]> = [[':status', '200'], ['content-type', 'application/grpc']];
const TRL_WIRE = idx(63);
const TRL_TRUE: Array<[string, string]> = [['grpc-status', '0']];

function call(h: Harness, sid: number, ts: bigint): void {
  h.inst.feed(1, REQ, Buffer.concat([headers(sid, REQ_WIRE), data(sid, grpcMsg(3), true)]), ts);
  h.inst.feed(1, RESP, Buffer.concat([headers(sid, RESP_WIRE), data(sid, grpcMsg(4)), headers(sid, TRL_WIRE, true)]), ts + 1n);
}

test('no hints: the late-joined call is unknown, never guessed', () => {
  const h = loadDecoder('http2');
  call(h, 9, 10n);
  h.inst.closeStream(1);
  const [ex] = exchanges(h);
  assert.ok(ex.flags & FLAG_UNKNOWN);
  assert.equal(ex.attributes['rpc.method'], undefined);
  assert.equal(ex.attributes['telegen.hpack.recovered'], undefined);
});

test('hints before the wire (sent fields) and after it (received fields) name every field', () => {
  const h = loadDecoder('http2');
  hints(h, REQ, 9, 0, REQ_TRUE, 5n); // the client's nghttp2_submit_request, before its bytes
  call(h, 9, 10n);
  assert.equal(exchanges(h).length, 0, 'held: the response fields are still unknown');
  hints(h, RESP, 9, 0, RESP_TRUE, 12n); // the client's header callback, after the bytes
  assert.equal(exchanges(h).length, 0);
  hints(h, RESP, 9, 1, TRL_TRUE, 13n);
  const [ex] = exchanges(h);
  assert.ok(ex, 'emitted once the last block was filled');
  assert.equal(ex.flags & FLAG_UNKNOWN, 0);
  assert.equal(ex.attributes['rpc.system'], 'grpc');
  assert.equal(ex.attributes['rpc.service'], 'pkg.Echo');
  assert.equal(ex.attributes['rpc.method'], 'Unary');
  assert.equal(ex.attributes['rpc.grpc.status_code'], 0);
  assert.equal(ex.attributes['telegen.hpack.recovered'], true);
  assert.equal(ex.attributes['telegen.hpack.unknown'], undefined);
  assert.deepEqual(pairs(ex, 'telegen.http2.request.headers'), REQ_TRUE);
});

test('hints that contradict a decoded field, or have another field count, are not used', () => {
  const h = loadDecoder('http2');
  // :method GET contradicts the wire's static POST; the trailers list has one field too many
  hints(h, REQ, 9, 0, [[':method', 'GET'], ...REQ_TRUE.slice(1)], 5n);
  hints(h, RESP, 9, 1, [...TRL_TRUE, ['grpc-message', 'x']], 5n);
  call(h, 9, 10n);
  hints(h, RESP, 9, 0, RESP_TRUE, 12n);
  h.inst.tick(10n + 3_000_000_000n); // the held exchange gives up waiting
  const [ex] = exchanges(h);
  assert.ok(ex);
  assert.equal(ex.attributes['rpc.method'], undefined, 'request fields not taken from a contradicting list');
  assert.equal(ex.attributes['rpc.grpc.status_code'], undefined, 'trailers not taken from a list of another length');
  assert.ok(ex.flags & FLAG_UNKNOWN);
  assert.equal(ex.attributes['telegen.hpack.recovered'], true, 'the response headers were filled');
  assert.deepEqual(pairs(ex, 'telegen.http2.response.headers'), RESP_TRUE);
});

test('hints for another stream change nothing; malformed hints are refused', () => {
  const h = loadDecoder('http2');
  hints(h, REQ, 11, 0, REQ_TRUE, 5n);
  assert.equal(h.inst.hint(1, REQ, Buffer.from([1, 2, 3]), 5n), 'ignored');
  const bad = hint(9, 0, ':path', '/x');
  bad.writeUInt32LE(1 << 20, 8); // value length past the end
  assert.equal(h.inst.hint(1, REQ, bad, 5n), 'ignored');
  call(h, 9, 10n);
  h.inst.closeStream(1);
  const [ex] = exchanges(h);
  assert.equal(ex.attributes['rpc.method'], undefined);
  assert.equal(h.inst.counters.traps, 0);
});

test('hostile hints: many streams of large fields keep memory bounded and hints for live streams still work', () => {
  const h = loadDecoder('http2');
  const big = 'v'.repeat(4000);
  const before = h.inst.memoryBytes();
  for (let sid = 101; sid < 4101; sid += 2) {
    for (let k = 0; k < 4; k++) assert.equal(h.inst.hint(1, RESP, hint(sid, 1, `x-f${k}`, big), 5n), 'ok');
  }
  hints(h, REQ, 9, 0, REQ_TRUE, 6n);
  call(h, 9, 10n);
  h.inst.closeStream(1);
  const [ex] = exchanges(h);
  assert.equal(ex.attributes['rpc.method'], 'Unary', 'the newest hints survive the flood');
  assert.equal(h.inst.counters.traps, 0);
  const grown = h.inst.memoryBytes() - before;
  assert.ok(grown <= 4 << 20, `Wasm memory grew by ${grown} bytes for 32 MB of hints`);
});
