// Issue 5 through the running agent: DNS over UDP and TCP between dig and dnsmasq, seen by the
// socket tracer (UDP datagrams split into flows by peer), decoded by the Wasm dns decoder, and
// exported as spans (both sides) and DNS metrics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { requireBpf, startAgent, startServer, waitFor, FlatSpan, freePort } from '../helpers/agent';

const SERVER = 2;
const CLIENT = 3;

function dig(port: number, args: string[]): string {
  return execFileSync('dig', ['@127.0.0.1', '-p', String(port), '+tries=1', '+time=5', ...args], { encoding: 'utf8', timeout: 20_000 });
}

function dnsSpans(spans: FlatSpan[], kind: number, name: string): FlatSpan[] {
  return spans.filter((s) => s.kind === kind && s.attributes['dns.question.name'] === name);
}

function brief(s: FlatSpan): string {
  const a = s.attributes;
  return `${a['dns.question.name']} ${a['dns.question.type']} ${a['dns.response_code']} [${((a['dns.answers'] as string[] | undefined) ?? []).join(',')}]`;
}

/** Every metric data point of one name in DATA_DIR/metrics.jsonl (OTLP/JSON lines). */
function metricPoints(dataDir: string, name: string): Array<{ attrs: Record<string, unknown>; value: number }> {
  const file = path.join(dataDir, 'metrics.jsonl');
  if (!fs.existsSync(file)) return [];
  const out: Array<{ attrs: Record<string, unknown>; value: number }> = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const req = JSON.parse(line);
    for (const rm of req.resourceMetrics ?? []) for (const sm of rm.scopeMetrics ?? []) for (const m of sm.metrics ?? []) {
      if (m.name !== name) continue;
      const pts = m.sum?.dataPoints ?? m.histogram?.dataPoints ?? m.gauge?.dataPoints ?? [];
      for (const p of pts) {
        const attrs: Record<string, unknown> = {};
        for (const kv of p.attributes ?? []) attrs[kv.key] = Object.values(kv.value ?? {})[0];
        const value = Number(p.asInt ?? p.asDouble ?? p.count ?? 0);
        out.push({ attrs, value });
      }
    }
  }
  return out;
}

