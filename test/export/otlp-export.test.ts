// OTLP gRPC and HTTP/protobuf exports, decoded by a real receiver with the official protos.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import * as zlib from 'node:zlib';
import {
  createExportQueues,
  createLogExporter,
  createMetricExporter,
  createTraceExporter,
  renderExportMetrics,
  resolveExportConfig,
  shutdownExportQueues,
} from '../../host/src/export';
import { gzipBody } from '../../host/src/export/otlp-transport';
import { encodeLogsRequest } from '../../host/src/export/logs-proto';
import { decodeOtlpRequest, envFor, receiversStoppedAfter } from '../helpers/otlp-receiver';
import { expectedFlatSpan, makeLog, makeMetrics, makeSpan, RESOURCE_ATTRS, scope } from './fixtures';

const receiver = receiversStoppedAfter();

for (const protocol of ['grpc', 'http'] as const) {
  for (const compression of ['gzip', 'none'] as const) {
    test(`traces over ${protocol} (${compression}): exact span content at the receiver`, async () => {
      const r = await receiver(protocol);
      const resolved = resolveExportConfig({}, envFor(r, compression));
      assert.equal(resolved.traces.mode, 'otlp');
      const exp = createTraceExporter(resolved, '/nonexistent');
      assert.equal(exp.target, `${protocol}:${protocol === 'grpc' ? r.url : r.url + '/v1/traces'}`);
      const res = await exp.export([makeSpan(1), makeSpan(2, { status: 500 }), makeSpan(3)]);
      assert.equal(res.code, 'success', String(res.error));
      await exp.shutdown();
      assert.deepEqual(r.spans(), [expectedFlatSpan(1), expectedFlatSpan(2, 500), expectedFlatSpan(3)]);
      assert.equal(r.attempts.length, 1);
      assert.equal(r.attempts[0].headers['x-tenant'], 'team a');
      if (protocol === 'http') {
        assert.equal(r.attempts[0].headers['content-type'], 'application/x-protobuf');
        assert.equal(r.attempts[0].headers['content-encoding'], compression === 'gzip' ? 'gzip' : undefined);
      }
    });
  }
}

for (const protocol of ['grpc', 'http'] as const) {
  test(`metrics and logs over ${protocol}: exact content at the receiver`, async () => {
    const r = await receiver(protocol);
    const resolved = resolveExportConfig({}, envFor(r, 'gzip'));
    const m = createMetricExporter(resolved, '/nonexistent');
    assert.equal((await m.export([makeMetrics(41), makeMetrics(42)])).code, 'success');
    await m.shutdown();
    const metrics = r.metrics();
    assert.equal(metrics.length, 2);
    assert.equal(metrics[1].name, 'http.server.request.count');
    assert.equal(metrics[1].type, 'sum');
    assert.equal(metrics[1].unit, '{request}');
    assert.equal(metrics[1].dataPoints.length, 1);
    assert.equal(Number(metrics[1].dataPoints[0].asInt), 42);
    assert.deepEqual(metrics[1].dataPoints[0].attributes, { 'http.request.method': 'GET' });
    assert.deepEqual(metrics[1].resource, RESOURCE_ATTRS);

    const l = createLogExporter(resolved, '/nonexistent');
    assert.equal((await l.export([makeLog(1), makeLog(2)])).code, 'success');
    await l.shutdown();
    const logs = r.logs();
    assert.equal(logs.length, 2);
    assert.deepEqual(logs[0], {
      timeUnixNano: '1700000101000000005',
      observedTimeUnixNano: '1700000101000000006',
      severityNumber: 17,
      severityText: 'ERROR',
      body: 'connection reset 1',
      eventName: 'telegen.agent.event',
      attributes: { 'process.pid': 1001, 'process.executable.name': 'nginx' },
      traceId: '000000000000000000000000abc00001',
      spanId: '0000000000005501',
      resource: RESOURCE_ATTRS,
      scope,
    });
  });
}

test('gzip shrinks the HTTP body on the wire', async () => {
  const sizes: number[] = [];
  for (const compression of ['none', 'gzip'] as const) {
    const r = await receiver('http');
    const exp = createTraceExporter(resolveExportConfig({}, envFor(r, compression)), '/x');
    const spans = Array.from({ length: 50 }, (_, i) => makeSpan(i));
    assert.equal((await exp.export(spans)).code, 'success');
    await exp.shutdown();
    assert.equal(r.spans().length, 50);
    sizes.push(r.attempts[0].bytes);
  }
  assert.ok(sizes[1] < sizes[0] / 3, `gzip ${sizes[1]} vs none ${sizes[0]}`);
});

