// AssemblyScript-only helpers every decoder uses to build records and talk to the host.
// Records are assembled in a static buffer (no allocation) and handed to telegen.emit.
import {
  RECORD_HEADER_SIZE, FIELD_HEADER_SIZE, T_STR, T_INT, T_FLOAT, T_BOOL, T_STRS, T_SET,
  FLAG_TRUNCATED, LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR,
} from "./abi";

@external("telegen", "emit")
declare function host_emit(ptr: usize, len: u32): void;
@external("telegen", "log")
declare function host_log(level: u32, ptr: usize, len: u32): void;

const EMIT_CAP: u32 = 65536;
// One value never exceeds this; longer values are cut and the record flagged TRUNCATED.
export const FIELD_CAP: u32 = 8192;
const recordBuf: usize = memory.data(65536);
// The records area (export `records`, decoders/abi/README.md "Batches"): u32 bytes used | u32 0 |
// records, each 8-aligned. Outside a batch a record is built in recordBuf and handed over by
// telegen.emit; during parse_batch records are appended to the area and the host reads them all
// after the call (a Wasm→JS call per record cost as much as the module's own work on a small
// message). Allocated when the host first asks for it: modules without batches pay nothing.
const AREA_CAP: u32 = 131072;
let area: usize = 0;
let emitBuf: usize = recordBuf;
let batching = false;
let used: u32 = 0;
let pos: u32 = 0;
let strsCountPos: u32 = 0;

export function records(): usize {
  if (area == 0) area = (heap.alloc(8 + AREA_CAP + 8) + 7) & ~7;
  return area;
}

/** parse_batch starts (true: the area is emptied) or ends (false: the host reads the area
 *  before its next call). */
export function batchRecords(on: bool): void {
  batching = on;
  if (on) { records(); used = 0; store<u32>(area, 0); }
  emitBuf = recordBuf;
}

/** Hands the records appended so far to the host one by one (in order) to make room. */
function flushArea(): void {
  let p: u32 = 0;
  while (p < used) {
    const len = load<u32>(area + 8 + <usize>p, 4);
    host_emit(area + 8 + <usize>p, len);
    p += (len + 7) & ~7;
  }
  used = 0;
  store<u32>(area, 0);
}

/** Starts a record; fields follow; finish() hands it to the host. Both inlined: a call per record
 *  costs a fuel check besides the call (host/src/decoders/meter.ts). */
@inline export function begin(kind: i32, flags: i32, stream: u64, tsStart: u64, tsEnd: u64): void {
  if (batching) {
    if (used > AREA_CAP - EMIT_CAP) flushArea();
    emitBuf = area + 8 + <usize>used;
  }
  store<u16>(emitBuf, <u16>kind, 0);
  store<u16>(emitBuf, <u16>flags, 2);
  store<u64>(emitBuf, stream, 8);
  store<u64>(emitBuf, tsStart, 16);
  store<u64>(emitBuf, tsEnd, 24);
  pos = RECORD_HEADER_SIZE;
}

export function orFlags(flags: i32): void {
  store<u16>(emitBuf, load<u16>(emitBuf, 2) | <u16>flags, 2);
}

export function setTimes(tsStart: u64, tsEnd: u64): void {
  store<u64>(emitBuf, tsStart, 16);
  store<u64>(emitBuf, tsEnd, 24);
}

@inline function fieldHeader(id: i32, type: i32, len: u32): usize {
  const p = emitBuf + <usize>pos;
  store<u16>(p, <u16>id, 0);
  store<u8>(p, <u8>type, 2);
  store<u8>(p, 0, 3);
  store<u32>(p, len, 4);
  return p + FIELD_HEADER_SIZE;
}

@inline function room(): u32 {
  return EMIT_CAP - pos - FIELD_HEADER_SIZE;
}

/** Copies a value into the record. Short ones (most values: tags, "postgresql", status codes) with
 *  two overlapping words, no loop: V8 calls out of line for each memory.copy (~10 ns for 10 bytes),
 *  and a word loop pays the metering's fuel check on every iteration (four per value on average).
 *  Every store lies inside [dst, dst + n) and every load inside [src, src + n). The record never
 *  overlaps its source. */
