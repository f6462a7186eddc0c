// DNS presentation forms (RFC 1035 5.1, RFC 4343 escapes, RFC 5952 IPv6 text, RFC 9460 SvcParams)
// written into one static text buffer; the caller copies the text into a record and resets.

// One value never needs more than a record field holds (FIELD_CAP); longer text is cut.
const TEXT_CAP: u32 = 8192;
export const textBuf: usize = memory.data(8192 + 16);
export let textLen: u32 = 0;
export let textCut: bool = false;

export function textReset(): void {
  textLen = 0;
  textCut = false;
}

/** Drops text written after `n` (a value that turned out malformed is rewritten). */
export function textRewind(n: u32): void {
  if (n < textLen) textLen = n;
}

@inline export function putByte(b: u32): void {
  if (textLen < TEXT_CAP) {
    store<u8>(textBuf + <usize>textLen, <u8>b);
    textLen++;
  } else {
    textCut = true;
  }
}

/** An ASCII string literal (mnemonics): no allocation, one byte per UTF-16 unit. */
export function putAscii(s: string): void {
  const p = changetype<usize>(s);
  const n = <usize>s.length;
  if (textLen + <u32>n > TEXT_CAP) { textCut = true; return; }
  const dst = textBuf + <usize>textLen;
  for (let i: usize = 0; i < n; i++) store<u8>(dst + i, <u8>load<u16>(p + (i << 1)));
  textLen += <u32>n;
}

export function putDec(v: u64): void {
  if (v == 0) { putByte(48); return; }
  let digits: u32 = 0;
  let t = v;
  while (t != 0) { digits++; t /= 10; }
  if (textLen + digits > TEXT_CAP) { textCut = true; return; }
  let p = textBuf + <usize>(textLen + digits);
  t = v;
  while (t != 0) {
    p--;
    store<u8>(p, <u8>(48 + <u32>(t % 10)));
    t /= 10;
  }
  textLen += digits;
}

@inline function hexDigit(n: u32): u32 {
  return n < 10 ? 48 + n : 87 + n; // lowercase, as RFC 5952 4.3 asks
}

const HEX: usize = memory.data<u8>([48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 97, 98, 99, 100, 101, 102]);

/** Hex without leading zeros (an IPv6 group): the four digits built in a word, the leading
 *  zeros shifted out, stored at once. */
function putHex16(v: u32): void {
  if (textLen + 4 > TEXT_CAP) { putHex16Near(v); return; }
  const digits: u32 = v == 0 ? 1 : (35 - clz<u32>(v)) >> 2;
  const w = <u32>load<u8>(HEX + <usize>((v >> 12) & 0xf))
    | (<u32>load<u8>(HEX + <usize>((v >> 8) & 0xf)) << 8)
    | (<u32>load<u8>(HEX + <usize>((v >> 4) & 0xf)) << 16)
    | (<u32>load<u8>(HEX + <usize>(v & 0xf)) << 24);
  store<u32>(textBuf + <usize>textLen, w >> ((4 - digits) << 3));
  textLen += digits;
}

/** Near the cap: digit by digit, so the cut falls where it always did. */
function putHex16Near(v: u32): void {
  let started = false;
  for (let shift: i32 = 12; shift >= 0; shift -= 4) {
    const d = (v >> <u32>shift) & 0xf;
    if (d != 0 || started || shift == 0) {
      putByte(hexDigit(d));
      started = true;
    }
  }
}

export function putHexBytes(p: usize, n: u32): void {
  for (let i: u32 = 0; i < n; i++) {
    const b = <u32>load<u8>(p + i);
    putByte(hexDigit(b >> 4));
    putByte(hexDigit(b & 0xf));
  }
}

