// HPACK + HTTP/2 frame decoding beside hpack.js (the plain-JS HPACK a Node user would pick), on
// the same header blocks in one run, rounds alternating; Node's own http2 (nghttp2) over a
// loopback h2c connection for reference. Ours runs through the host's DecoderInstance (window
// copy, frames, HPACK, stitching, records decoded to JS objects) — what the agent pays;
// hpack.js only decodes the header blocks. Nothing here asserts a timing.
import * as fs from 'fs';
import * as path from 'path';
import * as http2 from 'http2';
import { DecoderInstance } from '../host/src/decoders/instance';
import { spread, writeResult, repoRoot } from './lib';
// eslint-disable-next-line @typescript-eslint/no-var-requires
const hpack = require('hpack.js');

type Field = { name: string; value: string; incremental?: boolean };

// Varying fields are sent without indexing (as nghttp2 does for :path), the rest are indexed.
function requestFields(i: number): Field[] {
  const grpc = i % 3 === 0;
  return [
    { name: ':method', value: grpc || i % 5 === 0 ? 'POST' : 'GET' },
    { name: ':scheme', value: 'http' },
    { name: ':path', value: grpc ? `/shop.v1.Catalog/${['Get', 'List', 'Watch'][i % 3]}` : `/api/v1/users/${i}?page=${i % 7}`, incremental: false },
    { name: ':authority', value: 'catalog.internal:8080' },
    { name: 'user-agent', value: grpc ? 'grpc-node-js/1.14.3' : 'bench/1.0' },
    { name: 'content-type', value: grpc ? 'application/grpc' : 'application/json' },
    ...(grpc ? [{ name: 'te', value: 'trailers' }, { name: 'grpc-accept-encoding', value: 'identity,deflate,gzip' }] : [{ name: 'accept', value: 'application/json' }]),
    { name: 'traceparent', value: `00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203${(i % 1000).toString().padStart(3, '0')}-01`, incremental: false },
    { name: 'x-request-id', value: `req-${i.toString(16).padStart(8, '0')}`, incremental: false },
  ];
}
function responseFields(i: number): Field[] {
  return [
    { name: ':status', value: i % 10 === 9 ? '404' : '200' },
    { name: 'content-type', value: i % 3 === 0 ? 'application/grpc' : 'application/json' },
    { name: 'date', value: `Thu, 26 Nov 2026 04:${String(20 + Math.floor(i / 2000)).padStart(2, '0')}:00 GMT` },
    { name: 'server', value: 'envoy' },
    { name: 'content-length', value: '32', incremental: false },
  ];
}

function frame(type: number, flags: number, sid: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(sid, 5);
  return Buffer.concat([h, payload]);
}

interface Workload { blocks: Array<{ dir: 0 | 1; block: Buffer }>; wire: Array<{ dir: 0 | 1; bytes: Buffer }>; blockBytes: number; wireBytes: number; fields: number }

