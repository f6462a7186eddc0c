// Our own OTLP transport, for every signal (we encode all four requests ourselves): grpc-js'
// generic client with raw-bytes (de)serializers, or a keep-alive node:http(s) POST of
// application/x-protobuf. Retry semantics as the OTLP spec gives them: retryable gRPC codes
// (RetryInfo honoured), HTTP 429/502/503/504 and network errors with Retry-After; one attempt per
// call, the BatchQueue retries. gzip runs on libuv's thread pool (grpc-js' compression filter and
// zlib.gzip here), not on the event loop. A gRPC channel failing for GRPC_RECONNECT_AFTER_MS is
// replaced (RenewingChannel). An answer with partial_success reports the receiver's rejected count.
import * as http from 'node:http';
import * as https from 'node:https';
import * as zlib from 'node:zlib';
import type { Client, Metadata } from '@grpc/grpc-js';
import type { ResolvedSignalExport, Signal } from './config';
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

/** One request for the batch, or halves of it (recursively) while one is over `max` bytes. */
export function encodeInParts<T>(batch: T[], max: number, encode: (batch: T[]) => Buffer): Buffer[] {
  const body = encode(batch);
  if (body.length <= max || batch.length === 1) return [body];
  const mid = batch.length >> 1;
  return [...encodeInParts(batch.slice(0, mid), max, encode), ...encodeInParts(batch.slice(mid), max, encode)];
}

const gzip = (b: Buffer): Promise<Buffer> => new Promise((res, rej) => zlib.gzip(b, (e, out) => (e ? rej(e) : res(out))));

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
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const grpc = require('@grpc/grpc-js') as typeof import('@grpc/grpc-js');
  const url = new URL(cfg.endpoint as string);
  const creds = cfg.tls.insecure
    ? grpc.credentials.createInsecure()
    : grpc.credentials.createSsl(readPem(cfg.tls.caFile, 'CA file') ?? null, readPem(cfg.tls.keyFile, 'client key') ?? null, readPem(cfg.tls.certFile, 'client certificate') ?? null);
  const client: Client = new grpc.Client(url.host, creds, {
    'grpc.primary_user_agent': 'telegen',
    // grpc-js backs reconnects off up to 120 s: after a long collector outage the channel would
    // sit idle for minutes while the queue waits (bench/results/export-outage.json).
    'grpc.max_reconnect_backoff_ms': 5000,
    ...(cfg.compression === 'gzip' ? { 'grpc.default_compression_algorithm': 2 /* gzip */ } : {}),
  });
  return {
    send(body) {
      const md: Metadata = new grpc.Metadata();
      for (const [k, v] of Object.entries(cfg.headers)) md.set(k, v);
      return new Promise((resolve) => {
        client.makeUnaryRequest<Buffer, Buffer>(
          method,
          (x) => x,
          (b) => b,
          body,
          md,
          { deadline: Date.now() + cfg.timeoutMs },
          (err, res) => resolve(err ? classifyExportError(err, 'grpc') : accepted(res)),
        );
      });
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
        body = cfg.compression === 'gzip' ? await gzip(raw) : raw;
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
    /** The batch as request bodies, each within MAX_REQUEST_BYTES where an item allows. */
    private readonly encode: (batch: T[]) => Buffer[],
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
    let bodies: Buffer[];
    try {
      bodies = this.encode(batch);
    } catch (e) {
      return { code: 'failure', error: e as Error };
    }
    // Parts go one after the other; the first that fails decides for the batch (the queue
    // retries the whole batch: receivers must tolerate the duplicates of parts already sent).
    let rejected = 0;
    let error: Error | undefined;
    for (const body of bodies) {
      const p = this.channel.call((t) => t.send(body));
      this.inFlight.add(p);
      try {
        const r = await p;
        if (r.code !== 'success') return r;
        if (r.error) {
          rejected += r.rejected ?? 0;
          error = r.error;
        }
      } finally {
        this.inFlight.delete(p);
      }
    }
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
