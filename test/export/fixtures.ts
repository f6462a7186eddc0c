// Hand-built telemetry items for the export tests: ReadableSpans, ReadableLogRecords and
// ResourceMetrics with exact, known content.
import { SpanKind, SpanStatusCode, ValueType, type HrTime } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { AggregationTemporality, DataPointType, type ResourceMetrics } from '@opentelemetry/sdk-metrics';

export const RESOURCE_ATTRS = { 'service.name': 'checkout', 'host.name': 'node-1', 'telegen.test': true };
export const resource = resourceFromAttributes(RESOURCE_ATTRS);
export const scope = { name: 'telegen', version: '0.1.0' };

export const hex = (n: number, bytes: number) => n.toString(16).padStart(bytes * 2, '0');

/** Span i: trace id …i, span id …i, server span GET /items/i, status from `status`. */
export function makeSpan(i: number, extra: Partial<{ status: number; attrs: Record<string, string | number | boolean | string[]>; parent: string }> = {}): ReadableSpan {
  const start: HrTime = [1_700_000_000 + i, 123_456_789];
  const end: HrTime = [1_700_000_000 + i, 223_456_789];
  const traceId = hex(0xabc00000 + i, 16);
  const spanId = hex(0x5500 + i, 8);
  const code = extra.status ?? 200;
  return {
    name: `GET /items/${i}`,
    kind: SpanKind.SERVER,
    spanContext: () => ({ traceId, spanId, traceFlags: 1 }),
    parentSpanContext: extra.parent ? { traceId, spanId: extra.parent, traceFlags: 1 } : undefined,
    startTime: start,
    endTime: end,
    status: code >= 500 ? { code: SpanStatusCode.ERROR, message: `HTTP ${code}` } : { code: SpanStatusCode.UNSET },
    attributes: {
      'http.request.method': 'GET',
      'url.path': `/items/${i}`,
      'http.response.status_code': code,
      'server.port': 8080,
      'network.protocol.version': '1.1',
      ...(extra.attrs ?? {}),
    },
    links: [],
    events: [{ name: 'response.first_byte', time: [1_700_000_000 + i, 200_000_000], attributes: { 'bytes': 42 } }],
    duration: [0, 100_000_000],
    ended: true,
    resource,
    instrumentationScope: scope,
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
}

/** The span fields the receiver's flat view must show for makeSpan(i). */
export function expectedFlatSpan(i: number, status = 200) {
  return {
    traceId: hex(0xabc00000 + i, 16),
    spanId: hex(0x5500 + i, 8),
    parentSpanId: undefined,
    name: `GET /items/${i}`,
    kind: 2, // OTLP SPAN_KIND_SERVER
    startTimeUnixNano: String(BigInt(1_700_000_000 + i) * 1_000_000_000n + 123_456_789n),
    endTimeUnixNano: String(BigInt(1_700_000_000 + i) * 1_000_000_000n + 223_456_789n),
    status: status >= 500 ? { code: 2, message: `HTTP ${status}` } : { code: 0, message: undefined },
    attributes: {
      'http.request.method': 'GET',
      'url.path': `/items/${i}`,
      'http.response.status_code': status,
      'server.port': 8080,
      'network.protocol.version': '1.1',
    },
    events: [{ name: 'response.first_byte', timeUnixNano: String(BigInt(1_700_000_000 + i) * 1_000_000_000n + 200_000_000n), attributes: { bytes: 42 } }],
    links: [],
    resource: RESOURCE_ATTRS,
    scope,
    flags: 257, // sampled | HAS_IS_REMOTE(0x100), as opentelemetry-js writes it
  };
}

export function makeLog(i: number): ReadableLogRecord {
  return {
    hrTime: [1_700_000_100 + i, 5],
    hrTimeObserved: [1_700_000_100 + i, 6],
    severityNumber: 17,
    severityText: 'ERROR',
    body: `connection reset ${i}`,
    eventName: 'telegen.agent.event',
    resource,
    instrumentationScope: scope,
    attributes: { 'process.pid': 1000 + i, 'process.executable.name': 'nginx' },
    droppedAttributesCount: 0,
    spanContext: { traceId: hex(0xabc00000 + i, 16), spanId: hex(0x5500 + i, 8), traceFlags: 1 },
  };
}

export function makeMetrics(value: number): ResourceMetrics {
  return {
    resource,
    scopeMetrics: [
      {
        scope,
        metrics: [
          {
            descriptor: { name: 'http.server.request.count', description: 'requests seen', unit: '{request}', valueType: ValueType.INT },
            dataPointType: DataPointType.SUM,
            isMonotonic: true,
            aggregationTemporality: AggregationTemporality.CUMULATIVE,
            dataPoints: [{ startTime: [1_700_000_000, 0], endTime: [1_700_000_060, 0], attributes: { 'http.request.method': 'GET' }, value }],
          },
        ],
      },
    ],
  };
}
