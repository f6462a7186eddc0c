// Export throughput per signal: items/s from enqueue into the export stage (BatchQueue per signal,
// the agent's exporters and defaults) to acknowledged by a real OTLP receiver (gRPC, gzip), CPU
// time of this process per item, and bytes on the wire per span over HTTP/protobuf with gzip.
// Spans and logs A/B in the same run: our encoders vs the official opentelemetry-js exporters
// (exportBaseline.officialSpanLogExporters), alternating within every round. BENCH_BASELINE=DIR
// (a compiled worktree of an earlier commit) makes that tree's export stage the B side instead,
// for all four signals (results/export-throughput-vs-baseline.json). The receiver runs in a child process
// so it does not share the producer's event loop; on a 2-core machine it still shares the CPUs, so
// by default it is a stand-in for a collector on another host: a bare node:http2 gRPC endpoint
// that answers every Export OK without gunzipping or decoding (what a remote collector's ingest
// costs this machine: loopback TCP and HTTP/2 framing), and decodes one request in SAMPLE_EVERY
// with the official protobufs after the rounds to check what arrived (cheapReceiver).
// BENCH_RECEIVER=grpc-js: the test helper's grpc-js server instead (it gunzips every request,
// ~4 µs of CPU per log record on the same 2 cores). Besides items/s (wall time) every signal
// reports the sender's CPU per item, the items per CPU-second of the sender that implies (its rate
// on one core of its own), and the receiver's CPU per item.
// Seed targets: 10k traces/s, 100k metric points/s, 50k log records/s, 100 profiles/s.
import { fork, type ChildProcess } from 'child_process';
import * as http2 from 'http2';
import * as zlib from 'zlib';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import * as os from 'os';
import * as path from 'path';
import { createExportQueues, exportBaseline, resolveExportConfig, shutdownExportQueues, type BatchQueue, type ExportQueues } from '../host/src/export';
import { toOtlpProfiles } from '../host/src/profile/otlp';
import type { Frame } from '../host/src/profile/symbolizer';
import { decodeOtlpRequest, startReceiver, type OtlpReceiver, type OtlpSignal } from '../test/helpers/otlp-receiver';
import { makeLog, makeMetrics, makeSpan } from '../test/export/fixtures';
import { spread, writeResult, rssBytesOf } from './lib';

type Stats = Record<string, { requests: number; bytes: number; sampled?: number; sampled_items?: number; sampled_item_counts?: number[] }>;

/** The receiver's CPU so far (µs, user + system), or its per-signal counts since the last ask. */
type RxAsk = 'stats' | 'cpu';

/** One request in this many per signal is kept and decoded after the rounds (cheapReceiver). */
const SAMPLE_EVERY = 16;
const GRPC_SIGNALS: Record<string, OtlpSignal> = {
  '/opentelemetry.proto.collector.trace.v1.TraceService/Export': 'traces',
  '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export': 'metrics',
  '/opentelemetry.proto.collector.logs.v1.LogsService/Export': 'logs',
  '/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export': 'profiles',
};

/** Items in a decoded request: spans, log records, metric data points, profiles. */
function itemsIn(signal: OtlpSignal, req: Record<string, unknown>): number {
  const arr = (x: unknown) => (Array.isArray(x) ? (x as Array<Record<string, unknown>>) : []);
  const [outer, inner, leaf] = ({ traces: ['resourceSpans', 'scopeSpans', 'spans'], logs: ['resourceLogs', 'scopeLogs', 'logRecords'], metrics: ['resourceMetrics', 'scopeMetrics', 'metrics'], profiles: ['resourceProfiles', 'scopeProfiles', 'profiles'] } as const)[signal];
  let n = 0;
  for (const r of arr(req[outer])) {
    for (const sc of arr(r[inner])) {
      for (const x of arr(sc[leaf])) {
        if (signal !== 'metrics') n++;
        else for (const k of ['sum', 'gauge', 'histogram', 'exponentialHistogram', 'summary']) n += arr((x[k] as Record<string, unknown> | undefined)?.dataPoints).length;
      }
    }
  }
  return n;
}

