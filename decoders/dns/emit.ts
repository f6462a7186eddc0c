// DNS exchange records: the query (a Pending slot, or none) with the response in `msg`.
import { KIND_EXCHANGE, FLAG_ERROR, FLAG_NO_RESPONSE, FLAG_NO_REQUEST, FLAG_UNKNOWN, FLAG_TRUNCATED } from "../abi/abi";
import {
  A_NETWORK_PROTOCOL_NAME, A_ERROR_TYPE, A_DNS_QUESTION_NAME, A_DNS_QUESTION_TYPE,
  A_DNS_RESPONSE_CODE, A_DNS_ANSWERS, A_TELEGEN_DNS_ID, A_TELEGEN_DNS_ANSWER_COUNT,
  A_TELEGEN_DNS_TRUNCATED, A_TELEGEN_DNS_AUTHORITY_COUNT, A_TELEGEN_DNS_ADDITIONAL_COUNT,
  A_TELEGEN_DNS_EDNS_UDP_PAYLOAD_SIZE, A_TELEGEN_DNS_OPCODE, A_TELEGEN_DNS_FLAGS,
  A_TELEGEN_DNS_EDNS_DO, A_TELEGEN_DNS_EDNS_OPTIONS, A_TELEGEN_DNS_EDE_INFO_CODE, A_TELEGEN_DNS_EDE_EXTRA_TEXT,
} from "../abi/attributes";
import { begin, finish, orFlags, addBytes, addInt, addBool, beginStrs, addStrsItem, endStrs } from "../abi/emit";
import {
  Pending, F_TC, RCODE_FORMERR, RCODE_SERVFAIL, RCODE_NOTIMP, RCODE_REFUSED,
  T_A, T_AAAA, T_NS, T_MD, T_MF, T_CNAME, T_MB, T_MG, T_MR, T_PTR, T_DNAME, T_MX, T_TXT, T_SRV,
  T_SOA, T_NAPTR, T_CAA, T_SVCB, T_HTTPS, T_RRSIG, T_ANY, T_OPT,
} from "./types";
import { msg, nameScratch, namePtr, nameLen, readName, skipName, u16be, u32be, answerAt, MAX_ANSWER_AT } from "./message";
import {
  textBuf, textLen, textCut, textReset, textRewind, putByte, putAscii, putDec, putHexBytes, putIPv4, putIPv6,
  putName, putChars, putBase64, putType, mnemonic, M_TYPE, M_RCODE, M_OPCODE, M_OPTION, M_FLAGS,
} from "./present";

function isFailure(rcode: u32): bool {
  return rcode == RCODE_SERVFAIL || rcode == RCODE_REFUSED || rcode == RCODE_FORMERR || rcode == RCODE_NOTIMP;
}

function addText(id: i32): void {
  addBytes(id, textBuf, textLen);
  if (textCut) orFlags(FLAG_TRUNCATED);
}

/** A value from the mnemonic table ([length octet, bytes]). */
function addMnemonic(id: i32, m: usize): void {
  addBytes(id, m + 1, load<u8>(m));
}

const PROTOCOL_NAME: usize = memory.data<u8>([100, 110, 115]); // "dns"

// The header flags dig lists (qr aa tc rd ra ad cd): the mnemonic key ignores opcode and rcode.
const SHOWN_FLAGS: u32 = 0x87b0;

/** One exchange record. `q` is the query (null: response without its query); `withResponse`
 *  says `msg` holds the response (false: the query got none). */
