import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { BatchQueue, type ExportOutcome, type ExportQueueCounters, type SignalExporter } from '../../host/src/export';

/** Scriptable exporter: answers from `script` in order (then success), optionally holding calls. */
class FakeExporter implements SignalExporter<number> {
  readonly signal = 'traces' as const;
  readonly target = 'fake';
  calls: Array<{ at: number; batch: number[] }> = [];
  exported: number[] = [];
  hold = false;
  private held: Array<() => void> = [];
  shutdownCalled = false;
  constructor(public script: Array<ExportOutcome | 'hang'> = [], public delayMs = 0) {}
  async export(batch: number[]): Promise<ExportOutcome> {
    this.calls.push({ at: Date.now(), batch: [...batch] });
    const step = this.script.shift() ?? { code: 'success' };
    if (step === 'hang') return new Promise<ExportOutcome>(() => undefined);
    if (this.hold) await new Promise<void>((r) => this.held.push(r));
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    if (step.code === 'success') this.exported.push(...batch);
    return step;
  }
  release(): void {
    this.hold = false;
    for (const r of this.held.splice(0)) r();
  }
  async forceFlush(): Promise<void> {}
  async shutdown(): Promise<void> {
    this.shutdownCalled = true;
  }
}

const SIZE = 100;
function queue(exp: FakeExporter, o: Partial<ConstructorParameters<typeof BatchQueue<number>>[0]> = {}) {
  return new BatchQueue<number>({
    signal: 'traces',
    exporter: exp,
    estimateBytes: () => SIZE,
    batchSize: 1000,
    maxQueueBytes: 10 * SIZE,
    flushIntervalMs: 0,
    retry: { maxAttempts: 3, initialBackoffMs: 10, maxBackoffMs: 40 },
    ...o,
  });
}

/** The accounting identity every counter snapshot must satisfy. */
function assertBalanced(c: ExportQueueCounters): void {
  assert.equal(c.received, c.exported + c.dropped_queue_full + c.dropped_export_failed + c.dropped_shutdown + c.queue_items + c.in_flight_items, JSON.stringify(c));
}

