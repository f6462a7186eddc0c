// Held-out HTTP/1 traffic (decoders/http1/testdata/heldout/: heldout.py, a raw-socket server and
// clients on 127.0.0.1, recorded by rec.sh): a request head cut into single bytes, pipelined
// bodies, 1xx before the final status, chunk extensions and trailers, 24 KiB of request head,
// bodiless responses that declare a length, rare methods, body until close, CONNECT, websocket,
// a 413 before the upload is sent. Every exchange is asserted, also with the agent's 16 KiB per-read
// capture limit applied; tshark's decoding (raw.expected.tsv)
// must agree wherever tshark follows RFC 9110/9112. Where it does not, the table below is right:
//  - stream 5: tshark reads 1234 body bytes after a 304 with Content-Length: 1234 (RFC 9110 15.4.5:
//    a 304 has no content) and loses that response;
//  - stream 6: "Content-Length: 5, 5" (a list of one value, RFC 9110 8.6) ends tshark's parsing of
//    the connection: the four responses after it are body to tshark;
//  - stream 7: tshark knows methods from a list: PURGE (and the GET behind it) are not HTTP to it;
//  - stream 12: tshark waits for the 100000-byte body that never comes and never shows the request.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { loadDecoder, repoRoot } from '../helpers/decoder';
import { replayFile } from '../../host/src/replay';
import { KIND_EXCHANGE, KIND_UPGRADE, DIR_REQUEST, DIR_RESPONSE, FLAG_ERROR, FLAG_TRUNCATED } from '../../decoders/abi/abi';

const dir = path.join(repoRoot, 'decoders', 'http1', 'testdata', 'heldout');

// [tcp.stream, method, path?query, status, request body, response body, flags] or [stream, 'upgrade', next]
const EXPECTED: unknown[][] = [
  [0, 'GET', '/slow-head?a=1', 200, null, 11, 0],
  [1, 'POST', '/form', 200, 22, 19, 0],
  [2, 'POST', '/p1', 200, 4, 18, 0],
  [2, 'POST', '/p2', 200, 0, 18, 0],
  [2, 'PUT', '/p3', 200, 3, 17, 0],
  [2, 'GET', '/p4', 200, null, 17, 0],
  [3, 'GET', '/early-hints', 200, null, 4, 0],
  [3, 'GET', '/chunk-ext', 200, null, 18, 0],
  [3, 'GET', '/gzip-chunked', 200, null, 40, 0],
  [4, 'GET', '/big-headers?…', 200, null, 2, FLAG_TRUNCATED],
  [5, 'HEAD', '/head', 200, null, null, 0],
  [5, 'GET', '/304-cl', 304, null, null, 0],
  [5, 'GET', '/204-cl', 204, null, null, 0],
  [5, 'GET', '/after', 200, null, 17, 0],
  [6, 'GET', '/cl-list', 200, null, 5, 0],
  [6, 'GET', '/no-phrase', 599, null, 3, FLAG_ERROR],
  [6, 'GET', '/lower', 200, null, 3, 0],
  [6, 'GET', '/http10', 200, null, 3, 0],
  [6, 'GET', '/end', 200, null, 17, 0],
  [7, 'PROPFIND', '/dav/%E2%82%AC/', 200, 5, 22, 0],
  [7, 'TRACE', '/t', 200, null, 19, 0],
  [7, 'OPTIONS', '*', 200, null, 21, 0],
  [7, 'PURGE', '/cache/x', 200, null, 19, 0],
  [7, 'GET', '/café?x=é', 200, null, 17, 0],
  [8, 'GET', '/until-close', 200, null, 35, 0],
  [9, 'POST', '/both', 200, 2, 18, 0],
  [10, 'GET', '/ws', 101, null, null, 0],
  [10, 'upgrade', 'websocket'],
  [11, 'CONNECT', '', 200, null, null, 0],
  [11, 'upgrade', 'tunnel'],
  [12, 'POST', '/early-413', 413, 2000, 0, 0],
];
const TSHARK_WRONG = new Set([5, 6, 7, 12]);

/** `capture`: as the agent sees it, at most that many bytes of each read (bpf/socket.h
 *  capture_max), the rest a gap; here each TCP segment stands for one read. */
