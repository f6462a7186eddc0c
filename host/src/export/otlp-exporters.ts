// Error classification shared by every OTLP exporter (retryable or not, RetryInfo, unconfirmed),
// the channel replacement after long failure runs, and the official opentelemetry-js trace and log
// exporters configured from a ResolvedSignalExport — no longer on the hot path (traces-proto.ts,
// logs-proto.ts over otlp-transport.ts are), kept as the A/B baseline of
// bench/export-throughput.bench.ts behind `exportBaseline.officialSpanLogExporters`.
//
// The wrapped exporters report only SUCCESS/FAILED. We recover the OTLP spec's retryable
// distinction from the error they hand back:
// - gRPC: the grpc-js status code (UNAVAILABLE, DEADLINE_EXCEEDED, … are retryable) and, when the
//   server sent one, google.rpc.RetryInfo in `grpc-status-details-bin` as retryAfterMs.
// - HTTP: the proto exporter already retries 429/502/503/504 and network errors internally
//   (honouring Retry-After while it fits in timeout_ms); when it gives up it reports "Export failed
//   with retryable status" or the network error, which we map to 'retryable' so the BatchQueue's
//   own backoff (retry.*) continues. Other statuses (400, 401, 413…) are permanent failures.
//
// The exporter packages and grpc-js are loaded on first use only: the embedded default (files)
// never needs them, and they cost ~6 MB of RSS and noticeable startup time.
import * as fs from 'node:fs';
import type { ChannelCredentials, Metadata } from '@grpc/grpc-js';
import type { ExportResult } from '@opentelemetry/core';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { ResolvedSignalExport, Signal } from './config';
import type { ExportOutcome, SignalExporter } from './types';

/** Bench A/B only: traces and logs through the official exporters (read when an exporter is created). */
export const exportBaseline = { officialSpanLogExporters: false };

/** grpc status codes the OTLP spec lists as retryable (RESOURCE_EXHAUSTED: only with RetryInfo). */
const RETRYABLE_GRPC = new Set([1 /* CANCELLED */, 4 /* DEADLINE_EXCEEDED */, 10 /* ABORTED */, 11 /* OUT_OF_RANGE */, 14 /* UNAVAILABLE */, 15 /* DATA_LOSS */]);
const RESOURCE_EXHAUSTED = 8;
const RETRYABLE_NET = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENOTFOUND', 'ENETUNREACH', 'EHOSTUNREACH']);
// Messages opentelemetry-js uses for conditions that pass with time.
const RETRYABLE_MESSAGES = [/retryable status/i, /timed out/i, /concurrent export limit/i, /socket hang up/i];
// No answer after the request went out: the receiver may have taken it (at-least-once). A
// refused connection or a status the server sent is a definite "not accepted".
const UNCONFIRMED_GRPC = new Set([1 /* CANCELLED */, 2 /* UNKNOWN */, 4 /* DEADLINE_EXCEEDED */, 13 /* INTERNAL */, 15 /* DATA_LOSS */]);
const LOST_ANSWER = [/connection dropped/i, /ECONNRESET/, /ETIMEDOUT/, /EPIPE/, /RST_STREAM/, /GOAWAY/i, /socket hang up/i, /timed out/i, /timeout/i];
const UNCONFIRMED_NET = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT']);

// ---- google.rpc.Status / RetryInfo, decoded by hand: three tiny messages don't justify a dependency.
function readVarint(b: Uint8Array, pos: { i: number }): number {
  let result = 0;
  let mul = 1;
  for (;;) {
    if (pos.i >= b.length) throw new Error('truncated varint');
    const byte = b[pos.i++];
    result += (byte & 0x7f) * mul;
    if ((byte & 0x80) === 0) return result;
    mul *= 128;
  }
}

/** Calls fn(field, wireType, valueOrBytes) for each field of a protobuf message. */
export function forEachField(b: Uint8Array, fn: (field: number, wt: number, v: number | Uint8Array) => void): void {
  const pos = { i: 0 };
  while (pos.i < b.length) {
    const tag = readVarint(b, pos);
    const field = Math.floor(tag / 8);
    const wt = tag & 7;
    if (wt === 0) fn(field, wt, readVarint(b, pos));
    else if (wt === 2) {
      const len = readVarint(b, pos);
      fn(field, wt, b.subarray(pos.i, pos.i + len));
      pos.i += len;
    } else if (wt === 1) pos.i += 8;
    else if (wt === 5) pos.i += 4;
    else throw new Error(`unsupported wire type ${wt}`);
  }
}

