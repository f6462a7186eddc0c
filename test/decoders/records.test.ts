// The host's record reader on records laid out as decoders/abi writes them: records whose field
// bytes repeat share one attribute object, and are read exactly as a fresh read of their bytes.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { RecordReader, RecordError, memView, ownAttributes } from '../../host/src/decoders/records';
import { KIND_EXCHANGE, KIND_EVENT, T_STR, T_INT, T_FLOAT, T_SET, T_STRS } from '../../decoders/abi/abi';

type Field = [id: number, type: number, value: Buffer];

function field(id: number, type: number, value: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16LE(id, 0);
  h[2] = type;
  h.writeUInt32LE(value.length, 4);
  return Buffer.concat([h, value]);
}
function f64(v: number): Buffer { const b = Buffer.alloc(8); b.writeDoubleLE(v); return b; }
function i64(v: number): Buffer { const b = Buffer.alloc(8); b.writeBigInt64LE(BigInt(v)); return b; }

function record(kind: number, stream: number, ts: bigint, fields: Field[]): Buffer {
  const body = Buffer.concat(fields.map(([id, type, v]) => field(id, type, v)));
  const h = Buffer.alloc(32);
  h.writeUInt16LE(kind, 0);
  h.writeUInt32LE(32 + body.length, 4);
  h.writeUInt32LE(stream, 8);
  h.writeBigUInt64LE(ts, 16);
  h.writeBigUInt64LE(ts + 5n, 24);
  return Buffer.concat([h, body]);
}

// Field bytes with an 8-byte string value that reads as a NaN double, a float 0 (+0 / -0 differ
// in one bit only), a value that ends off a word, and a tail of less than a word (77 bytes).
const FIELDS: Field[] = [
  [1, T_STR, Buffer.from([1, 0, 0, 0, 0, 0, 0xf8, 0x7f])],
  [6, T_FLOAT, f64(0)],
  [100, T_STR, Buffer.from('postgresql')],
  [106, T_INT, i64(2)],
  [102, T_STR, Buffer.from('SEL')],
];

/** A memory (8-aligned, as a module's) with `rec` at an 8-aligned offset. */
function place(mem: Uint8Array, rec: Buffer, at = 64): [number, number] {
  mem.fill(0xee);
  mem.set(rec, at);
  return [at, rec.length];
}

test('records of repeated field bytes share one frozen attribute object, equal to a fresh read; any one-byte change is another set', () => {
  const mem = new Uint8Array(new ArrayBuffer(4096));
  const mv = memView(mem);
  const reader = new RecordReader();
  const base = record(KIND_EXCHANGE, 7, 1000n, FIELDS);
  const fresh = (rec: Buffer) => { const [p, n] = place(mem, rec); return new RecordReader().decode(mv, p, n); };
  const read = (rec: Buffer) => { const [p, n] = place(mem, rec); return reader.decode(mv, p, n); };
  const want = fresh(base);
  // Seen once: remembered; twice: templated; from then on the template itself.
  const seen = [read(base), read(base), read(base), read(base)];
  for (const r of seen) assert.deepEqual(r, want);
  assert.equal(seen[2].attributes, seen[3].attributes, 'a repeated set is shared');
  assert.ok(Object.isFrozen(seen[3].attributes));
  assert.ok(!Object.isFrozen(seen[0].attributes), 'a record read from its bytes owns its attributes');

  // Every bit flip of a value byte (the ±0 and NaN-payload words included) is read as its own.
  let checked = 0;
  for (let off = 32, k = 0; k < FIELDS.length; k++) {
    const len = 8 + FIELDS[k][2].length;
    for (let i = off + 8; i < off + len; i++) {
      for (const bit of [0x01, 0x80]) {
        const other = Buffer.from(base);
        other[i] ^= bit;
        const expect = fresh(other);
        for (let rep = 0; rep < 3; rep++) {
          assert.deepEqual(read(other), expect, `byte ${i} ^ ${bit}, read ${rep}`);
          assert.deepEqual(read(base), want, `base after byte ${i} ^ ${bit}`);
        }
        checked++;
      }
    }
    off += len;
  }
  assert.equal(checked, 2 * (FIELDS.reduce((a, f) => a + f[2].length, 0)));

  // Header fields (stream, times) are the record's own on a shared set.
  const later = read(record(KIND_EXCHANGE, 9, 5000n, FIELDS));
  assert.equal(later.stream, 9);
  assert.equal(later.tsStart, 5000n);
  assert.equal(later.tsEnd, 5005n);
  assert.equal(later.attributes, read(base).attributes);

  // Other kinds get their own copy (the router edits an upgrade's attributes).
  const event = read(record(KIND_EVENT, 7, 1000n, FIELDS));
  assert.ok(!Object.isFrozen(event.attributes));
  assert.deepEqual(event.attributes, want.attributes);
});

