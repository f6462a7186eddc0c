// OTLP metrics export requests from the SDK's ResourceMetrics, as protobuf and as OTLP/JSON, with
// exemplars on the data points that carry them.
//
// Ours rather than @opentelemetry/otlp-transformer's serializers: those (0.215) build each data
// point without its `exemplars` field, so no exemplar could ever reach the wire, and sdk-metrics
// 2.x does not attach any either. The RED histograms' exemplars come from analytics (attached at
// collection time by QueueMetricExporter, `dp.exemplars`); everything else (TCP, DNS, self-metrics)
// encodes exactly as the transformer did: test/export/metrics-proto.test.ts decodes both with the
// official protobuf definitions and compares.
//
// Field numbers: opentelemetry-proto v1.x, opentelemetry/proto/metrics/v1/metrics.proto and
// collector/metrics/v1/metrics_service.proto (the generated code otlp-transformer ships):
//   ExportMetricsServiceRequest  resource_metrics=1
//   ResourceMetrics      resource=1 scope_metrics=2 schema_url=3
//   Resource             attributes=1
//   ScopeMetrics         scope=1 metrics=2 schema_url=3
//   InstrumentationScope name=1 version=2
//   Metric               name=1 description=2 unit=3 gauge=5 sum=7 histogram=9 exponential_histogram=10
//   Gauge                data_points=1
//   Sum                  data_points=1 aggregation_temporality=2 is_monotonic=3
//   Histogram, ExponentialHistogram   data_points=1 aggregation_temporality=2
//   NumberDataPoint      start_time_unix_nano=2(fixed64) time_unix_nano=3(fixed64) as_double=4
//                        exemplars=5 as_int=6(sfixed64) attributes=7
//   HistogramDataPoint   start=2 time=3 count=4(fixed64) sum=5 bucket_counts=6(packed fixed64)
//                        explicit_bounds=7(packed double) exemplars=8 attributes=9 min=11 max=12
//   ExponentialHistogramDataPoint  attributes=1 start=2 time=3 count=4 sum=5 scale=6(sint32)
//                        zero_count=7(fixed64) positive=8 negative=9 exemplars=11 min=12 max=13
//   Buckets              offset=1(sint32) bucket_counts=2(packed uint64)
//   Exemplar             time_unix_nano=2(fixed64) as_double=3 span_id=4 trace_id=5 filtered_attributes=7
//   KeyValue, AnyValue   common-proto.ts
import type { Attributes, AttributeValue, HrTime } from '@opentelemetry/api';
import type { MetricData, ResourceMetrics, ScopeMetrics } from '@opentelemetry/sdk-metrics';
import { attributes, time } from './common-proto';
import { I64, VARINT, Writer, writeDouble, writeHexBytes, writeInt64Body, writeString } from './proto-writer';

export const METRICS_GRPC_METHOD = '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export';

/** One exemplar of a data point: a measurement of a sampled span that fell into it. */
export interface MetricExemplar {
  /** When the measurement was taken (the span's end). */
  time: HrTime;
  /** In the instrument's unit. */
  value: number;
  /** Lowercase hex, 32 and 16 digits. */
  traceId: string;
  spanId: string;
  /** Span attributes the point's attributes do not carry (OTLP filtered_attributes). */
  filteredAttributes?: Attributes;
}

/** A data point as the SDK hands it over, plus what QueueMetricExporter may attach. */
interface Point {
  attributes: Attributes;
  startTime: HrTime;
  endTime: HrTime;
  value: unknown;
  exemplars?: MetricExemplar[];
}

// sdk-metrics enums (numbers, so this file loads without the SDK).
const HISTOGRAM = 0;
const EXPONENTIAL_HISTOGRAM = 1;
const GAUGE = 2;
const SUM = 3;
const VALUE_INT = 0;
/** sdk AggregationTemporality (DELTA=0, CUMULATIVE=1) → OTLP enum (DELTA=1, CUMULATIVE=2). */
const temporality = (t: number): number => t + 1;

// ---- protobuf ------------------------------------------------------------------------------------

function optionalDouble(w: Writer, field: number, v: number | undefined): void {
  if (v !== undefined && v !== null) writeDouble(w, field, v);
}

