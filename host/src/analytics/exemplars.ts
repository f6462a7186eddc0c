// Exemplars of the RED histograms (OTLP Exemplar: a measurement of one span, with its trace and
// span id). One slot per bucket of a series; a new span in a bucket replaces the slot's, except
// that an error span is kept over later successes until the next collection, so an interval with
// failures shows one of them. Slow spans need no rule of their own: they fall into the high
// buckets, which have their own slots. Recording is a few field writes on an existing slot.
import type { Attributes, HrTime } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { MetricExemplar } from '../export/metrics-proto';

/**
 * Span attributes an exemplar carries as filtered_attributes when the point does not: where the
 * request came from and went, the concrete path behind a templated route, the process. Values
 * are read at collection time, after the pipeline's redaction.
 */
export const EXEMPLAR_ATTRIBUTES = ['url.path', 'client.address', 'server.address', 'server.port', 'network.peer.address', 'process.pid'];

interface Slot {
  traceId: string;
  spanId: string;
  time: HrTime;
  value: number;
  error: boolean;
  attributes: Attributes;
  /** Collection this slot was filled in. */
  epoch: number;
}

export class BucketExemplars {
  private readonly slots: Array<Slot | undefined>;
  private epoch = 0;

  constructor(buckets: number) {
    this.slots = new Array<Slot | undefined>(buckets).fill(undefined);
  }

  offer(bucket: number, span: ReadableSpan, value: number, error: boolean): void {
    const cur = this.slots[bucket];
    const c = span.spanContext();
    if (!cur) {
      this.slots[bucket] = { traceId: c.traceId, spanId: c.spanId, time: span.endTime, value, error, attributes: span.attributes, epoch: this.epoch };
      return;
    }
    if (cur.error && !error && cur.epoch === this.epoch) return;
    cur.traceId = c.traceId;
    cur.spanId = c.spanId;
    cur.time = span.endTime;
    cur.value = value;
    cur.error = error;
    cur.attributes = span.attributes;
    cur.epoch = this.epoch;
  }

  /** The exemplars, lowest bucket first; starts a new collection epoch. */
  collect(pointAttributes: Attributes): MetricExemplar[] {
    this.epoch++;
    const out: MetricExemplar[] = [];
    for (const s of this.slots) {
      if (!s) continue;
      let filtered: Attributes | undefined;
      for (const k of EXEMPLAR_ATTRIBUTES) {
        const v = s.attributes[k];
        if (v === undefined || pointAttributes[k] !== undefined) continue;
        (filtered ??= {})[k] = v;
      }
      out.push({ time: s.time, value: s.value, traceId: s.traceId, spanId: s.spanId, ...(filtered ? { filteredAttributes: filtered } : {}) });
    }
    return out;
  }

  /** Trace id per bucket label ("0.005" … "+Inf"), for GET /api/topology. */
  traceIds(bounds: number[]): Record<string, string> {
    const out: Record<string, string> = {};
    this.slots.forEach((s, i) => { if (s) out[i < bounds.length ? String(bounds[i]) : '+Inf'] = s.traceId; });
    return out;
  }
}
