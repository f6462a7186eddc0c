// MetricData for series a component aggregates itself and hands to the reader through
// signals.addProducer: the shape sdk-metrics gives its own instruments' points (cumulative),
// so the exporters and encoders treat both alike.
import { ValueType } from '@opentelemetry/api';
import { AggregationTemporality, DataPointType, InstrumentType, MetricData } from '@opentelemetry/sdk-metrics';

export interface InstrumentInfo {
  name: string; unit: string; description: string;
  kind: 'counter' | 'updown' | 'histogram' | 'observable-counter' | 'observable-gauge';
  bounds?: number[];
}

const TYPE: Record<InstrumentInfo['kind'], InstrumentType> = {
  counter: InstrumentType.COUNTER, updown: InstrumentType.UP_DOWN_COUNTER, histogram: InstrumentType.HISTOGRAM,
  'observable-counter': InstrumentType.OBSERVABLE_COUNTER, 'observable-gauge': InstrumentType.OBSERVABLE_GAUGE,
};

/** Cumulative MetricData of one instrument; `dataPoints` as sdk-metrics builds them (a number,
 *  or for a histogram { min, max, sum, buckets: { boundaries, counts }, count }). */
export function cumulativeMetric(inst: InstrumentInfo, dataPoints: unknown[]): MetricData {
  const descriptor = {
    name: inst.name, description: inst.description, unit: inst.unit, valueType: ValueType.DOUBLE, type: TYPE[inst.kind],
    advice: inst.bounds ? { explicitBucketBoundaries: inst.bounds } : {},
  };
  if (inst.kind === 'observable-gauge') return { descriptor, aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.GAUGE, dataPoints } as MetricData;
  if (inst.kind === 'histogram') return { descriptor, aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.HISTOGRAM, dataPoints } as MetricData;
  return { descriptor, aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.SUM, dataPoints, isMonotonic: inst.kind !== 'updown' } as MetricData;
}
