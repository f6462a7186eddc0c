// Real peers: PostgreSQL 15 started here (initdb as the postgres user into a temp dir, listening
// on 127.0.0.1 only), driven by psql, pgbench (-i, -M simple/extended/prepared) and node-postgres;
// the traffic is captured on lo with tshark. The decoder and tshark must agree on every query
// text, command tag, SQLSTATE and error message, and the spans carry the exact values.
// Needs root (capture, runuser) and the Debian postgresql-15 + tshark packages; skipped otherwise.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as net from 'net';
import { spawn, execFileSync, ChildProcess } from 'child_process';
import { decodeCapture, oracleFromCapture, decoded, compare } from './pgsql-util';
import { DecodedRecord } from '../../host/src/decoders/records';
import { signalPid } from '../helpers/signal';
import { startLoCapture, stopLoCapture, Capture } from '../helpers/capture';

const PG_BIN = '/usr/lib/postgresql/15/bin';
const PASSWORD = 'Live-T3st-Pa55word';
const canRun = process.getuid?.() === 0 && fs.existsSync(path.join(PG_BIN, 'postgres')) && fs.existsSync('/usr/bin/tshark') && fs.existsSync('/usr/bin/psql');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); });
  });
}

function waitFor(check: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (check()) return resolve();
      if (Date.now() > end) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 100);
    };
    tick();
  });
}

function exited(p: ChildProcess, ms: number): Promise<void> {
  return new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    const t = setTimeout(() => { if (p.pid) try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ } resolve(); }, ms);
    p.once('exit', () => { clearTimeout(t); resolve(); });
  });
}

interface Server { dir: string; port: number; proc: ChildProcess; pid: number }

async function startServer(): Promise<Server> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-pg-'));
  fs.chmodSync(dir, 0o755);
  const pw = path.join(dir, 'pw');
  fs.writeFileSync(pw, PASSWORD + '\n');
  execFileSync('chown', ['-R', 'postgres:postgres', dir]);
  execFileSync('runuser', ['-u', 'postgres', '--', path.join(PG_BIN, 'initdb'), '-D', path.join(dir, 'data'), '-U', 'postgres',
    '--auth-host=scram-sha-256', '--auth-local=trust', `--pwfile=${pw}`, '--no-sync'], { stdio: 'ignore' });
  const port = await freePort();
  const proc = spawn('runuser', ['-u', 'postgres', '--', path.join(PG_BIN, 'postgres'), '-D', path.join(dir, 'data'), '-k', dir, '-p', String(port),
    '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'ssl=off'], { stdio: 'ignore' });
  const pidFile = path.join(dir, 'data', 'postmaster.pid');
  await waitFor(() => {
    if (!fs.existsSync(pidFile)) return false;
    const lines = fs.readFileSync(pidFile, 'utf8').split('\n');
    return lines.length > 7 && /ready/.test(lines[7] ?? '');
  }, 30_000, 'postgres to accept connections');
  const pid = Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]);
  return { dir, port, proc, pid };
}

async function stopServer(s: Server): Promise<void> {
  try { signalPid(s.pid, 'SIGINT'); } catch { /* not a live postgres pid */ }
  await exited(s.proc, 20_000);
  fs.rmSync(s.dir, { recursive: true, force: true });
}

const PSQL_SCRIPT = `
CREATE TABLE items (id int PRIMARY KEY, name text);
INSERT INTO items VALUES (1, 'one'), (2, 'two');
SELECT * FROM items WHERE id > 0;
UPDATE items SET name = 'uno' WHERE id = 1;
DROP TABLE IF EXISTS not_there;
SELECT * FROM missing_table;
COPY items FROM STDIN;
3\tthree
4\tfour
\\.
COPY items TO STDOUT;
LISTEN ch;
NOTIFY ch, 'hello';
SELECT 1 \\; SELECT 2;
DELETE FROM items;
`;

function run(cmd: string, args: string[], port: number): string {
  return execFileSync(cmd, args, { env: { ...process.env, PGPASSWORD: PASSWORD, PGHOST: '127.0.0.1', PGPORT: String(port), PGUSER: 'postgres', PGDATABASE: 'postgres' }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 }).toString();
}

