// Shared by the http2 tests: frame builders and a decoder of our records into the form tshark
// prints (header name/value lists, :method/:path/:authority/:status, gRPC message lengths).
import * as assert from 'node:assert/strict';
import { Harness } from '../helpers/decoder';
import { DecodedRecord } from '../../host/src/decoders/records';
import { KIND_EXCHANGE, KIND_EVENT } from '../../decoders/abi/abi';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const hex = (s: string): Buffer => Buffer.from(s.replace(/[^0-9a-fA-F]/g, ''), 'hex');

/** One HTTP/2 frame. */
export function frame(type: number, flags: number, sid: number, payload: Buffer | Uint8Array = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(sid >>> 0, 5);
  return Buffer.concat([h, Buffer.from(payload)]);
}

export const T = { DATA: 0, HEADERS: 1, PRIORITY: 2, RST: 3, SETTINGS: 4, PUSH: 5, PING: 6, GOAWAY: 7, WINDOW: 8, CONT: 9 };
export const F = { END_STREAM: 1, ACK: 1, END_HEADERS: 4, PADDED: 8, PRIORITY: 0x20 };

export function settings(pairs: Array<[number, number]> = []): Buffer {
  const b = Buffer.alloc(pairs.length * 6);
  pairs.forEach(([id, v], i) => { b.writeUInt16BE(id, i * 6); b.writeUInt32BE(v >>> 0, i * 6 + 2); });
  return frame(T.SETTINGS, 0, 0, b);
}

/** HPACK integer with an N-bit prefix (RFC 7541 §5.1), first byte carrying `hi` bits. */
export function hpInt(v: number, bits: number, hi: number): Buffer {
  const max = (1 << bits) - 1;
  if (v < max) return Buffer.from([hi | v]);
  const out = [hi | max];
  v -= max;
  while (v >= 128) { out.push((v & 0x7f) | 0x80); v = Math.floor(v / 128); }
  out.push(v);
  return Buffer.from(out);
}
function hpStr(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  return Buffer.concat([hpInt(b.length, 7, 0), b]);
}
/** Literal without indexing, new name. */
export const lit = (name: string, value: string | Buffer): Buffer => Buffer.concat([Buffer.from([0x00]), hpStr(name), hpStr(value)]);
/** Literal with incremental indexing, new name. */
export const litInc = (name: string, value: string | Buffer): Buffer => Buffer.concat([Buffer.from([0x40]), hpStr(name), hpStr(value)]);
/** Literal with incremental indexing, indexed name. */
export const litIncIdx = (idx: number, value: string): Buffer => Buffer.concat([hpInt(idx, 6, 0x40), hpStr(value)]);
/** Literal without indexing, indexed name. */
export const litIdx = (idx: number, value: string): Buffer => Buffer.concat([hpInt(idx, 4, 0x00), hpStr(value)]);
/** Indexed field. */
export const idx = (i: number): Buffer => hpInt(i, 7, 0x80);
/** Dynamic table size update. */
export const sizeUpdate = (v: number): Buffer => hpInt(v, 5, 0x20);

export function headers(sid: number, block: Buffer, endStream = false, endHeaders = true): Buffer {
  return frame(T.HEADERS, (endStream ? F.END_STREAM : 0) | (endHeaders ? F.END_HEADERS : 0), sid, block);
}
export function data(sid: number, payload: Buffer, endStream = false): Buffer {
  return frame(T.DATA, endStream ? F.END_STREAM : 0, sid, payload);
}
export function rst(sid: number, code: number): Buffer {
  const b = Buffer.alloc(4); b.writeUInt32BE(code); return frame(T.RST, 0, sid, b);
}
export function grpcMsg(len: number, compressed = false): Buffer {
  const b = Buffer.alloc(5 + len, 0x61);
  b[0] = compressed ? 1 : 0;
  b.writeUInt32BE(len, 1);
  return b;
}

