// Corpus agreement: every HTTP/1 message tshark decodes in the shared captures must appear, with
// the same values, in the http1 decoder's records when the capture is replayed through it.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { loadDecoder, corpusDir, repoRoot, Harness } from '../helpers/decoder';
import { replayFile } from '../../host/src/replay';
import { KIND_EXCHANGE, KIND_UPGRADE, DIR_REQUEST, DIR_RESPONSE } from '../../decoders/abi/abi';

interface Msg { [k: string]: string }
interface Side { requests: Msg[]; responses: Msg[]; upgrades: string[] }

/** tshark's rows (SOURCES.md: one row per packet, repeated fields joined with '|'). */
function expectedFromTsv(file: string): Map<number, Side> {
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0);
  const cols = lines[0].split('\t');
  const out = new Map<number, Side>();
  for (const line of lines.slice(1)) {
    const f = line.split('\t');
    const v = (name: string): string[] => {
      const x = f[cols.indexOf(name)] ?? '';
      return x === '' ? [] : x.split('|');
    };
    const stream = Number(v('tcp.stream')[0]);
    if (!out.has(stream)) out.set(stream, { requests: [], responses: [], upgrades: [] });
    const side = out.get(stream)!;
    const methods = v('http.request.method');
    const uris = v('http.request.uri');
    const versions = v('http.request.version');
    const codes = v('http.response.code');
    // a row holding exactly one message lines every column up with it
    const single = methods.length + codes.length === 1;
    methods.forEach((m, i) => {
      const msg: Msg = { method: m, uri: uris[i], version: versions[i] };
      if (single) {
        if (v('http.host').length) msg.host = v('http.host')[0];
        if (v('http.content_type').length) msg.contentType = v('http.content_type')[0];
        if (v('http.content_length_header').length) msg.bodySize = v('http.content_length_header')[0];
      }
      side.requests.push(msg);
    });
    for (const c of codes) {
      // interim 1xx responses are not exchanges: the final status is what an exchange carries
      if (c.startsWith('1') && c !== '101') continue;
      const msg: Msg = { code: c };
      if (single) {
        if (v('http.content_type').length) msg.contentType = v('http.content_type')[0];
        if (v('http.content_encoding').length) msg.contentEncoding = v('http.content_encoding')[0];
        if (v('http.transfer_encoding').length) msg.transferEncoding = v('http.transfer_encoding')[0];
        // the declared length is the body we must have counted, except where a response has none
        // (and Transfer-Encoding overrides it: RFC 9112 6.3)
        if (v('http.content_length_header').length && !v('http.transfer_encoding').length && !['204', '304'].includes(c) && !side.requests.some((q) => q.method === 'HEAD')) msg.bodySize = v('http.content_length_header')[0];
        if (c === '101' && v('http.upgrade').length) side.upgrades.push(v('http.upgrade')[0].toLowerCase());
      }
      // a 2xx to CONNECT turns the connection into a tunnel (RFC 9110 9.3.6): HTTP/1 decoding ends
      if (c.startsWith('2') && side.requests[side.responses.length]?.method === 'CONNECT') side.upgrades.push('tunnel');
      side.responses.push(msg);
    }
  }
  return out;
}

const DEFAULT_PORT: Record<string, number> = { http: 80, https: 443 };

/** server.address as written in a URI or Host header: an IPv6 literal in brackets. */
function hostText(a: Record<string, unknown>): string {
  const h = String(a['server.address']);
  return h.includes(':') ? `[${h}]` : h;
}

/** The request-target as tshark prints it (http.request.uri), rebuilt from our attributes:
 *  origin-form path?query; absolute-form (a proxy request) scheme://authority path?query;
 *  CONNECT's authority-form host:port (RFC 9112 3.2). */
function requestTarget(a: Record<string, unknown>): string {
  const pathQuery = String(a['url.path']) + (a['url.query'] !== undefined ? '?' + String(a['url.query']) : '');
  const host = hostText(a);
  if (a['http.request.method'] === 'CONNECT') return `${host}:${a['server.port']}`;
  const scheme = a['url.scheme'];
  if (scheme === undefined) return pathQuery;
  const port = a['server.port'] === DEFAULT_PORT[String(scheme).toLowerCase()] ? '' : `:${a['server.port']}`;
  return `${scheme}://${host}${port}${pathQuery}`;
}

