// http2 decoder on traffic recorded from real peers (decoders/http2/testdata/record/: @grpc/grpc-js
// unary + all streaming kinds + error + large + gzip, Node http2 with push/trailers/500/cancel,
// nghttp and curl against nghttpd): exact attributes, and the connection-older-than-the-agent
// case: joined at any frame or byte boundary, no reported value is ever wrong.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'path';
import { loadDecoder, repoRoot, corpusDir, Harness } from '../helpers/decoder';
import { replayFile } from '../../host/src/replay';
import { DIR_REQUEST, DIR_RESPONSE, FLAG_ERROR, FLAG_NO_RESPONSE, FLAG_UNKNOWN } from '../../decoders/abi/abi';
import { DecodedRecord } from '../../host/src/decoders/records';
import { exchanges, pairs } from './http2-helpers';

const testdata = path.join(repoRoot, 'decoders', 'http2', 'testdata');

interface Conv { req: Buffer; resp: Buffer }

/** The first TCP connection of a capture as two byte streams. */
async function conversation(file: string): Promise<Conv> {
  const req: Buffer[] = [], resp: Buffer[] = [];
  let first = -1;
  await replayFile(path.join(testdata, file), {
    onOpen: (c) => { if (first < 0) first = c.id; },
    onData: (c, fromClient, b) => { if (c.id === first) (fromClient ? req : resp).push(Buffer.from(b)); },
    onGap: () => { throw new Error('unexpected gap in a loopback recording'); },
    onClose: () => {},
  });
  return { req: Buffer.concat(req), resp: Buffer.concat(resp) };
}

function decode(c: Conv, reqFrom = 0, respFrom = 0): Harness {
  const h = loadDecoder('http2');
  // Interleave in chunks so responses follow their requests roughly as on the wire.
  const step = 1500;
  let i = reqFrom, j = respFrom, ts = 1n;
  while (i < c.req.length || j < c.resp.length) {
    if (i < c.req.length) { h.inst.feed(1, DIR_REQUEST, c.req.subarray(i, i + step), ts++); i += step; }
    if (j < c.resp.length) { h.inst.feed(1, DIR_RESPONSE, c.resp.subarray(j, j + step), ts++); j += step; }
  }
  h.inst.closeStream(1);
  assert.equal(h.inst.counters.traps, 0, h.inst.lastError);
  return h;
}

/** Offsets of frame boundaries (after the preface on the client side). */
function boundaries(b: Buffer, client: boolean): number[] {
  const out: number[] = [];
  let p = client ? 24 : 0;
  while (p + 9 <= b.length) { out.push(p); p += 9 + b.readUIntBE(p, 3); }
  return out;
}

const byStream = (recs: DecodedRecord[]) => new Map(exchanges({ records: recs } as Harness).map((r) => [Number(r.attributes['telegen.http2.stream_id']), r]));

/** Every value a joined decode reports must be what the full decode reports for that stream. */
function assertNeverWrong(full: Map<number, DecodedRecord>, joined: Harness, where: string): { calls: number; methodKnown: number } {
  let calls = 0, methodKnown = 0;
  for (const r of exchanges(joined)) {
    const sid = Number(r.attributes['telegen.http2.stream_id']);
    const ref = full.get(sid);
    assert.ok(ref, `${where}: stream ${sid} does not exist`);
    for (const attr of ['telegen.http2.request.headers', 'telegen.http2.response.headers', 'telegen.http2.response.trailers']) {
      const truth = pairs(ref!, attr).map(([n, v]) => `${n}: ${v}`);
      for (const [n, v] of pairs(r, attr)) {
        if (n === '<unknown>') { assert.ok(r.flags & FLAG_UNKNOWN, `${where}: unknown field without FLAG_UNKNOWN`); continue; }
        assert.ok(truth.includes(`${n}: ${v}`), `${where}: stream ${sid} ${attr} has "${n}: ${v}", truth: ${truth.join(' | ')}`);
      }
    }
    for (const k of ['http.request.method', 'url.path', 'rpc.service', 'rpc.method', 'http.response.status_code', 'rpc.grpc.status_code', 'server.address']) {
      if (r.attributes[k] !== undefined) assert.equal(r.attributes[k], ref!.attributes[k], `${where}: stream ${sid} ${k}`);
    }
    if (ref!.attributes['rpc.method'] !== undefined) { calls++; if (r.attributes['rpc.method'] !== undefined) methodKnown++; }
  }
  return { calls, methodKnown };
}

