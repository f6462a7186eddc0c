// Hints: header fields the peer's own HTTP/2 library decoded or was given to encode, read from
// its memory by uprobes (bpf/tls.bpf.c, nghttp2). They name what HPACK on the wire cannot: the
// dynamic-table entries a connection older than the agent inserted before we looked.
//
// One hint = one field: u32 stream_id | u8 block (0 headers, 1 trailers) | u8 0 | u16 name_len |
// u32 value_len | name | value (struct tg_tls_h2_field, bpf/include/tls.h). A hint never
// overrides the wire: a list is used only when it has exactly the block's field count and
// agrees with every field the wire did decode (stitch.ts, fillFromHints).
import { Conn, HintSet, HINT_SETS_MAX, HINT_BYTES_MAX, HEADER_LIST_CAP } from "./types";
import { appendField } from "./stitch";

const HINT_HEAD: u32 = 12;

/** Returns 0 when the hint was taken, -3 (ignored) when malformed. */
export function takeHint(c: Conn, dir: i32, p: usize, len: u32): u32 {
  if (len < HINT_HEAD) return 0xffffffff;
  const sid = load<u32>(p);
  const block = <i32>load<u8>(p, 4);
  const nl = <u32>load<u16>(p, 6);
  const vl = load<u32>(p, 8);
  if (block > 1 || sid == 0 || <u64>HINT_HEAD + <u64>nl + <u64>vl > <u64>len) return 0xffffffff;
  c.hinted = true;
  const hs = hintSet(c, sid);
  const slot = dir * 2 + block;
  let list = unchecked(hs.lists[slot]);
  const need = <i32>(9 + nl + vl);
  const used = unchecked(hs.used[slot]);
  if (used + need > HEADER_LIST_CAP) { hs.cut = true; return sid; }
  if (list == null || list.length < used + need) {
    let cap = list == null ? 512 : list.length * 2;
    while (cap < used + need) cap *= 2;
    const grow = cap - (list == null ? 0 : list.length);
    while (c.hintBytes + grow > HINT_BYTES_MAX && c.hints.size > 1) dropLowest(c, sid);
    if (c.hintBytes + grow > HINT_BYTES_MAX) { hs.cut = true; return sid; }
    c.hintBytes += grow;
    const nb = new Uint8Array(cap);
    if (list != null) memory.copy(nb.dataStart, list.dataStart, <usize>used);
    list = nb;
    unchecked(hs.lists[slot] = nb);
  }
  unchecked(hs.used[slot] = appendField(list, used, p + HINT_HEAD, nl, p + HINT_HEAD + <usize>nl, vl));
  unchecked(hs.counts[slot] = hs.counts[slot] + 1);
  return sid;
}

function hintSet(c: Conn, sid: u32): HintSet {
  if (c.hints.has(sid)) return c.hints.get(sid);
  if (c.hints.size >= HINT_SETS_MAX) dropLowest(c, sid);
  const hs = new HintSet();
  c.hints.set(sid, hs);
  return hs;
}

/** Forgets the hint set of the lowest stream id other than `keep` (ids only grow: the stalest). */
function dropLowest(c: Conn, keep: u32): void {
  const keys = c.hints.keys();
  let low: u32 = 0xffffffff;
  for (let i = 0; i < keys.length; i++) if (keys[i] != keep && keys[i] < low) low = keys[i];
  if (low == 0xffffffff) return;
  forgetHints(c, low);
}

/** Drops one stream's hint set and its bytes from the connection's account. */
export function forgetHints(c: Conn, sid: u32): void {
  if (!c.hints.has(sid)) return;
  const hs = c.hints.get(sid);
  for (let i = 0; i < 4; i++) {
    const l = unchecked(hs.lists[i]);
    if (l != null) c.hintBytes -= l.length;
  }
  c.hints.delete(sid);
}
