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
import { JsonWriter, writeTracesRequestJson } from './traces-json';

export interface FileExporterOptions<T> {
  signal: Signal;
  dir: string;
  /** Rotate before a write would make the file larger than this. */
  maxBytes: number;
  /** Rotated files kept: <signal>.jsonl.1 (newest) … .N; 0 keeps none. */
  keep: number;
  /** Turns a batch into whole OTLP/JSON request lines (text, or UTF-8 bytes), without trailing newline. */
  serialize: (batch: T[]) => Line[];
  /** File name; default `<signal>.jsonl`. */
  fileName?: string;
  /** Instead of `serialize`: writes the batch as whole lines, each newline-terminated, straight
   *  into the exporter's reused write buffer when its turn to be written comes; returns the
   *  number of lines. No text or request objects in between. */
  writeLines?: (w: JsonWriter, batch: T[]) => number;
}

/** Text (whole, or in pieces written one after another) is encoded straight into the exporter's
 *  reused write buffer; bytes are copied there. */
export type Line = string | string[] | Uint8Array;

export interface FileExporterCounters {
  lines_written: number;
  bytes_written: number;
  rotations: number;
  write_errors: number;
}


/** A write buffer grown past this is let go after the write (one huge batch must not pin it). */
const KEEP_SCRATCH_BYTES = 16 << 20;

