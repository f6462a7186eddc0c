// OTLP logs exporter over gRPC or HTTP/protobuf: our encoder (logs-proto.ts) on our transport
// (otlp-transport.ts). The official exporter stays reachable as the bench's A/B baseline.
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { ResolvedSignalExport } from './config';
import { encodeLogsRequest, LOGS_GRPC_METHOD } from './logs-proto';
import { createOfficialLogExporter, exportBaseline } from './otlp-exporters';
import { encodeInParts, MAX_REQUEST_BYTES, OtlpRawExporter } from './otlp-transport';
import type { SignalExporter } from './types';

export function createOtlpLogExporter(cfg: ResolvedSignalExport): SignalExporter<ReadableLogRecord> & { readonly reconnects: number } {
  if (exportBaseline.officialSpanLogExporters) return createOfficialLogExporter(cfg);
  return new OtlpRawExporter<ReadableLogRecord>(cfg, LOGS_GRPC_METHOD, (batch) => encodeInParts(batch, MAX_REQUEST_BYTES, encodeLogsRequest));
}
