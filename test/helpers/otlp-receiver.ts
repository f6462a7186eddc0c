// A real OTLP receiver for tests: gRPC (grpc-js server implementing the
// opentelemetry.proto.collector.{trace,metrics,logs}.v1 services) and HTTP/protobuf (POST
// /v1/traces|metrics|logs, gzip-aware), on 127.0.0.1 only.
//
// Decoding uses the official OpenTelemetry protobuf definitions:
// - traces and metrics: the protobufjs code @opentelemetry/otlp-transformer generates from
//   opentelemetry-proto (build/src/generated/root.js);
// - logs: otlp-transformer 0.215 no longer ships generated logs code, and no installed package
//   ships the .proto files, so the logs messages below are transcribed from opentelemetry-proto
//   v1.x (opentelemetry/proto/{common,resource,logs}/v1/*.proto, collector/logs/v1/logs_service.proto;
//   field numbers and types unchanged, comments dropped) and loaded with protobufjs;
// - profiles (development signal): opentelemetry-proto v1.8.0
//   opentelemetry/proto/profiles/v1development/profiles.proto and
//   collector/profiles/v1development/profiles_service.proto, transcribed the same way (only the
//   messages a request reaches). POST /v1development/profiles, gRPC
//   opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export.
//
// Failure modes are switchable at runtime so exporter retry, backoff and drop paths can be driven
// against a real socket: UNAVAILABLE/503, RESOURCE_EXHAUSTED/429 with a retry delay (gRPC
// google.rpc.RetryInfo in grpc-status-details-bin; HTTP Retry-After), INVALID_ARGUMENT/400, slow
// responses, and stop()/restart() on the same port.
import { after } from 'node:test';
import * as http from 'node:http';
import * as https from 'node:https';
import * as zlib from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import * as protobuf from 'protobufjs';

// ---- official decoders -------------------------------------------------------------------------