/** Feeds `bytes` as one read, or re-cut into pseudo-random pieces of 1..64 bytes when `seed` is set. */
function feedCut(h: Harness, stream: number, dir: number, bytes: Uint8Array, ts: bigint, rnd?: () => number): void {
  if (!rnd) { h.inst.feed(stream, dir, bytes, ts); return; }
  for (let i = 0; i < bytes.length;) {
    const n = 1 + (rnd() % 64);
    h.inst.feed(stream, dir, bytes.subarray(i, i + n), ts);
    i += n;
  }
}

async function decoded(capture: string, expected: Map<number, Side>, seed = 0): Promise<{ got: Map<number, Side>; h: Harness }> {
  const h = loadDecoder('http1');
  let state = seed;
  const rnd = seed ? () => { state = (state * 1103515245 + 12345) & 0x7fffffff; return state; } : undefined;
  const streamOf = new Map<number, number>(); // replay conn id -> tcp.stream (both count TCP conversations in order)
  let tcpIndex = 0;
  await replayFile(capture, {
    onOpen: (c) => { if (c.transport === 'tcp') streamOf.set(c.id, tcpIndex++); },
    onData: (c, fromClient, bytes, ts) => { feedCut(h, c.id, fromClient ? DIR_REQUEST : DIR_RESPONSE, bytes, ts, rnd); },
    onGap: (c, fromClient, lost) => { h.inst.gap(c.id, fromClient ? DIR_REQUEST : DIR_RESPONSE, lost); },
    onClose: (c) => { h.inst.closeStream(c.id); },
  });
  const got = new Map<number, Side>();
  for (const r of h.records) {
    const stream = streamOf.get(r.stream) ?? -1;
    if (!got.has(stream)) got.set(stream, { requests: [], responses: [], upgrades: [] });
    const side = got.get(stream)!;
    const a = r.attributes;
    const want = expected.get(stream);
    if (r.kind === KIND_UPGRADE) {
      side.upgrades.push(String(a['telegen.protocol.next']));
      // h2c: the request and its 101 left with the upgrade (stream 1 of the http2 decoder)
      if (typeof a['telegen.upgrade.request'] === 'string') {
        side.requests.push(handedOver(a['telegen.upgrade.request'], want?.requests[side.requests.length]));
        side.responses.push({ code: '101' });
      }
      continue;
    }
    if (r.kind !== KIND_EXCHANGE) continue;
    if (a['http.request.method'] !== undefined) {
      const msg: Msg = {
        method: String(a['http.request.method']),
        uri: requestTarget(a),
        version: 'HTTP/' + String(a['network.protocol.version']),
      };
      // compare the optional columns where tshark could attribute them to this message
      const ref = want?.requests[side.requests.length];
      // a Host without a port means the scheme's default, which we may name (server.port 80)
      if (ref?.host !== undefined && a['server.address'] !== undefined) msg.host = hostText(a) + (a['server.port'] !== undefined && /:\d+$/.test(ref.host) ? ':' + String(a['server.port']) : '');
      if (ref?.contentType !== undefined && a['http.request.header.content-type'] !== undefined) msg.contentType = (a['http.request.header.content-type'] as string[]).join(',');
      if (ref?.bodySize !== undefined && a['http.request.body.size'] !== undefined) msg.bodySize = String(a['http.request.body.size']);
      side.requests.push(msg);
    }
    if (a['http.response.status_code'] !== undefined) {
      const msg: Msg = { code: String(a['http.response.status_code']) };
      const ref = want?.responses[side.responses.length];
      if (ref?.contentType !== undefined && a['http.response.header.content-type'] !== undefined) msg.contentType = (a['http.response.header.content-type'] as string[]).join(',');
      if (ref?.contentEncoding !== undefined && a['http.response.header.content-encoding'] !== undefined) msg.contentEncoding = (a['http.response.header.content-encoding'] as string[]).join(',');
      if (ref?.transferEncoding !== undefined && a['http.response.header.transfer-encoding'] !== undefined) msg.transferEncoding = (a['http.response.header.transfer-encoding'] as string[]).join(',');
      if (ref?.bodySize !== undefined && a['http.response.body.size'] !== undefined) msg.bodySize = String(a['http.response.body.size']);
      side.responses.push(msg);
    }
  }
  return { got, h };
}

