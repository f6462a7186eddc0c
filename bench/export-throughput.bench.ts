// Export throughput per signal: items/s from enqueue into the export stage (BatchQueue per signal,
// the agent's exporters and defaults) to acknowledged by a real OTLP receiver (gRPC, gzip), and
// bytes on the wire per span over HTTP/protobuf with gzip. The receiver runs in a child process
// (the test helper, decoding off: what is measured is the sender) so it does not share the
// producer's event loop; on a 2-core machine it still shares the CPUs.
// Seed targets: 10k traces/s, 100k metric points/s, 50k log records/s, 100 profiles/s.
import { fork, type ChildProcess } from 'child_process';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { createExportQueues, resolveExportConfig, shutdownExportQueues, type BatchQueue } from '../host/src/export';
import { toOtlpProfiles } from '../host/src/profile/otlp';
import type { Frame } from '../host/src/profile/symbolizer';
import { startReceiver, type OtlpReceiver } from '../test/helpers/otlp-receiver';
import { makeLog, makeMetrics, makeSpan } from '../test/export/fixtures';
import { spread, writeResult, rssBytesOf } from './lib';

type Stats = Record<string, { requests: number; bytes: number }>;

// ---- child: the receiver ------------------------------------------------------------------------
// Also used by export-outage.bench.ts (`--receiver grpc PORT`): the collector coming back.
async function receiverMain(protocol: 'grpc' | 'http', port = 0): Promise<void> {
  const r: OtlpReceiver = await startReceiver({ protocol, port, decode: false });
  process.on('message', (m) => {
    if (m !== 'stats') return;
    const s: Stats = {};
    for (const a of r.attempts) {
      const x = (s[a.signal] ??= { requests: 0, bytes: 0 });
      x.requests++;
      x.bytes += a.bytes;
    }
    r.attempts.length = 0;
    process.send!(s);
  });
  process.send!({ url: r.url });
}

// ---- parent --------------------------------------------------------------------------------------
interface Rx { child: ChildProcess; url: string; stats(): Promise<Stats> }