interface PbType {
  decode(buf: Uint8Array): object;
  encode(msg: object): { finish(): Uint8Array };
  toObject(msg: object, opts: object): Record<string, unknown>;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const otlpRoot = require('@opentelemetry/otlp-transformer/build/src/generated/root') as {
  opentelemetry: { proto: { collector: Record<string, { v1: Record<string, PbType> }> } };
};
const collector = otlpRoot.opentelemetry.proto.collector;

const LOGS_PROTO = `
syntax = "proto3";
package opentelemetry.proto.common.v1;
message AnyValue {
  oneof value {
    string string_value = 1;
    bool bool_value = 2;
    int64 int_value = 3;
    double double_value = 4;
    ArrayValue array_value = 5;
    KeyValueList kvlist_value = 6;
    bytes bytes_value = 7;
  }
}
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
message KeyValue { string key = 1; AnyValue value = 2; }
message InstrumentationScope {
  string name = 1;
  string version = 2;
  repeated KeyValue attributes = 3;
  uint32 dropped_attributes_count = 4;
}
`;
const RESOURCE_PROTO = `
syntax = "proto3";
package opentelemetry.proto.resource.v1;
message Resource {
  repeated opentelemetry.proto.common.v1.KeyValue attributes = 1;
  uint32 dropped_attributes_count = 2;
}
`;
const LOGS_MSG_PROTO = `
syntax = "proto3";
package opentelemetry.proto.logs.v1;
message ResourceLogs {
  reserved 1000;
  opentelemetry.proto.resource.v1.Resource resource = 1;
  repeated ScopeLogs scope_logs = 2;
  string schema_url = 3;
}
message ScopeLogs {
  opentelemetry.proto.common.v1.InstrumentationScope scope = 1;
  repeated LogRecord log_records = 2;
  string schema_url = 3;
}
message LogRecord {
  reserved 4;
  fixed64 time_unix_nano = 1;
  fixed64 observed_time_unix_nano = 11;
  int32 severity_number = 2;
  string severity_text = 3;
  opentelemetry.proto.common.v1.AnyValue body = 5;
  repeated opentelemetry.proto.common.v1.KeyValue attributes = 6;
  uint32 dropped_attributes_count = 7;
  fixed32 flags = 8;
  bytes trace_id = 9;
  bytes span_id = 10;
  string event_name = 12;
}
`;
const LOGS_SERVICE_PROTO = `
syntax = "proto3";
package opentelemetry.proto.collector.logs.v1;
message ExportLogsServiceRequest { repeated opentelemetry.proto.logs.v1.ResourceLogs resource_logs = 1; }
message ExportLogsServiceResponse { ExportLogsPartialSuccess partial_success = 1; }
message ExportLogsPartialSuccess { int64 rejected_log_records = 1; string error_message = 2; }
`;
const PROFILES_PROTO = `
syntax = "proto3";
package opentelemetry.proto.profiles.v1development;
message ProfilesDictionary {
  repeated Mapping mapping_table = 1;
  repeated Location location_table = 2;
  repeated Function function_table = 3;
  repeated Link link_table = 4;
  repeated string string_table = 5;
  repeated KeyValueAndUnit attribute_table = 6;
  repeated Stack stack_table = 7;
}
message ResourceProfiles {
  reserved 1000;
  opentelemetry.proto.resource.v1.Resource resource = 1;
  repeated ScopeProfiles scope_profiles = 2;
  string schema_url = 3;
}
message ScopeProfiles {
  opentelemetry.proto.common.v1.InstrumentationScope scope = 1;
  repeated Profile profiles = 2;
  string schema_url = 3;
}
message Profile {
  ValueType sample_type = 1;
  repeated Sample samples = 2;
  fixed64 time_unix_nano = 3;
  uint64 duration_nano = 4;
  ValueType period_type = 5;
  int64 period = 6;
  bytes profile_id = 7;
  uint32 dropped_attributes_count = 8;
  string original_payload_format = 9;
  bytes original_payload = 10;
  repeated int32 attribute_indices = 11;
}
message Link { bytes trace_id = 1; bytes span_id = 2; }
message ValueType { int32 type_strindex = 1; int32 unit_strindex = 2; }
message Sample {
  int32 stack_index = 1;
  repeated int64 values = 2;
  repeated int32 attribute_indices = 3;
  int32 link_index = 4;
  repeated fixed64 timestamps_unix_nano = 5;
}
message Mapping {
  uint64 memory_start = 1;
  uint64 memory_limit = 2;
  uint64 file_offset = 3;
  int32 filename_strindex = 4;
  repeated int32 attribute_indices = 5;
}
message Stack { repeated int32 location_indices = 1; }
message Location {
  int32 mapping_index = 1;
  uint64 address = 2;
  repeated Line lines = 3;
  repeated int32 attribute_indices = 4;
}
message Line { int32 function_index = 1; int64 line = 2; int64 column = 3; }
message Function {
  int32 name_strindex = 1;
  int32 system_name_strindex = 2;
  int32 filename_strindex = 3;
  int64 start_line = 4;
}
message KeyValueAndUnit {
  int32 key_strindex = 1;
  opentelemetry.proto.common.v1.AnyValue value = 2;
  int32 unit_strindex = 3;
}
`;
const PROFILES_SERVICE_PROTO = `
syntax = "proto3";
package opentelemetry.proto.collector.profiles.v1development;
message ExportProfilesServiceRequest {
  repeated opentelemetry.proto.profiles.v1development.ResourceProfiles resource_profiles = 1;
  opentelemetry.proto.profiles.v1development.ProfilesDictionary dictionary = 2;
}
message ExportProfilesServiceResponse { ExportProfilesPartialSuccess partial_success = 1; }
message ExportProfilesPartialSuccess { int64 rejected_profiles = 1; string error_message = 2; }
`;
// google.rpc.Status + RetryInfo (googleapis google/rpc/status.proto, error_details.proto) to tell a
// gRPC client when to retry, the way the Collector does.
const RPC_PROTO = `
syntax = "proto3";
package google.rpc;
message Any { string type_url = 1; bytes value = 2; }
message Duration { int64 seconds = 1; int32 nanos = 2; }
message Status { int32 code = 1; string message = 2; repeated Any details = 3; }
message RetryInfo { Duration retry_delay = 1; }
`;

const reflectRoot = new protobuf.Root();
for (const src of [LOGS_PROTO, RESOURCE_PROTO, LOGS_MSG_PROTO, LOGS_SERVICE_PROTO, PROFILES_PROTO, PROFILES_SERVICE_PROTO, RPC_PROTO]) protobuf.parse(src, reflectRoot, { keepCase: false });
reflectRoot.resolveAll();

export type OtlpSignal = 'traces' | 'metrics' | 'logs' | 'profiles';

const codecs: Record<OtlpSignal, { req: PbType; res: PbType; service: string }> = {
  traces: { req: collector.trace.v1.ExportTraceServiceRequest, res: collector.trace.v1.ExportTraceServiceResponse, service: 'opentelemetry.proto.collector.trace.v1.TraceService' },
  metrics: { req: collector.metrics.v1.ExportMetricsServiceRequest, res: collector.metrics.v1.ExportMetricsServiceResponse, service: 'opentelemetry.proto.collector.metrics.v1.MetricsService' },
  logs: {
    req: reflectRoot.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest') as unknown as PbType,
    res: reflectRoot.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse') as unknown as PbType,
    service: 'opentelemetry.proto.collector.logs.v1.LogsService',
  },
  profiles: {
    req: reflectRoot.lookupType('opentelemetry.proto.collector.profiles.v1development.ExportProfilesServiceRequest') as unknown as PbType,
    res: reflectRoot.lookupType('opentelemetry.proto.collector.profiles.v1development.ExportProfilesServiceResponse') as unknown as PbType,
    service: 'opentelemetry.proto.collector.profiles.v1development.ProfilesService',
  },
};

/** HTTP path per signal (profiles are a development signal with their own path). */
const HTTP_PATHS: Record<string, OtlpSignal> = { '/v1/traces': 'traces', '/v1/metrics': 'metrics', '/v1/logs': 'logs', '/v1development/profiles': 'profiles' };

/** Decodes an OTLP request body to a plain object (int64 as decimal strings, bytes as hex). */
export function decodeOtlpRequest(signal: OtlpSignal, body: Uint8Array, opts: { defaults?: boolean } = {}): Record<string, unknown> {
  const t = codecs[signal].req;
  // defaults: true fills in proto3's zero values, for comparing what two encoders meant.
  return toPlain(t.toObject(t.decode(body), { longs: String, bytes: Array, enums: Number, defaults: opts.defaults ?? false, oneofs: false })) as Record<string, unknown>;
}

/** Byte arrays → lowercase hex (trace/span ids), recursively. */
function toPlain(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(toPlain);
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
  if (v && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      if ((k === 'traceId' || k === 'spanId' || k === 'parentSpanId' || k === 'profileId') && Array.isArray(x)) o[k] = Buffer.from(x as number[]).toString('hex');
      else if (k === 'bytesValue' && Array.isArray(x)) o[k] = Buffer.from(x as number[]).toString('hex');
      else o[k] = toPlain(x);
    }
    return o;
  }
  return v;
}

