// Ingest pacing (host/src/memory/pace.ts): a reader resumed over a full ring takes the next batch
// only once the file exporter has taken most of the last one's spans, so the spans in flight stay
// about one batch's instead of the whole backlog's, and nothing is left unread. Counted, not timed:
// a simulated ring (one batch per event-loop turn, as the native reader hands them) and a
// simulated exporter slower than the reader.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { IngestPace } from '../../host/src/memory/pace';
import { overloadSchema, startOverloadGate } from '../../host/src/memory/overload';
import { SelfMetrics } from '../../host/src/metrics/self';

const KiB = 1024;
const MiB = 2 ** 20;

test('pace: pauses after a batch that leaves the queue over the mark, resumes under half of it or after the longest pause', () => {
  const p = new IngestPace(2 * MiB, 100);
  assert.equal(p.afterBatch(2 * MiB, 0), false, 'at the mark: read on');
  assert.equal(p.afterBatch(3 * MiB, 10), true, 'over it: pause');
  assert.equal(p.afterBatch(4 * MiB, 11), false, 'already paused: one pause');
  assert.equal(p.check(1.5 * MiB, 20), false, 'still over half the mark');
  assert.equal(p.check(MiB, 30), true, 'under half: read again');
  assert.equal(p.pauses, 1);
  assert.equal(p.pausedMs, 20);
  // A write that never finishes does not stop reading for good.
  assert.equal(p.afterBatch(3 * MiB, 100), true);
  assert.equal(p.check(3 * MiB, 199), false);
  assert.equal(p.check(3 * MiB, 200), true, 'the longest pause');
  assert.equal(p.seconds(300), 0.12);
});

/** Reads `batches` batches of `spansPerBatch` spans from a simulated ring, one per turn while not
 *  paused, into a queue an exporter drains by `exportPerTurn` spans a turn; returns the most the
 *  queue held after any batch, and how many batches were read. */
async function run(gated: boolean, batches: number, spansPerBatch: number, spanBytes: number, exportPerTurn: number) {
  const queue = { heldBytes: 0, capBytes: 32 * MiB };
  let paused = false;
  const pauses: boolean[] = [];
  const target = { shedReason: -1, shedRecords: new Float64Array(4), onRead: undefined as (() => void) | undefined };
  const metrics = new SelfMetrics();
  // Nothing but pacing: no budget, no bound, no backlog shedding, no host CPU reads.
  const cfg = overloadSchema.parse({ max_cpu_percent: 0, contended_cpu_percent: 0, max_rss_mb: 0, shed_export_backlog_percent: 0 });
  const gate = gated ? startOverloadGate(cfg, target, metrics, { warn: () => undefined },
    { fill: queue, pauseRing: (p) => { paused = p; pauses.push(p); }, hostCpu: null, paceBytes: 2 * MiB, paceMaxMs: 600_000 }) : undefined;
  if (gated) assert.ok(gate, 'with the file trace queue and a reader that can pause, the gate paces');
  let read = 0;
  let maxHeld = 0;
  let turns = 0;
  try {
    await new Promise<void>((done) => {
      const turn = () => {
        turns++;
        // The exporter takes its share of what is queued (its writes end on later turns).
        queue.heldBytes = Math.max(0, queue.heldBytes - exportPerTurn * spanBytes);
        if (!paused && read < batches) {
          read++;
          queue.heldBytes += spansPerBatch * spanBytes;
          maxHeld = Math.max(maxHeld, queue.heldBytes);
          target.onRead?.();
        }
        if (read === batches && queue.heldBytes === 0) { done(); return; }
        // Paused: the gate's own timer resumes the reader; the turns go on meanwhile.
        if (paused) setTimeout(turn, 1); else setImmediate(turn);
      };
      setImmediate(turn);
    });
  } finally {
    gate?.stop();
  }
  return { maxHeld, read, pauses, turns, metrics: metrics.render() };
}

test('pace: a full ring read at one batch a turn keeps about one batch of spans queued, and every batch is read', async () => {
  // A 16 MiB ring of HTTP exchanges: ~12 batches of 4096 records, ~1365 spans each at ~3 KB by
  // the queue's estimate; the exporter writes 256 spans a turn.
  const batches = 12, spans = 1365, bytes = 3 * KiB, perTurn = 256;
  const batchBytes = spans * bytes;
  const paced = await run(true, batches, spans, bytes, perTurn);
  assert.equal(paced.read, batches, 'nothing left unread');
  assert.ok(paced.maxHeld <= 2 * MiB + batchBytes, `queue held ${(paced.maxHeld / MiB).toFixed(1)} MiB after a batch: over the 2 MiB mark plus one batch (${(batchBytes / MiB).toFixed(1)} MiB)`);
  const n = paced.pauses.filter((p) => p).length;
  assert.ok(n >= batches - 1, `paused after ${n} of ${batches} batches`);
  assert.equal(paced.pauses[paced.pauses.length - 1], false, 'reading resumed at the end');
  assert.match(paced.metrics, new RegExp(`^telegen_ingest_paced_total ${n}$`, 'm'), 'every pause counted');
  assert.match(paced.metrics, /^telegen_ingest_paced_seconds_total \d/m);
  // The same ring and exporter unpaced: the queue holds most of the backlog at once.
  const unpaced = await run(false, batches, spans, bytes, perTurn);
  assert.equal(unpaced.read, batches);
  assert.ok(unpaced.maxHeld > 4 * paced.maxHeld, `unpaced ${(unpaced.maxHeld / MiB).toFixed(1)} MiB vs paced ${(paced.maxHeld / MiB).toFixed(1)} MiB`);
});

test('pace: a queue that stays under the mark (1k req/s: a few records a batch) never pauses the reader', async () => {
  const r = await run(true, 200, 3, 3 * KiB, 256);
  assert.equal(r.read, 200);
  assert.deepEqual(r.pauses, [], 'never paused');
  assert.match(r.metrics, /^telegen_ingest_paced_total 0$/m);
});
