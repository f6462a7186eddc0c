// HTTP/1 decoder: exact records for the behaviours users rely on (decoders/http1).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { loadDecoder, Harness } from '../helpers/decoder';
import {
  KIND_EXCHANGE, KIND_UPGRADE, FLAG_ERROR, FLAG_NO_RESPONSE, FLAG_NO_REQUEST, FLAG_UNKNOWN, FLAG_TRUNCATED, FLAG_TIMEOUT,
  DIR_REQUEST as REQ, DIR_RESPONSE as RESP,
} from '../../decoders/abi/abi';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

const GET = 'GET /api/items?limit=10&sort=asc HTTP/1.1\r\n' +
  'Host: shop.example:8080\r\n' +
  'User-Agent: curl/8.5.0\r\n' +
  'Accept: */*\r\n' +
  'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n' +
  'tracestate: congo=t61rcWkgMzE\r\n' +
  'Authorization: Bearer secret-token\r\n' +
  '\r\n';
const OK = 'HTTP/1.1 200 OK\r\n' +
  'Content-Type: application/json\r\n' +
  'Content-Length: 13\r\n' +
  'Set-Cookie: a=1; Path=/\r\n' +
  'Set-Cookie: b=2\r\n' +
  '\r\n' +
  '{"items":[]}\n';

const GET_ATTRS = {
  'network.protocol.name': 'http',
  'network.protocol.version': '1.1',
  'http.request.method': 'GET',
  'url.path': '/api/items',
  'url.query': 'limit=10&sort=asc',
  'server.address': 'shop.example',
  'server.port': 8080,
  'user_agent.original': 'curl/8.5.0',
  'http.request.header.traceparent': ['00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'],
  'http.request.header.tracestate': ['congo=t61rcWkgMzE'],
  'http.request.header.authorization': ['Bearer secret-token'],
  'telegen.request.size': GET.length,
  'http.response.status_code': 200,
  'http.response.header.content-type': ['application/json'],
  'http.response.header.set-cookie': ['a=1; Path=/', 'b=2'],
  'http.response.body.size': 13,
  'telegen.response.size': OK.length,
};

function exchanges(h: Harness) {
  return h.records.filter((r) => r.kind === KIND_EXCHANGE);
}

test('a GET with its response: one exchange with exact attributes and timestamps', () => {
  const h = loadDecoder('http1');
  assert.equal(h.inst.feed(7, REQ, b(GET), 1_000n), 'ok');
  assert.equal(h.records.length, 0, 'nothing is emitted before the response');
  assert.equal(h.inst.feed(7, RESP, b(OK), 5_000n), 'ok');
  assert.equal(h.records.length, 1);
  const r = h.records[0];
  assert.equal(r.kind, KIND_EXCHANGE);
  assert.equal(r.flags, 0);
  assert.equal(r.stream, 7);
  assert.equal(r.tsStart, 1_000n);
  assert.equal(r.tsEnd, 5_000n);
  assert.deepEqual(r.attributes, GET_ATTRS);
});

test('every split point of request and response gives the same exchange', () => {
  const req = b(GET), resp = b(OK);
  const want = (() => {
    const h = loadDecoder('http1');
    h.inst.feed(1, REQ, req, 10n);
    h.inst.feed(1, RESP, resp, 20n);
    return h.records[0].attributes;
  })();
  const h = loadDecoder('http1');
  let stream = 0;
  for (let i = 1; i < req.length; i++) {
    stream++;
    assert.equal(h.inst.feed(stream, REQ, req.subarray(0, i), 10n), 'ok');
    assert.equal(h.inst.feed(stream, REQ, req.subarray(i), 11n), 'ok');
    assert.equal(h.inst.feed(stream, RESP, resp, 20n), 'ok');
    h.inst.closeStream(stream);
  }
  for (let i = 1; i < resp.length; i++) {
    stream++;
    h.inst.feed(stream, REQ, req, 10n);
    assert.equal(h.inst.feed(stream, RESP, resp.subarray(0, i), 20n), 'ok');
    assert.equal(h.records.length, stream - 1, `split at ${i}: no record before the body ends`);
    assert.equal(h.inst.feed(stream, RESP, resp.subarray(i), 21n), 'ok');
    h.inst.closeStream(stream);
  }
  assert.equal(h.records.length, stream);
  for (const r of h.records) {
    assert.deepEqual(r.attributes, want);
    assert.equal(r.flags, 0);
    assert.equal(r.tsStart, 10n, 'the request starts at its first byte');
  }
});

test('one byte per read, both directions', () => {
  const h = loadDecoder('http1');
  const req = b(GET), resp = b(OK);
  for (let i = 0; i < req.length; i++) h.inst.feed(3, REQ, req.subarray(i, i + 1), 100n + BigInt(i));
  for (let i = 0; i < resp.length; i++) h.inst.feed(3, RESP, resp.subarray(i, i + 1), 1000n + BigInt(i));
  assert.equal(h.records.length, 1);
  assert.deepEqual(h.records[0].attributes, GET_ATTRS);
  assert.equal(h.records[0].tsStart, 100n);
  assert.equal(h.records[0].tsEnd, 1000n + BigInt(resp.length - 1));
});

