// psql with sslmode=verify-full and the wrong root CA against PostgreSQL 15 with ssl=on: libpq's
// SSL_connect fails on the certificate, the backend's on the alert that follows. The SSLRequest
// before the handshake bound the connection to the PostgreSQL decoder, so both failure spans say
// db.system.name postgresql (bpf/tls.md, Handshakes). Before, such a connection left no span.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { requireBpf, startAgent, waitFor, FlatSpan } from '../helpers/agent';
import { initPostgres, installServerCert, PG_BIN } from '../helpers/postgres';
import { makePki, TLS_TEST_CONFIG } from './tls-helpers';

const SERVER = 2;
const CLIENT = 3;
const ERROR = 2;

test('psql sslmode=verify-full with the wrong CA: failure spans of psql and the backend, db.system.name postgresql', { timeout: 180_000 }, async (t) => {
  if (!requireBpf(t)) return;
  if (!fs.existsSync(path.join(PG_BIN, 'postgres'))) {
    if (process.env.CI === 'true') throw new Error('needs postgresql-15');
    t.skip('needs postgresql-15');
    return;
  }
  const pki = makePki();
  const other = makePki();
  const pg = await initPostgres('telegen-pg-hs-', { password: 'pw-hs', settings: ['ssl=on'] });
  installServerCert(pg, pki.cert, pki.key);
  const cfg = path.join(pki.dir, 'agent.yaml');
  fs.writeFileSync(cfg, TLS_TEST_CONFIG);
  const agent = await startAgent({ config: cfg });
  try {
    await pg.start();
    const conn = (root: string) => `host=localhost port=${pg.port} user=postgres dbname=postgres sslmode=verify-full sslrootcert=${root}`;
    const bad = spawnSync('psql', [conn(other.ca), '-X', '-c', 'SELECT 1'], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, PGPASSWORD: 'pw-hs' } });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /certificate verify failed/);
    // The right CA: a session as usual, no failure.
    const good = spawnSync('psql', [conn(pki.ca), '-X', '-A', '-t', '-c', 'SELECT 41 + 1'], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, PGPASSWORD: 'pw-hs' } });
    assert.equal(good.stdout.trim(), '42', good.stderr);

    const onPort = () => agent.spans().filter((s) => s.attributes['server.port'] === pg.port);
    const failures = () => onPort().filter((s) => s.attributes['error.type'] === 'tls.handshake_failed');
    await waitFor(() => failures().length >= 2 && onPort().some((s) => s.attributes['db.query.text'] === 'SELECT ? + ?' && s.kind === SERVER), 30_000).catch(() => undefined);
    assert.equal(await agent.stop(), 0);
    const dump = onPort().map((s) => `${s.kind} ${s.name} ${s.attributes['process.executable.name']} ${s.status?.message ?? ''}`).join('\n');
    const f = failures();
    assert.equal(f.length, 2, dump);
    const client = f.find((s) => s.kind === CLIENT) as FlatSpan;
    const server = f.find((s) => s.kind === SERVER) as FlatSpan;
    assert.ok(client && server, dump);
    assert.equal(client.attributes['process.pid'], bad.pid);
    assert.equal(client.status?.code, ERROR);
    assert.match(String(client.status?.message), /certificate verify failed: unable to get local issuer certificate/);
    assert.equal(server.attributes['process.executable.name'], 'postgres');
    assert.match(String(server.status?.message), /alert unknown ca received/);
    for (const s of f) {
      assert.equal(s.attributes['db.system.name'], 'postgresql', dump);
      assert.equal(s.attributes['tls.established'], false);
      assert.equal(s.attributes['network.transport'], 'tcp');
    }
    // The session with the right CA: its query, and no failure.
    assert.ok(onPort().some((s) => s.kind === CLIENT && s.attributes['db.query.text'] === 'SELECT ? + ?'), dump);
  } finally {
    await pg.stop();
    if (agent.proc.exitCode === null) await agent.stop();
    fs.rmSync(pki.dir, { recursive: true, force: true });
    fs.rmSync(other.dir, { recursive: true, force: true });
  }
});
