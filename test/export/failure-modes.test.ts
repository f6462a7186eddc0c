// Exports against a misbehaving receiver: down at start, retry hints, permanent errors, slowness,
// stop/restart on the same port. Everything sent is either received or counted as dropped.
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { BatchQueue, createOtlpTraceExporter, estimateSpanBytes, resolveExportConfig, type ExportQueueCounters } from '../../host/src/export';
import { freePort, startReceiver, type OtlpReceiver } from '../helpers/otlp-receiver';
import { makeSpan } from './fixtures';

const receivers: OtlpReceiver[] = [];
const queues: Array<BatchQueue<ReadableSpan>> = [];
after(async () => {
  for (const q of queues) await q.shutdown(0);
  for (const r of receivers) await r.stop();
});

async function receiver(protocol: 'grpc' | 'http', port?: number): Promise<OtlpReceiver> {
  const r = await startReceiver({ protocol, port });
  receivers.push(r);
  return r;
}

interface QOpts {
  timeoutMs?: number;
  maxAttempts?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  batchSize?: number;
}

function traceQueue(protocol: 'grpc' | 'http', url: string, o: QOpts = {}): BatchQueue<ReadableSpan> {
  const resolved = resolveExportConfig(
    { endpoint: url, protocol, timeout_ms: o.timeoutMs ?? 3000, compression: 'gzip' },
    {},
  );
  const q = new BatchQueue<ReadableSpan>({
    signal: 'traces',
    exporter: createOtlpTraceExporter(resolved.traces),
    estimateBytes: estimateSpanBytes,
    batchSize: o.batchSize ?? 10,
    maxQueueBytes: 1 << 24,
    flushIntervalMs: 20,
    maxConcurrentExports: 1,
    retry: { maxAttempts: o.maxAttempts ?? 30, initialBackoffMs: o.initialBackoffMs ?? 50, maxBackoffMs: o.maxBackoffMs ?? 300 },
  });
  queues.push(q);
  return q;
}

function balanced(c: ExportQueueCounters): void {
  assert.equal(c.received, c.exported + c.dropped_queue_full + c.dropped_export_failed + c.dropped_shutdown + c.queue_items + c.in_flight_items, JSON.stringify(c));
}

/** Distinct spans: delivery is at-least-once, a request can be resent after a client-side timeout. */
const distinct = (r: OtlpReceiver) => new Set(r.spans().map((s) => s.spanId)).size;

async function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

for (const protocol of ['grpc', 'http'] as const) {
  test(`${protocol}: receiver down at start, then up: retried and every span arrives`, async () => {
    const port = await freePort();
    const q = traceQueue(protocol, `http://127.0.0.1:${port}`, { timeoutMs: 1500 });
    for (let i = 0; i < 15; i++) q.enqueue(makeSpan(i));
    await until(() => q.counters().export_failures >= 1, 10_000, 'a failed attempt');
    const r = await receiver(protocol, port);
    await r.waitFor(() => distinct(r) === 15, 20_000, '15 spans after recovery');
    await until(() => q.counters().exported === 15, 5000, 'exported counter');
    const c = q.counters();
    assert.ok(c.retries >= 1);
    assert.equal(c.dropped_export_failed + c.dropped_queue_full, 0);
    balanced(c);
  });

  test(`${protocol}: stopped, then restarted on the same port: data sent meanwhile arrives`, async () => {
    const r = await receiver(protocol);
    const q = traceQueue(protocol, r.url, { timeoutMs: 1500 });
    for (let i = 0; i < 10; i++) q.enqueue(makeSpan(i));
    await r.waitFor(() => distinct(r) === 10, 5000, 'first 10');
    await r.stop();
    for (let i = 10; i < 20; i++) q.enqueue(makeSpan(i));
    await until(() => q.counters().export_failures >= 1, 10_000, 'a failed attempt while down');
    await r.restart();
    await r.waitFor(() => distinct(r) === 20, 20_000, '20 spans after restart');
    // The receiver records a request before its answer reaches the exporter.
    await until(() => q.counters().exported === 20, 5000, 'exported counter');
    const c = q.counters();
    assert.equal(c.exported, 20);
    assert.equal(c.dropped_export_failed, 0);
    balanced(c);
  });

  test(`${protocol}: permanent error is counted as failed and not retried`, async () => {
    const r = await receiver(protocol);
    r.setMode({ kind: 'permanent', message: 'bad data' });
    const q = traceQueue(protocol, r.url);
    for (let i = 0; i < 7; i++) q.enqueue(makeSpan(i));
    await until(() => q.counters().dropped_export_failed === 7, 5000, 'dropped{export_failed}');
    await new Promise((res) => setTimeout(res, 300));
    assert.equal(r.attempts.length, 1, 'exactly one attempt');
    const c = q.counters();
    assert.equal(c.retries, 0);
    assert.equal(c.exported, 0);
    assert.equal(r.spans().length, 0);
    balanced(c);
  });

  test(`${protocol}: slow receiver; shutdown flushes within the deadline`, async () => {
    const r = await receiver(protocol);
    r.setMode({ kind: 'slow', delayMs: 150 });
    const q = traceQueue(protocol, r.url, { batchSize: 5 });
    for (let i = 0; i < 20; i++) q.enqueue(makeSpan(i));
    const t0 = Date.now();
    const rep = await q.shutdown(5000);
    assert.ok(Date.now() - t0 < 4000);
    assert.equal(rep.completed, true);
    assert.equal(rep.exported, 20);
    assert.equal(r.spans().length, 20);
  });

  test(`${protocol}: receiver slower than the shutdown deadline: the rest is counted as dropped{shutdown}`, async () => {
    const r = await receiver(protocol);
    r.setMode({ kind: 'slow', delayMs: 2500 });
    const q = traceQueue(protocol, r.url, { batchSize: 5, timeoutMs: 5000 });
    for (let i = 0; i < 20; i++) q.enqueue(makeSpan(i));
    const t0 = Date.now();
    const rep = await q.shutdown(400);
    const took = Date.now() - t0;
    assert.ok(took < 1500, `shutdown took ${took} ms`);
    assert.equal(rep.completed, false);
    assert.equal(rep.dropped_shutdown, 20);
    balanced(q.counters());
  });
}