test('pipelining: 5 requests before any response are matched in order', () => {
  const h = loadDecoder('http1');
  const STATUSES = [200, 201, 202, 203, 404];
  let reqs = '';
  let resps = '';
  for (let i = 0; i < 5; i++) {
    reqs += `GET /r${i} HTTP/1.1\r\nHost: p.example\r\n\r\n`;
    const body = 'x'.repeat(i * 3);
    resps += `HTTP/1.1 ${STATUSES[i]} S${i}\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
  }
  assert.equal(h.inst.feed(1, REQ, b(reqs), 10n), 'ok');
  // responses arrive in odd-sized pieces
  const rb = b(resps);
  for (let i = 0; i < rb.length; i += 7) h.inst.feed(1, RESP, rb.subarray(i, i + 7), 100n + BigInt(i));
  const ex = exchanges(h);
  assert.equal(ex.length, 5);
  ex.forEach((r, i) => {
    assert.equal(r.attributes['url.path'], `/r${i}`);
    assert.equal(r.attributes['http.response.status_code'], STATUSES[i]);
    assert.equal(r.attributes['http.response.body.size'], i * 3);
    assert.equal(r.attributes['server.address'], 'p.example');
    assert.equal(r.flags, 0);
  });
});

test('keep-alive: 200 exchanges on one connection', () => {
  const h = loadDecoder('http1');
  for (let i = 0; i < 200; i++) {
    h.inst.feed(9, REQ, b(`POST /n/${i} HTTP/1.1\r\nHost: k\r\nContent-Length: 2\r\n\r\nhi`), BigInt(i * 10));
    h.inst.feed(9, RESP, b('HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n'), BigInt(i * 10 + 5));
  }
  const ex = exchanges(h);
  assert.equal(ex.length, 200);
  assert.equal(ex[199].attributes['url.path'], '/n/199');
  assert.equal(ex[199].attributes['http.request.body.size'], 2);
  assert.equal(ex[199].attributes['http.response.body.size'], 0);
  assert.equal(ex[199].tsStart, 1990n);
  assert.equal(ex[199].tsEnd, 1995n);
});

test('chunked bodies with extensions and trailers: decoded size excludes the framing', () => {
  const reqBody = '4;name=val\r\nWiki\r\n5\r\npedia\r\nE ; ext\r\n in\r\n\r\nchunks.\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n';
  const req = 'POST /upload HTTP/1.1\r\nHost: up.example\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n' + reqBody;
  const resp = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Encoding: gzip\r\n\r\n' +
    '1a\r\n' + 'a'.repeat(26) + '\r\n0\r\n\r\n';
  for (const chunk of [1, 3, 1000]) {
    const h = loadDecoder('http1');
    const rq = b(req), rs = b(resp);
    for (let i = 0; i < rq.length; i += chunk) assert.equal(h.inst.feed(1, REQ, rq.subarray(i, i + chunk), 1n), 'ok');
    for (let i = 0; i < rs.length; i += chunk) assert.equal(h.inst.feed(1, RESP, rs.subarray(i, i + chunk), 2n), 'ok');
    assert.equal(h.records.length, 1, `chunk ${chunk}`);
    assert.deepEqual(h.records[0].attributes, {
      'network.protocol.name': 'http',
      'network.protocol.version': '1.1',
      'http.request.method': 'POST',
      'url.path': '/upload',
      'server.address': 'up.example',
      'http.request.header.transfer-encoding': ['chunked'],
      'http.request.header.content-type': ['text/plain'],
      'http.request.body.size': 23,
      'telegen.request.size': req.length,
      'http.response.status_code': 200,
      'http.response.header.transfer-encoding': ['gzip, chunked'],
      'http.response.header.content-encoding': ['gzip'],
      'http.response.body.size': 26,
      'telegen.response.size': resp.length,
    });
  }
});

test('100-continue: the final response completes the exchange with its status', () => {
  const h = loadDecoder('http1');
  h.inst.feed(2, REQ, b('PUT /f HTTP/1.1\r\nHost: s\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n'), 10n);
  h.inst.feed(2, RESP, b('HTTP/1.1 100 Continue\r\n\r\n'), 20n);
  assert.equal(h.records.length, 0);
  h.inst.feed(2, REQ, b('data'), 30n);
  h.inst.feed(2, RESP, b('HTTP/1.1 204 No Content\r\n\r\n'), 40n);
  assert.equal(h.records.length, 1);
  const r = h.records[0];
  assert.equal(r.attributes['http.response.status_code'], 204);
  assert.equal(r.attributes['http.request.body.size'], 4);
  assert.equal(r.attributes['http.response.body.size'], undefined, '204 has no body');
  assert.equal(r.tsStart, 10n);
  assert.equal(r.tsEnd, 40n);
  // 100 and the final response in one read
  const h2 = loadDecoder('http1');
  h2.inst.feed(2, REQ, b('POST / HTTP/1.1\r\nHost: s\r\nContent-Length: 1\r\n\r\nz'), 1n);
  h2.inst.feed(2, RESP, b('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'), 2n);
  assert.equal(h2.records.length, 1);
  assert.equal(h2.records[0].attributes['http.response.status_code'], 200);
  assert.equal(h2.records[0].attributes['http.response.body.size'], 2);
});

function upgradeCase(respUpgrade: string, expectNext: string, reqUpgrade: string) {
  const h = loadDecoder('http1');
  const req = `GET /chat HTTP/1.1\r\nHost: ws.example\r\nConnection: Upgrade\r\nUpgrade: ${reqUpgrade}\r\n\r\n`;
  assert.equal(h.inst.feed(4, REQ, b(req), 10n), 'ok');
  const resp = `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${respUpgrade}\r\n\r\n`;
  // the new protocol's first bytes arrive in the same read as the 101
  assert.equal(h.inst.feed(4, RESP, Buffer.concat([b(resp), Buffer.from([0x00, 0x00, 0x12, 0x04, 0x00])]), 20n), 'ignored');
  assert.equal(h.records.length, 2);
  const [ex, up] = h.records;
  assert.equal(ex.kind, KIND_EXCHANGE);
  assert.deepEqual(ex.attributes, {
    'network.protocol.name': 'http',
    'network.protocol.version': '1.1',
    'http.request.method': 'GET',
    'url.path': '/chat',
    'server.address': 'ws.example',
    'http.request.header.upgrade': [reqUpgrade],
    'telegen.request.size': req.length,
    'http.response.status_code': 101,
    'telegen.response.size': resp.length,
  });
  assert.equal(ex.tsEnd, 20n);
  assert.equal(up.kind, KIND_UPGRADE);
  assert.equal(up.stream, 4);
  assert.deepEqual(up.attributes, { 'network.protocol.name': 'http', 'telegen.protocol.next': expectNext });
  // further bytes either way are not HTTP/1 any more
  assert.equal(h.inst.feed(4, REQ, b('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), 30n), 'ignored');
  assert.equal(h.inst.feed(4, RESP, Buffer.from([0x81, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f]), 40n), 'ignored');
  h.inst.closeStream(4);
  assert.equal(h.records.length, 2, 'close after an upgrade emits nothing more');
}

test('101 Switching Protocols to h2c: no HTTP/1 exchange, KIND_UPGRADE h2c carrying the request (stream 1 of HTTP/2), then IGNORED', () => {
  const h = loadDecoder('http1');
  const req = 'POST /submit?x=1 HTTP/1.1\r\nHost: h2.example\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\nContent-Length: 5\r\n\r\n';
  assert.equal(h.inst.feed(4, REQ, b(req + 'he'), 10n), 'ok');
  assert.equal(h.inst.feed(4, REQ, b('llo'), 11n), 'ok');
  const resp = 'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n';
  assert.equal(h.inst.feed(4, RESP, Buffer.concat([b(resp), Buffer.from([0x00, 0x00, 0x12, 0x04, 0x00])]), 20n), 'ignored');
  assert.deepEqual(h.records.map((r) => r.kind), [KIND_UPGRADE]);
  const up = h.records[0];
  assert.deepEqual([up.stream, up.tsStart, up.tsEnd], [4, 10n, 20n]);
  assert.deepEqual(up.attributes, {
    'network.protocol.name': 'http', 'telegen.protocol.next': 'h2c',
    // what stream 1 needs: the request line, the fields HTTP/2 keeps, the sizes (the body is
    // counted, not copied)
    'telegen.upgrade.request': Buffer.from('POST /submit?x=1 HTTP/1.1\r\nHost: h2.example\r\nContent-Length: 5\r\n' +
      `:telegen-h1: ${req.length + 5} 5 0\r\n\r\n`, 'latin1').toString('base64'),
  });
  assert.equal(h.inst.feed(4, REQ, b('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), 21n), 'ignored');
});

/** The hand-over of an h2c upgrade (KIND_UPGRADE), decoded. */
function handover(h: Harness): string {
  const ups = h.records.filter((r) => r.kind === KIND_UPGRADE);
  assert.equal(ups.length, 1);
  const a = ups[0].attributes;
  // in pieces of one record field each, joined by the host
  const b64 = ['', '.1', '.2', '.3'].map((s) => a[`telegen.upgrade.request${s}`] ?? '').join('');
  return Buffer.from(b64, 'base64').toString('latin1');
}

test('h2c upgrade requests of any size or framing are handed over: large body, chunked, 12 and 28 KiB of fields, a 14 KiB target', () => {
  const big = 'y'.repeat(4000);
  const six = ['X-1', 'X-2', 'X-3', 'X-4', 'X-5', 'X-6', 'X-7'].map((n) => `${n}: ${big}`);
  const cases: Array<[string, string[], number, boolean]> = [
    // [request, lines expected in the hand-over (before the sizes), body size, fields left out]
    ['POST /big HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nContent-Length: 7000\r\n\r\n' + 'x'.repeat(7000),
      ['POST /big HTTP/1.1', 'Host: h', 'Content-Length: 7000'], 7000, false],
    ['POST /c HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
      ['POST /c HTTP/1.1', 'Host: h'], 3, false],
    // 12 KiB of fields: walked in pieces (PH_HEAD_MORE), handed over in two record fields
    [`GET /f HTTP/1.1\r\nHost: h\r\nX-A: ${big}\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nX-B: ${big}\r\nX-C: ${big}\r\nAccept: */*\r\n\r\n`,
      ['GET /f HTTP/1.1', 'Host: h', `X-A: ${big}`, `X-B: ${big}`, `X-C: ${big}`, 'Accept: */*'], 0, false],
    // 28 KiB: the fields after the copy is full are left out, a small one after them still taken
    [`GET /f HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\n${six.join('\r\n')}\r\nAccept: */*\r\n\r\n`,
      ['GET /f HTTP/1.1', 'Host: h', ...six.slice(0, 6), 'Accept: */*'], 0, true],
    [`GET /${'p'.repeat(14000)}?q=1 HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\n\r\n`,
      [`GET /${'p'.repeat(12242)} HTTP/1.1`, 'Host: h'], 0, true],
  ];
  for (const [req, lines, body, cut] of cases) {
    for (const split of [0, 1000, 9000]) {
      const h = loadDecoder('http1');
      const r = b(req);
      if (split > 0 && split < r.length) h.inst.feed(4, REQ, r.subarray(0, split), 10n);
      h.inst.feed(4, REQ, split > 0 && split < r.length ? r.subarray(split) : r, 11n);
      h.inst.feed(4, RESP, b('HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n'), 20n);
      assert.deepEqual(h.records.map((x) => x.kind), [KIND_UPGRADE], `${req.slice(0, 20)} split ${split}`);
      assert.equal(handover(h), lines.join('\r\n') + `\r\n:telegen-h1: ${r.length} ${body} ${cut ? 1 : 0}\r\n\r\n`);
    }
  }
});

