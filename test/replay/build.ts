// Hand-built captures for exact-expectation tests: frame builders and pcap/pcapng writers.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-replay-'));
let seqNo = 0;
export function tmpFile(name: string): string {
  return path.join(tmpDir, `${seqNo++}-${name}`);
}

export const FIN = 0x01, SYN = 0x02, RST = 0x04, PSH = 0x08, ACK = 0x10;

function ipBytes(a: string): Buffer {
  if (a.includes(':')) {
    const [head, tail] = a.split('::');
    const h = head ? head.split(':') : [];
    const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
    const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
    const b = Buffer.alloc(16);
    groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
    return b;
  }
  return Buffer.from(a.split('.').map(Number));
}

export interface TcpSpec { src: string; dst: string; sport: number; dport: number; seq: number; ack?: number; flags: number; data?: Buffer | string }
export interface UdpSpec { src: string; dst: string; sport: number; dport: number; data: Buffer | string }

function l4Tcp(s: TcpSpec): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt16BE(s.sport, 0); h.writeUInt16BE(s.dport, 2);
  h.writeUInt32BE(s.seq >>> 0, 4); h.writeUInt32BE((s.ack ?? 0) >>> 0, 8);
  h[12] = 5 << 4; h[13] = s.flags; h.writeUInt16BE(65535, 14);
  return Buffer.concat([h, Buffer.from(s.data ?? '')]);
}
function l4Udp(s: UdpSpec): Buffer {
  const d = Buffer.from(s.data);
  const h = Buffer.alloc(8);
  h.writeUInt16BE(s.sport, 0); h.writeUInt16BE(s.dport, 2); h.writeUInt16BE(8 + d.length, 4);
  return Buffer.concat([h, d]);
}

/** IPv4 or IPv6 packet (by address family) around an L4 payload. `v6ext` inserts extension headers. */
export function ip(src: string, dst: string, proto: number, l4: Buffer, o: { v6ext?: boolean; fragOffset?: number; mf?: boolean; options?: boolean; id?: number } = {}): Buffer {
  if (src.includes(':')) {
    let next = proto;
    let ext = Buffer.alloc(0);
    if (o.v6ext) {
      // hop-by-hop (8 bytes, PadN) then destination options (16 bytes) then the transport
      const dest = Buffer.alloc(16); dest[0] = proto; dest[1] = 1; dest[2] = 1; dest[3] = 12;
      const hbh = Buffer.alloc(8); hbh[0] = 60; hbh[1] = 0; hbh[2] = 1; hbh[3] = 4;
      ext = Buffer.concat([hbh, dest]);
      next = 0;
    }
    const h = Buffer.alloc(40);
    h[0] = 0x60; h.writeUInt16BE(ext.length + l4.length, 4); h[6] = next; h[7] = 64;
    ipBytes(src).copy(h, 8); ipBytes(dst).copy(h, 24);
    return Buffer.concat([h, ext, l4]);
  }
  const opt = o.options ? Buffer.from([1, 1, 1, 0]) : Buffer.alloc(0); // NOP NOP NOP EOL
  const h = Buffer.alloc(20 + opt.length);
  h[0] = 0x40 | ((20 + opt.length) / 4); h.writeUInt16BE(h.length + l4.length, 2);
  h.writeUInt16BE(((o.mf ? 0x2000 : 0) | ((o.fragOffset ?? 0) & 0x1fff)), 6);
  h.writeUInt16BE(o.id ?? 0, 4);
  h[8] = 64; h[9] = proto;
  ipBytes(src).copy(h, 12); ipBytes(dst).copy(h, 16);
  opt.copy(h, 20);
  return Buffer.concat([h, l4]);
}

/** Split an IP datagram's transport bytes `l4` into fragments of `size` (multiple of 8) bytes; IPv4 or IPv6 by address. */
export function fragments(src: string, dst: string, proto: number, l4: Buffer, size: number, id: number): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < l4.length; off += size) {
    const piece = l4.subarray(off, off + size);
    const more = off + size < l4.length;
    if (src.includes(':')) {
      const fh = Buffer.alloc(8);
      fh[0] = proto; fh.writeUInt16BE(off | (more ? 1 : 0), 2); fh.writeUInt32BE(id, 4);
      const whole = ip(src, dst, 44, Buffer.concat([fh, piece]));
      out.push(whole);
    } else {
      out.push(ip(src, dst, proto, piece, { fragOffset: off / 8, mf: more, id }));
    }
  }
  return out;
}

export function udpL4(s: UdpSpec): Buffer { return l4Udp(s); }

