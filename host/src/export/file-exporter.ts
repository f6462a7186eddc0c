// Embedded default exporter: one OTLP/JSON export request per line in DATA_DIR/<signal>.jsonl,
// the format the OpenTelemetry Collector's file exporter writes (and its otlpjsonfile receiver
// reads), so the files can be replayed into any Collector later.
//
// Writes are serialized (one in flight) so lines never interleave. A write error (ENOSPC, EIO,
// EACCES…) is a counted 'failure' result, never a throw: the file is truncated back to the last
// whole line and reopened on the next export.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as Transformer from '@opentelemetry/otlp-transformer';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { Signal } from './config';
import type { ExportOutcome, SignalExporter } from './types';
import { metricsRequestJson } from './metrics-proto';

export interface FileExporterOptions<T> {
  signal: Signal;
  dir: string;
  /** Rotate before a write would make the file larger than this. */
  maxBytes: number;
  /** Rotated files kept: <signal>.jsonl.1 (newest) … .N; 0 keeps none. */
  keep: number;
  /** Turns a batch into whole OTLP/JSON request lines, UTF-8, without trailing newline. */
  serialize: (batch: T[]) => Uint8Array[];
  /** File name; default `<signal>.jsonl`. */
  fileName?: string;
}

export interface FileExporterCounters {
  lines_written: number;
  bytes_written: number;
  rotations: number;
  write_errors: number;
}


const NEWLINE = new Uint8Array([0x0a]);

export class FileExporter<T> implements SignalExporter<T> {
  readonly signal: Signal;
  readonly target: string;
  readonly file: string;
  private fh: fs.promises.FileHandle | undefined;
  private size = 0;
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;
  private readonly stats: FileExporterCounters = { lines_written: 0, bytes_written: 0, rotations: 0, write_errors: 0 };
  /** Last error code per kind, for the periodic log line. */
  lastError: string | undefined;

  constructor(private readonly opts: FileExporterOptions<T>) {
    this.signal = opts.signal;
    this.file = path.join(opts.dir, opts.fileName ?? `${opts.signal}.jsonl`);
    this.target = `file:${this.file}`;
  }

  export(batch: T[]): Promise<ExportOutcome> {
    if (this.closed) return Promise.resolve({ code: 'failure', error: new Error('file exporter is shut down') });
    if (batch.length === 0) return Promise.resolve({ code: 'success' });
    let lines: Uint8Array[];
    try {
      lines = this.opts.serialize(batch);
    } catch (e) {
      return Promise.resolve({ code: 'failure', error: e as Error });
    }
    const p = this.tail.then(() => this.write(lines));
    this.tail = p.catch(() => undefined);
    return p;
  }

  private async open(): Promise<fs.promises.FileHandle> {
    if (this.fh) return this.fh;
    await fs.promises.mkdir(path.dirname(this.file), { recursive: true });
    const fh = await fs.promises.open(this.file, 'a');
    try {
      this.size = (await fh.stat()).size;
    } catch (e) {
      await fh.close().catch(() => undefined);
      throw e;
    }
    this.fh = fh;
    return fh;
  }