function exemplars(w: Writer, field: number, list: MetricExemplar[] | undefined): void {
  if (!list) return;
  for (const e of list) {
    w.begin(field);
    time(w, 2, e.time);
    writeDouble(w, 3, e.value);
    writeHexBytes(w, 4, e.spanId);
    writeHexBytes(w, 5, e.traceId);
    attributes(w, 7, e.filteredAttributes);
    w.end();
  }
}

function numberPoint(w: Writer, p: Point, valueType: number): void {
  time(w, 2, p.startTime);
  time(w, 3, p.endTime);
  // A oneof member: written even when zero, or the receiver would see no value at all.
  if (valueType === VALUE_INT) {
    w.tag(6, I64);
    writeInt64Body(w, p.value as number);
  } else writeDouble(w, 4, p.value as number);
  exemplars(w, 5, p.exemplars);
  attributes(w, 7, p.attributes);
}

interface HistogramValue { buckets: { boundaries: number[]; counts: number[] }; count: number; sum?: number; min?: number; max?: number }

function histogramPoint(w: Writer, p: Point): void {
  const v = p.value as HistogramValue;
  time(w, 2, p.startTime);
  time(w, 3, p.endTime);
  w.tag(4, I64);
  writeInt64Body(w, v.count);
  optionalDouble(w, 5, v.sum);
  const counts = v.buckets.counts;
  if (counts.length) {
    w.tag(6, 2);
    w.uvarint(counts.length * 8);
    for (const c of counts) writeInt64Body(w, c);
  }
  const bounds = v.buckets.boundaries;
  if (bounds.length) {
    w.tag(7, 2);
    w.uvarint(bounds.length * 8);
    w.ensure(bounds.length * 8);
    for (const b of bounds) {
      w.buf.writeDoubleLE(b, w.pos);
      w.pos += 8;
    }
  }
  exemplars(w, 8, p.exemplars);
  attributes(w, 9, p.attributes);
  optionalDouble(w, 11, v.min);
  optionalDouble(w, 12, v.max);
}

interface ExpBuckets { offset: number; bucketCounts: number[] }
interface ExpHistogramValue { count: number; sum?: number; min?: number; max?: number; scale: number; zeroCount: number; positive: ExpBuckets; negative: ExpBuckets }

const zigzag = (n: number): number => (n >= 0 ? n * 2 : -n * 2 - 1);

function expBuckets(w: Writer, field: number, b: ExpBuckets): void {
  w.begin(field);
  if (b.offset) {
    w.tag(1, VARINT);
    w.uvarint(zigzag(b.offset));
  }
  if (b.bucketCounts.length) {
    w.begin(2);
    for (const c of b.bucketCounts) w.uvarint(c);
    w.end();
  }
  w.end();
}

function expHistogramPoint(w: Writer, p: Point): void {
  const v = p.value as ExpHistogramValue;
  attributes(w, 1, p.attributes);
  time(w, 2, p.startTime);
  time(w, 3, p.endTime);
  w.tag(4, I64);
  writeInt64Body(w, v.count);
  optionalDouble(w, 5, v.sum);
  if (v.scale) {
    w.tag(6, VARINT);
    w.uvarint(zigzag(v.scale));
  }
  if (v.zeroCount) {
    w.tag(7, I64);
    writeInt64Body(w, v.zeroCount);
  }
  expBuckets(w, 8, v.positive);
  expBuckets(w, 9, v.negative);
  exemplars(w, 11, p.exemplars);
  optionalDouble(w, 12, v.min);
  optionalDouble(w, 13, v.max);
}