export function emitExchange(stream: u32, q: Pending | null, withResponse: bool, tsStart: u64, tsEnd: u64, extraFlags: i32 = 0): void {
  const m = msg;
  let flags: i32 = extraFlags;
  if (q === null) flags |= FLAG_NO_REQUEST;
  if (!withResponse) flags |= FLAG_NO_RESPONSE;
  const rcode = withResponse ? m.rcode : 0;
  if (withResponse) {
    if (isFailure(rcode)) flags |= FLAG_ERROR;
    if (!m.complete) flags |= FLAG_UNKNOWN;
  }
  begin(KIND_EXCHANGE, flags, <u64>stream, tsStart, tsEnd);
  addBytes(A_NETWORK_PROTOCOL_NAME, PROTOCOL_NAME, 3);

  // The question as the client sent it (0x20-randomised case kept); the response's otherwise.
  textReset();
  if (q !== null && q.hasQuestion) {
    putName(q.name, q.nameLen);
    addText(A_DNS_QUESTION_NAME);
    addMnemonic(A_DNS_QUESTION_TYPE, mnemonic(M_TYPE, q.qtype));
  } else if (withResponse && m.hasQuestion) {
    putName(m.qname, m.qnameLen);
    addText(A_DNS_QUESTION_NAME);
    addMnemonic(A_DNS_QUESTION_TYPE, mnemonic(M_TYPE, m.qtype));
  }

  const headerFlags: u32 = withResponse ? m.flags : (q !== null ? <u32>q.flags : 0);
  addInt(A_TELEGEN_DNS_ID, withResponse ? m.id : (q !== null ? <i64>q.id : 0));
  // Nearly every message is a standard QUERY: only the others (NOTIFY, UPDATE, ...) are named.
  const opcode = (headerFlags >> 11) & 0xf;
  if (opcode != 0) addMnemonic(A_TELEGEN_DNS_OPCODE, mnemonic(M_OPCODE, opcode));
  addMnemonic(A_TELEGEN_DNS_FLAGS, mnemonic(M_FLAGS, headerFlags & SHOWN_FLAGS));

  if (withResponse) {
    const rc = mnemonic(M_RCODE, rcode);
    addMnemonic(A_DNS_RESPONSE_CODE, rc);
    if (flags & FLAG_ERROR) addMnemonic(A_ERROR_TYPE, rc);
    const qtype = q !== null && q.hasQuestion ? <u32>q.qtype : m.qtype;
    if (m.answersWalked > 0) addAnswers(qtype);
    addInt(A_TELEGEN_DNS_ANSWER_COUNT, m.an);
    addInt(A_TELEGEN_DNS_AUTHORITY_COUNT, m.ns);
    addInt(A_TELEGEN_DNS_ADDITIONAL_COUNT, m.ar);
    addBool(A_TELEGEN_DNS_TRUNCATED, (m.flags & F_TC) != 0);
    // Why the server answered as it did (RFC 8914: 18 Prohibited, 6 DNSSEC Bogus, 22 No
    // Reachable Authority, ...): the server's words, never the query's.
    if (m.edeCode >= 0) {
      addInt(A_TELEGEN_DNS_EDE_INFO_CODE, m.edeCode);
      if (m.edeTextLen > 0) {
        textReset();
        putChars(m.edeText, m.edeTextLen, false);
        addText(A_TELEGEN_DNS_EDE_EXTRA_TEXT);
      }
    }
  }

  // EDNS as the client asked (payload size, DO, options); the server's when the query is unseen.
  if (q !== null && q.udpSize >= 0) {
    addInt(A_TELEGEN_DNS_EDNS_UDP_PAYLOAD_SIZE, q.udpSize);
    addBool(A_TELEGEN_DNS_EDNS_DO, q.doBit);
    if (q.optionCount > 0) {
      beginStrs(A_TELEGEN_DNS_EDNS_OPTIONS);
      for (let i = 0; i < q.optionCount; i++) addOptionItem(load<u16>(q.options + (<usize>i << 1)));
      endStrs();
    }
  } else if (withResponse && m.hasOpt) {
    addInt(A_TELEGEN_DNS_EDNS_UDP_PAYLOAD_SIZE, m.udpSize);
    addBool(A_TELEGEN_DNS_EDNS_DO, m.doBit);
    if (m.optionCount > 0) {
      beginStrs(A_TELEGEN_DNS_EDNS_OPTIONS);
      for (let i = 0; i < m.optionCount; i++) addOptionItem(load<u16>(m.options + (<usize>i << 1)));
      endStrs();
    }
  }
  finish();
}

function addOptionItem(code: u32): void {
  const m = mnemonic(M_OPTION, code);
  addStrsItem(m + 1, load<u8>(m));
}

/** dns.answers: each answer-section RR's data in presentation form. Signatures are left out
 *  unless asked for: they are proofs about the answers, not answers. */