/**
 * A gRPC OTLP endpoint as cheap as a collector on another host is to this machine: it reads each
 * request's bytes off the HTTP/2 stream and answers OK (empty Export*ServiceResponse), nothing
 * more. One request in SAMPLE_EVERY per signal is kept; at 'stats' (between rounds, outside any
 * measured pass) those are gunzipped and decoded with the official protobufs and their items
 * counted, so a broken encoding or a short batch still fails the run.
 */
function cheapReceiver(port: number): Promise<{ url: string; stats(): Stats }> {
  const seen: Record<string, number> = {};
  const counts: Stats = {};
  const samples: Array<{ signal: OtlpSignal; body: Buffer; gzip: boolean }> = [];
  const EMPTY = Buffer.alloc(5); // uncompressed, zero-length message
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    const signal = GRPC_SIGNALS[String(headers[':path'])];
    if (!signal) {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12' }, { endStream: true });
      return;
    }
    const keep = (seen[signal] = (seen[signal] ?? 0) + 1) % SAMPLE_EVERY === 1;
    const chunks: Buffer[] | undefined = keep ? [] : undefined;
    let bytes = 0;
    stream.on('data', (c: Buffer) => {
      bytes += c.length;
      chunks?.push(c);
    });
    stream.on('end', () => {
      const x = (counts[signal] ??= { requests: 0, bytes: 0 });
      x.requests++;
      x.bytes += bytes - 5;
      if (chunks) samples.push({ signal, body: Buffer.concat(chunks), gzip: headers['grpc-encoding'] === 'gzip' });
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-accept-encoding': 'identity,gzip' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(EMPTY);
    });
    stream.on('error', () => undefined);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      resolve({
        url,
        stats() {
          for (const { signal, body, gzip } of samples.splice(0)) {
            const msg = body.subarray(5, 5 + body.readUInt32BE(1));
            const x = counts[signal];
            const items = itemsIn(signal, decodeOtlpRequest(signal, body[0] === 1 && gzip ? zlib.gunzipSync(msg) : msg));
            x.sampled = (x.sampled ?? 0) + 1;
            x.sampled_items = (x.sampled_items ?? 0) + items;
            (x.sampled_item_counts ??= []).push(items);
          }
          const out = { ...counts };
          for (const k of Object.keys(counts)) delete counts[k];
          return out;
        },
      });
    });
  });
}

// ---- child: the receiver ------------------------------------------------------------------------
// Also used by export-outage.bench.ts (`--receiver grpc PORT`): the collector coming back.
async function receiverMain(protocol: 'grpc' | 'http' | 'cheap', port = 0): Promise<void> {
  let stats: () => Stats;
  let url: string;
  if (protocol === 'cheap') ({ url, stats } = await cheapReceiver(port));
  else {
    const r: OtlpReceiver = await startReceiver({ protocol, port, decode: false });
    url = r.url;
    stats = () => {
      const s: Stats = {};
      for (const a of r.attempts) {
        const x = (s[a.signal] ??= { requests: 0, bytes: 0 });
        x.requests++;
        x.bytes += a.bytes;
      }
      r.attempts.length = 0;
      return s;
    };
  }
  process.on('message', (m: RxAsk) => {
    if (m === 'stats') process.send!(stats());
    else if (m === 'cpu') {
      const c = process.cpuUsage();
      process.send!(c.user + c.system);
    }
  });
  process.send!({ url });
}

// ---- parent --------------------------------------------------------------------------------------
interface Rx { child: ChildProcess; url: string; stats(): Promise<Stats>; cpuUs(): Promise<number> }

