// http2 decoder: HPACK against RFC 7541 Appendix C, framing (padding, CONTINUATION, trailers,
// RST_STREAM, push), gRPC message framing, mid-stream join (unknown, never wrong), gaps, split
// reads at every byte boundary, and hostile input (no trap, bounded memory, counted).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { loadDecoder, Harness } from '../helpers/decoder';
import {
  DIR_REQUEST, DIR_RESPONSE, FLAG_ERROR, FLAG_NO_REQUEST, FLAG_NO_RESPONSE, FLAG_UNKNOWN, FLAG_TIMEOUT, FLAG_TRUNCATED,
} from '../../decoders/abi/abi';
import {
  PREFACE, hex, frame, T, F, settings, lit, litInc, litIncIdx, idx, sizeUpdate, headers, data, rst, grpcMsg,
  reqBlock, respBlock, exchanges, events, pairs, toTshark, litIdx,
} from './http2-helpers';

const REQ = DIR_REQUEST, RESP = DIR_RESPONSE;

function fresh(): Harness { return loadDecoder('http2'); }

/** Opens a prior-knowledge connection: client preface + SETTINGS, server SETTINGS. */
function open(h: Harness, s: number, serverSettings: Buffer = settings()): void {
  h.inst.feed(s, REQ, Buffer.concat([PREFACE, settings()]), 1n);
  h.inst.feed(s, RESP, serverSettings, 2n);
}

// ---------------------------------------------------------------- HPACK, RFC 7541 Appendix C

test('RFC 7541 C.2: literal with indexing, without indexing, never indexed, indexed', () => {
  const h = fresh();
  open(h, 1);
  const blocks = [
    hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572'),
    hex('040c 2f73 616d 706c 652f 7061 7468'),
    hex('1008 7061 7373 776f 7264 0673 6563 7265 74'),
    hex('82'),
  ];
  // Each block is preceded by :method GET (0x82, no table change): a request block carries it.
  blocks.forEach((b, i) => h.inst.feed(1, REQ, headers(1 + 2 * i, Buffer.concat([i < 3 ? idx(2) : Buffer.alloc(0), b]), true), 10n));
  h.inst.closeStream(1);
  const got = exchanges(h).sort((a, b) => Number(a.attributes['telegen.http2.stream_id']) - Number(b.attributes['telegen.http2.stream_id']))
    .map((r) => pairs(r, 'telegen.http2.request.headers'));
  assert.deepEqual(got, [
    [[':method', 'GET'], ['custom-key', 'custom-header']],
    [[':method', 'GET'], [':path', '/sample/path']],
    [[':method', 'GET'], ['password', 'secret']],
    [[':method', 'GET']],
  ]);
});