test('101 to websocket (mixed case): KIND_UPGRADE websocket', () => {
  upgradeCase('WebSocket', 'websocket', 'websocket');
});

test('upgrade request whose preface bytes arrive before the 101 is decided', () => {
  const h = loadDecoder('http1');
  const req = 'GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n';
  // client sends the preface optimistically in the same segment
  assert.equal(h.inst.feed(5, REQ, b(req + 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), 1n), 'ok');
  assert.equal(h.inst.feed(5, RESP, b('HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n'), 2n), 'ok');
  assert.equal(h.records.map((r) => r.kind).join(), `${KIND_UPGRADE}`);
  assert.equal(handover(h), `GET / HTTP/1.1\r\nHost: h\r\n:telegen-h1: ${req.length} 0 0\r\n\r\n`);
  // the preface was held back, not consumed: the host hands it to the http2 decoder
  assert.equal(Buffer.from(h.inst.takePending(5, REQ)!).toString('latin1'), 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
  assert.equal(h.inst.feed(5, REQ, Buffer.from([0, 0, 0, 4, 1, 0, 0, 0, 0]), 3n), 'ignored');
});

test('upgrade declined (200): the connection stays HTTP/1', () => {
  const h = loadDecoder('http1');
  h.inst.feed(5, REQ, b('GET /a HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\n\r\n'), 1n);
  h.inst.feed(5, RESP, b('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'), 2n);
  h.inst.feed(5, REQ, b('GET /b HTTP/1.1\r\nHost: h\r\n\r\n'), 3n);
  h.inst.feed(5, RESP, b('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n'), 4n);
  const ex = exchanges(h);
  assert.deepEqual(ex.map((r) => [r.attributes['url.path'], r.attributes['http.response.status_code']]), [['/a', 200], ['/b', 404]]);
});

test('CONNECT 200: exchange with the tunnel destination, KIND_UPGRADE tunnel', () => {
  const h = loadDecoder('http1');
  const req = 'CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\n';
  h.inst.feed(6, REQ, b(req), 1n);
  assert.equal(h.inst.feed(6, RESP, b('HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01'), 2n), 'ignored');
  assert.equal(h.records.length, 2);
  assert.deepEqual(h.records[0].attributes, {
    'network.protocol.name': 'http', 'network.protocol.version': '1.1',
    'http.request.method': 'CONNECT', 'server.address': 'db.internal', 'server.port': 5432,
    'telegen.request.size': req.length, 'http.response.status_code': 200,
    'telegen.response.size': 'HTTP/1.1 200 Connection established\r\n\r\n'.length,
  });
  assert.equal(h.records[1].attributes['telegen.protocol.next'], 'tunnel');
});

test('HEAD, 204 and 304 responses have no body even with Content-Length', () => {
  const h = loadDecoder('http1');
  h.inst.feed(1, REQ, b('HEAD /big HTTP/1.1\r\nHost: h\r\n\r\nGET /nc HTTP/1.1\r\nHost: h\r\nIf-None-Match: "x"\r\n\r\nDELETE /d HTTP/1.1\r\nHost: h\r\n\r\n'), 1n);
  h.inst.feed(1, RESP, b('HTTP/1.1 200 OK\r\nContent-Length: 123456\r\nContent-Type: video/mp4\r\n\r\n' +
    'HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n' +
    'HTTP/1.1 204 No Content\r\n\r\n'), 2n);
  const ex = exchanges(h);
  assert.deepEqual(ex.map((r) => [r.attributes['http.request.method'], r.attributes['http.response.status_code'], r.attributes['http.response.body.size']]),
    [['HEAD', 200, undefined], ['GET', 304, undefined], ['DELETE', 204, undefined]]);
  assert.deepEqual(ex[0].attributes['http.response.header.content-type'], ['video/mp4']);
});

test('a response without length is delimited by the connection close', () => {
  const h = loadDecoder('http1');
  h.inst.feed(8, REQ, b('GET /old HTTP/1.0\r\nHost: legacy\r\n\r\n'), 1n);
  h.inst.feed(8, RESP, b('HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<html>'), 2n);
  h.inst.feed(8, RESP, b('x'.repeat(1000) + '</html>'), 3n);
  assert.equal(h.records.length, 0);
  h.inst.closeStream(8);
  assert.equal(h.records.length, 1);
  const r = h.records[0];
  assert.equal(r.flags, 0);
  assert.equal(r.tsEnd, 3n);
  assert.equal(r.attributes['network.protocol.version'], '1.0');
  assert.equal(r.attributes['http.response.body.size'], 1013);
});

test('a 2 MB body fed in pieces, and the same with part of it lost (gap)', () => {
  const size = 2 * 1024 * 1024;
  const body = Buffer.alloc(size, 0x61);
  const head = b(`POST /blob HTTP/1.1\r\nHost: big\r\nContent-Length: ${size}\r\n\r\n`);
  const resp = b(`HTTP/1.1 200 OK\r\nContent-Length: ${size}\r\n\r\n`);
  const h = loadDecoder('http1');
  const mem0 = h.inst.memoryBytes();
  h.inst.feed(1, REQ, head, 1n);
  for (let i = 0; i < size; i += 65536) assert.equal(h.inst.feed(1, REQ, body.subarray(i, i + 65536), 2n), 'ok');
  h.inst.feed(1, RESP, resp, 3n);
  for (let i = 0; i < size; i += 100_000) assert.equal(h.inst.feed(1, RESP, body.subarray(i, i + 100_000), 4n), 'ok');
  assert.equal(h.records.length, 1);
  assert.equal(h.records[0].attributes['http.request.body.size'], size);
  assert.equal(h.records[0].attributes['http.response.body.size'], size);
  assert.equal(h.inst.memoryBytes(), mem0, 'bodies are skipped, not buffered');

  // the middle 1.5 MB of each body never reached the decoder
  const g = loadDecoder('http1');
  g.inst.feed(1, REQ, Buffer.concat([head, body.subarray(0, 1000)]), 1n);
  assert.equal(g.inst.gap(1, REQ, 1_500_000), 'ok');
  g.inst.feed(1, REQ, body.subarray(1_501_000), 2n);
  g.inst.feed(1, RESP, Buffer.concat([resp, body.subarray(0, 10)]), 3n);
  assert.equal(g.inst.gap(1, RESP, size - 10), 'ok', 'a gap that ends the body exactly');
  assert.equal(g.records.length, 1);
  assert.equal(g.records[0].attributes['http.request.body.size'], size);
  assert.equal(g.records[0].attributes['http.response.body.size'], size);
  // the connection goes on after the gap
  g.inst.feed(1, REQ, b('GET /next HTTP/1.1\r\nHost: big\r\n\r\n'), 5n);
  g.inst.feed(1, RESP, b('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'), 6n);
  assert.equal(g.records.length, 2);
  assert.equal(g.records[1].attributes['url.path'], '/next');
});

test('keep-alive with bodies sent by sendfile (nginx static files): each next request ends the unseen body, no exchange lost', () => {
  // What the socket tracer shows of nginx (sendfile on) serving 3 files on one connection: each
  // response head (writev), never its body (sendfile is not captured), then the next request.
  const head = (status: string, len: number, extra = '') => b(`HTTP/1.1 ${status}\r\nServer: nginx/1.22.1\r\nDate: Sun, 29 Nov 2026 03:31:59 GMT\r\n` +
    `Content-Type: application/octet-stream\r\nContent-Length: ${len}\r\nLast-Modified: Sun, 29 Nov 2026 03:31:58 GMT\r\nConnection: keep-alive\r\n${extra}Accept-Ranges: bytes\r\n\r\n`);
  const get = (path: string, extra = '') => b(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:18081\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n${extra}\r\n`);
  const h = loadDecoder('http1');
  const heads = [head('200 OK', 12), head('200 OK', 5_000_000), head('206 Partial Content', 100, 'Content-Range: bytes 100-199/5000000\r\n'), head('200 OK', 12)];
  const paths = ['/small.txt', '/big.bin', '/big.bin', '/small.txt'];
  for (let i = 0; i < 4; i++) {
    assert.equal(h.inst.feed(3, REQ, get(paths[i], i === 2 ? 'Range: bytes=100-199\r\n' : ''), BigInt(100 * i + 10)), 'ok');
    assert.equal(h.inst.feed(3, RESP, heads[i], BigInt(100 * i + 20)), 'ok');
  }
  // the last one: the client closed after it (nothing tells whether the body went out)
  h.inst.closeStream(3);
  const ex = exchanges(h);
  assert.deepEqual(ex.map((r) => [r.attributes['url.path'], r.attributes['http.response.status_code'], r.attributes['http.response.body.size'], r.flags]), [
    ['/small.txt', 200, 12, 0],
    ['/big.bin', 200, 5_000_000, 0],
    ['/big.bin', 206, 100, 0],
    ['/small.txt', 200, 0, FLAG_UNKNOWN],
  ]);
  assert.equal(ex[1].attributes['telegen.response.size'], heads[1].length + 5_000_000);
  assert.deepEqual(ex.map((r) => [r.tsStart, r.tsEnd]).slice(0, 3), [[10n, 20n], [110n, 120n], [210n, 220n]], 'each ends at its head, the last byte seen');

  // A pipelining client (requests sent before the response head) still waits for the body.
  const p = loadDecoder('http1');
  p.inst.feed(4, REQ, Buffer.concat([get('/a'), get('/b')]), 1n);
  p.inst.feed(4, RESP, head('200 OK', 5), 2n);
  p.inst.feed(4, RESP, Buffer.concat([b('hello'), head('200 OK', 3), b('abc')]), 3n);
  assert.deepEqual(exchanges(p).map((r) => [r.attributes['url.path'], r.attributes['http.response.body.size'], r.flags]), [['/a', 5, 0], ['/b', 3, 0]]);
});

test('bodies sent by sendfile come as gaps with their syscall\'s time: each exchange ends at its last sendfile with its exact body size', () => {
  // What the socket tracer reports of nginx (sendfile on) and Go's ServeContent on one keep-alive
  // connection: a head (writev), then the body as sendfile records without payload (gap_at).
  const h = loadDecoder('http1');
  const get = (p: string) => b(`GET ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  const head = (len: number) => b(`HTTP/1.1 200 OK\r\nContent-Length: ${len}\r\n\r\n`);
  h.inst.feed(5, REQ, get('/3mb'), 10n);
  h.inst.feed(5, RESP, head(3_000_000), 20n);
  assert.equal(h.inst.gap(5, RESP, 2_000_000, 30n), 'ok');
  assert.equal(h.records.length, 0, 'a million bytes still to come');
  assert.equal(h.inst.gap(5, RESP, 1_000_000, 40n), 'ok');
  // Go: the head and the first 512 bytes by write, the rest by sendfile
  h.inst.feed(5, REQ, get('/go'), 50n);
  h.inst.feed(5, RESP, Buffer.concat([head(10_240), Buffer.alloc(512, 0x61)]), 60n);
  assert.equal(h.inst.gap(5, RESP, 10_240 - 512, 70n), 'ok');
  // the last one on the connection: complete before the close
  h.inst.feed(5, REQ, get('/10k'), 80n);
  h.inst.feed(5, RESP, head(10_240), 90n);
  assert.equal(h.inst.gap(5, RESP, 10_240, 100n), 'ok');
  h.inst.closeStream(5);
  assert.deepEqual(exchanges(h).map((r) => [r.attributes['url.path'], r.attributes['http.response.body.size'], r.flags, r.tsStart, r.tsEnd]), [
    ['/3mb', 3_000_000, 0, 10n, 40n],
    ['/go', 10_240, 0, 50n, 70n],
    ['/10k', 10_240, 0, 80n, 100n],
  ]);
});

test('gap: absorbed in chunk data and close-delimited bodies, refused in headers or past the body', () => {
  const h = loadDecoder('http1');
  h.inst.feed(1, REQ, b('GET / HTTP/1.1\r\nHost: a\r\n\r\n'), 1n);
  h.inst.feed(1, RESP, b('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n400\r\nabc'), 2n);
  assert.equal(h.inst.gap(1, RESP, 1000), 'ok');
  h.inst.feed(1, RESP, b('y'.repeat(21) + '\r\n0\r\n\r\n'), 3n);
  assert.equal(h.records.length, 1);
  assert.equal(h.records[0].attributes['http.response.body.size'], 1024);

  const c = loadDecoder('http1');
  c.inst.feed(1, REQ, b('GET / HTTP/1.1\r\nHost: a\r\n\r\n'), 1n);
  c.inst.feed(1, RESP, b('HTTP/1.1 200 OK\r\n\r\nabc'), 2n);
  assert.equal(c.inst.gap(1, RESP, 5000), 'ok');
  c.inst.closeStream(1);
  assert.equal(c.records[0].attributes['http.response.body.size'], 5003);

  const x = loadDecoder('http1');
  x.inst.feed(1, REQ, b('GET / HTTP/1.1\r\nHost: a\r\n\r\n'), 1n);
  assert.equal(x.inst.gap(1, RESP, 10), 'invalid', 'lost bytes where a status line was due');
  const y = loadDecoder('http1');
  y.inst.feed(1, REQ, b('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n12345'), 1n);
  assert.equal(y.inst.gap(1, REQ, 6), 'invalid', 'more bytes lost than the body had left');
});

// A read longer than the capture (16 KiB) holding several chunks is the usual gap in a chunked
// body: the chunk-size lines it took are gone. Before, that reset the stream (the exchange ended
// at the gap, and 16 such resets gave the connection up).
test('gap across chunk boundaries: the body is skipped to its last chunk, the exchange ends there (UNKNOWN) and the connection goes on', () => {
  const head = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n';
  const chunk = (n: number, c = 'x') => n.toString(16) + '\r\n' + c.repeat(n) + '\r\n';
  const body = chunk(8192) + chunk(8192) + chunk(8192) + chunk(700);
  const req = 'GET /stream HTTP/1.1\r\nHost: a\r\n\r\n';
  // the terminator in the same read as the body's last bytes, and in a read of its own (Node's res.end())
  for (const split of ['tail', 'alone'] as const) {
    const h = loadDecoder('http1');
    assert.equal(h.inst.feed(1, REQ, b(req), 10n), 'ok');
    const first = head + body.slice(0, 16384 - head.length);
    assert.equal(h.inst.feed(1, RESP, b(first), 20n), 'ok');
    const lost = split === 'tail' ? body.length - (16384 - head.length) - 12 : body.length - (16384 - head.length);
    assert.equal(h.inst.gap(1, RESP, lost), 'ok', 'a gap past the current chunk is absorbed');
    assert.equal(h.records.length, 0, 'the body is not over yet');
    assert.equal(h.inst.feed(1, RESP, b(split === 'tail' ? body.slice(-12) + '0\r\n\r\n' : '0\r\n\r\n'), 30n), 'ok');
    assert.equal(h.records.length, 1);
    const r = h.records[0];
    assert.equal(r.flags, FLAG_UNKNOWN);
    assert.equal(r.tsStart, 10n);
    assert.equal(r.tsEnd, 30n, 'the exchange ends with its last chunk, not at the gap');
    assert.equal(r.attributes['http.response.status_code'], 200);
    assert.equal(r.attributes['telegen.response.size'], head.length + body.length + 5, 'wire bytes are exact');
    assert.equal(h.inst.counters.gapResets, 0);
    // the next exchange on the connection decodes exactly
    assert.equal(h.inst.feed(1, REQ, b(req), 40n), 'ok');
    assert.equal(h.inst.feed(1, RESP, b(head + chunk(5) + '0\r\n\r\n'), 50n), 'ok');
    assert.equal(h.records.length, 2);
    assert.equal(h.records[1].flags, 0);
    assert.equal(h.records[1].attributes['http.response.body.size'], 5);
  }

  // one gap per read, a terminator split across reads, a chunk-size line held when the gap came
  const h = loadDecoder('http1');
  h.inst.feed(3, REQ, b(req), 1n);
  h.inst.feed(3, RESP, b(head + '2000\r\n' + 'y'.repeat(100)), 2n);
  assert.equal(h.inst.gap(3, RESP, 9000), 'ok');
  for (let i = 0; i < 5; i++) {
    assert.equal(h.inst.feed(3, RESP, b('z'.repeat(16384)), BigInt(3 + i)), 'ok');
    assert.equal(h.inst.gap(3, RESP, 50_000), 'ok');
  }
  assert.equal(h.inst.feed(3, RESP, b('zz\r\n1'), 9n), 'ok', 'a chunk-size line cut by the read');
  assert.equal(h.inst.gap(3, RESP, 70_000), 'ok');
  assert.equal(h.inst.feed(3, RESP, b('abc\r\n0\r'), 10n), 'ok');
  assert.equal(h.records.length, 0);
  assert.equal(h.inst.feed(3, RESP, b('\n\r\n'), 11n), 'ok');
  assert.equal(h.records.length, 1);
  assert.equal(h.records[0].tsEnd, 11n);
  assert.equal(h.records[0].flags, FLAG_UNKNOWN);
  assert.equal(h.inst.counters.gapResets, 0);

  // the last chunk lost in the gap too (a long read held the body's end): the client's next
  // request ends the response, at the last bytes seen before it
  const n = loadDecoder('http1');
  n.inst.feed(5, REQ, b(req), 1n);
  n.inst.feed(5, RESP, b(head + '4000\r\n' + 'q'.repeat(1000)), 2n);
  assert.equal(n.inst.gap(5, RESP, 40_000), 'ok');
  n.inst.feed(5, RESP, b('q'.repeat(16384)), 3n);
  assert.equal(n.inst.gap(5, RESP, 30_000), 'ok');
  assert.equal(n.records.length, 0);
  n.inst.feed(5, REQ, b(req), 9n);
  assert.equal(n.records.length, 1);
  assert.equal(n.records[0].tsEnd, 3n);
  assert.equal(n.records[0].flags, FLAG_UNKNOWN);
  n.inst.feed(5, RESP, b(head + chunk(3) + '0\r\n\r\n'), 10n);
  assert.equal(n.records.length, 2);
  assert.equal(n.records[1].flags, 0);
  assert.equal(n.records[1].attributes['http.response.body.size'], 3);

  // a writev with more iovecs than the capture walks: exactly the body's end lost ("\r\n" after
  // the chunk, "0\r\n\r\n"): the message ends at the gap, its body size exact
  for (const [fed, lost] of [['5\r\nhello', 7], ['5\r\nhello\r\n', 5], ['5\r\nhel', 9]] as const) {
    const w = loadDecoder('http1');
    w.inst.feed(1, REQ, b(req), 1n);
    assert.equal(w.inst.feed(1, RESP, b(head + fed), 2n), 'ok');
    assert.equal(w.inst.gap(1, RESP, lost), 'ok');
    assert.equal(w.records.length, 1, `${JSON.stringify(fed)} + ${lost} lost`);
    assert.equal(w.records[0].tsEnd, 2n);
    assert.equal(w.records[0].attributes['http.response.body.size'], 5);
    assert.equal(w.records[0].attributes['telegen.response.size'], head.length + fed.length + lost);
    assert.equal(w.inst.feed(1, REQ, b(req), 3n), 'ok');
    assert.equal(w.inst.feed(1, RESP, b(OK), 4n), 'ok');
    assert.equal(w.records.length, 2);
  }

  // the connection closing while the framing is lost: emitted at close, as before
  const c = loadDecoder('http1');
  c.inst.feed(1, REQ, b(req), 1n);
  c.inst.feed(1, RESP, b(head + '10\r\nabc'), 2n);
  assert.equal(c.inst.gap(1, RESP, 5000), 'ok');
  c.inst.closeStream(1);
  assert.equal(c.records.length, 1);
  assert.equal(c.records[0].flags, FLAG_UNKNOWN);
});

test('a 10 MB header block is refused without trapping or growing memory', () => {
  const h = loadDecoder('http1');
  const mem0 = h.inst.memoryBytes();
  const line = b('X-Filler: ' + 'f'.repeat(1000) + '\r\n');
  const results = new Set<string>();
  results.add(h.inst.feed(1, REQ, b('GET / HTTP/1.1\r\nHost: a\r\n'), 1n));
  let fed = 0;
  const piece = Buffer.concat(Array(64).fill(line));
  while (fed < 10 * 1024 * 1024) {
    results.add(h.inst.feed(1, REQ, piece, 2n));
    fed += piece.length;
  }
  assert.ok(results.has('invalid'), `results: ${[...results]}`);
  assert.ok(!results.has('trap') && !results.has('overflow'));
  assert.equal(h.inst.counters.traps, 0);
  assert.ok(h.inst.memoryBytes() <= mem0 + 1024 * 1024, `memory ${h.inst.memoryBytes()} from ${mem0}`);
  assert.ok(h.inst.pendingBytes() <= 256 * 1024);
  // the same block in one read: refused at once
  const one = loadDecoder('http1');
  assert.equal(one.inst.feed(1, REQ, Buffer.concat([b('GET / HTTP/1.1\r\n'), Buffer.concat(Array(200).fill(line))]), 1n), 'invalid');
});

test('garbage and other protocols are refused quickly; detect() scores them 0', () => {
  const cases: Buffer[] = [
    Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]), // TLS ClientHello
    b('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), // HTTP/2 preface
    Buffer.from([0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f]), // PostgreSQL SSLRequest
    b('SSH-2.0-OpenSSH_9.2\r\n'),
    b('GET / HTTP/2.0\r\n\r\n'),
    b('GET /\r\n'), // HTTP/0.9
    b('HTTP/1.1 2OO OK\r\n\r\n'),
    b('GET / HTTP/1.1\r\nBad Header: x\r\n\r\n'),
    b('GET / HTTP/1.1\r\nContent-Length: 12abc\r\n\r\n'),
    b('POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n'),
    b('POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n'),
  ];
  for (const [i, c] of cases.entries()) {
    const h = loadDecoder('http1');
    const dir = c.toString('latin1').startsWith('HTTP/') ? RESP : REQ;
    assert.equal(h.inst.feed(1, dir, c, 1n), 'invalid', `case ${i}: ${JSON.stringify(c.toString('latin1'))}`);
    assert.equal(h.inst.counters.traps, 0);
    if (i < 5) assert.equal(h.inst.detect(dir, c), 0, `detect case ${i}`);
  }
  // random bytes, many seeds, split at random points: never a trap, never a record
  let seed = 12345;
  const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed; };
  const h = loadDecoder('http1');
  for (let s = 0; s < 300; s++) {
    const buf = Buffer.alloc(1 + (rnd() % 3000));
    for (let i = 0; i < buf.length; i++) buf[i] = rnd() & 0xff;
    const r = h.inst.feed(s, rnd() & 1, buf, 1n);
    assert.notEqual(r, 'trap');
  }
  assert.equal(h.inst.counters.traps, 0);
  assert.equal(h.records.length, 0);
});

