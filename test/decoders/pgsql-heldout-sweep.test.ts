// Held-out PostgreSQL 15 shapes the other captures lack (test/fixtures/pgsql-heldout-sweep/: run.sh
// records a real server on 127.0.0.1:33979 driven by psql, node-postgres and a raw client, see
// client.js and script.sql): every query text, command tag, SQLSTATE, message, statement and portal
// name tshark decodes is the decoder's (texts over 8 KiB are the first 8 KiB of tshark's, flagged
// truncated, as the README says), and what a user sees of each shape is asserted exactly: SCRAM-SHA-256
// after a refused SSLRequest, md5, trust; result sets and COPY streams over many segments; binary
// COPY in and out; node-postgres reading a named portal 7 rows at a time (Execute + Flush until
// CommandComplete); a raw client's Describe/Execute-with-limit/Close on two interleaved portals;
// a NOTIFY arriving on an idle connection; the empty query; a CancelRequest; no secret in any record.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { repoRoot } from '../helpers/decoder';
import { decodeCapture, oracleFromTsv, decoded, compare } from './pgsql-util';
import { FLAG_ERROR, FLAG_TRUNCATED } from '../../decoders/abi/abi';

const dir = path.join(repoRoot, 'test', 'fixtures', 'pgsql-heldout-sweep');
const QUERY_CAP = 8192;

