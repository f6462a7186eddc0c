// ExportTraceServiceRequest as protobuf, written straight from the SDK's ReadableSpans into one
// buffer: no intermediate request objects (otlp-transformer builds one per span, event, link and
// attribute, plus a {low, high} pair per timestamp, before protobufjs walks them again).
// Decodes to what otlp-transformer's ProtobufTraceSerializer produces, zero-valued fields aside
// (proto3 leaves them out; the official serializer writes a few explicitly):
// test/export/traces-logs-proto.test.ts decodes both with the official definitions and compares.
//
// Field numbers: opentelemetry-proto v1.x, opentelemetry/proto/trace/v1/trace.proto and
// collector/trace/v1/trace_service.proto:
//   ExportTraceServiceRequest  resource_spans=1
//   ResourceSpans  resource=1 scope_spans=2 schema_url=3
//   ScopeSpans     scope=1 spans=2 schema_url=3
//   Span           trace_id=1 span_id=2 trace_state=3 parent_span_id=4 name=5 kind=6
//                  start_time_unix_nano=7(fixed64) end_time_unix_nano=8(fixed64) attributes=9
//                  dropped_attributes_count=10 events=11 dropped_events_count=12 links=13
//                  dropped_links_count=14 status=15 flags=16(fixed32)
//   Span.Event     time_unix_nano=1(fixed64) name=2 attributes=3 dropped_attributes_count=4
//   Span.Link      trace_id=1 span_id=2 trace_state=3 attributes=4 dropped_attributes_count=5 flags=6(fixed32)
//   Status         message=2 code=3
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace-base';
import type { Link } from '@opentelemetry/api';
import { attributes, time, uint, writeResourceGroups, type SdkScope } from './common-proto';
import { VARINT, Writer, writeFixed32, writeHexBytes, writeString } from './proto-writer';

export const TRACES_GRPC_METHOD = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

// Span.flags: the W3C trace flags in the low byte, then whether the parent was remote (OTLP 1.4).
const HAS_IS_REMOTE = 0x100;
const IS_REMOTE = 0x200;
const spanFlags = (traceFlags: number, isRemote: boolean | undefined): number => (traceFlags & 0xff) | HAS_IS_REMOTE | (isRemote ? IS_REMOTE : 0);

/** otlp-transformer's scope grouping key for spans (name, version and schema URL). */
const spanScopeKey = (s: SdkScope): string => `${s.name}@${s.version || ''}:${s.schemaUrl || ''}`;

function event(w: Writer, e: TimedEvent): void {
  w.begin(11);
  time(w, 1, e.time);
  writeString(w, 2, e.name);
  attributes(w, 3, e.attributes);
  uint(w, 4, e.droppedAttributesCount);
  w.end();
}

function link(w: Writer, l: Link): void {
  w.begin(13);
  writeHexBytes(w, 1, l.context.traceId);
  writeHexBytes(w, 2, l.context.spanId);
  writeString(w, 3, l.context.traceState?.serialize());
  attributes(w, 4, l.attributes);
  uint(w, 5, l.droppedAttributesCount);
  writeFixed32(w, 6, spanFlags(l.context.traceFlags, l.context.isRemote));
  w.end();
}

/** One Span message (field 2 of ScopeSpans). */
function span(w: Writer, s: ReadableSpan): void {
  const ctx = s.spanContext();
  const parent = s.parentSpanContext;
  w.begin(2);
  writeHexBytes(w, 1, ctx.traceId);
  writeHexBytes(w, 2, ctx.spanId);
  writeString(w, 3, ctx.traceState?.serialize());
  if (parent?.spanId) writeHexBytes(w, 4, parent.spanId);
  writeString(w, 5, s.name);
  // The API's SpanKind has no UNSPECIFIED: OTLP's enum is the API's plus one.
  uint(w, 6, s.kind == null ? 0 : s.kind + 1);
  time(w, 7, s.startTime);
  time(w, 8, s.endTime);
  attributes(w, 9, s.attributes);
  uint(w, 10, s.droppedAttributesCount);
  for (const e of s.events) event(w, e);
  uint(w, 12, s.droppedEventsCount);
  for (const l of s.links) link(w, l);
  uint(w, 14, s.droppedLinksCount);
  // Always present, as the official serializer writes it: a receiver sees status {} for UNSET.
  w.begin(15);
  writeString(w, 2, s.status.message);
  if (s.status.code) {
    w.tag(3, VARINT);
    w.uvarint(s.status.code);
  }
  w.end();
  writeFixed32(w, 16, spanFlags(ctx.traceFlags, parent?.isRemote));
  w.end();
}

/** One ExportTraceServiceRequest holding the batch. */
export function encodeTracesRequest(batch: ReadableSpan[]): Buffer {
  const w = new Writer(Math.max(4096, batch.length * 512));
  writeResourceGroups(w, batch, spanScopeKey, span);
  return w.finish();
}
