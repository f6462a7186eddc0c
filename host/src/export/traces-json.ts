// ExportTraceServiceRequest as OTLP/JSON, written straight from the SDK's ReadableSpans into one
// reused buffer: no request objects (otlp-transformer builds one per span, event, link, attribute
// and value) and no JSON.stringify per span. The bytes are what otlp-transformer's
// JsonTraceSerializer writes (same keys in the same order, same escapes, same numbers):
// test/export/file-exporter.test.ts compares them byte for byte and decodes them with the
// official protobuf definitions.
import type { HrTime, Link } from '@opentelemetry/api';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace-base';
import { groupByResourceScope, type SdkScope } from './common-proto';

const HEX = '0123456789abcdef';

/** A growing byte buffer that JSON text is written into; reused across requests by its owner. */
export class JsonWriter {
  buf: Buffer;
  pos = 0;

  constructor(initialBytes = 64 * 1024) {
    this.buf = Buffer.allocUnsafeSlow(initialBytes);
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = Math.max(this.buf.length * 2, 4096);
    while (size < this.pos + n) size *= 2;
    const b = Buffer.allocUnsafeSlow(size);
    this.buf.copy(b, 0, 0, this.pos);
    this.buf = b;
  }

  byte(c: number): void {
    this.ensure(1);
    this.buf[this.pos++] = c;
  }

  /** Text known to be printable ASCII with nothing to escape (keys, punctuation). */
  ascii(s: string): void {
    const n = s.length;
    this.ensure(n);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) b[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  /** A JSON string as JSON.stringify writes it (short escapes, \u00XX for other controls,
   *  lone surrogates as \uXXXX), UTF-8 encoded. */
  str(s: string): void {
    const n = s.length;
    // Worst case per UTF-16 unit: \u00XX (6 bytes); a surrogate pair is 4 bytes for 2 units.
    this.ensure(n * 6 + 2);
    const b = this.buf;
    let p = this.pos;
    b[p++] = 0x22;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x20 && c < 0x80) {
        if (c === 0x22 || c === 0x5c) b[p++] = 0x5c;
        b[p++] = c;
      } else if (c < 0x20) {
        p = escape(b, p, c);
      } else if (c < 0x800) {
        b[p++] = 0xc0 | (c >> 6);
        b[p++] = 0x80 | (c & 0x3f);
      } else if (c < 0xd800 || c > 0xdfff) {
        b[p++] = 0xe0 | (c >> 12);
        b[p++] = 0x80 | ((c >> 6) & 0x3f);
        b[p++] = 0x80 | (c & 0x3f);
      } else {
        const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
        if (c < 0xdc00 && d >= 0xdc00 && d <= 0xdfff) {
          const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          b[p++] = 0xf0 | (cp >> 18);
          b[p++] = 0x80 | ((cp >> 12) & 0x3f);
          b[p++] = 0x80 | ((cp >> 6) & 0x3f);
          b[p++] = 0x80 | (cp & 0x3f);
          i++;
        } else {
          p = uEscape(b, p, c);
        }
      }
    }
    b[p++] = 0x22;
    this.pos = p;
  }

  /** A number as JSON.stringify writes it (non-finite as null). */
  num(v: number): void {
    if (Number.isSafeInteger(v) && v >= 0) this.uint(v);
    else this.ascii(Number.isFinite(v) ? String(v) : 'null');
  }

  /** Decimal digits of a non-negative safe integer, without a string. */
  uint(v: number): void {
    let digits = 1;
    for (let x = v; x >= 10; x = Math.floor(x / 10)) digits++;
    this.ensure(digits);
    const b = this.buf;
    let p = this.pos + digits;
    this.pos = p;
    do {
      const q = Math.floor(v / 10);
      b[--p] = 0x30 + (v - q * 10);
      v = q;
    } while (v > 0);
  }

  /** An HrTime as a quoted decimal nanosecond count (OTLP/JSON's int64 form), as
   *  otlp-transformer's BigInt arithmetic writes it. */
  time(t: HrTime): void {
    const s = Math.trunc(t[0]);
    const ns = Math.trunc(t[1]);
    if (s > 0 && ns >= 0 && ns < 1e9 && Number.isSafeInteger(s)) {
      // A batch's spans start and end within a few seconds: the quote and seconds' digits are
      // copied from the last time written, not divided out again (twice per span).
      if (s !== lastSec) {
        const at = this.pos;
        this.byte(0x22);
        this.uint(s);
        lastSec = s;
        secLen = this.pos - at;
        for (let i = 0; i < secLen; i++) secBytes[i] = this.buf[at + i];
      } else {
        this.ensure(secLen);
        const b = this.buf;
        let p = this.pos;
        for (let i = 0; i < secLen; i++) b[p++] = secBytes[i];
        this.pos = p;
      }
      this.ensure(10);
      const b = this.buf;
      let p = this.pos + 9;
      this.pos = p;
      // Nine digits, two per division: four pairs and the leading digit (ns < 1e9).
      let v = ns;
      for (let k = 0; k < 4; k++) {
        const q = Math.floor(v / 100);
        const r = (v - q * 100) << 1;
        b[--p] = DIGIT_PAIRS[r + 1];
        b[--p] = DIGIT_PAIRS[r];
        v = q;
      }
      b[--p] = 0x30 + v;
      b[this.pos++] = 0x22;
    } else {
      this.ascii(`"${BigInt(s) * 1_000_000_000n + BigInt(ns)}"`);
    }
  }
}

