// A protobuf wire-format writer for the OTLP encoders that do not go through protobufjs
// (traces-proto.ts, logs-proto.ts, metrics-proto.ts, profiles-proto.ts): one growing buffer, length prefixes patched in place.

export const VARINT = 0;
export const I64 = 1;
export const LEN = 2;

export class Writer {
  buf: Buffer;
  pos = 0;
  /** Open length-delimited fields: where each one's length goes. */
  private open: number[] = [];

  constructor(initialBytes = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  ensure(n: number): void {
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
    const b = this.buf;
    let p = this.pos;
    while (v >= 0x80) {
      b[p++] = (v & 0x7f) | 0x80;
      v = v >= 0x80000000 ? Math.floor(v / 128) : v >>> 7;
    }
    b[p++] = v;
    this.pos = p;
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

  /** Starts a length-delimited field; end() patches its length in (no closure per message). */
  begin(field: number): void {
    this.tag(field, LEN);
    this.ensure(1);
    this.open.push(this.pos);
    // One byte for the length: most messages (attributes, data points) are under 128 bytes and
    // then need no move; a longer one is shifted forward once in end().
    this.pos += 1;
  }

  end(): void {
    const lenAt = this.open.pop() as number;
    const start = lenAt + 1;
    const len = this.pos - start;
    if (len < 0x80) {
      this.buf[lenAt] = len;
      return;
    }
    const extra = (len < 0x4000 ? 2 : len < 0x200000 ? 3 : len < 0x10000000 ? 4 : 5) - 1;
    this.ensure(extra);
    this.buf.copyWithin(start + extra, start, this.pos);
    this.pos = lenAt;
    this.uvarint(len);
    this.pos = start + extra + len;
  }

  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

const TWO32 = 4294967296;

/** Little-endian 64-bit from two 32-bit halves (fixed64 / sfixed64 / double bodies). */
function put64(w: Writer, lo: number, hi: number): void {
  w.ensure(8);
  // Byte stores: Buffer#writeUInt32LE's checks cost more than the store (two per timestamp,
  // two or three timestamps per item).
  const b = w.buf;
  const p = w.pos;
  b[p] = lo;
  b[p + 1] = lo >>> 8;
  b[p + 2] = lo >>> 16;
  b[p + 3] = lo >>> 24;
  b[p + 4] = hi;
  b[p + 5] = hi >>> 8;
  b[p + 6] = hi >>> 16;
  b[p + 7] = hi >>> 24;
  w.pos = p + 8;
}

/** A string field; proto3 leaves empty strings out. */
export function writeString(w: Writer, field: number, s: string | undefined): void {
  if (!s) return;
  w.tag(field, LEN);
  writeStringBody(w, s);
}

/** Length and UTF-8 bytes of a string (no tag): `always` fields and repeated ones. */
export function writeStringBody(w: Writer, s: string): void {
  const n0 = s.length;
  // Short ASCII (keys, routes, methods): a JS loop beats a call into Buffer.write by far.
  if (n0 < 0x80) {
    w.ensure(1 + n0);
    const b = w.buf;
    const p = w.pos + 1;
    let i = 0;
    for (; i < n0; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      b[p + i] = c;
    }
    if (i === n0) {
      b[w.pos] = n0;
      w.pos = p + n0;
      return;
    }
  }
  // Short strings: one pass (the UTF-8 length fits the one-byte prefix), no byteLength walk.
  if (n0 * 3 < 0x80) {
    w.ensure(1 + s.length * 3);
    const n = w.buf.write(s, w.pos + 1, 'utf8');
    w.buf[w.pos] = n;
    w.pos += 1 + n;
    return;
  }
  const n = Buffer.byteLength(s);
  w.uvarint(n);
  w.ensure(n);
  w.buf.write(s, w.pos, n, 'utf8');
  w.pos += n;
}

export function writeDouble(w: Writer, field: number, v: number): void {
  w.tag(field, I64);
  w.ensure(8);
  w.buf.writeDoubleLE(v, w.pos);
  w.pos += 8;
}

/**
 * fixed64 nanoseconds of an HrTime [seconds, nanoseconds] without BigInt: the seconds are split at
 * 2^16 so every product stays exact in a double.
 */
export function writeHrTimeBody(w: Writer, sec: number, nsec: number): void {
  const sh = Math.floor(sec / 65536);
  const sl = sec - sh * 65536;
  const a = sh * 1e9; // total = a·2^16 + b
  const b = sl * 1e9 + Math.trunc(nsec);
  let lo = (a % 65536) * 65536 + (b % TWO32);
  let hi = Math.floor(a / 65536) + Math.floor(b / TWO32);
  if (lo >= TWO32) {
    lo -= TWO32;
    hi++;
  }
  put64(w, lo, hi);
}

/** A 64-bit two's complement integer body (fixed64 / sfixed64) of any safe integer. */
export function writeInt64Body(w: Writer, v: number): void {
  const t = Math.trunc(v);
  if (t >= 0 && t <= Number.MAX_SAFE_INTEGER) put64(w, t % TWO32, Math.floor(t / TWO32));
  else {
    w.ensure(8);
    w.buf.writeBigUInt64LE(BigInt.asUintN(64, BigInt(Number.isFinite(t) ? t : 0)), w.pos);
    w.pos += 8;
  }
}

/** Signed varint (int64) of a number: non-negative ones short, negative ones ten bytes. */
export function writeInt64Varint(w: Writer, v: number): void {
  if (v >= 0 && v <= Number.MAX_SAFE_INTEGER) w.uvarint(v);
  else w.varint64(BigInt(Number.isFinite(v) ? Math.trunc(v) : 0));
}

// Hex digit values by char code (0xff: not a digit), for ids decoded without a call into Buffer.
const HEX = new Uint8Array(128).fill(0xff);
for (let i = 0; i < 10; i++) HEX[48 + i] = i;
for (let i = 0; i < 6; i++) HEX[97 + i] = HEX[65 + i] = 10 + i;
// Byte values by pairs of char codes (index hi·128 + lo; 0xffff: not two hex digits): one lookup
// per byte instead of two (32 KiB, stays in cache while a batch is encoded).
const HEX_PAIR = new Uint16Array(128 * 128).fill(0xffff);
for (let a = 0; a < 128; a++) for (let b = 0; b < 128; b++) if ((HEX[a] | HEX[b]) !== 0xff) HEX_PAIR[a * 128 + b] = (HEX[a] << 4) | HEX[b];

/** Bytes from a hex string (trace and span ids). */
export function writeHexBytes(w: Writer, field: number, hex: string): void {
  if (!hex) return;
  const n = hex.length >> 1;
  w.tag(field, LEN);
  w.uvarint(n);
  w.ensure(n);
  const b = w.buf;
  const p = w.pos;
  // 16 and 8 bytes per id, three ids a span: a JS loop is cheaper than Buffer.write's native call.
  for (let i = 0; i < n; i++) {
    const v = HEX_PAIR[((hex.charCodeAt(2 * i) & 0x7f) << 7) | (hex.charCodeAt(2 * i + 1) & 0x7f)];
    if (v === 0xffff) {
      // Not hex: what Buffer's hex decoding does (stop at the first bad pair).
      w.pos = p;
      const m = b.write(hex, p, n, 'hex');
      b.fill(0, p + m, p + n);
      w.pos = p + n;
      return;
    }
    b[p + i] = v;
  }
  w.pos = p + n;
}

/** A fixed32 field (span flags); proto3 leaves zero out. */
export function writeFixed32(w: Writer, field: number, v: number): void {
  if (!v) return;
  w.tag(field, 5);
  w.ensure(4);
  w.buf.writeUInt32LE(v >>> 0, w.pos);
  w.pos += 4;
}
