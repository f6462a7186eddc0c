// A finished HTTP/2 exchange waiting for hints (fields HPACK on the wire could not name, filled
// from the peer's nghttp2) was reported at once, as a CANCEL error without its gRPC status, when
// the client reset the stream meanwhile. Found by a QA pass with @grpc/grpc-js: a unary call with
// a 200 ms deadline on a channel whose response table was unknown after lost bytes (a 10,000-message
// server stream read 64 KiB at a time, 16 KiB captured). tshark: the server's Trailers-Only
// grpc-status 4 at +201.5 ms, then the client's RST_STREAM CANCEL at +203.7 ms (grpc-js resets a
// call its deadline timer ended); the client span said error.type=CANCEL, status message "HTTP 200",
// no rpc.grpc.status_code — where a stream already reported ignores a later reset.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { SpanStatusCode } from '@opentelemetry/api';
import { loadDecoder } from '../helpers/decoder';
import { DIR_REQUEST as REQ, DIR_RESPONSE as RESP } from '../../decoders/abi/abi';
import { PREFACE, settings, headers, data, rst, grpcMsg, reqBlock, idx, exchanges, hint, hints } from './http2-helpers';
import { recordToSpan, identityClock } from '../../host/src/pipeline/spans';
import { ConnMeta } from '../../host/src/model';

test('a reset after the response ended, while its fields wait for hints, is not the exchange\'s outcome', () => {
  const h = loadDecoder('http2');
  const reqFields: Array<[string, string]> = [[':method', 'POST'], [':scheme', 'http'], [':path', '/qa.Svc/Slow'], [':authority', 'svc'], ['content-type', 'application/grpc'], ['grpc-timeout', '200m']];
  h.inst.feed(1, REQ, Buffer.concat([PREFACE, settings()]), 1n);
  // the response direction lost bytes between frames: its dynamic table is unknown from here
  h.inst.feed(1, RESP, settings(), 2n);
  assert.equal(h.inst.gap(1, RESP, 300), 'ok');
  hints(h, REQ, 9, 0, reqFields, 5n); // the client's nghttp2_submit_request, before its bytes
  h.inst.feed(1, REQ, Buffer.concat([headers(9, reqBlock('POST', '/qa.Svc/Slow', 'svc', [['content-type', 'application/grpc'], ['grpc-timeout', '200m']])), data(9, grpcMsg(2), true)]), 10n);
  // Trailers-Only DEADLINE_EXCEEDED: :status from the static table, the rest table entries we lost
  h.inst.feed(1, RESP, Buffer.concat([settings(), headers(9, Buffer.concat([idx(8), idx(62), idx(63), idx(64)]), true)]), 20n);
  assert.equal(exchanges(h).length, 0, 'held for the hints of the response fields');
  h.inst.feed(1, REQ, rst(9, 8), 21n); // grpc-js: CANCEL when its own deadline timer fires
  hints(h, RESP, 9, 0, [[':status', '200'], ['grpc-status', '4'], ['grpc-message', 'Deadline%20exceeded'], ['content-type', 'application/grpc+proto']], 22n);
  const [ex] = exchanges(h);
  assert.ok(ex, 'reported once the hints named its fields');
  assert.equal(ex.attributes['rpc.grpc.status_code'], 4);
  assert.equal(ex.attributes['rpc.grpc.status_message'], 'Deadline exceeded');
  assert.equal(ex.attributes['telegen.http2.rst_stream.error'], undefined);
  assert.equal(ex.attributes['telegen.hpack.recovered'], true);
  assert.equal(ex.tsEnd, 20n, 'ended with its response');
  const client: ConnMeta = { role: 'client', localAddr: '127.0.0.1', localPort: 40000, remoteAddr: '127.0.0.1', remotePort: 50051, transport: 'tcp' };
  const span = recordToSpan(ex as Parameters<typeof recordToSpan>[0], client, 'http2', { clock: identityClock })!;
  assert.equal(span.status.code, SpanStatusCode.ERROR);
  assert.equal(span.status.message, 'Deadline exceeded');
  assert.equal(span.attributes['error.type'], '4');
});

test('the same reset when the hints never name the fields: reported as before, a CANCEL error at the hint wait\'s end', () => {
  const h = loadDecoder('http2');
  h.inst.feed(1, REQ, Buffer.concat([PREFACE, settings()]), 1n);
  h.inst.feed(1, RESP, settings(), 2n);
  assert.equal(h.inst.gap(1, RESP, 300), 'ok');
  hints(h, REQ, 9, 0, [[':method', 'POST'], [':scheme', 'http'], [':path', '/qa.Svc/Slow'], [':authority', 'svc'], ['content-type', 'application/grpc']], 5n);
  h.inst.feed(1, REQ, Buffer.concat([headers(9, reqBlock('POST', '/qa.Svc/Slow', 'svc', [['content-type', 'application/grpc']])), data(9, grpcMsg(2), true)]), 10n);
  h.inst.feed(1, RESP, headers(9, Buffer.concat([idx(8), idx(62), idx(63)]), true), 20n);
  h.inst.feed(1, REQ, rst(9, 8), 21n);
  h.inst.tick(21n + 3_000_000_000n); // past HINT_WAIT_NS: no hint came
  const [ex] = exchanges(h);
  assert.ok(ex, 'reported when the hint wait ended');
  assert.equal(ex.attributes['rpc.grpc.status_code'], undefined, 'the status stays unknown');
  assert.equal(ex.attributes['telegen.http2.rst_stream.error'], 8);
  assert.equal(ex.attributes['error.type'], 'CANCEL');
});
