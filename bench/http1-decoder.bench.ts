// HTTP/1 decoder MB/s beside llhttp (the Wasm parser undici ships), on the same bytes, same
// chunking, in one run. Ours runs through the host's DecoderInstance (window copy + records
// decoded to JS objects), i.e. what the agent pays; llhttp gets no-op callbacks. CPU time of
// this process per run (process.cpuUsage), not wall time: the machine is shared.
// BENCH_BASELINE=DIR (a built worktree of an earlier commit) also runs that tree's host and
// http1.wasm on the same bytes, alternating in the same rounds.
import * as fs from 'fs';
import * as path from 'path';
import { DecoderInstance } from '../host/src/decoders/instance';
import { spread, writeResult, repoRoot, loadDecoder } from './lib';

/** CPU seconds (user + system) of this process spent in fn. */
function cpu(fn: () => void): number {
  const c0 = process.cpuUsage();
  fn();
  const u = process.cpuUsage(c0);
  return (u.user + u.system) / 1e6;
}

function workload(n: number): Array<{ dir: 0 | 1; bytes: Buffer }> {
  const out: Array<{ dir: 0 | 1; bytes: Buffer }> = [];
  const body = Buffer.alloc(512, 'b');
  for (let i = 0; i < n; i++) {
    const post = i % 5 === 0;
    const reqBody = post ? `{"id":${i},"name":"user${i}","tags":["a","b"]}` : '';
    out.push({ dir: 0, bytes: Buffer.from(
      `${post ? 'POST' : 'GET'} /api/v1/users/${i}?page=${i % 7}&sort=name HTTP/1.1\r\nHost: service.internal:8080\r\n` +
      'User-Agent: bench/1.0\r\nAccept: application/json\r\nAccept-Encoding: gzip, deflate\r\n' +
      `traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b71692033${(i % 100).toString().padStart(2, '0')}-01\r\n` +
      (post ? `Content-Type: application/json\r\nContent-Length: ${reqBody.length}\r\n` : '') + '\r\n' + reqBody, 'latin1') });
    if (i % 4 === 3) {
      out.push({ dir: 1, bytes: Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nDate: Tue, 25 Nov 2026 00:00:00 GMT\r\n\r\n200\r\n', 'latin1'), body, Buffer.from('\r\n0\r\n\r\n')]) });
    } else {
      out.push({ dir: 1, bytes: Buffer.concat([Buffer.from(`HTTP/1.1 ${i % 10 === 9 ? '404 Not Found' : '200 OK'}\r\nContent-Type: application/json\r\nContent-Length: 512\r\nDate: Tue, 25 Nov 2026 00:00:00 GMT\r\nServer: bench\r\n\r\n`, 'latin1'), body]) });
    }
  }
  return out;
}

interface Llhttp {
  memory: WebAssembly.Memory;
  llhttp_alloc(type: number): number;
  llhttp_execute(p: number, buf: number, len: number): number;
  llhttp_get_method(p: number): number;
  malloc(n: number): number;
}

type Env = Record<string, (...a: number[]) => number>;

async function instantiate(env: Env): Promise<Llhttp> {
  const wasm = require(path.join(repoRoot, 'node_modules', 'undici', 'lib', 'llhttp', 'llhttp_simd-wasm.js'));
  const instance = await WebAssembly.instantiate(await WebAssembly.compile(wasm), { env });
  return instance.exports as unknown as Llhttp;
}

/** llhttp parsing only: every callback a no-op (a lower bound of what a user of it pays). */
async function llhttp(onMessage: () => void): Promise<Llhttp> {
  const noop = () => 0;
  return instantiate({
    wasm_on_url: noop, wasm_on_status: noop, wasm_on_message_begin: noop, wasm_on_header_field: noop,
    wasm_on_header_value: noop, wasm_on_headers_complete: noop, wasm_on_body: noop,
    wasm_on_message_complete: () => { onMessage(); return 0; },
  });
}

const METHODS: Record<number, string> = { 1: 'GET', 2: 'HEAD', 3: 'POST', 4: 'PUT', 0: 'DELETE', 5: 'CONNECT', 6: 'OPTIONS', 7: 'TRACE', 28: 'PATCH' };

/** llhttp with callbacks that build what telegen's record holds for the same exchange (method,
 *  url.path / url.query, server.address / port, user_agent.original, the traceparent and
 *  content-type headers, status, body and message sizes), the way a user of llhttp gets it:
 *  strings from the Wasm memory in the callbacks, one attributes object per exchange. The fair
 *  peer for telegen's records; the no-op run above is parsing alone. */
async function llhttpFields(onExchange: (a: Record<string, unknown>) => void): Promise<{ ll: Llhttp; begin(dir: 0 | 1, len: number): void }> {
  type Latin1 = Buffer & { latin1Slice(start: number, end: number): string };
  let mem = Buffer.alloc(0) as Latin1;
  let dir: 0 | 1 = 0;
  let framed = false;
  let ll: Llhttp;
  let a: Record<string, unknown> = {};
  let field = '';
  let body = 0;
  let size = 0;
  const str = (at: number, len: number) => mem.latin1Slice(at, at + len);
  ll = await instantiate({
    wasm_on_message_begin: () => { body = 0; framed = false; return 0; },
    wasm_on_url: (p, at, len) => {
      a = {};
      const u = str(at, len);
      const q = u.indexOf('?');
      a['network.protocol.name'] = 'http'; a['network.protocol.version'] = '1.1';
      a['http.request.method'] = METHODS[ll.llhttp_get_method(p)] ?? '_OTHER';
      a['url.path'] = q < 0 ? u : u.slice(0, q);
      if (q >= 0) a['url.query'] = u.slice(q + 1);
      return 0;
    },
    wasm_on_status: () => 0,
    wasm_on_header_field: (_p, at, len) => { field = str(at, len).toLowerCase(); return 0; },
    wasm_on_header_value: (_p, at, len) => {
      const req = dir === 0;
      switch (field) {
        case 'host': if (req) { const v = str(at, len); const c = v.lastIndexOf(':'); a['server.address'] = c < 0 ? v : v.slice(0, c); if (c >= 0) a['server.port'] = Number(v.slice(c + 1)); } break;
        case 'user-agent': if (req) a['user_agent.original'] = str(at, len); break;
        case 'traceparent': if (req) a['http.request.header.traceparent'] = [str(at, len)]; break;
        case 'content-type': a[req ? 'http.request.header.content-type' : 'http.response.header.content-type'] = [str(at, len)]; break;
        case 'transfer-encoding': framed = true; a[req ? 'http.request.header.transfer-encoding' : 'http.response.header.transfer-encoding'] = [str(at, len)]; break;
        case 'content-length': framed = true; break;
      }
      return 0;
    },
    wasm_on_headers_complete: (_p, status) => { if (status) a['http.response.status_code'] = status; return 0; },
    wasm_on_body: (_p, _at, len) => { body += len; return 0; },
    wasm_on_message_complete: () => {
      if (dir === 0) {
        if (framed) a['http.request.body.size'] = body;
        a['telegen.request.size'] = size;
      } else {
        a['http.response.body.size'] = body; a['telegen.response.size'] = size;
        onExchange(a);
      }
      return 0;
    },
  });
  return { ll, begin(d, len) { dir = d; size = len; if (mem.buffer !== ll.memory.buffer) mem = Buffer.from(ll.memory.buffer) as Latin1; } };
}

async function main(): Promise<void> {
  const chunks = workload(20_000);
  const totalBytes = chunks.reduce((a, c) => a + c.bytes.length, 0);
  const rounds = Number(process.env.BENCH_ROUNDS || 7);

  let llMessages = 0;
  const ll = await llhttp(() => { llMessages++; });
  const reqP = ll.llhttp_alloc(1);
  const resP = ll.llhttp_alloc(2);
  const buf = ll.malloc(1 << 20);
  const llRun = () => cpu(() => {
    for (const c of chunks) {
      new Uint8Array(ll.memory.buffer).set(c.bytes, buf);
      const r = ll.llhttp_execute(c.dir === 0 ? reqP : resP, buf, c.bytes.length);
      if (r !== 0) throw new Error(`llhttp error ${r}`);
    }
  });

  let llExchanges = 0;
  // The last 12 exchanges of each side: GET and POST, Content-Length and chunked, 200 and 404.
  const lastFields: Array<Record<string, unknown>> = [];
  const fx = await llhttpFields((a) => { llExchanges++; lastFields.push(a); if (lastFields.length > 12) lastFields.shift(); });
  const fReq = fx.ll.llhttp_alloc(1);
  const fRes = fx.ll.llhttp_alloc(2);
  const fBuf = fx.ll.malloc(1 << 20);
  const fieldsRun = () => cpu(() => {
    for (const c of chunks) {
      fx.begin(c.dir, c.bytes.length);
      new Uint8Array(fx.ll.memory.buffer).set(c.bytes, fBuf);
      const r = fx.ll.llhttp_execute(c.dir === 0 ? fReq : fRes, fBuf, c.bytes.length);
      if (r !== 0) throw new Error(`llhttp error ${r}`);
    }
  });

  let records = 0;
  const lastRecords: Array<Record<string, unknown>> = [];
  const inst = DecoderInstance.fromBytes(fs.readFileSync(path.join(repoRoot, 'build', 'decoders', 'http1.wasm')), {
    onRecord: (r) => { records++; lastRecords.push(r.attributes as Record<string, unknown>); if (lastRecords.length > 12) lastRecords.shift(); },
  });
  let stream = 1;
  const oursRun = () => {
    const s = stream++;
    let ts = 1n;
    const dt = cpu(() => { for (const c of chunks) inst.feed(s, c.dir, c.bytes, ts++); });
    inst.closeStream(s);
    return dt;
  };
  const baselineDir = process.env.BENCH_BASELINE;
  let baseRecords = 0;
  const base = baselineDir ? loadDecoder(baselineDir, 'http1', () => { baseRecords++; }) : null;
  let baseStream = 1;
  const baseRun = () => {
    const s = baseStream++;
    let ts = 1n;
    const dt = cpu(() => { for (const c of chunks) base!.feed(s, c.dir, c.bytes, ts++); });
    base!.closeStream(s);
    return dt;
  };
  const baseMBps: number[] = [];
  const baseRatio: number[] = [];

  const ours: number[] = [];
  const theirs: number[] = [];
  const ratio: number[] = [];
  const fieldsMBps: number[] = [];
  const fieldsRatio: number[] = [];
  for (let r = 0; r < rounds + 1; r++) {
    // alternate order each round so neither side always runs on a warmer cache
    // the baseline runs first in odd rounds, last in even ones
    let bt = base && r % 2 ? baseRun() : 0;
    const a = r % 2 ? llRun() : oursRun();
    const b = r % 2 ? oursRun() : llRun();
    const [o, l] = r % 2 ? [b, a] : [a, b];
    if (base && r % 2 === 0) bt = baseRun();
    const ft = fieldsRun();
    if (r === 0) continue; // warm-up
    fieldsMBps.push(totalBytes / ft / 1e6);
    fieldsRatio.push(ft / o);
    if (base) { baseMBps.push(totalBytes / bt / 1e6); baseRatio.push(bt / o); }
    ours.push(totalBytes / o / 1e6);
    theirs.push(totalBytes / l / 1e6);
    ratio.push(l / o);
  }
  const exchangesPerRound = chunks.length / 2;
  if (records !== exchangesPerRound * (rounds + 1)) throw new Error(`decoder emitted ${records} records, expected ${exchangesPerRound * (rounds + 1)}`);
  if (llMessages !== chunks.length * (rounds + 1)) throw new Error(`llhttp completed ${llMessages} messages, expected ${chunks.length * (rounds + 1)}`);
  if (llExchanges !== exchangesPerRound * (rounds + 1)) throw new Error(`llhttp with fields completed ${llExchanges} exchanges, expected ${exchangesPerRound * (rounds + 1)}`);
  // The same fields on both sides, or the comparison is void.
  const canon = (xs: Array<Record<string, unknown>>) => JSON.stringify(xs.map((x) => Object.keys(x).sort().map((k) => [k, x[k]])));
  const want = canon(lastRecords);
  const got = canon(lastFields);
  if (want !== got) throw new Error(`llhttp fields differ from telegen's record:\n${got}\n${want}`);
  writeResult('http1-decoder', {
    workload: { exchanges: exchangesPerRound, bytes: totalBytes, chunking: 'one chunk per message' },
    telegen_http1_MBps: spread(ours),
    llhttp_simd_MBps: spread(theirs),
    ratio_telegen_over_llhttp: spread(ratio),
    llhttp_fields_MBps: spread(fieldsMBps),
    ratio_llhttp_fields_cpu_over_telegen_cpu: spread(fieldsRatio),
    ...(base ? { baseline: baselineDir, baseline_MBps: spread(baseMBps), ratio_baseline_cpu_over_telegen_cpu: spread(baseRatio), baseline_records_per_round: baseRecords / (rounds + 1) } : {}),
    note: 'telegen includes the host window copy, request/response stitching and record decoding into JS objects; llhttp_simd parses with no-op callbacks; llhttp_fields builds the same attributes object per exchange as telegen\'s record (asserted equal) in its callbacks',
  });
}

main().catch((e) => { console.error(e); process.exit(1); });
