// Pipeline capacity: socket-tracer ring records per second the JS pipeline sustains, per stage.
//
// 1. Record: the real socket tracer while test/fixtures/http-load.js drives
//    test/fixtures/http-server.js on loopback; every ring record of those two processes is copied
//    out (BENCH_CAPTURE=FILE keeps the recording and replays it on the next run, so before/after
//    numbers are over the same bytes).
// 2. Replay: the records are laid out as a ring view with [offset, length] batches of up to 4096
//    (what native/src/ring_reader.cc hands over) and fed to KernelIngest.onBatch, through deeper
//    and deeper pipelines: decode only → + spans → + correlate → + analytics → the real Agent
//    (stages, export queue, OTLP/JSON file). Each depth's CPU ns/record minus the one before is that
//    stage's cost. Batches yield to the event loop in between, as ring batches do in the agent.
// It also reports spans per request of the recorded load (client + server: 2.0 when nothing is lost).
//
// The hand-wired depths tick the correlator every 100 ms of the capture's own clock (its wall
// timer stopped: a replay runs many times faster than the recording, and a 100 ms wall timer held
// spans for seconds of capture time and made the pass shed over maxPending), and tell it which
// processes may serve (KernelIngest.mayServe) as the agent does. BENCH_BATCH=N: records per batch
// (default 4096, the ring reader's most; ~200 at 1k req/s with the 40 ms poll).
// BENCH_DIGEST=1 (hand-wired depths): a digest of the correlated output (every span's trace,
// parent, remote flag and mode, ids renamed to the order spans entered correlation) in the
// RESULT line, and the A/B says whether both trees' digests match (not a timed run).
//
// BENCH_BASELINE=DIR (a built git worktree of an earlier commit, with BENCH_CAPTURE): before/after
// on the same bytes and the same bench source. This compiled bench is copied into DIR/dist/bench
// and every (depth, tree) pass runs in a fresh process (warm-up pass, then the measured one),
// the two trees alternating in each round.
import './quiet';
import { spawn, ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { MeterProvider, MetricData, MetricReader, AggregationTemporality } from '@opentelemetry/sdk-metrics';
import { emptyResource } from '@opentelemetry/resources';
import { spread, writeResult, repoRoot } from './lib';
import { openSocketTracer } from '../host/src/native';
import { connOffset, pid as recordPid } from '../host/src/native/events';
import { DecoderRegistry, defaultDecodersDir } from '../host/src/decoders/registry';
import { Router, RecordSink } from '../host/src/ingest/router';
import { KernelIngest } from '../host/src/ingest/kernel';
import { SelfMetrics } from '../host/src/metrics/self';
import { recordToSpan, monotonicClock, SpanClock } from '../host/src/pipeline/spans';
import { correlateStage } from '../host/src/correlate';
import { Analytics } from '../host/src/analytics';
import { Agent } from '../host/src/agent';
import { parseConfig } from '../host/src/config';
import { resolveExportConfig } from '../host/src/export';
import { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { KIND_EXCHANGE, FLAG_NO_REQUEST } from '../decoders/abi/abi';

interface Capture { buf: Buffer; offs: number[]; lens: number[]; requests: number }

const MAX_BATCH = Number(process.env.BENCH_BATCH || 4096);

function startServer(): Promise<{ proc: ChildProcess; port: number }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [path.join(repoRoot, 'test', 'fixtures', 'http-server.js'), '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    proc.stdout!.on('data', (d) => { const m = /listening (\d+)/.exec(String(d)); if (m) resolve({ proc, port: Number(m[1]) }); });
    proc.once('exit', (c) => reject(new Error(`server exited ${c}`)));
  });
}

async function record(seconds: number, conc: number, rate: number): Promise<Capture> {
  const server = await startServer();
  const pids = new Set<number>([server.proc.pid!]);
  const chunks: Buffer[] = [];
  const tracer = openSocketTracer({}, (ring, index, count) => {
    for (let i = 0; i < count; i++) {
      const off = index[2 * i];
      const len = index[2 * i + 1];
      if (len < 64 || !pids.has(recordPid(ring, connOffset(ring, off)))) continue;
      chunks.push(Buffer.from(ring.subarray(off, off + len)));
    }
  });
  if (!tracer.report.attached.length) throw new Error(`socket tracer did not attach: ${JSON.stringify(tracer.report.failed)}`);
  const load = spawn(process.execPath, [path.join(repoRoot, 'test', 'fixtures', 'http-load.js'), String(server.port), String(conc), String(rate)], { stdio: ['ignore', 'pipe', 'inherit'] });
  pids.add(load.pid!);
  let out = '';
  load.stdout!.on('data', (d) => { out += String(d); });
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const exited = new Promise((r) => load.once('exit', r));
  load.kill('SIGTERM');
  await exited;
  await new Promise((r) => setTimeout(r, 500));
  const stats = tracer.stats();
  tracer.close();
  server.proc.kill('SIGTERM');
  if (stats.ring_full) process.stdout.write(`warning: ${stats.ring_full} records lost while recording\n`);
  const requests = JSON.parse(out.trim().split('\n').pop()!).done as number;
  return pack(chunks, requests);
}

