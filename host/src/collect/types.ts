// What a poll returns: points, each becoming one data point of an OTLP metric.
export interface Point {
  /** OTLP metric name. */
  name: string;
  /** sum = cumulative monotonic (ObservableCounter); gauge = last value (ObservableGauge). */
  kind: 'sum' | 'gauge';
  unit?: string;
  description?: string;
  attributes: Record<string, string | number>;
  value: number;
}

export interface PollContext { timeoutMs: number; userAgent: string }
