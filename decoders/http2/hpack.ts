// HPACK header block decoding (RFC 7541): static table, dynamic table with size updates and
// eviction, integer and string literals, Huffman. One HpackTable per direction of a connection.
//
// Fail closed: an index into dynamic-table entries we never saw (connection older than the
// agent, lost bytes, an entry evicted because the peer's table is larger than we mirror) yields a
// field marked unknown, never another entry's value. Our table keeps only the newest entries, and
// HPACK numbers entries from the newest, so every entry we hold keeps its true index.
import {
  HpackTable, HPACK_HARD_CAP, HF_NAME_UNKNOWN, HF_VALUE_UNKNOWN, HF_NEVER_INDEXED, TABLES,
} from "./types";
import { buildHuffman, huffmanDecode } from "./huffman";

// Fatal block errors: the rest of the block is lost and with it the table state.
export const HP_OK = 0;
export const HP_ERR_CUT = -1;        // an integer or string runs past the block
export const HP_ERR_INT = -2;        // integer overflow
export const HP_ERR_HUFFMAN = -3;    // invalid Huffman string
export const HP_ERR_INDEX0 = -4;     // index 0
export const HP_ERR_TOO_BIG = -5;    // decoded strings exceed our scratch space

// Non-fatal findings (bit set in hpWarn).
export const W_INDEX_RANGE: u32 = 1;   // index beyond the table while in sync: reported unknown
export const W_SIZE_LIMIT: u32 = 2;    // size update above the peer's SETTINGS_HEADER_TABLE_SIZE
export const W_SIZE_BOMB: u32 = 4;     // size update above what we mirror
export const W_FIELDS: u32 = 8;        // more fields than we keep, or indexed values over the scratch

// ---- static table (RFC 7541 Appendix A), built into memory.data at start ----
const STATIC_COUNT = 61;
const STATIC_BYTES: usize = memory.data(1024);
const STATIC_IDX: usize = memory.data(STATIC_COUNT * 4 * 4); // nameOff, nameLen, valOff, valLen

function buildStatic(): void {
  const t: string[] = [
    ":authority", "", ":method", "GET", ":method", "POST", ":path", "/", ":path", "/index.html",
    ":scheme", "http", ":scheme", "https", ":status", "200", ":status", "204", ":status", "206",
    ":status", "304", ":status", "400", ":status", "404", ":status", "500", "accept-charset", "",
    "accept-encoding", "gzip, deflate", "accept-language", "", "accept-ranges", "", "accept", "",
    "access-control-allow-origin", "", "age", "", "allow", "", "authorization", "",
    "cache-control", "", "content-disposition", "", "content-encoding", "", "content-language", "",
    "content-length", "", "content-location", "", "content-range", "", "content-type", "",
    "cookie", "", "date", "", "etag", "", "expect", "", "expires", "", "from", "", "host", "",
    "if-match", "", "if-modified-since", "", "if-none-match", "", "if-range", "",
    "if-unmodified-since", "", "last-modified", "", "link", "", "location", "", "max-forwards", "",
    "proxy-authenticate", "", "proxy-authorization", "", "range", "", "referer", "", "refresh", "",
    "retry-after", "", "server", "", "set-cookie", "", "strict-transport-security", "",
    "transfer-encoding", "", "user-agent", "", "vary", "", "via", "", "www-authenticate", "",
  ];
  let off: u32 = 0;
  for (let i = 0; i < t.length; i++) {
    const s = t[i];
    const at = STATIC_IDX + (<usize>i << 3);
    store<u32>(at, off);
    store<u32>(at, <u32>s.length, 4);
    for (let k = 0; k < s.length; k++) store<u8>(STATIC_BYTES + <usize>off + <usize>k, <u8>s.charCodeAt(k));
    off += <u32>s.length;
  }
}

buildStatic();
buildHuffman();

// ---- decoded field list of the last block (pointers valid until the parse call returns) ----
export const MAX_FIELDS = 512;
const FIELDS: usize = memory.data(MAX_FIELDS * 20);
const ARENA_CAP: u32 = 98304;
const ARENA: usize = memory.data(98304);
let arenaPos: u32 = 0;

