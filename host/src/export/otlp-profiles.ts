// OTLP profiles exporter (development signal) over gRPC or HTTP/protobuf, on our transport
// (otlp-transport.ts: no opentelemetry-js exporter exists for profiles).
//
// A batch's requests are encoded as one (their dictionaries merged while encoding, indices
// remapped: profiles-proto.ts), so batch_size profiles cost one round trip; a batch over 3.5 MiB
// goes in parts.
import type { ResolvedSignalExport } from './config';
import { encodeInParts, MAX_REQUEST_BYTES, OtlpRawExporter } from './otlp-transport';
import { encodeProfilesRequests, PROFILES_GRPC_METHOD } from './profiles-proto';

export class OtlpProfileExporter extends OtlpRawExporter<object> {
  constructor(cfg: ResolvedSignalExport) {
    super(cfg, PROFILES_GRPC_METHOD, (batch) => encodeInParts(batch, MAX_REQUEST_BYTES, encodeProfilesRequests));
  }
}

export function createOtlpProfileExporter(cfg: ResolvedSignalExport): OtlpProfileExporter {
  return new OtlpProfileExporter(cfg);
}