/** time()'s last seconds value and its bytes (the opening quote and the digits). */
let lastSec = -1;
let secLen = 0;
const secBytes = new Uint8Array(24);
/** "00" to "99" as ASCII byte pairs. */
const DIGIT_PAIRS = Uint8Array.from({ length: 200 }, (_, i) => 0x30 + (i & 1 ? (i >> 1) % 10 : Math.floor((i >> 1) / 10)));

const SHORT_ESCAPES: Record<number, number> = { 0x08: 0x62, 0x09: 0x74, 0x0a: 0x6e, 0x0c: 0x66, 0x0d: 0x72 };

function escape(b: Buffer, p: number, c: number): number {
  const e = SHORT_ESCAPES[c];
  if (e === undefined) return uEscape(b, p, c);
  b[p++] = 0x5c;
  b[p++] = e;
  return p;
}

function uEscape(b: Buffer, p: number, c: number): number {
  b[p++] = 0x5c;
  b[p++] = 0x75;
  b[p++] = HEX.charCodeAt(c >> 12);
  b[p++] = HEX.charCodeAt((c >> 8) & 15);
  b[p++] = HEX.charCodeAt((c >> 4) & 15);
  b[p++] = HEX.charCodeAt(c & 15);
  return p;
}

// ---- OTLP common messages, as otlp-transformer's toAnyValue / toAttributes build them ----------

