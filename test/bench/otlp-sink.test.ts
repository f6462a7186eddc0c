// The span-counting OTLP/HTTP sink that stands in for a collector in agent-overhead's in-process
// SDK arm (bench/fixtures/otlp-sink.js): its protobuf walk must count what the official
// definitions decode, for the SDK's own exports and for requests spread over resources and scopes.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn, ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { repoRoot } from '../helpers/decoder';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const root = require('@opentelemetry/otlp-transformer/build/src/generated/root');
const Req = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;

function start(): Promise<{ proc: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [path.join(repoRoot, 'bench', 'fixtures', 'otlp-sink.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
    proc.stdout!.on('data', (d) => { const m = /listening (\d+)/.exec(String(d)); if (m) resolve({ proc, url: `http://127.0.0.1:${m[1]}` }); });
    proc.once('exit', (c) => reject(new Error(`sink exited ${c}`)));
  });
}

const span = (i: number) => ({
  traceId: Buffer.alloc(16, i + 1), spanId: Buffer.alloc(8, i + 1), name: `GET /x/${i}`, kind: 2,
  startTimeUnixNano: 1, endTimeUnixNano: 2,
  attributes: [{ key: 'http.route', value: { stringValue: '/x' } }, { key: 'n', value: { intValue: 300 + i } }],
  events: [{ name: 'e', timeUnixNano: 3 }],
});

test('the sink counts the spans the official decoder finds, over resources and scopes, gzip or not; bad bodies are rejected and counted', async () => {
  const sink = await start();
  try {
    let n = 0;
    const resourceSpans = [3, 0, 5].map((per, r) => ({
      resource: { attributes: [{ key: 'service.name', value: { stringValue: `svc${r}` } }] },
      scopeSpans: [{ scope: { name: 'a' }, spans: Array.from({ length: per }, () => span(n++)) }, { scope: { name: 'b' }, spans: [span(n++)] }],
    }));
    const body = Req.encode(Req.fromObject({ resourceSpans })).finish();
    const official = (Req.decode(body).resourceSpans as Array<{ scopeSpans: Array<{ spans: unknown[] }> }>)
      .reduce((a, rs) => a + rs.scopeSpans.reduce((b, ss) => b + ss.spans.length, 0), 0);
    assert.equal(official, 11);
    const post = (b: Uint8Array, gzip = false) => fetch(`${sink.url}/v1/traces`, {
      method: 'POST', body: gzip ? zlib.gzipSync(b) : b,
      headers: { 'content-type': 'application/x-protobuf', ...(gzip ? { 'content-encoding': 'gzip' } : {}) },
    });
    assert.equal((await post(body)).status, 200);
    assert.equal((await post(body, true)).status, 200);
    assert.equal((await post(Buffer.from([0x0a, 0x20, 0x01]))).status, 400);
    const c = await (await fetch(`${sink.url}/count`)).json();
    assert.equal(c.spans, 2 * official);
    assert.equal(c.requests, 2);
    assert.equal(c.rejected, 1);
  } finally {
    sink.proc.kill('SIGTERM');
  }
});

test('with the SDK preload, a Node server\'s requests arrive at the sink as one server span each', async () => {
  const sink = await start();
  const server = spawn(process.execPath, ['--require', path.join(repoRoot, 'bench', 'fixtures', 'otel-sdk-preload.js'), path.join(repoRoot, 'test', 'fixtures', 'http-server.js'), '0'], {
    stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${sink.url}/v1/traces` },
  });
  try {
    const port = await new Promise<number>((resolve) => server.stdout!.on('data', (d) => { const m = /listening (\d+)/.exec(String(d)); if (m) resolve(Number(m[1])); }));
    for (let i = 0; i < 25; i++) assert.equal((await fetch(`http://127.0.0.1:${port}/hello`)).status, 200);
    // The batch span processor sends every 5 s (or per 512 spans).
    let c = { spans: 0, rejected: 0 };
    for (let i = 0; i < 40 && c.spans < 25; i++) {
      await new Promise((r) => setTimeout(r, 250));
      c = await (await fetch(`${sink.url}/count`)).json();
    }
    await new Promise((r) => setTimeout(r, 500));
    c = await (await fetch(`${sink.url}/count`)).json();
    assert.equal(c.spans, 25);
    assert.equal(c.rejected, 0);
  } finally {
    if (server.exitCode === null) server.kill('SIGKILL');
    sink.proc.kill('SIGTERM');
  }
});
