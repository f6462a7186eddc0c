// Produce and Fetch messages larger than what the agent captures of one read or write (the first
// 16 KiB, tracers.socket.capture_max; the rest is reported as lost bytes). Real clients: python3-
// confluent-kafka (librdkafka) producing 40 KB with acks=all and 30 KB with acks=0, then fetching
// both (testdata/heldout-big-writes.pcapng, heldout/record-big-writes.sh), and kafkajs producing and
// fetching 280 KiB (heldout-sweep.pcapng). Each such message is one batch whose records end it: its
// batch header counts them, so the record a cut read gives is the one the whole read gives — topic,
// partition, message count, body size, offset — and is not FLAG_UNKNOWN. Before, every Produce or
// Fetch over 16 KiB traced by the agent said telegen.unknown=true although no value was missing.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { repoRoot } from '../helpers/decoder';
import { parseTsv, replayKafka, agree } from './kafka-oracle';
import { DecodedRecord } from '../../host/src/decoders/records';
import { FLAG_UNKNOWN } from '../../decoders/abi/abi';

const CAPTURE_MAX = 16384;
const dir = path.join(repoRoot, 'decoders', 'kafka', 'testdata');

function byCorr(recs: DecodedRecord[]): Map<string, DecodedRecord> {
  return new Map(recs.map((r) => [`${r.stream}/${r.attributes['kafka.correlation_id']}`, r]));
}

const brief = (r: DecodedRecord) => {
  const a = r.attributes;
  return [a['messaging.operation.name'], a['messaging.destination.name'], a['messaging.destination.partition.id'], a['messaging.batch.message_count'],
    a['messaging.message.body.size'], a['messaging.kafka.offset'] ?? null, a['telegen.kafka.acks'] ?? null, r.flags];
};

test('a Produce or Fetch over 16 KiB captured to its first 16 KiB: the record of the whole message, not unknown (confluent-kafka)', async () => {
  const file = path.join(dir, 'heldout-big-writes.pcapng');
  const whole = await replayKafka(file);
  assert.deepEqual(agree(parseTsv(fs.readFileSync(file.replace(/\.pcapng$/, '.expected.tsv'), 'utf8')), whole).problems, []);
  const cut = await replayKafka(file, undefined, CAPTURE_MAX);
  assert.equal(cut.traps, 0);
  // what tshark reads of the three big messages (40 KB acks=all, 30 KB acks=0, the fetch of both)
  const big = whole.records.filter((r) => (r.attributes['messaging.message.body.size'] as number) > CAPTURE_MAX);
  assert.deepEqual(big.map(brief), [
    ['produce', 'held', '0', 1, 40072, 0, -1, 0],
    ['produce', 'held', '1', 1, 30072, null, 0, 0],
    ['fetch', 'held', undefined, 2, 70144, null, null, 0],
  ]);
  const got = byCorr(cut.records);
  assert.equal(cut.records.length, whole.records.length);
  for (const [k, r] of byCorr(whole.records)) {
    // The fetch of both partitions: the 30 KB batch of the second was in the lost bytes, and the
    // record says so (its first partition's values, FLAG_UNKNOWN).
    const want = brief(r)[0] === 'fetch' && brief(r)[3] === 2 ? ['fetch', 'held', undefined, 1, 40072, null, null, FLAG_UNKNOWN] : brief(r);
    assert.deepEqual(got.get(k) && brief(got.get(k)!), want, k);
  }
});

test('kafkajs: a 280 KiB record produced and fetched, captured to its first 16 KiB, keeps every value', async () => {
  const file = path.join(dir, 'heldout-sweep.pcapng');
  const whole = await replayKafka(file);
  const cut = await replayKafka(file, undefined, CAPTURE_MAX);
  const big = whole.records.filter((r) => (r.attributes['messaging.message.body.size'] as number) > CAPTURE_MAX);
  assert.deepEqual(big.map((r) => [r.attributes['messaging.operation.name'], r.flags]), [['produce', 0], ['fetch', 0]]);
  const got = byCorr(cut.records);
  assert.equal(cut.records.length, whole.records.length);
  for (const [k, r] of byCorr(whole.records)) assert.deepEqual(got.get(k) && brief(got.get(k)!), brief(r), k);
});
