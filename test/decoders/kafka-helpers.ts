// Builders for Kafka wire bytes in tests: kafkajs' own request encoders (non-flexible versions,
// what a kafkajs client really sends) and a small writer for flexible versions and responses
// (kafkajs encodes no responses and no flexible versions).
import * as path from 'path';
import { Harness } from '../helpers/decoder';

/** Big-endian writer with Kafka's primitive types (classic and compact encodings). */
export class W {
  private parts: Buffer[] = [];
  i8(v: number): this { const b = Buffer.alloc(1); b.writeInt8(v); this.parts.push(b); return this; }
  i16(v: number): this { const b = Buffer.alloc(2); b.writeInt16BE(v); this.parts.push(b); return this; }
  i32(v: number): this { const b = Buffer.alloc(4); b.writeInt32BE(v); this.parts.push(b); return this; }
  u32(v: number): this { const b = Buffer.alloc(4); b.writeUInt32BE(v >>> 0); this.parts.push(b); return this; }
  i64(v: bigint | number): this { const b = Buffer.alloc(8); b.writeBigInt64BE(BigInt(v)); this.parts.push(b); return this; }
  uv(v: number): this {
    const out: number[] = [];
    let n = v >>> 0;
    while (n >= 0x80) { out.push((n & 0x7f) | 0x80); n >>>= 7; }
    out.push(n);
    this.parts.push(Buffer.from(out));
    return this;
  }
  raw(b: Uint8Array | number[]): this { this.parts.push(Buffer.from(b as Uint8Array)); return this; }
  /** Classic string: int16 length, -1 = null. */
  str(s: string | null): this {
    if (s === null) return this.i16(-1);
    const b = Buffer.from(s, 'utf8');
    return this.i16(b.length).raw(b);
  }
  /** Compact string: uvarint length+1, 0 = null. */
  cstr(s: string | null): this {
    if (s === null) return this.uv(0);
    const b = Buffer.from(s, 'utf8');
    return this.uv(b.length + 1).raw(b);
  }
  arr(n: number): this { return this.i32(n); }
  carr(n: number): this { return this.uv(n + 1); }
  bytes(b: Buffer | null): this { return b === null ? this.i32(-1) : this.i32(b.length).raw(b); }
  cbytes(b: Buffer | null): this { return b === null ? this.uv(0) : this.uv(b.length + 1).raw(b); }
  /** No tagged fields. */
  tag0(): this { return this.uv(0); }
  /** One tagged field with opaque content (decoders must skip it). */
  tagged(tag: number, content: Buffer): this { return this.uv(1).uv(tag).uv(content.length).raw(content); }
  uuid(hex: string): this { return this.raw(Buffer.from(hex.replace(/-/g, ''), 'hex')); }
  done(): Buffer { return Buffer.concat(this.parts); }
}

/** A size-prefixed request. Header v1 (client id, classic string) or v2 (v1 + tagged fields). */
export function request(apiKey: number, version: number, corr: number, clientId: string | null, body: Buffer, flexibleHeader: boolean): Buffer {
  const h = new W().i16(apiKey).i16(version).i32(corr).str(clientId);
  if (flexibleHeader) h.tag0();
  const payload = Buffer.concat([h.done(), body]);
  return Buffer.concat([new W().i32(payload.length).done(), payload]);
}

/** A size-prefixed response. Header v0 (correlation id) or v1 (+ tagged fields). */
export function response(corr: number, body: Buffer, flexibleHeader: boolean): Buffer {
  const h = new W().i32(corr);
  if (flexibleHeader) h.tag0();
  const payload = Buffer.concat([h.done(), body]);
  return Buffer.concat([new W().i32(payload.length).done(), payload]);
}

/** A record batch (magic 2) header with `count` records and `bodyLen` opaque record bytes. The
 *  decoder never reads records, so their bytes are filler; CRC is not checked by it either. */
export function recordBatch(baseOffset: number, count: number, codec: number, bodyLen: number, control = false): Buffer {
  const body = Buffer.alloc(bodyLen, 0x5a);
  const afterLength = new W()
    .i32(0)                        // partition leader epoch
    .i8(2)                         // magic
    .u32(0)                        // crc
    .i16(codec | (control ? 0x20 : 0))
    .i32(count - 1)                // last offset delta
    .i64(0).i64(0)                 // timestamps
    .i64(-1).i16(-1).i32(-1)       // producer id, epoch, base sequence
    .i32(count)
    .raw(body)
    .done();
  return new W().i64(baseOffset).i32(afterLength.length).raw(afterLength).done();
}

/** Encodes a request with kafkajs' own protocol code (protocol/requests/<api>/v<N>/request.js). */
export async function kafkajs(api: string, version: number, args: Record<string, unknown>, corr: number, clientId: string): Promise<Buffer> {
  const root = path.dirname(require.resolve('kafkajs/package.json'));
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const build = require(path.join(root, 'src/protocol/requests', api, `v${version}`, 'request.js'));
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const frame = require(path.join(root, 'src/protocol/request.js'));
  const enc = await frame({ correlationId: corr, clientId, request: build(args) });
  return Buffer.from(enc.buffer);
}

export const REQ = 0;
export const RESP = 1;

/** Feeds one request then its response, whole. */
export function exchange(h: Harness, stream: number, req: Buffer, resp: Buffer | null, t0 = 1000n): void {
  h.inst.feed(stream, REQ, req, t0);
  if (resp) h.inst.feed(stream, RESP, resp, t0 + 500n);
}

/** Base attributes every Kafka record carries. */
export function base(apiKey: number, version: number, corr: number, name: string): Record<string, unknown> {
  return {
    'network.protocol.name': 'kafka',
    'messaging.system': 'kafka',
    'messaging.operation.name': name,
    'kafka.api_key': apiKey,
    'kafka.api_version': version,
    'kafka.correlation_id': corr,
  };
}