function metric(w: Writer, m: MetricData): void {
  const d = m.descriptor;
  writeString(w, 1, d.name);
  writeString(w, 2, d.description);
  writeString(w, 3, d.unit);
  const points = m.dataPoints as Point[];
  switch (m.dataPointType as number) {
    case SUM:
    case GAUGE: {
      const sum = (m.dataPointType as number) === SUM;
      w.begin(sum ? 7 : 5);
      for (const p of points) {
        w.begin(1);
        numberPoint(w, p, d.valueType);
        w.end();
      }
      if (sum) {
        w.tag(2, VARINT);
        w.uvarint(temporality(m.aggregationTemporality));
        if ((m as { isMonotonic?: boolean }).isMonotonic) {
          w.tag(3, VARINT);
          w.uvarint(1);
        }
      }
      w.end();
      return;
    }
    case HISTOGRAM:
    case EXPONENTIAL_HISTOGRAM: {
      const exp = (m.dataPointType as number) === EXPONENTIAL_HISTOGRAM;
      w.begin(exp ? 10 : 9);
      for (const p of points) {
        w.begin(1);
        if (exp) expHistogramPoint(w, p);
        else histogramPoint(w, p);
        w.end();
      }
      w.tag(2, VARINT);
      w.uvarint(temporality(m.aggregationTemporality));
      w.end();
    }
  }
}

function scopeMetrics(w: Writer, sm: ScopeMetrics): void {
  w.begin(1);
  writeString(w, 1, sm.scope.name);
  writeString(w, 2, sm.scope.version);
  w.end();
  for (const m of sm.metrics) {
    w.begin(2);
    metric(w, m);
    w.end();
  }
  writeString(w, 3, sm.scope.schemaUrl);
}

/** One ExportMetricsServiceRequest holding every ResourceMetrics of the batch. */
export function encodeMetricsRequest(batch: ResourceMetrics[]): Buffer {
  const w = new Writer();
  for (const rm of batch) resourceMetrics(w, rm);
  return w.finish();
}

/**
 * The batch as requests of at most `max` bytes (one item over it goes alone). A request is only
 * its repeated resource_metrics field, so items are encoded once, one after the other, and a part
 * is cut before the item that overflows it: no re-encoding to split a batch that came out large.
 */
export function encodeMetricsRequests(batch: ResourceMetrics[], max: number): Buffer[] {
  return [...encodeMetricsParts(batch, max, max)];
}

/**
 * The same parts, made one at a time, and cut once they reach `target` bytes: the exporter sends
 * a part while the next one is encoded (a 1000-collection batch was one 11 MiB encode, then
 * four 3.5 MiB requests one after the other). Each part's buffer is sized for `target`, so it
 * does not grow (growing copied ~7 MiB per 3.5 MiB part).
 */
export function* encodeMetricsParts(batch: ResourceMetrics[], target: number, max: number): Generator<Buffer> {
  const size = Math.min(max, target) + (Math.min(max, target) >> 2);
  let w = new Writer(size);
  for (const rm of batch) {
    const before = w.pos;
    resourceMetrics(w, rm);
    if (before > 0 && w.pos > max) {
      const last = w.buf.subarray(before, w.pos);
      yield w.buf.subarray(0, before);
      w = new Writer(Math.max(size, last.length));
      w.raw(last);
    }
    if (w.pos >= target) {
      yield w.finish();
      w = new Writer(size);
    }
  }
  if (w.pos) yield w.finish();
}

/** resource_metrics (field 1) of a request: one ResourceMetrics. */
function resourceMetrics(w: Writer, rm: ResourceMetrics): void {
  w.begin(1);
  w.begin(1);
  attributes(w, 1, rm.resource.attributes);
  w.end();
  for (const sm of rm.scopeMetrics) {
    w.begin(2);
    scopeMetrics(w, sm);
    w.end();
  }
  writeString(w, 3, rm.resource.schemaUrl);
  w.end();
}

// ---- OTLP/JSON -------------------------------------------------------------------------------------
// The shape otlp-transformer's JsonMetricsSerializer writes (same keys, same order), plus exemplars:
// int64 times as decimal strings, ids as hex, bytes as base64.

type Json = Record<string, unknown>;

/** Decimal nanoseconds of an HrTime, exact without BigInt (seconds, then nine nanosecond digits). */
export function hrTimeString(t: HrTime): string {
  const s = Math.trunc(t[0]);
  const n = Math.trunc(t[1]);
  return s === 0 ? String(n) : `${s}${String(n).padStart(9, '0')}`;
}