async function records(capture = Infinity): Promise<unknown[][]> {
  const h = loadDecoder('http1');
  const streamOf = new Map<number, number>();
  let n = 0;
  await replayFile(path.join(dir, 'raw.pcap'), {
    onOpen: (c) => { if (c.transport === 'tcp') streamOf.set(c.id, n++); },
    onData: (c, fromClient, bytes, ts) => {
      const d = fromClient ? DIR_REQUEST : DIR_RESPONSE;
      h.inst.feed(c.id, d, bytes.subarray(0, capture), ts);
      if (bytes.length > capture) assert.equal(h.inst.gap(c.id, d, bytes.length - capture), 'ok', 'the gap is absorbed');
    },
    onGap: (c, fromClient, lost) => { h.inst.gap(c.id, fromClient ? DIR_REQUEST : DIR_RESPONSE, lost); },
    onClose: (c) => { h.inst.closeStream(c.id); },
  });
  assert.equal(h.inst.counters.traps, 0);
  assert.equal(h.inst.counters.invalid, 0);
  const out: unknown[][] = [];
  for (const r of h.records) {
    const a = r.attributes;
    const s = streamOf.get(r.stream)!;
    if (r.kind === KIND_UPGRADE) { out.push([s, 'upgrade', a['telegen.protocol.next']]); continue; }
    if (r.kind !== KIND_EXCHANGE) continue;
    const q = a['url.query'] === undefined ? '' : '?' + (String(a['url.query']).length > 20 ? '…' : String(a['url.query']));
    out.push([s, a['http.request.method'], String(a['url.path'] ?? '') + q, a['http.response.status_code'] ?? null,
      a['http.request.body.size'] ?? null, a['http.response.body.size'] ?? null, r.flags]);
  }
  return out.sort((x, y) => (x[0] as number) - (y[0] as number));
}

test('held-out HTTP/1 capture: every exchange as RFC 9110/9112 read it', async () => {
  assert.deepEqual(await records(), EXPECTED);
});

test('held-out HTTP/1 capture with the agent\'s 16 KiB capture per read: the 24 KiB request head and its 17 KiB response head are cut, their exchange keeps method, target and status (TRUNCATED, no body size); every other exchange as read whole', async () => {
  const cut = await records(16384);
  const i = EXPECTED.findIndex((r) => r[2] === '/big-headers?…');
  const want = EXPECTED.map((r, k) => (k === i ? [4, 'GET', '/big-headers?…', 200, null, null, FLAG_TRUNCATED] : r));
  assert.deepEqual(cut, want);
});

test('held-out HTTP/1 capture: tshark agrees on methods, targets and statuses where it follows the RFCs', async () => {
  const lines = fs.readFileSync(path.join(dir, 'raw.expected.tsv'), 'utf8').split('\n').filter(Boolean);
  const cols = lines[0].split('\t');
  const want = new Map<number, { req: string[]; codes: number[] }>();
  for (const line of lines.slice(1)) {
    const f = line.split('\t');
    const v = (name: string) => (f[cols.indexOf(name)] ? f[cols.indexOf(name)].split('|') : []);
    const s = Number(v('tcp.stream')[0]);
    if (!want.has(s)) want.set(s, { req: [], codes: [] });
    const w = want.get(s)!;
    v('http.request.method').forEach((m, i) => w.req.push(`${m} ${v('http.request.uri')[i]}`));
    // interim 1xx are not exchanges
    for (const c of v('http.response.code')) if (!c.startsWith('1') || c === '101') w.codes.push(Number(c));
  }
  const mine = (await records()).filter((r) => r[1] !== 'upgrade');
  let compared = 0;
  for (const [s, w] of want) {
    if (TSHARK_WRONG.has(s)) continue;
    const ours = mine.filter((r) => r[0] === s);
    assert.deepEqual(ours.map((r) => `${r[1]} ${r[1] === 'CONNECT' ? 'heldout.test:443' : r[2] === '/big-headers?…' ? w.req[0].split(' ')[1] : r[2]}`), w.req, `stream ${s} requests`);
    assert.deepEqual(ours.map((r) => r[3]), w.codes, `stream ${s} statuses`);
    compared += ours.length;
  }
  assert.ok(compared >= 14, `compared ${compared}`);
});