function workload(n: number): Workload {
  const enc = [hpack.compressor.create({ table: { size: 4096 } }), hpack.compressor.create({ table: { size: 4096 } })];
  const blocks: Workload['blocks'] = [];
  const wire: Workload['wire'] = [
    { dir: 0, bytes: Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'), frame(4, 0, 0, Buffer.alloc(0))]) },
    { dir: 1, bytes: frame(4, 0, 0, Buffer.alloc(0)) },
  ];
  let fields = 0;
  const body = Buffer.alloc(32, 0x61);
  for (let i = 0; i < n; i++) {
    const sid = 2 * i + 1;
    for (const dir of [0, 1] as const) {
      const f = dir === 0 ? requestFields(i) : responseFields(i);
      fields += f.length;
      enc[dir].write(f);
      const block: Buffer = enc[dir].read();
      blocks.push({ dir, block });
      wire.push({ dir, bytes: dir === 0 ? frame(1, 0x4 | 0x1, sid, block) : Buffer.concat([frame(1, 0x4, sid, block), frame(0, 0x1, sid, body)]) });
    }
  }
  const sum = (a: Array<{ block?: Buffer; bytes?: Buffer }>) => a.reduce((s, x) => s + (x.block ?? x.bytes)!.length, 0);
  return { blocks, wire, blockBytes: sum(blocks), wireBytes: sum(wire), fields };
}

/** Node's http2 (nghttp2 on both ends) over loopback h2c: the same request fields, 32-byte answers. */
async function nodeLoopback(n: number): Promise<number> {
  const server = http2.createServer();
  server.on('stream', (s) => { s.respond({ ':status': 200, 'content-type': 'application/json', server: 'envoy' }); s.end(Buffer.alloc(32, 0x61)); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  const session = http2.connect(`http://127.0.0.1:${port}`);
  const one = (i: number) => new Promise<void>((ok, ko) => {
    const h: Record<string, string> = {};
    for (const f of requestFields(i)) if (f.name !== ':scheme' && f.name !== ':authority') h[f.name] = f.value;
    const q = session.request(h, { endStream: true });
    q.on('data', () => {}); q.on('end', ok); q.on('error', ko);
  });
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i += 64) await Promise.all(Array.from({ length: Math.min(64, n - i) }, (_, k) => one(i + k)));
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  await new Promise<void>((r) => session.close(() => r()));
  await new Promise<void>((r) => server.close(() => r()));
  return dt;
}

async function main(): Promise<void> {
  const N = Number(process.env.BENCH_EXCHANGES || 5000);
  const rounds = Number(process.env.BENCH_ROUNDS || 7);
  const w = workload(N);

  let hpFields = 0;
  const hpRun = () => {
    const dec = [hpack.decompressor.create({ table: { size: 4096 } }), hpack.decompressor.create({ table: { size: 4096 } })];
    const t0 = process.hrtime.bigint();
    for (const b of w.blocks) {
      const d = dec[b.dir];
      d.write(b.block);
      d.execute();
      while (d.read() !== null) hpFields++;
    }
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };

  let records = 0;
  let fieldsSeen = 0;
  const inst = DecoderInstance.fromBytes(fs.readFileSync(path.join(repoRoot, 'build', 'decoders', 'http2.wasm')), {
    onRecord: (r) => {
      records++;
      for (const k of ['telegen.http2.request.headers', 'telegen.http2.response.headers']) {
        const v = r.attributes[k];
        if (Array.isArray(v)) fieldsSeen += v.length / 2;
      }
    },
  });
  let stream = 1;
  const oursRun = () => {
    const s = stream++;
    const t0 = process.hrtime.bigint();
    let ts = 1n;
    for (const c of w.wire) {
      const r = inst.feed(s, c.dir, c.bytes, ts++);
      if (r !== 'ok') throw new Error(`http2 decoder: ${r}`);
    }
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    inst.closeStream(s);
    return dt;
  };

  const ours: number[] = [];
  const oursWire: number[] = [];
  const theirs: number[] = [];
  const ratio: number[] = [];
  for (let r = 0; r < rounds + 1; r++) {
    const a = r % 2 ? hpRun() : oursRun();
    const b = r % 2 ? oursRun() : hpRun();
    const [o, h] = r % 2 ? [b, a] : [a, b];
    if (r === 0) continue; // warm-up
    ours.push(w.blockBytes / o / 1e6);
    oursWire.push(w.wireBytes / o / 1e6);
    theirs.push(w.blockBytes / h / 1e6);
    ratio.push(h / o);
  }
  // Both decoded every field of every round (ours: the header lists of its records).
  if (hpFields !== w.fields * (rounds + 1)) throw new Error(`hpack.js decoded ${hpFields} fields, expected ${w.fields * (rounds + 1)}`);
  if (records !== N * (rounds + 1) || fieldsSeen !== w.fields * (rounds + 1)) throw new Error(`decoder: ${records} records / ${fieldsSeen} fields, expected ${N * (rounds + 1)} / ${w.fields * (rounds + 1)}`);

  const node: number[] = [];
  for (let r = 0; r < 3; r++) node.push(N / (await nodeLoopback(N)));
  writeResult('http2-decoder', {
    workload: { exchanges: N, headerBlockBytes: w.blockBytes, wireBytes: w.wireBytes, fieldsPerRound: w.fields, encoder: 'hpack.js compressor (Huffman, 4096-byte table; :path, traceparent, x-request-id, content-length not indexed)', mix: 'one third gRPC, the rest JSON REST; 32-byte bodies' },
    telegen_hpack_MBps: spread(ours),
    telegen_wire_MBps: spread(oursWire),
    hpackjs_MBps: spread(theirs),
    ratio_telegen_over_hpackjs: spread(ratio),
    node_http2_loopback_requests_per_s: spread(node),
    node_http2_loopback_header_MBps: spread(node.map((rps) => (rps * w.blockBytes) / N / 1e6)),
    note: 'MB/s over header-block bytes for both (ours also walks the frames, stitches streams and builds records); telegen_wire_MBps over all frame bytes; Node loopback = nghttp2 encode + decode on both ends plus sockets, 64 requests in flight',
  });
}

main().catch((e) => { console.error(e); process.exit(1); });