test('mutated HTTP never traps', () => {
  let seed = 99;
  const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed; };
  const base = Buffer.concat([b(GET), b('POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nT: 1\r\n\r\n')]);
  const resp = Buffer.concat([b(OK), b('HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n3;x\r\nabc\r\n0\r\n\r\n')]);
  const h = loadDecoder('http1');
  for (let s = 0; s < 2000; s++) {
    const m = Buffer.from(s & 1 ? resp : base);
    const flips = 1 + (rnd() % 4);
    for (let k = 0; k < flips; k++) m[rnd() % m.length] = rnd() & 0xff;
    const cut = rnd() % m.length;
    h.inst.feed(s, REQ, base, 1n);
    h.inst.feed(s, s & 1 ? RESP : REQ, m.subarray(0, cut), 2n);
    h.inst.feed(s, s & 1 ? RESP : REQ, m.subarray(cut), 3n);
    if (s % 3 === 0) h.inst.gap(s, RESP, rnd() % 100);
    h.inst.closeStream(s);
  }
  assert.equal(h.inst.counters.traps, 0);
  assert.equal(h.inst.counters.badRecords, 0);
});

test('detect(): request lines of known methods (incl. WebDAV) and status lines score high', () => {
  const h = loadDecoder('http1');
  assert.equal(h.inst.detect(REQ, b('GET / HTTP/1.1\r\n')), 95);
  assert.equal(h.inst.detect(REQ, b('PROPFIND /dav/ HTTP/1.1\r\nDepth: 1\r\n')), 95);
  assert.equal(h.inst.detect(REQ, b('M-SEARCH * HTTP/1.1\r\n')), 95);
  assert.equal(h.inst.detect(RESP, b('HTTP/1.1 404 Not Found\r\n')), 95);
  assert.equal(h.inst.detect(RESP, b('HTTP/1.0 200\r\n')), 95);
  assert.equal(h.inst.detect(REQ, b('BREW /pot HTTP/1.1\r\n')), 70, 'an unknown but valid method');
  assert.equal(h.inst.detect(REQ, b('POST /very/long')), 60, 'a known method, line still incomplete');
  assert.equal(h.inst.detect(REQ, b('PRI * HTTP/2.0\r\n')), 0);
  assert.equal(h.inst.detect(REQ, b('\x00\x01binary')), 0);
  assert.equal(h.inst.detect(REQ, b('')), 0);
});

