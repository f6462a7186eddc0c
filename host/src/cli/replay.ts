// `telegen replay FILE`: the same decoders and span building over a capture; no root needed.
import * as fs from 'fs';
import { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { JsonTraceSerializer } from '@opentelemetry/otlp-transformer';
import { Args, UsageError } from './main';
import { replayFile, ReplayConn } from '../replay';
import type { ReplayStats } from '../replay/types';
import { DecoderRegistry, defaultDecodersDir } from '../decoders/registry';
import { Router, Conn } from '../ingest/router';
import { SelfMetrics } from '../metrics/self';
import { recordToSpan, identityClock } from '../pipeline/spans';
import { redactStage } from '../pipeline/stages';
import { pipelineSchema } from '../pipeline/config';
import { ConnMeta } from '../model';

function userError(msg: string): Error { const e = new Error(msg); (e as { userFacing?: boolean }).userFacing = true; return e; }

export function spanToJsonLine(s: ReadableSpan): string {
  const ns = (t: [number, number]) => (BigInt(t[0]) * 1_000_000_000n + BigInt(t[1])).toString();
  return JSON.stringify({
    name: s.name,
    kind: SpanKind[s.kind],
    startTimeUnixNano: ns(s.startTime),
    endTimeUnixNano: ns(s.endTime),
    status: SpanStatusCode[s.status.code],
    ...(s.status.message ? { statusMessage: s.status.message } : {}),
    traceId: s.spanContext().traceId,
    spanId: s.spanContext().spanId,
    ...(s.parentSpanContext ? { parentSpanId: s.parentSpanContext.spanId } : {}),
    attributes: s.attributes,
  });
}

export interface ReplayResult { spans: ReadableSpan[]; metrics: SelfMetrics; stats: unknown }

/** Replays a capture through the decoders; `onSpan` sees every span in capture order. */
export async function replayToSpans(file: string, opts: { decodersDir?: string; onSpan?: (s: ReadableSpan) => void; redact?: boolean } = {}): Promise<ReplayResult> {
  const metrics = new SelfMetrics();
  const spans: ReadableSpan[] = [];
  const pcfg = pipelineSchema.parse({});
  const emit = opts.redact === false ? (s: ReadableSpan) => { spans.push(s); opts.onSpan?.(s); } : redactStage(pcfg.redaction, (s) => { spans.push(s); opts.onSpan?.(s); });
  let router!: Router;
  const registry = new DecoderRegistry({
    onRecord: (rec, inst) => router.onRecord(rec, inst.meta.name),
    onBadRecord: (err, inst) => metrics.inc('telegen_decoder_bad_records_total', 'Malformed records a decoder emitted', { decoder: inst.meta.name }),
  });
  registry.loadDir(opts.decodersDir ?? defaultDecodersDir());
  if (registry.decoders.size === 0) throw userError(`no decoders found in ${opts.decodersDir ?? defaultDecodersDir()} (run npm run build)`);
  router = new Router(registry, (rec, conn, decoder) => {
    const span = recordToSpan(rec, conn.meta, decoder, { clock: identityClock });
    if (span) emit(span);
  }, metrics, { detectThreshold: 50 });

  const conns = new Map<number, Conn>();
  let last = 0n;
  const stats = await replayFile(file, {
    onOpen(c: ReplayConn) {
      const meta: ConnMeta = {
        role: 'client', observer: 'capture', transport: c.transport, roleGuessed: !c.roleKnown,
        localAddr: c.client.addr, localPort: c.client.port, remoteAddr: c.server.addr, remotePort: c.server.port,
      };
      conns.set(c.id, router.open(meta));
    },
    onData(c, fromClient, bytes, ts) {
      const conn = conns.get(c.id);
      if (!conn) return;
      // A capture that starts mid-connection may have guessed the roles wrong: the decoder's
      // detect() on the first bytes has the last word.
      router.data(conn, fromClient, bytes, ts);
      if (ts - last > 1_000_000_000n) { last = ts; router.tick(ts); }
    },
    onGap(c, fromClient, lost) {
      const conn = conns.get(c.id);
      if (conn) router.gap(conn, fromClient, lost);
    },
    onClose(c, ts) {
      const conn = conns.get(c.id);
      // As the live agent does (ingest/kernel.ts): an exchange still unanswered at the close
      // waited until it, so its span ends there and not at its own request (0 s).
      if (conn) { conn.meta.closedTs = ts; router.close(conn); conns.delete(c.id); }
    },
  });
  for (const conn of conns.values()) router.close(conn);
  return { spans, metrics, stats };
}

export async function replayCommand(args: Args): Promise<number> {
  const file = args._[0];
  // No file or a second one is a wrong command line (a stray argument): usage and exit 2.
  if (!file) throw new UsageError('needs a capture file: telegen replay FILE.pcap', 'replay');
  if (args._.length > 1) throw new UsageError(`takes one capture file, not ${args._.length} (${args._.join(' ')}): run it once per file`, 'replay');
  const format = (args.flags.format as string) ?? 'jsonl';
  if (format !== 'jsonl' && format !== 'otlp') throw userError(`--format must be jsonl or otlp, not "${format}"`);
  if (!fs.existsSync(file)) throw userError(`capture ${file} does not exist`);
  if (fs.statSync(file).isDirectory()) throw userError(`capture ${file} is a directory: give one .pcap or .pcapng file`);
  // `telegen replay FILE | head` closes the pipe early: that is the reader being done, not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => { if (e.code === 'EPIPE') process.exit(0); throw e; });
  let res: ReplayResult;
  try {
    res = await replayToSpans(file, {
      decodersDir: typeof args.flags.decoders === 'string' ? args.flags.decoders : undefined,
      onSpan: format === 'jsonl' ? (s) => { process.stdout.write(spanToJsonLine(s) + '\n'); } : undefined,
    });
  } catch (e) {
    // The readers name the file in what they throw (not a capture, truncated header, gzip, …):
    // that is about the input, one sentence; anything else stays a bug with its stack logged.
    const err = e as Error;
    if (typeof err?.message === 'string' && err.message.startsWith(`${file}: `)) throw userError(err.message);
    throw e;
  }
  if (format === 'otlp') {
    // An empty capture is still one (empty) request, so a consumer parsing stdout always gets JSON.
    const bytes = res.spans.length ? JsonTraceSerializer.serializeRequest(res.spans) : undefined;
    process.stdout.write((bytes ? Buffer.from(bytes).toString('utf8') : '{"resourceSpans":[]}') + '\n');
  }
  process.stderr.write(`telegen replay: ${res.spans.length} spans from ${file}${describeStats(res.stats as ReplayStats)}\n`);
  return 0;
}

/** What the capture held, so "0 spans" says whether there was traffic at all. */
export function describeStats(st: ReplayStats | undefined): string {
  if (!st || typeof st.packets !== 'number') return '';
  const skipped = Object.entries(st.skipped ?? {}).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`);
  return ` (${st.format}: ${st.packets} packets, ${st.tcpConns} TCP and ${st.udpConns} UDP flows, ${st.payloadBytes} payload bytes${st.gaps ? `, ${st.gaps} gaps` : ''}${skipped.length ? `; skipped: ${skipped.join(', ')}` : ''})`;
}
