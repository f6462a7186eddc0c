// Issue 5 through the running agent: DNS over UDP and TCP between dig and dnsmasq, seen by the
// socket tracer (UDP datagrams split into flows by peer), decoded by the Wasm dns decoder, and
// exported as spans (both sides) and DNS metrics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { requireBpf, startAgent, startServer, waitFor, FlatSpan, freePort } from '../helpers/agent';
import { initPostgres, PG_BIN } from '../helpers/postgres';

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
    await waitFor(() => metricPoints(agent.dataDir, 'telegen.dns.lookups').length > 0 && metricPoints(agent.dataDir, 'telegen.dns.lookups.duration').length > 0, 20_000);
    const last = (name: string, match: Record<string, unknown>) => {
      const pts = metricPoints(agent.dataDir, name).filter((p) => Object.entries(match).every(([k, v]) => p.attrs[k] === v));
      return pts.length ? Math.max(...pts.map((p) => p.value)) : 0;
    };
    await waitFor(() => last('telegen.dns.lookups', { 'telegen.dns.name.suffix': 'nx.test', 'dns.response_code': 'NXDOMAIN', 'telegen.dns.side': 'client' }) === 1, 20_000).catch(() => undefined);
    assert.equal(last('telegen.dns.lookups', { 'telegen.dns.name.suffix': 'nx.test', 'dns.response_code': 'NXDOMAIN', 'telegen.dns.side': 'client' }), 1);
    assert.equal(last('telegen.dns.lookups', { 'telegen.dns.name.suffix': 'nx.test', 'dns.response_code': 'NXDOMAIN', 'telegen.dns.side': 'server' }), 1);
    assert.equal(last('telegen.dns.lookups.failed', { 'telegen.dns.name.suffix': 'nx.test', 'dns.response_code': 'NXDOMAIN', 'telegen.dns.side': 'client' }), 1);
    // example.test: A, AAAA, tcp A, big TXT over UDP and TCP
    assert.equal(last('telegen.dns.lookups', { 'telegen.dns.name.suffix': 'example.test', 'dns.response_code': 'NOERROR', 'telegen.dns.side': 'client' }), 5);
    assert.ok(last('telegen.dns.lookups.duration', { 'telegen.dns.name.suffix': 'example.test', 'telegen.dns.side': 'client' }) >= 5);
    // The semconv dns.lookup.duration (RED, per question name) is there too, and no metric name is
    // exported twice under one scope in a collection: a collector would see conflicting definitions.
    // RED series are fed by the correlated span, after the decoder fed telegen.dns.lookups: the collection
    // read above may predate them.
    const red = () => metricPoints(agent.dataDir, 'dns.lookup.duration').some((p) => p.attrs['dns.question.name'] === 'example.test');
    await waitFor(red, 20_000).catch(() => undefined);
    assert.ok(red(), 'RED dns.lookup.duration per question name');
    for (const line of fs.readFileSync(path.join(agent.dataDir, 'metrics.jsonl'), 'utf8').split('\n').filter((l) => l.trim())) {
      for (const rm of JSON.parse(line).resourceMetrics ?? []) {
        const seen = new Set<string>();
        for (const sm of rm.scopeMetrics ?? []) for (const m of sm.metrics ?? []) {
          const key = `${sm.scope?.name} ${m.name}`;
          assert.ok(!seen.has(key), `metric ${key} exported twice in one collection`);
          seen.add(key);
        }
      }
    }
  } finally {
    await dnsmasq.stop();
    const code = await agent.stop();
    assert.equal(code, 0);
  }
});