function pack(chunks: Buffer[], requests: number): Capture {
  const offs: number[] = [];
  const lens: number[] = [];
  let total = 0;
  for (const c of chunks) total += (c.length + 7) & ~7;
  const buf = Buffer.alloc(total);
  let p = 0;
  for (const c of chunks) { c.copy(buf, p); offs.push(p); lens.push(c.length); p += (c.length + 7) & ~7; }
  return { buf, offs, lens, requests };
}

function save(file: string, c: Capture): void {
  const head = Buffer.alloc(8 + 4 * c.lens.length);
  head.writeUInt32LE(c.requests, 0);
  head.writeUInt32LE(c.lens.length, 4);
  c.lens.forEach((l, i) => head.writeUInt32LE(l, 8 + 4 * i));
  fs.writeFileSync(file, Buffer.concat([head, c.buf]));
}

function load(file: string): Capture {
  const b = fs.readFileSync(file);
  const requests = b.readUInt32LE(0);
  const n = b.readUInt32LE(4);
  const chunks: Buffer[] = [];
  let p = 8 + 4 * n;
  for (let i = 0; i < n; i++) { const l = b.readUInt32LE(8 + 4 * i); chunks.push(b.subarray(p, p + l)); p += (l + 7) & ~7; }
  return pack(chunks, requests);
}

/** Index batches as the ring reader builds them. */
function batches(c: Capture): Uint32Array[] {
  const out: Uint32Array[] = [];
  for (let i = 0; i < c.offs.length; i += MAX_BATCH) {
    const n = Math.min(MAX_BATCH, c.offs.length - i);
    const idx = new Uint32Array(2 * n);
    for (let j = 0; j < n; j++) { idx[2 * j] = c.offs[i + j]; idx[2 * j + 1] = c.lens[i + j]; }
    out.push(idx);
  }
  return out;
}

const yieldLoop = () => new Promise<void>((r) => setImmediate(r));

type Depth = 'decode' | 'spans' | 'correlate' | 'analytics' | 'agent';
const DEPTHS: Depth[] = ['decode', 'spans', 'correlate', 'analytics', 'agent'];

/** seconds: CPU time of this process (user + system) — on a shared, loaded machine wall time
 *  mostly measures the other tenants; wall: elapsed time. */
interface RunResult { seconds: number; wall: number; spans: number; digest?: string }

/** BENCH_DIGEST: what correlation decided, without the random ids (see the head comment). */
function outputDigest(): { added(s: ReadableSpan): void; out(s: ReadableSpan): void; digest(): string } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const crypto = require('crypto') as typeof import('crypto');
  const spanIdx = new Map<string, number>();
  const traceIdx = new Map<string, number>();
  const lines: string[] = [];
  let n = 0;
  const sp = (id: string) => { const i = spanIdx.get(id); return i === undefined ? `x${id}` : String(i); };
  const tr = (id: string) => { const i = traceIdx.get(id); return i === undefined ? `x${id}` : `t${i}`; };
  return {
    added(s) { const c = s.spanContext(); spanIdx.set(c.spanId, n); if (!traceIdx.has(c.traceId)) traceIdx.set(c.traceId, n); n++; },
    out(s) {
      const c = s.spanContext(), p = s.parentSpanContext;
      lines.push(`${sp(c.spanId)} ${tr(c.traceId)} ${p ? `${sp(p.spanId)} ${tr(p.traceId)} ${p.isRemote ? 'r' : 'l'}` : '-'} ${s.attributes['telegen.correlation']} ${s.links.length}`);
    },
    digest() {
      const h = (l: string[]) => crypto.createHash('sha256').update(l.join('\n')).digest('hex').slice(0, 16);
      return `${lines.length} spans, ordered ${h(lines)}, as a set ${h([...lines].sort())}`;
    },
  };
}

class PullReader extends MetricReader {
  protected async onForceFlush(): Promise<void> { /* pull only */ }
  protected async onShutdown(): Promise<void> { /* pull only */ }
}

/** A meter with a reader (sdk instruments record for real) that also takes metric producers
 *  (Signals.addProducer): analytics of either tree records as it does in the agent. */
