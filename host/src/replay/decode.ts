// Link layer → IP → TCP/UDP header decoding for one captured frame.
// Pure functions over (buffer, offsets) that fill one reused Frame object, so a packet costs no
// allocation here; the caller turns offsets into keys/strings only when it needs them.

/** Link types we understand (LINKTYPE_* values as stored in pcap/pcapng). */
export const LINK_NULL = 0;
export const LINK_ETHERNET = 1;
export const LINK_RAW = 101;
export const LINK_LOOP = 108;
export const LINK_SLL = 113;
export const LINK_IPV4 = 228;
export const LINK_IPV6 = 229;
export const LINK_SLL2 = 276;
// Some old pcap writers stored the platform DLT_RAW value instead of LINKTYPE_RAW.
const DLT_RAW_12 = 12;
const DLT_RAW_14 = 14;

export const PROTO_TCP = 6;
export const PROTO_UDP = 17;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_ACK = 0x10;

/** The decoded view of one frame; every offset indexes `buf`. Reused across packets. */
export interface Frame {
  buf: Uint8Array;
  v6: boolean;
  srcOff: number; // offset of the 4- or 16-byte source address
  dstOff: number;
  proto: number; // PROTO_TCP | PROTO_UDP
  sport: number;
  dport: number;
  seq: number; // TCP only, uint32
  ack: number; // TCP only, uint32
  flags: number; // TCP only
  payOff: number;
  payEnd: number; // end of the captured payload
  cut: number; // payload bytes the sender sent that the capture did not keep (snaplen)
  /** Set when decodeFrame returns 'ip-fragment': the piece, for frag.ts to reassemble. */
  frag: FragInfo;
}

export interface FragInfo {
  ipOff: number; // start of the IP header
  dataOff: number; // start of the fragment's data
  dataEnd: number; // end of the fragment's data (clamped to the capture)
  cut: boolean; // the capture lost part of this fragment
  offset: number; // byte offset of this piece in the original payload
  more: boolean;
  id: number;
  next: number; // transport protocol of the reassembled payload
}

export function newFrame(): Frame {
  return { buf: new Uint8Array(0), v6: false, srcOff: 0, dstOff: 0, proto: 0, sport: 0, dport: 0, seq: 0, ack: 0, flags: 0, payOff: 0, payEnd: 0, cut: 0,
    frag: { ipOff: 0, dataOff: 0, dataEnd: 0, cut: false, offset: 0, more: false, id: 0, next: 0 } };
}

