// OTLP metrics exporter over gRPC or HTTP/protobuf: our encoder (metrics-proto.ts: the official
// serializer drops exemplars) on our transport (otlp-transport.ts). A batch of ResourceMetrics
// goes as ExportMetricsServiceRequests of about METRICS_PART_BYTES each (each item encoded once),
// not one request per item; a part is sent while the next is encoded.
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { ResolvedSignalExport } from './config';
import { encodeMetricsParts, METRICS_GRPC_METHOD } from './metrics-proto';
import { MAX_REQUEST_BYTES, OtlpRawExporter } from './otlp-transport';

/**
 * Parts are cut past this size: ~9000 data points of the RED metrics, small enough that encoding,
 * gzip and the receiver overlap within one batch, large enough that a request's fixed cost stays
 * under 1% of it.
 */
export const METRICS_PART_BYTES = 1024 * 1024;

export function createOtlpMetricExporter(cfg: ResolvedSignalExport): OtlpRawExporter<ResourceMetrics> {
  return new OtlpRawExporter<ResourceMetrics>(cfg, METRICS_GRPC_METHOD, (batch) => encodeMetricsParts(batch, METRICS_PART_BYTES, MAX_REQUEST_BYTES));
}
