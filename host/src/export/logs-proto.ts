// ExportLogsServiceRequest as protobuf, written straight from the SDK's ReadableLogRecords into
// one buffer. otlp-transformer 0.215 also writes logs directly, but in two passes (a size estimate,
// then the write) and through grouping maps for every batch; this is one pass on the shared writer,
// and a batch of one resource and scope is not regrouped. Decodes to what its
// ProtobufLogsSerializer produces (test/export/traces-logs-proto.test.ts).
//
// Field numbers: opentelemetry-proto v1.x, opentelemetry/proto/logs/v1/logs.proto and
// collector/logs/v1/logs_service.proto:
//   ExportLogsServiceRequest  resource_logs=1
//   ResourceLogs  resource=1 scope_logs=2 schema_url=3
//   ScopeLogs     scope=1 log_records=2 schema_url=3
//   LogRecord     time_unix_nano=1(fixed64) severity_number=2 severity_text=3 body=5 attributes=6
//                 dropped_attributes_count=7 flags=8(fixed32) trace_id=9 span_id=10
//                 observed_time_unix_nano=11(fixed64) event_name=12
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { anyValue, attributes, time, uint, writeResourceGroups, type SdkScope } from './common-proto';
import { Writer, writeFixed32, writeHexBytes, writeString } from './proto-writer';

export const LOGS_GRPC_METHOD = '/opentelemetry.proto.collector.logs.v1.LogsService/Export';

/** otlp-transformer groups log records by scope object, not by the scope's fields. */
const logScopeKey = (s: SdkScope): SdkScope => s;

/** One LogRecord message (field 2 of ScopeLogs). */
function logRecord(w: Writer, r: ReadableLogRecord): void {
  w.begin(2);
  time(w, 1, r.hrTime);
  uint(w, 2, r.severityNumber);
  writeString(w, 3, r.severityText);
  if (r.body !== undefined) {
    w.begin(5);
    anyValue(w, r.body);
    w.end();
  }
  attributes(w, 6, r.attributes);
  uint(w, 7, r.droppedAttributesCount);
  const ctx = r.spanContext;
  if (ctx) {
    writeFixed32(w, 8, ctx.traceFlags);
    writeHexBytes(w, 9, ctx.traceId);
    writeHexBytes(w, 10, ctx.spanId);
  }
  time(w, 11, r.hrTimeObserved);
  writeString(w, 12, r.eventName);
  w.end();
}

/** One ExportLogsServiceRequest holding the batch. */
export function encodeLogsRequest(batch: ReadableLogRecord[]): Buffer {
  const w = new Writer(Math.max(4096, batch.length * 256));
  writeResourceGroups(w, batch, logScopeKey, logRecord);
  return w.finish();
}
