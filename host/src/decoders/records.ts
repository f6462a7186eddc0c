// Reads records a decoder hands to telegen.emit(ptr, len) (layout: decoders/abi/abi.ts).
import {
  RECORD_HEADER_SIZE, FIELD_HEADER_SIZE, T_STR, T_INT, T_FLOAT, T_BOOL, T_STRS, T_SET, ATTR_PRIVATE_BASE, KIND_EXCHANGE,
} from '../../../decoders/abi/abi';
import attributesJson from '../../../decoders/abi/attributes.json';

export type AttrValue = string | number | boolean | string[];

export interface DecodedRecord {
  kind: number;
  flags: number;
  stream: number;
  tsStart: bigint;
  tsEnd: bigint;
  /** Frozen when shared with other records of the same field bytes (a template, below): a
   *  consumer that adds to it takes ownAttributes() first. */
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

export class RecordError extends Error {}

/** A decoder's memory as seen by the record reader; rebuilt only when the memory grows. `i32`,
 *  `f64`: the same bytes as words (records start 8-aligned in every module built on decoders/abi). */
export interface MemView { buf: Buffer; dv: DataView; i32?: Int32Array; u64?: BigUint64Array; f64?: Float64Array }

// Records are little-endian (Wasm memory); a BigUint64Array reads in the host's byte order.
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function memView(mem: Uint8Array): MemView {
  return {
    buf: Buffer.from(mem.buffer, mem.byteOffset, mem.byteLength),
    dv: new DataView(mem.buffer, mem.byteOffset, mem.byteLength),
    i32: mem.byteOffset % 4 === 0 ? new Int32Array(mem.buffer, mem.byteOffset, mem.byteLength >> 2) : undefined,
    u64: mem.byteOffset % 8 === 0 && LITTLE_ENDIAN ? new BigUint64Array(mem.buffer, mem.byteOffset, mem.byteLength >> 3) : undefined,
    f64: mem.byteOffset % 8 === 0 ? new Float64Array(mem.buffer, mem.byteOffset, mem.byteLength >> 3) : undefined,
  };
}

// Buffer's own UTF-8 decoder without toString()'s encoding dispatch (same result). Measured:
// interning repeated values in a hash table cost more than decoding them (DNS bench, 2x slower);
// the direct-mapped cache below hashes nothing but the length and four bytes.
const utf8Slice: (this: Buffer, start: number, end: number) => string =
  (Buffer.prototype as unknown as { utf8Slice?: (s: number, e: number) => string }).utf8Slice ??
  function (this: Buffer, start: number, end: number) { return this.toString('utf8', start, end); };

/** Attribute names by id, the decoder's private ids (meta().attributes) included. */
export function attributeNames(privateNames?: Record<string, string>): Array<string | undefined> {
  const out: Array<string | undefined> = ATTRIBUTE_NAMES.slice();
  for (const [id, name] of Object.entries(privateNames ?? {})) {
    const n = Number(id);
    if (String(n) === id && n >= ATTR_PRIVATE_BASE && n <= 0xffff && typeof name === 'string') out[n] = name;
  }
  return out;
}

// Short values repeat from record to record (db.system.name, command tags, rcodes, record types):
// a direct-mapped table of the last ASCII strings seen, slot chosen by attribute id, length and
// four of the bytes, hit verified byte by byte. Checking a short string in JS costs less
// than the call into Buffer's decoder and the string it allocates.
const VALUE_SLOTS = 1024;
const VALUE_MAX = 48;

/** Value of the `n` bytes at `v` as a string, from `cache` when the same ASCII bytes were seen. */
function shortValue(buf: Buffer, v: number, n: number, id: number, cache: Array<string | undefined>): string {
  if (n === 0) return '';
  const slot = (id * 31 + n * 7 + buf[v] * 5 + buf[v + (n >> 1)] * 3 + buf[v + (n >> 2)] * 11 + buf[v + n - 1]) & (VALUE_SLOTS - 1);
  const c = cache[slot];
  if (c !== undefined && c.length === n) {
    // From the end: values that share a slot mostly share a prefix and differ in their last
    // bytes (an id in a URL path, a counter in a query), so a miss is found early.
    let i = n - 1;
    while (i >= 0 && c.charCodeAt(i) === buf[v + i]) i--;
    if (i < 0) return c;
  }
  const s = utf8Slice.call(buf, v, v + n);
  // Equal lengths: no multi-byte sequence; a replacement character never equals a byte, so a
  // later hit means the same ASCII bytes.
  if (s.length === n) cache[slot] = s;
  return s;
}

// The attributes object of a record: built by a constructor, so V8 gives it in-object room for the
// fields that follow (a literal `{}` has 4 and spills the rest to a growing store: DNS records carry
// 14). Same prototype as a literal: to any consumer it is a plain object.
//
// Room for what comes after the decoder's fields: a span's builder adds up to ~14 (addresses,
// ports, transport, route, scheme, process, thread; pipeline/spans.ts) and correlation one or two.
// V8 sizes a constructor's objects by the `this.x =` stores its source holds (then trims, after a
// few objects, to what they used): SPAN_ROOM stores that never run (the guard is never true) make
// that room in-object. Without it (literals) every span's attributes spilled its 12-13 added
// properties into an out-of-object store that V8 grows 3 slots at a time, a new store each time:
// on a replay of wrk's GET /hello at 1k req/s, 160 bytes a span more allocated in all.
const SPAN_ROOM = 16;
const ROOM_STORES = `if (room === null) { ${Array.from({ length: SPAN_ROOM }, (_, i) => `this.room${i} = 0;`).join(' ')} }`;
/** A constructor (Object.prototype: to any consumer a plain object) whose body is `body` (reading
 *  its argument `v`), plus the never-run room stores. */
function roomyConstructor(body: string): { new(v?: unknown): Record<string, AttrValue> } {
  const F = new Function('v', 'room', `${body} ${ROOM_STORES}`) as unknown as { new(v?: unknown): Record<string, AttrValue>; prototype: object };
  F.prototype = Object.prototype;
  return F;
}
const Attributes = roomyConstructor('/* filled by readRecord */');

// Whole attribute sets repeat as well: a connection's exchanges of one statement differ in their
// header (times, stream) but often not in one field byte (same query, tag and row count). A
// direct-mapped table keyed by the field bytes (compared word by word) keeps a template of each
// set seen twice. A hit on an exchange hands out the template itself, frozen and shared by every
// record of those bytes: most exchanges never become a span (responses without their request,
// dropped, sampled out) and a span's builder copies it only then (ownAttributes). Other kinds get
// a copy (the router edits an upgrade's). A set is remembered only on its second sighting; a
// reader whose sets rarely repeat (fewer than a quarter of 256 looked up) stops looking for a
// while, so unique records (e.g. SQL text with literals) pay the lookups of one window only.
const SET_SLOTS = 256;
const SET_MAX = 1024; // field bytes
const SET_WINDOW = 256;
const SET_MIN_HITS = 64;
const SET_PAUSE = 4096; // records decoded without a lookup after a window of too few hits
const SET_IDS = 1024; // field sets a module may define (T_SET ids), each of at most SET_MAX bytes

class FieldSets {
  /** The field bytes of each slot's set, as 8-byte words and (same buffer) as 4-byte ones. */
  readonly keys: Array<Float64Array | undefined> = new Array<Float64Array | undefined>(SET_SLOTS).fill(undefined);
  readonly keyWords: Array<Int32Array | undefined> = new Array<Int32Array | undefined>(SET_SLOTS).fill(undefined);
  readonly lens: Int32Array = new Int32Array(SET_SLOTS);
  /** A templated set was used since the slot last missed: a miss spares it once (sets that repeat
   *  are not evicted by ones seen once). */
  readonly used: Uint8Array = new Uint8Array(SET_SLOTS);
  /** undefined: seen once; null: never templated (a string list: its array would be shared). */
  readonly templates: Array<Record<string, AttrValue> | null | undefined> = new Array<Record<string, AttrValue> | null | undefined>(SET_SLOTS).fill(undefined);
  /** The copier of each template (by its attribute names, see copierOf). */
  readonly copiers: Array<Copier | undefined> = new Array<Copier | undefined>(SET_SLOTS).fill(undefined);
}

// A copy of a template (a span's, or a record of another kind): a constructor storing the
// template's names as constant keys (a literal's boilerplate was ~19 ns for 5-9 fields, measured
// stand-alone, but has no room for a span's additions: roomyConstructor above) where
// Object.assign defines each property (~78 ns) and a spread's site goes megamorphic (~93 ns). One
// copier per list of names (a decoder has a handful), compiled once, shared by every reader; the
// names are JSON-quoted, so no name (a decoder's private ones included) is read as code. Past
// COPIERS_MAX lists, Object.assign.
type Copier = (t: Record<string, AttrValue>) => Record<string, AttrValue>;
const COPIERS_MAX = 512;
const copiers = new Map<string, Copier>();
function assignCopy(t: Record<string, AttrValue>): Record<string, AttrValue> { return Object.assign(new Attributes(), t); }
function copierOf(t: Record<string, AttrValue>): Copier {
  const names = Object.keys(t);
  const key = JSON.stringify(names);
  let c = copiers.get(key);
  if (c !== undefined) return c;
  if (copiers.size >= COPIERS_MAX) return assignCopy;
  if (names.includes('__proto__')) return assignCopy;
  const F = roomyConstructor(names.map((n) => `this[${JSON.stringify(n)}] = v[${JSON.stringify(n)}];`).join(' '));
  c = (t) => new F(t);
  copiers.set(key, c);
  return c;
}

/** The copier of each template handed out (frozen): ownAttributes() copies with it. */
const templateCopiers = new WeakMap<object, Copier>();

/** The record's attributes as an object the caller may add to: `a` itself when the record has its
 *  own, else (a shared template, frozen) a copy. */
export function ownAttributes(a: Record<string, AttrValue>): Record<string, AttrValue> {
  if (!Object.isFrozen(a)) return a;
  return (templateCopiers.get(a) ?? assignCopy)(a);
}

/** Slot of the field bytes [v, v + n) (v 8-aligned): a multiplicative hash of every whole word
 *  (sampled words collided: sets of one length differ anywhere, e.g. "UPDATE 1" / "DELETE 1"), in
 *  two lanes (half the chain of dependent multiplies). */
function setSlot(w: Int32Array, v: number, n: number): number {
  let a = n, b = 0x27d4eb2f;
  const e = (v >> 2) + ((n >> 3) << 1);
  for (let i = v >> 2; i < e; i += 2) {
    a = Math.imul(a ^ w[i], 0x9e3779b1);
    b = Math.imul(b ^ w[i + 1], 0x85ebca6b);
  }
  if ((n & 4) !== 0) a = Math.imul(a ^ w[e], 0x9e3779b1);
  return (Math.imul(a ^ (b >>> 13) ^ b, 0x9e3779b1) >>> 24) & (SET_SLOTS - 1);
}

/** Whether the stored key equals the field bytes [v, v + n), 8 bytes per step: doubles that
 *  compare equal have equal bits except +0 / -0, unequal ones may still be equal bits (NaN): both
 *  cases are settled by the two words. */
function sameSet(key: Float64Array, keyW: Int32Array, f: Float64Array, w: Int32Array, buf: Buffer, v: number, n: number): boolean {
  const k = v >> 3, q = n >> 3;
  for (let i = 0; i < q; i++) {
    const a = key[i];
    if (a !== f[k + i] || a === 0) {
      if (keyW[2 * i] !== w[2 * (k + i)] || keyW[2 * i + 1] !== w[2 * (k + i) + 1]) return false;
    }
  }
  let j = 2 * q, p = q << 3;
  if ((n & 4) !== 0) { if (keyW[j] !== w[(v + p) >> 2]) return false; j++; p += 4; }
  if (p === n) return true;
  // The tail bytes were stored little-endian in the next word.
  let tail = 0;
  for (let i = p; i < n; i++) tail |= buf[v + i] << ((i & 3) * 8);
  return keyW[j] === tail;
}

/** The field bytes [v, v + n) into the slot's key (its old one when large enough): the words
 *  copied as words (a double's load and store may not keep a NaN's bits), the tail bytes packed. */
function keyOf(sets: FieldSets, slot: number, w: Int32Array, buf: Buffer, v: number, n: number): void {
  const old = sets.keys[slot];
  const q = n >> 3;
  let key = old, keyW = sets.keyWords[slot];
  if (old === undefined || old.length <= q || keyW === undefined) {
    key = new Float64Array(q + 1);
    keyW = new Int32Array(key.buffer);
    sets.keys[slot] = key;
    sets.keyWords[slot] = keyW;
  }
  const words = n >> 2, s = v >> 2;
  for (let i = 0; i < words; i++) keyW[i] = w[s + i];
  let tail = 0;
  for (let i = words << 2; i < n; i++) tail |= buf[v + i] << ((i & 3) * 8);
  keyW[words] = tail;
}

/** Reads records of one decoder, its attribute names (private ones included) resolved once. */
export class RecordReader {
  readonly names: Array<string | undefined>;
  private readonly values: Array<string | undefined> = new Array<string | undefined>(VALUE_SLOTS).fill(undefined);
  private readonly sets = new FieldSets();
  private readonly shapes = new Shapes();
  private looked = 0;
  private hits = 0;
  private paused = 0;
  /** Field sets the module defined (T_SET, decoders/abi/README.md "Field sets"), by number:
   *  frozen like the templates above; null: defined with a list (a use is malformed). */
  private defs: Array<Record<string, AttrValue> | null | undefined> = [];
  private defCopiers: Array<Copier | undefined> = [];
  constructor(privateNames?: Record<string, string>) { this.names = attributeNames(privateNames); }

