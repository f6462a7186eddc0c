// IPv4 and IPv6 fragment reassembly, bounded. A completed datagram is rebuilt as a plain
// unfragmented IP packet and decoded again like any captured frame.
import { Frame, addrKey } from './decode';

interface Piece { offset: number; data: Uint8Array }
interface Datagram {
  /** Header to rebuild the packet with (IPv4: the first fragment's; IPv6: a fresh 40-byte one). */
  header: Uint8Array | null;
  v6: boolean;
  pieces: Piece[];
  total: number; // payload length, known once the last fragment (MF=0) arrived; -1 before
  bytes: number;
}

export class Defrag {
  private readonly pending = new Map<string, Datagram>();
  private bytes = 0;
  /** Fragments given up on (evicted or never completed). */
  lostFragments = 0;
  reassembled = 0;

  constructor(private readonly maxDatagrams = 4096, private readonly maxBytes = 32 << 20) {}

  /** Add the fragment `f` describes; returns the rebuilt IP packet once complete, else null. */
  add(f: Frame): Uint8Array | null {
    const g = f.frag, b = f.buf;
    if (g.cut) { this.lostFragments++; return null; } // cannot complete a datagram the capture cut
    const key = (f.v6 ? '6|' : '4|') + addrKey(b, f.srcOff, f.v6) + '|' + addrKey(b, f.dstOff, f.v6) + '|' + g.next + '|' + g.id;
    let d = this.pending.get(key);
    if (!d) {
      d = { header: null, v6: f.v6, pieces: [], total: -1, bytes: 0 };
      this.pending.set(key, d);
    }
    const data = b.slice(g.dataOff, g.dataEnd); // copy: the frame's chunk must not stay pinned
    if (g.offset + data.length > 65535) { this.drop(key, d); this.lostFragments++; return null; }
    d.pieces.push({ offset: g.offset, data });
    d.bytes += data.length;
    this.bytes += data.length;
    if (!g.more) d.total = g.offset + data.length;
    if (g.offset === 0) {
      if (f.v6) {
        const h = new Uint8Array(40);
        h.set(b.subarray(g.ipOff, g.ipOff + 40));
        h[6] = g.next; // extension headers before the fragment header are not kept
        d.header = h;
      } else {
        d.header = b.slice(g.ipOff, g.dataOff);
      }
    }
    const out = d.header && d.total >= 0 ? this.assemble(d) : null;
    if (out) {
      this.drop(key, d);
      this.reassembled++;
      return out;
    }
    while (this.pending.size > this.maxDatagrams || this.bytes > this.maxBytes) {
      const [k, old] = this.pending.entries().next().value as [string, Datagram];
      this.drop(k, old);
      this.lostFragments += old.pieces.length;
    }
    return null;
  }

  /** Fragments of datagrams still incomplete at the end of the capture. */
  finish(): void {
    for (const d of this.pending.values()) this.lostFragments += d.pieces.length;
    this.pending.clear();
    this.bytes = 0;
  }

  private drop(key: string, d: Datagram): void {
    this.pending.delete(key);
    this.bytes -= d.bytes;
  }

  /** The rebuilt packet if the pieces cover 0..total, else null. */
  private assemble(d: Datagram): Uint8Array | null {
    const sorted = d.pieces.slice().sort((x, y) => x.offset - y.offset);
    let covered = 0;
    for (const p of sorted) {
      if (p.offset > covered) return null;
      covered = Math.max(covered, p.offset + p.data.length);
    }
    if (covered < d.total) return null;
    const h = d.header!;
    const out = new Uint8Array(h.length + d.total);
    out.set(h);
    // Later arrivals first, so the first copy of an overlapped byte is the one that stays.
    for (let i = d.pieces.length - 1; i >= 0; i--) {
      const p = d.pieces[i];
      const n = Math.min(p.data.length, d.total - p.offset);
      if (n > 0) out.set(p.data.subarray(0, n), h.length + p.offset);
    }
    if (d.v6) {
      out[4] = d.total >> 8; out[5] = d.total & 0xff;
    } else {
      const tl = h.length + d.total;
      out[2] = tl >> 8; out[3] = tl & 0xff;
      out[6] = 0; out[7] = 0; // no longer a fragment (DF cleared too; irrelevant here)
    }
    return out;
  }
}
