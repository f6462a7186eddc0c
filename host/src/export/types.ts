// The exporter contract every signal shares (opentelemetry-js shape, with the retryable
// distinction the OTLP spec makes kept visible so the BatchQueue can decide to retry).
import type { Signal } from './config';

export type ExportCode = 'success' | 'failure' | 'retryable';

export interface ExportOutcome {
  code: ExportCode;
  error?: Error;
  /** Server-requested delay (HTTP Retry-After, gRPC RetryInfo) when the transport exposes it. */
  retryAfterMs?: number;
  /**
   * No answer came back (deadline, connection lost after sending): the receiver may have
   * accepted the batch. OTLP export is at-least-once, so retrying it can deliver items twice;
   * the queue counts those items (telegen_export_unconfirmed_resent_total).
   */
  unconfirmed?: boolean;
  /**
   * With 'success': items the receiver took the request with but rejected (OTLP partial_success).
   * Not retried (the spec says so); counted as dropped{reason="rejected"}, `error` says why.
   */
  rejected?: number;
}

/** `T` is one queued item: a ReadableSpan, a ReadableLogRecord, a ResourceMetrics, a profile. */
export interface SignalExporter<T> {
  readonly signal: Signal;
  /** Human-readable target, e.g. "file:/var/lib/telegen/traces.jsonl" or "grpc:http://collector:4317". */
  readonly target: string;
  export(batch: T[]): Promise<ExportOutcome>;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}