test('5xx sets FLAG_ERROR and error.type', () => {
  const h = loadDecoder('http1');
  h.inst.feed(1, REQ, b('GET /boom HTTP/1.1\r\nHost: e\r\n\r\n'), 1n);
  h.inst.feed(1, RESP, b('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n'), 2n);
  h.inst.feed(1, REQ, b('GET /missing HTTP/1.1\r\nHost: e\r\n\r\n'), 3n);
  h.inst.feed(1, RESP, b('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n'), 4n);
  assert.equal(h.records[0].flags, FLAG_ERROR);
  assert.equal(h.records[0].attributes['error.type'], '503');
  assert.equal(h.records[1].flags, 0);
  assert.equal(h.records[1].attributes['error.type'], undefined);
});

test('close flushes unanswered requests; a response without request is flagged', () => {
  const h = loadDecoder('http1');
  h.inst.feed(1, REQ, b('GET /a HTTP/1.1\r\nHost: c\r\n\r\nGET /b HTTP/1.1\r\nHost: c\r\n\r\n'), 5n);
  h.inst.feed(1, RESP, b('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial'), 6n);
  h.inst.closeStream(1);
  assert.equal(h.records.length, 2);
  assert.equal(h.records[0].attributes['url.path'], '/a');
  assert.equal(h.records[0].flags, FLAG_UNKNOWN, 'the response body was cut short');
  assert.equal(h.records[0].attributes['http.response.body.size'], 7);
  assert.equal(h.records[1].attributes['url.path'], '/b');
  assert.equal(h.records[1].flags, FLAG_NO_RESPONSE);
  assert.equal(h.records[1].attributes['http.response.status_code'], undefined);

  const m = loadDecoder('http1');
  m.inst.feed(2, RESP, b('HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n'), 7n);
  assert.equal(m.records.length, 1);
  assert.equal(m.records[0].flags, FLAG_NO_REQUEST);
  assert.deepEqual(m.records[0].attributes, {
    'network.protocol.name': 'http', 'network.protocol.version': '1.1',
    'http.response.status_code': 302, 'http.response.body.size': 0,
    'telegen.response.size': 'HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n'.length,
  });
});