type AnyValue = Record<string, unknown>;
type KeyValue = { key: string; value?: AnyValue };

/** OTLP AnyValue → plain JS (intValue → number when safe, else string). */
export function anyValueToJs(v: AnyValue | undefined): unknown {
  if (!v) return undefined;
  if ('stringValue' in v) return v.stringValue;
  if ('boolValue' in v) return v.boolValue;
  if ('intValue' in v) {
    const n = Number(v.intValue);
    return Number.isSafeInteger(n) ? n : String(v.intValue);
  }
  if ('doubleValue' in v) return v.doubleValue;
  if ('arrayValue' in v) return (((v.arrayValue as { values?: AnyValue[] }).values ?? []) as AnyValue[]).map(anyValueToJs);
  if ('kvlistValue' in v) return attrsToJs((v.kvlistValue as { values?: KeyValue[] }).values);
  if ('bytesValue' in v) return v.bytesValue;
  return undefined;
}

export function attrsToJs(kvs: KeyValue[] | undefined): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const kv of kvs ?? []) o[kv.key] = anyValueToJs(kv.value);
  return o;
}

// ---- flat views ----------------------------------------------------------------------------------

export interface FlatSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  status: { code: number; message?: string };
  attributes: Record<string, unknown>;
  events: Array<{ name: string; timeUnixNano: string; attributes: Record<string, unknown> }>;
  links: Array<{ traceId: string; spanId: string; attributes: Record<string, unknown> }>;
  resource: Record<string, unknown>;
  scope: { name: string; version?: string };
  flags?: number;
}

