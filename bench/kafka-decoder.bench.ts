// Kafka decoder MB/s beside kafkajs' own protocol decoding, on the same bytes in one run,
// alternating. kafkajs only decodes responses (it is a client: requests it encodes), so it gets
// the response frames and does what its connection does for each: read the size and correlation
// id, then the api's `decode` and `parse` (record batches included). Ours gets both directions
// through the host's DecoderInstance (window copy, fuel, correlation-id stitching, records to JS)
// — the agent's cost. Two workloads:
// - produce/fetch: kafkajs-encoded Produce v3 and Fetch v11 requests, and their responses built
//   with kafkajs' Encoder/RecordBatch (10 records of 200-byte values per batch, 8 topics);
// - capture: every kafkajs-decodable exchange of decoders/kafka/testdata/mock-kcat-kafkajs.pcapng
//   (librdkafka and kafkajs against the mock cluster: metadata, groups, offsets, small batches).
// Ratios compare the CPU time to get through the same capture, and MB/s over what each one reads.
// BENCH_BASELINE=DIR (a built worktree of an earlier commit) also runs that tree's kafka.wasm
// through this tree's host, in the same rounds, alternating: the module's own before/after.
import * as fs from 'fs';
import * as path from 'path';
import { DecoderInstance } from '../host/src/decoders/instance';
import { replayFile } from '../host/src/replay';
import { spread, writeResult, repoRoot } from './lib';
/* eslint-disable @typescript-eslint/no-var-requires */
const kjs = (p: string) => require(`kafkajs/src/protocol/${p}`);
const Encoder = kjs('encoder');
const Long = kjs('../utils/long');
const buildRequest = kjs('request');
const { RecordBatch } = kjs('recordBatch/v0');
const Record = kjs('recordBatch/record/v0');
const apiKeys: Record<string, number> = kjs('requests/apiKeys');
/* eslint-enable @typescript-eslint/no-var-requires */

interface Chunk { conn: number; dir: 0 | 1; bytes: Buffer }
interface Response { apiKey: number; version: number; frame: Buffer }
interface Workload { chunks: Chunk[]; responses: Response[] }

// kafkajs' request folder per api name where it differs from lowerCamelCase.
const DIRS: Record<string, string> = { GroupCoordinator: 'findCoordinator' };
const codecCache = new Map<string, { decode(b: Buffer): Promise<unknown>; parse(d: unknown): Promise<unknown> } | null>();
function kafkajsResponse(apiKey: number, version: number) {
  const k = `${apiKey}/${version}`;
  if (!codecCache.has(k)) {
    const name = Object.keys(apiKeys).find((n) => apiKeys[n] === apiKey);
    let codec = null;
    if (name) {
      const dir = DIRS[name] ?? name[0].toLowerCase() + name.slice(1);
      try { codec = kjs(`requests/${dir}/v${version}/response`); } catch { codec = null; }
    }
    codecCache.set(k, codec);
  }
  return codecCache.get(k) ?? null;
}

async function frame(correlationId: number, request: unknown): Promise<Buffer> {
  return (await buildRequest({ correlationId, clientId: 'bench-client', request })).buffer;
}

function responseFrame(correlationId: number, body: { buffer: Buffer }): Buffer {
  return new Encoder().writeInt32(4 + body.buffer.length).writeInt32(correlationId).writeBuffer(body.buffer).buffer;
}

async function batch(n: number, seed: number): Promise<Buffer> {
  const now = 1_700_000_000_000;
  const records = [];
  for (let i = 0; i < n; i++) {
    records.push(Record({ key: Buffer.from(`order-${seed}-${i}`), value: Buffer.alloc(200, 97 + ((seed + i) % 26)), headers: { 'trace-id': Buffer.from('abcd'.repeat(8)) }, offsetDelta: i, timestampDelta: i }));
  }
  const rb = await RecordBatch({ records, firstOffset: Long.fromInt(seed * n), firstTimestamp: now, maxTimestamp: now + n, lastOffsetDelta: n - 1 });
  return rb.buffer;
}