test('tick() expires requests that never got an answer', () => {
  const h = loadDecoder('http1');
  h.inst.feed(1, REQ, b('GET /slow HTTP/1.1\r\nHost: t\r\n\r\n'), 1_000_000_000n);
  h.inst.tick(30_000_000_000n);
  assert.equal(h.records.length, 0);
  h.inst.tick(62_000_000_000n);
  assert.equal(h.records.length, 1);
  assert.equal(h.records[0].flags, FLAG_NO_RESPONSE | FLAG_TIMEOUT);
  assert.equal(h.records[0].attributes['url.path'], '/slow');
  // It waited until the decoder gave up: 61 s, not the 0 s of its last byte.
  assert.deepEqual([h.records[0].tsStart, h.records[0].tsEnd], [1_000_000_000n, 62_000_000_000n]);
});

test('tick(): pipelined requests behind the timed-out one end at the same tick; close keeps the last byte', () => {
  const h = loadDecoder('http1');
  h.inst.feed(1, REQ, b('GET /a HTTP/1.1\r\nHost: t\r\n\r\n'), 1_000_000_000n);
  h.inst.feed(1, REQ, b('GET /b HTTP/1.1\r\nHost: t\r\n\r\n'), 5_000_000_000n);
  h.inst.tick(70_000_000_000n);
  assert.deepEqual(h.records.map((r) => [r.attributes['url.path'], r.flags, r.tsEnd]),
    [['/a', FLAG_NO_RESPONSE | FLAG_TIMEOUT, 70_000_000_000n], ['/b', FLAG_NO_RESPONSE | FLAG_TIMEOUT, 70_000_000_000n]]);
  const c = loadDecoder('http1');
  c.inst.feed(1, REQ, b('GET /c HTTP/1.1\r\nHost: t\r\n\r\n'), 1_000_000_000n);
  c.inst.closeStream(1);
  assert.deepEqual(c.records.map((r) => [r.flags, r.tsEnd]), [[FLAG_NO_RESPONSE, 1_000_000_000n]]);
});

