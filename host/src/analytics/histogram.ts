// Explicit-bucket histograms analytics aggregates itself (RED, service graph, returned rows) and
// hands to the metric reader at collection time (signals.addProducer): a record is a bucket
// search and four field writes, where an sdk-metrics `record()` hashed the attribute set (sort +
// JSON) on every call. Points have the shape sdk-metrics gives its own histograms.
import type { HrTime } from '@opentelemetry/api';

export interface Hist { count: number; sum: number; min: number; max: number; counts: number[] }

export function newHist(bounds: readonly number[]): Hist {
  return { count: 0, sum: 0, min: Infinity, max: -Infinity, counts: new Array<number>(bounds.length + 1).fill(0) };
}

/** The bucket a value falls in: buckets are (bounds[i-1], bounds[i]], the last one (max, +Inf). */
export function bucketOf(bounds: readonly number[], v: number): number {
  for (let i = 0; i < bounds.length; i++) if (v <= bounds[i]) return i;
  return bounds.length;
}

export function histAdd(h: Hist, bucket: number, v: number): void {
  h.count++;
  h.sum += v;
  if (v < h.min) h.min = v;
  if (v > h.max) h.max = v;
  h.counts[bucket]++;
}

/** A cumulative histogram data point (sdk-metrics' shape; counts copied: the series goes on). */
export function histPoint(h: Hist, bounds: number[], attributes: object, startTime: HrTime, endTime: HrTime): object {
  return {
    attributes, startTime, endTime,
    value: { min: h.count ? h.min : undefined, max: h.count ? h.max : undefined, sum: h.sum, buckets: { boundaries: bounds, counts: h.counts.slice() }, count: h.count },
  };
}
