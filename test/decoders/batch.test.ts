// Several reads per decoder call (parse_batch, decoders/abi/README.md "Batches"): what a user sees
// must not change. The same captures decoded one read per call and in batches hand over the same
// records (every field, flag and time) and the same counters, through DecoderInstance and through
// the router as the kernel source drives it (a ring batch between beginBatch and endBatch).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { ChunkBatch } from '../../host/src/decoders/batch';
import { DecoderRegistry } from '../../host/src/decoders/registry';
import { DecodedRecord } from '../../host/src/decoders/records';
import { Router, Conn } from '../../host/src/ingest/router';
import { SelfMetrics } from '../../host/src/metrics/self';
import { replayFile } from '../../host/src/replay';
import { ConnMeta } from '../../host/src/model';
import { corpusDir, repoRoot, loadDecoder, wasmPath, Harness } from '../helpers/decoder';
import { captureChunks, StreamChunk } from './pgsql-util';

const own = path.join(repoRoot, 'decoders', 'pgsql', 'testdata', 'pg15-live.pcap');
const corpus = path.join(corpusDir, 'pcap', 'pgsql');
const captures = [own, ...(fs.existsSync(corpus) ? fs.readdirSync(corpus).filter((f) => /\.pcapn?g?$/.test(f)).sort().map((f) => path.join(corpus, f)) : [])];

const ser = (r: unknown) => JSON.stringify(r, (_k, v) => typeof v === 'bigint' ? `${v}n` : v);

/** Reads cut into `piece`-byte parts (0: as captured): parts end mid-message, so the decoder
 *  consumes reads partly and the host keeps bytes pending between reads. */
function cut(chunks: StreamChunk[], piece: number): StreamChunk[] {
  if (!piece) return chunks;
  const out: StreamChunk[] = [];
  for (const c of chunks) {
    if (c.gap) { out.push(c); continue; }
    for (let i = 0; i < c.bytes.length; i += piece) out.push({ ...c, bytes: c.bytes.subarray(i, i + piece), ts: c.ts + BigInt(i) });
  }
  return out;
}

function single(chunks: StreamChunk[], closes: number[]): Harness {
  const h = loadDecoder('pgsql');
  for (const c of chunks) {
    if (c.gap) h.inst.gap(c.stream, c.dir, c.gap);
    else h.inst.feed(c.stream, c.dir, c.bytes, c.ts);
  }
  for (const id of closes) h.inst.closeStream(id);
  return h;
}

/** Reads between gaps in batches of up to `size`, every result handled as the router does. */
function batched(chunks: StreamChunk[], closes: number[], size: number): { h: Harness; results: string[] } {
  const h = loadDecoder('pgsql');
  const results: string[] = [];
  const b = new ChunkBatch();
  const flush = () => {
    for (let i = 0; i < b.n;) {
      const j = h.inst.feedBatch(b, i, b.n);
      if (j < b.n) results.push(`${j}:${h.inst.batchResult}`);
      i = j + 1;
    }
    b.clear();
  };
  for (const c of chunks) {
    if (c.gap) { flush(); h.inst.gap(c.stream, c.dir, c.gap); continue; }
    b.push(c.stream, c.dir, c.bytes, c.ts, undefined);
    if (b.n === size) flush();
  }
  flush();
  for (const id of closes) h.inst.closeStream(id);
  return { h, results };
}

function counters(h: Harness) {
  const { traps, invalid, overflows, badRecords, records, bytes, gapsAbsorbed, gapResets } = h.inst.counters;
  return { traps, invalid, overflows, badRecords, records, bytes, gapsAbsorbed, gapResets };
}