function benchMeter(): { sink: ReturnType<MeterProvider['getMeter']> & { addProducer(c: () => MetricData[]): () => void }; collect: () => Promise<void> } {
  const producers = new Set<() => MetricData[]>();
  const reader = new PullReader({
    aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE,
    metricProducers: [{ collect: async () => ({ resourceMetrics: { resource: emptyResource(), scopeMetrics: [{ scope: { name: 'bench' }, metrics: [...producers].flatMap((p) => p()) }] }, errors: [] }) }],
  });
  const meter = new MeterProvider({ readers: [reader] }).getMeter('bench');
  const sink = Object.assign(meter, { addProducer: (c: () => MetricData[]) => { producers.add(c); return () => { producers.delete(c); }; } });
  return { sink, collect: async () => { await reader.collect(); } };
}

/** Decoders → router → KernelIngest, wired as host/src/agent.ts wires them, for one replay pass:
 *  `nowMs` reads the capture's clock (its last record's time) once records flow, so the stages'
 *  timers run on capture time. connect() builds the chain around the stage that takes the records. */
function replayFront(): { clock: SpanClock; nowMs: () => number; connect(sink: RecordSink): { router: Router; kernel: KernelIngest } } {
  const metrics = new SelfMetrics();
  const clock = monotonicClock();
  let kernel: KernelIngest | undefined;
  const nowMs = () => (kernel && kernel.lastTs > 0n ? Number(clock.toEpochNs(kernel.lastTs) / 1_000_000n) : Date.now());
  return {
    clock,
    nowMs,
    connect(sink) {
      let router: Router | undefined;
      const registry = new DecoderRegistry({ onRecord: (rec, inst) => router!.onRecord(rec, inst.meta.name) });
      registry.loadDir(defaultDecodersDir());
      router = new Router(registry, sink, metrics, { detectThreshold: 60 });
      kernel = new KernelIngest(router, metrics);
      return { router, kernel };
    },
  };
}

/** The pipeline up to `depth`, wired like host/src/agent.ts; the source clock drives the timers. */
async function runHandWired(c: Capture, depth: Depth, ring: Uint8Array, idx: Uint32Array[]): Promise<RunResult> {
  let spans = 0;
  const { clock, nowMs, connect } = replayFront();
  const meter = benchMeter();
  const analytics = new Analytics(meter.sink, {}, nowMs);
  const dig = process.env.BENCH_DIGEST ? outputDigest() : undefined;
  const last = dig ? (s: ReadableSpan) => { spans++; dig.out(s); } : (_s: ReadableSpan) => { spans++; };
  const correlate = correlateStage({}, depth === 'analytics' ? analytics.tap(last) : last, nowMs);
  // Ticked on the capture's clock below, as the agent's 100 ms timer ticks it live (stop() clears
  // the wall timer; nothing is held yet, so its flush does nothing).
  correlate.stop();
  const sink: RecordSink = (rec, conn, decoder) => {
    if (depth === 'decode') { if (rec.kind === KIND_EXCHANGE && !(rec.flags & FLAG_NO_REQUEST)) spans++; return; }
    const span = recordToSpan(rec, conn.meta, decoder, { clock });
    if (!span) return;
    if (depth === 'spans') { spans++; return; }
    dig?.added(span);
    correlate(span, conn.meta);
  };
  const { router, kernel } = connect(sink);
  correlate.correlator.mayServe = (pid) => kernel.mayServe(pid);
  // The correlator ticks every 100 ms, analytics every 500 ms, both of the capture's clock.
  let nextAnalytics = 0, nextTick = 0;
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  for (const b of idx) {
    kernel.onBatch(ring, b, b.length / 2);
    const t = nowMs();
    if (t >= nextTick) { correlate.correlator.tick(); nextTick = t + 100; }
    if (t >= nextAnalytics) { analytics.tick(); nextAnalytics = t + 500; }
    await yieldLoop();
  }
  for (const conn of [...router.streams.values()]) router.close(conn);
  correlate.flush();
  analytics.flush();
  // One metrics collection, as the agent makes every interval.
  if (depth === 'analytics') await meter.collect();
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const cu = process.cpuUsage(c0);
  const seconds = (cu.user + cu.system) / 1e6;
  void c;
  return { seconds, wall, spans, digest: dig?.digest() };
}

/** The real Agent (tracers off, API off, export to OTLP/JSON files), fed the same batches. */
async function runAgent(ring: Uint8Array, idx: Uint32Array[]): Promise<RunResult> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-capacity-'));
  const off = { enabled: false };
  const cfg = parseConfig({
    data_dir: dataDir, api: { enabled: false },
    // The capture itself (~150 MB) lives in this process's RSS, and the replay outruns the file
    // writer: the memory bound and the export-backlog shed would skip records, so both are off and
    // the trace queue holds the whole replay (every span is built and written in the measured pass).
    agent: { max_rss_mb: 0, shed_export_backlog_percent: 0, contended_cpu_percent: 0 },
    tracers: { socket: off, profile: off, tls: off, tcp: off, xdp: off, fileio: off, go: off },
  });
  const agent = new Agent(cfg, resolveExportConfig({ traces: { queue_bytes: 1024 * 1024 * 1024 } }, {}));
  await agent.start();
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  for (const b of idx) { agent.kernel.onBatch(ring, b, b.length / 2); await yieldLoop(); }
  await agent.stop();
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const cu = process.cpuUsage(c0);
  const seconds = (cu.user + cu.system) / 1e6;
  const spans = agent.metrics.value('telegen_spans_total', { kind: 'server' }) + agent.metrics.value('telegen_spans_total', { kind: 'client' });
  fs.rmSync(dataDir, { recursive: true, force: true });
  return { seconds, wall, spans };
}

