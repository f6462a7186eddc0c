// OTLP traces exporter over gRPC or HTTP/protobuf: our encoder (traces-proto.ts) on our transport
// (otlp-transport.ts). The official exporter stays reachable as the bench's A/B baseline.
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { ResolvedSignalExport } from './config';
import { createOfficialTraceExporter, exportBaseline } from './otlp-exporters';
import { encodeInParts, MAX_REQUEST_BYTES, OtlpRawExporter } from './otlp-transport';
import { encodeTracesRequest, TRACES_GRPC_METHOD } from './traces-proto';
import type { SignalExporter } from './types';

export function createOtlpTraceExporter(cfg: ResolvedSignalExport): SignalExporter<ReadableSpan> & { readonly reconnects: number } {
  if (exportBaseline.officialSpanLogExporters) return createOfficialTraceExporter(cfg);
  // A batch of spans passes 3.5 MiB only with very large attributes: halving re-encodes then.
  return new OtlpRawExporter<ReadableSpan>(cfg, TRACES_GRPC_METHOD, (batch) => encodeInParts(batch, MAX_REQUEST_BYTES, encodeTracesRequest));
}
