// telegen collect: real processes over 100 Prometheus endpoints served here on loopback and a
// real PostgreSQL 15, exporting to a real OTLP receiver. Checks that every target is polled by
// exactly one replica, that 3 → 4 replicas moves few targets, and what arrives over OTLP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { repoRoot } from '../helpers/decoder';
import { startReceiver, freePort, FlatMetric } from '../helpers/otlp-receiver';
import { ownerOf, replicaIdentity } from '../../host/src/collect/shard';
import { parsePromText } from '../../host/src/collect/prom-text';
import { initPostgres, PG_BIN } from '../helpers/postgres';

const PASSWORD = 'collect-test-pw';
const N_TARGETS = 100;

test('prometheus text / OpenMetrics parser: types, suffixes, escapes, special values, bad lines', () => {
  const r = parsePromText([
    '# HELP http_requests_total Requests "served"\\n.',
    '# TYPE http_requests_total counter',
    'http_requests_total{method="GET",path="/a\\"b\\\\c"} 1027 1395066363000',
    'http_requests_total{method="POST"} 3',
    '# TYPE rpc_seconds histogram',
    'rpc_seconds_bucket{le="0.5"} 4',
    'rpc_seconds_bucket{le="+Inf"} 7',
    'rpc_seconds_sum 2.5e0',
    'rpc_seconds_count 7',
    '# TYPE temp gauge',
    '# UNIT temp celsius',
    'temp NaN',
    'temp{x="1"} -Inf # {trace_id="abc"} 1.0',
    'untyped_thing 5',
    'broken{a=unquoted} 1',
    'also_broken 1x',
    '# EOF',
  ].join('\n'));
  const req = r.families.get('http_requests_total')!;
  assert.equal(req.type, 'counter');
  assert.equal(req.help, 'Requests "served"\n.');
  assert.deepEqual(req.samples.map((s) => [s.labels, s.value]), [[{ method: 'GET', path: '/a"b\\c' }, 1027], [{ method: 'POST' }, 3]]);
  const h = r.families.get('rpc_seconds')!;
  assert.deepEqual(h.samples.map((s) => s.name), ['rpc_seconds_bucket', 'rpc_seconds_bucket', 'rpc_seconds_sum', 'rpc_seconds_count']);
  assert.deepEqual([h.samples[1].labels, h.samples[1].value], [{ le: '+Inf' }, 7]);
  const t = r.families.get('temp')!;
  assert.equal(t.unit, 'celsius');
  assert.ok(Number.isNaN(t.samples[0].value));
  assert.equal(t.samples[1].value, -Infinity);
  assert.equal(r.families.get('untyped_thing')!.type, 'untyped');
  assert.equal(r.badLines, 2);
  assert.match(r.firstError ?? '', /line 15/);
});

test('rendezvous sharding: balanced, deterministic, 3 → 4 moves ~1/4 and only to the new replica', () => {
  const ids = Array.from({ length: 1000 }, (_, i) => `prometheus/t${i}`);
  const three = ids.map((id) => ownerOf(id, 3));
  const counts = [0, 0, 0];
  for (const o of three) counts[o]++;
  for (const c of counts) assert.ok(c > 250 && c < 420, `balanced: ${counts}`);
  const four = ids.map((id) => ownerOf(id, 4));
  let moved = 0;
  four.forEach((o, i) => { if (o !== three[i]) { moved++; assert.equal(o, 3, 'a moved target goes to the new replica'); } });
  assert.ok(moved / ids.length > 0.15 && moved / ids.length < 0.35, `moved ${moved}/1000`);
});

test('replica identity from the StatefulSet environment', () => {
  assert.deepEqual(replicaIdentity({}, { TELEGEN_REPLICA_INDEX: '1', TELEGEN_REPLICAS: '2' }), { index: 1, replicas: 2, source: 'TELEGEN_REPLICA_INDEX' });
  // Kubernetes before 1.28: no pod-index label, the pod name's suffix is the ordinal.
  assert.deepEqual(replicaIdentity({}, { TELEGEN_REPLICA_INDEX: '', TELEGEN_POD_NAME: 'telegen-collector-2', TELEGEN_REPLICAS: '3' }), { index: 2, replicas: 3, source: 'TELEGEN_POD_NAME suffix' });
  assert.deepEqual(replicaIdentity({}, {}), { index: 0, replicas: 1, source: 'default (single replica)' });
  assert.throws(() => replicaIdentity({}, { TELEGEN_POD_NAME: 'telegen-collector-2', TELEGEN_REPLICAS: '2' }), /not below the replica count 2/);
});