test('held-out pgsql sweep agrees with tshark; auth methods, paged portals, big results, COPY, NOTIFY, cancel', async () => {
  const h = await decodeCapture(path.join(dir, 'sweep.pcap'), [33979]);
  assert.equal(h.inst.counters.traps + h.inst.counters.invalid + h.inst.counters.badRecords + h.inst.counters.gapResets, 0, h.inst.lastError);
  const want = oracleFromTsv(fs.readFileSync(path.join(dir, 'sweep.expected.tsv'), 'utf8'));
  const ex = h.records.filter((r) => r.kind === 1);
  // tshark shows whole texts; the decoder keeps 8 KiB of one and flags the record
  const long = want.queries.filter((q) => Buffer.byteLength(q) > QUERY_CAP);
  assert.equal(long.length, 4);
  const got = decoded(h);
  for (const q of long) {
    const cut = Buffer.from(q).subarray(0, QUERY_CAP).toString();
    const recs = ex.filter((r) => r.attributes['db.query.text'] === cut);
    assert.equal(recs.length, 1, q.slice(0, 60));
    assert.equal(recs[0].flags & FLAG_TRUNCATED, FLAG_TRUNCATED);
    assert.equal(recs[0].attributes['telegen.db.command_tag'], 'SELECT 1');
    got.queries[got.queries.indexOf(cut)] = q;
  }
  // the oracle leaves empty values out: the two empty queries (raw '' and pg's '') are the decoder's
  got.queries = got.queries.filter((q) => q !== '');
  assert.deepEqual(compare(want, got), []);

  const by = (text: string) => ex.filter((r) => r.attributes['db.query.text'] === text).map((r) => {
    const a = r.attributes;
    return [r.flags, a['telegen.db.portal.name'] ?? null, a['db.response.returned_rows'] ?? null, a['telegen.db.command_tag'] ?? a['db.response.status_code'] ?? null, a['telegen.db.portal.suspended'] ?? false];
  });
  // authentication: psql (SSLRequest refused, SCRAM), node-postgres and its listener (md5), raw (trust)
  const startups = ex.filter((r) => r.attributes['db.operation.name'] === 'STARTUP');
  assert.deepEqual(startups.map((r) => [r.attributes['telegen.db.user'], r.attributes['telegen.db.application_name'], r.attributes['telegen.db.auth.method'], r.flags]), [
    ['postgres', 'psql', 'SCRAM-SHA-256', 0], ['md5user', 'sweep-pg', 'md5', 0], ['md5user', 'sweep-listener', 'md5', 0], ['rawuser', 'sweep-raw', 'trust', 0]]);
  // many segments: 1500 rows of 100 bytes, binary COPY out (a header message then one per row), text COPY out, binary COPY in (psql sends the file as one CopyData)
  assert.deepEqual(by('SELECT id, v FROM big ORDER BY id;'), [[0, null, 1500, 'SELECT 1500', false]]);
  const copy = (text: string) => ex.filter((r) => r.attributes['db.query.text'] === text).map((r) => [r.attributes['telegen.db.command_tag'], r.attributes['telegen.db.copy.messages']]);
  assert.deepEqual(copy('COPY big TO STDOUT WITH (FORMAT binary);'), [['COPY 1500', 1501]]);
  assert.deepEqual(copy('COPY (SELECT id FROM big WHERE id <= 1000) TO STDOUT;'), [['COPY 1000', 1000]]);
  assert.deepEqual(copy('COPY  bin_in FROM STDIN WITH (FORMAT binary)'), [['COPY 300', 1]]);
  // node-postgres rows: 7 on a named portal: Execute(7) + Flush, PortalSuspended, … CommandComplete
  assert.deepEqual(by('SELECT g AS paged FROM generate_series(1, 20) g WHERE g > $1'), [
    [0, 'page_portal', 7, null, true], [0, 'page_portal', 7, null, true], [0, 'page_portal', 6, 'SELECT 6', false]]);
  // raw: one portal in two Sync batches, then two portals of one statement interleaved in one batch
  const rawRows = ex.filter((r) => r.attributes['db.query.text'] === 'SELECT g AS raw_paged FROM generate_series(1, 5) g');
  assert.ok(rawRows.every((r) => r.attributes['telegen.db.statement.name'] === 'st_paged'));
  assert.deepEqual(by('SELECT g AS raw_paged FROM generate_series(1, 5) g'), [
    [0, 'po_one', 2, null, true], [0, 'po_one', 3, 'SELECT 3', false],
    [0, 'po_a', 1, null, true], [0, 'po_b', 3, null, true], [0, 'po_a', 4, 'SELECT 4', false], [0, 'po_b', 2, 'SELECT 2', false]]);
  // empty queries: one exchange each, nothing named
  const empty = ex.filter((r) => r.attributes['db.query.text'] === '' || r.attributes['db.query.text'] === ';');
  assert.deepEqual(empty.map((r) => [r.flags, r.attributes['db.operation.name'] ?? null, r.attributes['telegen.db.command_tag'] ?? null]), [[0, null, null], [0, null, null], [0, null, null]]);
  // NOTIFY from one connection lands on the idle listener as an event between its exchanges
  const notes = h.records.filter((r) => r.kind === 2 && r.attributes['telegen.db.event.name'] === 'notification');
  assert.deepEqual(notes.map((r) => [r.attributes['telegen.db.notification.channel'], r.attributes['telegen.db.application_name']]), [['sweep_chan', 'sweep-listener']]);
  assert.deepEqual(by('SELECT 1 AS after_notification'), [[0, null, 1, 'SELECT 1', false]]);
  const notices = h.records.filter((r) => r.kind === 2 && r.attributes['telegen.db.event.name'] === 'notice');
  assert.deepEqual(notices.map((r) => r.attributes['error.message']), ['sweep notice 1']);
  // cancel
  assert.deepEqual(by('SELECT pg_sleep(5) AS cancelled'), [[FLAG_ERROR, null, null, '57014', false]]);
  assert.equal(ex.filter((r) => r.attributes['db.operation.name'] === 'CANCEL').length, 1);
  // never a password, a SCRAM nonce/proof, an md5 hash or a NOTIFY payload
  const all = JSON.stringify(h.records.map((r) => r.attributes)) + h.logs.join('\n');
  for (const secret of ['pw-md5', 'pw-postgres', ',r=', ',p=']) assert.ok(!all.includes(secret), secret);
  // the payload is in the NOTIFY statement's text (the host's redaction takes literals), not in what the listener got
  assert.ok(!JSON.stringify(h.records.filter((r) => r.attributes['telegen.db.application_name'] === 'sweep-listener').map((r) => r.attributes)).includes('secret-payload'));
  assert.ok(!/md5[0-9a-f]{32}/.test(all), 'an md5 hash');
});