/** BENCH_PROFILE=FILE (with BENCH_CHILD): a V8 CPU profile of the measured pass only (not the
 *  warm-up), 100 µs sampling, written as FILE (.cpuprofile, for Chrome DevTools); FILE ending in
 *  .heapprofile: a sampling heap profile instead (4 KiB, objects collected by minor and major GCs
 *  included: the garbage per record is what it is for). */
async function startProfile(): Promise<(file: string) => Promise<void>> {
  const { Session } = await import('inspector');
  const session = new Session();
  session.connect();
  const post = (m: string, p?: object) => new Promise<any>((res, rej) => session.post(m, p ?? {}, (e, r) => (e ? rej(e) : res(r))));
  if (process.env.BENCH_PROFILE!.endsWith('.heapprofile')) {
    await post('HeapProfiler.enable');
    await post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    return async (file) => {
      const { profile } = await post('HeapProfiler.stopSampling');
      fs.writeFileSync(file, JSON.stringify(profile));
      session.disconnect();
    };
  }
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 100 });
  await post('Profiler.start');
  return async (file) => {
    const { profile } = await post('Profiler.stop');
    fs.writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
  };
}

/** BENCH_WRITER_BASELINE=DIR (with BENCH_CHILD=agent): the traces.jsonl writer of this tree and
 *  of DIR (a built tree) on every batch the agent exports, 3 passes each per batch, order
 *  alternating per batch, each into its own reused buffer; prints ns per span of each, and
 *  whether every batch's bytes were the same (the spans are the agent's, so this is what
 *  the file gets). The agent's own write is not timed. */
function writerAB(dir: string): () => void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const here = require('../host/src/export/traces-json') as typeof import('../host/src/export/traces-json');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const base = require(path.join(path.resolve(dir), 'dist', 'host', 'src', 'export', 'traces-json.js')) as typeof here;
  const own = here.writeTracesRequestJson;
  const wa = new here.JsonWriter(), wb = new base.JsonWriter();
  let ta = 0, tb = 0, spans = 0, batches = 0, differ = 0;
  (here as { writeTracesRequestJson: typeof own }).writeTracesRequestJson = (w, batch) => {
    own(w, batch);
    batches++;
    for (let r = 0; r < 3; r++) {
      for (const k of (batches + r) % 2 ? [0, 1] : [1, 0]) {
        const t0 = process.hrtime.bigint();
        if (k) { wa.pos = 0; own(wa, batch); } else { wb.pos = 0; base.writeTracesRequestJson(wb, batch); }
        const d = Number(process.hrtime.bigint() - t0);
        // The first 20 batches warm both up.
        if (batches > 20) { if (k) ta += d; else tb += d; }
      }
    }
    if (batches > 20) spans += batch.length;
    if (Buffer.compare(wa.buf.subarray(0, wa.pos), wb.buf.subarray(0, wb.pos)) !== 0) differ++;
  };
  return () => process.stdout.write(`WRITER ${JSON.stringify({ ns_per_span: Math.round(ta / 3 / spans), baseline_ns_per_span: Math.round(tb / 3 / spans), ratio_baseline_over_this: +(tb / ta).toFixed(3), batches, batches_differing: differ })}\n`);
}

/**
 * BENCH_CORRELATOR_BASELINE=DIR (BENCH_CHILD=correlate): the correlation stage of this tree and of
 * DIR (a built tree) side by side in one replay, as writerAB does for the writer. The spans of
 * each ring batch are collected; then each tree's correlateStage (ticked every 100 ms of the
 * capture's clock, told which processes may serve) gets its own copy of them (made before the
 * timed part; attributes copied in order, so both trees' copies share hidden classes) and is
 * timed over the batch (wall ns of the calls, the order alternating per batch; a young-generation
 * collection before each side's turn, so each side's run rarely holds one: the mutator's cost,
 * not what the GC makes of what it keeps). Prints ns per span of each, per-round medians over
 * BENCH_ROUNDS passes of the capture, and with BENCH_DIGEST whether both trees' outputs
 * (outputDigest, computed inside the timed calls then) match.
 */
