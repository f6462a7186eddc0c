// PostgreSQL decoder beside pg-protocol (node-postgres' parser) on the same capture bytes
// (decoders/pgsql/testdata/pg15-live.pcap, reassembled by host/src/replay, repeated), in one run,
// alternating, CPU time of this process. Ours decodes through the host's DecoderInstance (what
// the agent pays: window copy, fuel, exchange stitching, records to JS). pg-protocol parses only
// the backend direction (it has no frontend parser), so two comparisons: like for like, telegen
// fed exactly the backend bytes pg-protocol parses (every message framed and decoded; without the
// requests its exchanges are FLAG_NO_REQUEST records); and telegen on both directions (the
// agent's real work) against pg-protocol's backend-only time. `tshark -r` on the same capture is
// a reference (process time, includes start-up and its own reassembly).
// BENCH_BASELINE=DIR (a built worktree of an earlier commit) also runs that tree's host and
// pgsql.wasm on the same bytes, alternating with this tree's in the same process: the A/B. Before
// timing, both trees decode one capture (both directions, and backend only) and must hand over
// identical records (every field, flag and time), so the A/B compares equal work.
// This tree feeds a capture's reads the way the router feeds a ring batch (DecoderInstance.feedBatch:
// several reads per parse_batch call, records read after the call); so is the baseline when its
// host has feedBatch, else it gets one feed() per read. `telegen_pgsql_MBps_backend_only_one_read_per_call` is this
// tree fed one read per call, as a source that does not batch would.
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { DecoderInstance } from '../host/src/decoders/instance';
import { ChunkBatch } from '../host/src/decoders/batch';
import { replayFile } from '../host/src/replay';
import { spread, writeResult, repoRoot, cpuSecondsIn, loadDecoder } from './lib';

type Feedable = ReturnType<typeof loadDecoder>;
type Read = { conn: number; dir: number; bytes: Buffer };

/** Feeds reads with stream ids offset by `off`: as one ring batch where the instance takes batches
 *  (results other than 'ok' are not expected from this capture: the run fails on them), else one
 *  feed() per read. */
function feedAll(d: Feedable, reads: Read[], ts: bigint[], off: number, batch: ChunkBatch | undefined): void {
  const inst = d as Partial<DecoderInstance>;
  if (!batch || typeof inst.feedBatch !== 'function') {
    for (let i = 0; i < reads.length; i++) d.feed(off + reads[i].conn, reads[i].dir, reads[i].bytes, ts[i]);
    return;
  }
  batch.clear();
  for (let i = 0; i < reads.length; i++) batch.push(off + reads[i].conn, reads[i].dir, reads[i].bytes, ts[i], undefined);
  for (let i = 0; i < batch.n;) {
    const j = inst.feedBatch(batch, i, batch.n);
    if (j < batch.n && inst.batchResult !== 'ok') throw new Error(`read ${j}: ${inst.batchResult}`);
    i = j + 1;
  }
  batch.clear();
}
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { Parser } = require('pg-protocol/dist/parser');

const capture = path.join(repoRoot, 'decoders', 'pgsql', 'testdata', 'pg15-live.pcap');