/** RetryInfo.retry_delay in ms from a serialized google.rpc.Status, if present. */
export function retryDelayFromStatusDetails(statusBin: Uint8Array): number | undefined {
  let delay: number | undefined;
  try {
    forEachField(statusBin, (f, wt, v) => {
      if (f !== 3 || wt !== 2) return; // Status.details (repeated google.protobuf.Any)
      let typeUrl = '';
      let value: Uint8Array | undefined;
      forEachField(v as Uint8Array, (af, awt, av) => {
        if (af === 1 && awt === 2) typeUrl = Buffer.from(av as Uint8Array).toString();
        if (af === 2 && awt === 2) value = av as Uint8Array;
      });
      if (!typeUrl.endsWith('google.rpc.RetryInfo') || !value) return;
      forEachField(value, (rf, rwt, rv) => {
        if (rf !== 1 || rwt !== 2) return; // RetryInfo.retry_delay (Duration)
        let seconds = 0;
        let nanos = 0;
        forEachField(rv as Uint8Array, (df, _dwt, dv) => {
          if (df === 1) seconds = dv as number;
          if (df === 2) nanos = dv as number;
        });
        delay = seconds * 1000 + Math.round(nanos / 1e6);
      });
    });
  } catch {
    return undefined;
  }
  return delay;
}

/** Maps an opentelemetry-js export error to the OTLP retry semantics. */
export function classifyExportError(err: unknown, protocol: 'grpc' | 'http'): ExportOutcome {
  const error = err instanceof Error ? err : new Error(String(err ?? 'export failed'));
  const e = error as Error & { code?: unknown; metadata?: Metadata };
  if (protocol === 'grpc' && typeof e.code === 'number') {
    let retryAfterMs: number | undefined;
    const details = e.metadata?.get?.('grpc-status-details-bin')?.[0];
    if (details instanceof Uint8Array) retryAfterMs = retryDelayFromStatusDetails(details);
    if (RETRYABLE_GRPC.has(e.code) || (e.code === RESOURCE_EXHAUSTED && retryAfterMs !== undefined)) {
      const unconfirmed = UNCONFIRMED_GRPC.has(e.code) || (!/No connection established/i.test(error.message) && LOST_ANSWER.some((re) => re.test(error.message)));
      return { code: 'retryable', error, retryAfterMs, ...(unconfirmed ? { unconfirmed } : {}) };
    }
    return { code: 'failure', error };
  }
  if (typeof e.code === 'string' && RETRYABLE_NET.has(e.code)) return { code: 'retryable', error, ...(UNCONFIRMED_NET.has(e.code) ? { unconfirmed: true } : {}) };
  // OTLPExporterError with a numeric HTTP status is a non-retryable response (the retryable ones
  // were retried inside the exporter and come back without a code).
  if (protocol === 'http' && typeof e.code === 'number') {
    return [429, 502, 503, 504].includes(e.code) ? { code: 'retryable', error } : { code: 'failure', error };
  }
  if (RETRYABLE_MESSAGES.some((re) => re.test(error.message))) {
    return { code: 'retryable', error, ...(LOST_ANSWER.some((re) => re.test(error.message)) ? { unconfirmed: true } : {}) };
  }
  return { code: 'failure', error };
}