// Decimal text of every octet: up to three digits, then the digit count in the fourth byte.
const DEC3: usize = memory.data(256 * 4);
for (let v: u32 = 0; v < 256; v++) {
  const e = DEC3 + <usize>(v << 2);
  if (v < 10) { store<u8>(e, 48 + v); store<u8>(e, 1, 3); }
  else if (v < 100) { store<u8>(e, 48 + v / 10); store<u8>(e, 48 + v % 10, 1); store<u8>(e, 2, 3); }
  else { store<u8>(e, 48 + v / 100); store<u8>(e, 48 + (v / 10) % 10, 1); store<u8>(e, 48 + v % 10, 2); store<u8>(e, 3, 3); }
}

/** Writes an octet's digits at `d` (a whole word: up to 3 bytes past them are scratch); returns
 *  the address after them. */
@inline function octetAt(d: usize, b: u32): usize {
  const e = load<u32>(DEC3 + <usize>(b << 2));
  store<u32>(d, e);
  return d + <usize>(e >> 24);
}

export function putIPv4(p: usize): void {
  // 15 bytes at most ("255.255.255.255"); the word stores may write 3 more, inside the slack.
  if (textLen + 15 > TEXT_CAP) { putIPv4Near(p); return; }
  let d = textBuf + <usize>textLen;
  d = octetAt(d, load<u8>(p));
  store<u8>(d, 46);
  d = octetAt(d + 1, load<u8>(p, 1));
  store<u8>(d, 46);
  d = octetAt(d + 1, load<u8>(p, 2));
  store<u8>(d, 46);
  d = octetAt(d + 1, load<u8>(p, 3));
  textLen = <u32>(d - textBuf);
}

/** Near the cap: digit by digit, so the cut falls where it always did. */
function putIPv4Near(p: usize): void {
  putDec(load<u8>(p));
  putByte(46);
  putDec(load<u8>(p + 1));
  putByte(46);
  putDec(load<u8>(p + 2));
  putByte(46);
  putDec(load<u8>(p + 3));
}

/** RFC 5952: lowercase, no leading zeros, the longest run (first on a tie) of two or more zero
 *  groups shortened to "::", and IPv4-mapped addresses in mixed notation (section 5). */
export function putIPv6(p: usize): void {
  let bestStart: i32 = -1;
  let bestLen: i32 = 0;
  let runStart: i32 = -1;
  for (let i: i32 = 0; i < 8; i++) {
    const g = load<u16>(p + <usize>(i * 2));
    if (g == 0) {
      if (runStart < 0) runStart = i;
      const runLen = i - runStart + 1;
      if (runLen > bestLen) { bestLen = runLen; bestStart = runStart; }
    } else {
      runStart = -1;
    }
  }
  if (bestLen < 2) bestStart = -1;
  // ::ffff:a.b.c.d
  if (bestStart == 0 && bestLen == 5 && load<u8>(p + 10) == 0xff && load<u8>(p + 11) == 0xff) {
    putAscii("::ffff:");
    putIPv4(p + 12);
    return;
  }
  let i: i32 = 0;
  let needColon = false;
  while (i < 8) {
    if (i == bestStart) {
      putByte(58);
      putByte(58);
      i += bestLen;
      needColon = false;
      continue;
    }
    if (needColon) putByte(58);
    const g = (<u32>load<u8>(p + <usize>(i * 2)) << 8) | <u32>load<u8>(p + <usize>(i * 2 + 1));
    putHex16(g);
    needColon = true;
    i++;
  }
}

@inline function put3Dec(b: u32): void {
  putByte(92);
  putByte(48 + b / 100);
  putByte(48 + (b / 10) % 10);
  putByte(48 + b % 10);
}

/** An uncompressed wire-form name as presentation text: labels joined by '.', no trailing dot,
 *  "." for the root. Escapes as the semantic conventions ask for dns.question.name: '\' and '"'
 *  (and '.' inside a label) get a backslash; tab, CR and LF are \t, \r and \n; other bytes outside
 *  printable ASCII are \DDD. A space is printable: DNS-SD instance names ("Office Printer._ipp…")
 *  show as tshark and dig +short show them, not as \032. */
// 1 for the bytes a name shows as they are: printable ASCII (space included) other than '.', '\', '"'.
const PLAIN: usize = memory.data(256);
for (let c: usize = 0x20; c <= 0x7e; c++) store<u8>(PLAIN + c, c == 46 || c == 92 || c == 34 ? 0 : 1);