export interface FlatLog {
  timeUnixNano?: string;
  observedTimeUnixNano?: string;
  severityNumber?: number;
  severityText?: string;
  body: unknown;
  eventName?: string;
  attributes: Record<string, unknown>;
  traceId?: string;
  spanId?: string;
  resource: Record<string, unknown>;
  scope: { name: string; version?: string };
}

export interface FlatMetric {
  name: string;
  description?: string;
  unit?: string;
  /** sum | gauge | histogram | exponentialHistogram | summary */
  type: string;
  dataPoints: Array<Record<string, unknown> & { attributes: Record<string, unknown> }>;
  resource: Record<string, unknown>;
  scope: { name: string; version?: string };
}

type Obj = Record<string, unknown>;
const arr = (x: unknown): Obj[] => (Array.isArray(x) ? (x as Obj[]) : []);

type Scope = { name: string; version?: string };
type Scoped = { item: Obj; resource: Record<string, unknown>; scope: () => Scope };

/** Each item of an Export*ServiceRequest with its resource's attributes and its scope: every signal
 *  nests resource → scope → items the same way, under its own field names. */
function scoped(req: Obj, resources: string, scopes: string, items: string): Scoped[] {
  const out: Scoped[] = [];
  for (const r of arr(req[resources])) {
    const resource = attrsToJs((r.resource as Obj | undefined)?.attributes as KeyValue[]);
    for (const s of arr(r[scopes])) {
      const sc = (s.scope as Obj | undefined) ?? {};
      // One object per item: a test that edits one item's scope edits only that one.
      const scope = (): Scope => ({ name: (sc.name as string) ?? '', version: (sc.version as string) || undefined });
      for (const item of arr(s[items])) out.push({ item, resource, scope });
    }
  }
  return out;
}

export function flattenSpans(req: Obj): FlatSpan[] {
  return scoped(req, 'resourceSpans', 'scopeSpans', 'spans').map(({ item: s, resource, scope }) => {
    const st = (s.status as Obj | undefined) ?? {};
    return {
      traceId: s.traceId as string,
      spanId: s.spanId as string,
      parentSpanId: (s.parentSpanId as string) || undefined,
      name: s.name as string,
      kind: (s.kind as number) ?? 0,
      startTimeUnixNano: String(s.startTimeUnixNano ?? '0'),
      endTimeUnixNano: String(s.endTimeUnixNano ?? '0'),
      status: { code: (st.code as number) ?? 0, message: (st.message as string) || undefined },
      attributes: attrsToJs(s.attributes as KeyValue[]),
      events: arr(s.events).map((e) => ({ name: e.name as string, timeUnixNano: String(e.timeUnixNano ?? '0'), attributes: attrsToJs(e.attributes as KeyValue[]) })),
      links: arr(s.links).map((l) => ({ traceId: l.traceId as string, spanId: l.spanId as string, attributes: attrsToJs(l.attributes as KeyValue[]) })),
      resource,
      scope: scope(),
      flags: s.flags as number | undefined,
    };
  });
}

export function flattenLogs(req: Obj): FlatLog[] {
  return scoped(req, 'resourceLogs', 'scopeLogs', 'logRecords').map(({ item: r, resource, scope }) => ({
    timeUnixNano: r.timeUnixNano as string | undefined,
    observedTimeUnixNano: r.observedTimeUnixNano as string | undefined,
    severityNumber: r.severityNumber as number | undefined,
    severityText: r.severityText as string | undefined,
    body: anyValueToJs(r.body as AnyValue | undefined),
    eventName: (r.eventName as string) || undefined,
    attributes: attrsToJs(r.attributes as KeyValue[]),
    traceId: (r.traceId as string) || undefined,
    spanId: (r.spanId as string) || undefined,
    resource,
    scope: scope(),
  }));
}

export function flattenMetrics(req: Obj): FlatMetric[] {
  return scoped(req, 'resourceMetrics', 'scopeMetrics', 'metrics').map(({ item: m, resource, scope }) => {
    const type = ['sum', 'gauge', 'histogram', 'exponentialHistogram', 'summary'].find((t) => t in m) ?? 'unknown';
    const data = (m[type] as Obj | undefined) ?? {};
    return {
      name: m.name as string,
      description: (m.description as string) || undefined,
      unit: (m.unit as string) || undefined,
      type,
      dataPoints: arr(data.dataPoints).map((dp) => ({ ...dp, attributes: attrsToJs(dp.attributes as KeyValue[]) })),
      resource,
      scope: scope(),
    };
  });
}