async function spawnReceiver(protocol: 'grpc' | 'http' | 'cheap'): Promise<Rx> {
  const child = fork(__filename, ['--receiver', protocol], { stdio: 'inherit' });
  const url = await new Promise<string>((res, rej) => {
    child.once('message', (m) => res((m as { url: string }).url));
    child.once('exit', (c) => rej(new Error(`receiver exited ${c}`)));
  });
  const ask = <R>(m: RxAsk) => new Promise<R>((res) => { child.once('message', (x) => res(x as R)); child.send(m); });
  return { child, url, stats: () => ask<Stats>('stats'), cpuUs: () => ask<number>('cpu') };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const gcFn = (globalThis as { gc?: (o?: { type: 'minor' | 'major' }) => void }).gc;
/**
 * How each pass is charged its garbage (run with --expose-gc, as bench/run.js does). full (the
 * default): a full collection before the pass (not timed) and one after it (timed, minus one with
 * nothing left), so the old-generation garbage of a pass (the official exporters promote much
 * more than ours) is charged to that pass. It inflates both sides of the A/B: a forced full
 * collection marks the whole heap, here mostly the bench's own prebuilt items (50k spans, 50k log
 * records, 100k metric points, 500 profiles), and V8's worker threads stay busy into the next
 * timed pass (a logs-only pass at load ~10: 2.6–4.3 µs of CPU per record with no forced
 * collection, 3.2–5.0 µs with a scavenge around each pass, 5–8 µs with full ones, ~2.5 µs of it on
 * V8's worker threads; per-thread /proc times): after them the encoders are optimized again in
 * every pass (--trace-opt). minor (BENCH_GC=minor): scavenges instead, no such
 * bias, but a major collection then lands on whichever pass runs when the old generation fills,
 * so it only suits A/Bs of like allocators (BENCH_BASELINE of our own export stage): against the
 * official exporters it charged their garbage to our passes (log records: official/ours CPU 0.92,
 * rounds 0.71–3.6, where full collections give 1.7–1.9 in every round).
 */
const GC_MODE: 'minor' | 'full' = process.env.BENCH_GC === 'minor' ? 'minor' : 'full';
const gc = gcFn && (() => (GC_MODE === 'full' ? gcFn() : gcFn({ type: 'minor' })));

interface PumpResult { perSec: number; dropped: number; cpuUsPerItem: number; rxCpuUsPerItem: number }

/**
 * Enqueues n prebuilt items in ring-batch-sized chunks, yielding between chunks; returns items/s to
 * acknowledged and the CPU time of this process (every thread: V8's, and zlib's on the libuv
 * pool, included) per item, and the receiver's CPU per item over the same pass. The items are
 * built before timing, so what is measured is the export stage, not the making of spans.
 */
async function pump<T>(q: BatchQueue<T>, items: T[], chunk: number, rx?: Rx): Promise<PumpResult> {
  const n = items.length;
  const before = q.counters();
  // Each pass pays for its own garbage: collected before (not timed) and after (in its CPU time).
  // Without this the A/B is skewed: the official exporter's request objects were collected during
  // whichever pass came next.
  gc?.();
  const rx0 = rx ? await rx.cpuUs() : 0;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i += chunk) {
    const end = Math.min(n, i + chunk);
    for (let j = i; j < end; j++) q.enqueue(items[j]);
    await new Promise((r) => setImmediate(r));
  }
  await q.forceFlush();
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const rx1 = rx ? await rx.cpuUs() : 0;
  if (gc) {
    // The garbage left over: a collection now, minus what one costs with none left.
    const a = process.cpuUsage();
    gc();
    const b = process.cpuUsage();
    gc();
    const c = process.cpuUsage();
    const us = (x: NodeJS.CpuUsage, y: NodeJS.CpuUsage) => y.user + y.system - x.user - x.system;
    cpu.user += Math.max(0, us(a, b) - us(b, c));
  }
  const c = q.counters();
  const exported = c.exported - before.exported;
  const dropped = c.dropped_queue_full + c.dropped_export_failed - before.dropped_queue_full - before.dropped_export_failed;
  if (exported + dropped !== n) throw new Error(`${q.signal}: ${exported} exported + ${dropped} dropped of ${n}`);
  return { perSec: exported / dt, dropped, cpuUsPerItem: (cpu.user + cpu.system) / n, rxCpuUsPerItem: (rx1 - rx0) / n };
}

