// DNS decoder MB/s beside dns-packet (what a user would pick in JS) on the same messages in one
// run. Ours runs through the host's DecoderInstance (window copy, query/response stitching,
// presentation of every answer, records decoded to JS objects), i.e. what the agent pays;
// dns-packet decodes each message to objects and nothing else.
// BENCH_BASELINE=DIR (a built worktree of an earlier commit) also runs that tree's host and
// dns.wasm on the same messages, alternating with this tree's in the same process: the A/B.
import * as fs from 'fs';
import * as path from 'path';
import { DecoderInstance } from '../host/src/decoders/instance';
import { spread, writeResult, repoRoot, cpuSecondsIn, loadDecoder } from './lib';
// eslint-disable-next-line @typescript-eslint/no-var-requires
const dnsPacket: any = require('dns-packet');

function workload(n: number): Array<{ dir: 0 | 1; bytes: Buffer }> {
  const out: Array<{ dir: 0 | 1; bytes: Buffer }> = [];
  const opt = { type: 'OPT', name: '.', udpPayloadSize: 1232, options: [{ code: 'COOKIE', data: Buffer.alloc(8, 7) }] };
  for (let i = 0; i < n; i++) {
    const name = `svc-${i % 500}.ns${i % 7}.svc.cluster.local`;
    const kind = i % 4;
    const type = ['A', 'AAAA', 'A', 'TXT'][kind];
    const answers = kind === 0 ? [1, 2, 3].map((k) => ({ type: 'A', name, ttl: 30, data: `10.${k}.${i & 255}.${(i >> 8) & 255}` }))
      : kind === 1 ? [{ type: 'AAAA', name, ttl: 30, data: `2001:db8::${(i & 0xffff).toString(16)}` }]
        : kind === 2 ? [{ type: 'CNAME', name, ttl: 30, data: `lb.${name}` }, { type: 'A', name: `lb.${name}`, ttl: 30, data: '192.0.2.10' }]
          : [{ type: 'TXT', name, ttl: 30, data: [`v=spf1 include:_spf.example.com ~all ${i}`] }];
    const id = i & 0xffff;
    out.push({ dir: 0, bytes: dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name }], additionals: [opt] }) });
    out.push({ dir: 1, bytes: dnsPacket.encode({ type: 'response', id, flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE, questions: [{ type, name }], answers, additionals: [opt] }) });
  }
  return out;
}