/** Produce v3 and Fetch v11 exchanges on one connection, correlation ids increasing. */
async function produceFetch(exchanges: number): Promise<Workload> {
  const produceReq = kjs('requests/produce/v3/request');
  const fetchReq = kjs('requests/fetch/v11/request');
  const chunks: Chunk[] = [];
  const responses: Response[] = [];
  const now = 1_700_000_000_000;
  for (let i = 0; i < exchanges; i++) {
    const cid = i + 1;
    const topic = `orders-${i % 8}`;
    const partition = i % 3;
    if (i % 2 === 0) {
      const messages = Array.from({ length: 10 }, (_, j) => ({ key: `order-${i}-${j}`, value: Buffer.alloc(200, 97 + ((i + j) % 26)), timestamp: now + j, headers: { 'trace-id': 'abcd'.repeat(8) } }));
      chunks.push({ conn: 1, dir: 0, bytes: await frame(cid, produceReq({ acks: -1, timeout: 30000, topicData: [{ topic, partitions: [{ partition, messages }] }] })) });
      const body = new Encoder()
        .writeArray([new Encoder().writeString(topic).writeArray([new Encoder().writeInt32(partition).writeInt16(0).writeInt64(i * 10).writeInt64(-1)])])
        .writeInt32(0);
      const f = responseFrame(cid, body);
      chunks.push({ conn: 1, dir: 1, bytes: f });
      responses.push({ apiKey: 0, version: 3, frame: f });
    } else {
      chunks.push({ conn: 1, dir: 0, bytes: await frame(cid, fetchReq({ replicaId: -1, maxWaitTime: 500, minBytes: 1, maxBytes: 1 << 20, topics: [{ topic, partitions: [{ partition, fetchOffset: String(i * 10), maxBytes: 1 << 20 }] }] })) });
      const records = await batch(10, i);
      const part = new Encoder().writeInt32(partition).writeInt16(0).writeInt64(i * 10 + 10).writeInt64(i * 10 + 10).writeInt64(0).writeInt32(0).writeInt32(-1).writeBytes(records);
      const body = new Encoder().writeInt32(0).writeInt16(0).writeInt32(0).writeArray([new Encoder().writeString(topic).writeArray([part])]);
      const f = responseFrame(cid, body);
      chunks.push({ conn: 1, dir: 1, bytes: f });
      responses.push({ apiKey: 1, version: 11, frame: f });
    }
  }
  return { chunks, responses };
}

/** The capture's exchanges kafkajs can decode (api key/version it has a response decoder for). */
async function capture(file: string): Promise<Workload & { skipped: number }> {
  const byConn = new Map<number, { buf: [Buffer, Buffer] }>();
  const chunks: Chunk[] = [];
  await replayFile(file, {
    onOpen() { /* per data */ },
    onData(c, fromClient, b) {
      if (c.transport !== 'tcp') return;
      const dir = fromClient ? 0 : 1;
      chunks.push({ conn: c.id, dir, bytes: Buffer.from(b) });
      let s = byConn.get(c.id);
      if (!s) { s = { buf: [Buffer.alloc(0), Buffer.alloc(0)] }; byConn.set(c.id, s); }
      s.buf[dir] = Buffer.concat([s.buf[dir], Buffer.from(b)]);
    },
    onGap() { /* none */ },
    onClose() { /* per round */ },
  });
  const responses: Response[] = [];
  let skipped = 0;
  for (const { buf } of byConn.values()) {
    const asked = new Map<number, { apiKey: number; version: number }>();
    for (let o = 0; o + 12 <= buf[0].length;) {
      const size = buf[0].readInt32BE(o);
      asked.set(buf[0].readInt32BE(o + 8), { apiKey: buf[0].readInt16BE(o + 4), version: buf[0].readInt16BE(o + 6) });
      o += 4 + size;
    }
    for (let o = 0; o + 8 <= buf[1].length;) {
      const size = buf[1].readInt32BE(o);
      const q = asked.get(buf[1].readInt32BE(o + 4));
      const f = buf[1].subarray(o, o + 4 + size);
      o += 4 + size;
      // ApiVersions v3+ responses keep a v0 header but a flexible body kafkajs does not read.
      if (q && kafkajsResponse(q.apiKey, q.version) && f.length === 4 + size) responses.push({ apiKey: q.apiKey, version: q.version, frame: f });
      else skipped++;
    }
  }
  return { chunks, responses, skipped };
}

/** CPU seconds (every thread of this process) of an async run; nothing else runs meanwhile. */
async function cpuOf(fn: () => Promise<void>): Promise<number> {
  const c0 = process.cpuUsage();
  await fn();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6;
}

