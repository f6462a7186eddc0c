// Capture file readers: the file's records → (link type, frame bytes, timestamp in ns).
//
// pcap: framing by the `pcap-parser` library. It only knows the microsecond magic, so for
// nanosecond files we rewrite the magic in the byte stream it reads and scale the fraction
// ourselves (the record layout is identical).
// pcapng: our own reader. `pcap-ng-parser@1.0.0` cannot be used: its option walker multiplies
// option lengths by 8 and runs past the block (an uncaught RangeError that kills the process on
// 3 of the 4 pcapng files in the shared corpus), it ignores if_tsresol (so timestamps are wrong
// for ns captures), has no Simple Packet Block, keeps one byte order and interface list across
// sections, and never finishes its stream (_flush does not call back).
import * as fs from 'fs';
import { Transform, TransformCallback } from 'stream';
import type { PacketFn, ReplayStats } from './types';

export type Sniffed =
  | { kind: 'pcap'; le: boolean; nsec: boolean; linkType: number; snaplen: number }
  | { kind: 'pcapng' };

const PCAP_US = 0xa1b2c3d4;
const PCAP_NS = 0xa1b23c4d;
const PCAPNG_SHB = 0x0a0d0d0a;
const PCAPNG_BOM = 0x1a2b3c4d;

/** Read the file header; throws a clear Error when the file is not a capture we can read. */
export async function sniff(path: string): Promise<Sniffed> {
  const fh = await fs.promises.open(path, 'r');
  try {
    const head = Buffer.alloc(28);
    const { bytesRead } = await fh.read(head, 0, 28, 0);
    return classify(head.subarray(0, bytesRead), path);
  } finally {
    await fh.close();
  }
}

export function classify(h: Buffer, path: string): Sniffed {
  if (h.length < 4) throw new Error(`${path}: not a capture file (${h.length} bytes)`);
  const be = h.readUInt32BE(0), le = h.readUInt32LE(0);
  if (be === PCAPNG_SHB) {
    if (h.length < 12) throw new Error(`${path}: truncated pcapng section header`);
    const bom = h.readUInt32BE(8);
    if (bom !== PCAPNG_BOM && h.readUInt32LE(8) !== PCAPNG_BOM) throw new Error(`${path}: pcapng section header has a bad byte-order magic`);
    return { kind: 'pcapng' };
  }
  if (be === PCAP_US || le === PCAP_US || be === PCAP_NS || le === PCAP_NS) {
    if (h.length < 24) throw new Error(`${path}: truncated pcap file header (${h.length} of 24 bytes)`);
    const isLe = le === PCAP_US || le === PCAP_NS;
    const major = isLe ? h.readUInt16LE(4) : h.readUInt16BE(4);
    if (major !== 2) throw new Error(`${path}: unsupported pcap version ${major}`);
    const snaplen = isLe ? h.readUInt32LE(16) : h.readUInt32BE(16);
    // The high bits of the link-type word carry FCS information; the type is the low 16 bits.
    const linkType = (isLe ? h.readUInt32LE(20) : h.readUInt32BE(20)) & 0xffff;
    return { kind: 'pcap', le: isLe, nsec: be === PCAP_NS || le === PCAP_NS, linkType, snaplen };
  }
  if (h[0] === 0x1f && h[1] === 0x8b) throw new Error(`${path}: gzip-compressed capture; decompress it first`);
  if (be === 0xa1b2cd34 || le === 0xa1b2cd34) throw new Error(`${path}: "modified" (Kuznetzov) pcap format is not supported`);
  throw new Error(`${path}: not a pcap or pcapng file (magic 0x${be.toString(16).padStart(8, '0')})`);
}

function bump(stats: ReplayStats, reason: string, n = 1): void {
  stats.skipped[reason] = (stats.skipped[reason] ?? 0) + n;
}

/** Largest record we accept; a bigger length means the file is damaged from here on. */
function recordLimit(snaplen: number): number {
  return Math.max(262144, Math.min(snaplen, 16 << 20));
}

// ---------------------------------------------------------------- pcap (via pcap-parser)

