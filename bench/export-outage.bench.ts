// Memory under a collector outage: the export stage with the agent's default queue caps (traces
// 256 MB, metrics 128 MB, logs 256 MB), OTLP gRPC pointed at a port where nothing listens, under
// a steady producer (BENCH_SPANS_PER_S spans, a tenth as many log records, one 200-point metrics
// collection per second) for BENCH_OUTAGE_S seconds (default 600: the seed's 10 minutes). RSS,
// heap and the queues' byte gauges are sampled every 5 s. Then a receiver (child process, the
// test helper) comes up on that port and the bench measures how long the queues take to drain,
// what was delivered, and the RSS after. Nothing here asserts; the result file says whether RSS
// stayed under the caps plus the starting RSS.
import { fork } from 'child_process';
import * as os from 'os';
import * as path from 'path';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import * as v8 from 'v8';
import { createExportQueues, resolveExportConfig, shutdownExportQueues, type ExportQueues } from '../host/src/export';
import { startMemoryTuning } from '../host/src/memory';
import { makeLog, makeMetrics, makeSpan } from '../test/export/fixtures';
import { writeResult, freePort } from './lib';

const MiB = 2 ** 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function metrics(points: number, seed: number): ResourceMetrics {
  const m = makeMetrics(seed);
  const metric = m.scopeMetrics[0].metrics[0] as { dataPoints: unknown[] };
  const dp = metric.dataPoints[0] as Record<string, unknown>;
  metric.dataPoints = Array.from({ length: points }, (_, i) => ({ ...dp, attributes: { 'http.route': `/r/${i}` }, value: seed + i }));
  return m;
}

function sample(q: ExportQueues, t0: number) {
  const m = process.memoryUsage();
  const c = (s: 'traces' | 'metrics' | 'logs') => q[s]!.counters();
  return {
    t_s: Math.round((Date.now() - t0) / 1000),
    rss_mib: Math.round(m.rss / MiB),
    heap_mib: Math.round(m.heapUsed / MiB),
    heap_total_mib: Math.round(m.heapTotal / MiB),
    old_space_mib: Math.round((v8.getHeapSpaceStatistics().find((x) => x.space_name === 'old_space')?.space_size ?? 0) / MiB),
    external_mib: Math.round((m.external + m.arrayBuffers) / MiB),
    queue_mib: { traces: Math.round(c('traces').queue_bytes / MiB), metrics: Math.round(c('metrics').queue_bytes / MiB), logs: Math.round(c('logs').queue_bytes / MiB) },
    dropped: { traces: c('traces').dropped_queue_full, metrics: c('metrics').dropped_queue_full, logs: c('logs').dropped_queue_full },
  };
}