async function measure(name: string, w: Workload, repeat: number, rounds: number, wasm: Buffer, baseWasm?: Buffer) {
  const bytesAll = w.chunks.reduce((a, c) => a + c.bytes.length, 0) * repeat;
  const bytesResp = w.responses.reduce((a, r) => a + r.frame.length, 0) * repeat;
  const conns = [...new Set(w.chunks.map((c) => c.conn))];
  let records = 0;
  let baseRecords = 0;
  const inst = DecoderInstance.fromBytes(wasm, { onRecord: () => { records++; } });
  const baseInst = baseWasm ? DecoderInstance.fromBytes(baseWasm, { onRecord: () => { baseRecords++; } }) : undefined;
  let base = 1;
  const run = (d: DecoderInstance) => () => cpuOf(async () => {
    for (let r = 0; r < repeat; r++) {
      const off = base; base += 1000;
      let ts = 1n;
      for (const c of w.chunks) d.feed(off + c.conn, c.dir, c.bytes, ts++);
      for (const id of conns) d.closeStream(off + id);
    }
  });
  const ours = run(inst);
  const baseline = baseInst ? run(baseInst) : undefined;
  let decoded = 0;
  const theirs = () => cpuOf(async () => {
    for (let r = 0; r < repeat; r++) {
      for (const resp of w.responses) {
        // kafkajs' connection: size, correlation id, then the api's decode + parse.
        const size = resp.frame.readInt32BE(0);
        const payload = resp.frame.subarray(8, 4 + size);
        const codec = kafkajsResponse(resp.apiKey, resp.version)!;
        try { await codec.parse(await codec.decode(payload)); } catch { /* error codes throw in parse: still decoded */ }
        decoded++;
      }
    }
  });
  const o: number[] = [], t: number[] = [], ratio: number[] = [];
  const b: number[] = [], ratioBase: number[] = [];
  for (let r = 0; r < rounds + 1; r++) {
    // The order flips every round so no side always runs on a warmer cache.
    const fwd = [ours, theirs, ...(baseline ? [baseline] : [])];
    const dt = new Map<() => Promise<number>, number>();
    for (const f of r % 2 ? fwd.reverse() : fwd) dt.set(f, await f());
    if (r === 0) continue;
    const [dto, dtt] = [dt.get(ours)!, dt.get(theirs)!];
    o.push(bytesAll / dto / 1e6); t.push(bytesResp / dtt / 1e6); ratio.push(dtt / dto);
    if (baseline) { const dtb = dt.get(baseline)!; b.push(bytesAll / dtb / 1e6); ratioBase.push(dtb / dto); }
  }
  if (baseInst && baseInst.counters.traps + baseInst.counters.invalid !== 0) throw new Error(`${name}: baseline decoder failed`);
  if (inst.counters.traps + inst.counters.invalid !== 0) throw new Error(`${name}: decoder failed: ${inst.lastError}`);
  const perRound = (rounds + 1) * repeat;
  if (records === 0) throw new Error(`${name}: decoder emitted no record`);
  return {
    workload: { exchanges: w.responses.length, repeat, bytes_both_directions: bytesAll, bytes_responses: bytesResp },
    telegen_kafka_MBps_both_directions: spread(o),
    kafkajs_MBps_responses_only: spread(t),
    ratio_time_kafkajs_over_telegen: spread(ratio),
    records_per_pass: records / perRound,
    kafkajs_responses_per_pass: decoded / perRound,
    ...(baseInst ? {
      baseline_MBps_both_directions: spread(b),
      ratio_cpu_baseline_over_telegen: spread(ratioBase),
      baseline_records_per_pass: baseRecords / perRound,
    } : {}),
  };
}

async function main(): Promise<void> {
  const rounds = Number(process.env.BENCH_ROUNDS || 7);
  const wasm = fs.readFileSync(path.join(repoRoot, 'build', 'decoders', 'kafka.wasm'));
  const baseDir = process.env.BENCH_BASELINE;
  const baseWasm = baseDir ? fs.readFileSync(path.join(path.resolve(baseDir), 'build', 'decoders', 'kafka.wasm')) : undefined;
  const pf = await produceFetch(2000);
  const cap = await capture(path.join(repoRoot, 'decoders', 'kafka', 'testdata', 'mock-kcat-kafkajs.pcapng'));
  writeResult('kafka-decoder', {
    produce_fetch: { ...(await measure('produce_fetch', pf, 3, rounds, wasm, baseWasm)), mix: 'Produce v3 (10×200 B records) / Fetch v11 (10×200 B records), one connection, kafkajs-encoded' },
    capture: { ...(await measure('capture', cap, 200, rounds, wasm, baseWasm)), capture: 'decoders/kafka/testdata/mock-kcat-kafkajs.pcapng', responses_kafkajs_cannot_decode: cap.skipped },
    ...(baseDir ? { baseline: baseDir } : {}),
    note: 'CPU time (process.cpuUsage). ratio > 1: kafkajs takes longer to decode only the responses than telegen takes for both directions (requests and responses, stitched into exchanges, records decoded into JS objects). kafkajs decodes record values, telegen counts records and does not capture values by default.',
  });
}

main().catch((e) => { console.error(e); process.exit(1); });