test('header details: case-insensitive names, obs-fold, absolute-form, IPv6 host, b3', () => {
  const h = loadDecoder('http1');
  h.inst.feed(1, REQ, b('GET http://proxy.example:3128/p/q?a=b HTTP/1.1\r\n' +
    'HOST: ignored.example\r\n' +
    'USER-agent: Mozilla/5.0\r\n' +
    '  (folded continuation)\r\n' +
    'X-B3-TraceId: 80f198ee56343ba864fe8b2a57d3eff7\r\n' +
    'x-b3-spanid: e457b5a2e4d86bd1\r\n' +
    'X-B3-ParentSpanId: 05e3ac9a4f6e3b90\r\n' +
    'X-B3-Sampled: 1\r\n' +
    'b3: 80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1\r\n' +
    'Proxy-Authorization: Basic Zm9vOmJhcg==\r\n' +
    'content-type:application/x-www-form-urlencoded  \r\n' +
    'Content-Length: 0\r\n' +
    '\r\n' +
    'OPTIONS * HTTP/1.1\r\nHost: [2001:db8::1]:8443\r\n\r\n' +
    'GET /empty? HTTP/1.1\n' + 'Host: [::1]\n' + '\n'), 1n);
  h.inst.feed(1, RESP, b('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200\nContent-Length: 0\n\n'), 2n);
  assert.equal(h.records.length, 3);
  const a = h.records[0].attributes;
  assert.equal(a['url.path'], '/p/q');
  assert.equal(a['url.query'], 'a=b');
  assert.equal(a['server.address'], 'proxy.example');
  assert.equal(a['server.port'], 3128);
  assert.equal(a['user_agent.original'], 'Mozilla/5.0 (folded continuation)');
  assert.deepEqual(a['http.request.header.x-b3-traceid'], ['80f198ee56343ba864fe8b2a57d3eff7']);
  assert.deepEqual(a['http.request.header.x-b3-spanid'], ['e457b5a2e4d86bd1']);
  assert.deepEqual(a['http.request.header.x-b3-parentspanid'], ['05e3ac9a4f6e3b90']);
  assert.deepEqual(a['http.request.header.x-b3-sampled'], ['1']);
  assert.deepEqual(a['http.request.header.b3'], ['80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1']);
  assert.deepEqual(a['http.request.header.proxy-authorization'], ['Basic Zm9vOmJhcg==']);
  assert.deepEqual(a['http.request.header.content-type'], ['application/x-www-form-urlencoded']);
  assert.equal(a['http.request.body.size'], 0);
  const o = h.records[1].attributes;
  assert.equal(o['http.request.method'], 'OPTIONS');
  assert.equal(o['url.path'], '*');
  assert.equal(o['server.address'], '2001:db8::1');
  assert.equal(o['server.port'], 8443);
  const e = h.records[2].attributes;
  assert.equal(e['url.path'], '/empty');
  assert.equal(e['url.query'], '');
  assert.equal(e['server.address'], '::1');
  assert.equal(e['server.port'], undefined);
});

test('a HEAD response announcing chunked has no body: the next response follows at once (tshark 4.0 waits for chunks)', () => {
  const h = loadDecoder('http1');
  h.inst.feed(1, REQ, b('HEAD /h HTTP/1.1\r\nHost: a\r\n\r\nGET /fold HTTP/1.1\r\nHost: a\r\n\r\n'), 1n);
  h.inst.feed(1, RESP, b('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n' +
    'HTTP/1.1 200 OK\r\nX-Folded: a\r\n  b\r\nContent-Length: 2\r\n\r\nok'), 2n);
  assert.deepEqual(h.records.map((r) => [r.attributes['url.path'], r.attributes['http.response.status_code'], r.attributes['http.response.body.size']]),
    [['/h', 200, undefined], ['/fold', 200, 2]]);
});

test('absolute-form (a proxy request): url.scheme, and the origin port is the scheme default, not the proxy socket', () => {
  const h = loadDecoder('http1');
  h.inst.feed(1, REQ, b('GET http://example.org/via/proxy?x=y HTTP/1.1\r\nHost: example.org\r\n\r\n' +
    'GET HTTPS://secure.example/s HTTP/1.1\r\nHost: secure.example\r\n\r\n' +
    'GET http://example.com:8080/abs HTTP/1.1\r\nHost: example.com:8080\r\n\r\n'), 1n);
  h.inst.feed(1, RESP, b('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'.repeat(3)), 2n);
  const got = h.records.map((r) => [r.attributes['url.scheme'], r.attributes['server.address'], r.attributes['server.port'], r.attributes['url.path'], r.attributes['url.query']]);
  assert.deepEqual(got, [
    ['http', 'example.org', 80, '/via/proxy', 'x=y'],
    ['HTTPS', 'secure.example', 443, '/s', undefined],
    ['http', 'example.com', 8080, '/abs', undefined],
  ]);
});

test('bounded state: more than 1024 unanswered pipelined requests reset the stream', () => {
  const h = loadDecoder('http1');
  const one = 'GET /p HTTP/1.1\r\nHost: x\r\n\r\n';
  assert.equal(h.inst.feed(1, REQ, b(one.repeat(1024)), 1n), 'ok');
  assert.equal(h.inst.feed(1, REQ, b(one), 2n), 'invalid');
  assert.equal(h.records.length, 1024);
  assert.ok(h.records.every((r) => r.flags === FLAG_NO_RESPONSE));
  // many connections opened and closed: memory stays flat
  const g = loadDecoder('http1');
  for (let s = 0; s < 2000; s++) { g.inst.feed(s, REQ, b(GET), 1n); g.inst.feed(s, RESP, b(OK), 2n); g.inst.closeStream(s); }
  const m1 = g.inst.memoryBytes();
  for (let s = 0; s < 20000; s++) { g.inst.feed(s, REQ, b(GET), 1n); g.inst.feed(s, RESP, b(OK), 2n); g.inst.closeStream(s); }
  assert.equal(g.inst.memoryBytes(), m1);
});

test('framing details: TE overrides Content-Length, empty lines between messages, HTTP/1.0', () => {
  const h = loadDecoder('http1');
  // RFC 9112 6.3: with both, Transfer-Encoding decides; the extra CRLF after a body is tolerated
  h.inst.feed(1, REQ, b('POST /both HTTP/1.1\r\nHost: f\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\r\n' +
    'GET /after HTTP/1.0\r\nConnection: keep-alive\r\n\r\n'), 1n);
  h.inst.feed(1, RESP, b('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n' +
    'HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\n!'), 2n);
  const ex = exchanges(h);
  assert.equal(ex.length, 2);
  assert.equal(ex[0].attributes['http.request.body.size'], 3);
  assert.equal(ex[0].attributes['http.response.body.size'], 2);
  assert.equal(ex[1].attributes['url.path'], '/after');
  assert.equal(ex[1].attributes['network.protocol.version'], '1.0');
  assert.equal(ex[1].attributes['server.address'], undefined, 'no Host header: no server.address');
  assert.equal(ex[1].attributes['http.response.body.size'], 1);
});

test('an early response (before the request body ended) completes the exchange', () => {
  const h = loadDecoder('http1');
  h.inst.feed(1, REQ, b('PUT /big HTTP/1.1\r\nHost: e\r\nContent-Length: 1000\r\n\r\n' + 'z'.repeat(100)), 1n);
  h.inst.feed(1, RESP, b('HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n'), 2n);
  assert.equal(h.records.length, 1);
  assert.equal(h.records[0].attributes['http.response.status_code'], 413);
  // the rest of the body still has to be skipped before the next request
  h.inst.feed(1, REQ, b('z'.repeat(900) + 'GET /next HTTP/1.1\r\nHost: e\r\n\r\n'), 3n);
  h.inst.feed(1, RESP, b('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'), 4n);
  assert.equal(h.records.length, 2);
  assert.equal(h.records[1].attributes['url.path'], '/next');
  assert.equal(h.records[1].tsStart, 3n);
});

test('hostile load: heads cut across reads on many connections stay within the decoder\'s budget, no trap; closing gives it back', () => {
  // 6000 connections each in a 7 KiB header line cut by a read boundary (a slow client, a big
  // cookie at the capture's edge), then 3000 each in a 21 KiB head of 700-byte lines (the h2c
  // copy grows with them): the cut lines and copies took 26 and 28 MiB and trapped the module at
  // connection 3326 and 894, which resets every connection it decodes.
  const h = loadDecoder('http1');
  for (let s = 0; s < 6000; s++) {
    h.inst.feed(s, REQ, b('GET /slow HTTP/1.1\r\nHost: x\r\nX-Long: '), 1n);
    h.inst.feed(s, REQ, b('a'.repeat(7000)), 2n);
  }
  assert.equal(h.inst.counters.traps, 0);
  for (let s = 6000; s < 9000; s++) {
    h.inst.feed(s, REQ, b('GET /many HTTP/1.1\r\n'), 1n);
    for (let i = 0; i < 30; i++) h.inst.feed(s, REQ, b(`X-Field-${i}: ${'v'.repeat(700)}\r\n`), 2n);
  }
  assert.equal(h.inst.counters.traps, 0);
  assert.ok(h.inst.memoryBytes() <= 32 * 1024 * 1024);
  assert.ok(h.logs.some((l) => /budget for heads cut across reads/.test(l)), h.logs.join('\n'));
  // the first connections still end their heads and get their responses
  h.inst.feed(0, REQ, b('\r\n\r\n'), 3n);
  h.inst.feed(0, RESP, b('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'), 4n);
  assert.deepEqual(h.records.map((r) => [r.attributes['url.path'], r.attributes['http.response.status_code']]), [['/slow', 200]]);
  for (let s = 0; s < 9000; s++) h.inst.closeStream(s);
  // everything given back: a 7 KiB User-Agent cut across reads is held whole again
  const ua = 'u'.repeat(7000);
  h.inst.feed(9001, REQ, b('GET /after HTTP/1.1\r\nHost: x\r\nUser-Agent: '), 5n);
  h.inst.feed(9001, REQ, b(ua), 6n);
  h.inst.feed(9001, REQ, b('\r\n\r\n'), 7n);
  h.inst.feed(9001, RESP, b('HTTP/1.1 204 No Content\r\n\r\n'), 8n);
  const last = h.records[h.records.length - 1];
  assert.deepEqual([last.attributes['url.path'], last.attributes['user_agent.original'], last.flags & FLAG_TRUNCATED], ['/after', ua, 0]);
  assert.equal(h.inst.counters.traps, 0);
});

