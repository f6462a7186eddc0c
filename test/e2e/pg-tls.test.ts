// PostgreSQL 15 over TLS through the running agent. The client sends SSLRequest in cleartext, the
// server answers 'S', and the startup and every query travel inside TLS: the spans come from the
// plaintext libssl hands psql (libpq) and the postgres backend, and node's own OpenSSL hands
// node-postgres (bpf/tls.md). They must be the spans the same clients give without TLS — startup
// facts (db.namespace, user, application, SCRAM-SHA-256-PLUS: channel binding exists only over
// TLS), query texts, SQLSTATEs — on both sides, and nothing made of ciphertext. tshark decrypts the
// node-postgres connection with node's --tls-keylog and is the oracle for it (libpq 15 writes no
// key log). Then sslmode=prefer against a server with ssl=off: SSLRequest answered 'N', the
// startup follows in cleartext on the same connection, tshark reading all of it; and clients that
// require TLS there (psql sslmode=require, node-postgres ssl: true), which close after the 'N': one
// failed STARTUP each (error.type ssl_refused) — before, such a connection left no span at all.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync, spawnSync } from 'child_process';
import { requireBpf, startAgent, FlatSpan, waitFor } from '../helpers/agent';
import { initPostgres, installServerCert, PG_BIN, PgCluster } from '../helpers/postgres';
import { startLoCapture, stopLoCapture, Capture } from '../helpers/capture';
import { makePki } from '../tls/tls-helpers';
import { repoRoot } from '../helpers/decoder';

const SERVER = 2;
const CLIENT = 3;

function needs(t: { skip(msg?: string): void }): boolean {
  if (!requireBpf(t)) return false;
  if (fs.existsSync(path.join(PG_BIN, 'postgres')) && spawnSync('sh', ['-c', 'command -v tshark']).status === 0) return true;
  if (process.env.CI === 'true') throw new Error('needs postgresql-15 and tshark');
  t.skip('needs postgresql-15 and tshark');
  return false;
}

/** node-postgres in its own process: a named prepared statement twice, a simple query, an error. */
const NODE_CLIENT = (port: number, ssl: boolean) => `
const { Client } = require('pg');
(async () => {
  const c = new Client({ host: '127.0.0.1', port: ${port}, user: 'postgres', password: 'pw-tls', database: 'postgres',
    application_name: 'tls-node', ssl: ${ssl ? '{ rejectUnauthorized: false }' : 'false'} });
  await c.connect();
  const a = await c.query({ name: 'by_n', text: 'SELECT n FROM t WHERE n = $1', values: [2] });
  const b = await c.query({ name: 'by_n', text: 'SELECT n FROM t WHERE n = $1', values: [3] });
  const all = await c.query('SELECT n FROM t ORDER BY n');
  let err = '';
  try { await c.query('SELECT * FROM no_such_table'); } catch (e) { err = e.code; }
  await c.end();
  process.stdout.write([a.rows[0].n, b.rows[0].n, all.rows.length, err].join(','));
})().catch((e) => { process.stdout.write('failed: ' + e.message); process.exit(1); });
`;

/** Query texts and SQLSTATEs tshark decodes in a capture (Parse/Query texts; ErrorResponse codes). */
function tsharkPg(pcap: string, port: number, keylog?: string): { queries: string[]; codes: string[]; startups: number } {
  const args = ['-r', pcap, ...(keylog ? ['-o', `tls.keylog_file:${keylog}`] : []), '-d', `tcp.port==${port},pgsql`, '-Y', 'pgsql',
    '-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=\x1f', '-e', 'pgsql.type', '-e', 'pgsql.query', '-e', 'pgsql.code'];
  const out = execFileSync('tshark', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 1 << 26 });
  const r = { queries: [] as string[], codes: [] as string[], startups: 0 };
  for (const l of out.split('\n').filter((x) => x.trim())) {
    const [types, queries, codes] = l.split('\t');
    r.startups += types.split('\x1f').filter((x) => x === 'Startup message').length;
    if (queries) r.queries.push(...queries.split('\x1f'));
    if (codes) r.codes.push(...codes.split('\x1f'));
  }
  return r;
}

function brief(s: FlatSpan): string {
  const a = s.attributes;
  return [a['db.operation.name'], a['db.query.text'] ?? '', a['db.response.status_code'] ?? '', a['db.response.returned_rows'] ?? ''].join(' | ');
}

async function tlsCluster(): Promise<PgCluster> {
  const pki = makePki();
  const pg = await initPostgres('telegen-pg-tls-', { password: 'pw-tls', settings: ['ssl=on'] });
  installServerCert(pg, pki.cert, pki.key);
  fs.rmSync(pki.dir, { recursive: true, force: true });
  return pg;
}

