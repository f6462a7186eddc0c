// Our own OTLP transport, for every signal (we encode all four requests ourselves): a unary gRPC
// call over node:http2 (grpc-unary.ts), or a keep-alive node:http(s) POST of
// application/x-protobuf. Retry semantics as the OTLP spec gives them: retryable gRPC codes
// (RetryInfo honoured), HTTP 429/502/503/504 and network errors with Retry-After; one attempt per
// call, the BatchQueue retries. gzip (level 1) runs on libuv's thread pool, not on the event loop,
// for both protocols, through kept streams (gzipBody). A gRPC client failing for
// GRPC_RECONNECT_AFTER_MS is replaced (RenewingChannel). An answer with partial_success reports
// the receiver's rejected count.
import * as http from 'node:http';
import * as https from 'node:https';
import * as zlib from 'node:zlib';
import type { ResolvedSignalExport, Signal } from './config';
import { GrpcUnaryClient } from './grpc-unary';
import { classifyExportError, forEachField, readPem, RenewingChannel } from './otlp-exporters';
import type { ExportOutcome, SignalExporter } from './types';

/** Retry-After: delay-seconds or an HTTP date. */
export function parseRetryAfter(v: string | undefined, now = Date.now()): number | undefined {
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

/**
 * The Collector's OTLP receivers refuse requests over 4 MiB by default (max_recv_msg_size_mib, and
 * grpc's own default); a merged batch of large profiles, or of many metric collections, can pass
 * that, so it is sent in parts.
 */
export const MAX_REQUEST_BYTES = 3.5 * 1024 * 1024;

/** Parts of one batch being compressed and sent at once (the BatchQueue's slots are per batch). */
const PARTS_IN_FLIGHT = 2;

/** One request for the batch, or halves of it (recursively) while one is over `max` bytes. */
export function encodeInParts<T>(batch: T[], max: number, encode: (batch: T[]) => Buffer): Buffer[] {
  const body = encode(batch);
  if (body.length <= max || batch.length === 1) return [body];
  const mid = batch.length >> 1;
  return [...encodeInParts(batch.slice(0, mid), max, encode), ...encodeInParts(batch.slice(mid), max, encode)];
}

/**
 * gzip at zlib's fastest level, on libuv's pool. Level 1 against the default 6, per item of the
 * bench's batches: log records 0.61 vs 2.02 µs for 20.1 vs 20.0 bytes, spans 0.52 vs 2.41 µs for
 * 31.8 vs 30.3 bytes, metric points 0.21 vs 0.58 µs for 6.7 vs 5.3 bytes. Output in 64 KiB chunks:
 * each chunk is a round trip between the pool and the event loop.
 */
const GZIP_OPTIONS: zlib.ZlibOptions = { level: zlib.constants.Z_BEST_SPEED, chunkSize: 64 * 1024 };

/**
 * Idle gzip streams kept for the next request. zlib.gzip() builds a deflate state (~260 KiB) per
 * call, and on a pool thread that memory comes from the thread's own malloc arena, released and
 * faulted in again call after call: 1.2–1.5 µs of CPU per log record of a 1000-record request
 * against 0.5–0.6 µs through a kept stream (reset between requests, the same bytes out). Each
 * export in flight uses one; a few stay, each holding its zlib state.
 */
const idleGzip: zlib.Gzip[] = [];
const IDLE_GZIP_MAX = 4;

/** One whole gzip member of `b`, compressed on libuv's pool by a kept stream. */
export function gzipBody(b: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const z = idleGzip.pop() ?? zlib.createGzip(GZIP_OPTIONS);
    const out: Buffer[] = [];
    let failed = false;
    const onData = (c: Buffer) => out.push(c);
    const onError = (e: Error) => {
      // A stream that failed is not reused.
      failed = true;
      z.off('data', onData);
      z.destroy();
      reject(e);
    };
    z.on('data', onData);
    z.once('error', onError);
    z.write(b);
    // Z_FINISH ends the member (trailer included); reset() starts the next one with its header
    // (ZlibBase has it for every deflate mode; the typings list it for Deflate only).
    z.flush(zlib.constants.Z_FINISH, () => {
      if (failed) return;
      z.off('data', onData);
      z.off('error', onError);
      (z as zlib.Gzip & zlib.ZlibReset).reset();
      if (idleGzip.length < IDLE_GZIP_MAX) idleGzip.push(z);
      else z.close();
      resolve(out.length === 1 ? out[0] : Buffer.concat(out));
    });
  });
}

