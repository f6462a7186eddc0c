// HTTP/2 streams whose bytes the agent partly lost (a syscall longer than capture_max, the ring
// full under load). Found by a QA pass: h2load -c 4 -m 10 -n 2000 against a Node http2 server
// on a contended host (the agent paused reading, the kernel dropped 2,574 ring records) — h2load
// counted 2000 answered requests, the agent exported 40 client spans ERROR error.type=no_response:
// streams whose response (or its END_STREAM) was in the lost bytes were reported unanswered when
// the connection closed. Lost bytes say nothing about whether an answer came: such a stream is
// now unknown (FLAG_UNKNOWN), no error; a stream with no loss still ends as no response.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { SpanStatusCode } from '@opentelemetry/api';
import { loadDecoder } from '../helpers/decoder';
import { DIR_REQUEST, DIR_RESPONSE, FLAG_NO_RESPONSE, FLAG_UNKNOWN } from '../../decoders/abi/abi';
import { PREFACE, settings, headers, data, frame, T, reqBlock, respBlock, exchanges } from './http2-helpers';
import { recordToSpan, identityClock } from '../../host/src/pipeline/spans';
import { ConnMeta } from '../../host/src/model';

const REQ = DIR_REQUEST, RESP = DIR_RESPONSE;
const client: ConnMeta = { role: 'client', localAddr: '127.0.0.1', localPort: 40000, remoteAddr: '127.0.0.1', remotePort: 8080, transport: 'tcp', closedTs: 900_000_000n };

test('lost response bytes: streams whose answer may have been in them are unknown at close, not unanswered errors; sizes exact or absent', () => {
  const h = loadDecoder('http2');
  h.inst.feed(1, REQ, Buffer.concat([PREFACE, settings(),
    headers(1, reqBlock('GET', '/big', 'h'), true), headers(3, reqBlock('GET', '/small', 'h'), true),
    headers(5, reqBlock('GET', '/quiet', 'h'), true), headers(7, reqBlock('GET', '/exact', 'h'), true)]), 10n);
  // /exact: a gap inside one DATA payload — the frame header gave its length, the size stays exact
  const exact = data(7, Buffer.alloc(30_000, 1), true);
  h.inst.feed(1, RESP, Buffer.concat([settings(), headers(7, respBlock('200')), exact.subarray(0, 16_384)]), 11n);
  assert.equal(h.inst.gap(1, RESP, exact.length - 16_384 - 100), 'ok');
  h.inst.feed(1, RESP, exact.subarray(exact.length - 100), 12n);
  // /big: its DATA frame, then bytes lost past its end (its END_STREAM, /small's whole answer)
  const big = frame(T.DATA, 0, 1, Buffer.alloc(50_000, 2));
  h.inst.feed(1, RESP, Buffer.concat([headers(1, respBlock('200')), big.subarray(0, 16_384)]), 13n);
  assert.equal(h.inst.gap(1, RESP, big.length - 16_384 + 2_000), 'ok');
  h.inst.closeStream(1);
  const ex = exchanges(h);
  const by = (p: string) => { const r = ex.find((x) => x.attributes['url.path'] === p); assert.ok(r, `${p} reported`); return r!; };
  assert.equal(by('/exact').attributes['http.response.body.size'], 30_000);
  assert.equal(by('/exact').flags & FLAG_NO_RESPONSE, 0);
  for (const p of ['/big', '/small', '/quiet']) {
    const r = by(p);
    assert.equal(r.flags & FLAG_NO_RESPONSE, 0, `${p}: its answer may have been in the lost bytes`);
    assert.ok(r.flags & FLAG_UNKNOWN, `${p}: unknown`);
    assert.equal(r.attributes['http.response.body.size'], undefined, `${p}: no body size`);
    const span = recordToSpan(r as Parameters<typeof recordToSpan>[0], client, 'http2', { clock: identityClock })!;
    assert.equal(span.status.code, SpanStatusCode.UNSET, `${p}: client span no error`);
    assert.equal(span.attributes['error.type'], undefined);
  }
  assert.equal(by('/big').attributes['http.response.status_code'], 200);

  // no bytes lost: a stream unanswered at the close is still the client's no_response error
  const h2 = loadDecoder('http2');
  h2.inst.feed(1, REQ, Buffer.concat([PREFACE, settings(), headers(1, reqBlock('GET', '/never', 'h'), true)]), 10n);
  h2.inst.feed(1, RESP, settings(), 11n);
  h2.inst.closeStream(1);
  const [never] = exchanges(h2);
  assert.ok(never.flags & FLAG_NO_RESPONSE);
  const span = recordToSpan(never as Parameters<typeof recordToSpan>[0], client, 'http2', { clock: identityClock })!;
  assert.equal(span.status.code, SpanStatusCode.ERROR);
  assert.equal(span.attributes['error.type'], 'no_response');
});
