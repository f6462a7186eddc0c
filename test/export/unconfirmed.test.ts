// OTLP export is at-least-once: a request that got no answer (client deadline) may still have been
// taken by the receiver, and resending it then delivers its spans twice. The queue never hides
// that: every item resent after an unanswered attempt is counted (unconfirmed_resent, on
// /metrics as telegen_export_unconfirmed_resent_total), and a refused attempt (the receiver
// answered "unavailable") is resent without counting, because it cannot duplicate anything.
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { BatchQueue, createOtlpTraceExporter, estimateSpanBytes, resolveExportConfig, renderExportMetrics } from '../../host/src/export';
import { startReceiver, type OtlpReceiver } from '../helpers/otlp-receiver';
import { makeSpan } from './fixtures';

const receivers: OtlpReceiver[] = [];
const queues: Array<BatchQueue<ReadableSpan>> = [];
after(async () => {
  for (const q of queues) await q.shutdown(0);
  for (const r of receivers) await r.stop();
});

function traceQueue(protocol: 'grpc' | 'http', url: string, timeoutMs: number): BatchQueue<ReadableSpan> {
  const resolved = resolveExportConfig({ endpoint: url, protocol, timeout_ms: timeoutMs, compression: 'gzip' }, {});
  const q = new BatchQueue<ReadableSpan>({
    signal: 'traces',
    exporter: createOtlpTraceExporter(resolved.traces),
    estimateBytes: estimateSpanBytes,
    batchSize: 10,
    maxQueueBytes: 1 << 24,
    flushIntervalMs: 20,
    maxConcurrentExports: 1,
    retry: { maxAttempts: 30, initialBackoffMs: 50, maxBackoffMs: 300 },
  });
  queues.push(q);
  return q;
}

const ids = (r: OtlpReceiver) => r.spans().map((s) => s.spanId);
const distinct = (r: OtlpReceiver) => new Set(ids(r)).size;

for (const protocol of ['grpc', 'http'] as const) {
  test(`${protocol}: a request answered after the client deadline is resent, arrives twice, and is counted`, async () => {
    const r = await startReceiver({ protocol });
    receivers.push(r);
    // The first request is answered (and recorded) only after 1.5 s; the client gives up at 400 ms.
    r.setMode({ kind: 'slow', delayMs: 1500 }, 1);
    const q = traceQueue(protocol, r.url, 400);
    for (let i = 0; i < 10; i++) q.enqueue(makeSpan(i));
    await r.waitFor(() => ids(r).length === 20, 20_000, 'the resent batch and the late original');
    await q.forceFlush();
    const c = q.counters();
    assert.equal(distinct(r), 10, 'nothing lost');
    assert.equal(c.exported, 10);
    assert.ok(c.unconfirmed_resent >= 10, `unconfirmed_resent ${c.unconfirmed_resent}`);
    assert.ok(ids(r).length - distinct(r) <= c.unconfirmed_resent, 'every duplicate is accounted for');
    assert.match(renderExportMetrics({ traces: q } as never), new RegExp(`telegen_export_unconfirmed_resent_total\\{signal="traces"\\} ${c.unconfirmed_resent}\\n`));
  });

  test(`${protocol}: a refused request (receiver unavailable) is resent without duplicates and not counted as unconfirmed`, async () => {
    const r = await startReceiver({ protocol });
    receivers.push(r);
    r.setMode({ kind: 'unavailable' }, 3);
    const q = traceQueue(protocol, r.url, 5000);
    for (let i = 0; i < 10; i++) q.enqueue(makeSpan(100 + i));
    await r.waitFor(() => distinct(r) === 10, 20_000, '10 spans after the refusals');
    await q.forceFlush();
    const c = q.counters();
    assert.ok(r.attempts.filter((a) => a.result === 'unavailable').length === 3);
    assert.equal(ids(r).length, 10, 'exactly once');
    assert.equal(c.unconfirmed_resent, 0);
  });
}