async function nodePg(port: number): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Client } = require('pg');
  const c = new Client({ host: '127.0.0.1', port, user: 'postgres', password: PASSWORD, database: 'postgres', application_name: 'telegen-live' });
  await c.connect();
  await c.query('SELECT 1 AS one');
  await c.query('SELECT $1::int + 1 AS two', [1]);
  for (let i = 1; i <= 3; i++) await c.query({ name: 'by_id', text: 'SELECT aid, abalance FROM pgbench_accounts WHERE aid = $1', values: [i] });
  await c.query('SELECT * FROM no_such_table').catch(() => undefined);
  await c.query({ text: 'SELECT 1 / $1::int', values: [0] }).catch(() => undefined);
  await c.end();
}

function ex(h: { records: DecodedRecord[] }): DecodedRecord[] { return h.records.filter((r) => r.kind === 1); }

test('pgsql live: PostgreSQL 15 with psql, pgbench and node-postgres agrees with tshark', { skip: !canRun && 'needs root, postgresql-15 and tshark', timeout: 300_000 }, async () => {
  const server = await startServer();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-pgcap-'));
  const pcap = path.join(work, 'live.pcap');
  let cap: Capture | undefined;
  try {
    // -B 64: pgbench -i streams 100k rows of COPY at loopback speed; the default 2 MB capture
    // buffer can drop segments of it (seen once in CI as one invalid parse).
    cap = await startLoCapture(pcap, `tcp port ${server.port}`, server.port, 64);
    const script = path.join(work, 'script.sql');
    fs.writeFileSync(script, PSQL_SCRIPT);
    run('psql', ['-X', '-q', '-f', script], server.port);
    run('pgbench', ['-i', '-s', '1', '-q'], server.port);
    for (const mode of ['simple', 'extended', 'prepared']) run('pgbench', ['-M', mode, '-t', '20', '-c', '1', '-n'], server.port);
    // libpq pipeline mode: three Executes, one Sync per transaction.
    const pipe = path.join(work, 'pipe.sql');
    fs.writeFileSync(pipe, '\\startpipeline\nSELECT 1 AS pipelined;\nSELECT abalance FROM pgbench_accounts WHERE aid = 7;\nUPDATE pgbench_branches SET bbalance = bbalance WHERE bid = 1;\n\\endpipeline\n');
    run('pgbench', ['-M', 'extended', '-t', '5', '-c', '1', '-n', '-f', pipe], server.port);
    await nodePg(server.port);
    await stopLoCapture(cap);
    cap = undefined;
    if (process.env.TELEGEN_PGSQL_KEEP) fs.copyFileSync(pcap, process.env.TELEGEN_PGSQL_KEEP);

    const h = await decodeCapture(pcap, [server.port]);
    assert.equal(h.inst.counters.traps, 0, h.inst.lastError);
    assert.equal(h.inst.counters.overflows, 0);
    assert.equal(h.inst.counters.invalid, 0, `${h.inst.lastError ?? ''} (capture gaps: ${h.inst.counters.gapResets + h.inst.counters.gapsAbsorbed})`);
    const want = oracleFromCapture(pcap, [`tcp.port==${server.port},pgsql`]);
    assert.ok(want.queries.length > 100, `tshark saw ${want.queries.length} queries`);
    assert.deepEqual(compare(want, decoded(h)), []);

    const all = ex(h);
    // Every connection authenticated with SCRAM; the password is nowhere.
    const startups = all.filter((r) => r.attributes['db.operation.name'] === 'STARTUP' && !(r.flags & 2));
    assert.ok(startups.length >= 6);
    for (const s of startups) assert.equal(s.attributes['telegen.db.auth.method'], 'SCRAM-SHA-256');
    assert.ok(startups.some((s) => s.attributes['telegen.db.application_name'] === 'psql'));
    assert.ok(startups.some((s) => s.attributes['telegen.db.application_name'] === 'telegen-live'));
    assert.ok(!JSON.stringify(h.records.map((r) => r.attributes)).includes(PASSWORD));

    // psql: notice, error, COPY both ways, notification, multi-statement.
    const byText = (t: string) => all.filter((r) => r.attributes['db.query.text'] === t);
    assert.deepEqual(byText('SELECT * FROM missing_table;').map((r) => [r.flags, r.attributes['db.response.status_code'], r.attributes['error.message']]), [[1, '42P01', 'relation "missing_table" does not exist']]);
    // psql sends the two data lines and the "\\." end line in one CopyData message: 18 bytes.
    // db.response.returned_rows: rows sent back (COPY TO's), never rows written (COPY FROM's, INSERT's)
    assert.deepEqual(byText('COPY items FROM STDIN;').map((r) => [r.attributes['telegen.db.command_tag'], r.attributes['telegen.db.copy.messages'], r.attributes['telegen.db.copy.bytes'], r.attributes['db.collection.name'], r.attributes['db.response.returned_rows']]), [['COPY 2', 1, 18, 'items', undefined]]);
    assert.deepEqual(byText('COPY items TO STDOUT;').map((r) => [r.attributes['telegen.db.command_tag'], r.attributes['telegen.db.copy.messages'], r.attributes['db.response.returned_rows']]), [['COPY 4', 4, 4]]);
    assert.deepEqual(byText("INSERT INTO items VALUES (1, 'one'), (2, 'two');").map((r) => [r.attributes['telegen.db.command_tag'], r.attributes['db.response.returned_rows']]), [['INSERT 0 2', undefined]]);
    assert.deepEqual(byText('SELECT * FROM items WHERE id > 0;').map((r) => [r.attributes['telegen.db.command_tag'], r.attributes['db.response.returned_rows']]), [['SELECT 2', 2]]);
    assert.deepEqual(byText('SELECT 1 ; SELECT 2;').map((r) => r.attributes['telegen.db.command_tag']), ['SELECT 1;SELECT 1']);
    assert.ok(h.records.some((r) => r.kind === 2 && r.attributes['telegen.db.event.name'] === 'notification' && r.attributes['telegen.db.notification.channel'] === 'ch'));
    assert.ok(h.records.some((r) => r.kind === 2 && r.attributes['telegen.db.event.name'] === 'notice' && r.attributes['db.response.status_code'] === '00000'));

    // pgbench: 20 transactions per mode, each one UPDATE of pgbench_accounts.
    const upd = all.filter((r) => r.attributes['db.operation.name'] === 'UPDATE' && r.attributes['db.collection.name'] === 'pgbench_accounts');
    assert.equal(upd.length, 60);
    assert.ok(upd.every((r) => r.attributes['telegen.db.command_tag'] === 'UPDATE 1' && r.attributes['db.response.returned_rows'] === undefined && r.flags === 0));
    const prepared = upd.filter((r) => typeof r.attributes['telegen.db.statement.name'] === 'string');
    assert.equal(prepared.length, 20, 'pgbench -M prepared executes named statements');
    // Pipelined: each Execute its own exchange, all five rounds, tags and rows exact.
    assert.deepEqual(byText('SELECT 1 AS pipelined;').map((r) => [r.flags, r.attributes['telegen.db.command_tag'], r.attributes['db.response.returned_rows']]), Array(5).fill([0, 'SELECT 1', 1]));
    assert.deepEqual(byText('SELECT abalance FROM pgbench_accounts WHERE aid = 7;').map((r) => [r.flags, r.attributes['telegen.db.command_tag'], r.attributes['db.collection.name']]), Array(5).fill([0, 'SELECT 1', 'pgbench_accounts']));
    assert.deepEqual(byText('UPDATE pgbench_branches SET bbalance = bbalance WHERE bid = 1;').map((r) => [r.flags, r.attributes['telegen.db.command_tag']]), Array(5).fill([0, 'UPDATE 1']));
    // pgbench -i loads pgbench_accounts with COPY.
    assert.ok(all.some((r) => r.attributes['db.operation.name'] === 'COPY' && r.attributes['telegen.db.command_tag'] === 'COPY 100000'));

    // node-postgres: a named prepared statement executed three times, an unnamed one, two errors.
    const named = all.filter((r) => r.attributes['telegen.db.statement.name'] === 'by_id');
    assert.deepEqual(named.map((r) => [r.attributes['db.query.text'], r.attributes['db.operation.name'], r.attributes['db.collection.name'], r.attributes['telegen.db.command_tag'], r.attributes['db.response.returned_rows']]),
      Array(3).fill(['SELECT aid, abalance FROM pgbench_accounts WHERE aid = $1', 'SELECT', 'pgbench_accounts', 'SELECT 1', 1]));
    assert.deepEqual(byText('SELECT 1 / $1::int').map((r) => [r.flags, r.attributes['db.response.status_code'], r.attributes['telegen.db.severity']]), [[1, '22012', 'ERROR']]);
    assert.deepEqual(byText('SELECT $1::int + 1 AS two').map((r) => [r.attributes['telegen.db.command_tag'], r.attributes['telegen.db.application_name']]), [['SELECT 1', 'telegen-live']]);
  } finally {
    if (cap) await stopLoCapture(cap);
    await stopServer(server);
    fs.rmSync(work, { recursive: true, force: true });
  }
});