function addAnswers(qtype: u32): void {
  const m = msg;
  const base = m.base;
  const len = m.len;
  beginStrs(A_DNS_ANSWERS);
  let p = m.answersOff;
  for (let i: u32 = 0; i < m.answersWalked; i++) {
    const r = i < MAX_ANSWER_AT ? <i32>load<u32>(answerAt + <usize>(i << 2)) : skipName(base, len, p);
    if (r < 0) break; // walkMessage already bounded these; kept for safety
    const rr = base + <usize>r;
    const type = u16be(rr);
    const rd = <u32>r + 10;
    const rdlen = u16be(rr + 8);
    p = rd + rdlen;
    if (type == T_OPT) continue;
    if (type == T_RRSIG && qtype != T_RRSIG && qtype != T_ANY) continue;
    textReset();
    if (!putRdata(type, rd, rdlen)) {
      textReset();
      putGeneric(base + <usize>rd, rdlen);
    }
    addStrsItem(textBuf, textLen);
    if (textCut) orFlags(FLAG_TRUNCATED);
  }
  endStrs();
}

/** RFC 3597 3: \# length hex. */
function putGeneric(p: usize, n: u32): void {
  putByte(92);
  putByte(35);
  putByte(32);
  putDec(n);
  if (n > 0) {
    putByte(32);
    putHexBytes(p, n);
  }
}

/** A name inside RDATA (compression allowed, as in practice); -1 when malformed or outside it. */
/** DS/CDS and DNSKEY/CDNSKEY start alike: a 16-bit field, two octets, each followed by a space. */
function putU16U8U8(p: usize): void {
  putDec(u16be(p));
  putByte(32);
  putDec(load<u8>(p + 2));
  putByte(32);
  putDec(load<u8>(p + 3));
  putByte(32);
}

function putRdataName(off: u32, limit: u32): i32 {
  const r = readName(msg.base, msg.len, off, nameScratch);
  if (r < 0 || <u32>r > limit) return -1;
  putName(namePtr, nameLen);
  return r;
}

/** A <character-string>: length octet then bytes. Returns the offset after it, -1 when cut. */
function putCharString(off: u32, limit: u32, quoted: bool): i32 {
  if (off >= limit) return -1;
  const n = <u32>load<u8>(msg.base + <usize>off);
  if (off + 1 + n > limit) return -1;
  if (quoted) putByte(34);
  putChars(msg.base + <usize>off + 1, n, quoted);
  if (quoted) putByte(34);
  return <i32>(off + 1 + n);
}

