// Corpus agreement: every capture in ../shared/corpus/pcap/kafka and decoders/kafka/testdata is
// replayed (host/src/replay) into the Kafka decoder; every message tshark decodes (the
// `*.expected.tsv` beside each capture) must be decoded with the same api key, version,
// correlation id, client id, topics, partition and error code — and no message more.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { corpusDir, repoRoot } from '../helpers/decoder';
import { parseTsv, replayKafka, agree } from './kafka-oracle';

execFileSync(process.execPath, [path.join(repoRoot, 'decoders', 'build.js'), 'kafka'], { stdio: 'ignore' });

function captures(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((f) => /\.pcap(ng)?$/.test(f)).sort().map((f) => path.join(dir, f));
}

const shared = captures(path.join(corpusDir, 'pcap', 'kafka'));
const own = captures(path.join(repoRoot, 'decoders', 'kafka', 'testdata'));

test('the shared Kafka corpus is present', { skip: shared.length === 0 && 'no ../shared/corpus' }, () => {
  assert.ok(shared.length >= 12, `found ${shared.length} captures`);
});

for (const file of [...shared, ...own]) {
  const tsv = file.replace(/\.pcap(ng)?$/, '.expected.tsv');
  test(`agrees with tshark: ${path.basename(file)}`, { skip: !fs.existsSync(tsv) && 'no expected.tsv' }, async () => {
    const oracle = parseTsv(fs.readFileSync(tsv, 'utf8'));
    const rep = await replayKafka(file);
    const res = agree(oracle, rep);
    assert.deepEqual(res.problems, [], `${path.basename(file)}: ${res.problems.length} disagreements`);
    assert.ok(res.messages > 0);
    assert.equal(rep.records.length, res.messages, 'one record per correlation id tshark decodes');
  });
}
