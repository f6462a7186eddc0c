// DNS decoder: constants and per-stream state (RFC 1035, RFC 6891, RFC 9460).

// Per-stream framing, found from the first bytes (the ABI does not say which transport a stream
// uses): UDP carries one message per datagram, TCP prefixes each message with a u16 length.
export const MODE_UNKNOWN: u8 = 0;
export const MODE_UDP: u8 = 1;
export const MODE_TCP: u8 = 2;

export const HEADER_SIZE: u32 = 12;
export const MAX_NAME_WIRE: u32 = 255;      // RFC 1035 2.3.4: a name is at most 255 octets
export const MAX_LABEL: u32 = 63;
export const MAX_POINTER_HOPS: u32 = 64;    // belt and braces: pointers must also go backwards

export const MAX_PENDING: i32 = 64;         // unanswered queries kept per stream
// Decoder-wide budgets (the module may use 32 MiB): a Pending is ~330 bytes, a stream ~100.
export const MAX_PENDING_TOTAL: i32 = 16384;
export const MAX_STREAMS: i32 = 65536;
export const QUERY_TIMEOUT_NS: u64 = 5_000_000_000;
export const IDLE_STREAM_NS: u64 = 60_000_000_000; // an idle stream with nothing pending is dropped
export const MAX_QUERY_OPTIONS: i32 = 8;    // EDNS option codes remembered from a query

// RR types with a presentation form of their own.
export const T_A: u16 = 1;
export const T_NS: u16 = 2;
export const T_MD: u16 = 3;
export const T_MF: u16 = 4;
export const T_CNAME: u16 = 5;
export const T_SOA: u16 = 6;
export const T_MB: u16 = 7;
export const T_MG: u16 = 8;
export const T_MR: u16 = 9;
export const T_PTR: u16 = 12;
export const T_MX: u16 = 15;
export const T_TXT: u16 = 16;
export const T_AAAA: u16 = 28;
export const T_SRV: u16 = 33;
export const T_NAPTR: u16 = 35;
export const T_DNAME: u16 = 39;
export const T_OPT: u16 = 41;
export const T_RRSIG: u16 = 46;
export const T_SVCB: u16 = 64;
export const T_HTTPS: u16 = 65;
export const T_ANY: u16 = 255;
export const T_CAA: u16 = 257;

// Response codes that make the exchange a failure (NXDOMAIN is an answer, not a failure).
export const RCODE_FORMERR: u32 = 1;
export const RCODE_SERVFAIL: u32 = 2;
export const RCODE_NOTIMP: u32 = 4;
export const RCODE_REFUSED: u32 = 5;

// Header flag bits (RFC 1035 4.1.1, RFC 4035 3.2).
export const F_QR: u16 = 0x8000;
export const F_AA: u16 = 0x0400;
export const F_TC: u16 = 0x0200;
export const F_RD: u16 = 0x0100;
export const F_RA: u16 = 0x0080;
export const F_AD: u16 = 0x0020;
export const F_CD: u16 = 0x0010;

/** One query waiting for its response. Slots are reused, never freed (stitch.ts keeps them in a
 *  table): unmanaged, so the hot path does no GC bookkeeping for them. */
@unmanaged export class Pending {
  id: u16 = 0;
  flags: u16 = 0;
  qtype: u16 = 0;
  hasQuestion: bool = false;
  tsStart: u64 = 0;
  // EDNS as the client sent it: -1 when the query had no OPT record.
  udpSize: i32 = -1;
  doBit: bool = false;
  optionCount: i32 = 0;
  options: usize = heap.alloc(MAX_QUERY_OPTIONS * 2); // u16 option codes
  nameLen: u32 = 0;                       // uncompressed wire-form name, root label included
  name: usize = heap.alloc(MAX_NAME_WIRE + 1);
  next: i32 = -1;                         // the next slot of its stream's list or of the free list
}

/** Unmanaged like Pending: allocated in newState(), freed in dropState() (stitch.ts). */
@unmanaged export class StreamState {
  mode: u8 = MODE_UNKNOWN;
  lastSeen: u64 = 0;
  // A message of this direction started in an earlier parse() call: its first byte's time.
  partial0: bool = false;
  partial1: bool = false;
  partialTs0: u64 = 0;
  partialTs1: u64 = 0;
  // Pending queries, oldest first: slot indices chained through Pending.next (stitch.ts).
  head: i32 = -1;
  tail: i32 = -1;
  count: i32 = 0;
  // TCP: the start of a message still incomplete at the end of the last read (the host holds
  // those bytes), kept in a Head of abi/head.ts (0 until first needed) for direction headDir; its
  // total is the message's framed size (2 + length). A gap right after them (a segment cut by the
  // snaplen) decodes the message cut short; skip0/skip1: bytes of it still to come, discarded.
  headKept: usize = 0;
  headDir: i32 = 0;
  skip0: u32 = 0;
  skip1: u32 = 0;
}

/** Bytes kept of an incomplete TCP message's start (header, question, the first answers). */
export const HEAD_CAP: u32 = 2048;
/** Head buffers in use by all streams at most (1 MiB); past that a cut message is lost as before. */
export const HEAD_BUFFERS: i32 = 512;
