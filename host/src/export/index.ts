// Export stage entry points: exporters per signal from a ResolvedExportConfig, a BatchQueue in
// front of each, and the counters rendered for /metrics.
//
//   const resolved = resolveExportConfig(rootConfig.otlp, process.env);
//   const queues = createExportQueues(resolved, dataDir, { onEvent });
//   queues.traces.enqueue(span);            // synchronous, never blocks
//   await shutdownExportQueues(queues, resolved.shutdownTimeoutMs);
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { BatchQueue, type QueueEvent, type ShutdownReport } from './batch-queue';
import type { ResolvedExportConfig, ResolvedSignalExport, Signal } from './config';
import { createFileLogExporter, createFileMetricExporter, createFileProfileExporter, createFileTraceExporter } from './file-exporter';
import { createOtlpLogExporter } from './otlp-logs';
import { createOtlpTraceExporter } from './otlp-traces';
import { createOtlpMetricExporter } from './otlp-metrics';
import { createOtlpProfileExporter } from './otlp-profiles';
import { estimateLogBytes, estimateProfileRequestBytes, estimateResourceMetricsBytes, estimateSpanBytes } from './size';
import type { SignalExporter } from './types';

export * from './config';
export * from './types';
export * from './batch-queue';
export * from './file-exporter';
export * from './otlp-exporters';
export * from './otlp-traces';
export * from './otlp-logs';
export * from './otlp-metrics';
export * from './otlp-transport';
export * from './otlp-profiles';
export * from './metrics-proto';
export * from './traces-proto';
export * from './logs-proto';
export * from './profiles-proto';
export * from './size';

/** File exporter (DATA_DIR/traces.jsonl) when no endpoint resolved, else OTLP gRPC or HTTP/protobuf. */
export function createTraceExporter(resolved: ResolvedExportConfig, dataDir: string): SignalExporter<ReadableSpan> {
  const c = resolved.traces;
  return c.mode === 'file' ? createFileTraceExporter(dataDir, resolved.file) : createOtlpTraceExporter(c);
}

export function createMetricExporter(resolved: ResolvedExportConfig, dataDir: string): SignalExporter<ResourceMetrics> {
  const c = resolved.metrics;
  return c.mode === 'file' ? createFileMetricExporter(dataDir, resolved.file) : createOtlpMetricExporter(c);
}

export function createLogExporter(resolved: ResolvedExportConfig, dataDir: string): SignalExporter<ReadableLogRecord> {
  const c = resolved.logs;
  return c.mode === 'file' ? createFileLogExporter(dataDir, resolved.file) : createOtlpLogExporter(c);
}

/**
 * Profiles: items are ExportProfilesServiceRequest-shaped objects (OTLP/JSON). File exporter when
 * no endpoint resolved, else the OTLP profiles development signal over gRPC or HTTP/protobuf.
 */
export function createProfileExporter(resolved: ResolvedExportConfig, dataDir: string): SignalExporter<object> {
  const c = resolved.profiles;
  return c.mode === 'file' ? createFileProfileExporter(dataDir, resolved.file) : createOtlpProfileExporter(c);
}

function queueFor<T>(c: ResolvedSignalExport, exporter: SignalExporter<T>, estimateBytes: (x: T) => number, onEvent?: (e: QueueEvent) => void): BatchQueue<T> {
  return new BatchQueue<T>({
    signal: c.signal,
    exporter,
    estimateBytes,
    batchSize: c.batchSize,
    maxQueueBytes: c.queueBytes,
    dropPolicy: c.dropPolicy,
    flushIntervalMs: c.flushIntervalMs,
    maxConcurrentExports: c.maxConcurrentExports,
    retry: c.retry,
    // The OTLP exporters time out by themselves (and the HTTP one retries inside timeout_ms);
    // the watchdog only catches a transport that never answers. Not for files: a slow write still
    // lands, so resending it wrote the batch twice (a loaded agent's first batch did, in the soak).
    exportTimeoutMs: c.mode === 'file' ? undefined : 2 * c.timeoutMs + 5000,
    onEvent,
  });
}

export interface ExportQueues {
  traces?: BatchQueue<ReadableSpan>;
  metrics?: BatchQueue<ResourceMetrics>;
  logs?: BatchQueue<ReadableLogRecord>;
  profiles?: BatchQueue<object>;
}

/** One queue per enabled signal. */
export function createExportQueues(resolved: ResolvedExportConfig, dataDir: string, opts: { onEvent?: (e: QueueEvent) => void } = {}): ExportQueues {
  const q: ExportQueues = {};
  if (resolved.traces.enabled) q.traces = queueFor(resolved.traces, createTraceExporter(resolved, dataDir), estimateSpanBytes, opts.onEvent);
  if (resolved.metrics.enabled) q.metrics = queueFor(resolved.metrics, createMetricExporter(resolved, dataDir), estimateResourceMetricsBytes, opts.onEvent);
  if (resolved.logs.enabled) q.logs = queueFor(resolved.logs, createLogExporter(resolved, dataDir), estimateLogBytes, opts.onEvent);
  if (resolved.profiles.enabled) q.profiles = queueFor(resolved.profiles, createProfileExporter(resolved, dataDir), estimateProfileRequestBytes, opts.onEvent);
  return q;
}