export let fieldCount: i32 = 0;
export let hpUnknown = false;
export let hpTruncated = false;
export let hpWarn: u32 = 0;

@inline export function fieldNamePtr(i: i32): usize { return <usize>load<u32>(FIELDS + <usize>i * 20); }
@inline export function fieldNameLen(i: i32): u32 { return load<u32>(FIELDS + <usize>i * 20, 4); }
@inline export function fieldValPtr(i: i32): usize { return <usize>load<u32>(FIELDS + <usize>i * 20, 8); }
@inline export function fieldValLen(i: i32): u32 { return load<u32>(FIELDS + <usize>i * 20, 12); }
@inline export function fieldFlags(i: i32): u32 { return load<u32>(FIELDS + <usize>i * 20, 16); }

function pushField(np: usize, nl: u32, vp: usize, vl: u32, flags: u32): void {
  if (flags & (HF_NAME_UNKNOWN | HF_VALUE_UNKNOWN)) hpUnknown = true;
  if (fieldCount >= MAX_FIELDS) { hpTruncated = true; hpWarn |= W_FIELDS; return; }
  const at = FIELDS + <usize>fieldCount * 20;
  store<u32>(at, <u32>np);
  store<u32>(at, nl, 4);
  store<u32>(at, <u32>vp, 8);
  store<u32>(at, vl, 12);
  store<u32>(at, flags, 16);
  fieldCount++;
}

/** Whether the decoded field list has a known field called `name`. */
export function fieldsHave(name: string): bool {
  for (let i = 0; i < fieldCount; i++) {
    const f = FIELDS + <usize>i * 20;
    if (load<u32>(f, 16) & HF_NAME_UNKNOWN) continue;
    const n = load<u32>(f, 4);
    if (n != <u32>name.length) continue;
    const p = <usize>load<u32>(f);
    let same = true;
    for (let k: u32 = 0; k < n; k++) if (<u32>load<u8>(p + <usize>k) != <u32>name.charCodeAt(<i32>k)) { same = false; break; }
    if (same) return true;
  }
  return false;
}

/** Copies bytes into the scratch arena; returns 0 when there is no room. */
function toArena(src: usize, n: u32): usize {
  if (n == 0) return ARENA;
  if (arenaPos + n > ARENA_CAP) return 0;
  const dst = ARENA + <usize>arenaPos;
  memory.copy(dst, src, n);
  arenaPos += n;
  return dst;
}

// ---- dynamic table ----
@inline function ringAt(t: HpackTable, k: u32): u32 {
  // k = 0 is the newest entry
  return ((t.head + t.ringCap - k) % t.ringCap) << 2;
}

function evictOldest(t: HpackTable): void {
  if (t.count == 0) return;
  const r = ringAt(t, t.count - 1);
  t.size -= unchecked(t.ring[r + 1]) + unchecked(t.ring[r + 2]) + 32;
  t.count--;
  if (t.count == 0) { t.end = 0; t.size = 0; }
}

function evictTo(t: HpackTable, max: u32): void {
  while (t.count > 0 && t.size > max) evictOldest(t);
}

/** The table's content can no longer be trusted (bytes lost, decode error): forget it. */
export function hpackLost(t: HpackTable): void {
  t.count = 0;
  t.size = 0;
  t.end = 0;
  t.head = 0;
  t.joined = true;
  t.sizeUnknown = true;
  hpackRelease(t);
}

/** Storage the table grew beyond its first buffers (counted in TABLES). */
export function hpackHeld(t: HpackTable): i64 {
  return <i64>(t.buf.length - 1024) + <i64>(t.ringCap - 64) * 16;
}

/** An empty table gives what it grew back to the decoder's budget (a closed connection, lost state). */
export function hpackRelease(t: HpackTable): void {
  if (t.count != 0) return;
  const held = hpackHeld(t);
  if (held == 0) return;
  TABLES.give(held);
  t.buf = new Uint8Array(1024);
  t.ring = new StaticArray<u32>(64 * 4);
  t.ringCap = 64;
  t.head = 0;
  t.end = 0;
}