/** What OTLPExporterBase<X> offers (X = ReadableSpan[], ReadableLogRecord[]). */
interface OtelExporter<X> {
  export(items: X, resultCallback: (result: ExportResult) => void): void;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

function exportOnce<X>(exp: OtelExporter<X>, items: X, protocol: 'grpc' | 'http'): Promise<ExportOutcome> {
  return new Promise((resolve) => {
    try {
      exp.export(items, (r) => {
        // ExportResultCode.SUCCESS === 0
        resolve(r.code === 0 ? { code: 'success' } : classifyExportError(r.error, protocol));
      });
    } catch (e) {
      resolve(classifyExportError(e, protocol));
    }
  });
}

/**
 * After this long of retryable failures a gRPC exporter gets a new channel. grpc-js backs its
 * reconnects off up to 120 s and the official exporters do not expose the channel options, so
 * after a long collector outage the old channel would keep failing calls for up to two minutes
 * after the collector is back (bench/results/export-outage.json); a new channel connects at once.
 * Our own gRPC client (grpc-unary.ts) has no backoff, but a replaced one also drops a connection
 * that hangs without failing (no keep-alive pings). Only gRPC: the HTTP exporters open
 * connections per request when the old ones failed.
 */
export const GRPC_RECONNECT_AFTER_MS = 5_000;

/**
 * The channel an exporter sends on, replaced (when `renew`) once calls have been failing with
 * retryable results for GRPC_RECONNECT_AFTER_MS. During a long failure run every call gets a new
 * channel, which connects at once (a retry is then a real attempt, paced by the queue's backoff);
 * calls still on the old one finish there and it is closed after them, so concurrent export slots
 * never cancel each other.
 */
export class RenewingChannel<C> {
  private cur: C;
  /** Calls in flight per channel: a replaced one is closed only once they settle. */
  private readonly calls = new Map<C, number>();
  private readonly retired = new Set<C>();
  /** When the current run of retryable failures began (0: the last call succeeded). */
  private failingSince = 0;
  /** Channels replaced after failure runs. */
  renewals = 0;

  constructor(
    private readonly make: () => C,
    private readonly close: (c: C) => void,
    private readonly renew: boolean,
    private readonly now: () => number = Date.now,
  ) {
    this.cur = make();
  }

  get current(): C {
    return this.cur;
  }

  async call(fn: (c: C) => Promise<ExportOutcome>): Promise<ExportOutcome> {
    if (this.renew && this.failingSince && this.now() - this.failingSince >= GRPC_RECONNECT_AFTER_MS) {
      this.retire(this.cur);
      this.cur = this.make();
      this.renewals++;
    }
    const c = this.cur;
    this.calls.set(c, (this.calls.get(c) ?? 0) + 1);
    let r: ExportOutcome;
    try {
      r = await fn(c);
    } finally {
      const left = (this.calls.get(c) ?? 1) - 1;
      if (left > 0) this.calls.set(c, left);
      else {
        this.calls.delete(c);
        if (this.retired.delete(c)) this.close(c);
      }
    }
    if (r.code === 'success') this.failingSince = 0;
    else if (r.code === 'retryable' && !this.failingSince) this.failingSince = this.now();
    return r;
  }

  private retire(old: C): void {
    if (this.calls.has(old)) this.retired.add(old);
    else this.close(old);
  }
}

/** The official opentelemetry-js exporters (the A/B baseline of bench/export-throughput.bench.ts). */
export class OtlpExporter<T> implements SignalExporter<T> {
  readonly signal: Signal;
  readonly target: string;
  private readonly channel: RenewingChannel<OtelExporter<unknown>>;

  constructor(
    private readonly cfg: ResolvedSignalExport,
    makeInner: () => OtelExporter<unknown>,
    /** 'batch': the exporter takes T[]; 'each': it takes one T per call. */
    private readonly shape: 'batch' | 'each',
    now: () => number = Date.now,
  ) {
    this.signal = cfg.signal;
    this.target = `${cfg.protocol}:${cfg.endpoint}`;
    // Only gRPC: the HTTP exporters open connections per request when the old ones failed.
    this.channel = new RenewingChannel(makeInner, (x) => void x.shutdown().catch(() => undefined), cfg.protocol === 'grpc', now);
  }

  /** Channels replaced after failure runs (gRPC). */
  get reconnects(): number {
    return this.channel.renewals;
  }

  async export(batch: T[]): Promise<ExportOutcome> {
    if (batch.length === 0) return { code: 'success' };
    return this.channel.call((inner) => this.exportWith(inner, batch));
  }

  private async exportWith(inner: OtelExporter<unknown>, batch: T[]): Promise<ExportOutcome> {
    if (this.shape === 'batch') return exportOnce(inner, batch, this.cfg.protocol);
    // Stop at the first non-success: the queue retries or drops the whole batch, which can
    // duplicate the items already sent; OTLP receivers must tolerate duplicates on retry anyway.
    for (const item of batch) {
      const r = await exportOnce(inner, item, this.cfg.protocol);
      if (r.code !== 'success') return r;
    }
    return { code: 'success' };
  }

