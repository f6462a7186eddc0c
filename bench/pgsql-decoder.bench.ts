// PostgreSQL decoder beside pg-protocol (node-postgres' parser) on the same capture bytes
// (decoders/pgsql/testdata/pg15-live.pcap, reassembled by host/src/replay, repeated), in one run,
// alternating. Ours decodes both directions through the host's DecoderInstance (what the agent
// pays: window copy, fuel, exchange stitching, records to JS); pg-protocol parses only the
// backend direction (it has no frontend parser), so its MB/s is over backend bytes and the ratio
// compares time per capture. `tshark -r` on the same capture is a reference (process time,
// includes start-up and its own reassembly).
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { DecoderInstance } from '../host/src/decoders/instance';
import { replayFile } from '../host/src/replay';
import { spread, writeResult, repoRoot } from './lib';
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { Parser } = require('pg-protocol/dist/parser');

const capture = path.join(repoRoot, 'decoders', 'pgsql', 'testdata', 'pg15-live.pcap');

async function main(): Promise<void> {
  const chunks: Array<{ conn: number; dir: number; bytes: Buffer }> = [];
  await replayFile(capture, {
    onOpen() { /* per data */ },
    onData(c, fromClient, b) { if (c.transport === 'tcp') chunks.push({ conn: c.id, dir: fromClient ? 0 : 1, bytes: Buffer.from(b) }); },
    onGap() { /* none in this capture */ },
    onClose() { /* per round */ },
  });
  const conns = [...new Set(chunks.map((c) => c.conn))];
  // pg-protocol's Parser expects typed messages from the first byte: libpq's SSLRequest is
  // answered by one untyped byte ('N'), which node-postgres reads before creating its parser.
  const backend: Array<{ conn: number; bytes: Buffer }> = [];
  const sawSslReq = new Set<number>(), skipped = new Set<number>();
  for (const c of chunks) {
    if (c.dir === 0 && c.bytes.length >= 8 && c.bytes.readUInt32BE(0) === 8 && c.bytes.readUInt32BE(4) === 80877103) sawSslReq.add(c.conn);
    if (c.dir !== 1) continue;
    if (sawSslReq.has(c.conn) && !skipped.has(c.conn)) { skipped.add(c.conn); if (c.bytes.length > 1) backend.push({ conn: c.conn, bytes: c.bytes.subarray(1) }); continue; }
    backend.push({ conn: c.conn, bytes: c.bytes });
  }
  const REPEAT = 20;
  const bytesAll = chunks.reduce((a, c) => a + c.bytes.length, 0) * REPEAT;
  const bytesBackend = chunks.filter((c) => c.dir === 1).reduce((a, c) => a + c.bytes.length, 0) * REPEAT;
  const rounds = Number(process.env.BENCH_ROUNDS || 7);

  let records = 0;
  const inst = DecoderInstance.fromBytes(fs.readFileSync(path.join(repoRoot, 'build', 'decoders', 'pgsql.wasm')), { onRecord: () => { records++; } });
  let base = 1;
  const ours = () => {
    const t0 = process.hrtime.bigint();
    for (let r = 0; r < REPEAT; r++) {
      const off = base; base += 1000;
      let ts = 1n;
      for (const c of chunks) inst.feed(off + c.conn, c.dir, c.bytes, ts++);
      for (const id of conns) inst.closeStream(off + id);
    }
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };
  let messages = 0;
  const theirs = () => {
    const t0 = process.hrtime.bigint();
    for (let r = 0; r < REPEAT; r++) {
      const parsers = new Map<number, { parse(b: Buffer, cb: (m: unknown) => void): void }>();
      for (const c of backend) {
        let p = parsers.get(c.conn);
        if (!p) { p = new Parser(); parsers.set(c.conn, p!); }
        p!.parse(c.bytes, () => { messages++; });
      }
    }
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };
  const o: number[] = [], t: number[] = [], ratio: number[] = [];
  for (let r = 0; r < rounds + 1; r++) {
    const a = r % 2 ? theirs() : ours();
    const b = r % 2 ? ours() : theirs();
    const [dto, dtt] = r % 2 ? [b, a] : [a, b];
    if (r === 0) continue;
    o.push(bytesAll / dto / 1e6); t.push(bytesBackend / dtt / 1e6); ratio.push(dtt / dto);
  }
  if (inst.counters.traps + inst.counters.invalid !== 0) throw new Error(`decoder failed: ${inst.lastError}`);
  const tshark: number[] = [];
  for (let r = 0; r < 3; r++) {
    const t0 = process.hrtime.bigint();
    execFileSync('tshark', ['-r', capture, '-Y', 'pgsql', '-T', 'fields', '-e', 'pgsql.type'], { stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 1 << 28 });
    tshark.push((bytesAll / REPEAT) / (Number(process.hrtime.bigint() - t0) / 1e9) / 1e6);
  }
  writeResult('pgsql-decoder', {
    workload: { capture: path.relative(repoRoot, capture), connections: conns.length, repeat: REPEAT, bytes_both_directions: bytesAll, bytes_backend: bytesBackend },
    telegen_pgsql_MBps_both_directions: spread(o),
    pg_protocol_MBps_backend_only: spread(t),
    ratio_time_pg_protocol_over_telegen: spread(ratio),
    tshark_MBps_process: spread(tshark),
    records_per_round: records / ((rounds + 1) * REPEAT), backend_messages_per_round: messages / ((rounds + 1) * REPEAT),
    note: 'ratio < 1: pg-protocol parsing only backend messages takes less time than telegen decoding both directions into exchanges; tshark includes process start and its own TCP reassembly',
  });
}

main().catch((e) => { console.error(e); process.exit(1); });