/**
 * A success answer: Export*ServiceResponse, whose only field (1) is partial_success
 * { rejected_<items> = 1 (int64), error_message = 2 } in every signal. The request is not to be
 * retried; the rejected count goes to the queue's dropped{reason="rejected"}.
 */
export function accepted(response: Uint8Array | undefined): ExportOutcome {
  if (!response?.length) return { code: 'success' };
  let rejected = 0;
  let message = '';
  try {
    forEachField(response, (f, wt, v) => {
      if (f !== 1 || wt !== 2) return;
      forEachField(v as Uint8Array, (pf, pwt, pv) => {
        if (pf === 1 && pwt === 0) rejected = pv as number;
        else if (pf === 2 && pwt === 2) message = Buffer.from(pv as Uint8Array).toString('utf8');
      });
    });
  } catch {
    return { code: 'success' }; // an unreadable answer to a 200 is still an acceptance
  }
  if (!rejected && !message) return { code: 'success' };
  return { code: 'success', rejected, error: new Error(`partial success: ${rejected} rejected${message ? `: ${message}` : ''}`) };
}

interface Transport {
  send(body: Buffer): Promise<ExportOutcome>;
  close(): void;
}

function grpcTransport(cfg: ResolvedSignalExport, method: string): Transport {
  const url = new URL(cfg.endpoint as string);
  const client = new GrpcUnaryClient({
    origin: `${cfg.tls.insecure ? 'http' : 'https'}://${url.host}`,
    tls: cfg.tls.insecure ? undefined : { ca: readPem(cfg.tls.caFile, 'CA file'), cert: readPem(cfg.tls.certFile, 'client certificate'), key: readPem(cfg.tls.keyFile, 'client key') },
    userAgent: 'telegen',
  });
  return {
    async send(raw) {
      const gz = cfg.compression === 'gzip' && client.acceptsGzip;
      let body: Buffer;
      try {
        body = gz ? await gzipBody(raw) : raw;
      } catch (e) {
        return { code: 'failure', error: e as Error };
      }
      try {
        return accepted(await client.call(method, body, gz, cfg.headers, cfg.timeoutMs));
      } catch (e) {
        return classifyExportError(e, 'grpc');
      }
    },
    close: () => client.close(),
  };
}

function httpTransport(cfg: ResolvedSignalExport): Transport {
  const url = new URL(cfg.endpoint as string);
  const secure = url.protocol === 'https:';
  const agent = secure
    ? new https.Agent({ keepAlive: true, ca: readPem(cfg.tls.caFile, 'CA file'), cert: readPem(cfg.tls.certFile, 'client certificate'), key: readPem(cfg.tls.keyFile, 'client key') })
    : new http.Agent({ keepAlive: true });
  const request = secure ? https.request : http.request;
  return {
    async send(raw) {
      let body: Buffer;
      try {
        body = cfg.compression === 'gzip' ? await gzipBody(raw) : raw;
      } catch (e) {
        return { code: 'failure', error: e as Error };
      }
      const headers: Record<string, string | number> = { ...cfg.headers, 'content-type': 'application/x-protobuf', 'content-length': body.length, 'user-agent': 'telegen' };
      if (cfg.compression === 'gzip') headers['content-encoding'] = 'gzip';
      return new Promise((resolve) => {
        const req = request(url, { method: 'POST', agent, headers, timeout: cfg.timeoutMs }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (e) => resolve(classifyExportError(e, 'http')));
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) return resolve(accepted(Buffer.concat(chunks)));
            const error = Object.assign(new Error(`HTTP ${status}: ${Buffer.concat(chunks).toString('utf8').slice(0, 200)}`), { code: status });
            if ([429, 502, 503, 504].includes(status)) {
              const h = res.headers['retry-after'];
              return resolve({ code: 'retryable', error, retryAfterMs: parseRetryAfter(Array.isArray(h) ? h[0] : h) });
            }
            resolve({ code: 'failure', error });
          });
        });
        req.on('timeout', () => req.destroy(Object.assign(new Error(`request timed out after ${cfg.timeoutMs} ms`), { code: 'ETIMEDOUT' })));
        req.on('error', (e) => resolve(classifyExportError(e, 'http')));
        req.end(body);
      });
    },
    close: () => agent.destroy(),
  };
}

