// A capture taken with a small snaplen (tcpdump -s 200): a segment keeps its first bytes and the
// replay reports the rest as lost. tshark decodes what a cut segment holds. The pgsql decoder
// dropped a message whose end was lost, held bytes and all: in the held-out sweep capture
// (test/fixtures/pgsql-heldout-sweep, real psql / node-postgres / PG 15) cut by editcap -s 200,
// the ErrorResponse of the cancelled pg_sleep (206 bytes, 6 cut) was lost and its statement
// reported unknown with no SQLSTATE, where tshark reads 57014 "canceling statement due to user
// request". Now the start the host held is decoded as the message cut short and the rest of it
// skipped as it arrives. Needs tshark and editcap.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync, spawnSync } from 'child_process';
import { repoRoot } from '../helpers/decoder';
import { oracleFromCapture } from './pgsql-util';

const whole = path.join(repoRoot, 'test', 'fixtures', 'pgsql-heldout-sweep', 'sweep.pcap');
const have = (bin: string) => spawnSync(bin, ['-v'], { stdio: 'ignore' }).status === 0;

test('pgsql: a capture cut to 200 bytes a packet keeps every SQLSTATE and error message tshark reads', { skip: !(have('tshark') && have('editcap')) && 'needs tshark and editcap' }, () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-pgsql-snap-'));
  try {
    const cut = path.join(tmp, 'cut.pcap');
    execFileSync('editcap', ['-F', 'pcap', '-s', '200', whole, cut], { stdio: 'ignore' });
    const want = oracleFromCapture(cut, ['tcp.port==33979,pgsql']);
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'telegen'), 'replay', cut], { encoding: 'utf8', maxBuffer: 1 << 26, env: { ...process.env, TELEGEN_LOG_LEVEL: 'warn' } });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, / gaps/, 'the replay reports the cut bytes as lost');
    const spans = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l).attributes as Record<string, unknown>);
    // notices are log records, not spans: compare the errors (severity ERROR) tshark reads
    const codes = spans.map((a) => a['db.response.status_code']).filter((c): c is string => typeof c === 'string');
    const wantErrors = want.codes.filter((c) => !c.startsWith('00') && !c.startsWith('01'));
    assert.ok(wantErrors.length >= 1, `tshark reads an error from the cut capture: ${want.codes}`);
    for (const c of wantErrors) assert.ok(codes.includes(c), `SQLSTATE ${c} (tshark) not in a span: ${codes}`);
    const cancelled = spans.find((a) => a['db.query.text'] === 'SELECT pg_sleep(?) AS cancelled');
    assert.ok(cancelled, 'the cancelled statement has its span');
    assert.deepEqual([cancelled['db.response.status_code'], cancelled['error.message']], ['57014', 'canceling statement due to user request']);
    assert.ok(want.messages.includes('canceling statement due to user request'));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