function metricsWith(points: number, seed: number): ResourceMetrics {
  const m = makeMetrics(seed);
  const metric = m.scopeMetrics[0].metrics[0] as { dataPoints: unknown[] };
  const dp = metric.dataPoints[0] as Record<string, unknown>;
  metric.dataPoints = Array.from({ length: points }, (_, i) => ({ ...dp, attributes: { 'http.request.method': 'GET', 'http.route': `/r/${i}`, 'http.response.status_code': 200 + (i % 3) }, value: seed + i }));
  return m;
}

const frame = (name: string, module: string): Frame => ({ name, module, kind: 'native', buildId: 'ab12', unresolved: false });
const FRAMES = Array.from({ length: 400 }, (_, i) => frame(`fn_${i}`, `/usr/lib/lib${i % 12}.so`));
/** One interval of one process: 200 stacks of depth 20 (what a busy service gives per 10 s). */
function profileRequest(i: number): object {
  const samples = Array.from({ length: 200 }, (_, s) => ({
    pid: 1000 + (i % 50), tid: 1000 + s, comm: 'svc', count: 1 + (s % 9),
    stack: Array.from({ length: 20 }, (_, d) => FRAMES[(s * 7 + d * 13) % FRAMES.length]),
  }));
  const info = (pid: number) => ({ pid, serviceName: `svc-${pid}`, executableName: 'svc', executablePath: '/usr/bin/svc', commandLine: 'svc', containerId: '', cgroupPath: '' });
  return toOtlpProfiles({ startMs: 1_700_000_000_000 + i * 10_000, endMs: 1_700_000_010_000 + i * 10_000, periodNs: 10_101_010, missingStacks: 0, samples }, info, 'node-1', '0.1.0');
}

const round1 = (x: number) => Math.round(x * 10) / 10;
const gitHead = (dir: string): string => {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require('child_process') as typeof import('child_process')).execFileSync('git', ['-C', dir, 'rev-parse', '--short', 'HEAD']).toString().trim();
  } catch {
    return '?';
  }
};
/** BENCH_EXPORT_COMPRESSION=none: the same run without gzip (results/export-throughput-none.json), to see the encoders apart from zlib. */
const COMPRESSION = process.env.BENCH_EXPORT_COMPRESSION === 'none' ? 'none' : 'gzip';

/** Queues for `signals` (others disabled), with our encoders or, for the A/B, the official exporters. */
function queuesFor(url: string, protocol: 'grpc' | 'http', official: boolean, signals: string[], queueBytes: number): ExportQueues {
  const cfg: Record<string, unknown> = { endpoint: url, protocol, compression: COMPRESSION };
  for (const s of ['traces', 'metrics', 'logs', 'profiles']) cfg[s] = signals.includes(s) ? { queue_bytes: queueBytes } : { enabled: false };
  exportBaseline.officialSpanLogExporters = official;
  try {
    return createExportQueues(resolveExportConfig(cfg, {}), '/nonexistent');
  } finally {
    exportBaseline.officialSpanLogExporters = false;
  }
}

const BASELINE = process.env.BENCH_BASELINE;
/** cheap (default): cheapReceiver; grpc-js: the test helper's server, which gunzips every request. */
const RECEIVER = process.env.BENCH_RECEIVER === 'grpc-js' ? 'grpc-js' : 'cheap';

/** The B side from an earlier tree's compiled export stage: same config, every signal. */
function baselineQueues(url: string, queueBytes: number): ExportQueues {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(path.resolve(BASELINE as string, 'dist/host/src/export')) as typeof import('../host/src/export');
  const cfg: Record<string, unknown> = { endpoint: url, protocol: 'grpc', compression: COMPRESSION };
  for (const s of ['traces', 'metrics', 'logs', 'profiles']) cfg[s] = { queue_bytes: queueBytes };
  return mod.createExportQueues(mod.resolveExportConfig(cfg, {}), '/nonexistent');
}