/** Past TABLES the oldest entry we mirror goes while the peer keeps it: from now on an index
 *  beyond the entries we hold is one of those (lookup reports it unknown). */
function budgetEvict(t: HpackTable): void {
  t.joined = true;
  evictOldest(t);
}

/** Moves the live bytes (oldest entry .. end) to the front of the buffer. */
function compact(t: HpackTable): void {
  if (t.count == 0) { t.end = 0; return; }
  const base = unchecked(t.ring[ringAt(t, t.count - 1)]);
  if (base == 0) return;
  const b = t.buf.dataStart;
  memory.copy(b, b + <usize>base, t.end - base);
  for (let k: u32 = 0; k < t.count; k++) {
    const r = ringAt(t, k);
    unchecked(t.ring[r] = t.ring[r] - base);
  }
  t.end -= base;
}

function growRing(t: HpackTable): bool {
  const cap = t.ringCap * 2;
  if (!TABLES.take(<i64>(cap - t.ringCap) * 16)) return false;
  const nr = new StaticArray<u32>(<i32>(cap * 4));
  // Oldest first at 0 .. newest at count-1.
  for (let k: u32 = 0; k < t.count; k++) {
    const from = ringAt(t, k);
    const to = (t.count - 1 - k) << 2;
    unchecked(nr[to] = t.ring[from]);
    unchecked(nr[to + 1] = t.ring[from + 1]);
    unchecked(nr[to + 2] = t.ring[from + 2]);
    unchecked(nr[to + 3] = t.ring[from + 3]);
  }
  t.ring = nr;
  t.ringCap = cap;
  t.head = t.count == 0 ? cap - 1 : t.count - 1;
  return true;
}

function insert(t: HpackTable, np: usize, nl: u32, vp: usize, vl: u32, flags: u32): void {
  const esize = nl + vl + 32;
  const max = t.sizeUnknown ? HPACK_HARD_CAP : t.maxSize;
  if (esize > max) {
    // RFC 7541 §4.4: an entry larger than the table empties it and is not added.
    while (t.count > 0) evictOldest(t);
    return;
  }
  evictTo(t, max - esize);
  if (t.count + 1 > t.ringCap && !growRing(t)) {
    // past the decoder's budget the ring holds what it has room for: the newest entries
    budgetEvict(t);
  }
  const n = nl + vl;
  if (t.count == 0) t.end = 0;
  if (t.end + n > <u32>t.buf.length) {
    compact(t);
    // Keep at least half the buffer free after a compaction, so compactions stay amortised O(1).
    if ((t.end + n) * 2 > <u32>t.buf.length) {
      let cap = <u32>t.buf.length * 2;
      while (cap < (t.end + n) * 2) cap *= 2;
      if (TABLES.take(<i64>cap - <i64>t.buf.length)) {
        const nb = new Uint8Array(<i32>cap);
        memory.copy(nb.dataStart, t.buf.dataStart, t.end);
        t.buf = nb;
      } else {
        // Past the decoder's budget the buffer we have keeps the newest entries that fit it; an
        // entry larger than the whole buffer is not kept (index 62 is then unknown, not stale).
        if (n > <u32>t.buf.length) {
          t.joined = true;
          while (t.count > 0) evictOldest(t);
          return;
        }
        while (t.count > 0 && t.end - unchecked(t.ring[ringAt(t, t.count - 1)]) + n > <u32>t.buf.length) budgetEvict(t);
        compact(t);
      }
    }
  }
  const dst = t.buf.dataStart + <usize>t.end;
  if (nl) memory.copy(dst, np, nl);
  if (vl) memory.copy(dst + <usize>nl, vp, vl);
  t.head = (t.head + 1) % t.ringCap;
  const r = t.head << 2;
  unchecked(t.ring[r] = t.end);
  unchecked(t.ring[r + 1] = nl);
  unchecked(t.ring[r + 2] = vl);
  unchecked(t.ring[r + 3] = flags & (HF_NAME_UNKNOWN | HF_VALUE_UNKNOWN));
  t.end += n;
  t.count++;
  t.size += esize;
}

