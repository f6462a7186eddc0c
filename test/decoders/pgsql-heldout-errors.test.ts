// Held-out PostgreSQL 15 error recovery (test/fixtures/pgsql-heldout-errors/: run.sh records a real
// server on 127.0.0.1:33978 driven by psql, node-postgres and a raw extended-protocol client, see
// client.js): every query text, command tag, SQLSTATE and message tshark decodes is the decoder's,
// and what happens after each error is asserted exactly: queries re-sent after their error are
// exchanges of their own, an Execute the server skipped (pipelined after a failing one before the
// same Sync) is an exchange with error.type pipeline_aborted and no SQLSTATE (the server sent
// none), a multi-statement Query failing in its 2nd statement is one failed exchange carrying the
// 1st statement's tag, COPY FROM STDIN failing (bad row, CopyFail) and a cancelled query carry
// their SQLSTATE, the CancelRequest is its own exchange.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { repoRoot } from '../helpers/decoder';
import { decodeCapture, oracleFromTsv, decoded, compare } from './pgsql-util';
import { FLAG_ERROR } from '../../decoders/abi/abi';

const dir = path.join(repoRoot, 'test', 'fixtures', 'pgsql-heldout-errors');

test('held-out pgsql error recovery agrees with tshark; retries, skipped Executes, failed COPY and cancel are exchanges', async () => {
  const h = await decodeCapture(path.join(dir, 'errors.pcap'), [33978]);
  assert.equal(h.inst.counters.traps + h.inst.counters.invalid + h.inst.counters.badRecords, 0, h.inst.lastError);
  const want = oracleFromTsv(fs.readFileSync(path.join(dir, 'errors.expected.tsv'), 'utf8'));
  assert.deepEqual(compare(want, decoded(h)), []);

  const ex = h.records.filter((r) => r.kind === 1);
  const by = (text: string) => ex.filter((r) => r.attributes['db.query.text'] === text).map((r) => {
    const a = r.attributes;
    return [r.flags, a['telegen.db.command_tag'] ?? a['db.response.status_code'] ?? a['error.type'] ?? null];
  });
  // re-sent after an error: node-postgres (unnamed statement, a named one kept parsed, a failed
  // Parse parsed again) and the raw client's identical retry
  assert.deepEqual(by('SELECT 10 / $1::int AS ratio'), [[FLAG_ERROR, '22012'], [0, 'SELECT 1']]);
  assert.deepEqual(by('INSERT INTO t_err (id, v) VALUES ($1, $2)'), [[0, 'INSERT 0 1'], [FLAG_ERROR, '23505'], [0, 'INSERT 0 1']]);
  assert.deepEqual(by('SELECT v FROM t_missing WHERE id = $1'), [[FLAG_ERROR, '42P01'], [FLAG_ERROR, '42P01'], [0, 'SELECT 0']]);
  assert.deepEqual(by('SELECT 1 / 0 AS retry_me'), [[FLAG_ERROR, '22012'], [FLAG_ERROR, '22012']]);
  assert.deepEqual(by('SELECT 2 AS after_retry'), [[0, 'SELECT 1']]);
  // Execute + Flush, the error, then Sync: the next batch is decoded
  assert.deepEqual(by('SELECT 1 / 0 AS flushed'), [[FLAG_ERROR, '22012']]);
  assert.deepEqual(by('SELECT 3 AS after_flush'), [[0, 'SELECT 1']]);
  // three Executes before one Sync, the 2nd fails: the 3rd was skipped by the server
  assert.deepEqual(by('SELECT 4 AS pipe_one'), [[0, 'SELECT 1']]);
  assert.deepEqual(by('SELECT 1 / 0 AS pipe_two'), [[FLAG_ERROR, '22012']]);
  assert.deepEqual(by('SELECT 6 AS pipe_three'), [[FLAG_ERROR, 'pipeline_aborted']]);
  // three Sync batches pipelined, the 2nd fails: the 3rd runs
  assert.deepEqual(['SELECT 7 AS sync_one', 'SELECT 1 / 0 AS sync_two', 'SELECT 9 AS sync_three'].map(by), [[[0, 'SELECT 1']], [[FLAG_ERROR, '22012']], [[0, 'SELECT 1']]]);
  // a prepare that fails, then succeeds
  assert.deepEqual(by('SELEC 1'), [[FLAG_ERROR, '42601']]);
  assert.deepEqual(ex.filter((r) => r.attributes['db.query.text'] === 'SELECT 1').map((r) => [r.flags, r.attributes['db.operation.name']]), [[0, 'PREPARE']]);
  // multi-statement Query, 2nd statement fails: one exchange, the 1st statement's tag, the error
  const multi = ex.filter((r) => String(r.attributes['db.query.text']).startsWith("INSERT INTO t_err VALUES (10, 'x');"));
  assert.deepEqual(multi.map((r) => [r.flags, r.attributes['telegen.db.command_tag'], r.attributes['db.response.status_code']]), [[FLAG_ERROR, 'INSERT 0 1', '23505']]);
  // COPY FROM STDIN: a row the server rejects (psql, raw), pg's CopyFail, the raw client's CopyFail
  const copies = ex.filter((r) => String(r.attributes['db.query.text']).startsWith('COPY '));
  assert.deepEqual(copies.map((r) => [r.flags, r.attributes['db.response.status_code']]), [[FLAG_ERROR, '22P02'], [FLAG_ERROR, '57014'], [FLAG_ERROR, '22P02'], [FLAG_ERROR, '57014']]);
  assert.equal(copies[2].attributes['telegen.db.copy.messages'], 2);
  assert.equal(by('SELECT count(*) AS copied FROM t_copy').length, 1);
  // the cancelled query and its CancelRequest (another connection)
  assert.deepEqual(by('SELECT pg_sleep(5)'), [[FLAG_ERROR, '57014']]);
  const cancel = ex.filter((r) => r.attributes['db.operation.name'] === 'CANCEL');
  assert.equal(cancel.length, 1);
  assert.equal(typeof cancel[0].attributes['telegen.db.backend.pid'], 'number');
  assert.deepEqual(by('SELECT 1 AS after_cancel'), [[0, 'SELECT 1']]);
  // psql with sslmode=prefer: SSLRequest refused, startup and query on the same connection
  assert.deepEqual(by('SELECT 1 AS via_prefer'), [[0, 'SELECT 1']]);
  assert.equal(ex.filter((r) => r.attributes['db.operation.name'] === 'STARTUP').length, 4);
});