/** The request an h2c upgrade record hands to the http2 decoder, in the shape of `Msg`. */
function handedOver(b64: string, ref: Msg | undefined): Msg {
  const [line, ...fields] = Buffer.from(b64, 'base64').toString('latin1').split('\r\n\r\n')[0].split('\r\n');
  const [method, uri, version] = line.split(' ');
  const msg: Msg = { method, uri, version };
  const field = (n: string) => fields.find((f) => f.toLowerCase().startsWith(`${n}:`))?.slice(n.length + 1).trim();
  if (ref?.host !== undefined && field('host') !== undefined) msg.host = field('host')!;
  if (ref?.contentType !== undefined && field('content-type') !== undefined) msg.contentType = field('content-type')!;
  if (ref?.bodySize !== undefined && field('content-length') !== undefined) msg.bodySize = field('content-length')!;
  return msg;
}

function captures(): Array<{ capture: string; tsv: string }> {
  const out: Array<{ capture: string; tsv: string }> = [];
  const dir1 = path.join(corpusDir, 'pcap', 'http1');
  if (fs.existsSync(dir1)) {
    for (const f of fs.readdirSync(dir1).sort()) {
      if (!/\.pcap(ng)?$/.test(f)) continue;
      out.push({ capture: path.join(dir1, f), tsv: path.join(dir1, f.replace(/\.pcap(ng)?$/, '.expected.tsv')) });
    }
  }
  // HTTP/2 captures that begin with an HTTP/1.1 h2c Upgrade: their HTTP/1 part is ours
  const dir2 = path.join(corpusDir, 'pcap', 'http2');
  if (fs.existsSync(dir2)) {
    for (const f of fs.readdirSync(dir2).sort()) {
      if (!f.endsWith('.expected-http1.tsv')) continue;
      const base = f.replace(/\.expected-http1\.tsv$/, '');
      const capture = ['.pcap', '.pcapng'].map((e) => path.join(dir2, base + e)).find((p) => fs.existsSync(p));
      if (capture) out.push({ capture, tsv: path.join(dir2, f) });
    }
  }
  // captures recorded here from real clients and servers (decoders/http1/testdata/record.js)
  const own = path.join(repoRoot, 'decoders', 'http1', 'testdata');
  for (const f of fs.readdirSync(own).sort()) {
    if (f.endsWith('.pcap')) out.push({ capture: path.join(own, f), tsv: path.join(own, f.replace(/\.pcap$/, '.expected.tsv')) });
  }
  return out;
}

const list = captures();

test('the HTTP/1 corpus is present', () => {
  assert.ok(list.length >= 17, `captures found under ${corpusDir}: ${list.length}`);
});

for (const { capture, tsv } of list) {
  test(`agrees with tshark: ${path.basename(capture)}`, async () => {
    const expected = expectedFromTsv(tsv);
    const { got, h } = await decoded(capture, expected);
    assert.equal(h.inst.counters.traps, 0);
    for (const [stream, want] of expected) {
      const mine = got.get(stream) ?? { requests: [], responses: [], upgrades: [] };
      assert.deepEqual(mine.requests, want.requests, `tcp.stream ${stream}: requests`);
      assert.deepEqual(mine.responses, want.responses, `tcp.stream ${stream}: responses`);
      assert.deepEqual(mine.upgrades, want.upgrades, `tcp.stream ${stream}: upgrades`);
    }
    for (const stream of got.keys()) assert.ok(expected.has(stream), `records on tcp.stream ${stream}, where tshark saw no HTTP`);
    // the same capture with every segment re-cut into small reads gives the same records
    const plain = h.records;
    for (const seed of [7, 1234]) {
      const cut = await decoded(capture, expected, seed);
      assert.deepEqual(cut.h.records.map((r) => [r.kind, r.flags, r.stream, r.attributes]), plain.map((r) => [r.kind, r.flags, r.stream, r.attributes]), `re-cut with seed ${seed}`);
    }
  });
}
