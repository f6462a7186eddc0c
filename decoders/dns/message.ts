// DNS message walking (RFC 1035 4.1, RFC 6891 OPT) and transport detection: walks (base, len)
// with bounds checks on every read and records what stitching and emitting need in `msg`.
// Nothing here allocates: results live in one reused Message and static buffers.
import { DIR_RESPONSE } from "../abi/abi";
import {
  HEADER_SIZE, MAX_NAME_WIRE, MAX_POINTER_HOPS, MODE_UDP, MODE_TCP, T_OPT,
} from "./types";

export const CLASS_NEEDS_MORE: i32 = -1;
export const CLASS_INVALID: i32 = 0;

@inline export function u16be(p: usize): u32 {
  return <u32>bswap<u16>(load<u16>(p));
}
@inline export function u32be(p: usize): u32 {
  return bswap<u32>(load<u32>(p));
}

const MAX_MSG_OPTIONS: i32 = 16;

/** What one walk of a message found. Offsets are relative to `base`. Unmanaged (one instance,
 *  never freed): its accesses need no GC bookkeeping (a managed object is re-stored on the shadow
 *  stack around every field access). */
@unmanaged export class Message {
  base: usize = 0;
  len: u32 = 0;
  id: u32 = 0;
  flags: u32 = 0;
  qd: u32 = 0;
  an: u32 = 0;
  ns: u32 = 0;
  ar: u32 = 0;
  hasQuestion: bool = false;
  qtype: u32 = 0;
  qclass: u32 = 0;
  qname: usize = 0;        // wire form: in the message when uncompressed, else in qnameBuf
  qnameLen: u32 = 0;
  answersOff: u32 = 0;     // first answer RR
  answersWalked: u32 = 0;  // answer RRs that lie within bounds
  end: u32 = 0;            // offset after the last RR walked
  complete: bool = false;  // every counted question and RR lay within the message
  hasOpt: bool = false;
  udpSize: u32 = 0;
  extRcode: u32 = 0;
  doBit: bool = false;
  optionCount: i32 = 0;
  options: usize = memory.data(MAX_MSG_OPTIONS * 2); // u16 option codes
  // The first Extended DNS Error option (RFC 8914): its INFO-CODE (-1: none) and EXTRA-TEXT.
  edeCode: i32 = -1;
  edeText: usize = 0;
  edeTextLen: u32 = 0;

  @inline get opcode(): u32 { return (this.flags >> 11) & 0xf; }
  /** RCODE with the OPT record's upper 8 bits (RFC 6891 6.1.3). */
  @inline get rcode(): u32 { return (this.flags & 0xf) | (this.extRcode << 4); }
}

export const msg = new Message();
export const qnameBuf: usize = memory.data(MAX_NAME_WIRE + 1);
export const nameScratch: usize = memory.data(MAX_NAME_WIRE + 1);
/** Where the last name readName() decoded lies (wire form) and its length: the name in the message
 *  itself when it holds no pointer, else the copy at `dst`. Valid during the parse() call only. */
export let namePtr: usize = 0;
export let nameLen: u32 = 0;
/** Where each of the first MAX_ANSWER_AT answer RRs' TYPE field lies, as walkMessage() found it:
 *  the answers are presented without walking their owner names again. */
export const MAX_ANSWER_AT: u32 = 64;
export const answerAt: usize = memory.data(64 * 4);

/** Offset just past the name at `off` as it lies in the message (pointers not followed);
 *  -1 when it runs out of bounds, uses a reserved label type or points forwards. */
export function skipName(base: usize, len: u32, off: u32): i32 {
  let p = off;
  let total: u32 = 0;
  while (true) {
    if (p >= len) return -1;
    const b = <u32>load<u8>(base + p);
    if (b == 0) return <i32>(p + 1);
    const kind = b & 0xc0;
    if (kind == 0xc0) {
      if (p + 2 > len) return -1;
      const target = ((b & 0x3f) << 8) | <u32>load<u8>(base + p + 1);
      if (target >= off) return -1;
      return <i32>(p + 2);
    }
    if (kind != 0) return -1;
    total += b + 1;
    if (total + 1 > MAX_NAME_WIRE) return -1;
    p += b + 1;
  }
}

/** skipName() with the common cases inline: an owner name that is only a pointer backwards, or
 *  the root (an OPT record's). */
@inline function skipOwner(base: usize, len: u32, p: u32): i32 {
  if (p + 2 <= len) {
    const b = <u32>load<u8>(base + p);
    if (b == 0) return <i32>(p + 1);
    if ((b & 0xc0) == 0xc0) {
      const target = ((b & 0x3f) << 8) | <u32>load<u8>(base + p + 1);
      return target < p ? <i32>(p + 2) : -1;
    }
  }
  return skipName(base, len, p);
}