/** The RDATA of one RR in presentation form; false when it does not fit the type's layout. */
function putRdata(type: u32, rd: u32, rdlen: u32): bool {
  const base = msg.base;
  const end = rd + rdlen;
  const p = base + <usize>rd;
  switch (type) {
    case T_A: {
      if (rdlen != 4) return false;
      putIPv4(p);
      return true;
    }
    case T_AAAA: {
      if (rdlen != 16) return false;
      putIPv6(p);
      return true;
    }
    case T_NS: case T_MD: case T_MF: case T_CNAME: case T_MB: case T_MG: case T_MR: case T_PTR: case T_DNAME: {
      return putRdataName(rd, end) == <i32>end;
    }
    case T_MX: case 18: case 21: case 36: {
      // MX; AFSDB (RFC 1183 1), RT (1183 3.3), KX (RFC 2230): a 16-bit number, then a name
      if (rdlen < 3) return false;
      putDec(u16be(p));
      putByte(32);
      return putRdataName(rd + 2, end) == <i32>end;
    }
    case T_TXT: case 99: { // SPF (RFC 4408 3.1.1): TXT's form
      // The character-strings of one TXT RR read as one text (RFC 7208 3.3, RFC 6376 3.6.2.2).
      let q = rd;
      while (q < end) {
        const r = putCharString(q, end, false);
        if (r < 0) return false;
        q = <u32>r;
      }
      return true;
    }
    case T_SRV: {
      if (rdlen < 7) return false;
      putDec(u16be(p));
      putByte(32);
      putDec(u16be(p + 2));
      putByte(32);
      putDec(u16be(p + 4));
      putByte(32);
      return putRdataName(rd + 6, end) == <i32>end;
    }
    case T_SOA: {
      const r1 = putRdataName(rd, end);
      if (r1 < 0) return false;
      putByte(32);
      const r2 = putRdataName(<u32>r1, end);
      if (r2 < 0 || <u32>r2 + 20 != end) return false;
      const nums = base + <usize>r2;
      for (let i = 0; i < 5; i++) {
        putByte(32);
        putDec(u32be(nums + <usize>(i * 4)));
      }
      return true;
    }
    case T_NAPTR: {
      if (rdlen < 7) return false;
      putDec(u16be(p));
      putByte(32);
      putDec(u16be(p + 2));
      let q: i32 = <i32>(rd + 4);
      for (let i = 0; i < 3; i++) {
        putByte(32);
        q = putCharString(<u32>q, end, true);
        if (q < 0) return false;
      }
      putByte(32);
      return putRdataName(<u32>q, end) == <i32>end;
    }
    case T_CAA: {
      // RFC 8659 4.1.1: flags tag "value"
      if (rdlen < 2) return false;
      const tagLen = <u32>load<u8>(p + 1);
      if (tagLen == 0 || tagLen + 2 > rdlen) return false;
      putDec(load<u8>(p));
      putByte(32);
      putChars(p + 2, tagLen, false);
      putByte(32);
      putByte(34);
      putChars(p + 2 + <usize>tagLen, rdlen - 2 - tagLen, true);
      putByte(34);
      return true;
    }
    case T_SVCB: case T_HTTPS: {
      return putSvcb(rd, end);
    }
    case 13: {
      // HINFO (RFC 1035 3.3.2): "cpu" "os"
      const r = putCharString(rd, end, true);
      if (r < 0) return false;
      putByte(32);
      return putCharString(<u32>r, end, true) == <i32>end;
    }
    case 43: case 59: {
      // DS, CDS (RFC 4034 5.3): key tag, algorithm, digest type, digest in hex
      if (rdlen < 5) return false;
      putU16U8U8(p);
      putHexBytes(p + 4, rdlen - 4);
      return true;
    }
    case 44: {
      // SSHFP (RFC 4255 3.2): algorithm, fingerprint type, fingerprint in hex
      if (rdlen < 3) return false;
      putDec(load<u8>(p));
      putByte(32);
      putDec(load<u8>(p + 1));
      putByte(32);
      putHexBytes(p + 2, rdlen - 2);
      return true;
    }
    case 48: case 60: {
      // DNSKEY, CDNSKEY (RFC 4034 2.2): flags, protocol, algorithm, public key in base64
      if (rdlen < 5) return false;
      putU16U8U8(p);
      putBase64(p + 4, rdlen - 4);
      return true;
    }
    case 51: {
      // NSEC3PARAM (RFC 5155 4.3): algorithm, flags, iterations, salt in hex ('-' when empty)
      if (rdlen < 5) return false;
      const saltLen = <u32>load<u8>(p + 4);
      if (5 + saltLen != rdlen) return false;
      putNsec3Params(p, saltLen);
      return true;
    }
    case 52: case 53: {
      // TLSA, SMIMEA (RFC 6698 2.2, RFC 8162): usage, selector, matching type, data in hex
      if (rdlen < 4) return false;
      putDec(load<u8>(p));
      putByte(32);
      putDec(load<u8>(p + 1));
      putByte(32);
      putDec(load<u8>(p + 2));
      putByte(32);
      putHexBytes(p + 3, rdlen - 3);
      return true;
    }
    case T_RRSIG: {
      // RRSIG (RFC 4034 3.2): type covered, algorithm, labels, original TTL, expiration and
      // inception (YYYYMMDDHHmmSS, UTC), key tag, signer's name, signature in base64
      if (rdlen < 19) return false;
      putType(u16be(p));
      putByte(32);
      putDec(load<u8>(p + 2));
      putByte(32);
      putDec(load<u8>(p + 3));
      putByte(32);
      putDec(u32be(p + 4));
      putByte(32);
      putSigTime(u32be(p + 8));
      putByte(32);
      putSigTime(u32be(p + 12));
      putByte(32);
      putDec(u16be(p + 16));
      putByte(32);
      const r = putRdataName(rd + 18, end);
      if (r < 0 || <u32>r >= end) return false;
      putByte(32);
      putBase64(base + <usize>r, end - <u32>r);
      return true;
    }
    case 14: case 17: {
      // MINFO (RFC 1035 3.3.7), RP (RFC 1183 2.2): two names
      const r = putRdataName(rd, end);
      if (r < 0) return false;
      putByte(32);
      return putRdataName(<u32>r, end) == <i32>end;
    }
    case 49: case 61: {
      // DHCID (RFC 4701 3.6), OPENPGPKEY (RFC 7929 2.3): the RDATA in base64
      if (rdlen == 0) return false;
      putBase64(p, rdlen);
      return true;
    }
    case 108: case 109: {
      // EUI48, EUI64 (RFC 7043 3.2, 4.2): hex pairs joined by '-'
      if (rdlen != (type == 108 ? 6 : 8)) return false;
      for (let i: u32 = 0; i < rdlen; i++) {
        if (i > 0) putByte(45);
        putHexBytes(p + <usize>i, 1);
      }
      return true;
    }
    case 62: {
      // CSYNC (RFC 7477 2.1.1): SOA serial, flags, then the types of the bitmap
      if (rdlen < 6) return false;
      putDec(u32be(p));
      putByte(32);
      putDec(u16be(p + 4));
      return putTypeBitmap(p + 6, rdlen - 6);
    }
    case 63: {
      // ZONEMD (RFC 8976 2.3): serial, scheme, hash algorithm, digest in hex
      if (rdlen < 7) return false;
      putDec(u32be(p));
      putByte(32);
      putDec(load<u8>(p + 4));
      putByte(32);
      putDec(load<u8>(p + 5));
      putByte(32);
      putHexBytes(p + 6, rdlen - 6);
      return true;
    }
    case 47: {
      // NSEC (RFC 4034 4.2): next domain name, then the types of the bitmap
      const r = putRdataName(rd, end);
      if (r < 0) return false;
      return putTypeBitmap(base + <usize>r, end - <u32>r);
    }
    case 50: {
      // NSEC3 (RFC 5155 3.3): algorithm, flags, iterations, salt in hex ('-' when empty), next
      // hashed owner in base32hex without padding, then the types of the bitmap
      if (rdlen < 6) return false;
      const saltLen = <u32>load<u8>(p + 4);
      if (saltLen + 6 > rdlen) return false;
      const hashLen = <u32>load<u8>(p + 5 + <usize>saltLen);
      const types = saltLen + hashLen + 6;
      if (hashLen == 0 || types > rdlen) return false;
      putNsec3Params(p, saltLen);
      putByte(32);
      putBase32Hex(p + 6 + <usize>saltLen, hashLen);
      return putTypeBitmap(p + <usize>types, rdlen - types);
    }
    case 29: {
      // LOC (RFC 1876 3): latitude, longitude, altitude, size, horizontal and vertical precision,
      // written as the zone file and dig write them: "52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m"
      if (rdlen != 16 || load<u8>(p) != 0) return false; // version 0 is the only one defined
      for (let i: usize = 1; i < 4; i++) {
        const b = <u32>load<u8>(p + i);
        if ((b >> 4) > 9 || (b & 15) > 9) return false;   // mantissa and power of ten are digits
      }
      if (!putLocAngle(u32be(p + 4), 90, 78, 83)) return false;  // N, S
      putByte(32);
      if (!putLocAngle(u32be(p + 8), 180, 69, 87)) return false; // E, W
      putByte(32);
      // Altitude in centimetres above a base 100 000 m below the WGS 84 reference spheroid.
      const alt = <i64>u32be(p + 12) - 10000000;
      if (alt < 0) putByte(45);
      putCentimetres(<u64>(alt < 0 ? -alt : alt));
      for (let i: usize = 1; i < 4; i++) {
        putByte(32);
        // size, precisions: mantissa * 10^exponent centimetres; whole metres from 1 m (dig's form)
        const b = <u32>load<u8>(p + i);
        let cm = <u64>(b >> 4);
        for (let e: u32 = 0; e < (b & 15); e++) cm *= 10;
        if ((b & 15) >= 2) { putDec(cm / 100); putByte(109); } else putCentimetres(cm);
      }
      return true;
    }
    case 256: {
      // URI (RFC 7553 4.4): priority, weight, "target" (the rest of the RDATA)
      if (rdlen < 5) return false;
      putDec(u16be(p));
      putByte(32);
      putDec(u16be(p + 2));
      putByte(32);
      putByte(34);
      putChars(p + 4, rdlen - 4, true);
      putByte(34);
      return true;
    }
  }
  return false;
}