export interface FlatProfileSample {
  resource: Record<string, unknown>;
  scope: { name: string; version?: string };
  profileId: string;
  timeUnixNano: string;
  durationNano: string;
  period: string;
  /** [type, unit] of Profile.sample_type and Profile.period_type. */
  sampleType: [string, string];
  periodType: [string, string];
  /** Function names, leaf first, as the stack table lists them. */
  stack: string[];
  /** Mapping file name of each frame, leaf first. */
  modules: string[];
  /** Each location's attributes, leaf first (e.g. profile.frame.type). */
  frameAttributes: Array<Record<string, unknown>>;
  values: number[];
  attributes: Record<string, unknown>;
  link?: { traceId: string; spanId: string };
}

/** Resolves every sample of an ExportProfilesServiceRequest through its dictionary. */
export function flattenProfiles(req: Obj): FlatProfileSample[] {
  const d = (req.dictionary as Obj | undefined) ?? {};
  const strs = (d.stringTable as string[] | undefined) ?? [];
  const str = (i: unknown) => strs[Number(i ?? 0)] ?? '';
  const table = (k: string) => arr(d[k]);
  const [mappings, locations, functions, links, attrs, stacks] = ['mappingTable', 'locationTable', 'functionTable', 'linkTable', 'attributeTable', 'stackTable'].map(table);
  const attrsOf = (ix: unknown): Record<string, unknown> => {
    const o: Record<string, unknown> = {};
    for (const i of (ix as number[] | undefined) ?? []) {
      const a = attrs[i] ?? {};
      o[str(a.keyStrindex)] = anyValueToJs(a.value as AnyValue | undefined);
    }
    return o;
  };
  const vt = (v: unknown): [string, string] => [str((v as Obj | undefined)?.typeStrindex), str((v as Obj | undefined)?.unitStrindex)];
  return scoped(req, 'resourceProfiles', 'scopeProfiles', 'profiles').flatMap(({ item: p, resource, scope }) =>
    arr(p.samples).map((smp): FlatProfileSample => {
      const locIdx = ((stacks[Number(smp.stackIndex ?? 0)] ?? {}).locationIndices as number[] | undefined) ?? [];
      const locs = locIdx.map((i) => locations[i] ?? {});
      const link = smp.linkIndex ? links[Number(smp.linkIndex)] : undefined;
      return {
        resource,
        scope: scope(),
        profileId: String(p.profileId ?? ''),
        timeUnixNano: String(p.timeUnixNano ?? '0'),
        durationNano: String(p.durationNano ?? '0'),
        period: String(p.period ?? '0'),
        sampleType: vt(p.sampleType),
        periodType: vt(p.periodType),
        stack: locs.map((l) => str((functions[Number((arr(l.lines)[0] ?? {}).functionIndex ?? 0)] ?? {}).nameStrindex)),
        modules: locs.map((l) => str((mappings[Number(l.mappingIndex ?? 0)] ?? {}).filenameStrindex)),
        frameAttributes: locs.map((l) => attrsOf(l.attributeIndices)),
        values: ((smp.values as unknown[] | undefined) ?? []).map(Number),
        attributes: attrsOf(smp.attributeIndices),
        ...(link ? { link: { traceId: String(link.traceId ?? ''), spanId: String(link.spanId ?? '') } } : {}),
      };
    }),
  );
}

// ---- failure modes -------------------------------------------------------------------------------

export type ReceiverMode =
  | { kind: 'ok' }
  /** gRPC UNAVAILABLE / HTTP 503 (with Retry-After when retryAfterMs is set). */
  | { kind: 'unavailable'; retryAfterMs?: number }
  /** gRPC RESOURCE_EXHAUSTED + RetryInfo / HTTP 429 + Retry-After. */
  | { kind: 'throttle'; retryAfterMs: number }
  /** gRPC INVALID_ARGUMENT / HTTP 400: do not retry. */
  | { kind: 'permanent'; message?: string }
  /** Accept, but only after delayMs. */
  | { kind: 'slow'; delayMs: number }
  /** Accept the request, answering partial_success: `rejected` items refused with `message`. */
  | { kind: 'partial'; rejected: number; message: string };

