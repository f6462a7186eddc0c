// Result sets larger than the agent's capture of one read (the first 16 KiB of each,
// tracers.socket.capture_max; the rest reported lost) through the running agent, against
// PostgreSQL 15: node-postgres whose socket is paused while the answer arrives (the kernel holds
// all 120 KB, then libuv reads it in 64 KiB reads: most DataRows land in lost bytes), psql, and
// python3-psycopg2's named cursor (FETCH FORWARD 20). The DataRows in the lost bytes were never
// counted, but the CommandComplete tag that ends the result set says how many rows it returned:
// the client span's db.response.returned_rows is the rows the client read. Before, node's span
// said 23 of 40 (FLAG_UNKNOWN), the server's (8 KiB writes) 40.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { requireBpf, startAgent, waitFor, FlatSpan } from '../helpers/agent';
import { initPostgres, PG_BIN } from '../helpers/postgres';

const CLIENT = 3;
const SERVER = 2;
const ROWS_SQL = "SELECT g, repeat('r', 3000) AS pad FROM generate_series(1, 40) g";
const NODE_SQL = "SELECT g, repeat('n', 3000) AS node_pad FROM generate_series(1, 40) g";
const PSYCOPG = `
import psycopg2, sys
c = psycopg2.connect(host='127.0.0.1', port=int(sys.argv[1]), user='postgres', dbname='postgres')
n = c.cursor(name='big_cur')
n.itersize = 20
n.execute("SELECT g, repeat('f', 3000) FROM generate_series(1, 40) g")
print(sum(1 for _ in n))
c.close()
`;

test('PostgreSQL result sets over 16 KiB through the running agent: returned_rows is what the client read (node-postgres, psql, psycopg2)', { timeout: 180_000 }, async (t) => {
  if (!requireBpf(t)) return;
  if (!fs.existsSync(path.join(PG_BIN, 'postgres'))) { t.skip('postgresql-15 not installed'); return; }
  let havePsycopg = true;
  try { execFileSync('/usr/bin/python3', ['-c', 'import psycopg2'], { stdio: 'ignore' }); } catch { havePsycopg = false; }
  const pg = await initPostgres('telegen-pg-big-');
  const port = pg.port;
  const agent = await startAgent();
  try {
    await pg.start();
    const printed = execFileSync('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-X', '-q', '-A', '-t', '-c', ROWS_SQL],
      { encoding: 'utf8', timeout: 30_000, maxBuffer: 1 << 24 }).split('\n').filter(Boolean).length;
    assert.equal(printed, 40);
    const fetched = havePsycopg ? Number(execFileSync('/usr/bin/python3', ['-c', PSYCOPG, String(port)], { encoding: 'utf8', timeout: 30_000 }).trim()) : 0;
    if (havePsycopg) assert.equal(fetched, 40);
    const nodeRows = Number(execFileSync(process.execPath, ['-e', `
      const { Client } = require('pg');
      (async () => {
        const c = new Client({ host: '127.0.0.1', port: ${port}, user: 'postgres', database: 'postgres' });
        await c.connect();
        // Not read until the whole answer waits in the socket: then it comes in 64 KiB reads.
        c.connection.stream.pause();
        const q = c.query(${JSON.stringify(NODE_SQL)});
        setTimeout(() => c.connection.stream.resume(), 500);
        const r = await q;
        await c.end();
        process.stdout.write(String(r.rows.length));
      })();
    `], { encoding: 'utf8', timeout: 30_000, cwd: path.join(__dirname, '..', '..', '..') }));
    assert.equal(nodeRows, 40);

    const pgSpans = (kind: number): FlatSpan[] => agent.spans().filter((s) => s.kind === kind && s.attributes['db.system.name'] === 'postgresql' && s.attributes['server.port'] === port);
    const fetches = (spans: FlatSpan[]) => spans.filter((s) => s.attributes['db.operation.name'] === 'FETCH');
    for (const kind of [CLIENT, SERVER]) {
      await waitFor(() => pgSpans(kind).filter((s) => s.attributes['telegen.db.command_tag'] === 'SELECT 40').length >= 2
        && (!havePsycopg || fetches(pgSpans(kind)).some((s) => s.attributes['telegen.db.command_tag'] === 'FETCH 0')), 30_000).catch(() => undefined);
      const spans = pgSpans(kind);
      const dump = JSON.stringify(spans.map((s) => [s.attributes['db.query.text'], s.attributes['telegen.db.command_tag'], s.attributes['db.response.returned_rows'], s.attributes['telegen.unknown']]));
      const byText = (sql: string) => spans.filter((s) => s.attributes['db.query.text'] === sql).map((s) => [s.attributes['telegen.db.command_tag'], s.attributes['db.response.returned_rows']]);
      assert.deepEqual(byText('SELECT g, repeat(?, ?) AS node_pad FROM generate_series(?, ?) g'), [['SELECT 40', nodeRows]], `kind ${kind}: ${dump}`);
      assert.deepEqual(byText("SELECT g, repeat(?, ?) AS pad FROM generate_series(?, ?) g"), [['SELECT 40', printed]], `kind ${kind}: ${dump}`);
      if (havePsycopg) {
        // psycopg2's named cursor: FETCH FORWARD 20 twice, then the empty FETCH that ends it
        assert.deepEqual(fetches(spans).map((s) => [s.attributes['telegen.db.command_tag'], s.attributes['db.response.returned_rows']]),
          [['FETCH 20', 20], ['FETCH 20', 20], ['FETCH 0', 0]], `kind ${kind}: ${dump}`);
      }
    }
  } finally {
    await pg.stop();
    assert.equal(await agent.stop(), 0);
  }
});