/** NSEC3 and NSEC3PARAM start alike (RFC 5155 3.3, 4.3): algorithm, flags, iterations, salt in
 *  hex ('-' when empty). */
function putNsec3Params(p: usize, saltLen: u32): void {
  putDec(load<u8>(p));
  putByte(32);
  putDec(load<u8>(p + 1));
  putByte(32);
  putDec(u16be(p + 2));
  putByte(32);
  if (saltLen == 0) putByte(45); else putHexBytes(p + 5, saltLen);
}

/** An NSEC/NSEC3 type bitmap (RFC 4034 4.1.2): windows in increasing order, each a window
 *  number, a length of 1-32 and that many bytes whose bits, most significant first, are the types
 *  window * 256 + 0..255 present; each type written after a space. False when malformed. */
function putTypeBitmap(p: usize, n: u32): bool {
  let q: u32 = 0;
  let last: i32 = -1;
  while (q < n) {
    if (q + 2 > n) return false;
    const window = <i32>load<u8>(p + <usize>q);
    const len = <u32>load<u8>(p + <usize>q + 1);
    if (window <= last || len == 0 || len > 32 || q + 2 + len > n) return false;
    last = window;
    for (let i: u32 = 0; i < len; i++) {
      const b = <u32>load<u8>(p + <usize>(q + 2 + i));
      for (let bit: u32 = 0; bit < 8; bit++) {
        if ((b & (0x80 >> bit)) == 0) continue;
        putByte(32);
        putType(<u32>window * 256 + i * 8 + bit);
      }
    }
    q += 2 + len;
  }
  return true;
}