test('pgsql: reads fed in batches give the records and counters of one read per call (every capture, whole and cut reads)', async () => {
  assert.ok(wasmPath('pgsql') && loadDecoder('pgsql').inst.batches, 'the pgsql module takes batches');
  let total = 0, calls = 0, singleCalls = 0;
  for (const file of captures) {
    const { chunks, closes } = await captureChunks(file, file === own ? [33961] : undefined);
    for (const piece of [0, 7]) {
      const reads = cut(chunks, piece);
      const one = single(reads, closes);
      for (const size of [3, 4096]) {
        const { h } = batched(reads, closes, size);
        const what = `${path.basename(file)}, reads cut to ${piece || 'as captured'}, batches of ${size}`;
        assert.deepEqual(h.records.map(ser), one.records.map(ser), what);
        assert.deepEqual(counters(h), counters(one), what);
        if (size === 4096 && piece === 0) { calls += h.inst.counters.calls; singleCalls += one.inst.counters.calls; }
      }
      total += one.records.length;
    }
  }
  assert.ok(total > 900, `${total} records compared`);
  // Reads as captured: most of them share a call. (Cut reads mostly leave bytes pending, and a read
  // with pending bytes in front takes a call of its own.)
  assert.ok(calls * 3 < singleCalls, `batches took ${calls} calls where one read per call took ${singleCalls}`);
});

/** Replays captures through a router (every built decoder, as `telegen replay` wires it); with
 *  `ring` > 0 reads are routed in ring batches of that many events. */
async function routed(files: string[], ring: number): Promise<{ records: string[]; metrics: string; pgsqlCalls: number }> {
  const records: string[] = [];
  let router!: Router;
  const registry = new DecoderRegistry({ onRecord: (rec, inst) => router.onRecord(rec, inst.meta.name) });
  registry.loadDir(path.join(repoRoot, 'build', 'decoders'));
  const metrics = new SelfMetrics();
  router = new Router(registry, (rec: DecodedRecord, conn: Conn, decoder: string) => records.push(`${decoder} ${conn.meta.localPort} ${ser(rec)}`), metrics, { detectThreshold: 50 });
  let events = 0;
  const step = () => {
    if (!ring) return;
    if (events === 0) router.beginBatch();
    if (++events === ring) { router.endBatch(); events = 0; }
  };
  for (const file of files) {
    const conns = new Map<number, Conn>();
    await replayFile(file, {
      onOpen(c) {
        const meta: ConnMeta = { role: 'client', observer: 'capture', transport: c.transport, localAddr: c.client.addr, localPort: c.client.port, remoteAddr: c.server.addr, remotePort: c.server.port };
        conns.set(c.id, router.open(meta));
      },
      onData(c, fromClient, bytes, ts) {
        const conn = conns.get(c.id);
        step();
        // The ring's views are reused after a batch: hand the router a copy it may hold.
        if (conn) router.data(conn, fromClient, Buffer.from(bytes), ts);
      },
      onGap(c, fromClient, lost) { const conn = conns.get(c.id); step(); if (conn) router.gap(conn, fromClient, lost); },
      onClose(c) { const conn = conns.get(c.id); step(); if (conn) { router.close(conn); conns.delete(c.id); } },
    });
  }
  if (ring && events) router.endBatch();
  return { records, metrics: metrics.render(), pgsqlCalls: registry.get('pgsql')!.inst.counters.calls };
}

test('router: a ring batch of reads of several decoders routes to the same records as one read at a time (pgsql in batches, others one per call)', async () => {
  const others = ['http1', 'http2', 'dns', 'kafka', 'redis'].flatMap((p) => {
    const d = path.join(corpusDir, 'pcap', p);
    return fs.existsSync(d) ? fs.readdirSync(d).filter((f) => /\.pcapn?g?$/.test(f)).sort().slice(0, 4).map((f) => path.join(d, f)) : [];
  });
  const files = [own, ...captures.slice(1, 8), ...others];
  const one = await routed(files, 0);
  assert.ok(one.records.filter((r) => r.startsWith('pgsql ')).length > 400, 'pgsql records');
  for (const ring of [5, 4096]) {
    const b = await routed(files, ring);
    assert.deepEqual(b.records, one.records, `ring batches of ${ring}`);
    assert.equal(b.metrics, one.metrics, `ring batches of ${ring}: router metrics`);
    if (ring > 5) assert.ok(b.pgsqlCalls * 2 < one.pgsqlCalls, `pgsql calls: ${b.pgsqlCalls} in ring batches, ${one.pgsqlCalls} one read at a time`);
  }
});