async function correlatorAB(dir: string): Promise<void> {
  type SpansMod = typeof import('../host/src/pipeline/spans');
  type CorrMod = typeof import('../host/src/correlate');
  type PSpan = import('../host/src/pipeline/spans').PipelineSpan;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const own = { spans: require('../host/src/pipeline/spans') as SpansMod, corr: require('../host/src/correlate') as CorrMod };
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const base = { spans: require(path.join(path.resolve(dir), 'dist', 'host', 'src', 'pipeline', 'spans.js')) as SpansMod, corr: require(path.join(path.resolve(dir), 'dist', 'host', 'src', 'correlate', 'index.js')) as CorrMod };
  const cap = load(process.env.BENCH_CAPTURE!);
  const ring = new Uint8Array(cap.buf.buffer, cap.buf.byteOffset, cap.buf.byteLength);
  const idx = batches(cap);
  const copy = (S: SpansMod['PipelineSpan'], s: PSpan) => {
    const a: Record<string, unknown> = {};
    const o = s.attributes as Record<string, unknown>;
    for (const key in o) a[key] = o[key];
    return new S(s.name, s.kind, { traceId: s.ctx.traceId, spanId: s.ctx.spanId, traceFlags: s.ctx.traceFlags }, s.parentSpanContext, s.startTime, s.endTime, s.duration, s.status, a as import('@opentelemetry/api').Attributes, s.resource);
  };
  const rounds = Number(process.env.BENCH_ROUNDS || 5);
  const per: { after: number[]; before: number[]; ratio: number[]; load: number[] } = { after: [], before: [], ratio: [], load: [] };
  const digests: Record<string, Set<string>> = { after: new Set(), before: new Set() };
  let nSpans = 0;
  for (let r = -1; r < rounds; r++) { // round -1 warms both up
    const { clock, nowMs, connect } = replayFront();
    const batch: Array<{ span: PSpan; meta: import('../host/src/model').ConnMeta; tid: number | undefined; now: number; tick: boolean }> = [];
    let nextTick = 0;
    const sink: RecordSink = (rec, conn, decoder) => {
      const span = recordToSpan(rec, conn.meta, decoder, { clock }) as PSpan | undefined;
      if (!span) return;
      const now = nowMs();
      // The agent's 100 ms timer, on the capture's clock, before this span.
      const tick = now >= nextTick;
      if (tick) nextTick = now + 100;
      batch.push({ span, meta: conn.meta, tid: conn.meta.tid, now, tick });
    };
    const { router, kernel } = connect(sink);
    const sides = [{ name: 'after', m: own, ns: 0, dig: outputDigest() }, { name: 'before', m: base, ns: 0, dig: outputDigest() }].map((side) => {
      let now = 0;
      const stage = side.m.corr.correlateStage({}, process.env.BENCH_DIGEST ? (s) => side.dig.out(s) : () => { /* timed: no digest */ }, () => now);
      stage.stop();
      stage.correlator.mayServe = (pid) => kernel.mayServe(pid);
      return { ...side, stage, setNow: (t: number) => { now = t; } };
    });
    const gc = (global as { gc?: (o?: object) => void }).gc;
    const run = (side: typeof sides[0], copies: PSpan[]) => {
      gc?.({ type: 'minor' });
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < batch.length; i++) {
        const e = batch[i];
        side.setNow(e.now);
        if (e.tick) side.stage.correlator.tick();
        e.meta.tid = e.tid;
        side.stage(copies[i], e.meta);
      }
      side.ns += Number(process.hrtime.bigint() - t0);
    };
    let b = 0;
    nSpans = 0;
    for (const ix of idx) {
      kernel.onBatch(ring, ix, ix.length / 2);
      const copies = sides.map((side) => batch.map((e) => copy(side.m.spans.PipelineSpan, e.span)));
      // Digests (untimed): spans in the order they entered correlation.
      if (process.env.BENCH_DIGEST) for (let j = 0; j < 2; j++) for (const c of copies[j]) sides[j].dig.added(c);
      for (const j of b++ % 2 ? [1, 0] : [0, 1]) run(sides[j], copies[j]);
      nSpans += batch.length;
      batch.length = 0;
      await yieldLoop();
    }
    for (const conn of [...router.streams.values()]) router.close(conn);
    for (const side of sides) { const t0 = process.hrtime.bigint(); side.stage.flush(); side.ns += Number(process.hrtime.bigint() - t0); }
    if (process.env.BENCH_DIGEST) for (const side of sides) digests[side.name].add(side.dig.digest());
    if (r < 0) continue;
    const a = sides[0].ns / nSpans, bf = sides[1].ns / nSpans;
    per.after.push(a); per.before.push(bf); per.ratio.push(bf / a); per.load.push(os.loadavg()[0]);
    process.stdout.write(`round ${r}: after ${a.toFixed(0)}, before ${bf.toFixed(0)} ns per span (${(bf / a).toFixed(3)}), load ${os.loadavg()[0].toFixed(1)}\n`);
  }
  const d = (n: string) => [...digests[n]];
  process.stdout.write(`RESULT ${JSON.stringify({ correlator: { spans: nSpans, after_ns_per_span: spread(per.after), before_ns_per_span: spread(per.before), ratio_before_over_after: spread(per.ratio), load_average: spread(per.load), digests: { after: d('after'), before: d('before') }, output_identical: process.env.BENCH_DIGEST ? digests.after.size === 1 && d('after')[0] === d('before')[0] : 'not checked (BENCH_DIGEST)' }, records: cap.offs.length, requests: cap.requests })}\n`);
}