const ONES: u64 = 0x0101010101010101;
const HIGHS: u64 = 0x8080808080808080;
const LOWS: u64 = 0x7f7f7f7f7f7f7f7f;

/** Nonzero when a byte of `x` is zero (exact as a yes/no). */
@inline function anyZero(x: u64): u64 { return (x - ONES) & ~x & HIGHS; }
/** 0x80 in exactly the bytes of `x` that are zero. */
@inline function zeroBytes(x: u64): u64 { return ~(((x & LOWS) + LOWS) | x | LOWS); }
/** Nonzero when a byte of `x` is below `n` (n <= 128) or above `m` (m <= 127). */
@inline function anyOutside(x: u64, n: u64, m: u64): u64 {
  return ((x - ONES * n) & ~x & HIGHS) | (((x + ONES * (127 - m)) | x) & HIGHS);
}

/** Bytes of a name's text needing an escape in a word: outside 0x20..0x7e, '\' or '"'. Dots are
 *  counted instead: the ones put between labels are fine, any other is inside a label. */
@inline function nameWordBad(x: u64): u64 {
  return anyOutside(x, 0x20, 0x7e) | anyZero(x ^ (ONES * 92)) | anyZero(x ^ (ONES * 34));
}
@inline function dotCount(x: u64): u32 { return <u32>popcnt(zeroBytes(x ^ (ONES * 46))); }

export function putName(wire: usize, wireLen: u32): void {
  if (wireLen >= 2 && textLen + wireLen + 8 <= TEXT_CAP && putNameWhole(wire, wireLen)) return;
  putNameByLabel(wire, wireLen);
}

/** Nearly every name needs no escapes: copied whole, length octets turned into dots, then checked
 *  a word at a time. False (nothing written) when it needs escapes or is not a plain label chain. */
function putNameWhole(wire: usize, wireLen: u32): bool {
  const n = wireLen - 2; // text length: no first length octet, no root octet
  if (load<u8>(wire) == 0 || load<u8>(wire + wireLen - 1) != 0) return false;
  const dst = textBuf + <usize>textLen;
  memory.copy(dst, wire + 1, n);
  let p = <u32>load<u8>(wire);
  let dots: u32 = 0;
  while (p < n) {
    const l = <u32>load<u8>(dst + p);
    if (l == 0) return false; // a root label inside: the text ends there
    store<u8>(dst + p, 46);
    dots++;
    p += l + 1;
  }
  if (p != n) return false;
  let bad: u64 = 0;
  let seen: u32 = 0;
  let i: u32 = 0;
  for (; i + 8 <= n; i += 8) {
    const x = load<u64>(dst + i);
    bad |= nameWordBad(x);
    seen += dotCount(x);
  }
  if (i < n) {
    // the bytes past the text read as 'a' (room for the word: checked by the caller)
    const keep = (<u64>1 << (<u64>(n - i) << 3)) - 1;
    const x = (load<u64>(dst + i) & keep) | (ONES * 97 & ~keep);
    bad |= nameWordBad(x);
    seen += dotCount(x);
  }
  if (bad != 0 || seen != dots) return false;
  textLen += n;
  return true;
}

function putNameByLabel(wire: usize, wireLen: u32): void {
  let p: u32 = 0;
  let first = true;
  while (p < wireLen) {
    const n = <u32>load<u8>(wire + p);
    if (n == 0) break;
    if (!first) putByte(46);
    first = false;
    // A label needing no escapes (nearly all) is copied whole.
    const m = p + n < wireLen ? n : wireLen - p - 1;
    const lab = wire + p + 1;
    let plain: u32 = 1;
    for (let i: u32 = 0; i < m; i++) plain &= <u32>load<u8>(PLAIN + <usize>load<u8>(lab + i));
    if (plain != 0 && textLen + m <= TEXT_CAP) {
      memory.copy(textBuf + <usize>textLen, lab, m);
      textLen += m;
      p += n + 1;
      continue;
    }
    for (let i: u32 = 1; i <= n && p + i < wireLen; i++) {
      const c = <u32>load<u8>(wire + p + i);
      if (c == 46 || c == 92 || c == 34) { putByte(92); putByte(c); }
      else if (c == 9) { putByte(92); putByte(116); }
      else if (c == 10) { putByte(92); putByte(110); }
      else if (c == 13) { putByte(92); putByte(114); }
      else if (c < 0x20 || c > 0x7e) put3Dec(c);
      else putByte(c);
    }
    p += n + 1;
  }
  if (first) putByte(46);
}

