// Ingest pacing: the socket ring is not read while the file exporter's trace queue holds more than
// a few batches of spans, so a resumed reader does not build its whole backlog's spans at once.
//
// Why (issue 12, a 15 s unpaced wrk burst, bench/README.md "Agent memory"): the native reader
// hands JS one batch of up to 4096 ring records per event-loop turn, while the trace queue starts
// at most its concurrent exports (512 spans each) on a later turn and holds each until its write
// is done. After each resume (the contention budget, the memory bound) the reader took 3-5
// batches in ~100 ms and the queue held 4096-12801 spans (12-29 MiB by its estimate): every one of
// them outlived two young collections, was promoted, and the old space grew by ~7 MiB per resume
// to 40 MiB committed, RSS 107-112 MiB. Paused while the queue is over the mark, the reader takes
// the next batch only once the exporter has taken the last one (what is not read meanwhile waits
// in, or is dropped and counted by, the ring), so the spans in flight are about one batch's.
//
// File exporter only, like export_backlog shedding (memory/overload.ts): a local write falls
// behind only while the agent is busy, and resumes within ms. An OTLP queue waits on a receiver
// that may be down for minutes, and must keep taking spans for the RED metrics meanwhile.
// A pause lasts at most PACE_MAX_MS (a stuck write does not stop reading).
//
// Off by default: measured (bench/README.md "Burst peak", 6 rounds alternating, load 5-8) it
// took 3 MiB off the burst's peak RSS alone (108.2 vs 111.1) and 6-8 MiB with the correlator's
// server nodes kept 1.5 s instead of 6 (99.8-99.9 vs 105.6-108), but the agent made 13-20% fewer
// spans per second of the burst under the contention budget: it read more ring records for
// fewer spans (3.2-3.5 records a span vs 2.3-2.5). Read a batch at a time the ring stays full and
// the kernel's drops fall inside exchanges; drained whole at each resume, it takes the next ones
// complete. Issue 12 asks for the peak without fewer spans. TELEGEN_INGEST_PACE_BYTES=2097152 turns it on.

/** Trace queue bytes (its own estimate, ~3 KB a span for HTTP) over which reading pauses after a
 *  batch (TELEGEN_INGEST_PACE_BYTES; 0 = never, the default). 2 MiB is the value measured. */
export const PACE_BYTES = 0;
/** A paced ring is read again at most this long after the pause, whatever the queue holds. */
export const PACE_MAX_MS = 100;
/** While paced, the queue is looked at this often. */
export const PACE_CHECK_MS = 1;

export function paceBytes(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env.TELEGEN_INGEST_PACE_BYTES ?? PACE_BYTES);
  return Number.isFinite(v) && v >= 0 ? Math.round(v) : PACE_BYTES;
}

/** The pacing decision apart from the timer: `afterBatch` says whether to pause now (the queue is
 *  over the mark), `check` whether a pause ends now (the queue is under half the mark, or the
 *  pause has lasted PACE_MAX_MS). Times in ms. */
export class IngestPace {
  paused = false;
  /** Pauses begun, and the time paused (ms) by those that ended. */
  pauses = 0;
  pausedMs = 0;
  private since = 0;
  constructor(readonly highBytes: number, readonly maxMs = PACE_MAX_MS) {}
  afterBatch(queuedBytes: number, t: number): boolean {
    if (this.paused || queuedBytes <= this.highBytes) return false;
    this.paused = true;
    this.pauses++;
    this.since = t;
    return true;
  }
  check(queuedBytes: number, t: number): boolean {
    if (!this.paused) return true;
    if (queuedBytes > this.highBytes / 2 && t - this.since < this.maxMs) return false;
    this.end(t);
    return true;
  }
  /** Ends a pause now (the gate stops). */
  end(t: number): void {
    if (!this.paused) return;
    this.paused = false;
    this.pausedMs += t - this.since;
  }
  /** Seconds paused, the current pause included. */
  seconds(t: number): number {
    return (this.pausedMs + (this.paused ? t - this.since : 0)) / 1000;
  }
}
