// OTLP profiles (development signal) as protobuf: an ExportProfilesServiceRequest in its OTLP/JSON
// shape (what profile/otlp.ts builds and the file exporter writes) encoded to the wire format of
// opentelemetry-proto v1.8.0, opentelemetry/proto/profiles/v1development/profiles.proto and
// collector/profiles/v1development/profiles_service.proto (the dictionary layout: one
// ProfilesDictionary per request, samples pointing into its stack table).
//
// Encoded by hand rather than through protobufjs reflection: no published opentelemetry-js
// package carries these messages, the shapes are few and flat, and one pass over the JSON object
// with a growing buffer costs less than fromObject + encode. The test receiver decodes with
// protobufjs from the .proto text, so a wrong field number here fails the export tests.
//
// Field numbers (v1.8.0):
//   ExportProfilesServiceRequest  resource_profiles=1 dictionary=2
//   ProfilesDictionary            mapping_table=1 location_table=2 function_table=3 link_table=4
//                                 string_table=5 attribute_table=6 stack_table=7
//   ResourceProfiles              resource=1 scope_profiles=2 schema_url=3
//   ScopeProfiles                 scope=1 profiles=2 schema_url=3
//   Profile                       sample_type=1 samples=2 time_unix_nano=3(fixed64) duration_nano=4
//                                 period_type=5 period=6 profile_id=7 dropped_attributes_count=8
//                                 original_payload_format=9 original_payload=10 attribute_indices=11
//   Sample                        stack_index=1 values=2 attribute_indices=3 link_index=4
//                                 timestamps_unix_nano=5(fixed64)
//   ValueType                     type_strindex=1 unit_strindex=2
//   Mapping                       memory_start=1 memory_limit=2 file_offset=3 filename_strindex=4
//                                 attribute_indices=5
//   Location                      mapping_index=1 address=2 lines=3 attribute_indices=4
//   Line                          function_index=1 line=2 column=3
//   Function                      name_strindex=1 system_name_strindex=2 filename_strindex=3 start_line=4
//   KeyValueAndUnit               key_strindex=1 value=2 unit_strindex=3
//   Stack                         location_indices=1
//   Link                          trace_id=1 span_id=2

import { I64, LEN, VARINT, Writer } from './proto-writer';

/** gRPC method and HTTP path of the profiles collector service. */
export const PROFILES_GRPC_METHOD = '/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export';
export const PROFILES_HTTP_PATH = '/v1development/profiles';

type Obj = Record<string, unknown>;
type Num = number | string | bigint | undefined;

const toBig = (v: Num): bigint => (v === undefined || v === '' ? 0n : typeof v === 'bigint' ? v : BigInt(v));
const arr = (x: unknown): Obj[] => (Array.isArray(x) ? (x as Obj[]) : EMPTY);
const nums = (x: unknown): Num[] => (Array.isArray(x) ? (x as Num[]) : EMPTY_NUMS);
const EMPTY: Obj[] = [];
const EMPTY_NUMS: Num[] = [];

function int(w: Writer, field: number, v: Num): void {
  if (v === undefined) return;
  if (typeof v === 'number' && v >= 0 && v <= Number.MAX_SAFE_INTEGER) {
    if (v === 0) return;
    w.tag(field, VARINT);
    w.uvarint(v);
    return;
  }
  const b = toBig(v);
  if (b === 0n) return;
  w.tag(field, VARINT);
  w.varint64(b);
}

function fixed64(w: Writer, field: number, v: Num): void {
  const b = toBig(v);
  if (b === 0n) return;
  w.tag(field, I64);
  fixed64Raw(w, b);
}

function fixed64Raw(w: Writer, b: bigint): void {
  w.ensure(8);
  w.buf.writeBigUInt64LE(BigInt.asUintN(64, b), w.pos);
  w.pos += 8;
}

function str(w: Writer, field: number, s: unknown, always = false): void {
  if (typeof s !== 'string' || (s === '' && !always)) return;
  w.tag(field, LEN);
  const n = Buffer.byteLength(s);
  w.uvarint(n);
  w.ensure(n);
  w.buf.write(s, w.pos, n, 'utf8');
  w.pos += n;
}

/** Ids are hex in OTLP/JSON (trace/span/profile ids); other bytes are base64. */
function bytes(w: Writer, field: number, v: unknown, hex: boolean): void {
  if (v === undefined || v === '') return;
  const b = v instanceof Uint8Array ? v : Buffer.from(String(v), hex ? 'hex' : 'base64');
  if (b.length === 0) return;
  w.tag(field, LEN);
  w.uvarint(b.length);
  w.raw(b);
}

/** Packed repeated integers; `remap` turns a request-local table index into the merged one. */
function packed(w: Writer, field: number, values: Num[], base = -1): void {
  if (values.length === 0) return;
  w.begin(field);
  for (const v of values) {
    if (base >= 0) w.uvarint(remap(Number(v), base));
    else if (typeof v === 'number' && v >= 0) w.uvarint(v);
    else w.varint64(toBig(v));
  }
  w.end();
}

