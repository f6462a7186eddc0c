// Held-out PostgreSQL 15 traffic (test/fixtures/pgsql-heldout/: run.sh records a real server on
// 127.0.0.1:33977 driven by psql with script.sql and by raw.js, a raw extended-protocol client):
// every query text, command tag, SQLSTATE and message tshark decodes is the decoder's, and the
// exchanges tshark does not show whole are asserted exactly. tshark differs in scope, not in
// value: an empty query ('Q' with "") has no pgsql.query value for tshark. A GSSENCRequest is not in the capture: this server
// accepts it ('G') and tshark 4.0 decodes the encrypted rest as plaintext.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { repoRoot } from '../helpers/decoder';
import { decodeCapture, oracleFromTsv, decoded, compare } from './pgsql-util';
import { FLAG_ERROR } from '../../decoders/abi/abi';

const dir = path.join(repoRoot, 'test', 'fixtures', 'pgsql-heldout');

test('held-out pgsql capture agrees with tshark and decodes each exchange', async () => {
  const h = await decodeCapture(path.join(dir, 'heldout.pcap'), [33977]);
  assert.equal(h.inst.counters.traps + h.inst.counters.invalid + h.inst.counters.badRecords, 0, h.inst.lastError);
  const want = oracleFromTsv(fs.readFileSync(path.join(dir, 'heldout.expected.tsv'), 'utf8'));
  const got = decoded(h);
  got.queries = got.queries.filter((q) => q !== '');
  assert.deepEqual(compare(want, got), []);
  assert.ok(want.queries.length >= 35 && want.tags.length >= 35, `${want.queries.length} queries, ${want.tags.length} tags`);

  const brief = h.records.filter((r) => r.kind === 1).map((r) => {
    const a = r.attributes;
    return [r.flags, a['db.operation.name'] ?? null, a['telegen.db.command_tag'] ?? null, a['telegen.db.portal.name'] ?? a['telegen.db.statement.name'] ?? null,
      a['db.response.returned_rows'] ?? null, a['db.response.status_code'] ?? null];
  });
  const at = (op: string) => brief.filter((b) => b[1] === op);
  // three Executes of one portal, two cut short by their row limit (PortalSuspended)
  assert.deepEqual(brief.filter((b) => b[3] === 'cur1'), [[0, 'SELECT', null, 'cur1', 2, null], [0, 'SELECT', null, 'cur1', 2, null], [0, 'SELECT', 'SELECT 1', 'cur1', 1, null]]);
  // a named statement: its Parse + Describe, then two Bind/Execute of it
  assert.deepEqual(brief.filter((b) => b[3] === 'st_upd'), [[0, 'PREPARE', null, 'st_upd', null, null], [0, 'SELECT', 'SELECT 1', 'st_upd', 1, null], [0, 'SELECT', 'SELECT 1', 'st_upd', 1, null]]);
  // the error inside a batch is one failed exchange; the Bind/Execute after it, sent before the
  // error came back, were skipped by the server: pipeline_aborted, no SQLSTATE
  const div = h.records.filter((r) => r.attributes['db.query.text'] === 'SELECT 1/0');
  assert.deepEqual(div.map((r) => [r.flags, r.attributes['db.response.status_code'] ?? r.attributes['error.type']]), [[FLAG_ERROR, '22012'], [FLAG_ERROR, 'pipeline_aborted']]);
  assert.equal(at('FUNCTION CALL').length, 1);
  assert.equal(h.records.filter((r) => r.attributes['db.query.text'] === '').length, 1, 'the empty query');
  // the connection whose SSLRequest was refused: startup and query decoded
  const after = h.records.find((r) => r.attributes['db.query.text'] === "SELECT 'after refusals'");
  assert.equal(after?.attributes['telegen.db.command_tag'], 'SELECT 1');
  assert.equal(at('STARTUP').length, 3);
});