test('grpc-js: unary, large, client/server streaming, bidi, error, gzip — exact attributes', async () => {
  const h = decode(await conversation('grpc-js.pcap'));
  const ex = exchanges(h);
  const get = (sid: number) => ex.find((r) => r.attributes['telegen.http2.stream_id'] === sid)!.attributes;
  assert.equal(ex.length, 7); // the gzip client is a second connection
  const u = get(1);
  assert.equal(u['rpc.system'], 'grpc');
  assert.equal(u['rpc.service'], 'telegen.test.Echo');
  assert.equal(u['rpc.method'], 'Unary');
  assert.equal(u['rpc.grpc.status_code'], 0);
  assert.equal(u['server.address'], '127.0.0.1');
  assert.equal(u['server.port'], 50051);
  assert.equal(u['user_agent.original'], 'grpc-node-js/1.14.3');
  assert.deepEqual([u['telegen.rpc.request.messages'], u['telegen.rpc.response.messages']], [1, 1]);
  const large = get(5);
  assert.deepEqual(large['telegen.rpc.request.message_lengths'], ['40013']);
  assert.equal(large['http.request.body.size'], 40018);
  assert.equal(get(7)['rpc.method'], 'ClientStream');
  assert.equal(get(7)['telegen.rpc.request.messages'], 4);
  assert.equal(get(9)['rpc.method'], 'ServerStream');
  assert.equal(get(9)['telegen.rpc.response.messages'], 5);
  assert.equal(get(11)['rpc.method'], 'Bidi');
  assert.deepEqual([get(11)['telegen.rpc.request.messages'], get(11)['telegen.rpc.response.messages']], [3, 3]);
  const fail = ex.find((r) => r.attributes['rpc.method'] === 'Fail')!;
  assert.equal(fail.attributes['rpc.grpc.status_code'], 5);
  assert.equal(fail.attributes['rpc.grpc.status_message'], 'no such thing: ✓ 100%');
  assert.equal(fail.flags & FLAG_ERROR, FLAG_ERROR);
});

test('grpc-js with gzip: compressed flag counted', async () => {
  const h = loadDecoder('http2');
  await replayFile(path.join(testdata, 'grpc-js.pcap'), {
    onOpen: () => {}, onData: (c, fc, b, ts) => { h.inst.feed(c.id, fc ? 0 : 1, Buffer.from(b), ts); },
    onGap: (c, fc, l) => { h.inst.gap(c.id, fc ? 0 : 1, l); }, onClose: (c) => h.inst.closeStream(c.id),
  });
  const gz = exchanges(h).filter((r) => r.attributes['telegen.rpc.request.compressed'] === 1);
  assert.equal(gz.length, 1);
  assert.equal(gz[0].attributes['rpc.method'], 'Unary');
  assert.equal(gz[0].attributes['telegen.rpc.request.messages'], 1);
});

test('node http2: query, trailers, server push, 500, client cancel (RST_STREAM CANCEL)', async () => {
  const h = decode(await conversation('node-h2.pcap'));
  const ex = exchanges(h);
  const get = (sid: number) => ex.find((r) => r.attributes['telegen.http2.stream_id'] === sid)!;
  assert.deepEqual(get(1).attributes['http.request.header.traceparent'], ['00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01']);
  assert.equal(get(1).attributes['http.response.body.size'], 11);
  assert.equal(get(3).attributes['url.query'], 'x=1&y=2');
  const echo = get(7);
  assert.equal(echo.attributes['http.request.body.size'], 40000);
  assert.deepEqual(pairs(echo, 'telegen.http2.response.trailers'), [['x-checksum', '40000']]);
  const pushed = get(2);
  assert.equal(pushed.attributes['telegen.http2.pushed'], true);
  assert.equal(pushed.attributes['url.path'], '/style.css');
  assert.deepEqual(pushed.attributes['http.response.header.content-type'], ['text/css']);
  assert.equal(get(11).attributes['http.response.status_code'], 500);
  assert.ok(get(11).flags & FLAG_ERROR);
  assert.equal(get(13).attributes['error.type'], 'CANCEL');
  assert.equal(get(13).flags, FLAG_ERROR | FLAG_NO_RESPONSE);
});

