// Issue 2: the same kernel-traced HTTP spans, exported with @opentelemetry/exporter-trace-otlp-grpc
// to a real OTLP receiver that decodes the official protobuf messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'path';
import { repoRoot } from '../helpers/decoder';
import { requireBpf, startAgent, startServer, curl, waitFor } from '../helpers/agent';
import { startReceiver } from '../helpers/otlp-receiver';

test('spans reach a real OTLP/gRPC receiver (OTEL_EXPORTER_OTLP_ENDPOINT honoured)', { timeout: 120_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const rx = await startReceiver({ protocol: 'grpc' });
  const agent = await startAgent({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: rx.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' } });
  const node = await startServer(process.execPath, [path.join(repoRoot, 'test', 'fixtures', 'http-server.js'), '0']);
  try {
    const base = `http://127.0.0.1:${node.port}`;
    curl([`${base}/users/1`, `${base}/status/503`]);
    const mine = () => rx.spans().filter((s) => s.attributes['server.port'] === node.port && s.kind === 2);
    await waitFor(() => mine().length >= 2, 30_000);
    assert.equal(await agent.stop(), 0);
    const spans = mine().sort((a, b) => String(a.attributes['url.path']).localeCompare(String(b.attributes['url.path'])));
    assert.deepEqual(spans.map((s) => [s.name, s.attributes['http.request.method'], s.attributes['url.path'], s.attributes['http.response.status_code'], s.status.code]), [
      ['GET /status/{id}', 'GET', '/status/503', 503, 2],
      ['GET /users/{id}', 'GET', '/users/1', 200, 0],
    ]);
    for (const s of spans) {
      assert.equal(s.resource['service.name'], 'node');
      assert.equal(s.resource['process.pid'], node.proc.pid);
      assert.equal(s.scope.name, 'telegen');
      assert.match(s.traceId, /^[0-9a-f]{32}$/);
      assert.ok(BigInt(s.endTimeUnixNano) >= BigInt(s.startTimeUnixNano));
    }
    assert.ok(rx.attempts.some((a) => a.signal === 'traces'), 'the receiver saw trace exports');
  } finally {
    await node.stop();
    if (agent.proc.exitCode === null) agent.proc.kill('SIGKILL');
    await rx.stop();
  }
});