/** Export*ServiceResponse { partial_success(1) { rejected_<items>(1), error_message(2) } }, same in every signal. */
function partialSuccessBin(rejected: number, message: string): Buffer {
  const varint = (n: number) => {
    const out: number[] = [];
    while (n >= 0x80) {
      out.push((n & 0x7f) | 0x80);
      n = Math.floor(n / 128);
    }
    out.push(n);
    return Buffer.from(out);
  };
  const msg = Buffer.from(message);
  const inner = Buffer.concat([Buffer.from([0x08]), varint(rejected), Buffer.from([0x12]), varint(msg.length), msg]);
  return Buffer.concat([Buffer.from([0x0a]), varint(inner.length), inner]);
}

export interface Attempt {
  signal: OtlpSignal;
  at: number;
  /** What the receiver answered. */
  result: ReceiverMode['kind'];
  /** Request headers (HTTP) or metadata (gRPC), lowercased keys. */
  headers: Record<string, string>;
  /** Size on the wire (HTTP: before gunzip). */
  bytes: number;
}

export interface StartOptions {
  protocol: 'grpc' | 'http';
  /** Reuse a port (e.g. to start "late" where an exporter already points). Default 0 = any. */
  port?: number;
  /** Serve TLS (gRPC over TLS / HTTPS); with `ca` and requireClientCert, mutual TLS. */
  tls?: { key: Buffer; cert: Buffer; ca?: Buffer; requireClientCert?: boolean };
  /** false: accept without decoding (benchmarks measuring the sender); requests stay empty. */
  decode?: boolean;
}

export interface OtlpReceiver {
  readonly protocol: 'grpc' | 'http';
  /** http(s)://127.0.0.1:PORT (HTTP: append /v1/<signal>). */
  readonly url: string;
  readonly port: number;
  readonly running: boolean;
  /** Accepted requests, decoded. */
  readonly requests: Record<OtlpSignal, Obj[]>;
  /** Every request that reached the receiver, accepted or not. */
  readonly attempts: Attempt[];
  /** Requests answered 'permanent' (rejected), decoded: what a sender was told to drop. */
  readonly rejected: Record<OtlpSignal, Obj[]>;
  spans(): FlatSpan[];
  rejectedSpans(): FlatSpan[];
  logs(): FlatLog[];
  metrics(): FlatMetric[];
  /** One entry per profile sample, its stack and attributes resolved through the dictionary. */
  profileSamples(): FlatProfileSample[];
  /** Applies `mode` to the next `times` requests (default: until changed), then back to ok. */
  setMode(mode: ReceiverMode, times?: number): void;
  /** Resolves when pred() holds; rejects after timeoutMs with a message including `what`. */
  waitFor(pred: () => boolean, timeoutMs?: number, what?: string): Promise<void>;
  stop(): Promise<void>;
  /** Listens again on the same port. */
  restart(): Promise<void>;
}

const GRPC_STATUS_DETAILS = 'grpc-status-details-bin';

function retryStatusBin(code: number, message: string, delayMs: number): Buffer {
  const RetryInfo = reflectRoot.lookupType('google.rpc.RetryInfo');
  const Status = reflectRoot.lookupType('google.rpc.Status');
  const info = RetryInfo.encode(RetryInfo.create({ retryDelay: { seconds: Math.floor(delayMs / 1000), nanos: (delayMs % 1000) * 1e6 } })).finish();
  return Buffer.from(Status.encode(Status.create({ code, message, details: [{ typeUrl: 'type.googleapis.com/google.rpc.RetryInfo', value: info }] })).finish());
}

/** How one transport says each answer. */
interface Reply {
  /** Keep the request; answer success with `response` (an Export*ServiceResponse). */
  accept(response: Buffer): void;
  /** Refuse for good: gRPC INVALID_ARGUMENT / HTTP 400. */
  refuse(message: string): void;
  /** Refuse for now: RESOURCE_EXHAUSTED / 429 when throttling, else UNAVAILABLE / 503. */
  later(throttle: boolean, retryAfterMs?: number): void;
}