@inline function copyValue(dst: usize, src: usize, n: u32): void {
  const e = <usize>n;
  if (n >= 16) {
    if (n > 32) { memory.copy(dst, src, n); return; }
    const a = load<u64>(src), b = load<u64>(src, 8);
    const c = load<u64>(src + e - 16), d = load<u64>(src + e - 8);
    store<u64>(dst, a); store<u64>(dst, b, 8);
    store<u64>(dst + e - 16, c); store<u64>(dst + e - 8, d);
  } else if (n >= 8) {
    const a = load<u64>(src), b = load<u64>(src + e - 8);
    store<u64>(dst, a); store<u64>(dst + e - 8, b);
  } else if (n >= 4) {
    const a = load<u32>(src), b = load<u32>(src + e - 4);
    store<u32>(dst, a); store<u32>(dst + e - 4, b);
  } else if (n != 0) {
    // 1..3 bytes: first, middle, last
    const a = load<u8>(src), b = load<u8>(src + (e >> 1)), c = load<u8>(src + e - 1);
    store<u8>(dst, a); store<u8>(dst + (e >> 1), b); store<u8>(dst + e - 1, c);
  }
}

/** A string attribute copied from decoder memory (e.g. the input window). */
export function addBytes(id: i32, ptr: usize, len: u32): void {
  if (pos + FIELD_HEADER_SIZE >= EMIT_CAP) { orFlags(FLAG_TRUNCATED); return; }
  let n = len;
  if (n > FIELD_CAP) n = FIELD_CAP;
  if (n > room()) n = room();
  if (n < len) orFlags(FLAG_TRUNCATED);
  const dst = fieldHeader(id, T_STR, n);
  copyValue(dst, ptr, n);
  pos += FIELD_HEADER_SIZE + n;
}

/** Fields already encoded (field header + value, as addBytes/addInt write them; e.g. a decoder's
 *  constant attributes built once at start), copied as they are: `n` bytes at `ptr`. All or
 *  nothing: a block that does not fit is left out and the record flagged TRUNCATED. */
export function addFields(ptr: usize, n: u32): void {
  if (n > EMIT_CAP - pos) { orFlags(FLAG_TRUNCATED); return; }
  const dst = emitBuf + <usize>pos;
  if (n <= 40 && n >= 16) {
    // The size of a few short fields: words, no memory.copy (see copyValue).
    const e = <usize>n;
    store<u64>(dst, load<u64>(ptr)); store<u64>(dst, load<u64>(ptr, 8), 8);
    if (n > 24) store<u64>(dst, load<u64>(ptr, 16), 16);
    if (n > 32) store<u64>(dst, load<u64>(ptr, 24), 24);
    store<u64>(dst + e - 8, load<u64>(ptr + e - 8));
  } else memory.copy(dst, ptr, n);
  pos += n;
}

/** The field-set mark (decoders/abi/README.md, "Field sets"), right after begin(): with fields
 *  after it the record defines set `id` (0..65535); alone it reuses the fields of set `id`'s last
 *  definition (the flags are the record's own: orFlags() what the definition had). */
export function addSetMark(id: i32): void {
  fieldHeader(id, T_SET, 0);
  pos += FIELD_HEADER_SIZE;
}

/** The flags of the record finish() handed over last (until the next begin()). */
export function lastFlags(): i32 {
  return <i32>load<u16>(emitBuf, 2);
}

// String literals live in static data (below __heap_base) and never change: each is encoded to
// UTF-8 once, then copied (the per-character encoder, metered per iteration, cost as much as a
// small message). Direct-mapped by address; a collision only re-encodes.
const LIT_SLOTS: usize = 64;
const litKeys = new StaticArray<usize>(<i32>LIT_SLOTS);
const litBufs = new StaticArray<ArrayBuffer | null>(<i32>LIT_SLOTS);

