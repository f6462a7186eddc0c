// One direction of a TCP connection: sequence space → in-order bytes, once.
//
// Sequence numbers are uint32 kept in JS numbers; `rel(a, b) = (a - b) | 0` is their signed
// distance modulo 2^32, which makes every comparison wraparound-safe as long as the live window
// is below 2^31 bytes (TCP's own rule).

export interface HalfOutput {
  data(fromClient: boolean, bytes: Uint8Array, tsNs: bigint): void;
  gap(fromClient: boolean, lost: number, tsNs: bigint): void;
}

/** An out-of-order segment waiting for the bytes before it. `cut`: bytes of it the capture lost at its tail. */
interface Pending {
  seq: number;
  data: Uint8Array;
  cut: number;
}

/** Larger distances between the peer's ACK and our first segment are treated as noise, not loss. */
const MAX_START_GAP = 1 << 20;

export function rel(a: number, b: number): number {
  return (a - b) | 0;
}

export class TcpHalf {
  /** True once the initial sequence number is known (from a SYN or the first segment). */
  started = false;
  /** Next byte we expect (uint32). */
  next = 0;
  /** Whether a SYN fixed `next` (as opposed to the first segment seen mid-stream). */
  synSeen = false;
  /** Sequence number of that SYN. */
  isn = 0;
  fin = false;
  finSeq = 0;
  /** Out-of-order segments, sorted by sequence relative to `next`. */
  private pending: Pending[] = [];
  private pendingBytes = 0;
  /** Mid-stream: the peer's first acknowledgement, seen before our first segment. */
  private ackHint = -1;
  /** Bytes dropped because they were already delivered (retransmissions, overlaps). */
  dupBytes = 0;

  constructor(
    readonly fromClient: boolean,
    private readonly out: HalfOutput,
    private readonly maxBuffered: number,
  ) {}

  /** A SYN (or SYN-ACK) from this side: the stream starts at seq + 1. */
  syn(seq: number): void {
    if (this.started) return; // retransmitted SYN, or one after data we already anchored on
    this.started = true;
    this.synSeen = true;
    this.isn = seq;
    this.next = (seq + 1) >>> 0;
  }

  /** All data has been delivered up to the FIN. */
  get done(): boolean {
    return this.fin && this.pending.length === 0 && this.next === this.finSeq;
  }

  /**
   * A segment from this side: `data` starts at `seq` (after any SYN), `cut` more bytes followed it
   * on the wire but were not captured. `fin` marks the end of the stream after those bytes.
   */
  segment(seq: number, data: Uint8Array, cut: number, fin: boolean, ts: bigint): void {
    const total = data.length + cut;
    if (!this.started) {
      this.started = true;
      this.next = seq;
      // Joined mid-stream: the peer already acknowledged up to ackHint, so bytes between it and
      // our first segment were sent but not captured. (A hint beyond seq means a retransmission
      // of acknowledged bytes; we start at seq then, as there is nothing to report.)
      if (this.ackHint >= 0) {
        const lost = rel(seq, this.ackHint);
        if (lost > 0 && lost <= MAX_START_GAP) {
          this.next = this.ackHint;
          this.out.gap(this.fromClient, lost, ts);
          this.next = seq;
        }
      }
    }
    if (fin && !this.fin) {
      this.fin = true;
      this.finSeq = (seq + total) >>> 0;
    }
    if (total === 0) return;
    const r = rel(seq, this.next);
    if (r + total <= 0) {
      this.dupBytes += data.length;
      return;
    }
    if (r <= 0) {
      this.deliver(data, cut, -r, ts);
      this.drain(ts);
      return;
    }
    this.insert(seq, data, cut);
    while (this.pendingBytes > this.maxBuffered && this.pending.length > 0) this.skipToFirstPending(ts);
  }

  /**
   * The peer acknowledged `ack` before this side sent anything we saw. The first such ACK marks
   * where our view of this direction begins; later ones may already cover bytes we missed.
   */
  hint(ack: number): void {
    if (!this.started && this.ackHint < 0) this.ackHint = ack;
  }

  /**
   * The peer acknowledged up to `ack`. A hole we hold data beyond, that the peer has acked, will
   * never be retransmitted: its bytes were lost by the capture, so report the gap now.
   */
  acked(ack: number, ts: bigint): void {
    // Several holes may lie below the ACK: each one followed by waiting data is certain loss.
    while (this.pending.length > 0) {
      const r = rel(ack, this.next);
      if (r <= 0) return;
      const first = rel(this.pending[0].seq, this.next);
      const lost = r < first ? r : first;
      if (lost > 0) {
        this.out.gap(this.fromClient, lost, ts);
        this.next = (this.next + lost) >>> 0;
      }
      this.drain(ts);
    }
  }

  /** End of stream (FIN/RST/end of capture): whatever is still missing is a gap. */
  flush(ts: bigint): void {
    while (this.pending.length > 0) this.skipToFirstPending(ts);
    if (this.fin) {
      const missing = rel(this.finSeq, this.next);
      if (missing > 0) {
        this.out.gap(this.fromClient, missing, ts);
        this.next = this.finSeq;
      }
    }
  }

  get buffered(): number {
    return this.pendingBytes;
  }

  /** Deliver `data[skip..]` (bytes before `skip` were already delivered) and the gap of its cut tail. */
  private deliver(data: Uint8Array, cut: number, skip: number, ts: bigint): void {
    const len = data.length;
    if (skip < len) {
      this.out.data(this.fromClient, skip === 0 ? data : data.subarray(skip), ts);
      this.next = (this.next + len - skip) >>> 0;
      this.dupBytes += skip;
    } else {
      this.dupBytes += len;
    }
    const lostTail = skip > len ? cut - (skip - len) : cut;
    if (lostTail > 0) {
      this.out.gap(this.fromClient, lostTail, ts);
      this.next = (this.next + lostTail) >>> 0;
    }
  }

  /** Deliver every pending segment that now starts at or before `next`. */
  private drain(ts: bigint): void {
    const p = this.pending;
    let i = 0;
    while (i < p.length && rel(p[i].seq, this.next) <= 0) {
      const s = p[i++];
      this.pendingBytes -= s.data.length;
      const r = rel(s.seq, this.next);
      if (r + s.data.length + s.cut > 0) this.deliver(s.data, s.cut, -r, ts);
      else this.dupBytes += s.data.length;
    }
    if (i > 0) p.splice(0, i);
  }

  /** Give up on the hole before the first pending segment. */
  private skipToFirstPending(ts: bigint): void {
    const lost = rel(this.pending[0].seq, this.next);
    if (lost > 0) {
      this.out.gap(this.fromClient, lost, ts);
      this.next = this.pending[0].seq;
    }
    this.drain(ts);
  }

  private insert(seq: number, data: Uint8Array, cut: number): void {
    const p = this.pending;
    const r = rel(seq, this.next);
    // Binary search for the first entry that starts after this one (stable: equal seqs keep arrival order).
    let lo = 0, hi = p.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (rel(p[mid].seq, this.next) <= r) lo = mid + 1;
      else hi = mid;
    }
    // An exact duplicate of a waiting segment adds nothing.
    if (lo > 0 && p[lo - 1].seq === seq && p[lo - 1].data.length + p[lo - 1].cut >= data.length + cut) {
      this.dupBytes += data.length;
      return;
    }
    // Copy: the frame buffer belongs to a large read chunk we must not pin while waiting.
    p.splice(lo, 0, { seq, data: data.slice(), cut });
    this.pendingBytes += data.length;
  }
}