async function main(): Promise<void> {
  const chunks: Read[] = [];
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
  // Rounds of ~100 captures: at 20 a round lasted a few ms of CPU and the spread swamped the A/B.
  const REPEAT = Number(process.env.BENCH_REPEAT || 100);
  const bytesAll = chunks.reduce((a, c) => a + c.bytes.length, 0) * REPEAT;
  const bytesBackend = chunks.filter((c) => c.dir === 1).reduce((a, c) => a + c.bytes.length, 0) * REPEAT;
  const bytesBackendFed = backend.reduce((a, c) => a + c.bytes.length, 0) * REPEAT;
  const rounds = Number(process.env.BENCH_ROUNDS || 7);

  // Timestamps as the agent has them (one BigInt per read, made by the ingest path, not here).
  const tsOf = (list: unknown[]) => list.map((_, i) => BigInt(i + 1));
  const chunkTs = tsOf(chunks), backendTs = tsOf(backend);

  let records = 0;
  const wasm = fs.readFileSync(path.join(repoRoot, 'build', 'decoders', 'pgsql.wasm'));
  const inst = DecoderInstance.fromBytes(wasm, { onRecord: () => { records++; } });
  const baselineDir = process.env.BENCH_BASELINE;
  const baseInst = baselineDir ? loadDecoder(baselineDir, 'pgsql', () => undefined) : undefined;
  // The A/B compares equal work: both trees must turn the same bytes into the same records.
  const recordsPerCapture = { both: 0, backend: 0 };
  {
    const ser = (r: unknown) => JSON.stringify(r, (_k, v) => typeof v === 'bigint' ? `${v}n` : v);
    const run = (make: (on: (r: unknown) => void) => Feedable, feeds: Read[], batch?: ChunkBatch) => {
      const out: string[] = [];
      const d = make((r) => out.push(ser(r)));
      feedAll(d, feeds, feeds.map((_, i) => BigInt(i + 1)), 0, batch);
      for (const id of conns) d.closeStream(id);
      return out;
    };
    const same = (name: string, ours: string[], theirs: string[], what: string) => {
      const i = ours.findIndex((r, k) => r !== theirs[k]);
      if (ours.length !== theirs.length || i >= 0) throw new Error(`records differ from ${what} (${name}): ${ours.length} vs ${theirs.length}, first at ${i}: ${ours[i]} / ${theirs[i]}`);
    };
    const backendFeeds = backend.map((b) => ({ ...b, dir: 1 }));
    for (const [name, feeds] of [['both', chunks], ['backend', backendFeeds]] as const) {
      const ours = run((on) => DecoderInstance.fromBytes(wasm, { onRecord: on }), feeds, new ChunkBatch());
      if (!ours.length) throw new Error(`no records (${name})`);
      recordsPerCapture[name] = ours.length;
      same(name, ours, run((on) => DecoderInstance.fromBytes(wasm, { onRecord: on }), feeds), 'one read per call');
      if (!baselineDir) continue;
      same(name, ours, run((on) => loadDecoder(baselineDir, 'pgsql', on as () => void), feeds), "the baseline's");
    }
  }
  let base = 1;
  let recordsBoth = 0;
  const backendReads = backend.map((b) => ({ ...b, dir: 1 }));
  const backendOn = (d: Feedable, batch: ChunkBatch | undefined) => () => cpuSecondsIn(() => {
    for (let r = 0; r < REPEAT; r++) {
      const off = base; base += 1000;
      feedAll(d, backendReads, backendTs, off, batch);
      for (const id of conns) d.closeStream(off + id);
    }
  });
  const batch = new ChunkBatch();
  const ours = () => cpuSecondsIn(() => {
    const r0 = records;
    for (let r = 0; r < REPEAT; r++) {
      const off = base; base += 1000;
      feedAll(inst, chunks, chunkTs, off, batch);
      for (const id of conns) inst.closeStream(off + id);
    }
    recordsBoth += records - r0;
  });
  const oursBackend = backendOn(inst, batch);
  const oursBackendSingle = backendOn(inst, undefined);
  // The baseline fed as this tree is (several reads per call) when its host has feedBatch.
  const baseBackend = baseInst ? backendOn(baseInst, new ChunkBatch()) : undefined;
  let messages = 0;
  const theirs = () => cpuSecondsIn(() => {
    for (let r = 0; r < REPEAT; r++) {
      const parsers = new Map<number, { parse(b: Buffer, cb: (m: unknown) => void): void }>();
      for (const c of backend) {
        let p = parsers.get(c.conn);
        if (!p) { p = new Parser(); parsers.set(c.conn, p!); }
        p!.parse(c.bytes, () => { messages++; });
      }
    }
  });
  const o: number[] = [], ob: number[] = [], t: number[] = [], ratio: number[] = [], ratioBackend: number[] = [];
  const bb: number[] = [], ratioBaseline: number[] = [], os1: number[] = [];
  for (let r = 0; r < rounds + 1; r++) {
    // Alternate the order each round so neither side always runs on a warmer cache.
    const fwd = [ours, oursBackend, oursBackendSingle, theirs, ...(baseBackend ? [baseBackend] : [])];
    const order = r % 2 ? fwd.reverse() : fwd;
    const dt = new Map(order.map((f) => [f, f()]));
    if (r === 0) continue;
    const [dto, dtb, dtt] = [dt.get(ours)!, dt.get(oursBackend)!, dt.get(theirs)!];
    o.push(bytesAll / dto / 1e6); ob.push(bytesBackendFed / dtb / 1e6); t.push(bytesBackendFed / dtt / 1e6);
    ratio.push(dtt / dto); ratioBackend.push(dtt / dtb);
    os1.push(bytesBackendFed / dt.get(oursBackendSingle)! / 1e6);
    if (baseBackend) { const dbb = dt.get(baseBackend)!; bb.push(bytesBackendFed / dbb / 1e6); ratioBaseline.push(dbb / dtb); }
  }
  if (inst.counters.traps + inst.counters.invalid !== 0) throw new Error(`decoder failed: ${inst.lastError}`);
  const tshark: number[] = [];
  for (let r = 0; r < 3; r++) {
    const t0 = process.hrtime.bigint();
    execFileSync('tshark', ['-r', capture, '-Y', 'pgsql', '-T', 'fields', '-e', 'pgsql.type'], { stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 1 << 28 });
    tshark.push((bytesAll / REPEAT) / (Number(process.hrtime.bigint() - t0) / 1e9) / 1e6);
  }
  writeResult('pgsql-decoder', {
    workload: { capture: path.relative(repoRoot, capture), connections: conns.length, repeat: REPEAT, bytes_both_directions: bytesAll, bytes_backend: bytesBackend, bytes_backend_fed: bytesBackendFed },
    telegen_pgsql_MBps_backend_only: spread(ob),
    telegen_pgsql_MBps_backend_only_one_read_per_call: spread(os1),
    pg_protocol_MBps_backend_only: spread(t),
    ratio_backend_only_time_pg_protocol_over_telegen: spread(ratioBackend),
    telegen_pgsql_MBps_both_directions: spread(o),
    ratio_time_pg_protocol_backend_over_telegen_both: spread(ratio),
    tshark_MBps_process: spread(tshark),
    ...(baselineDir ? { baseline: baselineDir, baseline_MBps_backend_only: spread(bb), ratio_backend_only_time_baseline_over_telegen: spread(ratioBaseline) } : {}),
    records_per_capture: recordsBoth / ((rounds + 1) * REPEAT), backend_messages_per_capture: messages / ((rounds + 1) * REPEAT),
    records_checked: { ...recordsPerCapture, same_as_baseline: !!baselineDir },
    note: 'CPU time of the process. ratio = pg-protocol time / telegen time on the same bytes (> 1: telegen faster). backend_only: both parse exactly the backend bytes; both: telegen decodes both directions into exchanges while pg-protocol parses the backend direction only; tshark includes process start and its own TCP reassembly',
  });
}

main().catch((e) => { console.error(e); process.exit(1); });