// ---- live -----------------------------------------------------------------------------------------

interface PromFarm { servers: http.Server[]; urls: string[]; scrapes: Map<string, Set<string>>; stop(): Promise<void> }

/** 4 servers × 25 paths; each request is recorded with the replica named in the User-Agent. */
async function startFarm(): Promise<PromFarm> {
  const scrapes = new Map<string, Set<string>>();
  const hits = new Map<string, number>();
  const servers: http.Server[] = [];
  const urls: string[] = [];
  for (let s = 0; s < 4; s++) {
    const srv = http.createServer((req, res) => {
      const p = req.url ?? '';
      const m = /replica (\d+)\/(\d+)/.exec(String(req.headers['user-agent'] ?? ''));
      const key = `${s}${p}`;
      if (!scrapes.has(key)) scrapes.set(key, new Set());
      scrapes.get(key)!.add(m ? `${m[1]}/${m[2]}` : 'unknown');
      const n = (hits.get(key) ?? 0) + 1;
      hits.set(key, n);
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      // test_generation: a series per scrape (like a pod that is replaced), gone from the next one.
      res.end(`# HELP test_scrapes_total Scrapes of this endpoint.\n# TYPE test_scrapes_total counter\ntest_scrapes_total{endpoint="${key}"} ${n}\n# TYPE test_temperature gauge\ntest_temperature ${s * 100 + 0.5}\n# TYPE test_generation gauge\ntest_generation{n="${n}"} 1\n`);
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    servers.push(srv);
    const port = (srv.address() as { port: number }).port;
    for (let k = 0; k < N_TARGETS / 4; k++) urls.push(`http://127.0.0.1:${port}/t${k}/metrics`);
  }
  return { servers, urls, scrapes, stop: async () => { for (const s of servers) { s.closeAllConnections(); await new Promise<void>((r) => s.close(() => r())); } } };
}

const canPg = process.getuid?.() === 0 && fs.existsSync(path.join(PG_BIN, 'postgres'));

async function waitFor(pred: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function pgQuery(port: number, sqls: string[]): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Client } = require('pg');
  const c = new Client({ host: '127.0.0.1', port, user: 'postgres', password: PASSWORD, database: 'postgres' });
  await c.connect();
  try { for (const q of sqls) await c.query(q); } finally { await c.end(); }
}

interface Replica { proc: ChildProcess; stderr: string[]; dir: string; apiPort: number }

async function startReplicas(n: number, configFile: string): Promise<Replica[]> {
  const out: Replica[] = [];
  for (let i = 0; i < n; i++) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `telegen-collect-${i}-`));
    const apiPort = await freePort();
    const proc = spawn(process.execPath, [path.join(repoRoot, 'bin', 'telegen'), 'collect', '--config', configFile, '--replica-index', String(i), '--replicas', String(n), '--data-dir', dir, '--api-listen', `127.0.0.1:${apiPort}`],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, TELEGEN_POD_NAME: 'telegen-collector', PGPASSWORD: PASSWORD } });
    const stderr: string[] = [];
    proc.stderr!.on('data', (d: Buffer) => { stderr.push(d.toString()); });
    out.push({ proc, stderr, dir, apiPort });
  }
  return out;
}

async function stopReplicas(rs: Replica[]): Promise<number[]> {
  const codes = await Promise.all(rs.map((r) => new Promise<number>((resolve) => {
    if (r.proc.exitCode !== null) return resolve(r.proc.exitCode);
    const t = setTimeout(() => { try { r.proc.kill('SIGKILL'); } catch { /* gone */ } }, 30_000);
    r.proc.once('exit', (code) => { clearTimeout(t); resolve(code ?? -1); });
    r.proc.kill('SIGTERM');
  })));
  for (const r of rs) fs.rmSync(r.dir, { recursive: true, force: true });
  return codes;
}