test('nghttp and curl against nghttpd: paths, statuses, body sizes', async () => {
  let h = decode(await conversation('nghttp-prior.pcap'));
  const paths = exchanges(h).map((r) => [r.attributes['url.path'], r.attributes['http.response.status_code']]).sort();
  assert.deepEqual(paths, [['/big.txt', 200], ['/index.html', 200], ['/missing', 404]]);
  assert.equal(exchanges(h).find((r) => r.attributes['url.path'] === '/big.txt')!.attributes['http.response.body.size'], 30000);
  h = decode(await conversation('curl-prior.pcap'));
  assert.equal(exchanges(h)[0].attributes['user_agent.original'], 'curl/7.88.1');
  assert.equal(exchanges(h)[0].attributes['http.response.status_code'], 200);
});

test('joined mid-connection at every frame boundary: never a wrong value; methods known when sent literally', async (t) => {
  const c = await conversation('grpc-js.pcap');
  const full = byStream(decode(c).records);
  const rb = boundaries(c.req, true), sb = boundaries(c.resp, false);
  let calls = 0, known = 0;
  for (let k = 1; k < rb.length; k++) {
    // the response side joins at the first frame at or after the same share of its stream
    const respAt = sb[Math.min(sb.length - 1, Math.floor((k / rb.length) * sb.length))];
    const r = assertNeverWrong(full, decode(c, rb[k], respAt), `join at request frame ${k}`);
    calls += r.calls; known += r.methodKnown;
  }
  assert.ok(calls > 0);
  // grpc-js indexes :path, so a join after a method's first call leaves it unknown (the uprobe
  // path of issue 4 item 3 recovers these); record the share for the report.
  t.diagnostic(`mid-stream joins: ${known}/${calls} calls with rpc.method known from the wire`);
});

test('joined mid-connection at arbitrary byte offsets (inside frames): never a wrong value', async () => {
  for (const file of ['grpc-js.pcap', 'node-h2.pcap', 'nghttp-prior.pcap']) {
    const c = await conversation(file);
    const full = byStream(decode(c).records);
    for (let k = 1; k < 40; k++) {
      const i = Math.floor((c.req.length * k) / 40) + (k % 7);
      const j = Math.floor((c.resp.length * k) / 40) + (k % 5);
      assertNeverWrong(full, decode(c, i, j), `${file} joined at ${i}/${j}`);
    }
  }
});

test('whole agent path (router + http1 + http2): h2c Upgrade handed over, prior knowledge and mid-stream detected', async () => {
  const { replayToSpans } = await import('../../host/src/cli/replay');
  const corpus = path.join(corpusDir, 'pcap', 'http2');
  const h2 = async (file: string) => (await replayToSpans(file)).spans
    .map((s) => s.attributes).filter((a) => a['network.protocol.version'] === '2');
  // h2c: the HTTP/1.1 request upgraded is stream 1 (its response in HTTP/2 frames), then a
  // second request on stream 3 (tshark: GET /robots.txt -> 101, HEADERS[1] 200, HEADERS[3] 404)
  const up = await h2(path.join(corpus, 'suricata__http2-keywords2.pcap'));
  assert.deepEqual(up.map((a) => [a['telegen.http2.stream_id'], a['http.request.method'], a['url.path'], a['server.address'], a['http.response.status_code'], a['telegen.http2.h2c_upgrade']]),
    [[1, 'GET', '/robots.txt', 'nghttp2.org', 200, true], [3, 'GET', '/humans.txt', 'nghttp2.org', 404, undefined]]);
  // prior knowledge (preface) on a port with no hint, and a connection joined mid-stream
  const grpcSpans = await h2(path.join(testdata, 'grpc-js.pcap'));
  assert.equal(grpcSpans.filter((a) => a['rpc.system'] === 'grpc').length, 8);
  const multi = await h2(path.join(corpus, 'deepflow__http2-multi.pcap'));
  assert.equal(multi.length, 2);
  assert.ok(multi.every((a) => a['http.request.method'] === 'POST' && a['telegen.hpack.unknown'] === true));
});
