// Corpus agreement: every capture of ../shared/corpus/pcap/pgsql replayed into the decoder; every
// query text, command tag, SQLSTATE and error/notice message tshark decodes (the *.expected.tsv
// next to the capture) must be what the decoder reports, and nothing more.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { corpusDir, repoRoot } from '../helpers/decoder';
import { decodeCapture, oracleFromTsv, decoded, compare } from './pgsql-util';

const dir = path.join(corpusDir, 'pcap', 'pgsql');
const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => /\.pcapn?g?$/.test(f)).sort() : [];

test('pgsql corpus is present', { skip: files.length === 0 && 'no corpus' }, () => {
  assert.ok(files.length >= 20, `found ${files.length} pgsql captures`);
});

for (const f of files) {
  const tsv = path.join(dir, f.replace(/\.pcapn?g?$/, '.expected.tsv'));
  test(`pgsql corpus agrees with tshark: ${f}`, { skip: !fs.existsSync(tsv) && 'no expected.tsv' }, async () => {
    const h = await decodeCapture(path.join(dir, f));
    assert.equal(h.inst.counters.traps, 0, h.inst.lastError);
    assert.equal(h.inst.counters.badRecords, 0);
    const want = oracleFromTsv(fs.readFileSync(tsv, 'utf8'));
    const got = decoded(h);
    assert.deepEqual(compare(want, got), []);
    // Sanity: the oracle had something to say about every capture except the TLS one.
    if (!/TLS/.test(f)) assert.ok(h.records.length > 0, 'no records');
  });
}

// Our own recording from a real PostgreSQL 15 (decoders/pgsql/testdata/README.md).
const own = path.join(repoRoot, 'decoders', 'pgsql', 'testdata', 'pg15-live.pcap');
test('pgsql testdata pg15-live.pcap agrees with tshark', async () => {
  const h = await decodeCapture(own, [33961]);
  assert.equal(h.inst.counters.traps + h.inst.counters.invalid + h.inst.counters.overflows, 0);
  const want = oracleFromTsv(fs.readFileSync(own.replace(/\.pcap$/, '.expected.tsv'), 'utf8'));
  assert.ok(want.queries.length > 300 && want.tags.length > 300, `${want.queries.length} queries, ${want.tags.length} tags`);
  assert.deepEqual(compare(want, decoded(h)), []);
  assert.ok(!JSON.stringify(h.records.map((r) => r.attributes)).includes('Live-T3st-Pa55word'));
  // The pipeline script: 5 rounds of three Executes before one Sync, each its own exchange.
  const piped = h.records.filter((r) => r.attributes['db.query.text'] === 'UPDATE pgbench_branches SET bbalance = bbalance WHERE bid = 1;');
  assert.deepEqual(piped.map((r) => [r.flags, r.attributes['telegen.db.command_tag'], r.attributes['db.operation.name'], r.attributes['db.collection.name']]), Array(5).fill([0, 'UPDATE 1', 'UPDATE', 'pgbench_branches']));
});

test('pgsql corpus: SSLRequest answered S stops decoding (TLS capture)', { skip: !fs.existsSync(path.join(dir, 'zeek__psql-aws-ssl-require-TLS.pcap')) && 'no capture' }, async () => {
  const h = await decodeCapture(path.join(dir, 'zeek__psql-aws-ssl-require-TLS.pcap'));
  assert.deepEqual(h.records.map((r) => [r.kind, r.attributes['telegen.protocol.next']]), [[3, 'tls']]);
});

test('pgsql corpus: exact spans of zeek psql-insert-fail-drop-fail', { skip: !fs.existsSync(path.join(dir, 'zeek__psql-insert-fail-drop-fail.pcap')) && 'no capture' }, async () => {
  const h = await decodeCapture(path.join(dir, 'zeek__psql-insert-fail-drop-fail.pcap'));
  const brief = h.records.map((r) => ({ kind: r.kind, flags: r.flags, op: r.attributes['db.operation.name'], q: r.attributes['db.query.text'], tag: r.attributes['telegen.db.command_tag'], code: r.attributes['db.response.status_code'] }));
  assert.deepEqual(brief, [
    { kind: 1, flags: 0, op: 'STARTUP', q: undefined, tag: undefined, code: undefined },
    { kind: 2, flags: 0, op: undefined, q: undefined, tag: undefined, code: '00000' },
    { kind: 1, flags: 0, op: 'DROP', q: 'DROP TABLE IF EXISTS t;', tag: 'DROP TABLE', code: undefined },
    { kind: 1, flags: 0, op: 'CREATE', q: 'CREATE TABLE IF NOT EXISTS t (i int, s varchar, t time);', tag: 'CREATE TABLE', code: undefined },
    { kind: 1, flags: 1, op: 'INSERT', q: 'INSERT INTO t VALUES (now(), now(), now());', tag: undefined, code: '42804' },
    { kind: 1, flags: 0, op: 'DROP', q: 'DROP TABLE t;', tag: 'DROP TABLE', code: undefined },
    { kind: 1, flags: 1, op: 'DROP', q: 'DROP TABLE t;', tag: undefined, code: '42P01' },
  ]);
  assert.equal(h.records[0].attributes['telegen.db.auth.method'], 'SCRAM-SHA-256');
  assert.equal(h.records[0].attributes['db.namespace'], 'postgres');
});

test('pgsql corpus: mid-stream capture decodes with NO_REQUEST only where the request was missed', { skip: !fs.existsSync(path.join(dir, 'deepflow__pgsql-all-midstream.pcap')) && 'no capture' }, async () => {
  const h = await decodeCapture(path.join(dir, 'deepflow__pgsql-all-midstream.pcap'));
  const ex = h.records.filter((r) => r.kind === 1);
  assert.equal(ex.length, 32); // one per Execute: tshark counts 32 Execute messages
  // Binds to statements prepared before the capture began: no SQL text, flagged unknown (16).
  const unknown = ex.filter((r) => r.flags & 16);
  assert.ok(unknown.length > 0 && unknown.every((r) => r.attributes['db.query.text'] === undefined && typeof r.attributes['telegen.db.statement.name'] === 'string'));
  assert.ok(ex.every((r) => typeof r.attributes['telegen.db.command_tag'] === 'string'));
});

test('pgsql testdata pg15-live.pcap: random re-chunking of every stream gives the same records', async () => {
  const { captureChunks, fresh } = await import('./pgsql-util');
  const { chunks, closes } = await captureChunks(own, [33961]);
  const run = (split: (b: Buffer) => Buffer[]) => {
    const h = fresh();
    for (const c of chunks) for (const piece of split(c.bytes)) h.inst.feed(c.stream, c.dir, piece, c.ts);
    for (const id of closes) h.inst.closeStream(id);
    return JSON.stringify(h.records.map((r) => [r.kind, r.flags, r.stream, r.attributes]));
  };
  const whole = run((b) => [b]);
  let seed = 7;
  const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return 1 + (seed % n); };
  for (const maxPiece of [1, 7, 64]) {
    const got = run((b) => { const out: Buffer[] = []; for (let i = 0; i < b.length;) { const n = rnd(maxPiece); out.push(b.subarray(i, i + n)); i += n; } return out; });
    assert.equal(got, whole, `pieces up to ${maxPiece} bytes`);
  }
});