test('PostgreSQL over TLS (sslmode=require): psql and node-postgres spans on both sides, as without TLS; tshark decrypts node\'s', { timeout: 240_000 }, async (t) => {
  if (!needs(t)) return;
  const pg = await tlsCluster();
  const agent = await startAgent();
  let cap: Capture | undefined;
  const pcap = path.join(pg.dir, 'pg-tls.pcapng');
  const keylog = path.join(pg.dir, 'node-keys.txt');
  try {
    await pg.start();
    const psql = (sql: string) => spawnSync('psql', [`host=127.0.0.1 port=${pg.port} user=postgres dbname=postgres sslmode=require application_name=tls-psql`,
      '-X', '-q', '-A', '-t', '-c', sql], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, PGPASSWORD: 'pw-tls' } });
    cap = await startLoCapture(pcap, `tcp port ${pg.port}`, pg.port);
    // The session is encrypted (the server says so), then DDL, rows, an error.
    assert.equal(psql('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()').stdout.trim(), 't');
    psql('CREATE TABLE t (n int)');
    psql('INSERT INTO t SELECT generate_series(1, 5000)');
    const big = psql('SELECT n FROM t ORDER BY n');
    assert.equal(big.stdout.trim().split('\n').length, 5000);
    assert.match(psql('SELECT * FROM nope').stderr, /relation "nope" does not exist/);
    const node = spawnSync(process.execPath, [`--tls-keylog=${keylog}`, '-e', NODE_CLIENT(pg.port, true)], { encoding: 'utf8', timeout: 30_000, cwd: repoRoot });
    assert.equal(node.stdout, '2,3,5000,42P01', node.stderr);
    await stopLoCapture(cap);
    cap = undefined;

    // The oracle: node's connection, decrypted.
    const oracle = tsharkPg(pcap, pg.port, keylog);
    assert.deepEqual(oracle.queries, ['SELECT n FROM t WHERE n = $1', 'SELECT n FROM t ORDER BY n', 'SELECT * FROM no_such_table'], 'tshark decrypted node\'s connection');
    assert.deepEqual(oracle.codes, ['42P01']);
    assert.equal(oracle.startups, 1);

    const spans = (kind: number) => agent.spans().filter((s) => s.kind === kind && s.attributes['db.system.name'] === 'postgresql' && s.attributes['server.port'] === pg.port)
      .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    const psqlWant = [
      'STARTUP |  |  | ', 'SELECT | SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid() |  | 1',
      'STARTUP |  |  | ', 'CREATE | CREATE TABLE t (n int) |  | ',
      'STARTUP |  |  | ', 'INSERT | INSERT INTO t SELECT generate_series(?, ?) |  | ',
      'STARTUP |  |  | ', 'SELECT | SELECT n FROM t ORDER BY n |  | 5000',
      'STARTUP |  |  | ', 'SELECT | SELECT * FROM nope | 42P01 | ',
    ];
    // node-postgres: what tshark decoded, each execution of the prepared statement a span.
    const nodeWant = ['STARTUP |  |  | ', 'SELECT | SELECT n FROM t WHERE n = $1 |  | 1', 'SELECT | SELECT n FROM t WHERE n = $1 |  | 1',
      'SELECT | SELECT n FROM t ORDER BY n |  | 5000', 'SELECT | SELECT * FROM no_such_table | 42P01 | '];
    const total = psqlWant.length + nodeWant.length;
    for (const kind of [CLIENT, SERVER]) {
      await waitFor(() => spans(kind).length >= total, 30_000).catch(() => undefined);
      const all = spans(kind);
      const dump = JSON.stringify(all.map((s) => [s.attributes['process.executable.name'], brief(s)]));
      // Nothing but these: no span of ciphertext, none of the cleartext SSLRequest.
      assert.equal(all.length, total, dump);
      const fromNode = all.filter((s) => s.attributes['telegen.db.application_name'] === 'tls-node');
      const fromPsql = all.filter((s) => s.attributes['telegen.db.application_name'] === 'tls-psql');
      assert.deepEqual(fromPsql.map(brief), psqlWant, dump);
      assert.deepEqual(fromNode.map(brief), nodeWant, dump);
      for (const s of all) {
        assert.equal(s.attributes['db.namespace'], 'postgres');
        assert.equal(s.attributes['telegen.db.user'], 'postgres');
        assert.equal(s.attributes['process.executable.name'], kind === CLIENT ? (fromNode.includes(s) ? 'node' : 'psql') : 'postgres');
        assert.equal(s.attributes['tls.established'], true, 'the span says its connection was encrypted');
      }
      // libpq binds SCRAM to the TLS channel; node-postgres does not by default.
      for (const s of fromPsql.filter((x) => x.name === 'STARTUP')) assert.equal(s.attributes['telegen.db.auth.method'], 'SCRAM-SHA-256-PLUS');
      assert.equal(fromNode[0].attributes['telegen.db.auth.method'], 'SCRAM-SHA-256');
      const failed = all.filter((s) => s.attributes['db.response.status_code'] === '42P01');
      for (const s of failed) { assert.equal(s.status.code, 2); assert.equal(s.attributes['error.type'], '42P01'); }
      if (kind === CLIENT) for (const s of fromNode) assert.equal(s.attributes['process.pid'], node.pid);
    }
  } finally {
    if (cap) await stopLoCapture(cap);
    await pg.stop();
    assert.equal(await agent.stop(), 0);
  }
});