/** Decodes the possibly compressed name at `off` as uncompressed wire form (root label included):
 *  into `dst` when it holds a pointer; namePtr and nameLen say where it is. Returns the offset just past the name where it lies in
 *  the message, or -1 when the name is malformed: out of bounds, a label over 63 octets (the
 *  0x40/0x80 label types), longer than 255 octets, or a pointer that does not go backwards. */
export function readName(base: usize, len: u32, off: u32, dst: usize): i32 {
  let p = off;
  let out: u32 = 0;
  let after: i32 = -1;
  // Each pointer must land before the start of the segment it sits in. Compressors only point at
  // names already written, so real messages pass, and every jump strictly lowers `floor`: no loop.
  let floor = off;
  let hops: u32 = 0;
  // Labels are checked one by one but copied a segment (the run up to a pointer or the root) at once.
  let run = off;
  while (true) {
    if (p >= len) return -1;
    const b = <u32>load<u8>(base + p);
    if (b == 0) {
      if (hops == 0) {
        // uncompressed (every query, most questions): no copy
        namePtr = base + off;
        nameLen = p - off + 1;
        return <i32>(p + 1);
      }
      out = copyRun(dst, out, base, run, p);
      store<u8>(dst + out, 0);
      namePtr = dst;
      nameLen = out + 1;
      return after < 0 ? <i32>(p + 1) : after;
    }
    const kind = b & 0xc0;
    if (kind == 0xc0) {
      if (p + 2 > len) return -1;
      const target = ((b & 0x3f) << 8) | <u32>load<u8>(base + p + 1);
      if (after < 0) after = <i32>(p + 2);
      if (target >= floor) return -1;
      if (++hops > MAX_POINTER_HOPS) return -1;
      out = copyRun(dst, out, base, run, p);
      p = target;
      floor = target;
      run = target;
      continue;
    }
    if (kind != 0) return -1;
    if (out + (p - run) + b + 2 > MAX_NAME_WIRE) return -1;
    if (p + 1 + b > len) return -1;
    p += b + 1;
  }
}

/** Appends the labels at [from, to) of the message to the name at dst (out bytes so far). */
@inline function copyRun(dst: usize, out: u32, base: usize, from: u32, to: u32): u32 {
  memory.copy(dst + out, base + from, to - from);
  return out + (to - from);
}

/** Walks header, questions and every RR of the message at (base, len) into `msg`.
 *  False when there is not even a header. */
export function walkMessage(base: usize, len: u32): bool {
  const m = msg;
  m.base = base;
  m.len = len;
  m.hasQuestion = false;
  m.qname = qnameBuf;
  m.qnameLen = 0;
  m.qtype = 0;
  m.qclass = 0;
  m.answersWalked = 0;
  m.complete = false;
  m.hasOpt = false;
  m.udpSize = 0;
  m.extRcode = 0;
  m.doBit = false;
  m.optionCount = 0;
  m.edeCode = -1;
  if (len < HEADER_SIZE) return false;
  m.id = u16be(base);
  m.flags = u16be(base + 2);
  m.qd = u16be(base + 4);
  m.an = u16be(base + 6);
  m.ns = u16be(base + 8);
  m.ar = u16be(base + 10);
  let p: u32 = HEADER_SIZE;
  m.answersOff = p;
  m.end = p;
  for (let i: u32 = 0; i < m.qd; i++) {
    const r = i == 0 ? readName(base, len, p, qnameBuf) : skipName(base, len, p);
    if (r < 0 || <u32>r + 4 > len) return true;
    if (i == 0) {
      m.hasQuestion = true;
      m.qname = namePtr;
      m.qnameLen = nameLen;
      m.qtype = u16be(base + <usize>r);
      m.qclass = u16be(base + <usize>r + 2);
    }
    p = <u32>r + 4;
  }
  m.answersOff = p;
  m.end = p;
  const total = m.an + m.ns + m.ar;
  const additionalFrom = m.an + m.ns;
  for (let i: u32 = 0; i < total; i++) {
    const r = skipOwner(base, len, p);
    if (r < 0 || <u32>r + 10 > len) return true;
    if (i < MAX_ANSWER_AT) store<u32>(answerAt + <usize>(i << 2), <u32>r);
    const q = base + <usize>r;
    const type = u16be(q);
    const rdlen = u16be(q + 8);
    const rd = <u32>r + 10;
    if (rd + rdlen > len) return true;
    if (type == T_OPT && i >= additionalFrom && !m.hasOpt) readOpt(q, base + <usize>rd, rdlen);
    p = rd + rdlen;
    if (i < m.an) m.answersWalked = i + 1;
    m.end = p;
  }
  m.complete = true;
  return true;
}