/** A signal's exporter over our transport: `encode` turns a batch into request bodies. */
export class OtlpRawExporter<T> implements SignalExporter<T> {
  readonly signal: Signal;
  readonly target: string;
  private readonly channel: RenewingChannel<Transport>;
  private inFlight = new Set<Promise<ExportOutcome>>();

  constructor(
    cfg: ResolvedSignalExport,
    /** gRPC method, e.g. /opentelemetry.proto.collector.metrics.v1.MetricsService/Export. */
    grpcMethod: string,
    /** The batch as request bodies, each within MAX_REQUEST_BYTES where an item allows (made lazily by a generator, or all at once). */
    private readonly encode: (batch: T[]) => Iterable<Buffer>,
  ) {
    if (!cfg.endpoint) throw new Error(`${cfg.signal}: no OTLP endpoint resolved (file mode)`);
    this.signal = cfg.signal;
    this.target = `${cfg.protocol}:${cfg.endpoint}`;
    const grpc = cfg.protocol === 'grpc';
    // Only gRPC channels are replaced: the HTTP agent opens new connections when the old ones failed.
    this.channel = new RenewingChannel<Transport>(() => (grpc ? grpcTransport(cfg, grpcMethod) : httpTransport(cfg)), (t) => t.close(), grpc);
  }

  /** Channels replaced after failure runs (gRPC). */
  get reconnects(): number {
    return this.channel.renewals;
  }

  async export(batch: T[]): Promise<ExportOutcome> {
    if (batch.length === 0) return { code: 'success' };
    let parts: Iterator<Buffer>;
    try {
      parts = this.encode(batch)[Symbol.iterator]();
    } catch (e) {
      return { code: 'failure', error: e as Error };
    }
    // Up to PARTS_IN_FLIGHT parts at once, the next one encoded while the earlier ones are
    // compressed and sent. The first that fails decides for the batch (the queue retries the
    // whole batch: receivers must tolerate the duplicates of parts already sent).
    const sent: Array<Promise<ExportOutcome>> = [];
    let rejected = 0;
    let error: Error | undefined;
    let failed: ExportOutcome | undefined;
    const settle = (r: ExportOutcome) => {
      if (r.code !== 'success') failed ??= r;
      else if (r.error) {
        rejected += r.rejected ?? 0;
        error = r.error;
      }
    };
    for (;;) {
      let next: IteratorResult<Buffer>;
      try {
        next = parts.next();
      } catch (e) {
        failed = { code: 'failure', error: e as Error };
        break;
      }
      if (next.done) break;
      const body = next.value;
      const p = this.channel.call((t) => t.send(body));
      this.inFlight.add(p);
      void p.finally(() => this.inFlight.delete(p));
      sent.push(p);
      if (sent.length >= PARTS_IN_FLIGHT) {
        settle(await (sent.shift() as Promise<ExportOutcome>));
        if (failed) break;
      }
    }
    for (const r of await Promise.all(sent)) settle(r);
    if (failed) return failed;
    return rejected || error ? { code: 'success', rejected: Math.min(rejected, batch.length), error } : { code: 'success' };
  }

  async forceFlush(): Promise<void> {
    await Promise.all([...this.inFlight]);
  }

  async shutdown(): Promise<void> {
    await this.forceFlush();
    this.channel.current.close();
  }
}
