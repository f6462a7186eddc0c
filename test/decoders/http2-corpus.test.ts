// Corpus agreement: every HTTP/2 header (name and value), :method/:path/:authority/:status and
// gRPC message length tshark decodes in the shared captures (and in our own recordings under
// decoders/http2/testdata/) must appear, with the same values, in the http2 decoder's records
// when the capture is replayed through it. Compared per TCP connection as multisets, because
// tshark lists fields per packet and we report them per stream.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { loadDecoder, corpusDir, repoRoot, Harness } from '../helpers/decoder';
import { replayFile, ReplayConn } from '../../host/src/replay';
import { DIR_REQUEST, DIR_RESPONSE } from '../../decoders/abi/abi';
import { toTshark, exchanges } from './http2-helpers';

interface Expect { columns?: string[]; headers: string[]; methods: string[]; paths: string[]; authorities: string[]; statuses: string[]; grpcLengths: number[] }
const SECRET = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie']);
const empty = (): Expect => ({ headers: [], methods: [], paths: [], authorities: [], statuses: [], grpcLengths: [] });

/** tshark's rows (SOURCES.md: one row per packet, repeated fields joined with '|'), per tcp.stream. */
export function expectedFromTsv(file: string): Map<number, Expect> {
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0);
  const cols = lines[0].split('\t');
  const out = new Map<number, Expect>();
  for (const line of lines.slice(1)) {
    const f = line.split('\t');
    const v = (name: string): string[] => {
      const i = cols.indexOf(name);
      const x = i < 0 ? '' : (f[i] ?? '');
      return x === '' ? [] : x.split('|');
    };
    const stream = Number(v('tcp.stream')[0]);
    if (!out.has(stream)) out.set(stream, { ...empty(), columns: cols });
    const e = out.get(stream)!;
    const names = v('http2.header.name');
    const values = f[cols.indexOf('http2.header.value')] === undefined ? [] : (f[cols.indexOf('http2.header.value')] ?? '').split('|');
    // credentials are replaced by the decoder itself (the host cannot redact inside the lists)
    names.forEach((n, i) => e.headers.push(`${n}: ${SECRET.has(n.toLowerCase()) ? 'REDACTED' : values[i] ?? ''}`));
    e.methods.push(...v('http2.headers.method'));
    e.paths.push(...v('http2.headers.path'));
    e.authorities.push(...v('http2.headers.authority'));
    e.statuses.push(...v('http2.headers.status'));
    e.grpcLengths.push(...v('grpc.message_length').map(Number));
  }
  return out;
}

type Ev = { kind: 'data'; fromClient: boolean; bytes: Uint8Array; ts: bigint } | { kind: 'gap'; fromClient: boolean; lost: number } | { kind: 'close' };

/** Index of the first byte after the first "\r\n\r\n" (an HTTP/1.1 head), or -1. */
function afterHead(b: Buffer): number {
  const i = b.indexOf('\r\n\r\n');
  return i < 0 ? -1 : i + 4;
}

/**
 * Replays a capture into the http2 decoder. A connection that starts as HTTP/1.1 is handed over
 * the way the http1 decoder does it for `Upgrade: h2c`: the request side from the client preface,
 * the response side after the 101 head. HTTP/1.1 connections that never switch are left out.
 */