function packedFixed64(w: Writer, field: number, values: Num[]): void {
  if (values.length === 0) return;
  w.begin(field);
  for (const v of values) fixed64Raw(w, toBig(v));
  w.end();
}

function anyValue(w: Writer, v: Obj): void {
  if ('stringValue' in v) str(w, 1, v.stringValue, true);
  else if ('boolValue' in v) {
    w.tag(2, VARINT);
    w.uvarint(v.boolValue ? 1 : 0);
  } else if ('intValue' in v) {
    w.tag(3, VARINT);
    w.varint64(toBig(v.intValue as Num));
  } else if ('doubleValue' in v) {
    w.tag(4, I64);
    w.ensure(8);
    w.buf.writeDoubleLE(Number(v.doubleValue), w.pos);
    w.pos += 8;
  } else if ('arrayValue' in v) {
    w.begin(5);
    for (const x of arr((v.arrayValue as Obj).values)) {
      w.begin(1);
      anyValue(w, x);
      w.end();
    }
    w.end();
  } else if ('kvlistValue' in v) {
    w.begin(6);
    for (const kv of arr((v.kvlistValue as Obj).values)) {
      w.begin(1);
      keyValue(w, kv);
      w.end();
    }
    w.end();
  } else if ('bytesValue' in v) bytes(w, 7, v.bytesValue, false);
}

function keyValue(w: Writer, kv: Obj): void {
  str(w, 1, kv.key);
  if (kv.value) {
    w.begin(2);
    anyValue(w, kv.value as Obj);
    w.end();
  }
}

// ---- merging several requests into one ---------------------------------------------------------
// Every request of a batch has its own dictionary. The merged request has one: strings interned,
// the other tables concatenated without their zero entries (index 0 means "unset" in all of them
// and is shared), so a request-local index i > 0 becomes base + i.

/** Where one request's tables start in the merged dictionary, and its string index map. */
interface Remap {
  s: Int32Array;
  mapping: number;
  location: number;
  function: number;
  link: number;
  attribute: number;
  stack: number;
}

const remap = (i: number, base: number): number => (i > 0 ? base + i : 0);
const len0 = (x: unknown): number => Math.max(0, arr(x).length - 1);

function plan(reqs: Obj[]): { remaps: Remap[]; strings: string[] } {
  const strings: string[] = [''];
  const index = new Map<string, number>([['', 0]]);
  const remaps: Remap[] = [];
  const base = { mapping: 0, location: 0, function: 0, link: 0, attribute: 0, stack: 0 };
  for (const r of reqs) {
    const d = (r.dictionary as Obj | undefined) ?? {};
    const st = Array.isArray(d.stringTable) ? (d.stringTable as string[]) : [];
    const s = new Int32Array(st.length);
    for (let i = 0; i < st.length; i++) {
      let j = index.get(st[i]);
      if (j === undefined) {
        j = strings.length;
        strings.push(st[i]);
        index.set(st[i], j);
      }
      s[i] = j;
    }
    remaps.push({ s, ...base });
    base.mapping += len0(d.mappingTable);
    base.location += len0(d.locationTable);
    base.function += len0(d.functionTable);
    base.link += len0(d.linkTable);
    base.attribute += len0(d.attributeTable);
    base.stack += len0(d.stackTable);
  }
  return { remaps, strings };
}

const strIdx = (m: Remap, v: unknown): number => (v ? m.s[Number(v)] ?? 0 : 0);

function valueType(w: Writer, field: number, v: unknown, m: Remap): void {
  if (!v) return;
  const o = v as Obj;
  w.begin(field);
  int(w, 1, strIdx(m, o.typeStrindex));
  int(w, 2, strIdx(m, o.unitStrindex));
  w.end();
}

function profile(w: Writer, p: Obj, m: Remap): void {
  valueType(w, 1, p.sampleType, m);
  for (const s of arr(p.samples)) {
    w.begin(2);
    int(w, 1, remap(Number(s.stackIndex ?? 0), m.stack));
    packed(w, 2, nums(s.values));
    packed(w, 3, nums(s.attributeIndices), m.attribute);
    int(w, 4, remap(Number(s.linkIndex ?? 0), m.link));
    packedFixed64(w, 5, nums(s.timestampsUnixNano));
    w.end();
  }
  fixed64(w, 3, p.timeUnixNano as Num);
  int(w, 4, p.durationNano as Num);
  valueType(w, 5, p.periodType, m);
  int(w, 6, p.period as Num);
  bytes(w, 7, p.profileId, true);
  int(w, 8, p.droppedAttributesCount as Num);
  str(w, 9, p.originalPayloadFormat);
  bytes(w, 10, p.originalPayload, false);
  packed(w, 11, nums(p.attributeIndices), m.attribute);
}