test('hostile load: many connections with big pipelined headers stay within memory, no trap', () => {
  const h = loadDecoder('http1');
  const big = 'GET /c HTTP/1.1\r\nHost: m\r\nCookie: ' + 'k'.repeat(30000) + '\r\n\r\n';
  // 40 connections x 100 requests with 30 KB cookies = 120 MB of captured values if kept naively
  for (let s = 0; s < 40; s++) {
    for (let i = 0; i < 100; i += 8) h.inst.feed(s, REQ, b(big.repeat(8)), BigInt(i));
  }
  assert.equal(h.inst.counters.traps, 0);
  assert.ok(h.inst.memoryBytes() <= 32 * 1024 * 1024);
  // waiting requests beyond the decoder-wide cap reset their connection (no trap); closing
  // everything frees everything
  for (let s = 40; s < 17000; s++) h.inst.feed(s, REQ, b('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), 1n);
  assert.equal(h.inst.counters.traps, 0);
  assert.ok(h.logs.some((l) => l.includes('cap of waiting requests')), h.logs.join('\n'));
  for (let s = 0; s < 17000; s++) h.inst.closeStream(s);
  const n = h.records.length;
  // everything decodes normally again
  h.inst.feed(99999, REQ, b(GET), 1n);
  h.inst.feed(99999, RESP, b(OK), 2n);
  assert.equal(h.records.length, n + 1);
  assert.deepEqual(h.records[n].attributes, GET_ATTRS);
  const truncated = h.records.filter((r) => r.flags & 8).length;
  assert.ok(truncated > 0, 'values past the memory budget are dropped and flagged TRUNCATED');
});

test('connection cap: past 16384 tracked connections new ones are refused with one log line', () => {
  const h = loadDecoder('http1');
  const results = new Map<string, number>();
  for (let s = 0; s < 16500; s++) {
    const r = h.inst.feed(s, REQ, b('GET /partial HT'), 1n);
    results.set(r, (results.get(r) ?? 0) + 1);
  }
  assert.equal(results.get('ok'), 16384);
  assert.equal(results.get('invalid'), 116);
  assert.equal(h.logs.filter((l) => l.includes('connection cap')).length, 1);
  assert.equal(h.inst.counters.traps, 0);
  h.inst.closeStream(0);
  assert.equal(h.inst.feed(20000, REQ, b('GET /partial HT'), 1n), 'ok', 'a closed connection frees a place');
});

// The agent keeps at most capture_max (16 KiB) bytes of a read (bpf/socket.h) and reports the
// rest as a gap. A header block longer than that arrives as its first 16 KiB and a gap.
const CAPTURE = 16384;
function brief(h: Harness): unknown[] {
  const out = h.records.map((r) => [r.flags, r.attributes['http.request.method'] ?? null, r.attributes['url.path'] ?? null,
    r.attributes['http.response.status_code'] ?? null, r.attributes['http.response.body.size'] ?? null]);
  h.records.length = 0;
  return out;
}
function fedCut(h: Harness, stream: number, dir: number, bytes: Buffer, ts: bigint): void {
  assert.equal(h.inst.feed(stream, dir, bytes.subarray(0, CAPTURE), ts), 'ok');
  if (bytes.length > CAPTURE) assert.equal(h.inst.gap(stream, dir, bytes.length - CAPTURE), 'ok');
}
const filler = 'v'.repeat(20000);
const NEXT = b('GET /next HTTP/1.1\r\nHost: a\r\n\r\n');
const OK5 = b('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello');

test('a request header block cut by the capture limit: method, target and the status answered, FLAG_TRUNCATED; the next exchange decodes', () => {
  const h = loadDecoder('http1');
  fedCut(h, 1, REQ, b(`GET /big?q=1 HTTP/1.1\r\nHost: a\r\nCookie: ${filler}\r\nAccept: */*\r\n\r\n`), 1n);
  h.inst.feed(1, RESP, OK5, 2n);
  h.inst.feed(1, REQ, NEXT, 3n);
  h.inst.feed(1, RESP, b('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n'), 4n);
  assert.deepEqual(brief(h), [[FLAG_TRUNCATED, 'GET', '/big', 200, 5], [0, 'GET', '/next', 404, 0]]);
  assert.equal(h.inst.counters.gapResets, 0);
});

test('a response header block cut by the capture limit: its status, FLAG_TRUNCATED; the lost body is skipped to the next response', () => {
  const h = loadDecoder('http1');
  h.inst.feed(1, REQ, NEXT, 1n);
  // one read: head, then a body the capture lost with the rest of the head
  fedCut(h, 1, RESP, b(`HTTP/1.1 302 Found\r\nLocation: /x\r\nSet-Cookie: s=${filler}\r\nContent-Length: 3000\r\n\r\n${'b'.repeat(3000)}`), 2n);
  h.inst.feed(1, REQ, NEXT, 3n);
  // the body's tail arrives in a later read, then the next response
  h.inst.feed(1, RESP, Buffer.concat([b('tail of the body\r\nmore\r\n'), OK5]), 4n);
  assert.deepEqual(brief(h), [[FLAG_TRUNCATED, 'GET', '/next', 302, null], [0, 'GET', '/next', 200, 5]]);
});

test('a long header block read whole in many reads (every split size, CR and LF apart) equals one read; body framed by its Content-Length', () => {
  const head = `POST /upload HTTP/1.1\r\nHost: a\r\nX-Pad: ${'p'.repeat(9000)}\r\nUser-Agent: ua/1\r\n` +
    `X-Pad2: ${'q'.repeat(12000)}\r\nContent-Type: text/plain\r\nContent-Length: 7\r\n\r\n`;
  const req = b(head + 'payload');
  const want = (() => {
    const h = loadDecoder('http1');
    h.inst.feed(1, REQ, req, 1n);
    h.inst.feed(1, RESP, OK5, 2n);
    return h.records.map((r) => r.attributes);
  })();
  assert.equal(want[0]['http.request.body.size'], 7);
  for (const size of [1000, 4093, 8192, 9000 + 40, 16384]) {
    const h = loadDecoder('http1');
    for (let i = 0; i < req.length; i += size) assert.equal(h.inst.feed(1, REQ, req.subarray(i, i + size), 1n), 'ok', `split ${size} at ${i}`);
    h.inst.feed(1, RESP, OK5, 2n);
    assert.deepEqual(h.records.map((r) => [r.flags, r.attributes]), want.map((a) => [0, a]), `split ${size}`);
  }
  // a cut between the CR and the LF of the empty line
  const h = loadDecoder('http1');
  const at = head.length - 1;
  h.inst.feed(1, REQ, req.subarray(0, at), 1n);
  h.inst.feed(1, REQ, req.subarray(at), 1n);
  h.inst.feed(1, RESP, OK5, 2n);
  assert.deepEqual(h.records.map((r) => r.attributes), want);
});