export async function replayHttp2(file: string): Promise<{ h: Harness; streamOf: Map<number, number> }> {
  const h = loadDecoder('http2');
  const order: number[] = [];
  const evs = new Map<number, Ev[]>();
  await replayFile(file, {
    onOpen: (c: ReplayConn) => { order.push(c.id); evs.set(c.id, []); },
    onData: (c, fromClient, bytes, ts) => evs.get(c.id)!.push({ kind: 'data', fromClient, bytes: Buffer.from(bytes), ts }),
    onGap: (c, fromClient, lost) => evs.get(c.id)!.push({ kind: 'gap', fromClient, lost }),
    onClose: (c) => evs.get(c.id)!.push({ kind: 'close' }),
  });
  const streamOf = new Map<number, number>();
  order.forEach((id, i) => streamOf.set(id, i));
  for (const id of order) {
    const list = evs.get(id)!;
    const all = (fc: boolean) => Buffer.concat(list.filter((e) => e.kind === 'data' && e.fromClient === fc).map((e) => (e as { bytes: Uint8Array }).bytes));
    const req = all(true), resp = all(false);
    const skip = { req: 0, resp: 0 };
    if (/^[A-Z]+ \S+ HTTP\/1\.[01]\r\n/.test(req.subarray(0, 64).toString('latin1')) || resp.subarray(0, 9).toString('latin1') === 'HTTP/1.1 ') {
      const pre = req.indexOf('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
      if (!resp.subarray(0, 12).toString('latin1').startsWith('HTTP/1.1 101') || pre < 0) continue;
      skip.req = pre;
      skip.resp = afterHead(resp);
    }
    const left = { ...skip };
    for (const e of list) {
      if (e.kind === 'close') { h.inst.closeStream(id); continue; }
      const dir = e.fromClient ? DIR_REQUEST : DIR_RESPONSE;
      if (e.kind === 'gap') { h.inst.gap(id, dir, e.lost); continue; }
      let b = Buffer.from(e.bytes);
      const k = e.fromClient ? 'req' : 'resp';
      if (left[k] > 0) { const n = Math.min(left[k], b.length); b = b.subarray(n); left[k] -= n; }
      if (b.length) h.inst.feed(id, dir, b, e.ts);
    }
  }
  return { h, streamOf };
}

/** Our records per tcp.stream in the same shape as expectedFromTsv. */
export function ours(h: Harness, streamOf: Map<number, number>): Map<number, Expect> {
  const out = new Map<number, Expect>();
  for (const r of exchanges(h)) {
    const s = streamOf.get(r.stream)!;
    if (!out.has(s)) out.set(s, empty());
    const e = out.get(s)!;
    const v = toTshark([r])[0];
    for (const b of v.blocks) for (const [n, val] of b) e.headers.push(`${n}: ${val}`);
    // tshark's http2.headers.* come from the pseudo-headers of every block, pushed ones included
    for (const b of v.blocks) for (const [n, val] of b) {
      if (n === ':method') e.methods.push(val);
      else if (n === ':path') e.paths.push(val);
      else if (n === ':authority') e.authorities.push(val);
      else if (n === ':status') e.statuses.push(val);
    }
    e.grpcLengths.push(...v.grpcLengths);
  }
  return out;
}

const sorted = <T>(a: T[]): T[] => [...a].sort();

export function captures(): Array<{ file: string; tsv: string }> {
  const out: Array<{ file: string; tsv: string }> = [];
  const dirs = [path.join(corpusDir, 'pcap', 'http2'), path.join(corpusDir, 'pcap', 'grpc'), path.join(repoRoot, 'decoders', 'http2', 'testdata')];
  for (const dir of dirs) {
    if (!fs.existsSync(dir)) continue;
    for (const f of fs.readdirSync(dir).sort()) {
      if (!/\.pcap(ng)?$/.test(f)) continue;
      const tsv = path.join(dir, f.replace(/\.pcap(ng)?$/, '.expected.tsv'));
      if (fs.existsSync(tsv)) out.push({ file: path.join(dir, f), tsv });
    }
  }
  return out;
}

for (const { file, tsv } of captures()) {
  test(`corpus agreement with tshark: ${path.basename(file)}`, async () => {
    const expected = expectedFromTsv(tsv);
    const { h, streamOf } = await replayHttp2(file);
    assert.equal(h.inst.counters.traps, 0, h.inst.lastError);
    const got = ours(h, streamOf);
    let compared = 0;
    for (const [stream, e] of expected) {
      const g = got.get(stream) ?? empty();
      const where = `${path.basename(file)} tcp.stream ${stream}`;
      assert.deepEqual(sorted(g.headers), sorted(e.headers), `${where}: header fields`);
      // the grpc TSVs carry a different column set (SOURCES.md): compare the columns present
      const has = (c: string) => e.columns!.includes(c);
      if (has('http2.headers.method')) assert.deepEqual(sorted(g.methods), sorted(e.methods), `${where}: :method`);
      if (has('http2.headers.path')) assert.deepEqual(sorted(g.paths), sorted(e.paths), `${where}: :path`);
      if (has('http2.headers.authority')) assert.deepEqual(sorted(g.authorities), sorted(e.authorities), `${where}: :authority`);
      if (has('http2.headers.status')) assert.deepEqual(sorted(g.statuses), sorted(e.statuses), `${where}: :status`);
      if (has('grpc.message_length')) {
        // tshark reports a message once it reassembled its whole DATA frame; we count it from its
        // 5-byte prefix, so a message cut off by the end of the capture is ours alone.
        const extra = [...g.grpcLengths];
        for (const l of e.grpcLengths) {
          const i = extra.indexOf(l);
          assert.ok(i >= 0, `${where}: grpc.message_length ${l} missing (ours: ${g.grpcLengths.join(',')})`);
          extra.splice(i, 1);
        }
        assert.ok(extra.length <= 1, `${where}: extra gRPC messages ${extra.join(',')}`);
      }
      compared += e.headers.length;
    }
    // streams tshark saw no HTTP/2 in must not produce headers either
    for (const [stream, g] of got) if (!expected.has(stream)) assert.equal(g.headers.length, 0, `tcp.stream ${stream} not in tshark's output`);
    assert.ok(compared > 0 || expected.size === 0);
  });
}
