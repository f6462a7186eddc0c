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
  malloc(n: number): number;
}

async function llhttp(onMessage: () => void): Promise<Llhttp> {
  const wasm = require(path.join(repoRoot, 'node_modules', 'undici', 'lib', 'llhttp', 'llhttp_simd-wasm.js'));
  const noop = () => 0;
  const instance = await WebAssembly.instantiate(await WebAssembly.compile(wasm), {
    env: {
      wasm_on_url: noop, wasm_on_status: noop, wasm_on_message_begin: noop, wasm_on_header_field: noop,
      wasm_on_header_value: noop, wasm_on_headers_complete: noop, wasm_on_body: noop,
      wasm_on_message_complete: () => { onMessage(); return 0; },
    },
  });
  return instance.exports as unknown as Llhttp;
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

  let records = 0;
  const inst = DecoderInstance.fromBytes(fs.readFileSync(path.join(repoRoot, 'build', 'decoders', 'http1.wasm')), { onRecord: () => { records++; } });
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
  for (let r = 0; r < rounds + 1; r++) {
    // alternate order each round so neither side always runs on a warmer cache
    // the baseline runs first in odd rounds, last in even ones
    let bt = base && r % 2 ? baseRun() : 0;
    const a = r % 2 ? llRun() : oursRun();
    const b = r % 2 ? oursRun() : llRun();
    const [o, l] = r % 2 ? [b, a] : [a, b];
    if (base && r % 2 === 0) bt = baseRun();
    if (r === 0) continue; // warm-up
    if (base) { baseMBps.push(totalBytes / bt / 1e6); baseRatio.push(bt / o); }
    ours.push(totalBytes / o / 1e6);
    theirs.push(totalBytes / l / 1e6);
    ratio.push(l / o);
  }
  const exchangesPerRound = chunks.length / 2;
  if (records !== exchangesPerRound * (rounds + 1)) throw new Error(`decoder emitted ${records} records, expected ${exchangesPerRound * (rounds + 1)}`);
  if (llMessages !== chunks.length * (rounds + 1)) throw new Error(`llhttp completed ${llMessages} messages, expected ${chunks.length * (rounds + 1)}`);
  writeResult('http1-decoder', {
    workload: { exchanges: exchangesPerRound, bytes: totalBytes, chunking: 'one chunk per message' },
    telegen_http1_MBps: spread(ours),
    llhttp_simd_MBps: spread(theirs),
    ratio_telegen_over_llhttp: spread(ratio),
    ...(base ? { baseline: baselineDir, baseline_MBps: spread(baseMBps), ratio_baseline_cpu_over_telegen_cpu: spread(baseRatio), baseline_records_per_round: baseRecords / (rounds + 1) } : {}),
    note: 'telegen includes the host window copy, request/response stitching and record decoding into JS objects; llhttp only parses with no-op callbacks',
  });
}

main().catch((e) => { console.error(e); process.exit(1); });