class Receiver implements OtlpReceiver {
  readonly requests: Record<OtlpSignal, Obj[]> = { traces: [], metrics: [], logs: [], profiles: [] };
  readonly attempts: Attempt[] = [];
  readonly rejected: Record<OtlpSignal, Obj[]> = { traces: [], metrics: [], logs: [], profiles: [] };
  port = 0;
  running = false;
  private mode: ReceiverMode = { kind: 'ok' };
  private modeTimes = Infinity;
  private grpcServer: grpc.Server | undefined;
  private httpServer: http.Server | undefined;

  constructor(
    readonly protocol: 'grpc' | 'http',
    private readonly tls?: StartOptions['tls'],
    private readonly decode = true,
  ) {}

  get url(): string {
    return `${this.tls ? 'https' : 'http'}://127.0.0.1:${this.port}`;
  }

  spans(): FlatSpan[] {
    return this.requests.traces.flatMap(flattenSpans);
  }
  rejectedSpans(): FlatSpan[] {
    return this.rejected.traces.flatMap(flattenSpans);
  }
  private noteRejected(signal: OtlpSignal, body: () => Uint8Array): void {
    try {
      this.rejected[signal].push(decodeOtlpRequest(signal, body()));
    } catch {
      /* undecodable: the attempt is still recorded */
    }
  }
  logs(): FlatLog[] {
    return this.requests.logs.flatMap(flattenLogs);
  }
  metrics(): FlatMetric[] {
    return this.requests.metrics.flatMap(flattenMetrics);
  }
  profileSamples(): FlatProfileSample[] {
    return this.requests.profiles.flatMap(flattenProfiles);
  }

  setMode(mode: ReceiverMode, times = Infinity): void {
    this.mode = mode;
    this.modeTimes = times;
  }

  /** The mode for this request, consuming one of its `times`. */
  private takeMode(): ReceiverMode {
    const m = this.mode;
    if (m.kind !== 'ok' && --this.modeTimes <= 0) {
      this.mode = { kind: 'ok' };
      this.modeTimes = Infinity;
    }
    return m;
  }

  /** Records a request and answers it as the mode says: the same rules on both transports, which
   *  differ only in how they say it. */
  private answer(signal: OtlpSignal, headers: Record<string, string>, bytes: number, body: () => Uint8Array, reply: Reply): void {
    const mode = this.takeMode();
    this.attempts.push({ signal, at: Date.now(), result: mode.kind, headers, bytes });
    const accept = () => reply.accept(mode.kind === 'partial' ? partialSuccessBin(mode.rejected, mode.message) : Buffer.from(codecs[signal].res.encode({}).finish()));
    switch (mode.kind) {
      case 'ok':
      case 'partial':
        return accept();
      case 'slow':
        setTimeout(accept, mode.delayMs);
        return;
      case 'permanent':
        this.noteRejected(signal, body);
        return reply.refuse(mode.message ?? 'rejected by test receiver');
      case 'unavailable':
      case 'throttle':
        return reply.later(mode.kind === 'throttle', mode.retryAfterMs);
    }
  }