export class FileExporter<T> implements SignalExporter<T> {
  readonly signal: Signal;
  readonly target: string;
  readonly file: string;
  private fh: fs.promises.FileHandle | undefined;
  private size = 0;
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** Reused for every write: a fresh multi-megabyte buffer per batch (TextEncoder's, then
   *  Buffer.concat's) cost more in page faults and zeroing than encoding the text itself. Safe to
   *  reuse because writes are serialized. */
  private scratch = Buffer.allocUnsafeSlow(0);
  /** The same for `writeLines` exporters. */
  private lineWriter = new JsonWriter(0);
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
    if (this.opts.writeLines) {
      const q = this.tail.then(() => this.writeBatch(batch));
      this.tail = q.catch(() => undefined);
      return q;
    }
    let lines: Line[];
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

  /** The lines, newline-terminated, in the write buffer (valid until the next write). */
  private encode(lines: Line[]): Buffer {
    let n = 0;
    for (const l of lines) {
      if (typeof l === 'string') n += Buffer.byteLength(l, 'utf8');
      else if (Array.isArray(l)) for (const p of l) n += Buffer.byteLength(p, 'utf8');
      else n += l.length;
      n++;
    }
    if (this.scratch.length < n) this.scratch = Buffer.allocUnsafeSlow(Math.max(n, Math.min(2 * this.scratch.length, KEEP_SCRATCH_BYTES)));
    const b = this.scratch;
    let off = 0;
    for (const l of lines) {
      if (typeof l === 'string') off += b.write(l, off, 'utf8');
      else if (Array.isArray(l)) for (const p of l) off += b.write(p, off, 'utf8');
      else { b.set(l, off); off += l.length; }
      b[off++] = 0x0a;
    }
    return b.subarray(0, off);
  }

  private async write(lines: Line[]): Promise<ExportOutcome> {
    const data = this.encode(lines);
    try {
      return await this.writeData(data, lines.length);
    } finally {
      if (this.scratch.length > KEEP_SCRATCH_BYTES) this.scratch = Buffer.allocUnsafeSlow(0);
    }
  }

  private async writeBatch(batch: T[]): Promise<ExportOutcome> {
    const w = this.lineWriter;
    w.pos = 0;
    let lineCount: number;
    try {
      lineCount = this.opts.writeLines!(w, batch);
    } catch (e) {
      return { code: 'failure', error: e as Error };
    }
    try {
      return await this.writeData(w.buf.subarray(0, w.pos), lineCount);
    } finally {
      if (w.buf.length > KEEP_SCRATCH_BYTES) this.lineWriter = new JsonWriter(0);
    }
  }

  private async writeData(data: Buffer, lineCount: number): Promise<ExportOutcome> {
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
      this.stats.lines_written += lineCount;
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
type TraceRequestText = (batch: ReadableSpan[]) => Line | undefined;
/** The official serializer's request object and JSON text, without its TextEncoder step: the
 *  writer encodes the text into its reused buffer. Its bytes if the package layout moved. */
function loadTraceText(): TraceRequestText {
  try {
    const internal = require('@opentelemetry/otlp-transformer/build/src/trace/internal') as { createExportTraceServiceRequest(b: ReadableSpan[], enc: unknown): unknown };
    const utils = require('@opentelemetry/otlp-transformer/build/src/common/utils') as { JSON_ENCODER: unknown };
    if (typeof internal.createExportTraceServiceRequest === 'function' && utils.JSON_ENCODER) {
      // Request → resourceSpans[] → {…} → scopeSpans[] → {…} → spans[] → each span one piece.
      return (batch) => jsonPieces(internal.createExportTraceServiceRequest(batch, utils.JSON_ENCODER), 6, []);
    }
  } catch { /* fall back below */ }
  const json = loadSerializer('JsonTraceSerializer', 'trace');
  return (batch) => json.serializeRequest(batch);
}
/* eslint-enable @typescript-eslint/no-require-imports */

/** What JSON.stringify leaves out of an object (and writes as null in an array). */
const omitted = (v: unknown) => v === undefined || typeof v === 'function' || typeof v === 'symbol';

/**
 * JSON.stringify(v) as pieces, the same text: containers down to `depth` are written here, what
 * lies deeper by JSON.stringify, one piece each (plain objects and arrays; anything with toJSON
 * is left to JSON.stringify whole). One JSON.stringify of a whole request returned a multi-MB
 * rope that the UTF-8 encoder had to flatten first, which cost more than building the request.
 */
export function jsonPieces(v: unknown, depth: number, out: string[]): string[] {
  if (depth === 0 || v === null || typeof v !== 'object' || typeof (v as { toJSON?: unknown }).toJSON === 'function') {
    out.push(JSON.stringify(v));
  } else if (Array.isArray(v)) {
    out.push('[');
    for (let i = 0; i < v.length; i++) {
      if (i) out.push(',');
      if (omitted(v[i])) out.push('null'); else jsonPieces(v[i], depth - 1, out);
    }
    out.push(']');
  } else {
    let sep = '{';
    for (const k of Object.keys(v)) {
      const e = (v as Record<string, unknown>)[k];
      if (omitted(e)) continue;
      out.push(`${sep}${JSON.stringify(k)}:`);
      sep = ',';
      jsonPieces(e, depth - 1, out);
    }
    out.push(sep === '{' ? '{}' : '}');
  }
  return out;
}

let traceText: TraceRequestText | undefined;
let logsJson: typeof Transformer.JsonLogsSerializer | undefined;

/** One ExportTraceServiceRequest (all spans of the batch) per line, the bytes the official JSON
 *  serializer writes, written from the spans themselves (traces-json.ts). */
export function writeTracesJsonLines(w: JsonWriter, batch: ReadableSpan[]): number {
  writeTracesRequestJson(w, batch);
  w.byte(0x0a);
  return 1;
}

/** The official JSON serializer's text (what writeTracesJsonLines matches; tests and benches
 *  compare against it). */
export function serializeTracesJson(batch: ReadableSpan[]): Line[] {
  traceText ??= loadTraceText();
  const line = traceText(batch);
  return line ? [line] : [];
}

/** One ExportMetricsServiceRequest per ResourceMetrics (the SDK's unit of collection), with the
 *  data points' exemplars (metrics-proto.ts; the official serializer drops them). */
export function serializeMetricsJson(batch: ResourceMetrics[]): Line[] {
  return batch.map((rm) => JSON.stringify(metricsRequestJson(rm)));
}

export function serializeLogsJson(batch: ReadableLogRecord[]): Line[] {
  logsJson ??= loadSerializer('JsonLogsSerializer', 'logs');
  const bytes = logsJson.serializeRequest(batch);
  return bytes ? [bytes] : [];
}

export interface FileRotation {
  maxBytes: number;
  keep: number;
}

export const createFileTraceExporter = (dir: string, r: FileRotation) =>
  new FileExporter<ReadableSpan>({ signal: 'traces', dir, ...r, serialize: serializeTracesJson, writeLines: writeTracesJsonLines });
export const createFileMetricExporter = (dir: string, r: FileRotation) =>
  new FileExporter<ResourceMetrics>({ signal: 'metrics', dir, ...r, serialize: serializeMetricsJson });
export const createFileLogExporter = (dir: string, r: FileRotation) =>
  new FileExporter<ReadableLogRecord>({ signal: 'logs', dir, ...r, serialize: serializeLogsJson });
/** Profiles: items are already-built OTLP/JSON ExportProfilesServiceRequest objects (development protocol). */
export const createFileProfileExporter = (dir: string, r: FileRotation) =>
  new FileExporter<object>({ signal: 'profiles', dir, ...r, serialize: (b) => b.map((x) => JSON.stringify(x)) });

/** Named after the brief / opentelemetry-js conventions. */
export type FileTraceExporter = FileExporter<ReadableSpan>;