  /** The module's field sets are gone (a fresh instance), or may no longer match it (a record was
   *  dropped: it may have been a definition). */
  forgetSets(): void {
    if (this.defs.length === 0) return;
    this.defs = [];
    this.defCopiers = [];
  }

  /** A record whose first field is a T_SET mark: a definition (fields follow) or a use. */
  private setRecord(m: MemView, ptr: number, len: number, v: number, n: number): DecodedRecord {
    const { buf, dv } = m;
    const id = buf[v] | (buf[v + 1] << 8);
    if (dv.getUint32(v + 4, true) !== 0) throw new RecordError(`field set mark ${id} has a value`);
    // Sets live as long as the module: bounded in number and size, as the templates above.
    if (id >= SET_IDS) throw new RecordError(`field set ${id} is not below ${SET_IDS}`);
    if (n - FIELD_HEADER_SIZE > SET_MAX) throw new RecordError(`field set ${id} has more than ${SET_MAX} bytes of fields`);
    if (n === FIELD_HEADER_SIZE) {
      const t = this.defs[id];
      if (!t) throw new RecordError(t === null ? `field set ${id} holds a list: it cannot be reused` : `field set ${id} used before it was defined`);
      return header(m, ptr, (buf[ptr] | (buf[ptr + 1] << 8)) === KIND_EXCHANGE ? t : this.defCopiers[id]!(t));
    }
    this.defs[id] = undefined; // a malformed definition leaves no set behind
    const rec = readRecord(m, ptr, len, this.names, this.values, this.shapes, v + FIELD_HEADER_SIZE);
    const tpl = templateOf(rec.attributes);
    this.defs[id] = tpl;
    if (tpl !== null) this.defCopiers[id] = templateCopiers.get(tpl);
    return rec;
  }
  /** Decodes one record; throws RecordError on a malformed one (the caller counts and drops it). */
  decode(m: MemView, ptr: number, len: number): DecodedRecord {
    const { buf, dv, i32, f64 } = m;
    if (len < RECORD_HEADER_SIZE || ptr < 0 || ptr + len > buf.length) throw new RecordError(`record out of bounds (ptr=${ptr} len=${len})`);
    const total = dv.getUint32(ptr + 4, true);
    if (total !== len) throw new RecordError(`record length mismatch (header ${total}, emitted ${len})`);
    const v = ptr + RECORD_HEADER_SIZE, n = len - RECORD_HEADER_SIZE;
    if (n >= FIELD_HEADER_SIZE && buf[v + 2] === T_SET) return this.setRecord(m, ptr, len, v, n);
    if (i32 === undefined || f64 === undefined || n === 0 || n > SET_MAX || (v & 7) !== 0) return readRecord(m, ptr, len, this.names, this.values, this.shapes);
    if (this.paused > 0) { this.paused--; return readRecord(m, ptr, len, this.names, this.values, this.shapes); }
    if (++this.looked === SET_WINDOW) {
      if (this.hits < SET_MIN_HITS) this.paused = SET_PAUSE;
      this.looked = 0;
      this.hits = 0;
    }
    const sets = this.sets;
    const slot = setSlot(i32, v, n);
    const key = sets.keys[slot];
    if (key !== undefined && sets.lens[slot] === n && sameSet(key, sets.keyWords[slot]!, f64, i32, buf, v, n)) {
      this.hits++;
      const t = sets.templates[slot];
      if (t) {
        sets.used[slot] = 1;
        return header(m, ptr, dv.getUint16(ptr, true) === KIND_EXCHANGE ? t : sets.copiers[slot]!(t));
      }
      const rec = readRecord(m, ptr, len, this.names, this.values, this.shapes);
      if (t === undefined) {
        const tpl = templateOf(rec.attributes);
        sets.templates[slot] = tpl;
        if (tpl !== null) sets.copiers[slot] = templateCopiers.get(tpl);
      }
      return rec;
    }
    // Decoded first: a malformed record must not take a slot.
    const rec = readRecord(m, ptr, len, this.names, this.values, this.shapes);
    if (sets.used[slot] === 1) { sets.used[slot] = 0; return rec; }
    keyOf(sets, slot, i32, buf, v, n);
    sets.lens[slot] = n;
    sets.templates[slot] = undefined;
    return rec;
  }
}

/** A frozen copy of `a` to share (its copier kept for ownAttributes), or null when `a` holds a
 *  string list (the array would be shared as well). */
function templateOf(a: Record<string, AttrValue>): Record<string, AttrValue> | null {
  if (hasList(a)) return null;
  const c = copierOf(a);
  const tpl = Object.freeze(c(a));
  templateCopiers.set(tpl, c);
  return tpl;
}

function hasList(a: Record<string, AttrValue>): boolean {
  for (const k in a) if (typeof a[k] === 'object') return true;
  return false;
}

function header(m: MemView, ptr: number, attributes: Record<string, AttrValue>): DecodedRecord {
  const { dv, u64 } = m;
  // Times through a BigUint64Array when aligned (records are): DataView's getBigUint64 is a call.
  const aligned = u64 !== undefined && (ptr & 7) === 0;
  const tsStart = aligned ? u64[(ptr + 16) >> 3] : dv.getBigUint64(ptr + 16, true);
  return {
    kind: dv.getUint16(ptr, true),
    flags: dv.getUint16(ptr + 2, true),
    stream: dv.getUint32(ptr + 8, true) + dv.getUint32(ptr + 12, true) * 2 ** 32,
    tsStart,
    tsEnd: aligned ? u64[(ptr + 24) >> 3] : dv.getBigUint64(ptr + 24, true),
    attributes,
  };
}

// A decoder's records come in a few shapes (the same attribute ids in the same order: an HTTP GET
// answered with a Content-Length, a POST, ...). Adding a record's fields one by one to an empty
// object is a keyed store per field that walks V8's map transitions (most of readRecord's time
// on HTTP records, 14 fields); a constructor storing the shape's names as constant keys runs
// monomorphic stores into in-object room (roomyConstructor). So the values are decoded into a
// scratch array and, for a shape seen before, handed to that shape's builder: one per list of
// names, compiled on its second sighting (JSON-quoted names: none is read as code), shared by every
// reader, at most BUILDERS_MAX (then the generic path). Same object as before: the same names in
// the same order, the same values.
type Builder = (v: AttrValue[]) => Record<string, AttrValue>;
const BUILDERS_MAX = 512;
const SHAPE_SLOTS = 256;
const SHAPE_FIELDS = 32;
const builders = new Map<string, Builder | null>();

function builderOf(names: string[]): Builder | null {
  const key = JSON.stringify(names);
  let b = builders.get(key);
  if (b !== undefined) return b;
  if (builders.size >= BUILDERS_MAX) return null;
  // A repeated name: its first place, its last value; the generic path does exactly that.
  if (new Set(names).size !== names.length || names.includes('__proto__')) b = null;
  else {
    const F = roomyConstructor(names.map((n, i) => `this[${JSON.stringify(n)}] = v[${i}];`).join(' '));
    b = (v) => new F(v);
  }
  builders.set(key, b);
  return b;
}

/** The shapes a reader saw last, direct-mapped by a hash of the ids: the ids of each slot's shape
 *  and its builder (undefined: seen once; null: none). */
class Shapes {
  readonly ids: Int32Array = new Int32Array(SHAPE_SLOTS * SHAPE_FIELDS);
  readonly counts: Int32Array = new Int32Array(SHAPE_SLOTS);
  readonly builders: Array<Builder | null | undefined> = new Array<Builder | null | undefined>(SHAPE_SLOTS).fill(undefined);
}

// One record's ids and values while it is read (records are read one at a time, never nested).
const scratchIds = new Int32Array(SHAPE_FIELDS);
const scratchValues: AttrValue[] = new Array<AttrValue>(SHAPE_FIELDS).fill(0);

/** The attributes object of the `k` fields in the scratch arrays (`h`: hash of their ids). */
function attributesOf(shapes: Shapes, names: Array<string | undefined>, k: number, h: number): Record<string, AttrValue> {
  const ids = scratchIds, vals = scratchValues;
  const slot = (Math.imul(h ^ k, 0x9e3779b1) >>> 24) & (SHAPE_SLOTS - 1);
  const at = slot * SHAPE_FIELDS;
  if (shapes.counts[slot] === k) {
    let i = 0;
    while (i < k && shapes.ids[at + i] === ids[i]) i++;
    if (i === k) {
      let b = shapes.builders[slot];
      if (b === undefined) {
        const ns: string[] = [];
        for (let j = 0; j < k; j++) ns.push(names[ids[j]]!);
        b = shapes.builders[slot] = builderOf(ns);
      }
      if (b !== null) return b(vals);
      return generic(names, k);
    }
  }
  shapes.counts[slot] = k;
  shapes.ids.set(ids.subarray(0, k), at);
  shapes.builders[slot] = undefined;
  return generic(names, k);
}

function generic(names: Array<string | undefined>, k: number): Record<string, AttrValue> {
  const a = new Attributes();
  for (let i = 0; i < k; i++) a[names[scratchIds[i]]!] = scratchValues[i];
  return a;
}

/** `from`: where the fields start (after a field set mark), the record's first field if not given. */
function readRecord(m: MemView, ptr: number, len: number, names: Array<string | undefined>, values: Array<string | undefined>, shapes: Shapes, from = ptr + RECORD_HEADER_SIZE): DecodedRecord {
  const { buf, dv } = m;
  if (len < RECORD_HEADER_SIZE || ptr < 0 || ptr + len > buf.length) throw new RecordError(`record out of bounds (ptr=${ptr} len=${len})`);
  const total = dv.getUint32(ptr + 4, true);
  if (total !== len) throw new RecordError(`record length mismatch (header ${total}, emitted ${len})`);
  const end = ptr + len;
  let p = from;
  let k = 0, h = 0x27d4eb2f;
  let attributes: Record<string, AttrValue> | undefined;
  while (p < end) {
    if (p + FIELD_HEADER_SIZE > end) throw new RecordError('truncated field header');
    const id = dv.getUint16(p, true);
    const type = buf[p + 2];
    const vlen = dv.getUint32(p + 4, true);
    const v = p + FIELD_HEADER_SIZE;
    if (vlen > end - v) throw new RecordError(`field ${id} overruns the record`);
    const name = names[id];
    if (name === undefined) throw new RecordError(`unknown attribute id ${id}`);
    let value: AttrValue;
    switch (type) {
      case T_STR: value = vlen <= VALUE_MAX ? shortValue(buf, v, vlen, id, values) : utf8Slice.call(buf, v, v + vlen); break;
      case T_INT: {
        if (vlen !== 8) throw new RecordError(`int field ${name} has ${vlen} bytes`);
        // i64 → number without a BigInt: exact up to 2^53, which every size/count/code fits.
        value = dv.getUint32(v, true) + dv.getInt32(v + 4, true) * 2 ** 32;
        break;
      }
      case T_FLOAT: if (vlen !== 8) throw new RecordError(`float field ${name} has ${vlen} bytes`); value = dv.getFloat64(v, true); break;
      case T_BOOL: if (vlen !== 1) throw new RecordError(`bool field ${name} has ${vlen} bytes`); value = buf[v] !== 0; break;
      case T_STRS: {
        // Most lists hold one item: `[s]` gets a backing store of one, where a push onto `[]`
        // allocates room for 17.
        let items: string[] | undefined;
        let q = v;
        const ve = v + vlen;
        while (q < ve) {
          if (q + 4 > ve) throw new RecordError(`string list ${name} is cut`);
          const n = dv.getUint32(q, true);
          if (n > ve - q - 4) throw new RecordError(`string list ${name} item overruns`);
          const s = n <= VALUE_MAX ? shortValue(buf, q + 4, n, id, values) : utf8Slice.call(buf, q + 4, q + 4 + n);
          if (items === undefined) items = [s];
          else items.push(s);
          q += 4 + n;
        }
        value = items ?? [];
        break;
      }
      default: throw new RecordError(`field ${name} has unknown type ${type}`);
    }
    if (k < SHAPE_FIELDS) {
      scratchIds[k] = id;
      scratchValues[k] = value;
      h = Math.imul(h ^ id, 0x9e3779b1);
    } else {
      // Past SHAPE_FIELDS fields: the rest added one by one (no shape kept).
      if (attributes === undefined) attributes = generic(names, k);
      attributes[name] = value;
    }
    k++;
    p = v + vlen;
  }
  return header(m, ptr, attributes ?? attributesOf(shapes, names, k, h));
}