function jsonAnyValue(v: unknown): Json {
  switch (typeof v) {
    case 'string':
      return { stringValue: v };
    case 'number':
      return Number.isInteger(v) ? { intValue: v } : { doubleValue: v };
    case 'boolean':
      return { boolValue: v };
  }
  if (v instanceof Uint8Array) return { bytesValue: Buffer.from(v).toString('base64') };
  if (Array.isArray(v)) return { arrayValue: { values: v.map(jsonAnyValue) } };
  if (v !== null && typeof v === 'object') return { kvlistValue: { values: jsonAttributes(v as Attributes) } };
  return {};
}

function jsonAttributes(attrs: Attributes | undefined): Json[] {
  if (!attrs) return [];
  return Object.keys(attrs).map((key) => ({ key, value: jsonAnyValue(attrs[key] as AttributeValue) }));
}

function jsonExemplars(list: MetricExemplar[]): Json[] {
  return list.map((e) => ({
    filteredAttributes: jsonAttributes(e.filteredAttributes),
    timeUnixNano: hrTimeString(e.time),
    asDouble: e.value,
    spanId: e.spanId,
    traceId: e.traceId,
  }));
}

function jsonPoint(p: Point, type: number, valueType: number): Json {
  let out: Json;
  if (type === HISTOGRAM) {
    const v = p.value as HistogramValue;
    out = {
      attributes: jsonAttributes(p.attributes), bucketCounts: v.buckets.counts, explicitBounds: v.buckets.boundaries,
      count: v.count, sum: v.sum, min: v.min, max: v.max,
      startTimeUnixNano: hrTimeString(p.startTime), timeUnixNano: hrTimeString(p.endTime),
    };
  } else if (type === EXPONENTIAL_HISTOGRAM) {
    const v = p.value as ExpHistogramValue;
    out = {
      attributes: jsonAttributes(p.attributes), count: v.count, min: v.min, max: v.max, sum: v.sum,
      positive: { offset: v.positive.offset, bucketCounts: v.positive.bucketCounts },
      negative: { offset: v.negative.offset, bucketCounts: v.negative.bucketCounts },
      scale: v.scale, zeroCount: v.zeroCount,
      startTimeUnixNano: hrTimeString(p.startTime), timeUnixNano: hrTimeString(p.endTime),
    };
  } else {
    out = { attributes: jsonAttributes(p.attributes), startTimeUnixNano: hrTimeString(p.startTime), timeUnixNano: hrTimeString(p.endTime) };
    if (valueType === VALUE_INT) out.asInt = p.value;
    else out.asDouble = p.value;
  }
  if (p.exemplars?.length) out.exemplars = jsonExemplars(p.exemplars);
  return out;
}

function jsonMetric(m: MetricData): Json {
  const d = m.descriptor;
  const out: Json = { name: d.name, description: d.description, unit: d.unit };
  const type = m.dataPointType as number;
  const dataPoints = (m.dataPoints as Point[]).map((p) => jsonPoint(p, type, d.valueType));
  const aggregationTemporality = temporality(m.aggregationTemporality);
  if (type === SUM) out.sum = { aggregationTemporality, isMonotonic: (m as { isMonotonic?: boolean }).isMonotonic, dataPoints };
  else if (type === GAUGE) out.gauge = { dataPoints };
  else if (type === HISTOGRAM) out.histogram = { aggregationTemporality, dataPoints };
  else if (type === EXPONENTIAL_HISTOGRAM) out.exponentialHistogram = { aggregationTemporality, dataPoints };
  return out;
}

/** The OTLP/JSON ExportMetricsServiceRequest object of one ResourceMetrics. */
export function metricsRequestJson(rm: ResourceMetrics): Json {
  const schemaUrl = rm.resource.schemaUrl || undefined;
  const resource: Json = { attributes: jsonAttributes(rm.resource.attributes), droppedAttributesCount: 0 };
  if (schemaUrl) resource.schemaUrl = schemaUrl;
  return {
    resourceMetrics: [{
      resource,
      schemaUrl,
      scopeMetrics: rm.scopeMetrics.map((sm) => ({ scope: { name: sm.scope.name, version: sm.scope.version }, metrics: sm.metrics.map(jsonMetric), schemaUrl: sm.scope.schemaUrl })),
    }],
  };
}