/** A request block: :method, :scheme, :path, :authority (literals, nothing indexed). */
export function reqBlock(method: string, path: string, authority: string, extra: Array<[string, string]> = []): Buffer {
  return Buffer.concat([lit(':method', method), lit(':scheme', 'http'), lit(':path', path), lit(':authority', authority),
    ...extra.map(([n, v]) => lit(n, v))]);
}
export function respBlock(status: string, extra: Array<[string, string]> = []): Buffer {
  return Buffer.concat([lit(':status', status), ...extra.map(([n, v]) => lit(n, v))]);
}

export const exchanges = (h: Harness): DecodedRecord[] => h.records.filter((r) => r.kind === KIND_EXCHANGE);
export const events = (h: Harness): DecodedRecord[] => h.records.filter((r) => r.kind === KIND_EVENT);

/** A flat [name, value, name, value…] attribute as pairs. */
export function pairs(rec: DecodedRecord, attr: string): Array<[string, string]> {
  const v = rec.attributes[attr];
  if (!Array.isArray(v)) return [];
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < v.length; i += 2) out.push([v[i], v[i + 1]]);
  return out;
}

/** One HTTP/2 stream as tshark shows it. */
export interface TsharkView {
  streamId: number;
  /** Every header block of the stream (request, response, trailers, pushed request) as name/value pairs. */
  blocks: Array<Array<[string, string]>>;
  method?: string;
  path?: string;
  authority?: string;
  status?: string;
  grpcLengths: number[];
}

/** Our records in tshark-comparable form (http2.header.name/value, http2.headers.*, grpc.message_length). */
export function toTshark(recs: DecodedRecord[]): TsharkView[] {
  const out: TsharkView[] = [];
  for (const r of recs) {
    if (r.kind !== KIND_EXCHANGE) continue;
    const a = r.attributes;
    const blocks = ['telegen.http2.request.headers', 'telegen.http2.response.headers', 'telegen.http2.request.trailers',
      'telegen.http2.response.trailers', 'telegen.http2.response.informational'].map((k) => pairs(r, k)).filter((b) => b.length > 0);
    const first = (b: Array<[string, string]> | undefined, n: string): string | undefined => b?.find(([k]) => k === n)?.[1];
    const req = pairs(r, 'telegen.http2.request.headers');
    const resp = pairs(r, 'telegen.http2.response.headers');
    const lens = [...((a['telegen.rpc.request.message_lengths'] as string[]) ?? []), ...((a['telegen.rpc.response.message_lengths'] as string[]) ?? [])].map(Number);
    out.push({
      streamId: Number(a['telegen.http2.stream_id']),
      blocks,
      method: first(req, ':method'),
      path: first(req, ':path'),
      authority: first(req, ':authority'),
      status: first(resp, ':status'),
      grpcLengths: lens,
    });
  }
  return out;
}

/** Feeds client and server byte arrays in alternation (request first). */
export function feedConversation(h: Harness, stream: number, parts: Array<[0 | 1, Buffer]>, ts0 = 1_000_000n): void {
  let ts = ts0;
  for (const [dir, b] of parts) { h.inst.feed(stream, dir, b, ts); ts += 1000n; }
}

/** One hint: struct tg_tls_h2_field (bpf/include/tls.h) + name + value. */
export function hint(sid: number, block: 0 | 1, name: string, value: string): Buffer {
  const n = Buffer.from(name);
  const v = Buffer.from(value);
  const h = Buffer.alloc(12);
  h.writeUInt32LE(sid, 0);
  h[4] = block;
  h.writeUInt16LE(n.length, 6);
  h.writeUInt32LE(v.length, 8);
  return Buffer.concat([h, n, v]);
}

/** Hands the fields to stream `sid`'s decoder as the TLS tracer would (each accepted). */
export function hints(h: Harness, dir: number, sid: number, block: 0 | 1, fields: Array<[string, string]>, ts: bigint): void {
  for (const [n, v] of fields) assert.equal(h.inst.hint(1, dir, hint(sid, block, n, v), ts), 'ok');
}