const C3 = [
  '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
  '8286 84be 5808 6e6f 2d63 6163 6865',
  '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
];
const C4 = [
  '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
  '8286 84be 5886 a8eb 1064 9cbf',
  '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
];
const C3_EXPECTED = [
  [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com']],
  [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com'], ['cache-control', 'no-cache']],
  [[':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], [':authority', 'www.example.com'], ['custom-key', 'custom-value']],
];

for (const [name, blocks] of [['C.3 (no Huffman)', C3], ['C.4 (Huffman)', C4]] as const) {
  test(`RFC 7541 ${name}: three requests sharing one dynamic table`, () => {
    const h = fresh();
    open(h, 1);
    blocks.forEach((b, i) => h.inst.feed(1, REQ, headers(1 + 2 * i, hex(b), true), 10n));
    // answer each so the exchanges complete in order
    for (let i = 0; i < 3; i++) h.inst.feed(1, RESP, headers(1 + 2 * i, hex('88'), true), 20n);
    const ex = exchanges(h);
    assert.equal(ex.length, 3);
    assert.deepEqual(ex.map((r) => pairs(r, 'telegen.http2.request.headers')), C3_EXPECTED);
    assert.equal(ex[2].attributes['url.scheme'], 'https');
    assert.equal(ex[2].attributes['server.address'], 'www.example.com');
    assert.equal(ex[2].attributes['url.path'], '/index.html');
    for (const r of ex) assert.equal(r.flags & FLAG_UNKNOWN, 0);
  });
}

const C5 = [
  '4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
  '4803 3330 37c1 c0bf',
  '88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31',
];
const C6 = [
  '4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3',
  '4883 640e ffc1 c0bf',
  '88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07',
];
const C5_EXPECTED = [
  [[':status', '302'], ['cache-control', 'private'], ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'], ['location', 'https://www.example.com']],
  [[':status', '307'], ['cache-control', 'private'], ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'], ['location', 'https://www.example.com']],
  [[':status', '200'], ['cache-control', 'private'], ['date', 'Mon, 21 Oct 2013 20:13:22 GMT'], ['location', 'https://www.example.com'],
    // set-cookie values are redacted in the lists (see the credentials test); its exact decoding
    // is checked below under a harmless name, its size by the evictions of C.x.3
    ['content-encoding', 'gzip'], ['set-cookie', 'REDACTED']],
];

for (const [name, blocks] of [['C.5 (no Huffman)', C5], ['C.6 (Huffman)', C6]] as const) {
  test(`RFC 7541 ${name}: responses with a 256-byte table and eviction`, () => {
    const h = fresh();
    // The client's decoder allows 256 bytes; the server's encoder says so in its first block.
    h.inst.feed(1, REQ, Buffer.concat([PREFACE, settings([[1, 256]])]), 1n);
    h.inst.feed(1, RESP, settings(), 2n);
    for (let i = 0; i < 3; i++) h.inst.feed(1, REQ, headers(1 + 2 * i, hex('8286 84'), true), 10n);
    blocks.forEach((b, i) => h.inst.feed(1, RESP, headers(1 + 2 * i, Buffer.concat([i === 0 ? sizeUpdate(256) : Buffer.alloc(0), hex(b)]), true), 20n));
    const ex = exchanges(h);
    assert.equal(ex.length, 3);
    assert.deepEqual(ex.map((r) => pairs(r, 'telegen.http2.response.headers')), C5_EXPECTED);
    assert.deepEqual(ex.map((r) => r.attributes['http.response.status_code']), [302, 307, 200]);
    assert.equal(events(h).length, 0);
    // After C.x.3 the table holds only 3 entries (eviction): index 65 is beyond it → unknown.
    h.inst.feed(1, REQ, headers(7, hex('8286 84'), true), 30n);
    h.inst.feed(1, RESP, headers(7, Buffer.concat([idx(8), idx(62), idx(64), idx(65)]), true), 40n);
    const last = exchanges(h)[3];
    assert.deepEqual(pairs(last, 'telegen.http2.response.headers'), [
      [':status', '200'], ['set-cookie', 'REDACTED'],
      ['date', 'Mon, 21 Oct 2013 20:13:22 GMT'], ['<unknown>', '']]);
    assert.ok(last.flags & FLAG_UNKNOWN);
  });
}

test('RFC 7541 C.6.3 set-cookie value decodes exactly (Huffman, 45 bytes)', () => {
  const h = fresh();
  open(h, 1);
  h.inst.feed(1, REQ, headers(1, hex('8286 84'), true), 10n);
  const v = hex('ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07');
  h.inst.feed(1, RESP, headers(1, Buffer.concat([idx(8), Buffer.from([0x00, 0x06]), Buffer.from('x-test'), v]), true), 20n);
  assert.deepEqual(pairs(exchanges(h)[0], 'telegen.http2.response.headers'),
    [[':status', '200'], ['x-test', 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1']]);
});

test('HPACK: table size update to 0 empties the table; later refs are unknown, not stale', () => {
  const h = fresh();
  open(h, 1);
  h.inst.feed(1, REQ, headers(1, Buffer.concat([idx(2), litInc('x-id', 'one')]), true), 10n);
  h.inst.feed(1, REQ, headers(3, Buffer.concat([sizeUpdate(0), sizeUpdate(4096), idx(2), idx(62)]), true), 11n);
  h.inst.closeStream(1);
  const ex = exchanges(h).sort((a, b) => Number(a.attributes['telegen.http2.stream_id']) - Number(b.attributes['telegen.http2.stream_id']));
  assert.deepEqual(pairs(ex[0], 'telegen.http2.request.headers'), [[':method', 'GET'], ['x-id', 'one']]);
  assert.deepEqual(pairs(ex[1], 'telegen.http2.request.headers'), [[':method', 'GET'], ['<unknown>', '']]);
  assert.ok(ex[1].flags & FLAG_UNKNOWN);
  assert.equal(ex[1].attributes['telegen.hpack.unknown'], true);
});

// ---------------------------------------------------------------- a plain exchange

function simpleExchange(): Array<[0 | 1, Buffer]> {
  return [
    [REQ, Buffer.concat([PREFACE, settings([[4, 65535]])])],
    [RESP, Buffer.concat([settings([[3, 100]]), frame(T.SETTINGS, F.ACK, 0)])],
    [REQ, Buffer.concat([frame(T.SETTINGS, F.ACK, 0),
      headers(1, reqBlock('POST', '/api/items?limit=5&x=y', 'example.com:8443', [['content-type', 'application/json'],
        ['user-agent', 'test/1.0'], ['traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01']])),
      data(1, Buffer.from('{"a":1}'), true)])],
    [RESP, Buffer.concat([headers(1, respBlock('201', [['content-type', 'application/json']])), data(1, Buffer.from('{"id":7,"ok":true}'), true)])],
  ];
}

function checkSimple(h: Harness): void {
  const ex = exchanges(h);
  assert.equal(ex.length, 1, JSON.stringify(h.records, (_k, v) => typeof v === 'bigint' ? String(v) : v));
  const a = ex[0].attributes;
  assert.equal(a['http.request.method'], 'POST');
  assert.equal(a['url.path'], '/api/items');
  assert.equal(a['url.query'], 'limit=5&x=y');
  assert.equal(a['url.scheme'], 'http');
  assert.equal(a['server.address'], 'example.com');
  assert.equal(a['server.port'], 8443);
  assert.equal(a['http.response.status_code'], 201);
  // string[] as semconv says and HTTP/1 emits (a field may repeat)
  assert.deepEqual(a['http.request.header.content-type'], ['application/json']);
  assert.deepEqual(a['http.response.header.content-type'], ['application/json']);
  assert.equal(a['user_agent.original'], 'test/1.0');
  assert.deepEqual(a['http.request.header.traceparent'], ['00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01']);
  assert.equal(a['http.request.body.size'], 7);
  assert.equal(a['http.response.body.size'], 18);
  assert.equal(a['network.protocol.name'], 'http');
  assert.equal(a['network.protocol.version'], '2');
  assert.equal(a['telegen.http2.stream_id'], 1);
  assert.equal(a['rpc.system'], undefined);
  assert.equal(ex[0].flags, 0);
  assert.equal(events(h).length, 0);
}

test('exchange: method, path/query, authority, status, content types, body sizes, timing', () => {
  const h = fresh();
  const parts = simpleExchange();
  let ts = 1000n;
  for (const [d, b] of parts) { h.inst.feed(7, d, b, ts); ts += 1000n; }
  checkSimple(h);
  const r = exchanges(h)[0];
  assert.equal(r.tsStart, 3000n);
  assert.equal(r.tsEnd, 4000n);
  assert.equal(r.stream, 7);
});

test('split reads: every byte boundary of every message gives the same record', () => {
  const parts = simpleExchange();
  for (let pi = 0; pi < parts.length; pi++) {
    const [dir, b] = parts[pi];
    for (let cut = 1; cut < b.length; cut++) {
      const h = fresh();
      parts.forEach(([d, x], i) => {
        if (i !== pi) { h.inst.feed(1, d, x, BigInt(i)); return; }
        h.inst.feed(1, dir, x.subarray(0, cut), BigInt(i));
        h.inst.feed(1, dir, x.subarray(cut), BigInt(i));
      });
      try { checkSimple(h); } catch (e) { throw new Error(`message ${pi} cut at ${cut}: ${(e as Error).message}`); }
    }
  }
});

test('byte-at-a-time feeding', () => {
  const h = fresh();
  for (const [d, b] of simpleExchange()) for (let i = 0; i < b.length; i++) h.inst.feed(1, d, b.subarray(i, i + 1), 1n);
  checkSimple(h);
});

test('multiplexed streams, interleaved frames, responses out of order', () => {
  const h = fresh();
  open(h, 1);
  h.inst.feed(1, REQ, Buffer.concat([
    headers(1, reqBlock('GET', '/a', 'h'), true), headers(3, reqBlock('GET', '/b', 'h'), true), headers(5, reqBlock('POST', '/c', 'h')),
    data(5, Buffer.alloc(10)), data(5, Buffer.alloc(5), true)]), 10n);
  h.inst.feed(1, RESP, Buffer.concat([headers(3, respBlock('404')), headers(1, respBlock('200')), data(1, Buffer.alloc(3)),
    data(3, Buffer.alloc(4), true), headers(5, respBlock('503'), true), data(1, Buffer.alloc(2), true)]), 20n);
  const ex = exchanges(h);
  assert.deepEqual(ex.map((r) => [r.attributes['url.path'], r.attributes['http.response.status_code'], r.attributes['http.response.body.size']]),
    [['/b', 404, 4], ['/c', 503, 0], ['/a', 200, 5]]);
  assert.equal(ex[1].attributes['http.request.body.size'], 15);
  assert.ok(ex[1].flags & FLAG_ERROR);
  assert.equal(ex[1].attributes['error.type'], '503');
  assert.equal(ex[0].flags & FLAG_ERROR, 0);
});

// ---------------------------------------------------------------- framing details

test('padding on HEADERS (with PRIORITY fields) and DATA is excluded', () => {
  const h = fresh();
  open(h, 1);
  const block = reqBlock('PUT', '/pad', 'p');
  const hp = Buffer.concat([Buffer.from([4]), hex('80000003 10'), block, Buffer.alloc(4)]);
  const dp = Buffer.concat([Buffer.from([6]), Buffer.from('hello'), Buffer.alloc(6)]);
  h.inst.feed(1, REQ, Buffer.concat([frame(T.HEADERS, F.END_HEADERS | F.PADDED | F.PRIORITY, 1, hp), frame(T.DATA, F.PADDED | F.END_STREAM, 1, dp)]), 10n);
  h.inst.feed(1, RESP, Buffer.concat([headers(1, respBlock('204')), frame(T.DATA, F.PADDED | F.END_STREAM, 1, Buffer.from([0]))]), 20n);
  const ex = exchanges(h);
  assert.equal(ex.length, 1);
  assert.equal(ex[0].attributes['http.request.method'], 'PUT');
  assert.equal(ex[0].attributes['url.path'], '/pad');
  assert.equal(ex[0].attributes['http.request.body.size'], 5);
  assert.equal(ex[0].attributes['http.response.body.size'], 0);
  assert.equal(ex[0].attributes['http.response.status_code'], 204);
});

test('CONTINUATION reassembly across frames and reads; trailers; PRIORITY/PING/WINDOW_UPDATE/unknown types skipped', () => {
  const h = fresh();
  open(h, 1);
  const block = reqBlock('GET', '/long', 'c', [['x-a', 'a'.repeat(50)], ['x-b', 'b'.repeat(50)]]);
  const bytes = Buffer.concat([
    frame(T.PRIORITY, 0, 1, hex('00000000 0f')),
    frame(T.HEADERS, F.END_STREAM, 1, block.subarray(0, 20)),
    frame(T.CONT, 0, 1, block.subarray(20, 60)),
    frame(T.CONT, F.END_HEADERS, 1, block.subarray(60)),
    frame(T.PING, 0, 0, Buffer.alloc(8)),
    frame(T.WINDOW, 0, 0, hex('00010000')),
    frame(0x42, 0x5, 1, Buffer.from('extension frame')),
  ]);
  for (let i = 0; i < bytes.length; i += 7) h.inst.feed(1, REQ, bytes.subarray(i, i + 7), 10n);
  h.inst.feed(1, RESP, Buffer.concat([headers(1, respBlock('200')), data(1, Buffer.alloc(9)),
    headers(1, Buffer.concat([lit('x-checksum', 'abc'), lit('x-done', '1')]), true)]), 20n);
  const ex = exchanges(h);
  assert.equal(ex.length, 1);
  assert.deepEqual(pairs(ex[0], 'telegen.http2.request.headers').slice(4), [['x-a', 'a'.repeat(50)], ['x-b', 'b'.repeat(50)]]);
  assert.deepEqual(pairs(ex[0], 'telegen.http2.response.trailers'), [['x-checksum', 'abc'], ['x-done', '1']]);
  assert.equal(ex[0].attributes['http.response.body.size'], 9);
  assert.equal(events(h).length, 0);
});

test('RST_STREAM: error code ends the exchange with FLAG_ERROR', () => {
  const h = fresh();
  open(h, 1);
  h.inst.feed(1, REQ, headers(1, reqBlock('GET', '/slow', 'h'), true), 10n);
  h.inst.feed(1, RESP, rst(1, 8), 20n);
  h.inst.feed(1, REQ, headers(3, reqBlock('GET', '/ok', 'h'), true), 30n);
  h.inst.feed(1, RESP, Buffer.concat([headers(3, respBlock('200')), data(3, Buffer.alloc(1)), rst(3, 0)]), 40n);
  const ex = exchanges(h);
  assert.equal(ex.length, 2);
  assert.equal(ex[0].attributes['telegen.http2.rst_stream.error'], 8);
  assert.equal(ex[0].attributes['error.type'], 'CANCEL');
  assert.equal(ex[0].flags, FLAG_ERROR | FLAG_NO_RESPONSE);
  // RST NO_ERROR after a response: not an error
  assert.equal(ex[1].attributes['http.response.status_code'], 200);
  assert.equal(ex[1].flags & FLAG_ERROR, 0);
});

test('RST_STREAM from the client before any response: the response in flight completes it, else 1 s later or at close it has none', () => {
  const h = fresh();
  open(h, 1);
  // a gRPC deadline: the client cancels, the server's Trailers-Only DEADLINE_EXCEEDED crosses it
  h.inst.feed(1, REQ, Buffer.concat([headers(1, reqBlock('POST', '/pkg.Svc/Slow', 'h', [['content-type', 'application/grpc']])), data(1, grpcMsg(3), true), rst(1, 8)]), 10n);
  assert.equal(exchanges(h).length, 0, 'waits for a response in flight');
  h.inst.feed(1, RESP, headers(1, respBlock('200', [['content-type', 'application/grpc'], ['grpc-status', '4'], ['grpc-message', 'Deadline exceeded']]), true), 12n);
  let ex = exchanges(h);
  assert.equal(ex.length, 1);
  assert.deepEqual([ex[0].attributes['http.response.status_code'], ex[0].attributes['rpc.grpc.status_code'], ex[0].attributes['telegen.http2.rst_stream.error'], ex[0].tsEnd],
    [200, 4, 8, 12n]);
  assert.equal(ex[0].flags & FLAG_NO_RESPONSE, 0);
  // no response ever: reported without one once RST_WAIT_NS (1 s) passed by the source clock
  h.inst.feed(1, REQ, Buffer.concat([headers(3, reqBlock('GET', '/gone', 'h'), true), rst(3, 8)]), 20n);
  h.inst.tick(20n + 500_000_000n);
  assert.equal(exchanges(h).length, 1);
  h.inst.tick(20n + 1_500_000_000n);
  ex = exchanges(h);
  assert.equal(ex.length, 2);
  assert.deepEqual([ex[1].attributes['url.path'], ex[1].attributes['error.type'], ex[1].flags, ex[1].tsEnd], ['/gone', 'CANCEL', FLAG_ERROR | FLAG_NO_RESPONSE, 20n]);
  // or at close
  h.inst.feed(1, REQ, Buffer.concat([headers(5, reqBlock('GET', '/closed', 'h'), true), rst(5, 8)]), 30n);
  h.inst.closeStream(1);
  assert.equal(exchanges(h).length, 3);
});

test('interim 1xx responses are skipped; PUSH_PROMISE creates a pushed exchange', () => {
  const h = fresh();
  open(h, 1);
  h.inst.feed(1, REQ, headers(1, reqBlock('GET', '/index.html', 'h'), true), 10n);
  const pp = Buffer.concat([hex('00000002'), reqBlock('GET', '/style.css', 'h')]);
  h.inst.feed(1, RESP, Buffer.concat([headers(1, respBlock('103', [['link', '</style.css>; rel=preload']])),
    frame(T.PUSH, F.END_HEADERS, 1, pp), headers(1, respBlock('200')), data(1, Buffer.alloc(100), true),
    headers(2, respBlock('200', [['content-type', 'text/css']])), data(2, Buffer.alloc(30), true)]), 20n);
  const ex = exchanges(h);
  assert.equal(ex.length, 2);
  assert.equal(ex[0].attributes['url.path'], '/index.html');
  assert.equal(ex[0].attributes['http.response.status_code'], 200);
  assert.equal(ex[1].attributes['url.path'], '/style.css');
  assert.equal(ex[1].attributes['telegen.http2.pushed'], true);
  assert.equal(ex[1].attributes['http.response.body.size'], 30);
  assert.equal(ex[1].attributes['telegen.http2.stream_id'], 2);
});

test('close flushes open streams with FLAG_NO_RESPONSE; tick expires idle ones', () => {
  const h = fresh();
  open(h, 1);
  h.inst.feed(1, REQ, headers(1, reqBlock('GET', '/never', 'h'), true), 10n);
  h.inst.tick(10n + 301_000_000_000n);
  assert.equal(exchanges(h).length, 1);
  assert.equal(exchanges(h)[0].flags & (FLAG_NO_RESPONSE | FLAG_TIMEOUT), FLAG_NO_RESPONSE | FLAG_TIMEOUT);
  // It was still open when the decoder gave up: it lasts until then.
  assert.equal(exchanges(h)[0].tsEnd, 10n + 301_000_000_000n);
  // A stream answered with HEADERS and then quiet (a server-streaming call, a watch) is not a
  // timeout: answered, its end unseen.
  h.inst.feed(1, REQ, headers(3, reqBlock('POST', '/w.Watch/Changes', 'h', [['content-type', 'application/grpc']])), 400_000_000_000n);
  h.inst.feed(1, RESP, headers(3, respBlock('200', [['content-type', 'application/grpc']])), 400_000_000_100n);
  h.inst.tick(400_000_000_100n + 301_000_000_000n);
  assert.equal(exchanges(h).length, 2);
  const w = exchanges(h)[1];
  assert.deepEqual([w.attributes['url.path'], w.attributes['http.response.status_code'], w.flags & (FLAG_NO_RESPONSE | FLAG_TIMEOUT | FLAG_UNKNOWN), w.tsEnd],
    ['/w.Watch/Changes', 200, FLAG_UNKNOWN, 400_000_000_100n + 301_000_000_000n]);
  h.inst.feed(1, REQ, headers(5, reqBlock('GET', '/open', 'h'), true), 800_000_000_000n);
  h.inst.closeStream(1);
  assert.equal(exchanges(h).length, 3);
  assert.equal(exchanges(h)[2].attributes['url.path'], '/open');
  assert.ok(exchanges(h)[2].flags & FLAG_NO_RESPONSE);
  assert.equal(exchanges(h)[2].flags & FLAG_TIMEOUT, 0, 'a close is no timeout');
});

// ---------------------------------------------------------------- gRPC

const GRPC_REQ = (path: string) => reqBlock('POST', path, 'localhost:50051', [['content-type', 'application/grpc'], ['te', 'trailers']]);
const GRPC_RESP = respBlock('200', [['content-type', 'application/grpc+proto']]);
const GRPC_TRL = (st: string, msg?: string) => Buffer.concat([lit('grpc-status', st), ...(msg ? [lit('grpc-message', msg)] : [])]);

function grpcCall(reqMsgs: Array<[number, boolean]>, respMsgs: Array<[number, boolean]>, status = '0', msg?: string): Harness {
  const h = fresh();
  open(h, 1);
  const reqData = Buffer.concat(reqMsgs.map(([l, c]) => grpcMsg(l, c)));
  // Split the request body over DATA frames at arbitrary places (messages straddle frames).
  const frames: Buffer[] = [headers(1, GRPC_REQ('/helloworld.Greeter/SayHello'))];
  for (let i = 0; i < reqData.length; i += 7) frames.push(data(1, reqData.subarray(i, i + 7)));
  frames.push(data(1, Buffer.alloc(0), true));
  h.inst.feed(1, REQ, Buffer.concat(frames), 10n);
  const respData = Buffer.concat(respMsgs.map(([l, c]) => grpcMsg(l, c)));
  h.inst.feed(1, RESP, Buffer.concat([headers(1, GRPC_RESP), ...(respData.length ? [data(1, respData)] : []),
    headers(1, GRPC_TRL(status, msg), true)]), 20n);
  return h;
}

test('gRPC unary: service, method, status, message counts and lengths', () => {
  const h = grpcCall([[12, false]], [[30, false]]);
  const ex = exchanges(h);
  assert.equal(ex.length, 1);
  const a = ex[0].attributes;
  assert.equal(a['rpc.system'], 'grpc');
  assert.equal(a['rpc.service'], 'helloworld.Greeter');
  assert.equal(a['rpc.method'], 'SayHello');
  assert.equal(a['rpc.grpc.status_code'], 0);
  assert.equal(a['telegen.rpc.request.messages'], 1);
  assert.equal(a['telegen.rpc.response.messages'], 1);
  assert.deepEqual(a['telegen.rpc.request.message_lengths'], ['12']);
  assert.deepEqual(a['telegen.rpc.response.message_lengths'], ['30']);
  assert.equal(a['http.request.body.size'], 17);
  assert.equal(ex[0].flags, 0);
});

test('gRPC client streaming, server streaming and bidi: counts and compressed flags', () => {
  let a = exchanges(grpcCall([[3, false], [0, false], [40, true], [5, true]], [[8, false]]))[0].attributes;
  assert.equal(a['telegen.rpc.request.messages'], 4);
  assert.equal(a['telegen.rpc.request.compressed'], 2);
  assert.deepEqual(a['telegen.rpc.request.message_lengths'], ['3', '0', '40', '5']);
  assert.equal(a['telegen.rpc.response.messages'], 1);
  a = exchanges(grpcCall([[4, false]], [[1, false], [2, true], [3, false], [1000, false]]))[0].attributes;
  assert.equal(a['telegen.rpc.response.messages'], 4);
  assert.equal(a['telegen.rpc.response.compressed'], 1);
  assert.deepEqual(a['telegen.rpc.response.message_lengths'], ['1', '2', '3', '1000']);
  a = exchanges(grpcCall([[10, false], [11, false], [12, false]], [[20, false], [21, false]]))[0].attributes;
  assert.equal(a['telegen.rpc.request.messages'], 3);
  assert.equal(a['telegen.rpc.response.messages'], 2);
});

test('gRPC error status with percent-encoded message; Trailers-Only response', () => {
  let ex = exchanges(grpcCall([[1, false]], [], '5', 'user%20not%20found%3A%20%E2%9C%93'))[0];
  assert.equal(ex.attributes['rpc.grpc.status_code'], 5);
  assert.equal(ex.attributes['rpc.grpc.status_message'], 'user not found: ✓');
  assert.equal(ex.attributes['error.type'], '5');
  assert.ok(ex.flags & FLAG_ERROR);
  const h = fresh();
  open(h, 1);
  h.inst.feed(1, REQ, Buffer.concat([headers(1, GRPC_REQ('/pkg.Svc/Do')), data(1, grpcMsg(2), true)]), 10n);
  h.inst.feed(1, RESP, headers(1, Buffer.concat([respBlock('200', [['content-type', 'application/grpc']]), GRPC_TRL('14', 'unavailable')]), true), 20n);
  ex = exchanges(h)[0];
  assert.equal(ex.attributes['rpc.service'], 'pkg.Svc');
  assert.equal(ex.attributes['rpc.method'], 'Do');
  assert.equal(ex.attributes['rpc.grpc.status_code'], 14);
  assert.equal(ex.attributes['rpc.grpc.status_message'], 'unavailable');
  assert.ok(ex.flags & FLAG_ERROR);
});

// ---------------------------------------------------------------- mid-stream join, gaps

test('mid-stream join: dynamic refs never seen are unknown; literals and static refs are right', () => {
  const h = fresh();
  // No preface, no SETTINGS: the connection is older than the agent.
  const block = Buffer.concat([idx(3), idx(86), idx(70), litIdx(4, '/svc.A/Get'), litInc('x-new', 'v1'), idx(64)]);
  h.inst.feed(1, REQ, Buffer.concat([headers(9, block), data(9, grpcMsg(3), true)]), 10n);
  h.inst.feed(1, RESP, Buffer.concat([headers(9, Buffer.concat([idx(8), idx(63)])), data(9, grpcMsg(4)), headers(9, Buffer.concat([lit('grpc-status', '0')]), true)]), 20n);
  // The next request references the entry we saw inserted (index 62 = x-new) and older ones.
  h.inst.feed(1, REQ, headers(11, Buffer.concat([idx(3), idx(62), idx(66)]), true), 30n);
  h.inst.closeStream(1);
  const ex = exchanges(h);
  assert.equal(ex.length, 2);
  const first = pairs(ex[0], 'telegen.http2.request.headers');
  assert.deepEqual(first, [[':method', 'POST'], ['<unknown>', ''], ['<unknown>', ''], [':path', '/svc.A/Get'], ['x-new', 'v1'], ['<unknown>', '']]);
  assert.ok(ex[0].flags & FLAG_UNKNOWN);
  assert.equal(ex[0].attributes['telegen.hpack.unknown'], true);
  assert.equal(ex[0].attributes['http.request.method'], 'POST');
  assert.equal(ex[0].attributes['url.path'], '/svc.A/Get');
  assert.equal(ex[0].attributes['http.response.status_code'], 200);
  assert.equal(ex[0].attributes['server.address'], undefined);
  const second = pairs(ex[1], 'telegen.http2.request.headers');
  assert.deepEqual(second, [[':method', 'POST'], ['x-new', 'v1'], ['<unknown>', '']]);
});

test('mid-stream join starting inside a frame: resynchronises on the next frame boundary', () => {
  const h = fresh();
  const junk = data(1, Buffer.alloc(100, 0x41)).subarray(37); // tail of a DATA frame
  h.inst.feed(1, REQ, Buffer.concat([junk, headers(5, reqBlock('GET', '/after', 'h'), true)]), 10n);
  h.inst.feed(1, RESP, headers(5, respBlock('200'), true), 20n);
  const ex = exchanges(h);
  assert.equal(ex.length, 1);
  assert.equal(ex[0].attributes['url.path'], '/after');
  assert.equal(ex[0].attributes['http.response.status_code'], 200);
});

test('response without its request (joined mid-stream) is FLAG_NO_REQUEST', () => {
  const h = fresh();
  h.inst.feed(1, RESP, Buffer.concat([headers(3, respBlock('200')), data(3, Buffer.alloc(5), true)]), 20n);
  const ex = exchanges(h);
  assert.equal(ex.length, 1);
  assert.ok(ex[0].flags & FLAG_NO_REQUEST);
  assert.equal(ex[0].attributes['http.response.status_code'], 200);
});

test('gap inside a DATA payload is absorbed; a gap elsewhere loses HPACK state (unknown, not wrong)', () => {
  const h = fresh();
  open(h, 1);
  h.inst.feed(1, REQ, Buffer.concat([headers(1, Buffer.concat([idx(3), litInc('x-k', 'first'), lit(':path', '/x')])), frame(T.DATA, 0, 1, Buffer.alloc(100)).subarray(0, 30)]), 10n);
  assert.equal(h.inst.gap(1, REQ, 50), 'ok');
  h.inst.feed(1, REQ, Buffer.concat([Buffer.alloc(100 - 21 - 50), data(1, Buffer.alloc(1), true)]), 11n);
  h.inst.feed(1, RESP, headers(1, respBlock('200'), true), 12n);
  let ex = exchanges(h);
  assert.equal(ex.length, 1);
  assert.equal(ex[0].attributes['url.path'], '/x');
  // a gap between frames: bytes may have held a header block that inserted entries
  assert.equal(h.inst.gap(1, REQ, 40), 'ok');
  h.inst.feed(1, REQ, headers(3, Buffer.concat([idx(3), idx(62), lit(':path', '/y')]), true), 13n);
  h.inst.feed(1, RESP, headers(3, respBlock('200'), true), 14n);
  ex = exchanges(h);
  assert.equal(ex.length, 2);
  assert.deepEqual(pairs(ex[1], 'telegen.http2.request.headers'), [[':method', 'POST'], ['<unknown>', ''], [':path', '/y']]);
  assert.ok(ex[1].flags & FLAG_UNKNOWN);
});

test('h2c: response side starts with the server SETTINGS (after the 101), request side with the preface', () => {
  const h = fresh();
  h.inst.feed(1, RESP, Buffer.concat([settings([[3, 100]]), headers(1, Buffer.concat([idx(8), litInc('server', 'x')])), data(1, Buffer.alloc(3), true)]), 10n);
  h.inst.feed(1, REQ, Buffer.concat([PREFACE, settings(), headers(3, Buffer.concat([idx(2), idx(6), lit(':path', '/two'), lit(':authority', 'h')]), true)]), 11n);
  h.inst.feed(1, RESP, headers(3, Buffer.concat([idx(13), idx(62)]), true), 12n);
  const ex = exchanges(h);
  assert.equal(ex.length, 2);
  assert.ok(ex[0].flags & FLAG_NO_REQUEST); // stream 1's request was the HTTP/1.1 Upgrade request
  assert.equal(ex[0].flags & FLAG_UNKNOWN, 0);
  assert.deepEqual(pairs(ex[1], 'telegen.http2.response.headers'), [[':status', '404'], ['server', 'x']]);
  assert.equal(ex[1].flags & FLAG_UNKNOWN, 0);
});

// ---------------------------------------------------------------- detect

test('detect: preface, server SETTINGS, plausible frames by side, HTTP/1 and garbage refused', () => {
  const h = fresh();
  const d = (dir: number, b: Buffer) => h.inst.detect(dir, b);
  assert.equal(d(REQ, Buffer.concat([PREFACE, settings()])), 100);
  assert.equal(d(REQ, PREFACE.subarray(0, 10)), 60);
  assert.ok(d(RESP, settings([[3, 100]])) >= 50);
  assert.ok(d(REQ, headers(1, reqBlock('GET', '/', 'h'), true)) >= 50);
  assert.ok(d(RESP, headers(1, reqBlock('GET', '/', 'h'), true)) < 50);
  assert.ok(d(RESP, Buffer.concat([headers(1, respBlock('200')), data(1, Buffer.alloc(4), true)])) >= 50);
  assert.ok(d(REQ, Buffer.concat([headers(1, respBlock('200')), data(1, Buffer.alloc(4), true)])) < 50);
  assert.equal(d(REQ, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), 0);
  assert.equal(d(RESP, Buffer.from('HTTP/1.1 200 OK\r\n\r\n')), 0);
  assert.equal(d(REQ, Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03])), 0);
});

test('meta: name, protocols, ports, private attribute names', () => {
  const h = fresh();
  assert.equal(h.inst.meta.name, 'http2');
  assert.deepEqual(h.inst.meta.protocols, ['http2', 'grpc']);
  assert.deepEqual(h.inst.meta.ports, [443, 8443, 50051, 9090, 8080]);
  assert.equal((h.inst.meta.attributes as Record<string, string>)['1024'], 'telegen.http2.request.headers');
});

// ---------------------------------------------------------------- hostile input

function noTrap(h: Harness): void {
  assert.equal(h.inst.counters.traps, 0, h.inst.lastError);
  assert.equal(h.inst.counters.badRecords, 0);
}

test('hostile: invalid Huffman (EOS inside, bad padding) → event, fields unknown, no trap', () => {
  const h = fresh();
  open(h, 1);
  // name Huffman string of 4 bytes of 0xff: contains EOS (30 ones)
  h.inst.feed(1, REQ, headers(1, Buffer.concat([idx(2), hex('40 84 ffffffff 01 61')]), true), 10n);
  // padding of 8+ bits: 'a' (00011) followed by a full byte of ones
  h.inst.feed(1, REQ, headers(3, Buffer.concat([idx(2), hex('00 82 1fff 01 61')]), true), 11n);
  h.inst.closeStream(1);
  noTrap(h);
  const ev = events(h).map((e) => e.attributes['error.type']);
  assert.deepEqual(ev, ['http2.hpack.invalid_huffman', 'http2.hpack.invalid_huffman']);
  for (const r of exchanges(h)) assert.ok(r.flags & FLAG_UNKNOWN);
});

test('hostile: index out of range in sync, index 0, integer overflow → events, unknown, no trap', () => {
  const h = fresh();
  open(h, 1);
  h.inst.feed(1, REQ, headers(1, Buffer.concat([idx(2), idx(5000)]), true), 10n);
  h.inst.feed(1, REQ, headers(3, Buffer.concat([idx(2), Buffer.from([0x80])]), true), 11n);
  h.inst.feed(1, REQ, headers(5, Buffer.concat([idx(2), hex('ff ff ff ff ff ff ff 7f')]), true), 12n);
  h.inst.closeStream(1);
  noTrap(h);
  assert.deepEqual(events(h).map((e) => e.attributes['error.type']),
    ['http2.hpack.index_out_of_range', 'http2.hpack.index_zero', 'http2.hpack.integer_overflow']);
  const ex = exchanges(h);
  assert.equal(ex.length, 3);
  for (const r of ex) { assert.ok(r.flags & FLAG_UNKNOWN); assert.equal(r.attributes['http.request.method'], 'GET'); }
});

test('hostile: table-size bomb is capped; memory stays bounded; refs beyond the mirror are unknown', () => {
  const h = fresh();
  open(h, 1, settings([[1, 0xffffffff]]));
  const before = h.inst.memoryBytes();
  // ask for a 256 MB table, then fill it with 200 × 1 KiB entries
  const fill: Buffer[] = [sizeUpdate(0x0fffffff)];
  for (let i = 0; i < 200; i++) fill.push(litInc(`x-${i}`, 'v'.repeat(1024)));
  h.inst.feed(1, REQ, headers(1, Buffer.concat([idx(2), ...fill]), true), 10n);
  h.inst.feed(1, REQ, headers(3, Buffer.concat([idx(2), idx(62), idx(62 + 150)]), true), 11n);
  h.inst.closeStream(1);
  noTrap(h);
  assert.ok(events(h).some((e) => e.attributes['error.type'] === 'http2.hpack.table_size_too_large'));
  const last = exchanges(h).find((r) => r.attributes['telegen.http2.stream_id'] === 3)!;
  const hdrs = pairs(last, 'telegen.http2.request.headers');
  assert.deepEqual(hdrs[1], ['x-199', 'v'.repeat(1024)]);
  assert.deepEqual(hdrs[2], ['<unknown>', '']); // evicted by our 64 KiB cap, never someone else's value
  assert.ok(h.inst.memoryBytes() - before < 8 << 20, `memory grew by ${h.inst.memoryBytes() - before}`);
});

test('hostile: CONTINUATION flood is bounded and counted', () => {
  const h = fresh();
  open(h, 1);
  const before = h.inst.memoryBytes();
  const parts: Buffer[] = [frame(T.HEADERS, 0, 1, idx(2))];
  for (let i = 0; i < 3000; i++) parts.push(frame(T.CONT, 0, 1, Buffer.alloc(100, 0x82)));
  parts.push(frame(T.CONT, F.END_HEADERS, 1, idx(4)));
  const all = Buffer.concat(parts);
  for (let i = 0; i < all.length; i += 4096) h.inst.feed(1, REQ, all.subarray(i, i + 4096), 10n);
  // the connection carries on: the next request is decoded (literal fields)
  h.inst.feed(1, REQ, headers(3, reqBlock('GET', '/next', 'h'), true), 11n);
  h.inst.feed(1, RESP, headers(3, respBlock('200'), true), 12n);
  noTrap(h);
  assert.ok(events(h).some((e) => e.attributes['error.type'] === 'http2.continuation_flood'));
  assert.equal(exchanges(h).find((r) => r.attributes['telegen.http2.stream_id'] === 3)?.attributes['url.path'], '/next');
  assert.ok(h.inst.memoryBytes() - before < 4 << 20);
});

test('hostile: frames larger than SETTINGS_MAX_FRAME_SIZE are counted; DATA passes, huge HEADERS skipped', () => {
  const h = fresh();
  open(h, 1);
  h.inst.feed(1, REQ, headers(1, reqBlock('POST', '/big', 'h')), 10n);
  const big = data(1, Buffer.alloc(70000), true);
  for (let i = 0; i < big.length; i += 10000) h.inst.feed(1, REQ, big.subarray(i, i + 10000), 11n);
  const hugeHdr = frame(T.HEADERS, F.END_HEADERS, 3, Buffer.alloc(300000, 0x82));
  for (let i = 0; i < hugeHdr.length; i += 65536) h.inst.feed(1, REQ, hugeHdr.subarray(i, i + 65536), 12n);
  h.inst.feed(1, REQ, headers(5, reqBlock('GET', '/after', 'h'), true), 13n);
  h.inst.feed(1, RESP, Buffer.concat([headers(1, respBlock('200'), true), headers(5, respBlock('200'), true)]), 14n);
  noTrap(h);
  const ev = events(h).map((e) => e.attributes['error.type']);
  assert.ok(ev.filter((x) => x === 'http2.frame_too_large').length >= 2, ev.join());
  assert.ok(ev.includes('http2.header_block_too_large'));
  const ex = exchanges(h);
  assert.equal(ex.find((r) => r.attributes['telegen.http2.stream_id'] === 1)?.attributes['http.request.body.size'], 70000);
  assert.equal(ex.find((r) => r.attributes['telegen.http2.stream_id'] === 5)?.attributes['url.path'], '/after');
});

test('hostile: many streams never answered stay bounded (oldest flushed)', () => {
  const h = fresh();
  open(h, 1);
  const parts: Buffer[] = [];
  for (let i = 0; i < 2000; i++) parts.push(headers(1 + 2 * i, Buffer.concat([idx(2), idx(4)]), true));
  h.inst.feed(1, REQ, Buffer.concat(parts), 10n);
  noTrap(h);
  assert.equal(exchanges(h).length, 2000 - 1024);
  h.inst.closeStream(1);
  assert.equal(exchanges(h).length, 2000);
});

test('the 1024-stream cap: a stream pushed out unanswered ends where the stream that pushed it out began, answered or not unknown', () => {
  const h = fresh();
  open(h, 1);
  for (let i = 0; i < 1024; i++) h.inst.feed(1, REQ, headers(1 + 2 * i, Buffer.concat([idx(2), idx(4)]), true), 100n + BigInt(i));
  assert.equal(exchanges(h).length, 0);
  h.inst.feed(1, REQ, headers(1 + 2 * 1024, Buffer.concat([idx(2), idx(4)]), true), 9_000n);
  const ex = exchanges(h);
  assert.equal(ex.length, 1);
  assert.deepEqual([ex[0].attributes['telegen.http2.stream_id'], ex[0].flags & (FLAG_NO_RESPONSE | FLAG_TIMEOUT | FLAG_UNKNOWN), ex[0].tsStart, ex[0].tsEnd],
    [1, FLAG_UNKNOWN, 100n, 9_000n]);
});

test('over the stream cap, the responses to flushed streams push out no stream still waiting (1100 in flight: 1024 answered)', () => {
  const h = fresh();
  open(h, 1);
  const reqs: Buffer[] = [], resps: Buffer[] = [];
  for (let i = 0; i < 1100; i++) {
    reqs.push(headers(1 + 2 * i, Buffer.concat([idx(2), idx(4)]), true));
    resps.push(headers(1 + 2 * i, idx(8), true)); // :status 200
  }
  h.inst.feed(1, REQ, Buffer.concat(reqs), 10n);
  h.inst.feed(1, RESP, Buffer.concat(resps), 20n);
  noTrap(h);
  const ex = exchanges(h).filter((r) => !(r.flags & FLAG_NO_REQUEST));
  assert.equal(ex.filter((r) => r.attributes['http.response.status_code'] === 200).length, 1024);
  assert.equal(ex.filter((r) => r.flags & FLAG_UNKNOWN).length, 76);
  assert.equal(ex.filter((r) => r.flags & FLAG_NO_RESPONSE).length, 0);
});

test('the header lists of one connection\'s open streams are bounded (1 MiB): 12 KiB requests flush the oldest', () => {
  const h = fresh();
  open(h, 1);
  const big = 'v'.repeat(12000);
  for (let i = 0; i < 200; i++) h.inst.feed(1, REQ, headers(1 + 2 * i, Buffer.concat([idx(2), idx(4), lit('x-big', big)]), true), 100n + BigInt(i));
  noTrap(h);
  const flushed = exchanges(h).length;
  assert.ok(flushed >= 200 - 88 && flushed <= 200 - 80, `${flushed} flushed`);
  h.inst.closeStream(1);
  assert.equal(exchanges(h).length, 200);
});

test('GOAWAY (RFC 9113 §6.8): client streams above the server\'s last stream id end at it, refused; a client\'s GOAWAY refuses nothing', () => {
  const goaway = (last: number, code = 0) => frame(T.GOAWAY, 0, 0, Buffer.from([last >>> 24, (last >>> 16) & 255, (last >>> 8) & 255, last & 255, 0, 0, 0, code]));
  const h = fresh();
  open(h, 1);
  for (const sid of [1, 3, 5]) h.inst.feed(1, REQ, headers(sid, Buffer.concat([idx(2), idx(4)]), true), 10n + BigInt(sid));
  h.inst.feed(1, REQ, goaway(0), 20n); // the client's: about pushed streams only
  assert.equal(exchanges(h).length, 0);
  h.inst.feed(1, RESP, goaway(1), 30n);
  h.inst.feed(1, REQ, headers(7, Buffer.concat([idx(2), idx(4)]), true), 40n); // opened before it saw the GOAWAY
  h.inst.feed(1, RESP, headers(1, idx(8), true), 50n);
  const got = exchanges(h).map((r) => [r.attributes['telegen.http2.stream_id'], r.attributes['http.response.status_code'], r.attributes['error.type'],
    r.flags & (FLAG_NO_RESPONSE | FLAG_ERROR), r.tsEnd]);
  assert.deepEqual(got, [
    [3, undefined, 'REFUSED_STREAM', FLAG_NO_RESPONSE | FLAG_ERROR, 30n],
    [5, undefined, 'REFUSED_STREAM', FLAG_NO_RESPONSE | FLAG_ERROR, 30n],
    [7, undefined, 'REFUSED_STREAM', FLAG_NO_RESPONSE | FLAG_ERROR, 40n],
    [1, 200, undefined, 0, 50n],
  ]);
});

test('fuzz: mutated and random input never traps, memory stays bounded', () => {
  const h = fresh();
  let seed = 12345;
  const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  const base = Buffer.concat(simpleExchange().map(([, b]) => b));
  const grpc = Buffer.concat([headers(1, GRPC_REQ('/a.B/C')), data(1, Buffer.concat([grpcMsg(5), grpcMsg(7, true)]), true)]);
  const before = h.inst.memoryBytes();
  for (let iter = 0; iter < 3000; iter++) {
    const src = iter % 2 ? base : Buffer.concat([PREFACE, grpc]);
    const b = Buffer.from(src);
    const flips = 1 + rnd(8);
    for (let k = 0; k < flips; k++) b[rnd(b.length)] = rnd(256);
    const stream = 100 + (iter % 17);
    const dir = rnd(2);
    if (iter % 5 === 0) h.inst.feed(stream, dir, Buffer.from(Array.from({ length: 1 + rnd(600) }, () => rnd(256))), BigInt(iter));
    else for (let i = 0; i < b.length;) { const n = 1 + rnd(64); h.inst.feed(stream, dir, b.subarray(i, i + n), BigInt(iter)); i += n; }
    if (iter % 11 === 0) h.inst.gap(stream, dir, rnd(300));
    if (iter % 13 === 0) h.inst.closeStream(stream);
  }
  for (let s = 100; s < 117; s++) h.inst.closeStream(s);
  noTrap(h);
  assert.ok(h.inst.memoryBytes() - before < 16 << 20, `memory grew by ${h.inst.memoryBytes() - before}`);
});

test('toTshark helper: our records in tshark-comparable form', () => {
  const h = grpcCall([[12, false]], [[30, false]]);
  const v = toTshark(h.records);
  assert.equal(v.length, 1);
  assert.equal(v[0].method, 'POST');
  assert.equal(v[0].path, '/helloworld.Greeter/SayHello');
  assert.equal(v[0].authority, 'localhost:50051');
  assert.equal(v[0].status, '200');
  assert.deepEqual(v[0].grpcLengths, [12, 30]);
  assert.equal(v[0].blocks.length, 3);
});

test('a header field that repeats (tracestate twice, a cookie split per RFC 9113 §8.2.3) is every value in order, as HTTP/1 gives it', () => {
  const h = fresh();
  open(h, 1);
  h.inst.feed(1, REQ, headers(1, reqBlock('GET', '/t', 'h', [['tracestate', 'a=1'], ['cookie', 'x=1'], ['tracestate', 'b=2'], ['cookie', 'y=2']]), true), 10n);
  h.inst.feed(1, RESP, headers(1, respBlock('200', [['set-cookie', 'p=1'], ['set-cookie', 'q=2']]), true), 20n);
  const a = exchanges(h)[0].attributes;
  assert.deepEqual(a['http.request.header.tracestate'], ['a=1', 'b=2']);
  assert.deepEqual(a['http.request.header.cookie'], ['REDACTED', 'REDACTED']);
  assert.deepEqual(a['http.response.header.set-cookie'], ['REDACTED', 'REDACTED']);
  assert.equal(a['http.request.header.traceparent'], undefined);
});

test('credentials (authorization, cookie, set-cookie) never leave the decoder in raw header lists', () => {
  const h = fresh();
  open(h, 1);
  h.inst.feed(1, REQ, headers(1, reqBlock('GET', '/me', 'h', [['authorization', 'Bearer s3cr3t'], ['cookie', 'sid=abc'], ['x-ok', 'visible']]), true), 10n);
  h.inst.feed(1, RESP, headers(1, respBlock('200', [['set-cookie', 'sid=def; HttpOnly']]), true), 20n);
  const ex = exchanges(h)[0];
  assert.deepEqual(pairs(ex, 'telegen.http2.request.headers').slice(4), [['authorization', 'REDACTED'], ['cookie', 'REDACTED'], ['x-ok', 'visible']]);
  assert.deepEqual(pairs(ex, 'telegen.http2.response.headers'), [[':status', '200'], ['set-cookie', 'REDACTED']]);
  assert.deepEqual(ex.attributes['http.request.header.authorization'], ['REDACTED']);
  assert.deepEqual(ex.attributes['http.response.header.set-cookie'], ['REDACTED']);
  assert.ok(!JSON.stringify(h.records, (_k, v) => typeof v === 'bigint' ? String(v) : v).includes('s3cr3t'));
});

test('hostile: an insert storm (thousands of evicting inserts in 64 KiB) stays fast and bounded', () => {
  const h = fresh();
  open(h, 1, settings([[1, 65536]]));
  const before = h.inst.memoryBytes();
  const parts: Buffer[] = [sizeUpdate(65536)];
  for (let i = 0; i < 100; i++) parts.push(litInc('x-storm', String(i).padStart(900, '0')));
  const block = Buffer.concat(parts);
  const t0 = Date.now();
  for (let r = 0; r < 100; r++) h.inst.feed(1, REQ, headers(1 + 2 * r, Buffer.concat([idx(2), r === 0 ? block : block.subarray(sizeUpdate(65536).length)]), true), BigInt(r));
  // 939-byte entries in 65536 bytes: the 69 newest (31..99) remain
  h.inst.feed(1, REQ, headers(201, Buffer.concat([idx(2), idx(62), idx(63), idx(62 + 68), idx(62 + 69)]), true), 200n);
  h.inst.closeStream(1);
  noTrap(h);
  assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
  const last = exchanges(h).find((r) => r.attributes['telegen.http2.stream_id'] === 201)!;
  assert.deepEqual(pairs(last, 'telegen.http2.request.headers'), [[':method', 'GET'],
    ['x-storm', '99'.padStart(900, '0')], ['x-storm', '98'.padStart(900, '0')], ['x-storm', '31'.padStart(900, '0')], ['<unknown>', '']]);
  // a 100-field block is longer than the 16 KiB kept per list: cut and flagged, not wrong
  const first = exchanges(h).find((r) => r.attributes['telegen.http2.stream_id'] === 1)!;
  assert.ok(first.flags & 8 /* FLAG_TRUNCATED */);
  assert.ok(h.inst.memoryBytes() - before < 4 << 20);
});

test('joined mid-connection with client/server guessed backwards: roles fixed by the first :status/:method', () => {
  const h = fresh();
  // The host thinks the server is the client (no handshake seen): server bytes arrive as REQUEST.
  h.inst.feed(1, REQ, data(5, grpcMsg(20)), 5n); // server DATA of a call already under way
  h.inst.feed(1, RESP, Buffer.concat([headers(7, reqBlock('POST', '/pkg.S/M', 'h', [['content-type', 'application/grpc']])), data(7, grpcMsg(3), true)]), 10n);
  h.inst.feed(1, REQ, Buffer.concat([headers(7, respBlock('200', [['content-type', 'application/grpc']])), data(7, grpcMsg(4)),
    headers(7, lit('grpc-status', '0'), true)]), 20n);
  const ex = exchanges(h);
  assert.equal(ex.length, 1);
  const a = ex[0].attributes;
  assert.equal(a['rpc.method'], 'M');
  assert.equal(a['http.response.status_code'], 200);
  assert.equal(a['rpc.grpc.status_code'], 0);
  assert.deepEqual([a['telegen.rpc.request.messages'], a['telegen.rpc.response.messages']], [1, 1]);
  assert.equal(ex[0].flags, 0);
});

test('gRPC inferred only from exact framing when content-type is an unknown table entry', () => {
  const run = (reqBody: Buffer, respBody: Buffer, p = '/a.B/C'): Record<string, unknown> => {
    const h = fresh();
    // joined: content-type (and more) come from table entries we never saw
    h.inst.feed(1, REQ, Buffer.concat([headers(1, Buffer.concat([idx(3), lit(':path', p), idx(70)])), data(1, reqBody, true)]), 10n);
    h.inst.feed(1, RESP, Buffer.concat([headers(1, Buffer.concat([idx(8), idx(71)])), data(1, respBody), headers(1, idx(72), true)]), 20n);
    return exchanges(h)[0].attributes;
  };
  let a = run(Buffer.concat([grpcMsg(3), grpcMsg(10)]), grpcMsg(7));
  assert.equal(a['rpc.system'], 'grpc');
  assert.equal(a['rpc.method'], 'C');
  assert.equal(a['telegen.rpc.request.messages'], 2);
  assert.equal(a['rpc.grpc.status_code'], undefined); // unknown, not guessed
  a = run(Buffer.from('{"json":true}'), Buffer.from('{"ok":1}'));
  assert.equal(a['rpc.system'], undefined);
  a = run(Buffer.concat([grpcMsg(3), Buffer.from([0, 0])]), grpcMsg(7)); // ends inside a prefix
  assert.equal(a['rpc.system'], undefined);
  a = run(grpcMsg(3), grpcMsg(7), '/api/items?x=1');
  assert.equal(a['rpc.system'], undefined);
});

test('a direction that never shows one frame in 1 MiB is refused (misdetected, not HTTP/2)', () => {
  const h = fresh();
  let r = 'ok';
  const text = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(200));
  for (let i = 0; i < 250 && r === 'ok'; i++) r = h.inst.feed(1, REQ, text, BigInt(i));
  assert.equal(r, 'invalid');
  noTrap(h);
  // a real connection that lost bytes keeps hunting as long as it takes
  const h2 = fresh();
  open(h2, 1);
  h2.inst.gap(1, REQ, 10);
  for (let i = 0; i < 60; i++) assert.equal(h2.inst.feed(1, REQ, text, BigInt(i)), 'ok');
  h2.inst.feed(1, REQ, headers(3, reqBlock('GET', '/back', 'h'), true), 100n);
  h2.inst.feed(1, RESP, headers(3, respBlock('200'), true), 101n);
  assert.equal(exchanges(h2).at(-1)?.attributes['url.path'], '/back');
});

test('hostile load: many connections with full 64 KiB HPACK tables and 1 MiB of open streams\' lists stay within decoder-wide budgets, no trap; closing gives them back', () => {
  // Each connection: both peers allow 64 KiB tables (SETTINGS_HEADER_TABLE_SIZE) and fill them
  // with 60 entries of 1 KB in a block split over CONTINUATION frames, then 860 streams stay
  // open with 1.1 KB header lists each (under the per-connection caps of 1024 streams, 1 MiB).
  // Before the budgets the module trapped at the 21st connection (its 32 MiB; again at the 41st),
  // and a trap resets every connection it decodes.
  const N = 60;
  const fill = (tag: string): Buffer => Buffer.concat(Array.from({ length: 60 }, (_, i) => litInc(`x-${tag}-${i}`, String(i % 10).repeat(1000))));
  const inFrames = (sid: number, block: Buffer, endStream: boolean): Buffer => {
    const parts: Buffer[] = [];
    for (let o = 0; o < block.length; o += 16000) {
      const last = o + 16000 >= block.length;
      parts.push(frame(o === 0 ? T.HEADERS : T.CONT, (last ? F.END_HEADERS : 0) | (o === 0 && endStream ? F.END_STREAM : 0), sid, block.subarray(o, o + 16000)));
    }
    return Buffer.concat(parts);
  };
  const openFull = (h: Harness, s: number, streams: number, ts: bigint): void => {
    h.inst.feed(s, REQ, Buffer.concat([PREFACE, settings([[1, 65536]])]), ts);
    h.inst.feed(s, RESP, settings([[1, 65536]]), ts);
    h.inst.feed(s, REQ, inFrames(1, Buffer.concat([sizeUpdate(65536), reqBlock('GET', '/fill', 'h'), fill('q')]), true), ts);
    h.inst.feed(s, RESP, inFrames(1, Buffer.concat([sizeUpdate(65536), lit(':status', '200'), fill('r')]), false), ts);
    const reqs: Buffer[] = [];
    for (let i = 0; i < streams; i++) reqs.push(headers(3 + 2 * i, Buffer.concat([idx(2), idx(4), lit('x-list', 'l'.repeat(1100))]), true));
    h.inst.feed(s, REQ, Buffer.concat(reqs), ts);
  };
  const h = fresh();
  for (let s = 1; s <= N; s++) openFull(h, s, 860, BigInt(s) * 1000n);
  noTrap(h);
  assert.ok(h.inst.memoryBytes() <= 32 * 1024 * 1024);
  assert.ok(h.logs.some((l) => /http2: budget/.test(l)), h.logs.join('\n'));
  // the last connection's tables could not be kept: its 60 KB block was not reassembled (HPACK
  // state lost), and of 36 entries of 400 bytes it inserts later its tables keep the newest that
  // fit the room they have: a field from an entry not held is unknown, never another one's
  const many = (tag: string): Buffer => Buffer.concat(Array.from({ length: 36 }, (_, i) => litInc(`x-${tag}${i}`, String(i % 10).repeat(400))));
  const ref = Buffer.concat([idx(62), ...Array.from({ length: 36 }, (_, k) => litIdx(63 + k, `${k}`))]);
  const want = (tag: string): Array<[string, string]> => [[`x-${tag}35`, '5'.repeat(400)],
    ...Array.from({ length: 35 }, (_, k): [string, string] => [`x-${tag}${34 - k}`, `${k}`]), [`x-${tag}-59`, '35']];
  h.inst.feed(N, REQ, headers(5001, Buffer.concat([idx(2), idx(4), many('q')]), true), 90_000n);
  h.inst.feed(N, RESP, headers(5001, Buffer.concat([idx(8), many('r')]), true), 90_001n);
  h.inst.feed(N, REQ, headers(5003, Buffer.concat([idx(2), idx(4), ref]), true), 90_002n);
  h.inst.feed(N, RESP, headers(5003, Buffer.concat([idx(8), ref]), true), 90_003n);
  const probe = exchanges(h).at(-1)!;
  for (const [list, tag, skip] of [['telegen.http2.request.headers', 'q', 2], ['telegen.http2.response.headers', 'r', 1]] as const) {
    const got = pairs(probe, list).slice(skip);
    const w = want(tag);
    assert.equal(got.length, w.length);
    got.forEach(([n, v], i) => assert.ok(n === w[i][0] ? v === w[i][1] : n === '<unknown>' && (v === w[i][1] || v === ''), `${list} ${i}: ${n}`));
    assert.deepEqual(got[0], w[0]); // the newest entry is held
    const firstUnknown = got.findIndex(([n]) => n === '<unknown>');
    assert.ok(firstUnknown > 0 && firstUnknown < 36, `${firstUnknown}`); // some of the 36 were not kept ...
    assert.ok(got.slice(firstUnknown).every(([n]) => n === '<unknown>')); // ... the oldest ones
  }
  assert.deepEqual([probe.flags & FLAG_UNKNOWN, probe.attributes['telegen.hpack.unknown']], [FLAG_UNKNOWN, true]);
  for (let s = 1; s <= N; s++) h.inst.closeStream(s);
  noTrap(h);
  // all given back: one more such connection keeps both full tables and every stream's list
  const before = exchanges(h).length;
  openFull(h, N + 1, 860, 100_000n);
  h.inst.feed(N + 1, REQ, headers(5001, Buffer.concat([idx(2), idx(4), idx(62), idx(62 + 59)]), true), 100_001n);
  h.inst.feed(N + 1, RESP, headers(5001, Buffer.concat([idx(8), idx(62), idx(62 + 59)]), true), 100_002n);
  const last = exchanges(h).at(-1)!;
  assert.deepEqual(pairs(last, 'telegen.http2.request.headers').slice(2), [['x-q-59', '9'.repeat(1000)], ['x-q-0', '0'.repeat(1000)]]);
  assert.deepEqual(pairs(last, 'telegen.http2.response.headers').slice(1), [['x-r-59', '9'.repeat(1000)], ['x-r-0', '0'.repeat(1000)]]);
  assert.equal(last.flags & (FLAG_UNKNOWN | FLAG_TRUNCATED), 0);
  assert.equal(exchanges(h).length, before + 1); // no stream of it was flushed early
  h.inst.closeStream(N + 1);
  assert.equal(exchanges(h).length, before + 1 + 861);
  noTrap(h);
});