/** Shuts every queue down in parallel within one shared deadline. */
export async function shutdownExportQueues(q: ExportQueues, deadlineMs: number): Promise<ShutdownReport[]> {
  const all: Array<Promise<ShutdownReport>> = [];
  if (q.traces) all.push(q.traces.shutdown(deadlineMs));
  if (q.metrics) all.push(q.metrics.shutdown(deadlineMs));
  if (q.logs) all.push(q.logs.shutdown(deadlineMs));
  if (q.profiles) all.push(q.profiles.shutdown(deadlineMs));
  return Promise.all(all);
}

/**
 * Prometheus text for the queues' counters:
 *   telegen_export_items_total{signal,result="received|queued|exported"}
 *   telegen_export_dropped_total{signal,reason="queue_full|export_failed|shutdown|rejected"}
 *   telegen_export_requests_total / _failures_total / _retries_total{signal}
 *   telegen_export_unconfirmed_resent_total{signal} (items possibly delivered twice)
 *   telegen_export_queue_items / _queue_bytes / _in_flight_items{signal} (gauges)
 */
export function renderExportMetrics(q: ExportQueues): string {
  const lines: string[] = [];
  const typed = new Set<string>();
  const put = (name: string, type: 'counter' | 'gauge', help: string, labels: Record<string, string>, v: number) => {
    if (!typed.has(name)) {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      typed.add(name);
    }
    const l = Object.entries(labels)
      .map(([k, x]) => `${k}="${x}"`)
      .join(',');
    lines.push(`${name}{${l}} ${v}`);
  };
  for (const signal of ['traces', 'metrics', 'logs', 'profiles'] as Signal[]) {
    const queue = q[signal];
    if (!queue) continue;
    const c = queue.counters();
    for (const result of ['received', 'queued', 'exported'] as const) put('telegen_export_items_total', 'counter', 'Items seen by the export queue, by result.', { signal, result }, c[result]);
    put('telegen_export_dropped_total', 'counter', 'Items not exported, by reason.', { signal, reason: 'queue_full' }, c.dropped_queue_full);
    put('telegen_export_dropped_total', 'counter', 'Items not exported, by reason.', { signal, reason: 'export_failed' }, c.dropped_export_failed);
    put('telegen_export_dropped_total', 'counter', 'Items not exported, by reason.', { signal, reason: 'shutdown' }, c.dropped_shutdown);
    put('telegen_export_dropped_total', 'counter', 'Items not exported, by reason.', { signal, reason: 'rejected' }, c.dropped_rejected);
    put('telegen_export_requests_total', 'counter', 'Export calls made.', { signal }, c.export_requests);
    put('telegen_export_failures_total', 'counter', 'Export calls that did not succeed.', { signal }, c.export_failures);
    put('telegen_export_retries_total', 'counter', 'Retries scheduled after retryable results.', { signal }, c.retries);
    put('telegen_export_unconfirmed_resent_total', 'counter', 'Items sent again after an attempt with no answer (timeout, connection lost): the receiver may hold them twice.', { signal }, c.unconfirmed_resent);
    put('telegen_export_queue_items', 'gauge', 'Items waiting in the queue.', { signal }, c.queue_items);
    put('telegen_export_queue_bytes', 'gauge', 'Estimated bytes held (waiting and in flight).', { signal }, c.queue_bytes);
    put('telegen_export_in_flight_items', 'gauge', 'Items in export or waiting to retry.', { signal }, c.in_flight_items);
  }
  return lines.join('\n') + '\n';
}

export interface DropSummary {
  /** Per signal, items dropped since the previous summary, by reason (only non-zero ones). */
  dropped: Partial<Record<Signal, Partial<Record<'queue_full' | 'export_failed' | 'shutdown' | 'rejected', number>>>>;
  /** Per signal, items exported since the previous summary. */
  exported: Partial<Record<Signal, number>>;
}

/**
 * The periodic log line the seed asks for: every `intervalMs`, if anything was dropped since the
 * last call, `report(summary)` gets the per-signal, per-reason deltas (so the log shows bursts,
 * /metrics shows totals). Returns a stop function; the timer never keeps the process alive.
 */
export function startDropReporter(q: ExportQueues, report: (s: DropSummary) => void, intervalMs = 60_000): () => void {
  const last = new Map<Signal, { queue_full: number; export_failed: number; shutdown: number; rejected: number; exported: number }>();
  const tick = () => {
    const s: DropSummary = { dropped: {}, exported: {} };
    let any = false;
    for (const signal of ['traces', 'metrics', 'logs', 'profiles'] as Signal[]) {
      const queue = q[signal];
      if (!queue) continue;
      const c = queue.counters();
      const now = { queue_full: c.dropped_queue_full, export_failed: c.dropped_export_failed, shutdown: c.dropped_shutdown, rejected: c.dropped_rejected, exported: c.exported };
      const prev = last.get(signal) ?? { queue_full: 0, export_failed: 0, shutdown: 0, rejected: 0, exported: 0 };
      last.set(signal, now);
      s.exported[signal] = now.exported - prev.exported;
      for (const reason of ['queue_full', 'export_failed', 'shutdown', 'rejected'] as const) {
        const d = now[reason] - prev[reason];
        if (d > 0) {
          (s.dropped[signal] ??= {})[reason] = d;
          any = true;
        }
      }
    }
    if (any) report(s);
  };
  const t = setInterval(tick, intervalMs);
  t.unref();
  return () => {
    clearInterval(t);
    tick();
  };
}
export * from './sdk-adapters';