/** Base32 with the extended hex alphabet (RFC 4648 7), lower case, no padding (RFC 5155 3.3). */
function putBase32Hex(p: usize, n: u32): void {
  let acc: u32 = 0;
  let bits: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    acc = (acc << 8) | <u32>load<u8>(p + <usize>i);
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      putByte(b32Digit((acc >> bits) & 31));
    }
  }
  if (bits > 0) putByte(b32Digit((acc << (5 - bits)) & 31));
}

@inline function b32Digit(v: u32): u32 {
  return v < 10 ? 48 + v : 87 + v; // 0-9, a-v
}

/** An RRSIG time, seconds since 1970-01-01 UTC, as YYYYMMDDHHmmSS (RFC 4034 3.2). */
function putSigTime(t: u32): void {
  const days = <i32>(t / 86400);
  let sec = t % 86400;
  // The civil date of a day count (proleptic Gregorian calendar, eras of 400 years from 0000-03-01).
  const z = days + 719468;
  const era = z / 146097;
  const doe = z - era * 146097;
  const yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const mp = (5 * doy + 2) / 153;
  const day = doy - (153 * mp + 2) / 5 + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  putDec(<u64>year);
  put2(<u32>month);
  put2(<u32>day);
  put2(sec / 3600);
  sec %= 3600;
  put2(sec / 60);
  put2(sec % 60);
}

@inline function put2(v: u32): void {
  putByte(48 + v / 10);
  putByte(48 + v % 10);
}

/** A LOC latitude or longitude (thousandths of an arc second, 2^31 at the equator or prime
 *  meridian): "degrees minutes seconds.mmm" and the hemisphere letter; false past `maxDeg`. */
function putLocAngle(v: u32, maxDeg: u32, pos: u32, neg: u32): bool {
  const north = v >= 0x80000000;
  let ms = north ? v - 0x80000000 : 0x80000000 - v;
  const frac = ms % 1000;
  ms /= 1000;
  const sec = ms % 60;
  ms /= 60;
  const min = ms % 60;
  const deg = ms / 60;
  if (deg > maxDeg || (deg == maxDeg && (min | sec | frac) != 0)) return false;
  putDec(deg);
  putByte(32);
  putDec(min);
  putByte(32);
  putDec(sec);
  putByte(46);
  putByte(48 + frac / 100);
  putByte(48 + frac / 10 % 10);
  putByte(48 + frac % 10);
  putByte(32);
  putByte(north ? pos : neg);
  return true;
}