test('PostgreSQL through the running agent: psql and node-postgres ↔ postgres 15, both sides', { timeout: 180_000 }, async (t) => {
  if (!requireBpf(t)) return;
  if (!fs.existsSync(path.join(PG_BIN, 'postgres'))) { t.skip('postgresql-15 not installed'); return; }
  const pg = await initPostgres('telegen-pg-');
  const port = pg.port;
  const agent = await startAgent();
  try {
    await pg.start();
    const psql = (sql: string) => execFileSync('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-X', '-q', '-A', '-t', '-c', sql], { encoding: 'utf8', timeout: 30_000 });
    psql('CREATE TABLE users (id int PRIMARY KEY, name text)');
    psql("INSERT INTO users VALUES (1, 'ada'), (2, 'bob'), (3, 'cy')");
    assert.equal(psql('SELECT name FROM users WHERE id = 1').trim(), 'ada');
    // node-postgres in its own process: a named prepared statement twice, then an error.
    const out = execFileSync(process.execPath, ['-e', `
      const { Client } = require('pg');
      (async () => {
        const c = new Client({ host: '127.0.0.1', port: ${port}, user: 'postgres', database: 'postgres' });
        await c.connect();
        const a = await c.query({ name: 'by_id', text: 'SELECT name FROM users WHERE id = $1', values: [2] });
        const b = await c.query({ name: 'by_id', text: 'SELECT name FROM users WHERE id = $1', values: [3] });
        let err = '';
        try { await c.query('SELECT * FROM no_such_table'); } catch (e) { err = e.code; }
        await c.end();
        process.stdout.write([a.rows[0].name, b.rows[0].name, err].join(','));
      })();
    `], { encoding: 'utf8', timeout: 30_000, cwd: path.join(__dirname, '..', '..', '..') });
    assert.equal(out, 'bob,cy,42P01');

    const pgSpans = (kind: number) => agent.spans().filter((s) => s.kind === kind && s.attributes['db.system.name'] === 'postgresql' && s.attributes['server.port'] === port);
    for (const kind of [CLIENT, SERVER]) {
      await waitFor(() => pgSpans(kind).some((s) => s.attributes['db.response.status_code'] === '42P01')
        && pgSpans(kind).filter((s) => s.attributes['db.query.text'] === 'SELECT name FROM users WHERE id = $1').length >= 2, 30_000).catch(() => undefined);
      const spans = pgSpans(kind);
      const dump = JSON.stringify(spans.map((s) => [s.name, s.attributes['db.query.text'], s.attributes['db.operation.name'], s.attributes['db.response.status_code'], s.attributes['db.response.returned_rows']]));
      const q = (text: string) => spans.filter((s) => s.attributes['db.query.text'] === text);
      // psql's literal is redacted; the table is named.
      const psqlSelect = q('SELECT name FROM users WHERE id = ?');
      assert.equal(psqlSelect.length, 1, dump);
      assert.equal(psqlSelect[0].attributes['db.operation.name'], 'SELECT');
      assert.equal(psqlSelect[0].attributes['db.response.returned_rows'], 1);
      assert.equal(q('CREATE TABLE users (id int PRIMARY KEY, name text)').length, 1, dump);
      assert.equal(q('INSERT INTO users VALUES (?, ?), (?, ?), (?, ?)').length, 1, dump);
      // The prepared statement: both executions name the Parse text.
      const prepared = q('SELECT name FROM users WHERE id = $1');
      assert.equal(prepared.length, 2, dump);
      for (const s of prepared) { assert.equal(s.attributes['db.operation.name'], 'SELECT'); assert.equal(s.attributes['db.response.returned_rows'], 1); }
      const failed = spans.filter((s) => s.attributes['db.response.status_code'] === '42P01');
      assert.equal(failed.length, 1, dump);
      assert.equal(failed[0].attributes['db.query.text'], 'SELECT * FROM no_such_table');
    }
  } finally {
    await pg.stop();
    assert.equal(await agent.stop(), 0);
  }
});

test('Kafka through the running agent: kcat ↔ librdkafka mock broker, produce and consume spans', { timeout: 180_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const has = (cmd: string) => require('child_process').spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
  if (!has('gcc') || !has('kcat')) { t.skip('needs gcc and kcat'); return; }
  const { spawn } = await import('child_process');
  const dir = fs.mkdtempSync(path.join(require('os').tmpdir(), 'telegen-kafka-'));
  const bin = path.join(dir, 'mock-broker');
  const root = path.join(__dirname, '..', '..', '..');
  execFileSync('gcc', ['-O1', '-Wall', '-o', bin, path.join(root, 'test', 'fixtures', 'kafka-mock', 'mock-broker.c'), '-lrdkafka']);
  const agent = await startAgent();
  const topic = 'telegen-e2e';
  const broker = spawn(bin, ['1', topic], { stdio: ['pipe', 'pipe', 'pipe'] });
  try {
    let out = '';
    broker.stdout!.on('data', (d) => { out += String(d); });
    const bootstrap = (await waitFor(() => /127\.0\.0\.1:\d+/.exec(out)?.[0], 10_000));
    const port = Number(bootstrap.split(':')[1]);
    const kcat = (args: string[], input?: string) => execFileSync('kcat', ['-b', bootstrap, ...args], { input, encoding: 'utf8', timeout: 30_000 });
    kcat(['-P', '-t', topic, '-p', '0', '-K', ':'], 'a:one\nb:two\nc:three\n');
    assert.equal(kcat(['-C', '-t', topic, '-p', '0', '-o', 'beginning', '-e', '-q', '-f', '%s\n']), 'one\ntwo\nthree\n');
    const kSpans = () => agent.spans().filter((s) => s.kind === CLIENT && s.attributes['messaging.system'] === 'kafka');
    const ops = () => kSpans().map((s) => `${s.attributes['messaging.operation.name']} ${s.attributes['messaging.destination.name'] ?? ''}`.trim());
    await waitFor(() => ops().includes(`produce ${topic}`) && ops().includes(`fetch ${topic}`), 30_000).catch(() => undefined);
    const got = ops();
    assert.ok(got.includes(`produce ${topic}`), JSON.stringify(got));
    assert.ok(got.includes(`fetch ${topic}`), JSON.stringify(got));
    for (const s of kSpans()) assert.equal(s.attributes['server.port'], port);
  } finally {
    broker.kill('SIGTERM');
    await new Promise<void>((r) => { if (broker.exitCode !== null) return r(); broker.once('exit', () => r()); setTimeout(r, 5000).unref(); });
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(await agent.stop(), 0);
  }
});
