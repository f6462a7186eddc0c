// Per-rule rate limit: a token bucket; what it refuses is counted, and the next record that gets
// through says how many were suppressed before it.
export class RuleLimiter {
  private tokens: number;
  private last: number;
  private pending = 0;
  suppressed = 0;
  constructor(private readonly perSecond: number, private readonly burst: number, now = Date.now()) {
    this.tokens = burst;
    this.last = now;
  }

  /** undefined: suppress; otherwise the number suppressed since the last record let through. */
  take(now = Date.now()): number | undefined {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.perSecond);
    this.last = now;
    if (this.tokens < 1) { this.pending++; this.suppressed++; return undefined; }
    this.tokens -= 1;
    const n = this.pending;
    this.pending = 0;
    return n;
  }
}
