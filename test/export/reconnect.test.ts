// After a long collector outage the gRPC exporters send again as soon as the collector is back:
// grpc-js would keep a failed channel in reconnect backoff (up to 120 s) and fail every call
// meanwhile, so the exporter replaces a channel that kept failing for GRPC_RECONNECT_AFTER_MS.
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createOtlpTraceExporter, resolveExportConfig } from '../../host/src/export';
import { startReceiver, type OtlpReceiver } from '../helpers/otlp-receiver';
import { makeSpan } from './fixtures';

let r: OtlpReceiver | undefined;
after(async () => { await r?.stop(); });

test('grpc: the first export after a 20 s outage is delivered (the failing channel was replaced)', { timeout: 90_000 }, async () => {
  r = await startReceiver({ protocol: 'grpc' });
  const exp = createOtlpTraceExporter(resolveExportConfig({ endpoint: r.url, protocol: 'grpc', timeout_ms: 1000 }, {}).traces);
  assert.equal((await exp.export([makeSpan(1)])).code, 'success');
  await r.stop();
  // The outage: calls keep failing, and grpc-js' reconnect backoff grows with each failed attempt.
  const end = Date.now() + 20_000;
  let failed = 0;
  while (Date.now() < end) {
    const res = await exp.export([makeSpan(2)]);
    assert.equal(res.code, 'retryable', String(res.error));
    failed++;
    await new Promise((x) => setTimeout(x, 500));
  }
  assert.ok(failed > 5);
  await r.restart();
  const res = await exp.export([makeSpan(3)]);
  assert.equal(res.code, 'success', String(res.error));
  assert.ok(exp.reconnects >= 1);
  assert.deepEqual(r.spans().map((s) => s.name), ['GET /items/1', 'GET /items/3']);
  await exp.shutdown();
});
