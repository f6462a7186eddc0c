// Every capture in the shared corpus, reassembled by us and by tshark (the independent oracle):
// per TCP stream both directions equal `follow,tcp,raw` (up to a hole tshark cannot fill), every
// byte we deliver equals the captured byte at its sequence number, no captured byte is reported
// as a gap; per UDP conversation the same datagrams in the same order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { compareWithTshark } from './compare';
import { corpusDir, haveTshark, listCaptures } from './oracle';

const pcapDir = path.join(corpusDir, 'pcap');
const files = fs.existsSync(pcapDir) ? listCaptures(pcapDir) : [];
const ci = process.env.CI === 'true';
const skip = !haveTshark() ? 'tshark not installed' : files.length === 0 ? `no corpus at ${pcapDir}` : false;

test('corpus present and tshark available', { skip: ci ? false : skip }, () => {
  assert.ok(haveTshark(), 'tshark must be installed (apt-get install tshark)');
  assert.ok(files.length > 0, `no captures under ${pcapDir} (set TELEGEN_CORPUS)`);
});

let totals = { files: 0, tcp: 0, udp: 0, bytes: 0 };
for (const file of files) {
  const name = path.relative(pcapDir, file);
  test(`corpus ${name} agrees with tshark`, { skip }, async () => {
    const r = await compareWithTshark(file);
    assert.deepEqual(r.problems, [], `${name}: ${r.problems.join('; ')}`);
    assert.ok(r.tcpCompared + r.udpCompared > 0, `${name}: nothing compared`);
    assert.equal(r.segmentChecks, 2 * r.tcpCompared);
    // Nothing in the corpus is malformed: no record damage, no unknown link types.
    for (const reason of ['truncated-record', 'corrupt-record', 'corrupt-block', 'unsupported-link-type', 'unknown-interface']) {
      assert.equal(r.stats.skipped[reason], undefined, `${name}: ${reason}`);
    }
    // Every connection was opened and closed exactly once.
    for (const c of r.sink.conns) assert.equal(c.closes, 1, `${name}: conn ${c.conn.id} closed ${c.closes} times`);
    totals = { files: totals.files + 1, tcp: totals.tcp + r.tcpCompared, udp: totals.udp + r.udpCompared, bytes: totals.bytes + r.bytesCompared };
  });
}

test('corpus summary', { skip }, (t) => {
  t.diagnostic(`compared ${totals.files} captures: ${totals.tcp} TCP streams, ${totals.udp} UDP conversations, ${totals.bytes} bytes`);
  assert.equal(totals.files, files.length);
});