/**
 * BENCH_ANALYTICS_BASELINE=DIR (BENCH_CHILD=analytics): analytics of this tree and of DIR (a built
 * tree) side by side in one replay: the correlated spans of each ring batch (this tree's
 * correlator) go to both trees' Analytics.observe (it does not change them, so both get the same
 * objects), timed per batch (wall ns, the order alternating per batch, a young-generation
 * collection before each side's turn), each ticked every 500 ms of the capture's clock. Prints ns
 * per span of each per round (BENCH_ROUNDS passes), and whether both trees answer the same at the
 * end: topology, the latest 500 traces and each edge's traces (the API's views).
 */
async function analyticsAB(dir: string): Promise<void> {
  type AnMod = typeof import('../host/src/analytics');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mods = [require('../host/src/analytics') as AnMod, require(path.join(path.resolve(dir), 'dist', 'host', 'src', 'analytics', 'index.js')) as AnMod];
  const cap = load(process.env.BENCH_CAPTURE!);
  const ring = new Uint8Array(cap.buf.buffer, cap.buf.byteOffset, cap.buf.byteLength);
  const idx = batches(cap);
  const gc = (global as { gc?: (o?: object) => void }).gc;
  const rounds = Number(process.env.BENCH_ROUNDS || 5);
  const per = { after: [] as number[], before: [] as number[], ratio: [] as number[], load: [] as number[] };
  // Per round (trace ids are random, so each pass answers differently; both trees see the same spans).
  const answers: string[][] = [[], []];
  let nSpans = 0;
  for (let r = -1; r < rounds; r++) { // round -1 warms both up
    const { clock, nowMs, connect } = replayFront();
    const batch: ReadableSpan[] = [];
    const correlate = correlateStage({}, (s) => { batch.push(s); }, nowMs);
    correlate.stop();
    const sink: RecordSink = (rec, conn, decoder) => {
      const span = recordToSpan(rec, conn.meta, decoder, { clock });
      if (span) correlate(span, conn.meta);
    };
    const { router, kernel } = connect(sink);
    correlate.correlator.mayServe = (pid) => kernel.mayServe(pid);
    const sides = mods.map((m) => ({ an: new m.Analytics(benchMeter().sink, {}, nowMs), ns: 0, nextTick: 0 }));
    const run = (side: typeof sides[0]) => {
      gc?.({ type: 'minor' });
      const t0 = process.hrtime.bigint();
      const t = nowMs();
      for (let i = 0; i < batch.length; i++) side.an.observe(batch[i]);
      if (t >= side.nextTick) { side.an.tick(); side.nextTick = t + 500; }
      side.ns += Number(process.hrtime.bigint() - t0);
    };
    let b = 0, nextTick = 0;
    nSpans = 0;
    const drain = () => {
      for (const j of b++ % 2 ? [1, 0] : [0, 1]) run(sides[j]);
      nSpans += batch.length;
      batch.length = 0;
    };
    for (const ix of idx) {
      kernel.onBatch(ring, ix, ix.length / 2);
      const t = nowMs();
      if (t >= nextTick) { correlate.correlator.tick(); nextTick = t + 100; }
      drain();
      await yieldLoop();
    }
    for (const conn of [...router.streams.values()]) router.close(conn);
    correlate.flush();
    drain();
    for (const side of sides) { const t0 = process.hrtime.bigint(); side.an.flush(); side.ns += Number(process.hrtime.bigint() - t0); }
    sides.forEach((side, j) => {
      const topo = side.an.topology() as { edges: Array<{ id: string }> };
      const views = [side.an.tracesQuery(new URLSearchParams('limit=500')), ...topo.edges.map((e) => side.an.tracesQuery(new URLSearchParams({ edge: e.id, limit: '500' })))];
      answers[j].push(require('crypto').createHash('sha256').update(JSON.stringify([topo, views])).digest('hex').slice(0, 16));
    });
    if (r < 0) continue;
    const a = sides[0].ns / nSpans, bf = sides[1].ns / nSpans;
    per.after.push(a); per.before.push(bf); per.ratio.push(bf / a); per.load.push(os.loadavg()[0]);
    process.stdout.write(`round ${r}: after ${a.toFixed(0)}, before ${bf.toFixed(0)} ns per span (${(bf / a).toFixed(3)}), load ${os.loadavg()[0].toFixed(1)}\n`);
  }
  process.stdout.write(`RESULT ${JSON.stringify({ analytics: { spans: nSpans, after_ns_per_span: spread(per.after), before_ns_per_span: spread(per.before), ratio_before_over_after: spread(per.ratio), load_average: spread(per.load), answers: { after: answers[0], before: answers[1] }, answers_identical: answers[0].every((a, i) => a === answers[1][i]) }, records: cap.offs.length, requests: cap.requests })}\n`);
}