/** EDNS0 (RFC 6891 6.1.2-6.1.3): CLASS is the sender's UDP payload size, TTL carries the
 *  extended RCODE, the version and the DO bit; RDATA is a list of {code, length, data}. */
function readOpt(rr: usize, rdata: usize, rdlen: u32): void {
  const m = msg;
  m.hasOpt = true;
  m.udpSize = u16be(rr + 2);
  const ttl = u32be(rr + 4);
  m.extRcode = ttl >> 24;
  m.doBit = (ttl & 0x8000) != 0;
  let p: u32 = 0;
  while (p + 4 <= rdlen) {
    const code = u16be(rdata + p);
    const olen = u16be(rdata + p + 2);
    if (p + 4 + olen > rdlen) break;
    if (code == 15 && olen >= 2 && m.edeCode < 0) {
      m.edeCode = <i32>u16be(rdata + p + 4);
      m.edeText = rdata + <usize>p + 6;
      m.edeTextLen = olen - 2;
    }
    if (m.optionCount < MAX_MSG_OPTIONS) {
      store<u16>(m.options + (<usize>m.optionCount << 1), <u16>code);
      m.optionCount++;
    }
    p += 4 + olen;
  }
}

/** A whole message fills exactly (base, len). */
function wholeMessage(base: usize, len: u32): bool {
  return walkMessage(base, len) && msg.complete && msg.end == len && saneHeader(base);
}

/** The first 12 bytes could be a DNS header: a known opcode, Z clear, no RCODE in a query, few
 *  questions. Used where the rest of the message is not there yet. */
function saneHeader(base: usize): bool {
  const flags = u16be(base + 2);
  const opcode = (flags >> 11) & 0xf;
  if (opcode == 3 || opcode > 6) return false;
  // The Z bit is zero, and only responses carry an RCODE (RFC 1035 4.1.1).
  if ((flags & 0x0040) != 0) return false;
  if ((flags & 0x8000) == 0 && (flags & 0xf) != 0) return false;
  const qd = u16be(base + 4);
  return qd <= 64;
}

/** Works out a stream's framing from its first bytes: MODE_UDP (a datagram holding one message),
 *  MODE_TCP (u16 length prefix), CLASS_NEEDS_MORE, or CLASS_INVALID (not DNS). */
export function classify(base: usize, len: u32): i32 {
  if (len < 2) return CLASS_NEEDS_MORE;
  const framed = u16be(base);
  if (framed >= HEADER_SIZE && framed + 2 == len && wholeMessage(base + 2, framed)) return MODE_TCP;
  if (len >= HEADER_SIZE && wholeMessage(base, len)) return MODE_UDP;
  if (framed >= HEADER_SIZE && framed + 2 < len && wholeMessage(base + 2, framed)) return MODE_TCP;
  // A datagram cut short by the capture or with trailing bytes: its question must still parse.
  if (len >= HEADER_SIZE && saneHeader(base) && u16be(base + 4) >= 1 && walkMessage(base, len) && msg.hasQuestion) return MODE_UDP;
  if (framed >= HEADER_SIZE && framed + 2 > len) {
    if (len < HEADER_SIZE + 2) return CLASS_NEEDS_MORE;
    if (saneHeader(base + 2)) return CLASS_NEEDS_MORE;
  }
  return CLASS_INVALID;
}

/** detect(): confidence 0-100 from a direction's first bytes. The header's QR bit says which
 *  side sent them (RFC 1035 4.1.1: 0 a query, 1 a response): a message of the other side scores
 *  0, so the host can tell the sides of a connection older than the agent from any message. */
export function confidence(dir: i32, base: usize, len: u32): i32 {
  const c = classify(base, len);
  if (c == CLASS_INVALID) return 0;
  // classify() answers NEEDS_MORE past a header's length only for a length-prefixed one
  const at: i32 = c == MODE_UDP ? 0 : len >= HEADER_SIZE + 2 ? 2 : -1;
  if (at >= 0 && ((u16be(base + <usize>at + 2) & 0x8000) != 0) != (dir == DIR_RESPONSE)) return 0;
  if (c == CLASS_NEEDS_MORE) return len >= HEADER_SIZE + 2 ? 40 : 10;
  if (!msg.complete) return 50;
  return 90;
}