test('field bytes equal as doubles but not as bytes (+0 / -0) are different sets, also in one slot', () => {
  // Two float zeros whose signs both flip: the slot hash cancels the two flipped bits, so the
  // second set is compared with the first's key, 8 bytes at a time as doubles (+0 === -0).
  const mem = new Uint8Array(new ArrayBuffer(4096));
  const mv = memView(mem);
  const reader = new RecordReader();
  const read = (rec: Buffer) => reader.decode(mv, ...place(mem, rec));
  const pos = record(KIND_EXCHANGE, 1, 1n, [[6, T_FLOAT, f64(0)], [7, T_FLOAT, f64(0)], [100, T_STR, Buffer.from('postgresql')]]);
  const neg = record(KIND_EXCHANGE, 1, 1n, [[6, T_FLOAT, f64(-0)], [7, T_FLOAT, f64(-0)], [100, T_STR, Buffer.from('postgresql')]]);
  for (let i = 0; i < 3; i++) assert.ok(Object.is(read(pos).attributes['telegen.request.size'], 0));
  for (let i = 0; i < 3; i++) {
    const r = read(neg);
    assert.ok(Object.is(r.attributes['telegen.request.size'], -0), `read ${i}`);
    assert.ok(Object.is(r.attributes['telegen.response.size'], -0), `read ${i}`);
  }
  assert.ok(Object.is(read(pos).attributes['telegen.request.size'], 0));
});

test('ownAttributes: a shared set is copied (equal, writable), a record\'s own object is itself', () => {
  const mem = new Uint8Array(new ArrayBuffer(4096));
  const mv = memView(mem);
  const reader = new RecordReader();
  const rec = record(KIND_EXCHANGE, 1, 1n, FIELDS);
  let r = reader.decode(mv, ...place(mem, rec));
  assert.equal(ownAttributes(r.attributes), r.attributes);
  for (let i = 0; i < 3; i++) r = reader.decode(mv, ...place(mem, rec));
  const own = ownAttributes(r.attributes);
  assert.notEqual(own, r.attributes);
  assert.deepEqual(own, r.attributes);
  own['server.address'] = '10.0.0.1';
  assert.equal(r.attributes['server.address'], undefined);
  assert.throws(() => { (r.attributes as Record<string, unknown>)['x'] = 1; }, TypeError);
});

test('field sets (T_SET): a definition reads as its fields, a use gets them without field bytes; unknown, misplaced or forgotten sets are malformed records', () => {
  const mem = new Uint8Array(new ArrayBuffer(4096));
  const mv = memView(mem);
  const reader = new RecordReader();
  const read = (rec: Buffer) => { const [p, n] = place(mem, rec); return reader.decode(mv, p, n); };
  const mark = (id: number): Field => [id, T_SET, Buffer.alloc(0)];
  const want = (() => { const [p, n] = place(mem, record(KIND_EXCHANGE, 7, 1000n, FIELDS)); return new RecordReader().decode(mv, p, n); })();
  const def = read(record(KIND_EXCHANGE, 7, 1000n, [mark(300), ...FIELDS]));
  assert.deepEqual(def, want);
  const uses = [read(record(KIND_EXCHANGE, 7, 1000n, [mark(300)])), read(record(KIND_EXCHANGE, 8, 2000n, [mark(300)]))];
  assert.deepEqual(uses[0], want);
  assert.deepEqual([uses[1].stream, uses[1].tsStart, uses[1].tsEnd], [8, 2000n, 2005n], 'the header is the use\'s own');
  assert.equal(uses[0].attributes, uses[1].attributes, 'an exchange shares the frozen set');
  assert.ok(Object.isFrozen(uses[0].attributes));
  const ev = read(record(KIND_EVENT, 7, 1000n, [mark(300)]));
  assert.deepEqual(ev.attributes, want.attributes);
  assert.ok(!Object.isFrozen(ev.attributes), 'another kind gets its own copy');
  // A redefinition replaces the set.
  read(record(KIND_EXCHANGE, 7, 1000n, [mark(300), [100, T_STR, Buffer.from('other')]]));
  assert.deepEqual(read(record(KIND_EXCHANGE, 7, 1000n, [mark(300)])).attributes, { 'db.system.name': 'other' });
  assert.throws(() => read(record(KIND_EXCHANGE, 7, 1000n, [mark(301)])), RecordError, 'used before defined');
  assert.throws(() => read(record(KIND_EXCHANGE, 7, 1000n, [[300, T_SET, Buffer.from('x')]])), RecordError, 'a mark with a value');
  assert.throws(() => read(record(KIND_EXCHANGE, 7, 1000n, [...FIELDS, mark(300)])), RecordError, 'a mark after other fields');
  // Sets live as long as the module: bounded in number and size.
  assert.throws(() => read(record(KIND_EXCHANGE, 7, 1000n, [mark(1024), ...FIELDS])), RecordError, 'an id past the table');
  assert.throws(() => read(record(KIND_EXCHANGE, 7, 1000n, [mark(303), [100, T_STR, Buffer.alloc(1024, 0x61)]])), RecordError, 'more than 1 KiB of fields');
  // A malformed definition leaves no set behind; a list cannot be shared.
  assert.throws(() => read(record(KIND_EXCHANGE, 7, 1000n, [mark(300), [9999, T_STR, Buffer.from('x')]])), RecordError);
  assert.throws(() => read(record(KIND_EXCHANGE, 7, 1000n, [mark(300)])), RecordError);
  const lenPrefixed = Buffer.concat([Buffer.from([1, 0, 0, 0]), Buffer.from('a')]);
  read(record(KIND_EXCHANGE, 7, 1000n, [mark(302), [100, T_STRS, lenPrefixed]]));
  assert.throws(() => read(record(KIND_EXCHANGE, 7, 1000n, [mark(302)])), RecordError);
  // A fresh module instance has no sets: the host forgets them.
  read(record(KIND_EXCHANGE, 7, 1000n, [mark(300), ...FIELDS]));
  reader.forgetSets();
  assert.throws(() => read(record(KIND_EXCHANGE, 7, 1000n, [mark(300)])), RecordError);
});