/** BENCH_CHILD=depth: one warm-up and one measured pass, the result as a JSON line. */
async function child(depth: Depth): Promise<void> {
  if (depth === 'correlate' && process.env.BENCH_CORRELATOR_BASELINE) return correlatorAB(process.env.BENCH_CORRELATOR_BASELINE);
  if (depth === 'analytics' && process.env.BENCH_ANALYTICS_BASELINE) return analyticsAB(process.env.BENCH_ANALYTICS_BASELINE);
  const cap = load(process.env.BENCH_CAPTURE!);
  const ring = new Uint8Array(cap.buf.buffer, cap.buf.byteOffset, cap.buf.byteLength);
  const idx = batches(cap);
  await runHandWired(cap, 'spans', ring, idx);
  const writerReport = depth === 'agent' && process.env.BENCH_WRITER_BASELINE ? writerAB(process.env.BENCH_WRITER_BASELINE) : undefined;
  const stopProfile = process.env.BENCH_PROFILE ? await startProfile() : undefined;
  const res = depth === 'agent' ? await runAgent(ring, idx) : await runHandWired(cap, depth, ring, idx);
  if (stopProfile) await stopProfile(process.env.BENCH_PROFILE!);
  writerReport?.();
  process.stdout.write(`RESULT ${JSON.stringify({ ...res, records: cap.offs.length, requests: cap.requests })}\n`);
}

function runChild(tree: string, depth: Depth): Promise<RunResult & { records: number; requests: number }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--expose-gc', path.join(tree, 'dist', 'bench', 'pipeline-capacity.bench.js')], {
      cwd: tree, env: { ...process.env, BENCH_CHILD: depth, TELEGEN_ROOT: tree }, stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    p.stdout!.on('data', (d) => { out += String(d); });
    p.once('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (code !== 0 || !line) reject(new Error(`${tree} ${depth}: exit ${code}`)); else resolve(JSON.parse(line.slice(7)));
    });
  });
}

/** Before/after: this tree and BENCH_BASELINE, alternating, a process per pass. */
async function againstBaseline(baseline: string): Promise<void> {
  const file = process.env.BENCH_CAPTURE;
  if (!file || !fs.existsSync(file)) { console.error('BENCH_BASELINE needs BENCH_CAPTURE=FILE of an earlier run'); process.exit(1); }
  const here = path.resolve(__dirname, '..', '..');
  for (const f of ['pipeline-capacity.bench.js', 'lib.js', 'quiet.js']) fs.copyFileSync(path.join(__dirname, f), path.join(baseline, 'dist', 'bench', f));
  const rounds = Number(process.env.BENCH_ROUNDS || 3);
  const only = process.env.BENCH_DEPTHS ? process.env.BENCH_DEPTHS.split(',') as Depth[] : DEPTHS;
  const sides = [{ name: 'after', tree: here }, { name: 'before', tree: baseline }];
  const ns: Record<string, Record<string, number[]>> = { after: {}, before: {} };
  const spr: Record<string, Record<string, number[]>> = { after: {}, before: {} };
  const loads: number[] = [];
  const digests: Record<string, Set<string>> = {};
  let records = 0, requests = 0;
  for (let r = 0; r < rounds; r++) {
    for (const d of only) {
      for (const side of r % 2 ? [...sides].reverse() : sides) {
        loads.push(os.loadavg()[0]);
        const res = await runChild(side.tree, d);
        records = res.records; requests = res.requests;
        const v = (res.seconds * 1e9) / res.records;
        (ns[side.name][d] ??= []).push(v);
        (spr[side.name][d] ??= []).push(res.spans / res.requests);
        if (res.digest) (digests[`${side.name} ${d}`] ??= new Set()).add(res.digest);
        process.stdout.write(`round ${r} ${side.name} ${d}: ${v.toFixed(0)} CPU ns/record, ${res.spans} spans, load ${os.loadavg()[0].toFixed(1)}${res.digest ? `, output ${res.digest}` : ''}\n`);
      }
    }
  }
  const perSide = (name: string) => {
    const out: Record<string, unknown> = {};
    let prev = 0;
    for (const d of only) {
      const s = spread(ns[name][d]);
      out[d] = { cpu_ns_per_record: s, records_per_cpu_second: Math.round(1e9 / s.median), stage_ns_per_record: Math.round(s.median - prev), spans_per_request: spread(spr[name][d]) };
      prev = s.median;
    }
    return out;
  };
  const ratio: Record<string, unknown> = {};
  for (const d of only) ratio[d] = spread(ns.before[d].map((b, i) => b / ns.after[d][i]));
  writeResult(resultName(), {
    workload: {
      recorded: 'socket tracer ring records of test/fixtures/http-server.js and http-load.js (keep-alive and fresh connections, GET /users/N)',
      records, requests, rounds, baseline,
    },
    load_average: spread(loads),
    after: perSide('after'),
    before: perSide('before'),
    ratio_before_over_after: ratio,
    ...(Object.keys(digests).length ? {
      output_digests: Object.fromEntries(Object.entries(digests).map(([k, v]) => [k, [...v]])),
      output_identical: only.every((d) => digests[`after ${d}`]?.size === 1 && digests[`before ${d}`]?.size === 1 && [...digests[`after ${d}`]][0] === [...digests[`before ${d}`]][0]),
    } : {}),
    note: 'depth = pipeline up to and including that stage; CPU time of the pass\'s own process (user + system: GC and file-write threads included), after a warm-up pass; stage_ns_per_record = its median minus the previous depth\'s. spans_per_request counts client + server spans (2.0 = none lost).',
  });
}

