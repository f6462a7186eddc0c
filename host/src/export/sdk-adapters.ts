// Adapters that put a BatchQueue behind the OpenTelemetry SDKs, so spans, log records and metric
// collections made with the SDK APIs flow into telegen's byte-bounded queues and exporters:
//   new BasicTracerProvider({ spanProcessors: [new QueueSpanProcessor(queues.traces)] })
//   new LoggerProvider({ processors: [new QueueLogRecordProcessor(queues.logs)] })
//   new MeterProvider({ readers: [new PeriodicExportingMetricReader({ exporter: new QueueMetricExporter(queues.metrics, 1000) })] })
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { Attributes, Context } from '@opentelemetry/api';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { LogRecordProcessor, ReadableLogRecord, SdkLogRecord } from '@opentelemetry/sdk-logs';
import type { PushMetricExporter, ResourceMetrics, ScopeMetrics, MetricData } from '@opentelemetry/sdk-metrics';
import type { BatchQueue } from './batch-queue';
import type { MetricExemplar } from './metrics-proto';

export class QueueSpanProcessor implements SpanProcessor {
  constructor(
    private readonly queue: BatchQueue<ReadableSpan>,
    private readonly shutdownDeadlineMs = 10_000,
  ) {}
  onStart(_span: Span, _ctx: Context): void {}
  onEnd(span: ReadableSpan): void {
    // Unsampled spans are not exported (what the SDK's BatchSpanProcessor does too).
    if ((span.spanContext().traceFlags & 1) === 0) return;
    this.queue.enqueue(span);
  }
  forceFlush(): Promise<void> {
    return this.queue.forceFlush();
  }
  async shutdown(): Promise<void> {
    await this.queue.shutdown(this.shutdownDeadlineMs);
  }
}

export class QueueLogRecordProcessor implements LogRecordProcessor {
  constructor(
    private readonly queue: BatchQueue<ReadableLogRecord>,
    private readonly shutdownDeadlineMs = 10_000,
  ) {}
  onEmit(logRecord: SdkLogRecord): void {
    // The SDK makes the record read-only once emitted; it is queued as is, no copy.
    this.queue.enqueue(logRecord as unknown as ReadableLogRecord);
  }
  forceFlush(): Promise<void> {
    return this.queue.forceFlush();
  }
  async shutdown(): Promise<void> {
    await this.queue.shutdown(this.shutdownDeadlineMs);
  }
}

function countPoints(rm: ResourceMetrics): number {
  let n = 0;
  for (const sm of rm.scopeMetrics) for (const m of sm.metrics) n += m.dataPoints.length;
  return n;
}

/**
 * Splits one collection into ResourceMetrics of at most `maxPoints` data points each, keeping
 * resource, scope and metric descriptors, so otlp.metrics.batch_size bounds the data points per
 * export request (the seed's meaning) rather than counting whole collections.
 */
export function splitResourceMetrics(rm: ResourceMetrics, maxPoints: number): ResourceMetrics[] {
  if (countPoints(rm) <= maxPoints) return [rm];
  const out: ResourceMetrics[] = [];
  let scopes: ScopeMetrics[] = [];
  let room = maxPoints;
  const flush = () => {
    if (scopes.length) out.push({ resource: rm.resource, scopeMetrics: scopes });
    scopes = [];
    room = maxPoints;
  };
  for (const sm of rm.scopeMetrics) {
    for (const m of sm.metrics) {
      let i = 0;
      const points = m.dataPoints as unknown[];
      while (i < points.length) {
        const take = Math.min(room, points.length - i);
        const part = { ...m, dataPoints: points.slice(i, i + take) } as MetricData;
        let cur = scopes.length ? scopes[scopes.length - 1] : undefined;
        if (!cur || cur.scope !== sm.scope) {
          cur = { scope: sm.scope, metrics: [] };
          scopes.push(cur);
        }
        cur.metrics.push(part);
        i += take;
        room -= take;
        if (room === 0) flush();
      }
    }
  }
  flush();
  return out;
}

/** Where a histogram point's exemplars come from (analytics keeps them per RED series). */
export interface ExemplarSource {
  exemplarsFor(metricName: string, attributes: Attributes): MetricExemplar[] | undefined;
}

const HISTOGRAM = 0; // sdk-metrics DataPointType.HISTOGRAM

/**
 * Puts each histogram point's exemplars on it (`exemplars`, read by metrics-proto.ts) at
 * collection time, so they are a snapshot taken with the counts they illustrate, and travel with
 * the point through the queue, retries included.
 */
export function attachExemplars(rm: ResourceMetrics, source: ExemplarSource): void {
  for (const sm of rm.scopeMetrics) {
    for (const m of sm.metrics) {
      if ((m.dataPointType as number) !== HISTOGRAM) continue;
      for (const dp of m.dataPoints as Array<{ attributes: Attributes; exemplars?: MetricExemplar[] }>) {
        const ex = source.exemplarsFor(m.descriptor.name, dp.attributes);
        if (ex?.length) dp.exemplars = ex;
      }
    }
  }
}

export class QueueMetricExporter implements PushMetricExporter {
  /** Set once analytics exists (it is built after the meter it records into). */
  exemplars: ExemplarSource | undefined;

  constructor(
    private readonly queue: BatchQueue<ResourceMetrics>,
    /** Data points per queued item (otlp.metrics.batch_size). */
    private readonly maxPointsPerItem: number,
    private readonly shutdownDeadlineMs = 10_000,
  ) {}
  export(metrics: ResourceMetrics, resultCallback: (result: ExportResult) => void): void {
    let dropped = 0;
    if (this.exemplars) {
      try {
        attachExemplars(metrics, this.exemplars);
      } catch {
        // Exemplars are an illustration: a failure there must not cost the collection.
      }
    }
    for (const part of splitResourceMetrics(metrics, this.maxPointsPerItem)) if (!this.queue.enqueue(part)) dropped++;
    // Accepted = success: delivery is the queue's job from here, and its drops are counted there.
    resultCallback(dropped === 0 ? { code: ExportResultCode.SUCCESS } : { code: ExportResultCode.FAILED, error: new Error(`metrics queue dropped ${dropped} item(s)`) });
  }
  /** False at agent shutdown: the final collection is only handed to the queue, whose own
   *  shutdown then sends it within the deadline. Waiting for delivery here would wait out a
   *  receiver that is down (every retry) before that deadline even starts. */
  waitForDelivery = true;
  forceFlush(): Promise<void> {
    return this.waitForDelivery ? this.queue.forceFlush() : Promise.resolve();
  }
  async shutdown(): Promise<void> {
    await this.queue.shutdown(this.shutdownDeadlineMs);
  }
}
