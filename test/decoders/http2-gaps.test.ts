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
import { PREFACE, settings, headers, data, frame, T, reqBlock, respBlock, exchanges, idx, litInc, pairs, rst } from './http2-helpers';
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

// One SSL_write longer than the TLS capture (16 KiB): a Node client's POST of 40 KB is HEADERS and
// three DATA frames in one write; the agent keeps its first 16,384 bytes and reports the rest lost
// (kernel.ts: orig_len - len, the next record at pos + orig_len). Measured through the agent with a
// Node http2 client (test/tls/h2-large-write.test.ts).
function oneWrite(sid: number, block: Buffer, body: number): Buffer {
  const parts = [headers(sid, block)];
  for (let off = 0; off < body; off += 16_384) parts.push(data(sid, Buffer.alloc(Math.min(16_384, body - off), 0x62), off + 16_384 >= body));
  return Buffer.concat(parts);
}

test('a write cut by the capture: a gap inside one DATA payload keeps HPACK and sizes; a gap over frame headers loses the table, and only streams whose side was still open become unknown', () => {
  const CAP = 16_384;
  // /slow's request has ended before the big write; its answer comes after
  const h = loadDecoder('http2');
  h.inst.feed(1, REQ, Buffer.concat([PREFACE, settings(), headers(1, Buffer.concat([litInc('x-tenant', 'blue'), reqBlock('GET', '/slow', 'h')]), true)]), 10n);
  h.inst.feed(1, RESP, settings(), 11n);
  const w = oneWrite(3, Buffer.concat([idx(62), reqBlock('POST', '/upload', 'h')]), 40_000);
  h.inst.feed(1, REQ, w.subarray(0, CAP), 12n);
  assert.equal(h.inst.gap(1, REQ, w.length - CAP), 'ok');
  // the next request after the lost bytes: a reference to the table entry x-tenant
  h.inst.feed(1, REQ, headers(5, Buffer.concat([idx(62), reqBlock('GET', '/after', 'h')]), true), 13n);
  for (const sid of [1, 3, 5]) h.inst.feed(1, RESP, Buffer.concat([headers(sid, respBlock('200')), data(sid, Buffer.from('ok'), true)]), 14n + BigInt(sid));
  h.inst.closeStream(1);
  const ex = exchanges(h);
  const by = (p: string) => { const r = ex.find((x) => x.attributes['url.path'] === p); assert.ok(r, `${p} reported`); return r!; };
  // /slow: its request had ended (END_STREAM) before the lost bytes, its answer came whole
  assert.equal(by('/slow').flags & FLAG_UNKNOWN, 0, '/slow is exact');
  assert.deepEqual(pairs(by('/slow'), 'telegen.http2.request.headers').slice(0, 2), [['x-tenant', 'blue'], [':method', 'GET']]);
  assert.equal(by('/slow').attributes['http.response.body.size'], 2);
  // /upload: its DATA frame headers (END_STREAM's among them) were lost: body size left out
  assert.ok(by('/upload').flags & FLAG_UNKNOWN);
  assert.equal(by('/upload').attributes['http.request.body.size'], undefined);
  assert.equal(by('/upload').attributes['http.response.status_code'], 200);
  // /after: the lost frames may have held a header block: its table reference is unknown, not wrong
  assert.deepEqual(pairs(by('/after'), 'telegen.http2.request.headers')[0], ['<unknown>', '']);
  assert.ok(by('/after').flags & FLAG_UNKNOWN);
  assert.equal(by('/after').attributes['http.response.status_code'], 200);

  // the same answer as one DATA frame: the lost bytes fall inside its payload, whose length the
  // frame header gave — the next block's table reference decodes, and every size is exact
  const h2 = loadDecoder('http2');
  h2.inst.feed(1, REQ, Buffer.concat([PREFACE, settings(), headers(1, Buffer.concat([litInc('x-tenant', 'blue'), reqBlock('GET', '/big', 'h')]), true),
    headers(3, Buffer.concat([idx(62), reqBlock('GET', '/next', 'h')]), true)]), 10n);
  const one = Buffer.concat([headers(1, Buffer.concat([litInc('x-served-by', 'a'), respBlock('200')])), data(1, Buffer.alloc(40_000, 0x62), true)]);
  h2.inst.feed(1, RESP, Buffer.concat([settings(), one.subarray(0, CAP)]), 11n);
  assert.equal(h2.inst.gap(1, RESP, one.length - CAP), 'ok');
  h2.inst.feed(1, RESP, Buffer.concat([headers(3, Buffer.concat([idx(62), respBlock('200')])), data(3, Buffer.from('ok'), true)]), 12n);
  h2.inst.closeStream(1);
  const ex2 = exchanges(h2);
  const big = ex2.find((x) => x.attributes['url.path'] === '/big')!;
  const next = ex2.find((x) => x.attributes['url.path'] === '/next')!;
  assert.equal(big.flags & FLAG_UNKNOWN, 0);
  assert.equal(big.attributes['http.response.body.size'], 40_000);
  assert.equal(next.flags & FLAG_UNKNOWN, 0);
  assert.deepEqual(pairs(next, 'telegen.http2.response.headers')[0], ['x-served-by', 'a']);
});

test('a client RST_STREAM on a stream whose response end may have been in lost bytes: unknown, no error (curl resets with STREAM_CLOSED after reading it all)', () => {
  const h = loadDecoder('http2');
  h.inst.feed(1, REQ, Buffer.concat([PREFACE, settings(), headers(1, reqBlock('GET', '/big', 'h'), true), headers(3, reqBlock('GET', '/cancelled', 'h'), true)]), 10n);
  const w = oneWrite(1, respBlock('200'), 40_000);
  h.inst.feed(1, RESP, Buffer.concat([settings(), headers(3, respBlock('200')), data(3, Buffer.alloc(10)), w.subarray(0, 16_384)]), 11n);
  assert.equal(h.inst.gap(1, RESP, w.length - 16_384), 'ok');
  h.inst.feed(1, REQ, rst(1, 5), 12n);
  h.inst.closeStream(1);
  const ex = exchanges(h);
  const big = ex.find((x) => x.attributes['url.path'] === '/big')!;
  assert.ok(big.flags & FLAG_UNKNOWN);
  assert.equal(big.attributes['error.type'], undefined);
  assert.equal(big.attributes['http.response.status_code'], 200);
  const span = recordToSpan(big as Parameters<typeof recordToSpan>[0], client, 'http2', { clock: identityClock })!;
  assert.equal(span.status.code, SpanStatusCode.UNSET);
  // no bytes lost: a client's reset of a response in progress is still the reset
  const h2 = loadDecoder('http2');
  h2.inst.feed(1, REQ, Buffer.concat([PREFACE, settings(), headers(1, reqBlock('GET', '/stopped', 'h'), true)]), 10n);
  h2.inst.feed(1, RESP, Buffer.concat([settings(), headers(1, respBlock('200')), data(1, Buffer.alloc(100))]), 11n);
  h2.inst.feed(1, REQ, rst(1, 8), 12n);
  const [stopped] = exchanges(h2);
  assert.equal(stopped.attributes['error.type'], 'CANCEL');
});
