// Redis RESP decoder: the example of a user-written decoder (see decoders/README.md). Commands
// become spans named by the command; only the command and its first argument (the key) are
// kept in db.query.text — values never leave the module.
import { PARSE_NEEDS_MORE, PARSE_INVALID, DIR_REQUEST } from "../abi/abi";
import { input, metaBlock } from "../abi/window";
import { skipValue, lineEnd, parseInt64, firstIsType, NEED, BAD } from "./parse";
import { push, reply, closeStream, tickStreams } from "./stitch";
export { abi_version, input, input_cap } from "../abi/window";

export function meta(): usize {
  return metaBlock('{"name":"redis","version":"1.0.0","protocols":["redis"],"ports":[6379],"transport":"tcp"}');
}

/** Reads bulk string #i (0-based) of a command array; returns its text or "" if absent. */
function arg(p: usize, end: usize, i: i32, upper: bool): string {
  const le = lineEnd(p + 1, end);
  let q = <usize>le + 2;
  const n = <i32>parseInt64(p + 1, <usize>le);
  for (let k = 0; k < n; k++) {
    if (load<u8>(q) != 36) return "";
    const l = lineEnd(q + 1, end);
    const len = <i32>parseInt64(q + 1, <usize>l);
    const s = <usize>l + 2;
    if (k == i) {
      const take = len > 256 ? 256 : len;
      let out = String.UTF8.decodeUnsafe(s, take);
      return upper ? out.toUpperCase() : out;
    }
    q = s + <usize>len + 2;
  }
  return "";
}

function argc(p: usize, end: usize): i32 {
  const le = lineEnd(p + 1, end);
  return <i32>parseInt64(p + 1, <usize>le);
}

/** Whether the bytes start with an array of bulk strings: the only form a command takes ("a
 *  client sends the Redis server an array consisting of only bulk strings", RESP spec). A reply
 *  may have that form too, so such bytes tell no side; any other value only a server sends.
 *  Bytes that end early count as one. */
function commandArray(p: usize, end: usize): bool {
  if (load<u8>(p) != 42) return false;
  const le = lineEnd(p + 1, end);
  if (le < 0) return le == -1;
  const n = parseInt64(p + 1, <usize>le);
  if (n < 1) return false;
  let q = <usize>le + 2;
  for (let i: i64 = 0; i < n; i++) {
    if (q >= end) return true;
    if (load<u8>(q) != 36) return false;
    const r = skipValue(q, end, 1);
    if (r == NEED) return true;
    if (r < 0) return false;
    q = <usize>r;
  }
  return true;
}

export function detect(dir: u32, len: u32): i32 {
  const p = input();
  const end = p + len;
  if (len < 3) return 0;
  if (dir == DIR_REQUEST) {
    const r = skipValue(p, end, 0);
    return r != BAD && load<u8>(p + 1) >= 49 && load<u8>(p + 1) <= 57 && commandArray(p, end) ? 80 : 0;
  }
  return firstIsType(p, end) && skipValue(p, end, 0) != BAD ? 50 : 0;
}

export function parse(stream: u32, dir: u32, len: u32, ts: u64): i32 {
  const base = input();
  const end = base + len;
  let p = base;
  while (p < end) {
    const q = skipValue(p, end, 0);
    if (q == NEED) break;
    if (q == BAD) return p == base ? PARSE_INVALID : <i32>(p - base);
    const size = <u32>(<usize>q - p);
    if (dir == DIR_REQUEST) {
      if (load<u8>(p) == 42 && argc(p, end) > 0) {
        const op = arg(p, end, 0, true);
        const n = argc(p, end);
        let text = op;
        if (n > 1) text += " " + arg(p, end, 1, false);
        for (let k = 2; k < n && k < 8; k++) text += " ?";
        if (n > 8) text += " …";
        push(stream, op, text, ts, size);
      }
    } else {
      const t = load<u8>(p);
      if (t == 45) reply(stream, ts, p + 1, <u32>(lineEnd(p + 1, end) - <isize>(p + 1)), size);
      else if (t != 62) reply(stream, ts, 0, 0, size); // '>' pushes are not replies
    }
    p = <usize>q;
  }
  if (p == base) return PARSE_NEEDS_MORE;
  return <i32>(p - base);
}

export function close(stream: u32): void { closeStream(stream); }
export function tick(now: u64): void { tickStreams(now); }