async function main(): Promise<void> {
  const rounds = Number(process.env.BENCH_ROUNDS || 5);
  const grpc = await spawnReceiver(RECEIVER === 'cheap' ? 'cheap' : 'grpc');
  const http = await spawnReceiver('http');
  const load0 = os.loadavg();
  // Queues big enough for a producer that bursts ahead of export: this measures the exporters, not
  // the drop policy (export-outage.bench.ts does that).
  const GiB = 2 ** 30;
  const q = queuesFor(grpc.url, 'grpc', false, ['traces', 'metrics', 'logs', 'profiles'], GiB);
  const qb = BASELINE ? baselineQueues(grpc.url, GiB) : queuesFor(grpc.url, 'grpc', true, ['traces', 'logs'], GiB);
  const pid = process.pid;
  const rssStart = rssBytesOf(pid);
  const POINTS = 1000;
  // Built once, before timing: making spans is the producer's cost (the pipeline's, measured by
  // pipeline-capacity.bench.ts), not the export stage's. toOtlpProfiles likewise is the profiler's.
  const SPANS = Array.from({ length: 50_000 }, (_, i) => makeSpan(i));
  const LOGS = Array.from({ length: 50_000 }, (_, i) => makeLog(i));
  const METRICS = Array.from({ length: 100 }, (_, i) => metricsWith(POINTS, i));
  const PROFILES = Array.from({ length: 500 }, (_, i) => profileRequest(i % 50));
  // Once, before any pass: the items move to the old generation and stay there.
  gcFn?.();
  const r = { spans: [] as PumpResult[], spansOfficial: [] as PumpResult[], logs: [] as PumpResult[], logsOfficial: [] as PumpResult[], metrics: [] as PumpResult[], metricsBaseline: [] as PumpResult[], profiles: [] as PumpResult[], profilesBaseline: [] as PumpResult[] };
  let dropped = 0;
  for (let i = 0; i < rounds + 1; i++) {
    // A and B alternate inside each round (and swap order every round), same items, same receiver.
    const ab = async <T>(ours: BatchQueue<T>, official: BatchQueue<T>, items: T[], chunk = 1000) => {
      const first = i % 2 === 0;
      const x = await pump(first ? ours : official, items, chunk, grpc);
      const y = await pump(first ? official : ours, items, chunk, grpc);
      return first ? [x, y] : [y, x];
    };
    const [s, sb] = await ab(q.traces!, qb.traces!, SPANS);
    const [l, lb] = await ab(q.logs!, qb.logs!, LOGS);
    const [m, mb] = qb.metrics ? await ab(q.metrics!, qb.metrics, METRICS, 10) : [await pump(q.metrics!, METRICS, 10, grpc)];
    const [p, pb] = qb.profiles ? await ab(q.profiles!, qb.profiles, PROFILES, 50) : [await pump(q.profiles!, PROFILES, 50, grpc)];
    dropped += s.dropped + sb.dropped + l.dropped + lb.dropped + m.dropped + p.dropped + (mb?.dropped ?? 0) + (pb?.dropped ?? 0);
    if (i === 0) continue; // warm-up: JIT, channels
    r.spans.push(s); r.spansOfficial.push(sb); r.logs.push(l); r.logsOfficial.push(lb); r.metrics.push(m); r.profiles.push(p);
    if (mb) r.metricsBaseline.push(mb);
    if (pb) r.profilesBaseline.push(pb);
  }
  const grpcStats = await grpc.stats();
  const rssEnd = rssBytesOf(pid);
  // What arrived: every export call of both sides reached the receiver (metrics and profiles may
  // split a batch into parts: at least as many), and each sampled request decodes with the official
  // protobufs to a whole batch or a pass's tail.
  const sentRequests = (sig: 'traces' | 'metrics' | 'logs' | 'profiles') => (q[sig]?.counters().export_requests ?? 0) + (qb[sig]?.counters().export_requests ?? 0);
  const batchOf = { traces: 512, logs: 1000, metrics: 1_000_000, profiles: 1_000_000 };
  for (const sig of ['traces', 'metrics', 'logs', 'profiles'] as const) {
    const got = grpcStats[sig]?.requests ?? 0;
    const sent = sentRequests(sig);
    if (sig === 'traces' || sig === 'logs' ? got !== sent : got < sent) throw new Error(`${sig}: the receiver got ${got} requests for ${sent} export calls`);
    const counts = grpcStats[sig]?.sampled_item_counts;
    if (RECEIVER === 'cheap' && !counts?.length) throw new Error(`${sig}: no request sampled`);
    for (const k of counts ?? []) if (!(k > 0 && k <= batchOf[sig])) throw new Error(`${sig}: a sampled request decoded to ${k} items`);
  }
  const sampled = Object.fromEntries(Object.entries(grpcStats).map(([sig, x]) => {
    const ks = x.sampled_item_counts ?? [];
    delete x.sampled_item_counts;
    return [sig, { requests: x.sampled ?? 0, items: x.sampled_items ?? 0, items_per_request: spread(ks.length ? ks : [0]) }];
  }));
  await shutdownExportQueues(q, 5000);
  await shutdownExportQueues(qb, 5000);

  // Bytes on the wire per span: HTTP/protobuf (gzip unless BENCH_EXPORT_COMPRESSION=none), the agent's default batch size, both encoders.
  const N = 20_480;
  const WIRE = Array.from({ length: N }, (_, i) => makeSpan(i, { attrs: { 'url.full': `http://checkout:8080/items/${i}?q=${i * 7}` } }));
  const wire: Record<string, { bytes_per_span: number; requests?: number }> = {};
  for (const official of [false, true]) {
    const hq = queuesFor(http.url, 'http', official, ['traces'], GiB);
    await http.stats();
    await pump(hq.traces!, WIRE, 1024);
    const hs = await http.stats();
    await shutdownExportQueues(hq, 5000);
    wire[official ? 'official' : 'ours'] = { bytes_per_span: round1((hs.traces?.bytes ?? 0) / N), requests: hs.traces?.requests };
  }
  const load1 = os.loadavg();
  grpc.child.kill('SIGTERM');
  http.child.kill('SIGTERM');
  await sleep(100);

  const seed = { spans: 10_000, metric_points: 100_000, logs: 50_000, profiles: 100 };
  const rate = (xs: PumpResult[], mul = 1) => spread(xs.map((x) => x.perSec * mul));
  const cpu = (xs: PumpResult[], div = 1) => spread(xs.map((x) => x.cpuUsPerItem / div));
  // Items per CPU-second of the sender (every thread): its rate with a core of its own.
  const perCore = (xs: PumpResult[], div = 1) => spread(xs.map((x) => Math.round((1e6 * div) / x.cpuUsPerItem)));
  const rxCpu = (xs: PumpResult[], div = 1) => spread(xs.map((x) => x.rxCpuUsPerItem / div));
  const ratio = (a: PumpResult[], b: PumpResult[], f: (x: PumpResult) => number) => spread(a.map((x, k) => f(x) / f(b[k])));
  const sp = rate(r.spans), lg = rate(r.logs), pt = rate(r.metrics, POINTS), pr = rate(r.profiles);
  // B: the official exporters (spans and logs), or BENCH_BASELINE's export stage (every signal).
  const b = BASELINE ? 'baseline' : 'official';
  const name = BASELINE ? 'export-throughput-vs-baseline' : COMPRESSION === 'gzip' ? 'export-throughput' : 'export-throughput-none';
  const vsB = (ours: PumpResult[], other: PumpResult[], unit: string, div = 1) => other.length ? {
    [`${unit}_per_s_${b}`]: rate(other, div),
    [`${unit}_speedup_same_round`]: ratio(ours, other, (x) => x.perSec),
    [`${unit}_cpu_us_${b}`]: cpu(other, div),
    [`${unit}_per_cpu_s_${b}`]: perCore(other, div),
    [`${unit}_receiver_cpu_us_${b}`]: rxCpu(other, div),
    [`${unit}_cpu_ratio_${b}_over_ours`]: ratio(other, ours, (x) => x.cpuUsPerItem),
  } : {};
  writeResult(name, {
    transport: `OTLP gRPC, ${COMPRESSION}, agent defaults (batch sizes 512/1000/1000/100, 4 exports in flight per signal) but 1 GiB queues; receiver in a child process: ${RECEIVER === 'cheap' ? `node:http2, no gunzip, no decoding (1 request in ${SAMPLE_EVERY} per signal decoded after the rounds)` : 'grpc-js server, gunzip, no decoding'}`,
    gc_accounting: GC_MODE === 'full' ? 'full collection before each pass (not timed) and after it (timed, minus one with nothing left)' : 'scavenge before each pass (not timed) and after it (timed, minus one with nothing left)',
    b_side: BASELINE ? `export stage of ${BASELINE} (git ${gitHead(BASELINE)})` : 'official opentelemetry-js exporters (spans, logs)',
    loadavg_start_end: [load0.map(round1), load1.map(round1)],
    spans_per_s: sp,
    span_cpu_us: cpu(r.spans),
    spans_per_cpu_s: perCore(r.spans),
    span_receiver_cpu_us: rxCpu(r.spans),
    ...vsB(r.spans, r.spansOfficial, 'span'),
    log_records_per_s: lg,
    log_cpu_us: cpu(r.logs),
    log_records_per_cpu_s: perCore(r.logs),
    log_receiver_cpu_us: rxCpu(r.logs),
    ...vsB(r.logs, r.logsOfficial, 'log'),
    metric_points_per_s: pt,
    metric_point_cpu_us: cpu(r.metrics, POINTS),
    metric_points_per_cpu_s: perCore(r.metrics, POINTS),
    metric_point_receiver_cpu_us: rxCpu(r.metrics, POINTS),
    ...vsB(r.metrics, r.metricsBaseline, 'metric_point', POINTS),
    profiles_per_s: pr,
    profile_cpu_us: cpu(r.profiles),
    profiles_per_cpu_s: perCore(r.profiles),
    profile_receiver_cpu_us: rxCpu(r.profiles),
    ...vsB(r.profiles, r.profilesBaseline, 'profile'),
    times_seed_target: {
      spans: round1(sp.median / seed.spans),
      metric_points: round1(pt.median / seed.metric_points),
      logs: round1(lg.median / seed.logs),
      profiles: round1(pr.median / seed.profiles),
    },
    dropped,
    per_round: Object.fromEntries(Object.entries(r).map(([k, xs]) => [k, xs.map((x) => ({ per_s: Math.round(x.perSec), cpu_us: Math.round(x.cpuUsPerItem * 100) / 100, receiver_cpu_us: Math.round(x.rxCpuUsPerItem * 100) / 100 }))])),
    grpc_requests: grpcStats,
    grpc_sampled_decoded: sampled,
    http_gzip_wire: wire,
    workload: { span: 'HTTP server span, 6 attributes + 1 event (+ url.full for the bytes-per-span pass)', log: 'one record, body + 3 attributes', metric: `sum with ${POINTS} points per ResourceMetrics`, profile: '200 samples of depth-20 stacks over 400 functions (50 distinct)', items: 'built before timing, reused every round' },
    rss_mib: { start: Math.round(rssStart / 2 ** 20), end: Math.round(rssEnd / 2 ** 20) },
  });
}

