// Statement-level PostgreSQL metrics through the running agent: psql and node-postgres against a
// real PostgreSQL 15 (initdb into a temp dir, 127.0.0.1 only), the agent's metrics sent over OTLP
// gRPC to the real test receiver (traces stay in DATA_DIR). Per normalized statement the user
// sees calls, latency, errors by SQLSTATE and returned rows under semconv names.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { requireBpf, startAgent, waitFor } from '../helpers/agent';
import { startReceiver, type FlatMetric } from '../helpers/otlp-receiver';
import { initPostgres, PG_BIN } from '../helpers/postgres';

type Point = Record<string, unknown> & { attributes: Record<string, unknown> };

/** The latest cumulative point of `name` per attribute set, for statements on `port`. */
function latest(metrics: FlatMetric[], name: string, port: number): Point[] {
  const by = new Map<string, Point>();
  for (const m of metrics) {
    if (m.name !== name) continue;
    for (const p of m.dataPoints) {
      if (p.attributes['server.port'] !== port) continue;
      const key = JSON.stringify(p.attributes);
      const prev = by.get(key);
      if (!prev || BigInt(String(p.timeUnixNano ?? 0)) >= BigInt(String(prev.timeUnixNano ?? 0))) by.set(key, p);
    }
  }
  return [...by.values()];
}

test('PostgreSQL statement metrics through the agent: psql and node-postgres ↔ postgres 15, OTLP to a real receiver', { timeout: 240_000 }, async (t) => {
  if (!requireBpf(t)) return;
  if (!fs.existsSync(path.join(PG_BIN, 'postgres'))) { t.skip('postgresql-15 not installed'); return; }
  const receiver = await startReceiver({ protocol: 'grpc' });
  const pg = await initPostgres('telegen-pgstmt-');
  const port = pg.port;
  const agent = await startAgent({
    env: {
      TELEGEN_METRICS_INTERVAL_MS: '1000',
      OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'grpc',
    },
  });
  try {
    await pg.start();
    const psql = (sql: string) => execFileSync('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-X', '-q', '-A', '-t', '-c', sql], { encoding: 'utf8', timeout: 30_000 });
    psql('CREATE TABLE items (id int PRIMARY KEY, name text)');
    psql("INSERT INTO items VALUES (1, 'ada'), (2, 'bob'), (3, 'cy')");
    // Three executions of one statement shape with different literals.
    for (const id of [1, 2, 3]) assert.equal(psql(`SELECT name FROM items WHERE id = ${id}`).trim(), ['ada', 'bob', 'cy'][id - 1]);
    assert.equal(psql('SELECT id FROM items WHERE id > 0 ORDER BY id').trim(), '1\n2\n3');
    // node-postgres: a prepared statement four times, and one missing table twice.
    const out = execFileSync(process.execPath, ['-e', `
      const { Client } = require('pg');
      (async () => {
        const c = new Client({ host: '127.0.0.1', port: ${port}, user: 'postgres', database: 'postgres' });
        await c.connect();
        let rows = 0;
        for (const id of [1, 2, 3, 4]) rows += (await c.query({ name: 'by_id', text: 'SELECT name FROM items WHERE id = $1', values: [id] })).rowCount;
        const errs = [];
        for (let i = 0; i < 2; i++) { try { await c.query('SELECT * FROM no_such_table'); } catch (e) { errs.push(e.code); } }
        await c.end();
        process.stdout.write(rows + ',' + errs.join(','));
      })();
    `], { encoding: 'utf8', timeout: 30_000, cwd: path.join(__dirname, '..', '..', '..') });
    assert.equal(out, '3,42P01,42P01');

    // Client side (psql, node): the series whose service is not postgres itself.
    const clientPoints = (name: string) => latest(receiver.metrics(), name, port).filter((p) => p.attributes['service.name'] !== 'postgres');
    const dur = () => clientPoints('db.client.operation.duration');
    const count = (text: string, err?: string) => dur().filter((p) => p.attributes['db.query.text'] === text && p.attributes['error.type'] === err).reduce((a, p) => a + Number(p.count ?? 0), 0);
    const want = () => count('SELECT name FROM items WHERE id = ?') >= 3 && count('SELECT name FROM items WHERE id = $1') >= 4 && count('SELECT * FROM no_such_table', '42P01') >= 2;
    await waitFor(() => want(), 60_000).catch(() => undefined);
    const dump = JSON.stringify(dur().map((p) => [p.attributes['service.name'], p.attributes['db.query.text'], p.attributes['error.type'], p.count]));

    assert.equal(count('SELECT name FROM items WHERE id = ?'), 3, dump);
    assert.equal(count('SELECT name FROM items WHERE id = $1'), 4, dump);
    assert.equal(count('SELECT * FROM no_such_table', '42P01'), 2, dump);
    assert.equal(count('SELECT * FROM no_such_table'), 0, 'the errors are not counted as successes');
    assert.equal(count('INSERT INTO items VALUES (?)'), 1, dump);
    const sel = dur().find((p) => p.attributes['db.query.text'] === 'SELECT name FROM items WHERE id = ?')!;
    assert.equal(sel.attributes['db.system.name'], 'postgresql');
    assert.equal(sel.attributes['db.operation.name'], 'SELECT');
    assert.equal(sel.attributes['db.namespace'], 'postgres');
    assert.equal(sel.attributes['server.address'], '127.0.0.1');

    const rows = clientPoints('db.client.response.returned_rows');
    const rowsOf = (text: string) => rows.filter((p) => p.attributes['db.query.text'] === text).reduce((a, p) => a + Number(p.sum ?? 0), 0);
    assert.equal(rowsOf('SELECT name FROM items WHERE id = ?'), 3, JSON.stringify(rows.map((p) => [p.attributes['db.query.text'], p.count, p.sum])));
    assert.equal(rowsOf('SELECT name FROM items WHERE id = $1'), 3, 'id 4 returned no row');
    assert.equal(rowsOf('SELECT id FROM items WHERE id > ? ORDER BY id'), 3);
  } finally {
    await pg.stop();
    assert.equal(await agent.stop(), 0);
    await receiver.stop();
  }
});
