// Holds each line until the request it was printed in has had time to end, then asks the
// correlation layer which request was in flight on that thread at that moment. A span is only
// known once its exchange completed, so asking at once would miss every request still running;
// and a known request's trace may still wait for its caller's span ('pending'): such lines are
// asked again on later ticks, up to maxWaitNs after they were printed.
import { LogLine } from './lines';

export interface TraceLink { traceId: string; spanId: string }
export type LinkLookup = (pid: number, tid: number, tsEpochNs: bigint) => TraceLink | 'pending' | undefined;

export interface LinkedLine extends LogLine {
  /** Unix epoch ns of the line. */
  epochNs: bigint;
  link?: TraceLink;
}

export class LinkQueue {
  private readonly held: LinkedLine[] = [];
  private head = 0;
  /** Lines whose request is known but whose trace is not decided yet. */
  private retry: LinkedLine[] = [];
  linked = 0;
  forced = 0;

  constructor(
    private readonly opts: { waitNs: bigint; maxWaitNs: bigint; maxPending: number },
    private readonly lookup: LinkLookup,
    private readonly out: (l: LinkedLine) => void,
  ) {}

  get size(): number { return this.held.length - this.head + this.retry.length; }

  add(line: LogLine, epochNs: bigint): void {
    this.held.push({ ...line, epochNs });
    while (this.size > this.opts.maxPending) {
      this.forced++;
      if (this.retry.length) this.release(this.retry.shift()!, true);
      else this.release(this.held[this.head++], true);
    }
    this.compact();
  }

  /** Releases every line held since before `nowEpochNs` - waitNs. Lines arrive in time order. */
  tick(nowEpochNs: bigint): void {
    const again = this.retry;
    this.retry = [];
    for (const l of again) this.release(l, l.epochNs + this.opts.maxWaitNs <= nowEpochNs);
    while (this.head < this.held.length && this.held[this.head].epochNs + this.opts.waitNs <= nowEpochNs) this.release(this.held[this.head++], false);
    this.compact();
  }

  flush(): void {
    for (const l of this.retry) this.release(l, true);
    this.retry = [];
    while (this.head < this.held.length) this.release(this.held[this.head++], true);
    this.compact();
  }

  private release(l: LinkedLine, final: boolean): void {
    const r = this.lookup(l.pid, l.tid, l.epochNs);
    if (r === 'pending' && !final) { this.retry.push(l); return; }
    l.link = r === 'pending' ? undefined : r;
    if (l.link) this.linked++;
    this.out(l);
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.held.length) { this.held.splice(0, this.head); this.head = 0; }
    else if (this.head === this.held.length) { this.held.length = 0; this.head = 0; }
  }
}