async function main(): Promise<void> {
  const msgs = workload(20_000);
  const totalBytes = msgs.reduce((a, c) => a + c.bytes.length, 0);
  const rounds = Number(process.env.BENCH_ROUNDS || 7);
  // Unmeasured rounds first: V8 compiles Wasm in a baseline tier and optimizes hot functions in
  // the background, so the first rounds of a freshly loaded module measure the compiler (one round
  // was not enough: the next ran at half speed). An agent runs its decoders for hours.
  const warmup = Number(process.env.BENCH_WARMUP || 3);

  let decoded = 0;
  const theirsRun = () => cpuSecondsIn(() => {
    for (const m of msgs) { if (dnsPacket.decode(m.bytes).id >= 0) decoded++; }
  });

  let records = 0;
  const inst = DecoderInstance.fromBytes(fs.readFileSync(path.join(repoRoot, 'build', 'decoders', 'dns.wasm')), { onRecord: () => { records++; } });
  const baselineDir = process.env.BENCH_BASELINE;
  let baseRecords = 0;
  const baseInst = baselineDir ? loadDecoder(baselineDir, 'dns', () => { baseRecords++; }) : undefined;
  let stream = 1;
  const runOn = (d: { feed(s: number, dir: number, b: Uint8Array, ts: bigint): unknown; closeStream(s: number): void }) => () => {
    // a client on one UDP 4-tuple; ids do not repeat within the 20k messages' live window
    const s = stream++;
    let ts = 1n;
    const dt = cpuSecondsIn(() => { for (const m of msgs) d.feed(s, m.dir, m.bytes, ts++); });
    d.closeStream(s);
    return dt;
  };
  const oursRun = runOn(inst);
  const baseRun = baseInst ? runOn(baseInst) : undefined;

  // The decoder module alone, instantiated without the host: records are built but not decoded
  // into JS objects and no fuel metering is rewritten in. Shows where the time goes.
  let rawRecords = 0;
  const raw = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(path.join(repoRoot, 'build', 'decoders', 'dns.wasm'))), {
    env: { abort: () => { throw new Error('abort'); } },
    telegen: { emit: () => { rawRecords++; }, log: () => undefined },
  }).exports as any;
  const rawWin: number = raw.input();
  const rawRun = () => {
    const s = stream++;
    let ts = 1n;
    let mem = new Uint8Array(raw.memory.buffer);
    const dt = cpuSecondsIn(() => {
      for (const m of msgs) {
        if (mem.byteLength === 0) mem = new Uint8Array(raw.memory.buffer);
        mem.set(m.bytes, rawWin);
        if (raw.parse(s, m.dir, m.bytes.length, ts++) !== m.bytes.length) throw new Error('raw parse did not consume a datagram');
      }
    });
    raw.close(s);
    return dt;
  };
  const rawMBps: number[] = [];
  for (let r = 0; r < rounds + warmup; r++) {
    const dt = rawRun();
    if (r >= warmup) rawMBps.push(totalBytes / dt / 1e6);
  }
  if (rawRecords !== exchanges0(msgs) * (rounds + warmup)) throw new Error(`raw decoder emitted ${rawRecords}`);

  const ours: number[] = [];
  const theirs: number[] = [];
  const ratio: number[] = [];
  const baseMBps: number[] = [], ratioBaseline: number[] = [];
  for (let r = 0; r < rounds + warmup; r++) {
    // Alternate the order each round so neither side always runs on a warmer cache.
    const fwd = [oursRun, theirsRun, ...(baseRun ? [baseRun] : [])];
    const order = r % 2 ? fwd.reverse() : fwd;
    const dt = new Map(order.map((f) => [f, f()]));
    if (r < warmup) continue;
    const [o, t] = [dt.get(oursRun)!, dt.get(theirsRun)!];
    ours.push(totalBytes / o / 1e6);
    theirs.push(totalBytes / t / 1e6);
    ratio.push(t / o);
    if (baseRun) { const b = dt.get(baseRun)!; baseMBps.push(totalBytes / b / 1e6); ratioBaseline.push(b / o); }
  }
  if (baseInst && baseRecords !== (msgs.length / 2) * (rounds + warmup)) throw new Error(`baseline decoder emitted ${baseRecords}`);
  const exchanges = msgs.length / 2;
  if (records !== exchanges * (rounds + warmup)) throw new Error(`decoder emitted ${records} records, expected ${exchanges * (rounds + warmup)}`);
  if (decoded !== msgs.length * (rounds + warmup)) throw new Error(`dns-packet decoded ${decoded}`);
  writeResult('dns-decoder', {
    rounds: { measured: rounds, warmup },
    workload: { exchanges, bytes: totalBytes, transport: 'udp, one datagram per feed', mix: 'A x3, AAAA, CNAME+A, TXT; EDNS with cookie' },
    telegen_dns_MBps: spread(ours),
    dns_packet_MBps: spread(theirs),
    ratio_telegen_over_dns_packet: spread(ratio),
    telegen_dns_module_only_MBps: spread(rawMBps),
    ...(baselineDir ? { baseline: baselineDir, baseline_MBps: spread(baseMBps), ratio_time_baseline_over_telegen: spread(ratioBaseline) } : {}),
    note: 'telegen includes the host window copy, fuel metering, query/response stitching, answer presentation and record decoding into JS objects; dns-packet only decodes. module_only: the same decoder without the host (records built, not decoded into JS)',
  });
}

function exchanges0(msgs: unknown[]): number { return msgs.length / 2; }

main().catch((e) => { console.error(e); process.exit(1); });