test('queue full, drop_newest: exactly the overflow is dropped and counted', async () => {
  const exp = new FakeExporter();
  const q = queue(exp);
  let accepted = 0;
  for (let i = 0; i < 25; i++) if (q.enqueue(i)) accepted++;
  assert.equal(accepted, 10);
  let c = q.counters();
  assert.equal(c.received, 25);
  assert.equal(c.queued, 10);
  assert.equal(c.dropped_queue_full, 15);
  assert.equal(c.queue_items, 10);
  assert.equal(c.queue_bytes, 10 * SIZE);
  assertBalanced(c);
  await q.forceFlush();
  assert.deepEqual(exp.exported, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  c = q.counters();
  assert.equal(c.exported, 10);
  assert.equal(c.queue_bytes, 0);
  assertBalanced(c);
  await q.shutdown(100);
});

test('queue full, drop_oldest: the newest items survive, evictions counted', async () => {
  const exp = new FakeExporter();
  const q = queue(exp, { dropPolicy: 'drop_oldest' });
  for (let i = 0; i < 25; i++) assert.equal(q.enqueue(i), true);
  const c = q.counters();
  assert.equal(c.dropped_queue_full, 15);
  assert.equal(c.queue_items, 10);
  assertBalanced(c);
  await q.forceFlush();
  assert.deepEqual(exp.exported, [15, 16, 17, 18, 19, 20, 21, 22, 23, 24]);
  await q.shutdown(100);
});

test('in-flight batches count toward the byte bound; an oversized item is dropped', async () => {
  const exp = new FakeExporter();
  exp.hold = true;
  const q = queue(exp, { batchSize: 5, maxConcurrentExports: 1 });
  for (let i = 0; i < 5; i++) q.enqueue(i);
  await new Promise((r) => setImmediate(r));
  assert.equal(exp.calls.length, 1);
  let c = q.counters();
  assert.equal(c.in_flight_items, 5);
  assert.equal(c.queue_bytes, 5 * SIZE);
  for (let i = 5; i < 20; i++) q.enqueue(i);
  c = q.counters();
  assert.equal(c.queue_items, 5);
  assert.equal(c.dropped_queue_full, 10);
  assertBalanced(c);
  const big = new BatchQueue<number>({ signal: 'logs', exporter: new FakeExporter(), estimateBytes: (n) => n, batchSize: 10, maxQueueBytes: 1000, flushIntervalMs: 0 });
  assert.equal(big.enqueue(5000), false);
  assert.equal(big.counters().dropped_queue_full, 1);
  exp.release();
  await q.forceFlush();
  assert.equal(q.counters().exported, 10);
  await q.shutdown(100);
  await big.shutdown(100);
});

test('enqueue is synchronous: no export on the producer stack, full batch exported on a later turn', async () => {
  const exp = new FakeExporter();
  const q = queue(exp, { batchSize: 4, maxQueueBytes: 1 << 20 });
  for (let i = 0; i < 9; i++) q.enqueue(i);
  assert.equal(exp.calls.length, 0);
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  // Two full batches went; the partial one (1 item) waits for the interval or a flush.
  assert.deepEqual(exp.calls.map((c) => c.batch.length), [4, 4]);
  assert.equal(q.counters().queue_items, 1);
  // 100k enqueues stay fast (O(1) each).
  const t0 = process.hrtime.bigint();
  const q2 = queue(new FakeExporter(), { batchSize: 1_000_000, maxQueueBytes: 1e12 });
  for (let i = 0; i < 100_000; i++) q2.enqueue(i);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  assert.ok(ms < 1000, `100k enqueues took ${ms} ms`);
  await q.shutdown(100);
  await q2.shutdown(0);
});

test('partial batch goes out on the flush interval', async () => {
  const exp = new FakeExporter();
  const q = queue(exp, { flushIntervalMs: 30, maxQueueBytes: 1 << 20 });
  q.enqueue(1);
  q.enqueue(2);
  const t0 = Date.now();
  while (exp.exported.length < 2 && Date.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(exp.exported, [1, 2]);
  await q.shutdown(100);
});

test('retryable results are retried with backoff, then succeed', async () => {
  const exp = new FakeExporter([{ code: 'retryable' }, { code: 'retryable' }]);
  const q = queue(exp, { retry: { maxAttempts: 5, initialBackoffMs: 40, maxBackoffMs: 1000 }, random: () => 0 });
  q.enqueue(1);
  await q.forceFlush();
  const c = q.counters();
  assert.equal(c.exported, 1);
  assert.equal(c.retries, 2);
  assert.equal(c.export_requests, 3);
  assert.equal(c.export_failures, 2);
  // random()=0 → equal jitter gives exactly half the exponential step: 20 ms, then 40 ms.
  assert.ok(exp.calls[1].at - exp.calls[0].at >= 18, 'first backoff');
  assert.ok(exp.calls[2].at - exp.calls[1].at >= 38, 'second backoff');
  assertBalanced(c);
  await q.shutdown(100);
});

test('backoff: exponential, capped, jittered; server delay wins', () => {
  const q = queue(new FakeExporter(), { retry: { maxAttempts: 9, initialBackoffMs: 100, maxBackoffMs: 1000 }, random: () => 0.999999 });
  assert.ok(Math.abs(q.backoffMs(1) - 100) < 0.01);
  assert.ok(Math.abs(q.backoffMs(3) - 400) < 0.01);
  assert.ok(Math.abs(q.backoffMs(9) - 1000) < 0.01);
  assert.equal(q.backoffMs(2, 5000), 5000);
  const low = queue(new FakeExporter(), { retry: { maxAttempts: 9, initialBackoffMs: 100, maxBackoffMs: 1000 }, random: () => 0 });
  assert.equal(low.backoffMs(1), 50);
  void q.shutdown(0);
  void low.shutdown(0);
});

test('server retry delay (Retry-After / RetryInfo) is honoured', async () => {
  const exp = new FakeExporter([{ code: 'retryable', retryAfterMs: 300 }]);
  const q = queue(exp, { retry: { maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 1 } });
  q.enqueue(1);
  await q.forceFlush();
  assert.equal(exp.calls.length, 2);
  assert.ok(exp.calls[1].at - exp.calls[0].at >= 290, `retried after ${exp.calls[1].at - exp.calls[0].at} ms`);
  await q.shutdown(100);
});

test('permanent failure: dropped{export_failed}, not retried', async () => {
  const exp = new FakeExporter([{ code: 'failure', error: new Error('400') }]);
  const events: string[] = [];
  const q = queue(exp, { onEvent: (e) => events.push(e.type === 'dropped' ? `dropped:${e.reason}:${e.count}:${e.first}` : `error:${e.code}`) });
  for (let i = 0; i < 7; i++) q.enqueue(i);
  await q.forceFlush();
  const c = q.counters();
  assert.equal(exp.calls.length, 1);
  assert.equal(c.dropped_export_failed, 7);
  assert.equal(c.retries, 0);
  assert.deepEqual(events, ['error:failure', 'dropped:export_failed:7:true']);
  for (let i = 0; i < 12; i++) q.enqueue(i);
  assert.deepEqual(events.slice(2), ['dropped:queue_full:1:true']); // the second overflow only counts
  assertBalanced(c);
  await q.shutdown(100);
});

test('retryable forever: max_attempts calls, then dropped{export_failed}', async () => {
  const exp = new FakeExporter(Array.from({ length: 10 }, () => ({ code: 'retryable' as const })));
  const q = queue(exp, { retry: { maxAttempts: 4, initialBackoffMs: 5, maxBackoffMs: 10 } });
  for (let i = 0; i < 3; i++) q.enqueue(i);
  await q.forceFlush();
  const c = q.counters();
  assert.equal(exp.calls.length, 4);
  assert.equal(c.retries, 3);
  assert.equal(c.dropped_export_failed, 3);
  assertBalanced(c);
  await q.shutdown(100);
});

test('an exporter that throws is a failure, the queue keeps going', async () => {
  const exp = new FakeExporter();
  exp.export = async () => {
    throw new Error('boom');
  };
  const q = queue(exp);
  q.enqueue(1);
  await q.forceFlush();
  assert.equal(q.counters().dropped_export_failed, 1);
  await q.shutdown(100);
});

test('shutdown flushes everything within the deadline', async () => {
  const exp = new FakeExporter([], 30);
  const q = queue(exp, { batchSize: 10, maxQueueBytes: 1 << 20, maxConcurrentExports: 1 });
  for (let i = 0; i < 55; i++) q.enqueue(i);
  const t0 = Date.now();
  const rep = await q.shutdown(5000);
  assert.ok(Date.now() - t0 < 2000);
  assert.deepEqual(rep, { signal: 'traces', completed: true, exported: 55, dropped_shutdown: 0, dropped_export_failed: 0 });
  assert.equal(exp.exported.length, 55);
  assert.equal(exp.shutdownCalled, true);
  // After shutdown nothing is accepted; it is counted.
  assert.equal(q.enqueue(99), false);
  const c = q.counters();
  assert.equal(c.dropped_shutdown, 1);
  assertBalanced(c);
});

test('shutdown deadline: a hung exporter and a pending backlog are counted as dropped{shutdown}', async () => {
  const exp = new FakeExporter(['hang']);
  const q = queue(exp, { batchSize: 10, maxQueueBytes: 1 << 20, maxConcurrentExports: 1 });
  for (let i = 0; i < 25; i++) q.enqueue(i);
  await new Promise((r) => setImmediate(r));
  const t0 = Date.now();
  const rep = await q.shutdown(200);
  const took = Date.now() - t0;
  assert.ok(took >= 190 && took < 1500, `shutdown took ${took} ms`);
  assert.equal(rep.completed, false);
  assert.equal(rep.dropped_shutdown, 25);
  const c = q.counters();
  assert.equal(c.exported, 0);
  assert.equal(c.queue_bytes, 0);
  assertBalanced(c);
});

test('shutdown does not wait for a retry that would land after the deadline', async () => {
  const exp = new FakeExporter([{ code: 'retryable', retryAfterMs: 10_000 }]);
  const q = queue(exp);
  for (let i = 0; i < 4; i++) q.enqueue(i);
  const t0 = Date.now();
  const rep = await q.shutdown(1000);
  assert.ok(Date.now() - t0 < 900, 'gave up early instead of sleeping to the deadline');
  assert.equal(rep.dropped_shutdown, 4);
  assertBalanced(q.counters());
});

test('shutdown gives up a retry already sleeping past the deadline', async () => {
  const exp = new FakeExporter([{ code: 'retryable', retryAfterMs: 10_000 }]);
  const q = queue(exp);
  for (let i = 0; i < 3; i++) q.enqueue(i);
  void q.forceFlush();
  const t0 = Date.now();
  while (q.counters().retries < 1 && Date.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 5));
  const t1 = Date.now();
  const rep = await q.shutdown(1000);
  assert.ok(Date.now() - t1 < 500, 'did not sleep to the deadline');
  assert.equal(rep.dropped_shutdown, 3);
  assert.equal(exp.calls.length, 1);
  assertBalanced(q.counters());
});

test('drop reporter: per-signal, per-reason deltas, only when something was dropped', async () => {
  const { startDropReporter } = await import('../../host/src/export');
  const exp = new FakeExporter();
  const q = queue(exp);
  const seen: unknown[] = [];
  const stop = startDropReporter({ traces: q as never }, (s) => seen.push(s), 20);
  for (let i = 0; i < 13; i++) q.enqueue(i);
  await new Promise((r) => setTimeout(r, 60));
  await q.forceFlush();
  await new Promise((r) => setTimeout(r, 60));
  stop();
  assert.deepEqual(seen, [{ dropped: { traces: { queue_full: 3 } }, exported: { traces: 0 } }]);
  await q.shutdown(100);
});

test('watchdog: an export that never answers is retried, its slot freed', async () => {
  const exp = new FakeExporter(['hang']);
  const q = queue(exp, { exportTimeoutMs: 100, maxConcurrentExports: 1 });
  q.enqueue(1);
  await q.forceFlush();
  const c = q.counters();
  assert.equal(exp.calls.length, 2);
  assert.equal(c.exported, 1);
  assert.equal(c.retries, 1);
  await q.shutdown(100);
});

test('a malformed item never throws into the producer', async () => {
  const q = new BatchQueue<number>({ signal: 'traces', exporter: new FakeExporter(), estimateBytes: () => { throw new Error('bad item'); }, batchSize: 10, maxQueueBytes: 1 << 20, flushIntervalMs: 0 });
  assert.equal(q.enqueue(1), true);
  assert.equal(q.counters().queue_bytes, 4096);
  await q.shutdown(100);
});

test('forceFlush waits for what was queued before it, not for a producer that keeps going', async () => {
  const exp = new FakeExporter([], 20);
  const q = queue(exp, { batchSize: 10, maxQueueBytes: 1 << 20, maxConcurrentExports: 1 });
  for (let i = 0; i < 35; i++) q.enqueue(i);
  let n = 1000;
  const producer = setInterval(() => {
    for (let k = 0; k < 5; k++) q.enqueue(n++);
  }, 2);
  const t0 = Date.now();
  await q.forceFlush();
  clearInterval(producer);
  assert.ok(Date.now() - t0 < 3000, `flush took ${Date.now() - t0} ms`);
  for (let i = 0; i < 35; i++) assert.ok(exp.exported.includes(i), `item ${i} exported before flush returned`);
  await q.shutdown(2000);
  assertBalanced(q.counters());
});

test('drop_oldest under a long outage keeps the arrays compact', async () => {
  const exp = new FakeExporter(['hang', 'hang']);
  const q = queue(exp, { dropPolicy: 'drop_oldest', batchSize: 5, maxConcurrentExports: 2, maxQueueBytes: 30 * SIZE });
  for (let i = 0; i < 10; i++) q.enqueue(-1);
  await new Promise((r) => setImmediate(r));
  for (let i = 0; i < 200_000; i++) q.enqueue(i);
  const c = q.counters();
  assert.equal(c.queue_items, 20);
  assert.equal(c.in_flight_items, 10);
  assert.ok((q as unknown as { items: unknown[] }).items.length < 3000, 'holes compacted');
  assertBalanced(c);
  await q.shutdown(50);
});
