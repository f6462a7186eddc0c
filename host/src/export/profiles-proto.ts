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

/** gRPC method and HTTP path of the profiles collector service. */
export const PROFILES_GRPC_METHOD = '/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export';
export const PROFILES_HTTP_PATH = '/v1development/profiles';

type Obj = Record<string, unknown>;
type Num = number | string | bigint | undefined;

const VARINT = 0;
const I64 = 1;
const LEN = 2;

class Writer {
  buf = Buffer.allocUnsafe(4096);
  pos = 0;

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const b = Buffer.allocUnsafe(size);
    this.buf.copy(b, 0, 0, this.pos);
    this.buf = b;
  }

  /** Unsigned varint of a non-negative safe integer. */
  uvarint(v: number): void {
    this.ensure(10);
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buf[this.pos++] = v;
  }

  /** Varint of any 64-bit value (negative ints are ten bytes, two's complement). */
  varint64(v: bigint): void {
    let x = BigInt.asUintN(64, v);
    this.ensure(10);
    while (x >= 0x80n) {
      this.buf[this.pos++] = Number(x & 0x7fn) | 0x80;
      x >>= 7n;
    }
    this.buf[this.pos++] = Number(x);
  }

  tag(field: number, wt: number): void {
    this.uvarint(field * 8 + wt);
  }

  raw(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** Writes a length-delimited field whose body `fn` writes; the length is patched in after. */
  message(field: number, fn: () => void): void {
    this.tag(field, LEN);
    this.ensure(5);
    const lenAt = this.pos;
    this.pos += 5; // room for the longest 32-bit length varint
    const start = this.pos;
    fn();
    const len = this.pos - start;
    const lenBytes = len < 0x80 ? 1 : len < 0x4000 ? 2 : len < 0x200000 ? 3 : len < 0x10000000 ? 4 : 5;
    // Move the body back over the unused length bytes, then write the length.
    if (lenBytes < 5) this.buf.copyWithin(lenAt + lenBytes, start, this.pos);
    this.pos = lenAt;
    this.uvarint(len);
    this.pos = lenAt + lenBytes + len;
  }

  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

const toBig = (v: Num): bigint => (v === undefined || v === '' ? 0n : typeof v === 'bigint' ? v : BigInt(v));
const arr = (x: unknown): Obj[] => (Array.isArray(x) ? (x as Obj[]) : []);
const nums = (x: unknown): Num[] => (Array.isArray(x) ? (x as Num[]) : []);

function int(w: Writer, field: number, v: Num): void {
  if (v === undefined) return;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) {
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
  w.raw(fixed64Bytes(b));
}

function fixed64Bytes(b: bigint): Buffer {
  const x = Buffer.allocUnsafe(8);
  x.writeBigUInt64LE(BigInt.asUintN(64, b));
  return x;
}

function str(w: Writer, field: number, s: unknown, always = false): void {
  if (typeof s !== 'string' || (s === '' && !always)) return;
  const b = Buffer.from(s, 'utf8');
  w.tag(field, LEN);
  w.uvarint(b.length);
  w.raw(b);
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

function packed(w: Writer, field: number, values: Num[]): void {
  if (values.length === 0) return;
  w.message(field, () => {
    for (const v of values) {
      if (typeof v === 'number' && v >= 0) w.uvarint(v);
      else w.varint64(toBig(v));
    }
  });
}

function packedFixed64(w: Writer, field: number, values: Num[]): void {
  if (values.length === 0) return;
  w.message(field, () => {
    for (const v of values) w.raw(fixed64Bytes(toBig(v)));
  });
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
    const b = Buffer.allocUnsafe(8);
    b.writeDoubleLE(Number(v.doubleValue));
    w.raw(b);
  } else if ('arrayValue' in v) {
    w.message(5, () => {
      for (const x of arr((v.arrayValue as Obj).values)) w.message(1, () => anyValue(w, x));
    });
  } else if ('kvlistValue' in v) {
    w.message(6, () => {
      for (const kv of arr((v.kvlistValue as Obj).values)) w.message(1, () => keyValue(w, kv));
    });
  } else if ('bytesValue' in v) bytes(w, 7, v.bytesValue, false);
}

function keyValue(w: Writer, kv: Obj): void {
  str(w, 1, kv.key);
  if (kv.value) w.message(2, () => anyValue(w, kv.value as Obj));
}

function valueType(w: Writer, field: number, v: unknown): void {
  if (!v) return;
  const o = v as Obj;
  w.message(field, () => {
    int(w, 1, o.typeStrindex as Num);
    int(w, 2, o.unitStrindex as Num);
  });
}

function profile(w: Writer, p: Obj): void {
  valueType(w, 1, p.sampleType);
  for (const s of arr(p.samples)) {
    w.message(2, () => {
      int(w, 1, s.stackIndex as Num);
      packed(w, 2, nums(s.values));
      packed(w, 3, nums(s.attributeIndices));
      int(w, 4, s.linkIndex as Num);
      packedFixed64(w, 5, nums(s.timestampsUnixNano));
    });
  }
  fixed64(w, 3, p.timeUnixNano as Num);
  int(w, 4, p.durationNano as Num);
  valueType(w, 5, p.periodType);
  int(w, 6, p.period as Num);
  bytes(w, 7, p.profileId, true);
  int(w, 8, p.droppedAttributesCount as Num);
  str(w, 9, p.originalPayloadFormat);
  bytes(w, 10, p.originalPayload, false);
  packed(w, 11, nums(p.attributeIndices));
}

function dictionary(w: Writer, d: Obj): void {
  for (const m of arr(d.mappingTable)) {
    w.message(1, () => {
      int(w, 1, m.memoryStart as Num);
      int(w, 2, m.memoryLimit as Num);
      int(w, 3, m.fileOffset as Num);
      int(w, 4, m.filenameStrindex as Num);
      packed(w, 5, nums(m.attributeIndices));
    });
  }
  for (const l of arr(d.locationTable)) {
    w.message(2, () => {
      int(w, 1, l.mappingIndex as Num);
      int(w, 2, l.address as Num);
      for (const ln of arr(l.lines)) {
        w.message(3, () => {
          int(w, 1, ln.functionIndex as Num);
          int(w, 2, ln.line as Num);
          int(w, 3, ln.column as Num);
        });
      }
      packed(w, 4, nums(l.attributeIndices));
    });
  }
  for (const f of arr(d.functionTable)) {
    w.message(3, () => {
      int(w, 1, f.nameStrindex as Num);
      int(w, 2, f.systemNameStrindex as Num);
      int(w, 3, f.filenameStrindex as Num);
      int(w, 4, f.startLine as Num);
    });
  }
  for (const l of arr(d.linkTable)) {
    w.message(4, () => {
      bytes(w, 1, l.traceId, true);
      bytes(w, 2, l.spanId, true);
    });
  }
  // Every string, "" included: the table is indexed by position.
  for (const s of Array.isArray(d.stringTable) ? (d.stringTable as string[]) : []) str(w, 5, s, true);
  for (const a of arr(d.attributeTable)) {
    w.message(6, () => {
      int(w, 1, a.keyStrindex as Num);
      if (a.value) w.message(2, () => anyValue(w, a.value as Obj));
      int(w, 3, a.unitStrindex as Num);
    });
  }
  for (const s of arr(d.stackTable)) w.message(7, () => packed(w, 1, nums(s.locationIndices)));
}

/** ExportProfilesServiceRequest (OTLP/JSON shape) → protobuf bytes. */
export function encodeProfilesRequest(req: object): Buffer {
  const w = new Writer();
  const r = req as Obj;
  for (const rp of arr(r.resourceProfiles)) {
    w.message(1, () => {
      const res = rp.resource as Obj | undefined;
      if (res) {
        w.message(1, () => {
          for (const kv of arr(res.attributes)) w.message(1, () => keyValue(w, kv));
          int(w, 2, res.droppedAttributesCount as Num);
        });
      }
      for (const sp of arr(rp.scopeProfiles)) {
        w.message(2, () => {
          const sc = sp.scope as Obj | undefined;
          if (sc) {
            w.message(1, () => {
              str(w, 1, sc.name);
              str(w, 2, sc.version);
              for (const kv of arr(sc.attributes)) w.message(3, () => keyValue(w, kv));
            });
          }
          for (const p of arr(sp.profiles)) w.message(2, () => profile(w, p));
          str(w, 3, sp.schemaUrl);
        });
      }
      str(w, 3, rp.schemaUrl);
    });
  }
  if (r.dictionary) w.message(2, () => dictionary(w, r.dictionary as Obj));
  return w.finish();
}
