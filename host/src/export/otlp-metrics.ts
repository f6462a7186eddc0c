// OTLP metrics exporter over gRPC or HTTP/protobuf: our encoder (metrics-proto.ts: the official
// serializer drops exemplars) on our transport (otlp-transport.ts). A batch of ResourceMetrics
// goes as one ExportMetricsServiceRequest (in parts past 3.5 MiB, each item encoded once), not one
// request per item.
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { ResolvedSignalExport } from './config';
import { encodeMetricsRequests, METRICS_GRPC_METHOD } from './metrics-proto';
import { MAX_REQUEST_BYTES, OtlpRawExporter } from './otlp-transport';

export function createOtlpMetricExporter(cfg: ResolvedSignalExport): OtlpRawExporter<ResourceMetrics> {
  return new OtlpRawExporter<ResourceMetrics>(cfg, METRICS_GRPC_METHOD, (batch) => encodeMetricsRequests(batch, MAX_REQUEST_BYTES));
}