interface PcapParserHeader {
  timestampSeconds: number;
  timestampMicroseconds: number;
  capturedLength: number;
  originalLength: number;
}
interface PcapParser {
  on(ev: 'packetHeader', f: (h: PcapParserHeader) => void): PcapParser;
  on(ev: 'packet', f: (p: { header: PcapParserHeader; data: Buffer }) => void): PcapParser;
  on(ev: 'end', f: () => void): PcapParser;
  on(ev: 'error', f: (e: Error) => void): PcapParser;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const pcapParser = require('pcap-parser') as { parse(input: NodeJS.ReadableStream): PcapParser };

/** Rewrites the nanosecond magic to the microsecond one so pcap-parser accepts the file. */
class NsMagicShim extends Transform {
  private pos = 0;
  constructor(private readonly magic: Buffer) { super(); }
  _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.pos < 4) {
      chunk = Buffer.from(chunk); // never write into the reader's buffer
      for (let i = this.pos; i < 4 && i - this.pos < chunk.length; i++) chunk[i - this.pos] = this.magic[i];
    }
    this.pos += chunk.length;
    cb(null, chunk);
  }
}

export function readPcap(path: string, s: Extract<Sniffed, { kind: 'pcap' }>, stats: ReplayStats, onPacket: PacketFn): Promise<void> {
  return new Promise((resolve, reject) => {
    const file = fs.createReadStream(path, { highWaterMark: 1 << 20 });
    let input: NodeJS.ReadableStream = file;
    if (s.nsec) {
      const us = Buffer.alloc(4);
      if (s.le) us.writeUInt32LE(PCAP_US); else us.writeUInt32BE(PCAP_US);
      input = file.pipe(new NsMagicShim(us));
    }
    const limit = recordLimit(s.snaplen);
    const fracToNs = s.nsec ? 1n : 1000n;
    let consumed = 24;
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      if (err) { reject(err); return; }
      // Bytes pcap-parser was still waiting on when the file ended: a record cut off mid-way.
      fs.promises.stat(path).then((st) => {
        if (st.size > consumed && !stats.skipped['corrupt-record']) bump(stats, 'truncated-record');
        resolve();
      }, reject);
    };
    const parser = pcapParser.parse(input);
    parser.on('packetHeader', (h) => {
      if (done) return;
      if (h.capturedLength > limit) {
        // No resynchronisation marker exists in pcap: everything after a bad length is unreadable.
        bump(stats, 'corrupt-record');
        file.destroy();
        finish();
      }
    });
    parser.on('packet', (p) => {
      if (done) return;
      const h = p.header;
      consumed += 16 + h.capturedLength;
      stats.packets++;
      stats.bytes += h.capturedLength;
      const ts = BigInt(h.timestampSeconds) * 1_000_000_000n + BigInt(h.timestampMicroseconds) * fracToNs;
      try {
        onPacket(s.linkType, p.data, ts);
      } catch (e) {
        // A throwing sink must reject replayFile, not escape from a stream event as uncaught.
        file.destroy();
        finish(e instanceof Error ? e : new Error(String(e)));
      }
    });
    parser.on('end', () => finish());
    parser.on('error', (e) => finish(new Error(`${path}: ${e.message}`)));
    file.on('error', (e) => finish(e));
  });
}

// ---------------------------------------------------------------- pcapng (own reader)

interface Iface {
  linkType: number;
  snaplen: number;
  /** ts units → ns: multiply when mul > 0, else multiply by 1e9 and divide by div. */
  mul: bigint;
  div: bigint;
  offsetNs: bigint;
}

function r32(b: Buffer, o: number, le: boolean): number {
  return le ? b.readUInt32LE(o) : b.readUInt32BE(o);
}
function r16(b: Buffer, o: number, le: boolean): number {
  return le ? b.readUInt16LE(o) : b.readUInt16BE(o);
}

/** if_tsresol: high bit clear → 10^-n s, set → 2^-n s (pcapng spec §4.2). */
function tsScale(res: number): { mul: bigint; div: bigint } {
  const n = res & 0x7f;
  if (res & 0x80) return { mul: 0n, div: 1n << BigInt(n) };
  if (n <= 9) return { mul: 10n ** BigInt(9 - n), div: 1n };
  return { mul: 0n, div: 10n ** BigInt(n) };
}

function parseIdb(b: Buffer, le: boolean): Iface {
  const iface: Iface = { linkType: r16(b, 8, le), snaplen: r32(b, 12, le), mul: 1000n, div: 1n, offsetNs: 0n };
  const end = b.length - 4;
  let o = 16;
  while (o + 4 <= end) {
    const code = r16(b, o, le), len = r16(b, o + 2, le);
    const v = o + 4;
    if (code === 0 || v + len > end) break;
    if (code === 9 && len >= 1) {
      const sc = tsScale(b[v]);
      iface.mul = sc.mul;
      iface.div = sc.div;
    } else if (code === 14 && len >= 8) {
      const hi = r32(b, le ? v + 4 : v, le), lo = r32(b, le ? v : v + 4, le);
      iface.offsetNs = BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo)) * 1_000_000_000n;
    }
    o = v + ((len + 3) & ~3);
  }
  return iface;
}