test('queues from the factory: every signal through one receiver, counters and /metrics text', async () => {
  const r = await receiver('grpc');
  const resolved = resolveExportConfig({ traces: { batch_size: 10 }, flush_interval_ms: 50 }, envFor(r, 'gzip'));
  const q = createExportQueues(resolved, '/nonexistent');
  for (let i = 0; i < 25; i++) q.traces!.enqueue(makeSpan(i));
  q.metrics!.enqueue(makeMetrics(5));
  q.logs!.enqueue(makeLog(7));
  await r.waitFor(() => r.spans().length === 25 && r.metrics().length === 1 && r.logs().length === 1, 10_000, 'all signals');
  // Full batches of 10 went on their own; the rest on the interval. Two exports run concurrently,
  // so arrival order between batches is not fixed.
  const sizes = r.requests.traces.map((x) => (x.resourceSpans as Array<{ scopeSpans: Array<{ spans: unknown[] }> }>)[0].scopeSpans[0].spans.length);
  assert.deepEqual(sizes.sort((a, b) => a - b), [5, 10, 10]);
  const names = r.spans().map((s) => s.name).sort();
  assert.deepEqual(names, Array.from({ length: 25 }, (_, i) => `GET /items/${i}`).sort());
  // The receiver records a request before its answer reaches the exporter.
  await r.waitFor(() => q.traces!.counters().exported === 25 && q.logs!.counters().exported === 1, 5000, 'exported counters');
  const c = q.traces!.counters();
  assert.equal(c.exported, 25);
  assert.equal(c.dropped_queue_full + c.dropped_export_failed + c.dropped_shutdown, 0);
  const text = renderExportMetrics(q);
  assert.match(text, /telegen_export_items_total\{signal="traces",result="exported"\} 25/);
  assert.match(text, /telegen_export_dropped_total\{signal="traces",reason="queue_full"\} 0/);
  assert.match(text, /telegen_export_items_total\{signal="logs",result="exported"\} 1/);
  const reports = await shutdownExportQueues(q, 2000);
  assert.ok(reports.every((x) => x.completed));
});

/** A TCP relay on 127.0.0.1 that counts client→server bytes: what the exporter put on the wire. */
async function countingRelay(targetPort: number): Promise<{ port: number; bytes: () => number; close: () => Promise<void> }> {
  let up = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.on('data', (d: Buffer) => {
      up += d.length;
    });
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
  return {
    port: (server.address() as net.AddressInfo).port,
    bytes: () => up,
    close: () =>
      new Promise<void>((res) => {
        for (const s of sockets) s.destroy();
        server.close(() => res());
      }),
  };
}

test('gzip shrinks the gRPC stream on the wire', async () => {
  const sizes: number[] = [];
  for (const compression of ['none', 'gzip'] as const) {
    const r = await receiver('grpc');
    const relay = await countingRelay(r.port);
    const exp = createTraceExporter(resolveExportConfig({ endpoint: `http://127.0.0.1:${relay.port}`, compression }, {}), '/x');
    assert.equal((await exp.export(Array.from({ length: 50 }, (_, i) => makeSpan(i)))).code, 'success');
    await exp.shutdown();
    assert.equal(r.spans().length, 50);
    sizes.push(relay.bytes());
    await relay.close();
  }
  assert.ok(sizes[1] < sizes[0] / 3, `gzip ${sizes[1]} B vs none ${sizes[0]} B on the wire`);
});

test('gzip through kept streams: every request is one whole gzip member of exactly its bytes, concurrent or one after another, small or past a 64 KiB output chunk', async () => {
  // Log requests of different sizes (the streams are reset between them, never shared at once) and
  // a 2 MiB body of random bytes (incompressible: several output chunks).
  const bodies = Array.from({ length: 12 }, (_, k) => encodeLogsRequest(Array.from({ length: 1 + k * 90 }, (_, i) => makeLog(k * 1000 + i))));
  bodies.push(Buffer.from(Array.from({ length: 2 * 1024 * 1024 }, (_, i) => (i * 2654435761) >>> 24)));
  for (let round = 0; round < 3; round++) {
    const outs = round === 1 ? await Promise.all(bodies.map(gzipBody)) : await (async () => { const o: Buffer[] = []; for (const b of bodies) o.push(await gzipBody(b)); return o; })();
    outs.forEach((out, k) => {
      assert.deepEqual([out[0], out[1]], [0x1f, 0x8b], `request ${k}: gzip magic`);
      assert.ok(zlib.gunzipSync(out).equals(bodies[k]), `round ${round}, request ${k}: the same bytes back`);
    });
    // The official protobufs read what comes out: the records of the third request, in order.
    const logs = decodeOtlpRequest('logs', zlib.gunzipSync(outs[2])) as { resourceLogs: Array<{ scopeLogs: Array<{ logRecords: Array<{ body: { stringValue: string } }> }> }> };
    assert.deepEqual(logs.resourceLogs[0].scopeLogs[0].logRecords.map((r) => r.body.stringValue), Array.from({ length: 181 }, (_, i) => makeLog(2000 + i).body));
  }
});

test('metrics: a batch past METRICS_PART_BYTES goes as several requests sent together; every point arrives once; a refused part fails the batch', async () => {
  const r = await receiver('grpc');
  const exp = createMetricExporter(resolveExportConfig({ endpoint: r.url, compression: 'gzip' }, {}), '/x');
  // 24 collections of 1000 points (~2 MB encoded): parts of ~1 MiB, in flight at once.
  const batch = Array.from({ length: 24 }, (_, k) => {
    const m = makeMetrics(k);
    const metric = m.scopeMetrics[0].metrics[0] as unknown as { dataPoints: Array<Record<string, unknown>> };
    const dp = metric.dataPoints[0];
    metric.dataPoints = Array.from({ length: 1000 }, (_, i) => ({ ...dp, attributes: { 'http.route': `/r/${i}`, 'http.request.method': 'GET' }, value: k * 1000 + i }));
    return m;
  });
  assert.equal((await exp.export(batch)).code, 'success');
  assert.ok(r.requests.metrics.length >= 2, `${r.requests.metrics.length} requests`);
  const values = r.metrics().flatMap((m) => m.dataPoints.map((p) => Number(p.asInt)));
  assert.equal(values.length, 24_000);
  assert.deepEqual([...new Set(values)].sort((a, b) => a - b), Array.from({ length: 24_000 }, (_, i) => i));
  // The receiver refuses one request: the batch is retryable as a whole (the queue resends it).
  r.setMode({ kind: 'unavailable' }, 1);
  assert.equal((await exp.export(batch)).code, 'retryable');
  await exp.shutdown();
});