  private async rotate(): Promise<void> {
    if (this.fh) {
      await this.fh.close().catch(() => undefined);
      this.fh = undefined;
    }
    const { keep } = this.opts;
    if (keep === 0) {
      await fs.promises.rm(this.file, { force: true });
    } else {
      await fs.promises.rm(`${this.file}.${keep}`, { force: true });
      for (let i = keep - 1; i >= 1; i--) {
        await fs.promises.rename(`${this.file}.${i}`, `${this.file}.${i + 1}`).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== 'ENOENT') throw e;
        });
      }
      await fs.promises.rename(this.file, `${this.file}.1`);
    }
    this.stats.rotations++;
  }

  private async write(lines: Uint8Array[]): Promise<ExportOutcome> {
    // The serializers already produce UTF-8; join without decoding (that round trip cost as much
    // as serializing).
    const parts: Uint8Array[] = [];
    for (const l of lines) parts.push(l, NEWLINE);
    const data = Buffer.concat(parts);
    let before = -1;
    try {
      let fh = await this.open();
      // A single request larger than max_bytes still gets written (to a fresh file): splitting an
      // OTLP request would change its meaning, dropping it would lose data for a config choice.
      if (this.size > 0 && this.size + data.length > this.opts.maxBytes) {
        await this.rotate();
        fh = await this.open();
      }
      before = this.size;
      let off = 0;
      while (off < data.length) {
        const { bytesWritten } = await fh.write(data, off, data.length - off);
        off += bytesWritten;
        this.size += bytesWritten;
      }
      this.stats.lines_written += lines.length;
      this.stats.bytes_written += data.length;
      return { code: 'success' };
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      this.stats.write_errors++;
      this.lastError = err.code ?? err.message;
      // Leave only whole lines behind: cut a partial write, then reopen next time.
      if (this.fh) {
        if (before >= 0 && this.size > before) await this.fh.truncate(before).catch(() => undefined);
        await this.fh.close().catch(() => undefined);
        this.fh = undefined;
      }
      return { code: 'failure', error: err };
    }
  }

  counters(): FileExporterCounters {
    return { ...this.stats };
  }

  async forceFlush(): Promise<void> {
    await this.tail;
    // Collector-style files are read by other processes; make what we wrote durable on flush.
    if (this.fh) await this.fh.sync().catch(() => undefined);
  }

  async shutdown(): Promise<void> {
    await this.forceFlush();
    this.closed = true;
    if (this.fh) {
      await this.fh.close().catch(() => undefined);
      this.fh = undefined;
    }
  }
}

// The JSON serializers are loaded per signal on first use, from their own modules: the package
// index also loads the generated protobuf code (~9 MB of RSS) that file mode never needs. The
// versions are pinned; if the layout ever moves, fall back to the index.
/* eslint-disable @typescript-eslint/no-require-imports */
function loadSerializer<K extends 'JsonTraceSerializer' | 'JsonMetricsSerializer' | 'JsonLogsSerializer'>(name: K, sub: string): (typeof Transformer)[K] {
  try {
    return (require(`@opentelemetry/otlp-transformer/build/src/${sub}/json`) as typeof Transformer)[name];
  } catch {
    return (require('@opentelemetry/otlp-transformer') as typeof Transformer)[name];
  }
}
/* eslint-enable @typescript-eslint/no-require-imports */
let traceJson: typeof Transformer.JsonTraceSerializer | undefined;
let logsJson: typeof Transformer.JsonLogsSerializer | undefined;

/** One ExportTraceServiceRequest (all spans of the batch) per line, via the official JSON serializer. */
export function serializeTracesJson(batch: ReadableSpan[]): Uint8Array[] {
  traceJson ??= loadSerializer('JsonTraceSerializer', 'trace');
  const bytes = traceJson.serializeRequest(batch);
  return bytes ? [bytes] : [];
}

/** One ExportMetricsServiceRequest per ResourceMetrics (the SDK's unit of collection), with the
 *  data points' exemplars (metrics-proto.ts; the official serializer drops them). */
export function serializeMetricsJson(batch: ResourceMetrics[]): Uint8Array[] {
  return batch.map((rm) => Buffer.from(JSON.stringify(metricsRequestJson(rm)), 'utf8'));
}

export function serializeLogsJson(batch: ReadableLogRecord[]): Uint8Array[] {
  logsJson ??= loadSerializer('JsonLogsSerializer', 'logs');
  const bytes = logsJson.serializeRequest(batch);
  return bytes ? [bytes] : [];
}

export interface FileRotation {
  maxBytes: number;
  keep: number;
}

export const createFileTraceExporter = (dir: string, r: FileRotation) =>
  new FileExporter<ReadableSpan>({ signal: 'traces', dir, ...r, serialize: serializeTracesJson });
export const createFileMetricExporter = (dir: string, r: FileRotation) =>
  new FileExporter<ResourceMetrics>({ signal: 'metrics', dir, ...r, serialize: serializeMetricsJson });
export const createFileLogExporter = (dir: string, r: FileRotation) =>
  new FileExporter<ReadableLogRecord>({ signal: 'logs', dir, ...r, serialize: serializeLogsJson });
/** Profiles: items are already-built OTLP/JSON ExportProfilesServiceRequest objects (development protocol). */
export const createFileProfileExporter = (dir: string, r: FileRotation) =>
  new FileExporter<object>({ signal: 'profiles', dir, ...r, serialize: (b) => b.map((x) => Buffer.from(JSON.stringify(x))) });

/** Named after the brief / opentelemetry-js conventions. */
export type FileTraceExporter = FileExporter<ReadableSpan>;