export function tcpIp(s: TcpSpec, o?: { v6ext?: boolean }): Buffer { return ip(s.src, s.dst, 6, l4Tcp(s), o); }
export function udpIp(s: UdpSpec): Buffer { return ip(s.src, s.dst, 17, l4Udp(s)); }

export type Link = 'eth' | 'vlan' | 'qinq' | 'sll' | 'sll2' | 'null-le' | 'null-be' | 'loop' | 'raw' | 'ipv4' | 'ipv6';
export const LINKTYPE: Record<Link, number> = { eth: 1, vlan: 1, qinq: 1, sll: 113, sll2: 276, 'null-le': 0, 'null-be': 0, loop: 108, raw: 101, ipv4: 228, ipv6: 229 };

export function frame(link: Link, pkt: Buffer): Buffer {
  const v6 = pkt[0] >> 4 === 6;
  const et = v6 ? 0x86dd : 0x0800;
  switch (link) {
    case 'eth': case 'vlan': case 'qinq': {
      const macs = Buffer.from('020000000001020000000002', 'hex');
      const tags: Buffer[] = [];
      if (link === 'qinq') tags.push(Buffer.from([0x88, 0xa8, 0x00, 0x64]));
      if (link !== 'eth') tags.push(Buffer.from([0x81, 0x00, 0x00, 0x0a]));
      const t = Buffer.alloc(2); t.writeUInt16BE(et);
      const f = Buffer.concat([macs, ...tags, t, pkt]);
      // Ethernet pads to 60 bytes; the padding must not become payload.
      return f.length < 60 ? Buffer.concat([f, Buffer.alloc(60 - f.length, 0xee)]) : f;
    }
    case 'sll': {
      const h = Buffer.alloc(16); h.writeUInt16BE(0, 0); h.writeUInt16BE(772, 2); h.writeUInt16BE(6, 4); h.writeUInt16BE(et, 14);
      return Buffer.concat([h, pkt]);
    }
    case 'sll2': {
      const h = Buffer.alloc(20); h.writeUInt16BE(et, 0); h.writeUInt32BE(1, 4); h.writeUInt16BE(772, 8); h[10] = 0; h[11] = 6;
      return Buffer.concat([h, pkt]);
    }
    case 'null-le': { const h = Buffer.alloc(4); h.writeUInt32LE(v6 ? 30 : 2); return Buffer.concat([h, pkt]); }
    case 'null-be': { const h = Buffer.alloc(4); h.writeUInt32BE(v6 ? 24 : 2); return Buffer.concat([h, pkt]); }
    case 'loop': { const h = Buffer.alloc(4); h.writeUInt32BE(v6 ? 10 : 2); return Buffer.concat([h, pkt]); }
    default: return pkt;
  }
}

export interface Rec { ts: bigint; data: Buffer; origLen?: number; linkType?: number; iface?: number }

/** Classic pcap; `ns` writes the nanosecond magic, `be` big-endian. */
export function writePcap(file: string, linkType: number, recs: Rec[], o: { be?: boolean; ns?: boolean; snaplen?: number } = {}): Buffer {
  const w32 = (b: Buffer, v: number, off: number) => (o.be ? b.writeUInt32BE(v >>> 0, off) : b.writeUInt32LE(v >>> 0, off));
  const w16 = (b: Buffer, v: number, off: number) => (o.be ? b.writeUInt16BE(v, off) : b.writeUInt16LE(v, off));
  const hdr = Buffer.alloc(24);
  w32(hdr, o.ns ? 0xa1b23c4d : 0xa1b2c3d4, 0); w16(hdr, 2, 4); w16(hdr, 4, 6); w32(hdr, o.snaplen ?? 262144, 16); w32(hdr, linkType, 20);
  const parts = [hdr];
  const div = o.ns ? 1n : 1000n;
  for (const r of recs) {
    const h = Buffer.alloc(16);
    w32(h, Number(r.ts / 1_000_000_000n), 0);
    w32(h, Number((r.ts % 1_000_000_000n) / div), 4);
    w32(h, r.data.length, 8); w32(h, r.origLen ?? r.data.length, 12);
    parts.push(h, r.data);
  }
  const buf = Buffer.concat(parts);
  fs.writeFileSync(file, buf);
  return buf;
}

export interface NgIface { linkType: number; tsresol?: number; snaplen?: number }