function resourceProfiles(w: Writer, rp: Obj, m: Remap): void {
  w.begin(1);
  const res = rp.resource as Obj | undefined;
  if (res) {
    w.begin(1);
    for (const kv of arr(res.attributes)) {
      w.begin(1);
      keyValue(w, kv);
      w.end();
    }
    int(w, 2, res.droppedAttributesCount as Num);
    w.end();
  }
  for (const sp of arr(rp.scopeProfiles)) {
    w.begin(2);
    const sc = sp.scope as Obj | undefined;
    if (sc) {
      w.begin(1);
      str(w, 1, sc.name);
      str(w, 2, sc.version);
      for (const kv of arr(sc.attributes)) {
        w.begin(3);
        keyValue(w, kv);
        w.end();
      }
      w.end();
    }
    for (const p of arr(sp.profiles)) {
      w.begin(2);
      profile(w, p, m);
      w.end();
    }
    str(w, 3, sp.schemaUrl);
    w.end();
  }
  str(w, 3, rp.schemaUrl);
  w.end();
}

const dictOf = (r: Obj): Obj => (r.dictionary as Obj | undefined) ?? {};

/** Table `key` of every request, its zero entry written once, in field `field`. */
function table(w: Writer, reqs: Obj[], remaps: Remap[], key: string, field: number, entry: (w: Writer, e: Obj, m: Remap) => void): void {
  w.begin(field);
  w.end();
  for (let k = 0; k < reqs.length; k++) {
    const t = arr(dictOf(reqs[k])[key]);
    for (let i = 1; i < t.length; i++) {
      w.begin(field);
      entry(w, t[i], remaps[k]);
      w.end();
    }
  }
}

function mappingEntry(w: Writer, e: Obj, m: Remap): void {
  int(w, 1, e.memoryStart as Num);
  int(w, 2, e.memoryLimit as Num);
  int(w, 3, e.fileOffset as Num);
  int(w, 4, strIdx(m, e.filenameStrindex));
  packed(w, 5, nums(e.attributeIndices), m.attribute);
}

function locationEntry(w: Writer, e: Obj, m: Remap): void {
  int(w, 1, remap(Number(e.mappingIndex ?? 0), m.mapping));
  int(w, 2, e.address as Num);
  for (const ln of arr(e.lines)) {
    w.begin(3);
    int(w, 1, remap(Number(ln.functionIndex ?? 0), m.function));
    int(w, 2, ln.line as Num);
    int(w, 3, ln.column as Num);
    w.end();
  }
  packed(w, 4, nums(e.attributeIndices), m.attribute);
}

function functionEntry(w: Writer, e: Obj, m: Remap): void {
  int(w, 1, strIdx(m, e.nameStrindex));
  int(w, 2, strIdx(m, e.systemNameStrindex));
  int(w, 3, strIdx(m, e.filenameStrindex));
  int(w, 4, e.startLine as Num);
}

function linkEntry(w: Writer, e: Obj): void {
  bytes(w, 1, e.traceId, true);
  bytes(w, 2, e.spanId, true);
}

function attributeEntry(w: Writer, e: Obj, m: Remap): void {
  int(w, 1, strIdx(m, e.keyStrindex));
  if (e.value) {
    w.begin(2);
    anyValue(w, e.value as Obj);
    w.end();
  }
  int(w, 3, strIdx(m, e.unitStrindex));
}

function stackEntry(w: Writer, e: Obj, m: Remap): void {
  packed(w, 1, nums(e.locationIndices), m.location);
}

/**
 * One or more ExportProfilesServiceRequests (OTLP/JSON shape, each with its own dictionary) →
 * the protobuf bytes of one request carrying all their profiles over one merged dictionary.
 */
export function encodeProfilesRequests(reqs: object[]): Buffer {
  const rs = reqs as Obj[];
  const { remaps, strings } = plan(rs);
  const w = new Writer();
  for (let k = 0; k < rs.length; k++) for (const rp of arr(rs[k].resourceProfiles)) resourceProfiles(w, rp, remaps[k]);
  w.begin(2);
  table(w, rs, remaps, 'mappingTable', 1, mappingEntry);
  table(w, rs, remaps, 'locationTable', 2, locationEntry);
  table(w, rs, remaps, 'functionTable', 3, functionEntry);
  table(w, rs, remaps, 'linkTable', 4, linkEntry);
  // Every string, "" included: the table is indexed by position.
  for (const s of strings) str(w, 5, s, true);
  table(w, rs, remaps, 'attributeTable', 6, attributeEntry);
  table(w, rs, remaps, 'stackTable', 7, stackEntry);
  w.end();
  return w.finish();
}

/** One ExportProfilesServiceRequest (OTLP/JSON shape) → protobuf bytes. */
export function encodeProfilesRequest(req: object): Buffer {
  return encodeProfilesRequests([req]);
}