function tsNs(iface: Iface, hi: number, lo: number): bigint {
  const t = (BigInt(hi) << 32n) | BigInt(lo);
  return (iface.mul > 0n ? t * iface.mul : (t * 1_000_000_000n) / iface.div) + iface.offsetNs;
}

export async function readPcapng(path: string, stats: ReplayStats, onPacket: PacketFn): Promise<void> {
  const stream = fs.createReadStream(path, { highWaterMark: 1 << 20 });
  let carry: Buffer | null = null;
  let le = true;
  let ifaces: Iface[] = [];
  let lastTs = 0n;
  let first = true;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const buf: Buffer = carry ? Buffer.concat([carry, chunk]) : chunk;
      carry = null;
      let o = 0;
      while (o + 12 <= buf.length) {
        let type = buf.readUInt32LE(o);
        if (type === PCAPNG_SHB) {
          // A section header fixes the byte order (and resets interfaces) for what follows.
          const bom = buf.readUInt32LE(o + 8);
          if (bom === PCAPNG_BOM) le = true;
          else if (bom === 0x4d3c2b1a) le = false;
          else { bump(stats, 'corrupt-block'); stream.destroy(); return; }
          ifaces = [];
        } else if (!le) {
          type = buf.readUInt32BE(o);
        }
        const blen = r32(buf, o + 4, le);
        if (blen < 12 || (blen & 3) !== 0 || blen > (64 << 20)) {
          // Block lengths chain the file; a wrong one leaves nothing to resynchronise on.
          bump(stats, 'corrupt-block');
          stream.destroy();
          return;
        }
        if (o + blen > buf.length) break; // rest arrives with the next chunk
        if (r32(buf, o + blen - 4, le) !== blen) bump(stats, 'corrupt-block-trailer');
        const blk = buf.subarray(o, o + blen);
        o += blen;
        first = false;
        switch (type) {
          case 1: // Interface Description Block
            if (blen < 20) { bump(stats, 'corrupt-block'); break; }
            ifaces.push(parseIdb(blk, le));
            break;
          case 6: { // Enhanced Packet Block
            stats.packets++;
            if (blen < 32) { bump(stats, 'corrupt-block'); break; }
            const ifid = r32(blk, 8, le);
            const cap = r32(blk, 20, le);
            const iface = ifaces[ifid];
            if (!iface) { bump(stats, 'unknown-interface'); break; }
            if (28 + cap > blen - 4) { bump(stats, 'corrupt-block'); break; }
            lastTs = tsNs(iface, r32(blk, 12, le), r32(blk, 16, le));
            stats.bytes += cap;
            onPacket(iface.linkType, blk.subarray(28, 28 + cap), lastTs);
            break;
          }
          case 3: { // Simple Packet Block: interface 0, no timestamp (we reuse the previous one)
            stats.packets++;
            if (blen < 16) { bump(stats, 'corrupt-block'); break; }
            const iface = ifaces[0];
            if (!iface) { bump(stats, 'unknown-interface'); break; }
            const orig = r32(blk, 8, le);
            let cap = Math.min(orig, blen - 16);
            if (iface.snaplen > 0) cap = Math.min(cap, iface.snaplen);
            stats.bytes += cap;
            onPacket(iface.linkType, blk.subarray(12, 12 + cap), lastTs);
            break;
          }
          case 2: { // obsolete Packet Block
            stats.packets++;
            if (blen < 32) { bump(stats, 'corrupt-block'); break; }
            const ifid = r16(blk, 8, le);
            const cap = r32(blk, 20, le);
            const iface = ifaces[ifid];
            if (!iface) { bump(stats, 'unknown-interface'); break; }
            if (28 + cap > blen - 4) { bump(stats, 'corrupt-block'); break; }
            lastTs = tsNs(iface, r32(blk, 12, le), r32(blk, 16, le));
            stats.bytes += cap;
            onPacket(iface.linkType, blk.subarray(28, 28 + cap), lastTs);
            break;
          }
          default: // name resolution, statistics, custom, decryption secrets…: not needed for streams
            break;
        }
      }
      if (o < buf.length) carry = buf.subarray(o);
    }
  } finally {
    stream.destroy();
  }
  if (carry && carry.length > 0) bump(stats, first ? 'corrupt-block' : 'truncated-record');
}
