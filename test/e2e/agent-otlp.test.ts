// Issue 2: the same kernel-traced HTTP spans, exported over OTLP/gRPC (our encoder, host/src/export/traces-proto.ts)
// to a real OTLP receiver that decodes the official protobuf messages. Metrics go to a second
// receiver over HTTP/protobuf with gzip (per-signal endpoint): the RED histogram points carry
// exemplars naming the exported spans that fell into their buckets (issue 7 item 4).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'path';
import { repoRoot } from '../helpers/decoder';
import { requireBpf, startAgent, startServer, curl, waitFor } from '../helpers/agent';
import { startReceiver } from '../helpers/otlp-receiver';

test('spans reach a real OTLP/gRPC receiver (OTEL_EXPORTER_OTLP_ENDPOINT honoured); metrics over HTTP carry exemplars of those spans', { timeout: 120_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const rx = await startReceiver({ protocol: 'grpc' });
  const mx = await startReceiver({ protocol: 'http' });
  const agent = await startAgent({
    env: {
      OTEL_EXPORTER_OTLP_ENDPOINT: rx.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: `${mx.url}/v1/metrics`, OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/protobuf', OTEL_EXPORTER_OTLP_METRICS_COMPRESSION: 'gzip',
      TELEGEN_METRICS_INTERVAL_MS: '1000',
    },
  });
  const node = await startServer(process.execPath, [path.join(repoRoot, 'test', 'fixtures', 'http-server.js'), '0']);
  try {
    const base = `http://127.0.0.1:${node.port}`;
    curl([`${base}/users/1`, `${base}/status/503`]);
    const mine = () => rx.spans().filter((s) => s.attributes['server.port'] === node.port && s.kind === 2);
    await waitFor(() => mine().length >= 2, 30_000);
    // The RED points of this server (both series: 200 and 503) with their exemplars.
    type Ex = { traceId: string; spanId: string; asDouble: number; timeUnixNano: string; filteredAttributes?: Array<{ key: string; value: Record<string, unknown> }> };
    type Pt = { attributes: Record<string, unknown>; bucketCounts: string[]; explicitBounds: number[]; exemplars?: Ex[] };
    const points = () => mx.metrics().filter((m) => m.name === 'http.server.request.duration')
      .flatMap((m) => m.dataPoints as unknown as Pt[])
      // This test's receivers run in a node process too (service.name "node"), and the agent's
      // metric exports to them are traced: only the two routes of the test server are ours.
      .filter((p) => p.attributes['service.name'] === 'node' && ['/users/{id}', '/status/{id}'].includes(String(p.attributes['http.route'])));
    const latest = await waitFor(() => {
      const byStatus = new Map(points().map((p) => [p.attributes['http.response.status_code'], p]));
      return byStatus.get(200)?.exemplars?.length && byStatus.get(503)?.exemplars?.length ? byStatus : undefined;
    }, 30_000).catch(() => { throw new Error(`no exemplars: ${JSON.stringify(points().slice(-2))}`); });
    assert.equal(mx.attempts.find((a) => a.signal === 'metrics')?.headers['content-encoding'], 'gzip');
    for (const [status, p] of latest) {
      const span = mine().find((s) => s.attributes['http.response.status_code'] === status)!;
      assert.equal(p.exemplars!.length, 1, 'one request: one non-empty bucket, one exemplar');
      const [e] = p.exemplars!;
      assert.equal(e.traceId, span.traceId);
      assert.equal(e.spanId, span.spanId);
      assert.equal(e.timeUnixNano, span.endTimeUnixNano);
      const seconds = Number(BigInt(span.endTimeUnixNano) - BigInt(span.startTimeUnixNano)) / 1e9;
      assert.ok(Math.abs(e.asDouble - seconds) < 1e-6, `exemplar ${e.asDouble} s is the span's ${seconds} s`);
      const b = p.bucketCounts.findIndex((c) => Number(c) > 0);
      const lo = b === 0 ? 0 : p.explicitBounds[b - 1];
      const hi = b < p.explicitBounds.length ? p.explicitBounds[b] : Infinity;
      assert.ok(e.asDouble > lo && e.asDouble <= hi, `exemplar ${e.asDouble} in its point's bucket (${lo}, ${hi}]`);
      const fa = Object.fromEntries((e.filteredAttributes ?? []).map((kv) => [kv.key, Object.values(kv.value)[0]]));
      assert.equal(fa['url.path'], span.attributes['url.path']);
    }
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
    await mx.stop();
  }
});
