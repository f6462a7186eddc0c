// Kafka target against librdkafka's mock cluster (test/fixtures/kafka-mock, real wire protocol):
// metadata, partition offsets and consumer-group lag as the collector reports them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { repoRoot } from '../helpers/decoder';
import { pollKafka } from '../../host/src/collect/kafka';

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const canRun = has('gcc') && fs.existsSync('/usr/include/librdkafka/rdkafka_mock.h');

test('kafka target: brokers, partition offsets and consumer-group lag', { timeout: 120_000 }, async (t) => {
  if (!canRun) {
    if (process.env.CI === 'true') assert.fail('needs gcc and librdkafka-dev');
    t.skip('needs gcc and librdkafka-dev');
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-collect-kafka-'));
  const bin = path.join(dir, 'mock-broker');
  execFileSync('gcc', ['-O1', '-Wall', '-o', bin, path.join(repoRoot, 'test', 'fixtures', 'kafka-mock', 'mock-broker.c'), '-lrdkafka']);
  const broker = spawn(bin, ['2', 'orders'], { stdio: ['pipe', 'pipe', 'pipe'] });
  try {
    const bootstrap = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`mock broker did not start: ${out}`)), 20_000);
      broker.stdout!.on('data', (d) => { out += String(d); const m = /(127\.0\.0\.1:\d+)/.exec(out); if (m) { clearTimeout(timer); resolve(m[1]); } });
    });
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { Kafka, logLevel } = require('kafkajs') as typeof import('kafkajs');
    const kafka = new Kafka({ clientId: 'test', brokers: [bootstrap], logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: 'orders', messages: Array.from({ length: 10 }, (_, i) => ({ value: `m${i}`, partition: 0 })) });
    await producer.disconnect();
    // A real consumer in group "billing" commits offset 4 on partition 0: 6 behind the high
    // watermark of 10.
    const consumer = kafka.consumer({ groupId: 'billing' });
    await consumer.connect();
    await consumer.subscribe({ topic: 'orders', fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      consumer.run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          if (partition === 0 && message.offset === '3') {
            await consumer.commitOffsets([{ topic: 'orders', partition: 0, offset: '4' }]);
            resolve();
          }
        },
      }).catch(reject);
    });
    await consumer.disconnect();

    const points = await pollKafka({ id: 'kafka/mock', type: 'kafka', brokers: [bootstrap], client_id: 'telegen-collector', groups: ['billing'] }, { timeoutMs: 10_000, userAgent: 'test' });
    const find = (name: string, attrs: Record<string, unknown>) => points.find((p) => p.name === name && Object.entries(attrs).every(([k, v]) => p.attributes[k] === v));
    assert.equal(find('kafka.brokers', {})?.value, 1);
    assert.equal(find('kafka.topic.partitions', { topic: 'orders' })?.value, 2);
    assert.equal(find('kafka.partition.current_offset', { topic: 'orders', partition: 0 })?.value, 10);
    assert.equal(find('kafka.partition.current_offset', { topic: 'orders', partition: 1 })?.value, 0);
    const lag = find('kafka.consumer_group.lag', { group: 'billing', topic: 'orders', partition: 0 });
    assert.ok(lag, `lag point among ${points.map((p) => p.name).join(', ')}`);
    assert.equal(lag.value, 6);
    assert.equal(find('kafka.consumer_group.offset', { group: 'billing', topic: 'orders', partition: 0 })?.value, 4);
    assert.equal(find('kafka.consumer_group.lag_sum', { group: 'billing', topic: 'orders' })?.value, 6);
  } finally {
    broker.stdin!.end();
    broker.kill('SIGTERM');
    await new Promise((r) => broker.once('exit', r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
