// RESP2/RESP3 framing. Every function walks (p, end) and returns the position after a complete
// value, NEED (-1) when the bytes end first, or BAD (-2) when it is not RESP. No allocation.
import { MAX_DEPTH } from "./types";

export const NEED: i32 = -1;
export const BAD: i32 = -2;

/** Position of the "\r\n" ending the line that starts at p, or -1. */
export function lineEnd(p: usize, end: usize): isize {
  for (let q = p; q + 1 < end; q++) {
    if (load<u8>(q) == 13) return load<u8>(q + 1) == 10 ? <isize>q : -2;
  }
  return -1;
}

/** Signed decimal between p and e; i64.MIN_VALUE when malformed. */
export function parseInt64(p: usize, e: usize): i64 {
  if (p >= e) return i64.MIN_VALUE;
  let neg = false;
  if (load<u8>(p) == 45) { neg = true; p++; }
  if (p >= e || e - p > 18) return i64.MIN_VALUE;
  let v: i64 = 0;
  for (let q = p; q < e; q++) {
    const c = load<u8>(q);
    if (c < 48 || c > 57) return i64.MIN_VALUE;
    v = v * 10 + <i64>(c - 48);
  }
  return neg ? -v : v;
}

function isType(c: u8): bool {
  // + - : $ * and RESP3 _ , # ! = ( % ~ > | (attributes)
  return c == 43 || c == 45 || c == 58 || c == 36 || c == 42 || c == 95 || c == 44 || c == 35 ||
    c == 33 || c == 61 || c == 40 || c == 37 || c == 126 || c == 62 || c == 124;
}

export function firstIsType(p: usize, end: usize): bool {
  return p < end && isType(load<u8>(p));
}

/** Skips one RESP value starting at p. */
export function skipValue(p: usize, end: usize, depth: i32): isize {
  if (p >= end) return NEED;
  if (depth > MAX_DEPTH) return BAD;
  const t = load<u8>(p);
  if (!isType(t)) return BAD;
  const le = lineEnd(p + 1, end);
  if (le == -1) return NEED;
  if (le < 0) return BAD;
  const after = <usize>le + 2;
  // simple lines
  if (t == 43 || t == 45 || t == 58 || t == 95 || t == 44 || t == 35 || t == 40) return <isize>after;
  const n = parseInt64(p + 1, <usize>le);
  if (n == i64.MIN_VALUE) return BAD;
  if (t == 36 || t == 33 || t == 61) { // bulk string, bulk error, verbatim
    if (n == -1) return <isize>after;
    if (n < 0 || n > 512 * 1024 * 1024) return BAD;
    const e2 = after + <usize>n;
    if (e2 + 2 > end) return NEED;
    if (load<u8>(e2) != 13 || load<u8>(e2 + 1) != 10) return BAD;
    return <isize>(e2 + 2);
  }
  // aggregates: array, set, push, map (2n), attribute (2n, then the real value)
  if (n == -1) return <isize>after;
  if (n < 0 || n > 1000000) return BAD;
  const items = (t == 37 || t == 124) ? n * 2 : n;
  let q = <isize>after;
  for (let i: i64 = 0; i < items; i++) {
    q = skipValue(<usize>q, end, depth + 1);
    if (q < 0) return q;
  }
  if (t == 124) return skipValue(<usize>q, end, depth + 1);
  return q;
}
