// Cardinality limit of one instrument's series (OpenTelemetry metrics SDK spec, "Cardinality
// limits"): at most `limit` distinct attribute sets; past it every new set is aggregated into one
// overflow series whose only attribute is `otel.metric.overflow=true`, so a bad route, a scan of
// peers or a storm of short-lived processes costs one series, not one each.
//
// The agent keeps its own series (analytics' RED histograms, the TCP tracer's aggregates) instead
// of relying on sdk-metrics' limit: in @opentelemetry/sdk-metrics 2.x that limit is applied to the
// attribute sets recorded *within one collection interval* (DeltaMetricProcessor's active storage,
// emptied at every collect), while cumulative temporality merges each interval into the reader's
// history (TemporalMetricProcessor) with no limit at all — 1,999 new sets per interval, forever.
import { Attributes } from '@opentelemetry/api';

export const OVERFLOW_ATTRIBUTES: Readonly<Attributes> = Object.freeze({ 'otel.metric.overflow': true });
/** The overflow series' key: no attribute-set key can be equal to it (keys never start with NUL). */
export const OVERFLOW_KEY = '\u0000otel.metric.overflow';

export class SeriesLimit<S, A = void> {
  /** key → series, the overflow series (OVERFLOW_KEY) among them once it exists. */
  readonly series = new Map<string, S>();
  /** Measurements that went to the overflow series because the limit was reached. */
  overflowed = 0;

  /** `make(key, overflow, arg)` builds a series the first time its key is seen (`arg`: what
   *  the caller knows about the attribute set, so no closure is made per measurement). */
  constructor(public limit: number, private readonly make: (key: string, overflow: boolean, arg: A) => S) {}

  /** Series that are not the overflow one. */
  get size(): number { return this.series.size - (this.series.has(OVERFLOW_KEY) ? 1 : 0); }

  /** The series of `key`, created while there is room, else the overflow series. */
  get(key: string, arg: A): S {
    const s = this.series.get(key);
    if (s !== undefined) return s;
    if (this.size < this.limit) {
      const made = this.make(key, false, arg);
      this.series.set(key, made);
      return made;
    }
    this.overflowed++;
    let o = this.series.get(OVERFLOW_KEY);
    if (o === undefined) { o = this.make(OVERFLOW_KEY, true, arg); this.series.set(OVERFLOW_KEY, o); }
    return o;
  }

  /** Forgets a series (its room goes to the next new attribute set). */
  delete(key: string): boolean { return this.series.delete(key); }
}