/**
 * BENCH_CASES=file: the default file exporter (traces.jsonl) alone, spans written straight from
 * the span objects (traces-json.ts) against the previous encoder of the same tree (otlp-transformer's
 * request objects, JSON.stringify per span: serializeTracesJson), alternating in every round, 512-span
 * batches into a temp file. CPU per span: export() through the write, with the full-collection
 * accounting of pump(). Bytes allocated per span: the heap growth across serializing 8 batches (no
 * collection in between; a round that saw one is not counted), the line bytes then in the write buffer.
 */
async function fileMain(): Promise<void> {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const fs = require('fs') as typeof import('fs');
  const v8 = require('v8') as typeof import('v8');
  const { PerformanceObserver } = require('perf_hooks') as typeof import('perf_hooks');
  const fe = require('../host/src/export/file-exporter') as typeof import('../host/src/export/file-exporter');
  const { JsonWriter } = require('../host/src/export/traces-json') as typeof import('../host/src/export/traces-json');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const rounds = Number(process.env.BENCH_ROUNDS || 7);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-file-bench-'));
  const load0 = os.loadavg();
  const BATCH = 512, BATCHES = 40;
  const spans = Array.from({ length: BATCH * BATCHES }, (_, i) => makeSpan(i % 1000, { attrs: { 'url.full': `http://127.0.0.1:8080/items/${i}?q=caf\u00e9` } }));
  const batches = Array.from({ length: BATCHES }, (_, i) => spans.slice(i * BATCH, (i + 1) * BATCH));
  const rot = { maxBytes: 256 << 20, keep: 0 };
  const sides = {
    direct: () => fe.createFileTraceExporter(path.join(dir, 'direct'), rot),
    previous: () => new fe.FileExporter({ signal: 'traces', dir: path.join(dir, 'previous'), ...rot, serialize: fe.serializeTracesJson }),
  };
  let gcs = 0;
  const obs = new PerformanceObserver((l) => { gcs += l.getEntries().length; });
  obs.observe({ entryTypes: ['gc'] });
  const w = new JsonWriter();
  const alloc = {
    direct: () => { for (const b of batches.slice(0, 8)) { w.pos = 0; fe.writeTracesJsonLines(w, b); } },
    previous: () => { for (const b of batches.slice(0, 8)) fe.serializeTracesJson(b); },
  };
  const cpu: Record<string, number[]> = { direct: [], previous: [] };
  const bytes: Record<string, number[]> = { direct: [], previous: [] };
  for (let r = 0; r < rounds; r++) {
    for (const side of (r % 2 ? ['previous', 'direct'] : ['direct', 'previous']) as Array<keyof typeof sides>) {
      const exp = sides[side]();
      gc?.();
      const c0 = process.cpuUsage();
      for (const b of batches) await exp.export(b);
      const c = process.cpuUsage(c0);
      if (gc) {
        const a = process.cpuUsage(); gc(); const b = process.cpuUsage(); gc(); const d = process.cpuUsage();
        const us = (x: NodeJS.CpuUsage, y: NodeJS.CpuUsage) => y.user + y.system - x.user - x.system;
        c.user += Math.max(0, us(a, b) - us(b, d));
      }
      await exp.shutdown();
      fs.rmSync(path.join(dir, side), { recursive: true, force: true });
      cpu[side].push((c.user + c.system) / spans.length);
      alloc[side]();
      gc?.();
      await sleep(10);
      const g0 = gcs;
      const h0 = v8.getHeapStatistics().used_heap_size;
      alloc[side]();
      const h1 = v8.getHeapStatistics().used_heap_size;
      await sleep(10);
      if (gcs === g0) bytes[side].push((h1 - h0) / (8 * BATCH));
    }
  }
  obs.disconnect();
  fs.rmSync(dir, { recursive: true, force: true });
  const load1 = os.loadavg();
  const ratios = cpu.direct.map((d, i) => cpu.previous[i] / d);
  const r2 = (x: number) => Math.round(x * 100) / 100;
  writeResult('export-file-traces', {
    what: 'traces.jsonl file exporter: spans written from the span objects (direct) vs the previous encoder of the same tree (otlp-transformer request objects + JSON.stringify per span), alternating per round',
    workload: `HTTP server span, 7 attributes (url.full non-ASCII) + 1 event; ${BATCHES} batches of ${BATCH} per pass into a temp file`,
    gc_accounting: 'full collection before each pass (not timed) and after it (timed, minus one with nothing left)',
    loadavg_start_end: [load0.map(round1), load1.map(round1)],
    cpu_us_per_span_direct: spread(cpu.direct),
    cpu_us_per_span_previous: spread(cpu.previous),
    cpu_ratio_previous_over_direct_same_round: spread(ratios),
    bytes_allocated_per_span_direct: spread(bytes.direct),
    bytes_allocated_per_span_previous: spread(bytes.previous),
    per_round: { cpu_us_direct: cpu.direct.map(r2), cpu_us_previous: cpu.previous.map(r2), bytes_direct: bytes.direct.map(Math.round), bytes_previous: bytes.previous.map(Math.round) },
  });
}

if (process.argv[2] === '--receiver') receiverMain(process.argv[3] as 'grpc' | 'http' | 'cheap', Number(process.argv[4] || 0)).catch((e) => { console.error(e); process.exit(1); });
else (process.env.BENCH_CASES === 'file' ? fileMain() : main()).then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