/** A character-string's bytes: printable ASCII and UTF-8 as they are, control bytes as \DDD;
 *  inside quotes '"' and '\' are escaped too. Words with nothing to escape are copied whole. */
export function putChars(p: usize, n: u32, quoted: bool): void {
  let i: u32 = 0;
  while (i < n) {
    if (i + 8 <= n && textLen + 8 <= TEXT_CAP) {
      const x = load<u64>(p + i);
      if (charsWordBad(x, quoted) == 0) {
        store<u64>(textBuf + <usize>textLen, x);
        textLen += 8;
        i += 8;
        continue;
      }
    }
    const end = i + 8 < n ? i + 8 : n;
    for (; i < end; i++) putChar(<u32>load<u8>(p + i), quoted);
  }
}

@inline function charsWordBad(x: u64, quoted: bool): u64 {
  const ctl = ((x - ONES * 0x20) & ~x & HIGHS) | anyZero(x ^ (ONES * 0x7f));
  return quoted ? ctl | anyZero(x ^ (ONES * 34)) | anyZero(x ^ (ONES * 92)) : ctl;
}

@inline function putChar(c: u32, quoted: bool): void {
  if (c < 0x20 || c == 0x7f) put3Dec(c);
  else if (quoted && (c == 34 || c == 92)) { putByte(92); putByte(c); }
  else putByte(c);
}

const B64: string = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

export function putBase64(p: usize, n: u32): void {
  let i: u32 = 0;
  while (i + 3 <= n) {
    const v = (<u32>load<u8>(p + i) << 16) | (<u32>load<u8>(p + i + 1) << 8) | <u32>load<u8>(p + i + 2);
    putByte(B64.charCodeAt((v >> 18) & 63));
    putByte(B64.charCodeAt((v >> 12) & 63));
    putByte(B64.charCodeAt((v >> 6) & 63));
    putByte(B64.charCodeAt(v & 63));
    i += 3;
  }
  const rest = n - i;
  if (rest == 1) {
    const v = <u32>load<u8>(p + i) << 16;
    putByte(B64.charCodeAt((v >> 18) & 63));
    putByte(B64.charCodeAt((v >> 12) & 63));
    putByte(61); putByte(61);
  } else if (rest == 2) {
    const v = (<u32>load<u8>(p + i) << 16) | (<u32>load<u8>(p + i + 1) << 8);
    putByte(B64.charCodeAt((v >> 18) & 63));
    putByte(B64.charCodeAt((v >> 12) & 63));
    putByte(B64.charCodeAt((v >> 6) & 63));
    putByte(61);
  }
}