function u16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}
function u32(b: Uint8Array, o: number): number {
  // >>> 0 keeps it unsigned; sequence numbers live in 0..2^32-1.
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

export function linkTypeSupported(lt: number): boolean {
  switch (lt) {
    case LINK_NULL: case LINK_ETHERNET: case LINK_RAW: case LINK_LOOP: case LINK_SLL:
    case LINK_IPV4: case LINK_IPV6: case LINK_SLL2: case DLT_RAW_12: case DLT_RAW_14:
      return true;
  }
  return false;
}

const ETH_IPV4 = 0x0800;
const ETH_IPV6 = 0x86dd;
const ETH_VLAN = 0x8100;
const ETH_QINQ = 0x88a8;
const ETH_QINQ_OLD = 0x9100;
const ETH_PPPOE_SESSION = 0x8864;
const ETH_MPLS = 0x8847;
const ETH_MPLS_MC = 0x8848;
const PPP_IPV4 = 0x0021;
const PPP_IPV6 = 0x0057;

/**
 * Decode `buf[0..len)` captured on link type `lt`; `origLen` is the frame's length on the wire.
 * Returns null when `f` now describes a TCP or UDP segment, else the reason the frame is skipped.
 */
export function decodeFrame(lt: number, buf: Uint8Array, len: number, f: Frame): string | null {
  f.buf = buf;
  let off: number;
  let ethType = -1; // -1: decide from the IP version nibble
  switch (lt) {
    case LINK_ETHERNET: {
      if (len < 14) return 'truncated-link';
      ethType = u16(buf, 12);
      off = 14;
      while (ethType === ETH_VLAN || ethType === ETH_QINQ || ethType === ETH_QINQ_OLD) {
        if (off + 4 > len) return 'truncated-link';
        ethType = u16(buf, off + 2);
        off += 4;
      }
      if (ethType === ETH_PPPOE_SESSION) {
        // 6-byte PPPoE header, then the 2-byte PPP protocol (RFC 2516).
        if (off + 8 > len) return 'truncated-link';
        const ppp = u16(buf, off + 6);
        off += 8;
        ethType = ppp === PPP_IPV4 ? ETH_IPV4 : ppp === PPP_IPV6 ? ETH_IPV6 : 0;
      } else if (ethType === ETH_MPLS || ethType === ETH_MPLS_MC) {
        // Label stack entries until the bottom-of-stack bit; the payload type is not encoded,
        // so the IP version nibble decides.
        for (;;) {
          if (off + 4 > len) return 'truncated-link';
          const bos = buf[off + 2] & 1;
          off += 4;
          if (bos) break;
        }
        ethType = -1;
      }
      break;
    }
    case LINK_SLL:
      if (len < 16) return 'truncated-link';
      ethType = u16(buf, 14);
      off = 16;
      break;
    case LINK_SLL2:
      if (len < 20) return 'truncated-link';
      ethType = u16(buf, 0);
      off = 20;
      break;
    case LINK_NULL:
    case LINK_LOOP: {
      if (len < 4) return 'truncated-link';
      // NULL stores the address family in the writer's byte order, LOOP in network order.
      let fam = lt === LINK_LOOP ? u32(buf, 0) : (buf[0] | (buf[1] << 8) | (buf[2] << 16) | (buf[3] << 24)) >>> 0;
      if (lt === LINK_NULL && fam > 0xffff) fam = u32(buf, 0);
      // AF_INET is 2 everywhere; AF_INET6 is 10 (Linux), 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (macOS).
      if (fam === 2) ethType = ETH_IPV4;
      else if (fam === 10 || fam === 24 || fam === 28 || fam === 30) ethType = ETH_IPV6;
      else return 'not-ip';
      off = 4;
      break;
    }
    case LINK_RAW: case DLT_RAW_12: case DLT_RAW_14:
      off = 0;
      break;
    case LINK_IPV4:
      off = 0; ethType = ETH_IPV4;
      break;
    case LINK_IPV6:
      off = 0; ethType = ETH_IPV6;
      break;
    default:
      return 'unsupported-link-type';
  }
  if (ethType === -1) {
    if (off >= len) return 'truncated-ip';
    const ver = buf[off] >> 4;
    ethType = ver === 4 ? ETH_IPV4 : ver === 6 ? ETH_IPV6 : 0;
  }
  if (ethType === ETH_IPV4) return decodeIPv4(buf, off, len, f);
  if (ethType === ETH_IPV6) return decodeIPv6(buf, off, len, f);
  return 'not-ip';
}

function decodeIPv4(b: Uint8Array, off: number, len: number, f: Frame): string | null {
  if (off + 20 > len) return 'truncated-ip';
  if (b[off] >> 4 !== 4) return 'bad-ip-header';
  const ihl = (b[off] & 0x0f) * 4;
  const total = u16(b, off + 2);
  // total < ihl is garbage; total 0 happens with TSO-captured frames, so trust the capture then.
  if (ihl < 20 || (total !== 0 && total < ihl)) return 'bad-ip-header';
  if (off + ihl > len) return 'truncated-ip';
  const fragWord = u16(b, off + 6);
  f.v6 = false;
  f.srcOff = off + 12;
  f.dstOff = off + 16;
  const declaredEnd = total === 0 ? len : off + total;
  // MF set or a non-zero offset: a piece of a fragmented datagram, for frag.ts.
  if ((fragWord & 0x3fff) !== 0) {
    return fragment(f, off, off + ihl, declaredEnd, len, (fragWord & 0x1fff) * 8, (fragWord & 0x2000) !== 0, u16(b, off + 4), b[off + 9]);
  }
  return decodeL4(b[off + 9], b, off + ihl, declaredEnd, len, f);
}

function decodeIPv6(b: Uint8Array, off: number, len: number, f: Frame): string | null {
  if (off + 40 > len) return 'truncated-ip';
  if (b[off] >> 4 !== 6) return 'bad-ip-header';
  const plen = u16(b, off + 4);
  let next = b[off + 6];
  f.v6 = true;
  f.srcOff = off + 8;
  f.dstOff = off + 24;
  // plen 0 means a jumbogram (or TSO capture): bounded by what was captured.
  const declaredEnd = plen === 0 ? len : off + 40 + plen;
  let p = off + 40;
  // Walk extension headers until a transport header (RFC 8200 §4).
  for (let hops = 0; hops < 16; hops++) {
    switch (next) {
      case 0: case 43: case 60: case 135: case 139: case 140: // hop-by-hop, routing, dest opts, mobility, HIP, shim6
        if (p + 8 > len) return 'truncated-ip';
        next = b[p];
        p += (b[p + 1] + 1) * 8;
        continue;
      case 51: // AH: length in 4-octet units minus 2
        if (p + 8 > len) return 'truncated-ip';
        next = b[p];
        p += (b[p + 1] + 2) * 4;
        continue;
      case 44: { // fragment header
        if (p + 8 > len) return 'truncated-ip';
        const fw = u16(b, p + 2);
        if ((fw & 0xfff9) !== 0) { // offset != 0 or M set (an atomic fragment just continues)
          return fragment(f, off, p + 8, declaredEnd, len, fw & 0xfff8, (fw & 1) !== 0, u32(b, p + 4), b[p]);
        }
        next = b[p];
        p += 8;
        continue;
      }
      default:
        return decodeL4(next, b, p, declaredEnd, len, f);
    }
  }
  return 'bad-ip-header';
}

function fragment(f: Frame, ipOff: number, dataOff: number, declaredEnd: number, len: number, offset: number, more: boolean, id: number, next: number): string {
  const g = f.frag;
  g.ipOff = ipOff;
  g.dataOff = dataOff;
  g.dataEnd = declaredEnd < len ? declaredEnd : len;
  g.cut = declaredEnd > len;
  g.offset = offset;
  g.more = more;
  g.id = id;
  g.next = next;
  return 'ip-fragment';
}

function decodeL4(proto: number, b: Uint8Array, p: number, declaredEnd: number, len: number, f: Frame): string | null {
  if (proto !== PROTO_TCP && proto !== PROTO_UDP) return 'not-tcp-udp';
  f.proto = proto;
  if (proto === PROTO_TCP) {
    if (p + 20 > len || p + 20 > declaredEnd) return 'truncated-tcp';
    const doff = (b[p + 12] >> 4) * 4;
    if (doff < 20 || p + doff > declaredEnd) return 'bad-tcp-header';
    if (p + doff > len) return 'truncated-tcp';
    f.sport = u16(b, p);
    f.dport = u16(b, p + 2);
    f.seq = u32(b, p + 4);
    f.ack = u32(b, p + 8);
    f.flags = b[p + 13];
    f.payOff = p + doff;
  } else {
    if (p + 8 > len) return 'truncated-udp';
    const ulen = u16(b, p + 4);
    // ulen 0 is legal for IPv6 jumbograms; otherwise it bounds the datagram (and drops padding).
    if (ulen !== 0) {
      if (ulen < 8 || p + ulen > declaredEnd) return 'bad-udp-header';
      declaredEnd = p + ulen;
    }
    f.sport = u16(b, p);
    f.dport = u16(b, p + 2);
    f.seq = 0; f.ack = 0; f.flags = 0;
    f.payOff = p + 8;
  }
  // The IP length, not the frame length, ends the payload: Ethernet pads short frames.
  if (declaredEnd <= len) {
    f.payEnd = declaredEnd;
    f.cut = 0;
  } else {
    f.payEnd = len;
    f.cut = declaredEnd - len;
  }
  return null;
}

/** Dotted-quad or RFC 5952 text for the address at `off`. */
export function addrText(b: Uint8Array, off: number, v6: boolean): string {
  if (!v6) return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
  // IPv4-mapped addresses keep the dotted quad (RFC 5952 §5), as tshark and Node print them.
  let mapped = b[off + 10] === 0xff && b[off + 11] === 0xff;
  for (let i = 0; mapped && i < 10; i++) if (b[off + i] !== 0) mapped = false;
  if (mapped) return `::ffff:${b[off + 12]}.${b[off + 13]}.${b[off + 14]}.${b[off + 15]}`;
  // Longest run (>= 2) of zero groups becomes "::", first one on ties.
  let bestStart = -1, bestLen = 0, runStart = -1;
  for (let i = 0; i <= 8; i++) {
    const zero = i < 8 && b[off + 2 * i] === 0 && b[off + 2 * i + 1] === 0;
    if (zero) { if (runStart < 0) runStart = i; }
    else if (runStart >= 0) {
      if (i - runStart > bestLen) { bestLen = i - runStart; bestStart = runStart; }
      runStart = -1;
    }
  }
  if (bestLen < 2) bestStart = -1;
  let s = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) { s += '::'; i += bestLen - 1; continue; }
    if (s.length && !s.endsWith(':')) s += ':';
    s += u16(b, off + 2 * i).toString(16);
  }
  return s;
}

/** A compact map key for an address (no formatting work on the per-packet path). */
export function addrKey(b: Uint8Array, off: number, v6: boolean): string {
  if (!v6) return String(u32(b, off));
  let s = '';
  for (let i = 0; i < 16; i += 4) s += u32(b, off + i).toString(36) + '.';
  return s;
}