async function main(): Promise<void> {
  const outageS = Number(process.env.BENCH_OUTAGE_S || 600);
  const spansPerS = Number(process.env.BENCH_SPANS_PER_S || 5000);
  const port = await freePort();
  const resolved = resolveExportConfig({ endpoint: `127.0.0.1:${port}`, protocol: 'grpc', compression: 'gzip', profiles: { enabled: false } }, {});
  const caps = { traces: resolved.traces.queueBytes, metrics: resolved.metrics.queueBytes, logs: resolved.logs.queueBytes };
  const q = createExportQueues(resolved, '/nonexistent');
  // As the agent starts it (host/src/memory): young generation capped, native heap trimmed.
  // BENCH_MEMORY_TUNING=0 leaves V8's and glibc's defaults, as before that landed.
  const tuned = process.env.BENCH_MEMORY_TUNING !== '0';
  const stopTuning = tuned ? startMemoryTuning() : undefined;
  const rssStart = process.memoryUsage().rss;
  const loadStart = os.loadavg();
  const t0 = Date.now();
  const timeline: Array<ReturnType<typeof sample>> = [];
  let produced = { traces: 0, metrics: 0, logs: 0 };
  let running = true;
  // Producer: 100 ticks a second, like ring-buffer batches.
  const producer = (async () => {
    let i = 0;
    let tick = 0;
    while (running) {
      const per = Math.max(1, Math.round(spansPerS / 100));
      for (let k = 0; k < per; k++, i++) {
        q.traces!.enqueue(makeSpan(i));
        produced.traces++;
        if (i % 10 === 0) { q.logs!.enqueue(makeLog(i)); produced.logs++; }
      }
      if (++tick % 100 === 0) { q.metrics!.enqueue(metrics(200, tick)); produced.metrics++; }
      await sleep(10);
    }
  })();
  let rssMax = 0;
  while (Date.now() - t0 < outageS * 1000) {
    await sleep(5000);
    const s = sample(q, t0);
    rssMax = Math.max(rssMax, s.rss_mib);
    timeline.push(s);
    process.stdout.write(`outage ${s.t_s}s rss=${s.rss_mib}MiB heap=${s.heap_mib}/${s.heap_total_mib}MiB old=${s.old_space_mib}MiB queues=${JSON.stringify(s.queue_mib)}\n`);
  }
  const atRecovery = sample(q, t0);

  // The collector comes back on the same port.
  const child = fork(path.join(__dirname, 'export-throughput.bench.js'), ['--receiver', 'grpc', String(port)], { stdio: 'inherit' });
  await new Promise((r) => child.once('message', r));
  process.stdout.write(`receiver up on ${port}\n`);
  const tr = Date.now();
  // Drained: everything held at recovery has been delivered (the producer keeps going meanwhile).
  const backlog = Object.fromEntries((['traces', 'metrics', 'logs'] as const).map((s) => { const c = q[s]!.counters(); return [s, c.exported + c.queue_items + c.in_flight_items]; }));
  const drained = () => (['traces', 'metrics', 'logs'] as const).every((s) => q[s]!.counters().exported >= backlog[s]);
  let lastLog = 0;
  while (!drained() && Date.now() - tr < 600_000) {
    await sleep(250);
    if (Date.now() - lastLog > 5000) {
      lastLog = Date.now();
      const c = (s: 'traces' | 'metrics' | 'logs') => q[s]!.counters();
      process.stdout.write(`draining ${Math.round((Date.now() - tr) / 1000)}s exported=${c('traces').exported}/${c('metrics').exported}/${c('logs').exported} queued=${c('traces').queue_items}/${c('metrics').queue_items}/${c('logs').queue_items}\n`);
    }
  }
  const drainS = (Date.now() - tr) / 1000;
  running = false;
  await producer;
  await shutdownExportQueues(q, 30_000);
  const after = sample(q, t0);
  const counters = Object.fromEntries((['traces', 'metrics', 'logs'] as const).map((s) => [s, q[s]!.counters()]));
  child.kill('SIGTERM');
  stopTuning?.();
  const capMiB = Math.round((caps.traces + caps.metrics + caps.logs) / MiB);
  writeResult(`export-outage${outageS === 600 ? '' : `-${outageS}s`}${tuned ? '' : '-untuned'}`, {
    outage_s: outageS,
    memory_tuning: tuned,
    loadavg_start_end: [loadStart, os.loadavg()].map((l) => l.map((x) => Math.round(x * 10) / 10)),
    producer: { spans_per_s: spansPerS, log_records_per_s: spansPerS / 10, metric_collections_per_s: 1, metric_points_per_collection: 200 },
    queue_caps_mib: { traces: caps.traces / MiB, metrics: caps.metrics / MiB, logs: caps.logs / MiB, total: capMiB },
    rss_start_mib: Math.round(rssStart / MiB),
    rss_max_during_outage_mib: rssMax,
    rss_under_start_plus_caps: rssMax <= Math.round(rssStart / MiB) + capMiB,
    at_recovery: atRecovery,
    backlog_at_recovery: backlog,
    drain_after_recovery_s: drainS,
    after_drain: after,
    produced,
    counters,
    timeline,
    note: 'queue_mib are the queues\' own byte estimates; rss is the whole process (producer, exporters, grpc-js). Drops are queue_full: the drop policy (drop_newest by default) applies once a cap is reached.',
  });
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
