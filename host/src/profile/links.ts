// Trace links for CPU samples: which traced request was in flight on a sample's thread at the
// sample's time. Server spans (pid, thread.id, start, end, ids) are kept per thread for a while;
// each sample-time record of a drain is matched against them. A sample is linked only when
// exactly one server span of its pid and tid covers its time: exact for thread-per-request
// servers, and on event-loop runtimes only while one request is in flight on that thread
// (docs/correlation.md says what holds where).
import { RawDrain, TraceLink } from './model';

interface ThreadSpan { start: bigint; end: bigint; link: TraceLink }

export interface LinkCounts { linked: number; ambiguous: number; unlinked: number }

/** Per key of a drain: the counts that go to each trace link (the rest stay unlinked). */
export type KeyLinks = Array<Array<[TraceLink, number]> | undefined>;

/** Windows over which the slowest span arrival is remembered (6 x 10 s). */
const LAG_WINDOW_MS = 10_000;
const LAG_WINDOWS = 6;

export class ThreadSpans {
  private byThread = new Map<string, ThreadSpan[]>();
  private count = 0;
  /** Slowest arrival (ms from a span's end to its indexing) per 10 s window, newest last. */
  private lags: Array<{ at: number; ms: number }> = [];
  dropped = 0;

  constructor(private readonly maxSpans = 100_000) {}

  get size(): number { return this.count; }

  /** A span reached the index `ms` after it ended (decoding, correlation's buffering, load). */
  noteLag(ms: number, now = Date.now()): void {
    const last = this.lags[this.lags.length - 1];
    if (last && now - last.at < LAG_WINDOW_MS) { if (ms > last.ms) last.ms = ms; return; }
    this.lags.push({ at: now, ms });
    if (this.lags.length > LAG_WINDOWS) this.lags.shift();
  }

  /** The slowest arrival of the last minute: how long a sample's span may still be on its way. */
  recentLagMs(now = Date.now()): number {
    let m = 0;
    for (const l of this.lags) if (now - l.at <= LAG_WINDOW_MS * LAG_WINDOWS && l.ms > m) m = l.ms;
    return m;
  }

  add(pid: number, tid: number, start: bigint, end: bigint, link: TraceLink): void {
    if (this.count >= this.maxSpans) { this.dropped++; return; }
    const k = `${pid}:${tid}`;
    const l = this.byThread.get(k);
    const s = { start, end, link };
    if (l) l.push(s); else this.byThread.set(k, [s]);
    this.count++;
  }

  /** The one server span of (pid, tid) whose [start, end] holds `ts`; 'ambiguous' when several do. */
  find(pid: number, tid: number, ts: bigint): TraceLink | 'ambiguous' | undefined {
    const l = this.byThread.get(`${pid}:${tid}`);
    if (!l) return undefined;
    let hit: TraceLink | undefined;
    for (const s of l) {
      if (s.start > ts || ts > s.end) continue;
      if (hit) return 'ambiguous';
      hit = s.link;
    }
    return hit;
  }

  /** Forgets spans that ended before `horizon` (epoch ns). */
  prune(horizon: bigint): void {
    for (const [k, l] of this.byThread) {
      let w = 0;
      for (const s of l) if (s.end >= horizon) l[w++] = s;
      this.count -= l.length - w;
      if (w === 0) this.byThread.delete(k); else l.length = w;
    }
  }
}

/**
 * Splits each drained key's count by the trace link of its sample-time records. Samples without
 * a record (ring full, recording off) stay unlinked, as do records no single span covers.
 */
export function joinSamples(raw: RawDrain, spans: ThreadSpans, toEpochNs: (ktime: bigint) => bigint): { links: KeyLinks; counts: LinkCounts } {
  const links: KeyLinks = new Array(raw.n);
  const counts: LinkCounts = { linked: 0, ambiguous: 0, unlinked: 0 };
  const recKeys = raw.recKeys;
  const recTimes = raw.recTimes;
  const byKey: Array<Map<string, [TraceLink, number]> | undefined> = new Array(raw.n);
  if (recKeys && recTimes) {
    for (let r = 0; r < recKeys.length; r++) {
      const i = recKeys[r];
      const hit = spans.find(raw.keys[i * 4], raw.keys[i * 4 + 1], toEpochNs(recTimes[r]));
      if (hit === 'ambiguous') { counts.ambiguous++; continue; }
      if (!hit) continue;
      let m = byKey[i];
      if (!m) { m = new Map(); byKey[i] = m; }
      const id = hit.spanId;
      const e = m.get(id);
      if (e) e[1]++; else m.set(id, [hit, 1]);
    }
  }
  let all = 0;
  for (let i = 0; i < raw.n; i++) {
    all += raw.counts[i];
    const m = byKey[i];
    if (!m) continue;
    // Never more linked than counted (a record whose count was taken in another drain).
    let left = raw.counts[i];
    const out: Array<[TraceLink, number]> = [];
    for (const [link, n] of m.values()) { const take = Math.min(n, left); if (take > 0) { out.push([link, take]); left -= take; counts.linked += take; } }
    links[i] = out;
  }
  counts.unlinked = all - counts.linked;
  return { links, counts };
}