test('PostgreSQL against ssl=off: sslmode=prefer goes on in cleartext after the N, both sides as tshark reads them; sslmode=require gives a failed STARTUP', { timeout: 180_000 }, async (t) => {
  if (!needs(t)) return;
  const pg = await initPostgres('telegen-pg-prefer-', { password: 'pw-tls' });
  const agent = await startAgent();
  let cap: Capture | undefined;
  const pcap = path.join(pg.dir, 'pg-prefer.pcapng');
  try {
    await pg.start();
    cap = await startLoCapture(pcap, `tcp port ${pg.port}`, pg.port);
    const r = spawnSync('psql', [`host=127.0.0.1 port=${pg.port} user=postgres dbname=postgres sslmode=prefer application_name=tls-psql`,
      '-X', '-q', '-A', '-t', '-c', 'CREATE TABLE t (n int)', '-c', 'INSERT INTO t VALUES (2), (3)', '-c', 'SHOW ssl'],
    { encoding: 'utf8', timeout: 30_000, env: { ...process.env, PGPASSWORD: 'pw-tls' } });
    assert.equal(r.stdout.trim(), 'off', r.stderr);
    const node = spawnSync(process.execPath, ['-e', NODE_CLIENT(pg.port, false)], { encoding: 'utf8', timeout: 30_000, cwd: repoRoot });
    assert.equal(node.stdout, '2,3,2,42P01', node.stderr);
    // Clients that require TLS give up after the 'N': psql sslmode=require, node-postgres ssl: true.
    const strict = spawnSync('psql', [`host=127.0.0.1 port=${pg.port} user=postgres dbname=postgres sslmode=require`, '-X', '-c', 'SELECT 1'], { encoding: 'utf8', timeout: 30_000 });
    assert.match(strict.stderr, /server does not support SSL, but SSL was required/);
    const nodeStrict = spawnSync(process.execPath, ['-e', NODE_CLIENT(pg.port, true)], { encoding: 'utf8', timeout: 30_000, cwd: repoRoot });
    assert.match(nodeStrict.stdout, /^failed: The server does not support SSL connections/);
    await stopLoCapture(cap);
    cap = undefined;
    const oracle = tsharkPg(pcap, pg.port);
    assert.deepEqual(oracle.queries, ['CREATE TABLE t (n int)', 'INSERT INTO t VALUES (2), (3)', 'SHOW ssl',
      'SELECT n FROM t WHERE n = $1', 'SELECT n FROM t ORDER BY n', 'SELECT * FROM no_such_table']);
    assert.deepEqual(oracle.codes, ['42P01']);
    assert.equal(oracle.startups, 2);

    const spans = (kind: number) => agent.spans().filter((s) => s.kind === kind && s.attributes['db.system.name'] === 'postgresql' && s.attributes['server.port'] === pg.port)
      .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    const want = [
      'STARTUP |  |  | ', 'CREATE | CREATE TABLE t (n int) |  | ', 'INSERT | INSERT INTO t VALUES (?), (?) |  | ', 'SHOW | SHOW ssl |  | 1',
      'STARTUP |  |  | ', 'SELECT | SELECT n FROM t WHERE n = $1 |  | 1', 'SELECT | SELECT n FROM t WHERE n = $1 |  | 1',
      'SELECT | SELECT n FROM t ORDER BY n |  | 2', 'SELECT | SELECT * FROM no_such_table | 42P01 | ',
      // the two that required TLS: a failed STARTUP each, from the SSLRequest to the 'N'
      'STARTUP |  |  | ', 'STARTUP |  |  | ',
    ];
    for (const kind of [CLIENT, SERVER]) {
      await waitFor(() => spans(kind).length >= want.length, 30_000).catch(() => undefined);
      const all = spans(kind);
      assert.deepEqual(all.map(brief), want, `kind ${kind}`);
      // psql's startup came after the refused SSLRequest on the same connection: its facts are known.
      const startup = all.find((s) => s.attributes['telegen.db.application_name'] === 'tls-psql' && s.name === 'STARTUP')!;
      assert.equal(startup.attributes['db.namespace'], 'postgres');
      assert.equal(startup.attributes['telegen.db.auth.method'], 'SCRAM-SHA-256');
      const refused = all.slice(-2);
      for (const s of refused) {
        assert.equal(s.status.code, 2);
        assert.equal(s.attributes['error.type'], 'ssl_refused');
        assert.equal(s.attributes['db.namespace'], undefined); // no StartupMessage: no database, no user
      }
      if (kind === CLIENT) assert.deepEqual(refused.map((s) => s.attributes['process.pid']), [strict.pid, nodeStrict.pid]);
      for (const s of all.slice(0, -2)) assert.equal(s.status.code ?? 0, s.attributes['db.response.status_code'] ? 2 : 0, brief(s));
      for (const s of all) assert.equal(s.attributes['tls.established'], undefined, 'cleartext: no TLS claimed');
    }
  } finally {
    if (cap) await stopLoCapture(cap);
    await pg.stop();
    assert.equal(await agent.stop(), 0);
  }
});
