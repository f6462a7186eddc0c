// A demanding user's PostgreSQL check: node-postgres sending a 1000-row parameterised INSERT as
// one pipeline (Parse once, 1000 × Bind/Execute, one Sync — what libpq's pipeline mode and JDBC's
// executeBatch send too), against PostgreSQL 15 on 127.0.0.1, traced by the running agent and
// captured on lo for tshark. Each row is one span, answered, as tshark lists it: the decoder
// queued at most 128 operations per stream (Bind and Execute are two), so all but the last 64 rows
// on the client (and ~800 on the server) were "unanswered", FLAG_NO_RESPONSE|FLAG_UNKNOWN.
// A second pipeline failing on its first row: one 23505 error and 999 pipeline_aborted spans —
// also on the client after its reads of the first batch's answers were cut at capture_max (its
// ParseComplete went unmatched: the 23505 landed on a row of the first batch, its rows unanswered).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { requireBpf, startAgent, waitFor, FlatSpan } from '../helpers/agent';
import { initPostgres, PG_BIN } from '../helpers/postgres';
import { startLoCapture, stopLoCapture } from '../helpers/capture';
import { serialize } from 'pg-protocol';
import { repoRoot, loadDecoder } from '../helpers/decoder';
import { be, DIR_REQ, DIR_RESP } from '../decoders/pgsql-util';
import { FLAG_ERROR, FLAG_NO_RESPONSE, FLAG_UNKNOWN } from '../../decoders/abi/abi';

const SERVER = 2;
const CLIENT = 3;
const ROWS = 1000;

// The pipeline through node-postgres' own connection (its query queue waits for each answer, so
// the batch is written with the connection's message methods, as a pipelining client does).
const CLIENT_JS = `
const { Client } = require('pg');
(async () => {
  const c = new Client({ host: '127.0.0.1', port: Number(process.argv[1]), user: 'postgres', database: 'postgres' });
  await c.connect();
  await c.query('CREATE TABLE qa_pipe (id int PRIMARY KEY, v text)');
  const conn = c.connection;
  for (const ev of ['parseComplete', 'bindComplete', 'commandComplete', 'readyForQuery', 'errorMessage', 'noData']) conn.removeAllListeners(ev);
  const out = [];
  for (const name of ['ins_ok', 'ins_dup']) {
    let completes = 0; const errors = [];
    const done = new Promise((res) => {
      conn.on('commandComplete', () => completes++);
      conn.on('errorMessage', (e) => errors.push(e.code));
      conn.once('readyForQuery', res);
    });
    conn.parse({ name, text: 'INSERT INTO qa_pipe (id, v) VALUES ($1, $2)', types: [] });
    for (let i = 0; i < ${ROWS}; i++) { conn.bind({ statement: name, values: [String(i), 'v' + i] }); conn.execute({ rows: 0 }); }
    conn.sync();
    await done;
    conn.removeAllListeners('commandComplete'); conn.removeAllListeners('errorMessage');
    out.push({ completes, errors });
  }
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
`;

function summary(spans: FlatSpan[]): Record<string, number> {
  const m: Record<string, number> = {};
  for (const s of spans) {
    const a = s.attributes;
    const k = a['error.type'] ? `error ${a['error.type']}${a['db.response.status_code'] ? ' ' + a['db.response.status_code'] : ''}`
      : a['telegen.no_response'] ? 'unanswered' : a['db.response.returned_rows'] === undefined ? 'ok' : `ok rows=${a['db.response.returned_rows']}`;
    m[k] = (m[k] ?? 0) + 1;
  }
  return m;
}