test('DNS through the running agent: dig ↔ dnsmasq over UDP and TCP, both sides, exact spans and metrics', { timeout: 180_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const agent = await startAgent({ env: { TELEGEN_METRICS_INTERVAL_MS: '1000' } });
  const port = await freePort();
  const txt = ['a', 'b', 'c', 'd', 'e', 'f'].map((c) => c.repeat(250));
  const dnsmasq = await startServer('dnsmasq', [
    '--no-daemon', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', `--port=${port}`, '--listen-address=127.0.0.1',
    '--bind-interfaces', '--pid-file=', '--user=root', '--log-facility=-',
    '--address=/example.test/10.1.2.3', '--address=/example.test/fd00::1', '--address=/nx.test/',
    `--txt-record=big.example.test,${txt.join(',')}`,
  ], { port, readyPattern: /started, version/ });
  try {
    assert.equal(dig(port, ['example.test', 'A', '+short']).trim(), '10.1.2.3');
    assert.equal(dig(port, ['example.test', 'AAAA', '+short']).trim(), 'fd00::1');
    assert.match(dig(port, ['nope.nx.test', 'A']), /status: NXDOMAIN/);
    assert.equal(dig(port, ['+tcp', 'tcp.example.test', 'A', '+short']).trim(), '10.1.2.3');
    // 1.5 KB of TXT: over dig's 1232-byte EDNS size, so the UDP answer is truncated and dig retries over TCP.
    assert.match(dig(port, ['big.example.test', 'TXT']), /Truncated, retrying in TCP mode/);

    const want = (kind: number) => [
      'example.test A NOERROR [10.1.2.3]',
      'example.test AAAA NOERROR [fd00::1]',
      'nope.nx.test A NXDOMAIN []',
      'tcp.example.test A NOERROR [10.1.2.3]',
    ];
    for (const kind of [CLIENT, SERVER]) {
      await waitFor(() => ['example.test', 'nope.nx.test', 'tcp.example.test'].every((n) => dnsSpans(agent.spans(), kind, n).length > 0)
        && dnsSpans(agent.spans(), kind, 'example.test').length >= 2 && dnsSpans(agent.spans(), kind, 'big.example.test').length >= 2, 30_000)
        .catch(() => undefined);
    }
    const spans = agent.spans();
    for (const kind of [CLIENT, SERVER]) {
      const got = ['example.test', 'nope.nx.test', 'tcp.example.test'].flatMap((n) => dnsSpans(spans, kind, n)).map(brief).sort();
      assert.deepEqual(got, want(kind), `kind ${kind}: ${JSON.stringify(spans.filter((s) => s.kind === kind).map(brief))}`);
      // The truncated UDP answer, then the whole one over TCP.
      const big = dnsSpans(spans, kind, 'big.example.test');
      assert.equal(big.length, 2, `big kind ${kind}: ${big.map(brief)}`);
      const udp = big.find((s) => s.attributes['telegen.dns.truncated'] === true);
      const tcp = big.find((s) => s.attributes['telegen.dns.truncated'] !== true);
      assert.ok(udp && tcp, JSON.stringify(big.map((s) => s.attributes)));
      assert.deepEqual(udp!.attributes['dns.answers'] ?? [], []);
      assert.deepEqual(tcp!.attributes['dns.answers'], [txt.join('')]);
      for (const s of [...big, ...dnsSpans(spans, kind, 'example.test')]) {
        assert.equal(s.attributes['server.port'], port);
        assert.equal(s.attributes['server.address'], '127.0.0.1');
      }
    }
    // Which process each side is: dig the client, dnsmasq the server.
    for (const s of dnsSpans(spans, CLIENT, 'example.test')) assert.equal(s.attributes['process.executable.name'] ?? s.attributes['process.command'] ?? 'dig', 'dig');
    for (const s of dnsSpans(spans, SERVER, 'example.test')) assert.equal(s.attributes['process.executable.name'] ?? s.attributes['process.command'] ?? 'dnsmasq', 'dnsmasq');

    // DNS metrics: lookups per suffix and outcome, latency histogram, NXDOMAIN counts.
    await waitFor(() => metricPoints(agent.dataDir, 'dns.lookups').length > 0 && metricPoints(agent.dataDir, 'dns.lookup.duration').length > 0, 20_000);
    const last = (name: string, match: Record<string, unknown>) => {
      const pts = metricPoints(agent.dataDir, name).filter((p) => Object.entries(match).every(([k, v]) => p.attrs[k] === v));
      return pts.length ? Math.max(...pts.map((p) => p.value)) : 0;
    };
    await waitFor(() => last('dns.lookups', { 'dns.name.suffix': 'nx.test', 'dns.response_code': 'NXDOMAIN', 'dns.side': 'client' }) === 1, 20_000).catch(() => undefined);
    assert.equal(last('dns.lookups', { 'dns.name.suffix': 'nx.test', 'dns.response_code': 'NXDOMAIN', 'dns.side': 'client' }), 1);
    assert.equal(last('dns.lookups', { 'dns.name.suffix': 'nx.test', 'dns.response_code': 'NXDOMAIN', 'dns.side': 'server' }), 1);
    assert.equal(last('dns.lookups.failed', { 'dns.name.suffix': 'nx.test', 'dns.response_code': 'NXDOMAIN', 'dns.side': 'client' }), 1);
    // example.test: A, AAAA, tcp A, big TXT over UDP and TCP
    assert.equal(last('dns.lookups', { 'dns.name.suffix': 'example.test', 'dns.response_code': 'NOERROR', 'dns.side': 'client' }), 5);
    assert.ok(last('dns.lookup.duration', { 'dns.name.suffix': 'example.test', 'dns.side': 'client' }) >= 5);
  } finally {
    await dnsmasq.stop();
    const code = await agent.stop();
    assert.equal(code, 0);
  }
});
