// Span stages between the decoders and the exporter. Each is `xxxStage(cfg, out)` returning its
// input; disabled, it returns `out` itself (passes through).
import { SpanStatusCode } from '@opentelemetry/api';
import { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { PipelineConfig } from './config';
import { makeRedactor } from './redact';
import { SelfMetrics } from '../metrics/self';

export type SpanIn = (span: ReadableSpan) => void;

export function filterStage(cfg: PipelineConfig['filter'], metrics: SelfMetrics, out: SpanIn): SpanIn {
  const exclude = new Set(cfg.exclude_processes);
  const pids = new Set(cfg.include_pids);
  const ports = new Set(cfg.exclude_ports);
  const protocols = new Set(cfg.protocols.map((p) => p.toLowerCase()));
  if (!exclude.size && !pids.size && !ports.size && !protocols.size) return out;
  return (span) => {
    const a = span.attributes;
    const drop = (exclude.size && exclude.has(String(a['process.executable.name'])))
      || (pids.size && !pids.has(Number(a['process.pid'])))
      || (ports.size && ports.has(Number(a['server.port'])))
      || (protocols.size && !protocols.has(String(a['rpc.system'] ?? a['db.system.name'] ?? a['messaging.system'] ?? a['network.protocol.name'] ?? '').toLowerCase()));
    if (drop) { metrics.inc('telegen_spans_filtered_total', 'Spans dropped by the filter stage'); return; }
    out(span);
  };
}

/** The sampling decision alone (analytics asks it too: exemplars must point at kept spans). */
export function sampledIn(cfg: PipelineConfig['sampling']): (span: ReadableSpan) => boolean {
  if (cfg.ratio >= 1) return () => true;
  const threshold = Math.floor(cfg.ratio * 0xffffffff);
  const slowNs = cfg.slow_ms * 1e6;
  return (span) => {
    if (cfg.keep_errors && span.status.code === SpanStatusCode.ERROR) return true;
    if (slowNs > 0 && span.duration[0] * 1e9 + span.duration[1] >= slowNs) return true;
    return parseInt(span.spanContext().traceId.slice(-8), 16) <= threshold;
  };
}

/** Head sampling by trace id (consistent across agents), with a tail rule for errors and slow spans. */
export function sampleStage(cfg: PipelineConfig['sampling'], metrics: SelfMetrics, out: SpanIn): SpanIn {
  if (cfg.ratio >= 1) return out;
  const keep = sampledIn(cfg);
  return (span) => {
    if (keep(span)) return out(span);
    metrics.inc('telegen_spans_sampled_out_total', 'Spans dropped by head sampling');
  };
}

export function redactStage(cfg: PipelineConfig['redaction'], out: SpanIn): SpanIn {
  const redact = makeRedactor(cfg);
  return (span) => { redact(span.attributes as Record<string, never>); out(span); };
}

export function countStage(metrics: SelfMetrics, out: SpanIn): SpanIn {
  const help = 'Spans produced by decoders';
  const server = metrics.counter('telegen_spans_total', help, { kind: 'server' });
  const client = metrics.counter('telegen_spans_total', help, { kind: 'client' });
  return (span) => {
    if (span.kind === 1) server();
    else if (span.kind === 2) client();
    else metrics.inc('telegen_spans_total', help, { kind: String(span.kind) });
    out(span);
  };
}