function anyValue(w: JsonWriter, v: unknown): void {
  switch (typeof v) {
    case 'string':
      w.ascii('{"stringValue":');
      w.str(v);
      w.byte(0x7d);
      return;
    case 'number':
      w.ascii(Number.isInteger(v) ? '{"intValue":' : '{"doubleValue":');
      w.num(v);
      w.byte(0x7d);
      return;
    case 'boolean':
      w.ascii(v ? '{"boolValue":true}' : '{"boolValue":false}');
      return;
  }
  if (v instanceof Uint8Array) {
    w.ascii('{"bytesValue":"');
    w.ascii(Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64'));
    w.ascii('"}');
  } else if (Array.isArray(v)) {
    w.ascii('{"arrayValue":{"values":[');
    for (let i = 0; i < v.length; i++) {
      if (i) w.byte(0x2c);
      anyValue(w, v[i]);
    }
    w.ascii(']}}');
  } else if (v !== null && typeof v === 'object') {
    w.ascii('{"kvlistValue":{"values":');
    attributes(w, v as Record<string, unknown>);
    w.ascii('}}');
  } else {
    w.ascii('{}');
  }
}

/** One attribute key's encoded entry, `,{"key":"<key>","value":` and, once a value came twice in
 *  a row, that value and the closing `}` after it: most attributes of an agent's spans repeat
 *  from span to span (protocol, method, addresses, ports, status, process), and copying their
 *  bytes is a fraction of escaping and UTF-8-encoding key and value again per span. */
interface KeyEntry {
  /** Bytes [0, head) the key part, then the cached value part. */
  bytes: Uint8Array;
  head: number;
  /** The key's last value (string, number or boolean), cached or not; for a one-string list
   *  (a header's values: content-type, transfer-encoding…), that string, with `list` set. */
  last: unknown;
  list: boolean;
  /** Views of the key part and of key and value, and the same without the leading comma:
   *  copied by TypedArray set (a memmove) instead of a byte loop. */
  key: Uint8Array;
  keyFirst: Uint8Array;
  full: Uint8Array | undefined;
  fullFirst: Uint8Array | undefined;
}
const ENTRY_BYTES = 256;
/** Keys are attribute names (a protocol's fixed ones and configured headers): few. A bound all the
 *  same, past which new keys are written without a cache entry; null: a key too long for one. */
const MAX_KEYS = 2048;
const keyEntries = new Map<string, KeyEntry | null>();
const scratch = new JsonWriter(ENTRY_BYTES * 2);

function keyEntry(key: string): KeyEntry | null | undefined {
  const e = keyEntries.get(key);
  if (e !== undefined || keyEntries.size >= MAX_KEYS) return e;
  scratch.pos = 0;
  scratch.ascii(',{"key":');
  scratch.str(key);
  scratch.ascii(',"value":');
  if (scratch.pos > ENTRY_BYTES / 2) { keyEntries.set(key, null); return null; }
  const bytes = new Uint8Array(ENTRY_BYTES);
  bytes.set(scratch.buf.subarray(0, scratch.pos));
  const made: KeyEntry = { bytes, head: scratch.pos, last: undefined, list: false, key: bytes.subarray(0, scratch.pos), keyFirst: bytes.subarray(1, scratch.pos), full: undefined, fullFirst: undefined };
  keyEntries.set(key, made);
  return made;
}

function copyOut(w: JsonWriter, src: Uint8Array): void {
  w.ensure(src.length);
  w.buf.set(src, w.pos);
  w.pos += src.length;
}

/** `[{"key":…,"value":…},…]` in Object.keys order (for…in: the same order for the plain objects
 *  attributes are, without a key array per span, event and link). */
function attributes(w: JsonWriter, attrs: Readonly<Record<string, unknown>> | undefined): void {
  w.byte(0x5b);
  if (attrs) {
    let first = true;
    for (const key in attrs) {
      const v = attrs[key];
      const e = keyEntry(key);
      if (!e) {
        w.ascii(first ? '{"key":' : ',{"key":');
        w.str(key);
        w.ascii(',"value":');
        anyValue(w, v);
        w.byte(0x7d);
        first = false;
        continue;
      }
      // A one-string list compares by its string: the decoder makes a fresh list per record.
      const t = typeof v;
      const list = t === 'object' && Array.isArray(v) && v.length === 1 && typeof v[0] === 'string';
      const cmp = list ? (v as string[])[0] : v;
      if (cmp === e.last && list === e.list && e.full !== undefined) {
        copyOut(w, first ? e.fullFirst! : e.full);
      } else {
        copyOut(w, first ? e.keyFirst : e.key);
        const at = w.pos;
        anyValue(w, v);
        w.byte(0x7d);
        // A primitive (or one-string list) seen twice in a row is kept (its bytes depend on its
        // value alone); one that changes every time (paths, ids, times) costs a comparison,
        // never a copy.
        const repeat = cmp === e.last && list === e.list && (list || t === 'string' || t === 'number' || t === 'boolean');
        e.last = cmp;
        e.list = list;
        e.full = e.fullFirst = undefined;
        const n = w.pos - at;
        if (repeat && e.head + n <= ENTRY_BYTES) {
          const b = w.buf, dst = e.bytes;
          for (let i = 0; i < n; i++) dst[e.head + i] = b[at + i];
          e.full = dst.subarray(0, e.head + n);
          e.fullFirst = dst.subarray(1, e.head + n);
        }
      }
      first = false;
    }
  }
  w.byte(0x5d);
}

/** `,"<key>":<number>` unless the value is undefined (JSON.stringify leaves it out). */
function optNum(w: JsonWriter, key: string, v: number | undefined): void {
  if (v === undefined) return;
  w.ascii(key);
  w.num(v);
}
function optStr(w: JsonWriter, key: string, v: string | undefined): void {
  if (v === undefined) return;
  w.ascii(key);
  w.str(v);
}

/** `{"<k1>":v1,"<k2>":v2}`, either left out when undefined, as JSON.stringify does. */
function pair(w: JsonWriter, k1: string, v1: string | number | undefined, k2: string, v2: string | number | undefined): void {
  w.byte(0x7b);
  if (v1 !== undefined) {
    w.ascii(k1);
    value(w, v1);
    if (v2 !== undefined) w.byte(0x2c);
  }
  if (v2 !== undefined) {
    w.ascii(k2);
    value(w, v2);
  }
  w.byte(0x7d);
}
/** `[…]` of `items`, each written by `item`. */
function list<T>(w: JsonWriter, items: readonly T[], item: (w: JsonWriter, x: T) => void): void {
  w.byte(0x5b);
  for (let i = 0; i < items.length; i++) {
    if (i) w.byte(0x2c);
    item(w, items[i]);
  }
  w.byte(0x5d);
}
const value = (w: JsonWriter, v: string | number): void => (typeof v === 'string' ? w.str(v) : w.num(v));

// ---- spans ------------------------------------------------------------------------------------

const HAS_IS_REMOTE = 0x100;
const IS_REMOTE = 0x200;
const spanFlags = (traceFlags: number, isRemote: boolean | undefined): number => (traceFlags & 0xff) | HAS_IS_REMOTE | (isRemote ? IS_REMOTE : 0);
const spanScopeKey = (s: SdkScope): string => `${s.name}@${s.version || ''}:${s.schemaUrl || ''}`;

function event(w: JsonWriter, e: TimedEvent): void {
  w.ascii('{"attributes":');
  attributes(w, e.attributes);
  w.ascii(',"name":');
  w.str(e.name);
  w.ascii(',"timeUnixNano":');
  w.time(e.time);
  w.ascii(',"droppedAttributesCount":');
  w.num(e.droppedAttributesCount || 0);
  w.byte(0x7d);
}

function link(w: JsonWriter, l: Link): void {
  w.ascii('{"attributes":');
  attributes(w, l.attributes);
  w.ascii(',"spanId":');
  w.str(l.context.spanId);
  w.ascii(',"traceId":');
  w.str(l.context.traceId);
  optStr(w, ',"traceState":', l.context.traceState?.serialize());
  w.ascii(',"droppedAttributesCount":');
  w.num(l.droppedAttributesCount || 0);
  w.ascii(',"flags":');
  w.num(spanFlags(l.context.traceFlags, l.context.isRemote));
  w.byte(0x7d);
}

function span(w: JsonWriter, s: ReadableSpan): void {
  const ctx = s.spanContext();
  const parent = s.parentSpanContext;
  w.ascii('{"traceId":');
  w.str(ctx.traceId);
  w.ascii(',"spanId":');
  w.str(ctx.spanId);
  if (parent?.spanId) optStr(w, ',"parentSpanId":', parent.spanId);
  optStr(w, ',"traceState":', ctx.traceState?.serialize());
  w.ascii(',"name":');
  w.str(s.name);
  // The API's SpanKind has no UNSPECIFIED: OTLP's enum is the API's plus one.
  w.ascii(',"kind":');
  w.num(s.kind == null ? 0 : s.kind + 1);
  w.ascii(',"startTimeUnixNano":');
  w.time(s.startTime);
  w.ascii(',"endTimeUnixNano":');
  w.time(s.endTime);
  w.ascii(',"attributes":');
  attributes(w, s.attributes);
  if (s.droppedAttributesCount === 0 && s.events.length === 0 && s.droppedEventsCount === 0 && s.status.code === 0 &&
      s.status.message === undefined && s.links.length === 0 && s.droppedLinksCount === 0) {
    // The agent's usual span: what the general path below writes for it, as one copy.
    copyOut(w, PLAIN_TAIL);
  } else {
    tail(w, s);
  }
  w.num(spanFlags(ctx.traceFlags, parent?.isRemote));
  w.byte(0x7d);
}

const PLAIN_TAIL = Buffer.from(',"droppedAttributesCount":0,"events":[],"droppedEventsCount":0,"status":{"code":0},"links":[],"droppedLinksCount":0,"flags":', 'latin1');

/** From droppedAttributesCount to the `"flags":` key. */
function tail(w: JsonWriter, s: ReadableSpan): void {
  optNum(w, ',"droppedAttributesCount":', s.droppedAttributesCount);
  w.ascii(',"events":');
  list(w, s.events, event);
  optNum(w, ',"droppedEventsCount":', s.droppedEventsCount);
  w.ascii(',"status":');
  pair(w, '"code":', s.status.code, '"message":', s.status.message);
  w.ascii(',"links":');
  list(w, s.links, link);
  optNum(w, ',"droppedLinksCount":', s.droppedLinksCount);
  w.ascii(',"flags":');
}

/** One ExportTraceServiceRequest holding the batch, appended to `w` (no newline). */
export function writeTracesRequestJson(w: JsonWriter, batch: ReadableSpan[]): void {
  w.ascii('{"resourceSpans":[');
  if (batch.length) {
    let firstResource = true;
    for (const g of groupByResourceScope(batch, spanScopeKey)) {
      w.ascii(firstResource ? '{"resource":{"attributes":' : ',{"resource":{"attributes":');
      firstResource = false;
      attributes(w, g.resource.attributes);
      w.ascii(',"droppedAttributesCount":0');
      const schemaUrl = g.resource.schemaUrl || undefined;
      optStr(w, ',"schemaUrl":', schemaUrl);
      w.ascii('},"scopeSpans":[');
      for (let i = 0; i < g.scopes.length; i++) {
        const sg = g.scopes[i];
        w.ascii(i ? ',{"scope":' : '{"scope":');
        pair(w, '"name":', sg.scope.name, '"version":', sg.scope.version);
        w.ascii(',"spans":');
        list(w, sg.items, span);
        optStr(w, ',"schemaUrl":', sg.scope.schemaUrl);
        w.byte(0x7d);
      }
      w.byte(0x5d);
      optStr(w, ',"schemaUrl":', schemaUrl);
      w.byte(0x7d);
    }
  }
  w.ascii(']}');
}