/** IANA RR TYPE mnemonics; "" when the type has none (then written as TYPEnnn, RFC 3597). */
export function typeMnemonic(t: u32): string {
  switch (t) {
    case 1: return "A";
    case 2: return "NS";
    case 3: return "MD";
    case 4: return "MF";
    case 5: return "CNAME";
    case 6: return "SOA";
    case 7: return "MB";
    case 8: return "MG";
    case 9: return "MR";
    case 10: return "NULL";
    case 11: return "WKS";
    case 12: return "PTR";
    case 13: return "HINFO";
    case 14: return "MINFO";
    case 15: return "MX";
    case 16: return "TXT";
    case 17: return "RP";
    case 18: return "AFSDB";
    case 19: return "X25";
    case 20: return "ISDN";
    case 21: return "RT";
    case 22: return "NSAP";
    case 23: return "NSAP-PTR";
    case 24: return "SIG";
    case 25: return "KEY";
    case 26: return "PX";
    case 27: return "GPOS";
    case 28: return "AAAA";
    case 29: return "LOC";
    case 30: return "NXT";
    case 31: return "EID";
    case 32: return "NIMLOC";
    case 33: return "SRV";
    case 34: return "ATMA";
    case 35: return "NAPTR";
    case 36: return "KX";
    case 37: return "CERT";
    case 38: return "A6";
    case 39: return "DNAME";
    case 40: return "SINK";
    case 41: return "OPT";
    case 42: return "APL";
    case 43: return "DS";
    case 44: return "SSHFP";
    case 45: return "IPSECKEY";
    case 46: return "RRSIG";
    case 47: return "NSEC";
    case 48: return "DNSKEY";
    case 49: return "DHCID";
    case 50: return "NSEC3";
    case 51: return "NSEC3PARAM";
    case 52: return "TLSA";
    case 53: return "SMIMEA";
    case 55: return "HIP";
    case 56: return "NINFO";
    case 57: return "RKEY";
    case 58: return "TALINK";
    case 59: return "CDS";
    case 60: return "CDNSKEY";
    case 61: return "OPENPGPKEY";
    case 62: return "CSYNC";
    case 63: return "ZONEMD";
    case 64: return "SVCB";
    case 65: return "HTTPS";
    case 99: return "SPF";
    case 100: return "UINFO";
    case 101: return "UID";
    case 102: return "GID";
    case 103: return "UNSPEC";
    case 104: return "NID";
    case 105: return "L32";
    case 106: return "L64";
    case 107: return "LP";
    case 108: return "EUI48";
    case 109: return "EUI64";
    case 249: return "TKEY";
    case 250: return "TSIG";
    case 251: return "IXFR";
    case 252: return "AXFR";
    case 253: return "MAILB";
    case 254: return "MAILA";
    case 255: return "ANY";
    case 256: return "URI";
    case 257: return "CAA";
    case 258: return "AVC";
    case 259: return "DOA";
    case 260: return "AMTRELAY";
    case 261: return "RESINFO";
    case 32768: return "TA";
    case 32769: return "DLV";
  }
  return "";
}

export function putType(t: u32): void {
  const m = typeMnemonic(t);
  if (m.length > 0) { putAscii(m); return; }
  putAscii("TYPE");
  putDec(t);
}

/** RCODE mnemonics (RFC 6895 registry), extended codes included. */
export function putRcode(r: u32): void {
  let m = "";
  switch (r) {
    case 0: m = "NOERROR"; break;
    case 1: m = "FORMERR"; break;
    case 2: m = "SERVFAIL"; break;
    case 3: m = "NXDOMAIN"; break;
    case 4: m = "NOTIMP"; break;
    case 5: m = "REFUSED"; break;
    case 6: m = "YXDOMAIN"; break;
    case 7: m = "YXRRSET"; break;
    case 8: m = "NXRRSET"; break;
    case 9: m = "NOTAUTH"; break;
    case 10: m = "NOTZONE"; break;
    case 11: m = "DSOTYPENI"; break;
    case 16: m = "BADVERS"; break;
    case 17: m = "BADKEY"; break;
    case 18: m = "BADTIME"; break;
    case 19: m = "BADMODE"; break;
    case 20: m = "BADNAME"; break;
    case 21: m = "BADALG"; break;
    case 22: m = "BADTRUNC"; break;
    case 23: m = "BADCOOKIE"; break;
  }
  if (m.length > 0) { putAscii(m); return; }
  putAscii("RCODE");
  putDec(r);
}

export function putOpcode(op: u32): void {
  let m = "";
  switch (op) {
    case 0: m = "QUERY"; break;
    case 1: m = "IQUERY"; break;
    case 2: m = "STATUS"; break;
    case 4: m = "NOTIFY"; break;
    case 5: m = "UPDATE"; break;
    case 6: m = "DSO"; break;
  }
  if (m.length > 0) { putAscii(m); return; }
  putAscii("OPCODE");
  putDec(op);
}