function sizeUpdate(t: HpackTable, v: u32): void {
  if (v > t.limit) hpWarn |= W_SIZE_LIMIT;
  let m = v;
  if (m > HPACK_HARD_CAP) {
    // We evict earlier than the peer: entries it still references become unknown to us.
    hpWarn |= W_SIZE_BOMB;
    m = HPACK_HARD_CAP;
    t.joined = true;
  }
  t.maxSize = m;
  t.sizeUnknown = false;
  evictTo(t, m);
  if (v == 0) {
    t.joined = false; // the peer's table is empty too: fully known again
    hpackRelease(t);
  }
}

/** Sets SETTINGS_HEADER_TABLE_SIZE announced by the peer that decodes this direction. */
export function hpackSetLimit(t: HpackTable, v: u32): void {
  t.limit = v;
}

// Result slots of the readers below (no allocation).
let rdVal: u32 = 0;
let rdPtr: usize = 0;
let rdLen: u32 = 0;
let rdFlags: u32 = 0;

/** RFC 7541 §5.1 integer with an N-bit prefix; returns the next position, 0 = cut, MAX = overflow. */
function readInt(p: usize, end: usize, bits: u32): usize {
  if (p >= end) return 0;
  const mask: u32 = (1 << bits) - 1;
  let v: u64 = <u64>(<u32>load<u8>(p) & mask);
  p++;
  if (v < <u64>mask) { rdVal = <u32>v; return p; }
  let m: u64 = 0;
  while (true) {
    if (p >= end) return 0;
    const b = <u64>load<u8>(p);
    p++;
    v += (b & 0x7f) << m;
    m += 7;
    // No size, index or length we accept comes near 2^28; larger is hostile.
    if (v > 0x0fffffff) return usize.MAX_VALUE;
    if ((b & 0x80) == 0) break;
    if (m >= 28) return usize.MAX_VALUE;
  }
  rdVal = <u32>v;
  return p;
}

/** RFC 7541 §5.2 string literal; sets rdPtr/rdLen; returns next position, 0 = cut, MAX = other error. */
let rdErr: i32 = 0;
function readString(p: usize, end: usize): usize {
  if (p >= end) { rdErr = HP_ERR_CUT; return 0; }
  const huff = (load<u8>(p) & 0x80) != 0;
  const q = readInt(p, end, 7);
  if (q == 0) { rdErr = HP_ERR_CUT; return 0; }
  if (q == usize.MAX_VALUE) { rdErr = HP_ERR_INT; return 0; }
  const n = rdVal;
  if (<usize>n > end - q) { rdErr = HP_ERR_CUT; return 0; }
  if (!huff) {
    rdPtr = q;
    rdLen = n;
    return q + <usize>n;
  }
  // Worst case 8 output bytes per 5 input bits.
  const worst = <u32>((<u64>n * 8 + 4) / 5);
  if (arenaPos + worst > ARENA_CAP) { rdErr = HP_ERR_TOO_BIG; return 0; }
  const dst = ARENA + <usize>arenaPos;
  const got = huffmanDecode(q, n, dst);
  if (got < 0) { rdErr = HP_ERR_HUFFMAN; return 0; }
  arenaPos += <u32>got;
  rdPtr = dst;
  rdLen = <u32>got;
  return q + <usize>n;
}

/**
 * Looks up index `idx` (>= 1). Sets rdPtr/rdLen to the name (wantValue = false) or the value,
 * rdFlags to unknown flags. Dynamic entries are copied to the arena (their storage can move).
 * Returns false when an indexed value does not fit the arena (field dropped, block truncated).
 */
