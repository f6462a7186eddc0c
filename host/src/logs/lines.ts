// Writes → lines. A process may print a line in several writes (a prefix, then the message) or
// several lines in one write; lines are cut at '\n' per (pid, fd) stream. A line keeps the time
// and thread of the write holding its first byte: that is when the program started to print it.
export interface LogWrite {
  pid: number;
  tid: number;
  fd: number;
  /** Source clock (kernel monotonic ns). */
  ts: bigint;
  comm: string;
  bytes: Buffer;
  /** The write moved more bytes than were captured. */
  truncated: boolean;
}

export interface LogLine {
  pid: number;
  tid: number;
  fd: number;
  ts: bigint;
  comm: string;
  text: string;
  truncated: boolean;
}

interface Partial { pid: number; tid: number; fd: number; ts: bigint; comm: string; parts: Buffer[]; bytes: number; seenAt: bigint }

export interface LineOptions {
  maxLineBytes: number;
  /** A partial line with no further write for this long (source ns) is emitted as it is. */
  idleNs: bigint;
  /** Partial lines held at most (one per stream); beyond, the oldest is emitted. */
  maxStreams: number;
}

export class LineAssembler {
  private readonly partials = new Map<string, Partial>();

  constructor(private readonly opts: LineOptions, private readonly out: (l: LogLine) => void) {}

  push(w: LogWrite): void {
    const key = `${w.pid}:${w.fd}`;
    let p = this.partials.get(key);
    let start = 0;
    for (;;) {
      const nl = w.bytes.indexOf(0x0a, start);
      const end = nl < 0 ? w.bytes.length : nl;
      if (end > start || (nl >= 0 && p)) {
        if (!p) {
          p = { pid: w.pid, tid: w.tid, fd: w.fd, ts: w.ts, comm: w.comm, parts: [], bytes: 0, seenAt: w.ts };
          this.partials.set(key, p);
        }
        const room = this.opts.maxLineBytes - p.bytes;
        const take = Math.min(end - start, room);
        if (take > 0) { p.parts.push(w.bytes.subarray(start, start + take)); p.bytes += take; }
        p.seenAt = w.ts;
        if (take < end - start) {
          // Over the line limit: emit what fits, drop the rest of this line.
          this.emit(key, p, true);
          p = undefined;
          if (nl < 0) break;
          start = nl + 1;
          continue;
        }
      }
      if (nl < 0) break;
      if (p) { this.emit(key, p, false); p = undefined; }
      start = nl + 1;
      if (start >= w.bytes.length) break;
    }
    // The kernel kept only the start of this write: the line it was in cannot be completed.
    if (w.truncated && p) this.emit(key, p, true);
    if (this.partials.size > this.opts.maxStreams) {
      const [k, oldest] = this.partials.entries().next().value as [string, Partial];
      this.emit(k, oldest, false);
    }
  }

  /** Emits partial lines idle since before `now` - idleNs (source clock). */
  tick(now: bigint): void {
    for (const [k, p] of this.partials) if (now - p.seenAt >= this.opts.idleNs) this.emit(k, p, false);
  }

  flush(): void {
    for (const [k, p] of [...this.partials]) this.emit(k, p, false);
  }

  private emit(key: string, p: Partial, truncated: boolean): void {
    this.partials.delete(key);
    let text = Buffer.concat(p.parts, p.bytes).toString('utf8');
    if (text.endsWith('\r')) text = text.slice(0, -1);
    if (!text.trim()) return;
    this.out({ pid: p.pid, tid: p.tid, fd: p.fd, ts: p.ts, comm: p.comm, text, truncated });
  }
}