async function spawnReceiver(protocol: 'grpc' | 'http'): Promise<Rx> {
  const child = fork(__filename, ['--receiver', protocol], { stdio: 'inherit' });
  const url = await new Promise<string>((res, rej) => {
    child.once('message', (m) => res((m as { url: string }).url));
    child.once('exit', (c) => rej(new Error(`receiver exited ${c}`)));
  });
  return {
    child,
    url,
    stats: () => new Promise((res) => { child.once('message', (m) => res(m as Stats)); child.send('stats'); }),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Enqueues n items in ring-batch-sized chunks, yielding between chunks; returns items/s to acknowledged. */
async function pump<T>(q: BatchQueue<T>, make: (i: number) => T, n: number, chunk: number): Promise<{ perSec: number; dropped: number }> {
  const before = q.counters();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i += chunk) {
    for (let j = i; j < Math.min(n, i + chunk); j++) q.enqueue(make(j));
    await new Promise((r) => setImmediate(r));
  }
  await q.forceFlush();
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = q.counters();
  const exported = c.exported - before.exported;
  const dropped = c.dropped_queue_full + c.dropped_export_failed - before.dropped_queue_full - before.dropped_export_failed;
  if (exported + dropped !== n) throw new Error(`${q.signal}: ${exported} exported + ${dropped} dropped of ${n}`);
  return { perSec: exported / dt, dropped };
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

async function main(): Promise<void> {
  const rounds = Number(process.env.BENCH_ROUNDS || 5);
  const grpc = await spawnReceiver('grpc');
  const http = await spawnReceiver('http');
  // Queues big enough for a producer that bursts ahead of export: this measures the exporters, not
  // the drop policy (export-outage.bench.ts does that).
  const GiB = 2 ** 30;
  const resolved = resolveExportConfig({
    endpoint: grpc.url, protocol: 'grpc', compression: 'gzip',
    traces: { queue_bytes: GiB }, metrics: { queue_bytes: GiB }, logs: { queue_bytes: GiB }, profiles: { queue_bytes: GiB },
  }, {});
  const q = createExportQueues(resolved, '/nonexistent');
  const pid = process.pid;
  const rssStart = rssBytesOf(pid);
  const spans: number[] = [], logs: number[] = [], points: number[] = [], profiles: number[] = [];
  const POINTS = 1000;
  // Built once: toOtlpProfiles is the profiler's cost (per drain), not the export stage's.
  const PROFILES = Array.from({ length: 50 }, (_, i) => profileRequest(i));
  let dropped = 0;
  for (let r = 0; r < rounds + 1; r++) {
    const s = await pump<ReadableSpan>(q.traces!, (i) => makeSpan(i), 50_000, 1000);
    const l = await pump<ReadableLogRecord>(q.logs!, (i) => makeLog(i), 50_000, 1000);
    const m = await pump<ResourceMetrics>(q.metrics!, (i) => metricsWith(POINTS, i), 100, 10);
    const p = await pump<object>(q.profiles!, (i) => PROFILES[i % PROFILES.length], 500, 50);
    dropped += s.dropped + l.dropped + m.dropped + p.dropped;
    if (r === 0) continue; // warm-up: JIT, channels
    spans.push(s.perSec); logs.push(l.perSec); points.push(m.perSec * POINTS); profiles.push(p.perSec);
  }
  const grpcStats = await grpc.stats();
  const rssEnd = rssBytesOf(pid);
  await shutdownExportQueues(q, 5000);

  // Bytes on the wire per span: HTTP/protobuf with gzip, the agent's default batch size.
  const hq = createExportQueues(resolveExportConfig({ endpoint: http.url, protocol: 'http', compression: 'gzip', metrics: { enabled: false }, logs: { enabled: false }, profiles: { enabled: false } }, {}), '/nonexistent');
  await http.stats();
  const N = 20_480;
  await pump<ReadableSpan>(hq.traces!, (i) => makeSpan(i, { attrs: { 'url.full': `http://checkout:8080/items/${i}?q=${i * 7}` } }), N, 1024);
  const hs = await http.stats();
  await shutdownExportQueues(hq, 5000);
  grpc.child.kill('SIGTERM');
  http.child.kill('SIGTERM');
  await sleep(100);

  const seed = { spans: 10_000, metric_points: 100_000, logs: 50_000, profiles: 100 };
  const sp = spread(spans), lg = spread(logs), pt = spread(points), pr = spread(profiles);
  writeResult('export-throughput', {
    transport: 'OTLP gRPC, gzip, agent defaults (batch sizes 512/1000/1000/100, 1 export in flight per signal) but 1 GiB queues; receiver in a child process, not decoding',
    spans_per_s: sp,
    log_records_per_s: lg,
    metric_points_per_s: pt,
    profiles_per_s: pr,
    times_seed_target: {
      spans: Math.round((sp.median / seed.spans) * 10) / 10,
      metric_points: Math.round((pt.median / seed.metric_points) * 10) / 10,
      logs: Math.round((lg.median / seed.logs) * 10) / 10,
      profiles: Math.round((pr.median / seed.profiles) * 10) / 10,
    },
    dropped,
    grpc_requests: grpcStats,
    http_gzip_bytes_per_span: Math.round(((hs.traces?.bytes ?? 0) / N) * 10) / 10,
    http_gzip_requests_for_spans: hs.traces?.requests,
    workload: { span: 'HTTP server span, 6 attributes + 1 event (+ url.full for the bytes-per-span pass)', log: 'one record, body + 3 attributes', metric: `sum with ${POINTS} points per ResourceMetrics`, profile: '200 samples of depth-20 stacks over 400 functions, built before timing (50 distinct)' },
    rss_mib: { start: Math.round(rssStart / 2 ** 20), end: Math.round(rssEnd / 2 ** 20) },
  });
}

if (process.argv[2] === '--receiver') receiverMain(process.argv[3] as 'grpc' | 'http', Number(process.argv[4] || 0)).catch((e) => { console.error(e); process.exit(1); });
else main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
