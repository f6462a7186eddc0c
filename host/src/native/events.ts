// Reads socket tracer records in place from the ring view. Every offset comes from
// generated/layout.ts (BTF of the compiled object). `off` is a record offset taken from the
// batch index; `conn` is the offset of a tg_conn_info inside a record (see connOffset).
// Numeric readers allocate nothing; only the string and bigint helpers do, and those are
// meant to run once per connection (cache by connId).
import { tg_conn_event, tg_conn_info, tg_conn_info_len, tg_data_event, tg_event_type } from '../generated/layout';

let viewOf: Uint8Array | undefined;
let dv: DataView = new DataView(new ArrayBuffer(0));

/** DataView over `ring`, created once per distinct ring view. */
function view(ring: Uint8Array): DataView {
  if (viewOf !== ring) {
    viewOf = ring;
    dv = new DataView(ring.buffer, ring.byteOffset, ring.byteLength);
  }
  return dv;
}

function u64n(d: DataView, at: number): number {
  // Safe while values stay below 2^53: byte positions, counters and ids here do.
  return d.getUint32(at + 4, true) * 0x1_0000_0000 + d.getUint32(at, true);
}

/** enum tg_event_type of the record at `off` (both structs start with `__u32 type`). */
export function eventType(ring: Uint8Array, off: number): number {
  return view(ring).getUint32(off + tg_data_event.type, true);
}

export const isData = (ring: Uint8Array, off: number): boolean => eventType(ring, off) === tg_event_type.TG_EV_DATA;

/** Offset of the record's tg_conn_info (data and conn events alike). */
export function connOffset(ring: Uint8Array, off: number): number {
  return off + (eventType(ring, off) === tg_event_type.TG_EV_DATA ? tg_data_event.conn : tg_conn_event.conn);
}

// ---- tg_data_event ----

export const dataDir = (ring: Uint8Array, off: number): number => ring[off + tg_data_event.dir];
export const dataTruncated = (ring: Uint8Array, off: number): boolean => ring[off + tg_data_event.truncated] !== 0;
export const dataTsNs = (ring: Uint8Array, off: number): bigint => view(ring).getBigUint64(off + tg_data_event.ts_ns, true);
/** Kernel timestamp in ns as a float (µs precision over a year of uptime); no allocation. */
export const dataTsNsNumber = (ring: Uint8Array, off: number): number => u64n(view(ring), off + tg_data_event.ts_ns);
/** Stream position of the first payload byte in this direction. */
export const dataPos = (ring: Uint8Array, off: number): number => u64n(view(ring), off + tg_data_event.pos);
/** Payload bytes present in the record. */
export const dataLen = (ring: Uint8Array, off: number): number => view(ring).getUint32(off + tg_data_event.len, true);
/** Bytes the syscall moved; > dataLen when truncated. The next position is pos + origLen. */
export const dataOrigLen = (ring: Uint8Array, off: number): number => view(ring).getUint32(off + tg_data_event.orig_len, true);
/** Offset of the payload in `ring`; it is contiguous even when it wrapped in the kernel. */
export const payloadOffset = (off: number): number => off + tg_data_event.size;
/** The payload as a view (allocates the view object, not the bytes). */
export const payload = (ring: Uint8Array, off: number): Uint8Array =>
  ring.subarray(off + tg_data_event.size, off + tg_data_event.size + dataLen(ring, off));

let bufOf: Uint8Array | undefined;
let ringBuf: Buffer = Buffer.alloc(0);

/**
 * Copies up to `max` payload bytes of the data record at `off` into `dst` at `dstOff` (a
 * decoder's Wasm input window) and returns how many were copied. One memcpy, no allocation:
 * the Buffer view over the ring is made once per ring.
 */
export function copyPayload(ring: Uint8Array, off: number, dst: Uint8Array, dstOff: number, max = Infinity): number {
  if (bufOf !== ring) {
    bufOf = ring;
    ringBuf = Buffer.from(ring.buffer, ring.byteOffset, ring.byteLength);
  }
  const start = off + tg_data_event.size;
  const n = Math.min(dataLen(ring, off), max, dst.length - dstOff);
  return n > 0 ? ringBuf.copy(dst, dstOff, start, start + n) : 0;
}

// ---- tg_conn_event ----

export const connEventTsNs = (ring: Uint8Array, off: number): bigint => view(ring).getBigUint64(off + tg_conn_event.ts_ns, true);
export const connEventBytesSent = (ring: Uint8Array, off: number): number => u64n(view(ring), off + tg_conn_event.bytes_sent);
export const connEventBytesRecv = (ring: Uint8Array, off: number): number => u64n(view(ring), off + tg_conn_event.bytes_recv);

// ---- tg_conn_info (pass connOffset(ring, off)) ----

/** Connection id, unique while the tracer is loaded; a number (a counter far below 2^53). */
export const connId = (ring: Uint8Array, conn: number): number => u64n(view(ring), conn + tg_conn_info.conn_id);
export const connIdBigInt = (ring: Uint8Array, conn: number): bigint => view(ring).getBigUint64(conn + tg_conn_info.conn_id, true);
export const cgroupId = (ring: Uint8Array, conn: number): bigint => view(ring).getBigUint64(conn + tg_conn_info.cgroup_id, true);
export const pid = (ring: Uint8Array, conn: number): number => view(ring).getUint32(conn + tg_conn_info.pid, true);
export const tid = (ring: Uint8Array, conn: number): number => view(ring).getUint32(conn + tg_conn_info.tid, true);
export const localPort = (ring: Uint8Array, conn: number): number => view(ring).getUint16(conn + tg_conn_info.lport, true);
export const remotePort = (ring: Uint8Array, conn: number): number => view(ring).getUint16(conn + tg_conn_info.rport, true);
/** AF_INET (2) or AF_INET6 (10): the socket's family, addresses are always 16 bytes. */
export const family = (ring: Uint8Array, conn: number): number => view(ring).getUint16(conn + tg_conn_info.family, true);
/** enum tg_role. */
export const role = (ring: Uint8Array, conn: number): number => ring[conn + tg_conn_info.role];

/** Process name (the thread group leader's comm). */
export function comm(ring: Uint8Array, conn: number): string {
  const start = conn + tg_conn_info.comm;
  let end = start;
  const max = start + tg_conn_info_len.comm;
  while (end < max && ring[end] !== 0) end++;
  let s = '';
  for (let i = start; i < end; i++) s += String.fromCharCode(ring[i]);
  return s;
}

export const localAddress = (ring: Uint8Array, conn: number): string => formatAddr(ring, conn + tg_conn_info.laddr);
export const remoteAddress = (ring: Uint8Array, conn: number): string => formatAddr(ring, conn + tg_conn_info.raddr);

/** 16 address bytes at `at` → dotted quad for ::ffff:a.b.c.d, else RFC 5952 IPv6 text. */
export function formatAddr(bytes: Uint8Array, at: number): string {
  let mapped = bytes[at + 10] === 0xff && bytes[at + 11] === 0xff;
  for (let i = 0; mapped && i < 10; i++) if (bytes[at + i] !== 0) mapped = false;
  if (mapped) return `${bytes[at + 12]}.${bytes[at + 13]}.${bytes[at + 14]}.${bytes[at + 15]}`;
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((bytes[at + i] << 8) | bytes[at + i + 1]);
  // The longest run (of at least two) of zero words becomes "::", the first one on a tie.
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (ws: number[]): string => ws.map((w) => w.toString(16)).join(':');
  if (bestAt < 0) return hex(words);
  return `${hex(words.slice(0, bestAt))}::${hex(words.slice(bestAt + bestLen))}`;
}