/** BENCH_RESULT_NAME: write bench/results/<name>.json instead of pipeline-capacity.json, so an A/B
 *  run or a recording does not overwrite the kept result. */
function resultName(): string { return process.env.BENCH_RESULT_NAME || 'pipeline-capacity'; }

async function main(): Promise<void> {
  if (process.env.BENCH_CHILD) return child(process.env.BENCH_CHILD as Depth);
  if (process.env.BENCH_BASELINE) return againstBaseline(path.resolve(process.env.BENCH_BASELINE));
  const file = process.env.BENCH_CAPTURE;
  let cap: Capture;
  if (file && fs.existsSync(file)) cap = load(file);
  else {
    if (process.getuid?.() !== 0) { console.error('pipeline-capacity records with the socket tracer: needs root (or BENCH_CAPTURE=FILE from an earlier run)'); process.exit(1); }
    cap = await record(Number(process.env.BENCH_RECORD_SECONDS || 15), Number(process.env.BENCH_CONC || 8), Number(process.env.BENCH_RATE || 0));
    if (file) save(file, cap);
  }
  const ring = new Uint8Array(cap.buf.buffer, cap.buf.byteOffset, cap.buf.byteLength);
  const idx = batches(cap);
  const rounds = Number(process.env.BENCH_ROUNDS || 5);
  const only = process.env.BENCH_DEPTHS ? process.env.BENCH_DEPTHS.split(',') as Depth[] : DEPTHS;
  const ns: Record<string, number[]> = {};
  const wallNs: Record<string, number[]> = {};
  const spansPerRequest: Record<string, number[]> = {};
  // Warm-up: JIT and discovery's per-process facts.
  await runHandWired(cap, 'spans', ring, idx);
  for (let r = 0; r < rounds; r++) {
    for (const d of only) {
      const res = d === 'agent' ? await runAgent(ring, idx) : await runHandWired(cap, d, ring, idx);
      (ns[d] ??= []).push((res.seconds * 1e9) / cap.offs.length);
      (wallNs[d] ??= []).push((res.wall * 1e9) / cap.offs.length);
      (spansPerRequest[d] ??= []).push(res.spans / cap.requests);
      process.stdout.write(`round ${r} ${d}: ${((res.seconds * 1e9) / cap.offs.length).toFixed(0)} CPU ns/record (${(cap.offs.length / res.seconds).toFixed(0)} records per CPU second), wall ${((res.wall * 1e9) / cap.offs.length).toFixed(0)} ns/record, ${res.spans} spans\n`);
    }
  }
  const perDepth: Record<string, unknown> = {};
  let prev = 0;
  for (const d of only) {
    const s = spread(ns[d]);
    perDepth[d] = {
      cpu_ns_per_record: s,
      records_per_cpu_second: Math.round(1e9 / s.median),
      wall_ns_per_record: spread(wallNs[d]),
      stage_ns_per_record: Math.round(s.median - prev),
      spans_per_request: spread(spansPerRequest[d]),
    };
    prev = s.median;
  }
  writeResult(resultName(), {
    workload: {
      recorded: 'socket tracer ring records of test/fixtures/http-server.js and http-load.js (keep-alive and fresh connections, GET /users/N)',
      records: cap.offs.length, requests: cap.requests, bytes: cap.buf.length, rounds,
    },
    depths: perDepth,
    note: 'depth = pipeline up to and including that stage; CPU time of the process (user + system: GC and file-write threads included); stage_ns_per_record = its median minus the previous depth\'s. spans_per_request counts client + server spans (2.0 = none lost).',
  });
}

main().catch((e) => { console.error(e); process.exit(1); });