/** EDNS0 option code names (IANA "DNS EDNS0 Option Codes"). */
export function putOptionName(code: u32): void {
  let m = "";
  switch (code) {
    case 1: m = "LLQ"; break;
    case 2: m = "UL"; break;
    case 3: m = "NSID"; break;
    case 5: m = "DAU"; break;
    case 6: m = "DHU"; break;
    case 7: m = "N3U"; break;
    case 8: m = "ECS"; break;
    case 9: m = "EXPIRE"; break;
    case 10: m = "COOKIE"; break;
    case 11: m = "TCP-KEEPALIVE"; break;
    case 12: m = "PADDING"; break;
    case 13: m = "CHAIN"; break;
    case 14: m = "KEY-TAG"; break;
    case 15: m = "EDE"; break;
    case 16: m = "CLIENT-TAG"; break;
    case 17: m = "SERVER-TAG"; break;
    case 18: m = "REPORT-CHANNEL"; break;
    case 19: m = "ZONEVERSION"; break;
  }
  if (m.length > 0) { putAscii(m); return; }
  putAscii("OPT");
  putDec(code);
}

/** Header flags the way dig lists them: "qr aa tc rd ra ad cd" (those set). */
export function putFlags(f: u32): void {
  const start = textLen;
  if (f & 0x8000) putFlag("qr", start);
  if (f & 0x0400) putFlag("aa", start);
  if (f & 0x0200) putFlag("tc", start);
  if (f & 0x0100) putFlag("rd", start);
  if (f & 0x0080) putFlag("ra", start);
  if (f & 0x0020) putFlag("ad", start);
  if (f & 0x0010) putFlag("cd", start);
}

function putFlag(s: string, start: u32): void {
  if (textLen > start) putByte(32);
  putAscii(s);
}

// Mnemonics repeat in nearly every record (types, rcodes, header flags, EDNS options): each is
// written once into this table, [length octet, bytes], and copied from there. Direct-mapped by
// kind and code; a collision only writes it again.
export const M_TYPE: u32 = 1;
export const M_RCODE: u32 = 2;
export const M_OPCODE: u32 = 3;
export const M_OPTION: u32 = 4;
export const M_FLAGS: u32 = 5;
const MNEMO_SLOTS: u32 = 256;
const MNEMO_SIZE: u32 = 32; // the longest is 20 bytes ("qr aa tc rd ra ad cd")
const mnemoText: usize = memory.data(256 * 32);
const mnemoKeys: usize = memory.data(256 * 4);

/** The mnemonic of `code` as [length octet, bytes]. Writes through the text buffer when it is
 *  not in the table yet, so call it with no text pending; it leaves the text reset. */
@inline export function mnemonic(kind: u32, code: u32): usize {
  const key = (kind << 24) | (code & 0xffffff);
  const slot = (((code + kind * 0x3b9) * 0x9e3779b1) >> 24) & (MNEMO_SLOTS - 1);
  const at = mnemoText + <usize>(slot * MNEMO_SIZE);
  if (load<u32>(mnemoKeys + <usize>(slot << 2)) == key) return at;
  return mnemonicInto(at, slot, kind, code, key);
}

function mnemonicInto(at: usize, slot: u32, kind: u32, code: u32, key: u32): usize {
  textReset();
  if (kind == M_TYPE) putType(code);
  else if (kind == M_RCODE) putRcode(code);
  else if (kind == M_OPCODE) putOpcode(code);
  else if (kind == M_OPTION) putOptionName(code);
  else putFlags(code);
  const n = textLen < MNEMO_SIZE - 1 ? textLen : MNEMO_SIZE - 1;
  store<u8>(at, <u8>n);
  memory.copy(at + 1, textBuf, n);
  store<u32>(mnemoKeys + <usize>(slot << 2), key);
  textReset();
  return at;
}