test('http: 503 with Retry-After is honoured', async () => {
  const r = await receiver('http');
  r.setMode({ kind: 'unavailable', retryAfterMs: 1000 }, 1);
  const q = traceQueue('http', r.url, { initialBackoffMs: 10, maxBackoffMs: 20, timeoutMs: 5000 });
  for (let i = 0; i < 3; i++) q.enqueue(makeSpan(i));
  await r.waitFor(() => r.spans().length === 3, 10_000, 'spans after 503');
  assert.deepEqual(r.attempts.map((a) => a.result), ['unavailable', 'ok']);
  const gap = r.attempts[1].at - r.attempts[0].at;
  assert.ok(gap >= 950, `retried after ${gap} ms, Retry-After was 1 s`);
});

test('http: 429 with Retry-After is honoured', async () => {
  const r = await receiver('http');
  r.setMode({ kind: 'throttle', retryAfterMs: 2000 }, 1);
  const q = traceQueue('http', r.url, { initialBackoffMs: 10, maxBackoffMs: 20, timeoutMs: 5000 });
  q.enqueue(makeSpan(1));
  await r.waitFor(() => r.spans().length === 1, 10_000, 'span after 429');
  assert.deepEqual(r.attempts.map((a) => a.result), ['throttle', 'ok']);
  const gap = r.attempts[1].at - r.attempts[0].at;
  assert.ok(gap >= 1950, `retried after ${gap} ms, Retry-After was 2 s`);
});

test('http: Retry-After longer than the request timeout is honoured by the queue backoff path', async () => {
  // The exporter gives up inside its 500 ms timeout; the queue retries with its own backoff.
  const r = await receiver('http');
  r.setMode({ kind: 'unavailable', retryAfterMs: 3000 }, 2);
  const q = traceQueue('http', r.url, { initialBackoffMs: 50, maxBackoffMs: 100, timeoutMs: 500 });
  q.enqueue(makeSpan(1));
  await r.waitFor(() => r.spans().length === 1, 10_000, 'span after two 503s');
  assert.deepEqual(r.attempts.map((a) => a.result), ['unavailable', 'unavailable', 'ok']);
  assert.ok(q.counters().retries >= 2);
});

test('grpc: UNAVAILABLE with RetryInfo delay is honoured', async () => {
  const r = await receiver('grpc');
  r.setMode({ kind: 'unavailable', retryAfterMs: 800 }, 1);
  const q = traceQueue('grpc', r.url, { initialBackoffMs: 10, maxBackoffMs: 20 });
  for (let i = 0; i < 3; i++) q.enqueue(makeSpan(i));
  await r.waitFor(() => r.spans().length === 3, 10_000, 'spans after UNAVAILABLE');
  assert.deepEqual(r.attempts.map((a) => a.result), ['unavailable', 'ok']);
  const gap = r.attempts[1].at - r.attempts[0].at;
  assert.ok(gap >= 780, `retried after ${gap} ms, RetryInfo said 800 ms`);
});

test('grpc: RESOURCE_EXHAUSTED with RetryInfo is retryable and honoured; without it, permanent', async () => {
  const r = await receiver('grpc');
  r.setMode({ kind: 'throttle', retryAfterMs: 600 }, 1);
  const q = traceQueue('grpc', r.url, { initialBackoffMs: 10, maxBackoffMs: 20 });
  q.enqueue(makeSpan(1));
  await r.waitFor(() => r.spans().length === 1, 10_000, 'span after RESOURCE_EXHAUSTED');
  assert.ok(r.attempts[1].at - r.attempts[0].at >= 580);
  assert.equal(q.counters().retries, 1);
});

test('grpc: UNAVAILABLE forever: max_attempts, then dropped{export_failed}', async () => {
  const r = await receiver('grpc');
  r.setMode({ kind: 'unavailable' });
  const q = traceQueue('grpc', r.url, { maxAttempts: 3, initialBackoffMs: 10, maxBackoffMs: 20 });
  for (let i = 0; i < 4; i++) q.enqueue(makeSpan(i));
  await until(() => q.counters().dropped_export_failed === 4, 5000, 'dropped after 3 attempts');
  assert.equal(r.attempts.length, 3);
  balanced(q.counters());
});