/** pcapng: one section per entry of `sections` (each with its byte order, interfaces and packets). `spb` writes Simple Packet Blocks. */
export function writePcapng(file: string, sections: { be?: boolean; ifaces: NgIface[]; recs: Rec[]; spb?: boolean }[]): Buffer {
  const parts: Buffer[] = [];
  for (const sec of sections) {
    const w32 = (b: Buffer, v: number, off: number) => (sec.be ? b.writeUInt32BE(v >>> 0, off) : b.writeUInt32LE(v >>> 0, off));
    const w16 = (b: Buffer, v: number, off: number) => (sec.be ? b.writeUInt16BE(v, off) : b.writeUInt16LE(v, off));
    const block = (type: number, body: Buffer) => {
      const len = 12 + body.length + ((4 - (body.length % 4)) % 4);
      const b = Buffer.alloc(len);
      w32(b, type, 0); w32(b, len, 4); body.copy(b, 8); w32(b, len, len - 4);
      parts.push(b);
    };
    const shb = Buffer.alloc(16);
    w32(shb, 0x1a2b3c4d, 0); w16(shb, 1, 4); w16(shb, 0, 6); shb.writeInt32LE(-1, 8); shb.writeInt32LE(-1, 12);
    block(0x0a0d0d0a, shb);
    for (const i of sec.ifaces) {
      const opts: Buffer[] = [];
      // if_name, to make sure options before if_tsresol are walked correctly
      const name = Buffer.from('eth0\0\0\0\0'); const on = Buffer.alloc(4); w16(on, 2, 0); w16(on, 5, 2); opts.push(on, name);
      if (i.tsresol !== undefined) { const o = Buffer.alloc(8); w16(o, 9, 0); w16(o, 1, 2); o[4] = i.tsresol; opts.push(o); }
      opts.push(Buffer.alloc(4)); // opt_endofopt
      const b = Buffer.alloc(8); w16(b, i.linkType, 0); w32(b, i.snaplen ?? 0, 4);
      block(1, Buffer.concat([b, ...opts]));
    }
    for (const r of sec.recs) {
      if (sec.spb) {
        const b = Buffer.alloc(4); w32(b, r.origLen ?? r.data.length, 0);
        block(3, Buffer.concat([b, r.data]));
        continue;
      }
      const iface = sec.ifaces[r.iface ?? 0];
      const res = iface.tsresol ?? 6;
      const units = res & 0x80 ? (r.ts * (1n << BigInt(res & 0x7f))) / 1_000_000_000n : (r.ts * 10n ** BigInt(res)) / 1_000_000_000n;
      const b = Buffer.alloc(20);
      w32(b, r.iface ?? 0, 0); w32(b, Number(units >> 32n), 4); w32(b, Number(units & 0xffffffffn), 8);
      w32(b, r.data.length, 12); w32(b, r.origLen ?? r.data.length, 16);
      block(6, Buffer.concat([b, r.data]));
    }
  }
  const buf = Buffer.concat(parts);
  fs.writeFileSync(file, buf);
  return buf;
}

/** A TCP conversation script: packets in capture order, built from a client/server view. */
export class Conv {
  readonly recs: Rec[] = [];
  private t = 1_700_000_000_000_000_000n;
  constructor(readonly c: { addr: string; port: number }, readonly s: { addr: string; port: number }, readonly link: Link = 'eth') {}
  /** Next packet from client (`fromClient`) or server; ts advances by 1 ms per packet. */
  tcp(fromClient: boolean, seq: number, flags: number, data: string | Buffer = '', ack = 0): bigint {
    const a = fromClient ? this.c : this.s, b = fromClient ? this.s : this.c;
    this.t += 1_000_000n;
    this.recs.push({ ts: this.t, data: frame(this.link, tcpIp({ src: a.addr, dst: b.addr, sport: a.port, dport: b.port, seq, ack, flags: flags | (ack ? ACK : 0), data: typeof data === 'string' ? Buffer.from(data) : data })) });
    return this.t;
  }
  udp(fromClient: boolean, data: string | Buffer): bigint {
    const a = fromClient ? this.c : this.s, b = fromClient ? this.s : this.c;
    this.t += 1_000_000n;
    this.recs.push({ ts: this.t, data: frame(this.link, udpIp({ src: a.addr, dst: b.addr, sport: a.port, dport: b.port, data })) });
    return this.t;
  }
  raw(data: Buffer, origLen?: number): bigint {
    this.t += 1_000_000n;
    this.recs.push({ ts: this.t, data, origLen });
    return this.t;
  }
  write(name: string, o: { be?: boolean; ns?: boolean } = {}): string {
    const f = tmpFile(name);
    writePcap(f, LINKTYPE[this.link], this.recs, { ...o });
    return f;
  }
}
