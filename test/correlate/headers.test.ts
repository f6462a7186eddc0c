// Trace context from headers: W3C traceparent/tracestate, b3 single and X-B3-* multi over HTTP/1,
// traceparent over HTTP/2 and in gRPC metadata. The server span must join the caller's trace
// (trace id, parent span id, tracestate kept), also when the caller is traced here too; a request
// without context gets a new trace (linked over the socket to its traced caller).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { randomBytes } from 'crypto';
import { execFileSync, spawn } from 'child_process';
import { requireBpf, startAgent, waitFor, FlatSpan, RunningAgent } from '../helpers/agent';
import { repoRoot } from '../helpers/decoder';

const FIX = path.join(repoRoot, 'test', 'fixtures', 'headers');
const hex = (n: number) => randomBytes(n).toString('hex');

test('replay: HTTP/1 requests carrying traceparent join that trace', () => {
  const pcap = path.join(repoRoot, 'decoders', 'http1', 'testdata', 'local-node.pcap');
  // The capture's requests carry one fixed traceparent (decoders/http1/testdata/record.js).
  const m = /traceparent: 00-([0-9a-f]{32})-([0-9a-f]{16})-01/.exec(fs.readFileSync(pcap, 'latin1'))!;
  const withHeader = fs.readFileSync(pcap, 'latin1').split('traceparent: ').length - 1;
  const out = execFileSync(process.execPath, [path.join(repoRoot, 'bin', 'telegen'), 'replay', pcap, '--format', 'otlp'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const spans = out.split('\n').filter((l) => l.trim()).flatMap((l) => JSON.parse(l).resourceSpans.flatMap((rs: { scopeSpans: Array<{ spans: Array<{ traceId: string; parentSpanId?: string }> }> }) => rs.scopeSpans.flatMap((ss) => ss.spans)));
  const joined = spans.filter((s) => s.traceId === m[1]);
  assert.equal(joined.length, withHeader, 'every request with the header is in its trace');
  for (const s of joined) assert.equal(s.parentSpanId, m[2]);
  assert.ok(spans.length > joined.length, 'requests without the header got traces of their own');
});

interface RawSpan { traceId: string; spanId: string; traceState?: string }
function rawSpans(file: string): RawSpan[] {
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim())
    .flatMap((l) => JSON.parse(l).resourceSpans.flatMap((rs: { scopeSpans: Array<{ spans: RawSpan[] }> }) => rs.scopeSpans.flatMap((ss) => ss.spans)));
}

test('live: context from HTTP/1 (traceparent, b3, X-B3-*), HTTP/2 and gRPC metadata', { timeout: 180_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const cleanups: Array<() => Promise<void> | void> = [];
  t.after(async () => { for (const c of cleanups.reverse()) await c(); });
  const agent: RunningAgent = await startAgent();
  cleanups.push(async () => { await agent.stop(); fs.rmSync(agent.dataDir, { recursive: true, force: true }); });
  const server = spawn(process.execPath, [path.join(FIX, 'server.js')], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
  cleanups.push(() => new Promise<void>((resolve) => { if (server.exitCode !== null) return resolve(); server.once('exit', () => resolve()); server.kill('SIGTERM'); }));
  let out = '';
  server.stdout!.on('data', (d) => { out += String(d); });
  const [, h1, h2, gp] = await waitFor(() => /listening (\d+) (\d+) (\d+)/.exec(out) ?? undefined, 30_000);

  const ctx = { tp: [hex(16), hex(8)], b3: [hex(16), hex(8)], multi: [hex(8), hex(8)], h2: [hex(16), hex(8)], grpc: [hex(16), hex(8)] };
  const cases: Record<string, Record<string, string>> = {
    '/tp': { traceparent: `00-${ctx.tp[0]}-${ctx.tp[1]}-01`, tracestate: 'vendor=abc,other=1' },
    '/b3': { b3: `${ctx.b3[0]}-${ctx.b3[1]}-1` },
    '/b3multi': { 'X-B3-TraceId': ctx.multi[0], 'X-B3-SpanId': ctx.multi[1], 'X-B3-Sampled': '1' },
    '/h2/tp': { traceparent: `00-${ctx.h2[0]}-${ctx.h2[1]}-01` },
    grpc: { traceparent: `00-${ctx.grpc[0]}-${ctx.grpc[1]}-01` },
    '/none': {},
  };
  execFileSync(process.execPath, [path.join(FIX, 'client.js'), h1, h2, gp, JSON.stringify(cases)], { cwd: repoRoot, stdio: 'inherit', timeout: 30_000 });

  const spid = server.pid!;
  const serverSpan = (all: FlatSpan[], key: string) => all.find((s) => s.kind === 2 && s.resource['process.pid'] === spid
    && (key === 'grpc' ? s.attributes['rpc.method'] === 'Say' : s.attributes['url.path'] === key));
  const all = await waitFor(() => { const s = agent.spans(); return Object.keys(cases).every((k) => serverSpan(s, k)) ? s : undefined; }, 60_000)
    .catch((e) => { throw new Error(`${(e as Error).message}: ${agent.spans().filter((s) => s.resource['process.pid'] === spid).map((s) => `${s.name} ${JSON.stringify(s.attributes)}`).join('\n')}`); });

  const expect: Array<[string, string[]]> = [['/tp', ctx.tp], ['/b3', ctx.b3], ['/b3multi', [ctx.multi[0].padStart(32, '0'), ctx.multi[1]]], ['/h2/tp', ctx.h2], ['grpc', ctx.grpc]];
  for (const [key, [traceId, parent]] of expect) {
    const s = serverSpan(all, key)!;
    assert.equal(s.traceId, traceId, `${key}: trace id from the header`);
    assert.equal(s.parentSpanId, parent, `${key}: parent span id from the header`);
    assert.equal(s.attributes['telegen.correlation'], 'header', key);
    assert.ok(!Object.keys(s.attributes).some((k) => /traceparent|tracestate|b3/.test(k)), `${key}: context headers are not attributes`);
  }
  const tp = rawSpans(path.join(agent.dataDir, 'traces.jsonl')).find((s) => s.spanId === serverSpan(all, '/tp')!.spanId)!;
  assert.equal(tp.traceState, 'vendor=abc,other=1', 'tracestate kept');
  const none = serverSpan(all, '/none')!;
  assert.ok(!Object.values(ctx).some(([tid]) => none.traceId.endsWith(tid)), 'no context: a trace of its own');
  assert.notEqual(none.attributes['telegen.correlation'], 'header');
});