let lkNamePtr: usize = 0;
let lkNameLen: u32 = 0;
function lookup(t: HpackTable, idx: u32, copyValue: bool): bool {
  rdFlags = 0;
  if (idx <= <u32>STATIC_COUNT) {
    const at = STATIC_IDX + (<usize>(idx - 1) << 3) * 2;
    lkNamePtr = STATIC_BYTES + <usize>load<u32>(at);
    lkNameLen = load<u32>(at, 4);
    rdPtr = STATIC_BYTES + <usize>load<u32>(at, 8);
    rdLen = load<u32>(at, 12);
    return true;
  }
  const k = idx - <u32>STATIC_COUNT - 1;
  if (k >= t.count) {
    if (!t.joined) {
      // A peer in sync never does this: our view diverged, so trust nothing older from now on.
      hpWarn |= W_INDEX_RANGE;
      t.joined = true;
    }
    rdFlags = HF_NAME_UNKNOWN | HF_VALUE_UNKNOWN;
    lkNamePtr = 0; lkNameLen = 0; rdPtr = 0; rdLen = 0;
    return true;
  }
  const r = ringAt(t, k);
  const off = unchecked(t.ring[r]);
  const nl = unchecked(t.ring[r + 1]);
  const vl = unchecked(t.ring[r + 2]);
  rdFlags = unchecked(t.ring[r + 3]);
  const base = t.buf.dataStart + <usize>off;
  const np = toArena(base, nl);
  if (np == 0 && nl > 0) return false;
  lkNamePtr = np; lkNameLen = nl;
  if (copyValue) {
    const vp = toArena(base + <usize>nl, vl);
    if (vp == 0 && vl > 0) return false;
    rdPtr = vp; rdLen = vl;
  }
  return true;
}

/** Marks the fields decoded so far as an incomplete list (the block failed after them). */
export function markUnknown(): void {
  hpUnknown = true;
}

/** Empties the field list (a block we could not decode); `unknown` marks it so. */
export function resetFields(unknown: bool): void {
  fieldCount = 0;
  hpUnknown = unknown;
  hpTruncated = false;
  hpWarn = 0;
  arenaPos = 0;
}

/** Decodes one complete header block; fills the field list. Returns HP_OK or an HP_ERR_*. */
export function decodeBlock(t: HpackTable, ptr: usize, len: u32): i32 {
  fieldCount = 0;
  hpUnknown = false;
  hpTruncated = false;
  hpWarn = 0;
  arenaPos = 0;
  let p = ptr;
  const end = ptr + <usize>len;
  while (p < end) {
    const b = <u32>load<u8>(p);
    if (b & 0x80) {
      // §6.1 indexed header field
      const q = readInt(p, end, 7);
      if (q == 0) return HP_ERR_CUT;
      if (q == usize.MAX_VALUE) return HP_ERR_INT;
      p = q;
      if (rdVal == 0) return HP_ERR_INDEX0;
      if (!lookup(t, rdVal, true)) { hpTruncated = true; hpWarn |= W_FIELDS; continue; }
      pushField(lkNamePtr, lkNameLen, rdPtr, rdLen, rdFlags);
    } else if ((b & 0xe0) == 0x20) {
      // §6.3 dynamic table size update
      const q = readInt(p, end, 5);
      if (q == 0) return HP_ERR_CUT;
      if (q == usize.MAX_VALUE) return HP_ERR_INT;
      p = q;
      sizeUpdate(t, rdVal);
    } else {
      // §6.2 literal: with incremental indexing (01), without (0000) or never indexed (0001)
      const indexing = (b & 0x40) != 0;
      const never = !indexing && (b & 0x10) != 0;
      const q = readInt(p, end, indexing ? 6 : 4);
      if (q == 0) return HP_ERR_CUT;
      if (q == usize.MAX_VALUE) return HP_ERR_INT;
      p = q;
      let np: usize = 0;
      let nl: u32 = 0;
      let flags: u32 = never ? HF_NEVER_INDEXED : 0;
      if (rdVal == 0) {
        const q2 = readString(p, end);
        if (q2 == 0) return rdErr;
        p = q2;
        np = rdPtr; nl = rdLen;
      } else {
        if (!lookup(t, rdVal, false)) return HP_ERR_TOO_BIG;
        np = lkNamePtr; nl = lkNameLen;
        flags |= rdFlags & HF_NAME_UNKNOWN;
      }
      const q3 = readString(p, end);
      if (q3 == 0) return rdErr;
      p = q3;
      pushField(np, nl, rdPtr, rdLen, flags);
      if (indexing) insert(t, np, nl, rdPtr, rdLen, flags);
    }
  }
  return HP_OK;
}