export function addString(id: i32, s: string): void {
  const sp = changetype<usize>(s);
  if (sp < __heap_base) {
    const slot = <i32>((sp >> 3) & (LIT_SLOTS - 1));
    let b = litBufs[slot];
    if (b == null || litKeys[slot] != sp) { b = String.UTF8.encode(s); litBufs[slot] = b; litKeys[slot] = sp; }
    addBytes(id, changetype<usize>(b), <u32>changetype<ArrayBuffer>(b).byteLength);
    return;
  }
  const units = <u32>s.length;
  if (units * 3 + FIELD_HEADER_SIZE >= EMIT_CAP - pos || units * 3 > FIELD_CAP) {
    const buf = String.UTF8.encode(s);
    addBytes(id, changetype<usize>(buf), <u32>buf.byteLength);
    return;
  }
  const dst = emitBuf + <usize>pos + FIELD_HEADER_SIZE;
  const n = <u32>String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, dst, false);
  fieldHeader(id, T_STR, n);
  pos += FIELD_HEADER_SIZE + n;
}

export function addInt(id: i32, v: i64): void {
  if (pos + FIELD_HEADER_SIZE + 8 > EMIT_CAP) { orFlags(FLAG_TRUNCATED); return; }
  store<i64>(fieldHeader(id, T_INT, 8), v);
  pos += FIELD_HEADER_SIZE + 8;
}

export function addFloat(id: i32, v: f64): void {
  if (pos + FIELD_HEADER_SIZE + 8 > EMIT_CAP) { orFlags(FLAG_TRUNCATED); return; }
  store<f64>(fieldHeader(id, T_FLOAT, 8), v);
  pos += FIELD_HEADER_SIZE + 8;
}

export function addBool(id: i32, v: bool): void {
  if (pos + FIELD_HEADER_SIZE + 1 > EMIT_CAP) { orFlags(FLAG_TRUNCATED); return; }
  store<u8>(fieldHeader(id, T_BOOL, 1), v ? 1 : 0);
  pos += FIELD_HEADER_SIZE + 1;
}

/** A string[] attribute: beginStrs(id), then addStrsItem(...) per element, then endStrs(). */
export function beginStrs(id: i32): void {
  if (pos + FIELD_HEADER_SIZE >= EMIT_CAP) { strsCountPos = 0xffffffff; orFlags(FLAG_TRUNCATED); return; }
  fieldHeader(id, T_STRS, 0);
  strsCountPos = pos;
  pos += FIELD_HEADER_SIZE;
}

export function addStrsItem(ptr: usize, len: u32): void {
  if (strsCountPos == 0xffffffff) return;
  let n = len;
  if (n > FIELD_CAP) n = FIELD_CAP;
  if (pos + 4 + n > EMIT_CAP) { orFlags(FLAG_TRUNCATED); return; }
  if (n < len) orFlags(FLAG_TRUNCATED);
  store<u32>(emitBuf + <usize>pos, n);
  memory.copy(emitBuf + <usize>pos + 4, ptr, n);
  pos += 4 + n;
}

export function addStrsString(s: string): void {
  const buf = String.UTF8.encode(s);
  addStrsItem(changetype<usize>(buf), <u32>buf.byteLength);
}

export function endStrs(): void {
  if (strsCountPos == 0xffffffff) return;
  store<u32>(emitBuf + <usize>strsCountPos + 4, pos - strsCountPos - FIELD_HEADER_SIZE);
}

@inline export function finish(): void {
  store<u32>(emitBuf, pos, 4);
  if (batching) {
    used += (pos + 7) & ~7;
    store<u32>(area, used);
  } else {
    host_emit(emitBuf, pos);
  }
  pos = 0;
}

export function logMsg(level: u32, msg: string): void {
  const buf = String.UTF8.encode(msg);
  host_log(level, changetype<usize>(buf), <u32>buf.byteLength);
}
export function debug(msg: string): void { logMsg(LOG_DEBUG, msg); }
export function info(msg: string): void { logMsg(LOG_INFO, msg); }
export function warn(msg: string): void { logMsg(LOG_WARN, msg); }
export function error(msg: string): void { logMsg(LOG_ERROR, msg); }