/** target id → set of service.instance.id that exported a point for it. */
function reporters(ms: FlatMetric[], name: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const m of ms) {
    if (m.name !== name) continue;
    for (const dp of m.dataPoints) {
      const id = String(dp.attributes['telegen.target.id']);
      if (!out.has(id)) out.set(id, new Set());
      out.get(id)!.add(String(m.resource['service.instance.id']));
    }
  }
  return out;
}

test('three replicas poll 100 Prometheus targets and PostgreSQL, each exactly once; four replicas move ≤35%', { timeout: 600_000 }, async (t) => {
  if (!canPg) {
    if (process.env.CI === 'true') assert.fail('needs root and PostgreSQL 15 (scripts/setup.sh installs it)');
    t.skip('needs root and PostgreSQL 15');
    return;
  }
  const farm = await startFarm();
  const rx = await startReceiver({ protocol: 'grpc' });
  const pg = await initPostgres('telegen-collect-pg-', { password: PASSWORD, settings: ['shared_preload_libraries=pg_stat_statements'] });
  await pg.start();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-collect-cfg-'));
  let replicas: Replica[] = [];
  try {
    await pgQuery(pg.port, ['CREATE EXTENSION pg_stat_statements', 'CREATE TABLE items (id int, name text)', "INSERT INTO items VALUES (1, 'a'), (2, 'b')", 'SELECT name FROM items WHERE id = 2']);
    // Ids independent of the ephemeral ports: the same 100 ids (and so the same shards) every run.
    const idOf = (url: string) => `prometheus/target-${farm.urls.indexOf(url)}`;
    const keyOf = (url: string) => `${farm.urls.indexOf(url) >> 0 >= 0 ? Math.floor(farm.urls.indexOf(url) / 25) : -1}${new URL(url).pathname}`;
    const cfg = {
      collect: {
        interval_ms: 1000,
        timeout_ms: 5000,
        targets: [
          ...farm.urls.map((url) => ({ id: idOf(url), type: 'prometheus', url })),
          // The password comes from PGPASSWORD, as in the StatefulSet (a Secret).
          { id: 'postgresql/test', type: 'postgresql', url: `postgresql://postgres@127.0.0.1:${pg.port}/postgres` },
        ],
      },
      otlp: { endpoint: rx.url, protocol: 'grpc', compression: 'none' },
    };
    const file = path.join(tmp, 'collector.yaml');
    fs.writeFileSync(file, JSON.stringify(cfg));
    const all = [...farm.urls.map(idOf), 'postgresql/test'];

    // --- 3 replicas
    replicas = await startReplicas(3, file);
    await waitFor(() => farm.scrapes.size === N_TARGETS, 120_000, `all ${N_TARGETS} endpoints scraped (got ${farm.scrapes.size})`);
    await rx.waitFor(() => reporters(rx.metrics(), 'test_scrapes_total').size === N_TARGETS && reporters(rx.metrics(), 'postgresql.commits').size === 1, 120_000, 'metrics of every target over OTLP');
    // Let a few more rounds run: ownership must be stable, not just right once.
    await new Promise((r) => setTimeout(r, 3000));
    for (const url of farm.urls) {
      const by = farm.scrapes.get(keyOf(url));
      assert.ok(by, `${url} scraped`);
      assert.deepEqual([...by], [`${ownerOf(idOf(url), 3)}/3`], `${url} scraped by exactly its owner`);
    }
    const rep = reporters(rx.metrics(), 'test_scrapes_total');
    for (const url of farm.urls) assert.deepEqual([...rep.get(idOf(url))!], [`telegen-collector-${ownerOf(idOf(url), 3)}`], `${idOf(url)} exported by one replica`);
    const pgRep = reporters(rx.metrics(), 'postgresql.commits');
    assert.deepEqual([...pgRep.get('postgresql/test')!], [`telegen-collector-${ownerOf('postgresql/test', 3)}`]);
    // What an operator sees for PostgreSQL: per-database stats and the normalized statement.
    const ms = rx.metrics();
    const commits = ms.filter((m) => m.name === 'postgresql.commits').flatMap((m) => m.dataPoints).find((d) => d.attributes['postgresql.database.name'] === 'postgres');
    assert.ok(commits && Number(commits.asInt ?? commits.asDouble) > 0, 'commits of database postgres');
    assert.equal(ms.find((m) => m.name === 'postgresql.commits')!.type, 'sum');
    const stmts = ms.filter((m) => m.name === 'postgresql.statement.calls').flatMap((m) => m.dataPoints);
    assert.ok(stmts.some((d) => /SELECT name FROM items WHERE id = \$1/.test(String(d.attributes['db.query.text']))), 'pg_stat_statements text, literals replaced by PostgreSQL');
    const gauge = ms.find((m) => m.name === 'test_temperature')!;
    assert.equal(gauge.type, 'gauge');
    // A series the target stopped reporting is not exported again: one test_generation per
    // target per collection, however many scrapes came before.
    // (A request may carry several collections: a collection is its points' time.)
    const perCollection = new Map<string, string[]>();
    for (const d of ms.filter((m) => m.name === 'test_generation').flatMap((m) => m.dataPoints)) {
      const k = String(d.timeUnixNano);
      perCollection.set(k, [...(perCollection.get(k) ?? []), String(d.attributes['telegen.target.id'])]);
    }
    assert.ok(perCollection.size > 0, 'test_generation exported');
    for (const ids of perCollection.values()) assert.equal(new Set(ids).size, ids.length, `stale test_generation series exported: ${ids.length} points for ${new Set(ids).size} targets`);
    // Cumulative exports repeat every interval; each target must have been reported up.
    const upIds = new Set(ms.filter((m) => m.name === 'telegen.collect.target.up').flatMap((m) => m.dataPoints)
      .filter((d) => Number(d.asInt ?? d.asDouble) === 1).map((d) => String(d.attributes['telegen.target.id'])));
    assert.deepEqual([...upIds].sort(), [...all].sort(), 'every target reported up');
    // API: readiness and the targets this replica owns.
    const tj = await (await fetch(`http://127.0.0.1:${replicas[0].apiPort}/api/targets`)).json() as { targets: Array<{ id: string }> };
    assert.deepEqual(tj.targets.map((x) => x.id).sort(), all.filter((id) => ownerOf(id, 3) === 0).sort());
    assert.equal((await fetch(`http://127.0.0.1:${replicas[0].apiPort}/readyz`)).status, 200);
    assert.deepEqual(await stopReplicas(replicas), [0, 0, 0], 'SIGTERM flushes and exits 0');
    replicas = [];

    // --- 4 replicas: only the targets the new replica wins move.
    const before = new Map([...farm.urls].map((u) => [u, [...farm.scrapes.get(keyOf(u))!][0]]));
    farm.scrapes.clear();
    replicas = await startReplicas(4, file);
    await waitFor(() => farm.scrapes.size === N_TARGETS, 120_000, `all ${N_TARGETS} endpoints scraped by 4 replicas`);
    await new Promise((r) => setTimeout(r, 3000));
    let moved = 0;
    for (const url of farm.urls) {
      const by = [...farm.scrapes.get(keyOf(url))!];
      assert.equal(by.length, 1, `${url} scraped by one replica of 4 (${by})`);
      const [now] = by[0].split('/');
      const [was] = before.get(url)!.split('/');
      if (now !== was) { moved++; assert.equal(now, '3', 'moved targets go to the new replica'); }
    }
    assert.ok(moved <= 35, `moved ${moved} of ${N_TARGETS}`);
    assert.ok(moved > 0, 'the new replica took some targets');
    t.diagnostic(`3 → 4 replicas moved ${moved}/${N_TARGETS} targets`);
    assert.deepEqual(await stopReplicas(replicas), [0, 0, 0, 0]);
    replicas = [];
  } catch (e) {
    for (const r of replicas) process.stderr.write(r.stderr.join('').slice(-2000));
    throw e;
  } finally {
    if (replicas.length) await stopReplicas(replicas);
    await pg.stop();
    await rx.stop();
    await farm.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
