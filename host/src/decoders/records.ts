// Reads records a decoder hands to telegen.emit(ptr, len) (layout: decoders/abi/abi.ts).
import {
  RECORD_HEADER_SIZE, FIELD_HEADER_SIZE, T_STR, T_INT, T_FLOAT, T_BOOL, T_STRS, ATTR_PRIVATE_BASE,
} from '../../../decoders/abi/abi';
import attributesJson from '../../../decoders/abi/attributes.json';

export type AttrValue = string | number | boolean | string[];

export interface DecodedRecord {
  kind: number;
  flags: number;
  stream: number;
  tsStart: bigint;
  tsEnd: bigint;
  attributes: Record<string, AttrValue>;
}

const ATTRIBUTE_NAMES: string[] = (() => {
  const out: string[] = [];
  for (const [id, name] of Object.entries(attributesJson.attributes as Record<string, string>)) out[Number(id)] = name;
  return out;
})();

export function attributeName(id: number, privateNames?: Record<string, string>): string | undefined {
  if (id >= ATTR_PRIVATE_BASE) return privateNames?.[String(id)];
  return ATTRIBUTE_NAMES[id];
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

export class RecordError extends Error {}

/** Decodes one record; throws RecordError on a malformed one (the caller counts and drops it). */
export function decodeRecord(mem: Uint8Array, ptr: number, len: number, privateNames?: Record<string, string>): DecodedRecord {
  if (len < RECORD_HEADER_SIZE || ptr + len > mem.byteLength || ptr < 0) throw new RecordError(`record out of bounds (ptr=${ptr} len=${len})`);
  const dv = new DataView(mem.buffer, mem.byteOffset + ptr, len);
  const total = dv.getUint32(4, true);
  if (total !== len) throw new RecordError(`record length mismatch (header ${total}, emitted ${len})`);
  const rec: DecodedRecord = {
    kind: dv.getUint16(0, true),
    flags: dv.getUint16(2, true),
    stream: Number(dv.getBigUint64(8, true)),
    tsStart: dv.getBigUint64(16, true),
    tsEnd: dv.getBigUint64(24, true),
    attributes: {},
  };
  let p = RECORD_HEADER_SIZE;
  while (p < len) {
    if (p + FIELD_HEADER_SIZE > len) throw new RecordError('truncated field header');
    const id = dv.getUint16(p, true);
    const type = dv.getUint8(p + 2);
    const vlen = dv.getUint32(p + 4, true);
    const v = p + FIELD_HEADER_SIZE;
    if (v + vlen > len) throw new RecordError(`field ${id} overruns the record`);
    const name = attributeName(id, privateNames);
    if (name === undefined) throw new RecordError(`unknown attribute id ${id}`);
    let value: AttrValue;
    switch (type) {
      case T_STR: value = utf8.decode(mem.subarray(ptr + v, ptr + v + vlen)); break;
      case T_INT: if (vlen !== 8) throw new RecordError(`int field ${name} has ${vlen} bytes`); value = Number(dv.getBigInt64(v, true)); break;
      case T_FLOAT: if (vlen !== 8) throw new RecordError(`float field ${name} has ${vlen} bytes`); value = dv.getFloat64(v, true); break;
      case T_BOOL: if (vlen !== 1) throw new RecordError(`bool field ${name} has ${vlen} bytes`); value = dv.getUint8(v) !== 0; break;
      case T_STRS: {
        const items: string[] = [];
        let q = v;
        while (q < v + vlen) {
          if (q + 4 > v + vlen) throw new RecordError(`string list ${name} is cut`);
          const n = dv.getUint32(q, true);
          if (q + 4 + n > v + vlen) throw new RecordError(`string list ${name} item overruns`);
          items.push(utf8.decode(mem.subarray(ptr + q + 4, ptr + q + 4 + n)));
          q += 4 + n;
        }
        value = items;
        break;
      }
      default: throw new RecordError(`field ${name} has unknown type ${type}`);
    }
    rec.attributes[name] = value;
    p = v + vlen;
  }
  return rec;
}