test(`live PostgreSQL: a ${ROWS}-row pipelined INSERT is ${ROWS} answered spans, a failing one 1 error and ${ROWS - 1} aborted, as tshark lists them`, { timeout: 240_000 }, async (t) => {
  if (!requireBpf(t)) return;
  if (!fs.existsSync(path.join(PG_BIN, 'postgres')) || !fs.existsSync('/usr/bin/tshark')) { t.skip('postgresql-15 and tshark needed'); return; }
  const pg = await initPostgres('telegen-qa-pipe-');
  const port = pg.port;
  // The shared test machine is often contended: the contention budget would only delay the spans.
  const agent = await startAgent({ env: { TELEGEN_CONTENDED_CPU_PERCENT: '0' } });
  const pcap = path.join(pg.dir, 'pipe.pcapng');
  try {
    await pg.start();
    const cap = await startLoCapture(pcap, `tcp port ${port}`, port);
    let out: string;
    try {
      out = execFileSync(process.execPath, ['-e', CLIENT_JS, String(port)], { encoding: 'utf8', timeout: 60_000, cwd: repoRoot });
    } finally { await stopLoCapture(cap); }
    // What the client was told: 1000 rows inserted; then the duplicate fails the whole second batch.
    assert.deepEqual(JSON.parse(out), [{ completes: ROWS, errors: [] }, { completes: 0, errors: ['23505'] }]);

    // tshark, the independent oracle: 1000 CommandCompletes "INSERT 0 1", one ErrorResponse 23505.
    const fields = execFileSync('tshark', ['-r', pcap, '-d', `tcp.port==${port},pgsql`, '-Y', 'pgsql', '-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=|',
      '-e', 'pgsql.tag', '-e', 'pgsql.code'], { encoding: 'utf8', maxBuffer: 64 << 20 });
    const tags = fields.split('\n').flatMap((l) => l.split('\t')[0].split('|')).filter((x) => x === 'INSERT 0 1').length;
    const codes = fields.split('\n').flatMap((l) => (l.split('\t')[1] ?? '').split('|')).filter((x) => x === '23505').length;
    assert.deepEqual([tags, codes], [ROWS, 1]);

    const inserts = (kind: number) => agent.spans().filter((s) => s.kind === kind && s.attributes['server.port'] === port && s.attributes['db.collection.name'] === 'qa_pipe'
      && s.attributes['db.operation.name'] === 'INSERT');
    await waitFor(() => [CLIENT, SERVER].every((k) => inserts(k).length >= 2 * ROWS), 60_000).catch(() => undefined);
    // postgres reads and writes 8 KiB at a time: every byte reaches the agent, every row is known.
    const server = inserts(SERVER);
    assert.deepEqual(summary(server), { ok: tags, 'error 23505 23505': codes, 'error pipeline_aborted': ROWS - 1 }, 'postgres spans');
    // node reads 64 KiB at a time, each read captured to its first 16 KiB (tracers.socket.capture_max):
    // the first batch's last answers can be lost. Those rows are unanswered and say so
    // (telegen.unknown); the second batch, after the loss, is exact all the same.
    const client = inserts(CLIENT);
    const byStmt = (name: string) => client.filter((s) => s.attributes['telegen.db.statement.name'] === name);
    assert.deepEqual(summary(byStmt('ins_dup')), { 'error 23505 23505': 1, 'error pipeline_aborted': ROWS - 1 }, 'node spans of the failing pipeline');
    const ok = summary(byStmt('ins_ok'));
    assert.deepEqual(Object.keys(ok).filter((k) => k !== 'ok' && k !== 'unanswered'), [], `node spans of the first pipeline: ${JSON.stringify(ok)}`);
    assert.equal((ok.ok ?? 0) + (ok.unanswered ?? 0), ROWS, JSON.stringify(ok));
    for (const s of byStmt('ins_ok')) if (s.attributes['telegen.no_response']) assert.equal(s.attributes['telegen.unknown'], true);
    for (const [spans, exe] of [[client, 'node'], [server, 'postgres']] as const) {
      for (const s of spans) {
        assert.equal(s.attributes['process.executable.name'], exe);
        assert.equal(s.attributes['db.query.text'], 'INSERT INTO qa_pipe (id, v) VALUES ($1, $2)');
        assert.equal(s.attributes['db.system.name'], 'postgresql');
        assert.equal(s.attributes['db.namespace'], 'postgres');
        assert.equal(s.attributes['server.address'], '127.0.0.1');
        assert.equal(s.attributes['server.port'], port);
      }
    }
  } finally {
    await pg.stop();
    assert.equal(await agent.stop(), 0);
  }
});

// The client side of the same traffic, byte for byte, with the read that would hold the first
// batch's last answers and its ReadyForQuery lost (a read cut at capture_max): the second batch's
// ParseComplete went unmatched (no Parse before the old batch's Executes), its 23505 landed on an
// old row and its rows stayed pending until the close.
test('pgsql: after the lost end of a pipelined batch, the next batch gets its own answers', () => {
  const h = loadDecoder('pgsql');
  const s = 1;
  let ts = 1000n;
  const t = () => (ts += 1000n);
  h.inst.feed(s, DIR_REQ, serialize.startup({ user: 'postgres', database: 'postgres' }), t());
  h.inst.feed(s, DIR_RESP, Buffer.concat([be.authOk(), be.keyData(42, 7), be.ready()]), t());
  const batch = (name: string) => Buffer.concat([serialize.parse({ name, text: 'INSERT INTO qa_pipe (id, v) VALUES ($1, $2)', types: [] }),
    ...Array.from({ length: ROWS }, (_, i) => Buffer.concat([serialize.bind({ statement: name, values: [String(i), 'v'] }), serialize.execute({})])), serialize.sync()]);
  h.inst.feed(s, DIR_REQ, batch('ins_ok'), t());
  const answered = 700;
  h.inst.feed(s, DIR_RESP, Buffer.concat([be.parseComplete(), ...Array.from({ length: answered }, () => Buffer.concat([be.bindComplete(), be.complete('INSERT 0 1')]))]), t());
  // The rest: 300 × (BindComplete, CommandComplete) and ReadyForQuery, lost.
  assert.equal(h.inst.gap(s, DIR_RESP, (ROWS - answered) * (5 + 16) + 6), 'ok');
  h.inst.feed(s, DIR_REQ, batch('ins_dup'), t());
  h.inst.feed(s, DIR_RESP, Buffer.concat([be.parseComplete(), be.bindComplete(), be.error('ERROR', '23505', 'duplicate key value violates unique constraint "qa_pipe_pkey"'), be.ready()]), t());
  h.inst.closeStream(s);
  const rows = h.records.filter((r) => r.attributes['db.operation.name'] === 'INSERT');
  const count = (stmt: string) => {
    const m: Record<string, number> = {};
    for (const r of rows.filter((x) => x.attributes['telegen.db.statement.name'] === stmt)) {
      const k = `${r.attributes['error.type'] ?? 'ok'} flags=${r.flags & (FLAG_NO_RESPONSE | FLAG_UNKNOWN | FLAG_ERROR)}`;
      m[k] = (m[k] ?? 0) + 1;
    }
    return m;
  };
  assert.deepEqual(count('ins_ok'), { 'ok flags=0': answered, [`ok flags=${FLAG_NO_RESPONSE | FLAG_UNKNOWN}`]: ROWS - answered });
  assert.deepEqual(count('ins_dup'), { [`23505 flags=${FLAG_ERROR}`]: 1, [`pipeline_aborted flags=${FLAG_ERROR}`]: ROWS - 1 });
});
