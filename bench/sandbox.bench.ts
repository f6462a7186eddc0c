// Cost of the sandbox: events/s through a decoder as the agent runs it (verified, fuel-metered,
// window copy, records decoded) vs the same AssemblyScript module instantiated directly with no
// metering and a no-op emit; swap latency (bytes → serving new streams); memory per instance.
import * as fs from 'fs';
import * as path from 'path';
import { DecoderInstance } from '../host/src/decoders/instance';
import { DecoderRegistry } from '../host/src/decoders/registry';
import { parsePolicy } from '../host/src/decoders/policy';
import { spread, writeResult, repoRoot } from './lib';

function exchanges(n: number): Array<{ dir: number; bytes: Buffer }> {
  const out: Array<{ dir: number; bytes: Buffer }> = [];
  for (let i = 0; i < n; i++) {
    out.push({ dir: 0, bytes: Buffer.from(`GET /api/items/${i}?q=${i % 13} HTTP/1.1\r\nHost: svc:8080\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n`) });
    out.push({ dir: 1, bytes: Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{"id":${String(i).padStart(8, '0')}}`) });
  }
  return out;
}

function main(): void {
  const wasm = fs.readFileSync(path.join(repoRoot, 'build', 'decoders', 'http1.wasm'));
  const events = exchanges(20_000);
  const rounds = Number(process.env.BENCH_ROUNDS || 5);

  let sandboxRecords = 0;
  const inst = DecoderInstance.fromBytes(wasm, { onRecord: () => { sandboxRecords++; } });
  // Direct: the unmetered module, bytes written into its window, parse() called, emit ignored.
  let directRecords = 0;
  const raw = new WebAssembly.Instance(new WebAssembly.Module(wasm), {
    env: { abort: () => { throw new Error('abort'); } },
    telegen: { emit: () => { directRecords++; }, log: () => undefined },
  }).exports as unknown as { memory: WebAssembly.Memory; input(): number; parse(s: number, d: number, l: number, t: bigint): number; close(s: number): void };
  const mem = raw.memory;
  const win = raw.input();

  let stream = 1;
  const runSandbox = () => {
    const s = stream++;
    const t0 = process.hrtime.bigint();
    let ts = 1n;
    for (const e of events) inst.feed(s, e.dir, e.bytes, ts++);
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    inst.closeStream(s);
    return events.length / dt;
  };
  const runDirect = () => {
    const s = stream++;
    const t0 = process.hrtime.bigint();
    let ts = 1n;
    for (const e of events) {
      // the same present-again contract the host implements, minimally
      let off = 0;
      while (off < e.bytes.length) {
        new Uint8Array(mem.buffer).set(e.bytes.subarray(off), win);
        const r = raw.parse(s, e.dir, e.bytes.length - off, ts);
        if (r <= 0) break;
        off += r;
      }
      ts++;
    }
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    raw.close(s);
    return events.length / dt;
  };
  const sb: number[] = [];
  const dr: number[] = [];
  for (let r = 0; r <= rounds; r++) {
    const a = r % 2 ? runDirect() : runSandbox();
    const b = r % 2 ? runSandbox() : runDirect();
    if (r === 0) continue;
    sb.push(r % 2 ? b : a);
    dr.push(r % 2 ? a : b);
  }
  if (sandboxRecords !== directRecords) throw new Error(`record counts differ: sandbox ${sandboxRecords}, direct ${directRecords}`);

  // Swap latency: bytes in → verified, metered, instantiated, active for new streams.
  const reg = new DecoderRegistry({ onRecord: () => undefined }, parsePolicy({}));
  reg.add(wasm, 'bench', 'builtin');
  const swaps: number[] = [];
  for (let i = 0; i < 10; i++) {
    const t0 = process.hrtime.bigint();
    reg.add(wasm, 'bench', 'api');
    swaps.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const perInstance: Record<string, number> = {};
  for (const f of fs.readdirSync(path.join(repoRoot, 'build', 'decoders')).filter((x) => x.endsWith('.wasm'))) {
    const d = DecoderInstance.fromBytes(fs.readFileSync(path.join(repoRoot, 'build', 'decoders', f)), { onRecord: () => undefined });
    perInstance[f.replace('.wasm', '')] = d.memoryBytes();
  }
  writeResult('sandbox', {
    workload: { decoder: 'http1', events: events.length, exchanges: events.length / 2 },
    sandboxed_events_per_s: spread(sb),
    direct_events_per_s: spread(dr),
    ratio_sandboxed_over_direct: spread(sb.map((x, i) => x / dr[i])),
    swap_latency_ms: spread(swaps),
    linear_memory_bytes_per_instance_at_start: perInstance,
    note: 'sandboxed = verified + fuel-metered module through DecoderInstance (window copy, records decoded to JS objects); direct = the same .wasm unmetered, emit ignored',
  });
}

main();
