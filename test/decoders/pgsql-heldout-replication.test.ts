// Held-out PostgreSQL 15 replication protocol (test/fixtures/pgsql-heldout-replication/: run.sh
// records pg_recvlogical against a wal_level=logical server on 127.0.0.1:33981): a walsender
// connection's commands (IDENTIFY_SYSTEM, CREATE_REPLICATION_SLOT, START_REPLICATION,
// DROP_REPLICATION_SLOT; PostgreSQL's "Streaming Replication Protocol" chapter) are named by their
// keyword, as SELECT or SHOW are: START_REPLICATION, whose answer is a CopyBothResponse and
// CopyData for as long as the client streams (tshark 4.0 calls the 'W' message "Unknown"), was a span
// named "postgresql" with no db.operation.name. Every query text and command tag tshark decodes is
// the decoder's. Both streams end with the client leaving (Terminate after SIGINT; FIN after
// SIGKILL) with no CommandComplete: the exchange is unanswered and, replayed, lasts until the close.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { repoRoot } from '../helpers/decoder';
import { decodeCapture, oracleFromTsv, decoded, compare } from './pgsql-util';
import { FLAG_NO_RESPONSE } from '../../decoders/abi/abi';

const dir = path.join(repoRoot, 'test', 'fixtures', 'pgsql-heldout-replication');
const pcap = path.join(dir, 'replication.pcap');

test('held-out pgsql replication protocol: agrees with tshark, walsender commands named', async () => {
  const h = await decodeCapture(pcap, [33981]);
  assert.equal(h.inst.counters.traps + h.inst.counters.invalid + h.inst.counters.badRecords, 0, h.inst.lastError);
  assert.deepEqual(compare(oracleFromTsv(fs.readFileSync(path.join(dir, 'replication.expected.tsv'), 'utf8')), decoded(h)), []);
  const ex = h.records.filter((r) => r.kind === 1 && r.attributes['db.operation.name'] !== 'STARTUP').sort((a, b) => Number(a.tsStart - b.tsStart));
  const brief = ex.map((r) => [r.attributes['db.operation.name'] ?? null, r.attributes['telegen.db.command_tag'] ?? null]);
  const ops = brief.map((b) => b[0]);
  for (const op of ['IDENTIFY_SYSTEM', 'CREATE_REPLICATION_SLOT', 'START_REPLICATION', 'DROP_REPLICATION_SLOT']) assert.ok(ops.includes(op), `${op}: ${JSON.stringify(brief)}`);
  assert.deepEqual(brief.filter((b) => String(b[0]).includes('REPLICATION')), [
    ['CREATE_REPLICATION_SLOT', 'CREATE_REPLICATION_SLOT'],
    ['START_REPLICATION', null],
    ['START_REPLICATION', null],
    ['DROP_REPLICATION_SLOT', 'DROP_REPLICATION_SLOT'],
  ]);
  for (const r of ex.filter((x) => x.attributes['db.operation.name'] === 'START_REPLICATION')) {
    assert.equal(r.flags, FLAG_NO_RESPONSE);
    assert.ok((r.attributes['telegen.db.copy.messages'] as number) > 10, JSON.stringify(r.attributes));
  }
  assert.ok(ex.every((r) => r.attributes['db.operation.name'] !== undefined), 'every exchange named');
});

test('held-out pgsql replication protocol replayed: START_REPLICATION spans last until the client left', () => {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'telegen'), 'replay', pcap], { encoding: 'utf8', env: { ...process.env, TELEGEN_LOG_LEVEL: 'warn' } });
  assert.equal(r.status, 0, r.stderr);
  const spans = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const repl = spans.filter((s) => s.name === 'START_REPLICATION');
  assert.equal(repl.length, 2, JSON.stringify(spans.map((s) => s.name)));
  // tshark: START_REPLICATION in frames 33 and 94; the client's FIN then the server's in frames
  // 78/79 and 149/150: each span runs from its query to the connection's close (was 0 s)
  assert.deepEqual(repl.map((s) => [s.startTimeUnixNano, s.endTimeUnixNano]), [
    ['1795934620262061000', '1795934622771906000'],
    ['1795934622804768000', '1795934625317341000'],
  ]);
  assert.ok(!spans.some((s) => s.name === 'postgresql'), 'no unnamed span');
});