/** Centimetres as metres with two decimals and the unit: "2.00m". */
function putCentimetres(cm: u64): void {
  putDec(cm / 100);
  putByte(46);
  putByte(48 + <u32>(cm % 100 / 10));
  putByte(48 + <u32>(cm % 10));
  putByte(109);
}

/** RFC 9460 2.1: SvcPriority TargetName SvcParams (key=value, space separated). */
function putSvcb(rd: u32, end: u32): bool {
  const base = msg.base;
  if (rd + 3 > end) return false;
  putDec(u16be(base + <usize>rd));
  putByte(32);
  const r = putRdataName(rd + 2, end);
  if (r < 0) return false;
  let q = <u32>r;
  while (q < end) {
    if (q + 4 > end) return false;
    const key = u16be(base + <usize>q);
    const vlen = u16be(base + <usize>q + 2);
    const v = q + 4;
    if (v + vlen > end) return false;
    putByte(32);
    putSvcParam(key, base + <usize>v, vlen);
    q = v + vlen;
  }
  return true;
}

function putSvcKey(key: u32): void {
  switch (key) {
    case 0: putAscii("mandatory"); return;
    case 1: putAscii("alpn"); return;
    case 2: putAscii("no-default-alpn"); return;
    case 3: putAscii("port"); return;
    case 4: putAscii("ipv4hint"); return;
    case 5: putAscii("ech"); return;
    case 6: putAscii("ipv6hint"); return;
    case 7: putAscii("dohpath"); return;
    case 8: putAscii("ohttp"); return;
  }
  putAscii("key");
  putDec(key);
}

function putSvcParam(key: u32, v: usize, n: u32): void {
  const mark = textLen;
  putSvcKey(key);
  if (key == 2 || key == 8) {
    if (n == 0) return;
  } else if (key == 0) {
    // mandatory: a list of keys
    if (n > 0 && (n & 1) == 0) {
      putByte(61);
      for (let i: u32 = 0; i < n; i += 2) {
        if (i > 0) putByte(44);
        putSvcKey(u16be(v + i));
      }
      return;
    }
  } else if (key == 1) {
    // alpn: length-prefixed protocol ids, comma separated
    if (n > 0 && alpnWellFormed(v, n)) {
      putByte(61);
      let i: u32 = 0;
      while (i < n) {
        const l = <u32>load<u8>(v + i);
        if (i > 0) putByte(44);
        for (let j: u32 = 1; j <= l; j++) {
          const c = <u32>load<u8>(v + i + j);
          if (c == 44 || c == 92) { putByte(92); putByte(c); } else if (c < 0x21 || c > 0x7e) putEsc(c); else putByte(c);
        }
        i += 1 + l;
      }
      return;
    }
  } else if (key == 3) {
    if (n == 2) {
      putByte(61);
      putDec(u16be(v));
      return;
    }
  } else if (key == 4) {
    if (n > 0 && n % 4 == 0) {
      putByte(61);
      for (let i: u32 = 0; i < n; i += 4) {
        if (i > 0) putByte(44);
        putIPv4(v + i);
      }
      return;
    }
  } else if (key == 6) {
    if (n > 0 && n % 16 == 0) {
      putByte(61);
      for (let i: u32 = 0; i < n; i += 16) {
        if (i > 0) putByte(44);
        putIPv6(v + i);
      }
      return;
    }
  } else if (key == 5) {
    putByte(61);
    putBase64(v, n);
    return;
  } else if (key == 7) {
    putByte(61);
    putChars(v, n, false);
    return;
  }
  // Unknown key, or a known key with a malformed value: the generic keyNNNNN="value" form.
  if (textLen > mark && key <= 8) {
    // rewrite the known name as keyN so the value is read generically
    textRewind(mark);
    putAscii("key");
    putDec(key);
  }
  if (n == 0) return;
  putByte(61);
  putByte(34);
  putChars(v, n, true);
  putByte(34);
}

function alpnWellFormed(v: usize, n: u32): bool {
  let i: u32 = 0;
  while (i < n) {
    const l = <u32>load<u8>(v + i);
    if (l == 0 || i + 1 + l > n) return false;
    i += 1 + l;
  }
  return true;
}

function putEsc(c: u32): void {
  putByte(92);
  putByte(48 + c / 100);
  putByte(48 + (c / 10) % 10);
  putByte(48 + c % 10);
}