  async waitFor(pred: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async start(port: number): Promise<void> {
    if (this.protocol === 'grpc') await this.startGrpc(port);
    else await this.startHttp(port);
    this.running = true;
  }

  private startGrpc(port: number): Promise<void> {
    const server = new grpc.Server();
    for (const signal of ['traces', 'metrics', 'logs', 'profiles'] as OtlpSignal[]) {
      const c = codecs[signal];
      const def: grpc.ServiceDefinition = {
        Export: {
          path: `/${c.service}/Export`,
          requestStream: false,
          responseStream: false,
          requestSerialize: (x: Buffer) => x,
          requestDeserialize: (b: Buffer) => b,
          responseSerialize: (x: Buffer) => x,
          responseDeserialize: (b: Buffer) => b,
        },
      };
      server.addService(def, {
        Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(call.metadata.getMap())) headers[k.toLowerCase()] = String(v);
          this.answer(signal, headers, call.request.length, () => call.request, {
            accept: (response) => {
              if (this.decode) this.requests[signal].push(decodeOtlpRequest(signal, call.request));
              cb(null, response);
            },
            refuse: (message) => cb({ code: grpc.status.INVALID_ARGUMENT, details: message }),
            later: (throttle, retryAfterMs) => {
              const code = throttle ? grpc.status.RESOURCE_EXHAUSTED : grpc.status.UNAVAILABLE;
              const metadata = new grpc.Metadata();
              if (retryAfterMs !== undefined) metadata.set(GRPC_STATUS_DETAILS, retryStatusBin(code, 'try later', retryAfterMs));
              cb({ code, details: 'try later', metadata });
            },
          });
        },
      });
    }
    this.grpcServer = server;
    return new Promise((resolve, reject) => {
      const tls = this.tls;
      const creds = tls
        ? grpc.ServerCredentials.createSsl(tls.ca ?? null, [{ private_key: tls.key, cert_chain: tls.cert }], tls.requireClientCert ?? false)
        : grpc.ServerCredentials.createInsecure();
      server.bindAsync(`127.0.0.1:${port}`, creds, (err, bound) => {
        if (err) return reject(err);
        this.port = bound;
        resolve();
      });
    });
  }

  private startHttp(port: number): Promise<void> {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
      const signal = HTTP_PATHS[req.url ?? ''];
      if (req.method !== 'POST' || !signal) {
        res.writeHead(404).end();
        return;
      }
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks);
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(',') : String(v);
        const body = () => (headers['content-encoding'] === 'gzip' ? zlib.gunzipSync(raw) : raw);
        this.answer(signal, headers, raw.length, body, {
          accept: (response) => {
            try {
              const b = body();
              if (this.decode) this.requests[signal].push(decodeOtlpRequest(signal, b));
            } catch (e) {
              res.writeHead(400, { 'content-type': 'text/plain' }).end(String(e));
              return;
            }
            res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(response);
          },
          refuse: (message) => res.writeHead(400, { 'content-type': 'text/plain' }).end(message),
          later: (throttle, retryAfterMs) => {
            const h: Record<string, string> = { 'content-type': 'text/plain' };
            if (retryAfterMs !== undefined) h['retry-after'] = String(Math.ceil(retryAfterMs / 1000));
            res.writeHead(throttle ? 429 : 503, h).end('try later');
          },
        });
      });
    };
    const tls = this.tls;
    const server = tls
      ? https.createServer({ key: tls.key, cert: tls.cert, ca: tls.ca, requestCert: tls.requireClientCert ?? false, rejectUnauthorized: tls.requireClientCert ?? false }, handler)
      : http.createServer(handler);
    this.httpServer = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        this.port = (server.address() as { port: number }).port;
        resolve();
      });
    });
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.grpcServer) {
      this.grpcServer.forceShutdown();
      this.grpcServer = undefined;
    }
    if (this.httpServer) {
      const s = this.httpServer;
      this.httpServer = undefined;
      await new Promise<void>((resolve) => {
        s.close(() => resolve());
        s.closeAllConnections();
      });
    }
  }

  async restart(): Promise<void> {
    await this.stop();
    // A port just released can take a moment to be bindable again under load; retry briefly.
    for (let i = 0; ; i++) {
      try {
        await this.start(this.port);
        return;
      } catch (e) {
        if (i >= 50) throw e;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }
}

export async function startReceiver(opts: StartOptions): Promise<OtlpReceiver> {
  const r = new Receiver(opts.protocol, opts.tls, opts.decode ?? true);
  await r.start(opts.port ?? 0);
  return r;
}

/** A receiver starter for one test file: every receiver it starts is stopped after the file's tests. */
export function receiversStoppedAfter(): (protocol: 'grpc' | 'http', port?: number) => Promise<OtlpReceiver> {
  const started: OtlpReceiver[] = [];
  after(async () => {
    for (const r of started) await r.stop();
  });
  return async (protocol, port) => {
    const r = await startReceiver({ protocol, port });
    started.push(r);
    return r;
  };
}

/** The standard OTLP exporter variables aimed at `r`, with a header the tests look for at the receiver. */
export function envFor(r: OtlpReceiver, compression: 'gzip' | 'none'): Record<string, string> {
  return {
    OTEL_EXPORTER_OTLP_ENDPOINT: r.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: r.protocol === 'grpc' ? 'grpc' : 'http/protobuf',
    OTEL_EXPORTER_OTLP_COMPRESSION: compression,
    OTEL_EXPORTER_OTLP_HEADERS: 'x-tenant=team%20a',
    OTEL_EXPORTER_OTLP_TIMEOUT: '5000',
  };
}

/** A free 127.0.0.1 port (bound then released), for "receiver down at start" tests. */
export async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const p = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}