  forceFlush(): Promise<void> {
    return this.channel.current.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.channel.current.shutdown();
  }
}

export function readPem(file: string | undefined, what: string): Buffer | undefined {
  if (file === undefined) return undefined;
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new Error(`cannot read ${what} ${file}: ${(e as Error).message}`);
  }
}

/* eslint-disable @typescript-eslint/no-require-imports */
const lazy = {
  grpc: () => require('@grpc/grpc-js') as typeof import('@grpc/grpc-js'),
  traceGrpc: () => require('@opentelemetry/exporter-trace-otlp-grpc') as typeof import('@opentelemetry/exporter-trace-otlp-grpc'),
  traceProto: () => require('@opentelemetry/exporter-trace-otlp-proto') as typeof import('@opentelemetry/exporter-trace-otlp-proto'),
  logsGrpc: () => require('@opentelemetry/exporter-logs-otlp-grpc') as typeof import('@opentelemetry/exporter-logs-otlp-grpc'),
  logsProto: () => require('@opentelemetry/exporter-logs-otlp-proto') as typeof import('@opentelemetry/exporter-logs-otlp-proto'),
};
/* eslint-enable @typescript-eslint/no-require-imports */

function grpcOptions(cfg: ResolvedSignalExport) {
  const { Metadata, credentials: grpcCredentials } = lazy.grpc();
  const metadata = new Metadata();
  for (const [k, v] of Object.entries(cfg.headers)) metadata.set(k, v);
  let creds: ChannelCredentials;
  if (cfg.tls.insecure) creds = grpcCredentials.createInsecure();
  else {
    creds = grpcCredentials.createSsl(readPem(cfg.tls.caFile, 'CA file') ?? null, readPem(cfg.tls.keyFile, 'client key') ?? null, readPem(cfg.tls.certFile, 'client certificate') ?? null);
  }
  return {
    url: cfg.endpoint,
    metadata,
    credentials: creds,
    compression: cfg.compression as never, // CompressionAlgorithm is a string enum: 'gzip' | 'none'
    timeoutMillis: cfg.timeoutMs,
    concurrencyLimit: cfg.maxConcurrentExports,
    userAgent: 'telegen',
  };
}

function httpOptions(cfg: ResolvedSignalExport) {
  const ca = readPem(cfg.tls.caFile, 'CA file');
  const cert = readPem(cfg.tls.certFile, 'client certificate');
  const key = readPem(cfg.tls.keyFile, 'client key');
  return {
    url: cfg.endpoint,
    headers: { ...cfg.headers },
    compression: cfg.compression as never,
    timeoutMillis: cfg.timeoutMs,
    concurrencyLimit: cfg.maxConcurrentExports,
    keepAlive: true,
    httpAgentOptions: ca || cert || key ? { keepAlive: true, ca, cert, key } : { keepAlive: true },
    userAgent: 'telegen',
  };
}

function requireEndpoint(cfg: ResolvedSignalExport): void {
  if (!cfg.endpoint) throw new Error(`${cfg.signal}: no OTLP endpoint resolved (file mode)`);
}

export function createOfficialTraceExporter(cfg: ResolvedSignalExport): OtlpExporter<ReadableSpan> {
  requireEndpoint(cfg);
  const inner = () => (cfg.protocol === 'grpc' ? new (lazy.traceGrpc().OTLPTraceExporter)(grpcOptions(cfg)) : new (lazy.traceProto().OTLPTraceExporter)(httpOptions(cfg))) as OtelExporter<unknown>;
  return new OtlpExporter<ReadableSpan>(cfg, inner, 'batch');
}

export function createOfficialLogExporter(cfg: ResolvedSignalExport): OtlpExporter<ReadableLogRecord> {
  requireEndpoint(cfg);
  const inner = () => (cfg.protocol === 'grpc' ? new (lazy.logsGrpc().OTLPLogExporter)(grpcOptions(cfg)) : new (lazy.logsProto().OTLPLogExporter)(httpOptions(cfg))) as OtelExporter<unknown>;
  return new OtlpExporter<ReadableLogRecord>(cfg, inner, 'batch');
}
