// A Produce and its Fetch larger than the agent's capture of one write or read (the first 16 KiB,
// tracers.socket.capture_max; the rest reported lost) through the running agent: kcat producing
// one 70 KB message (librdkafka writes the request in one sendmsg) to librdkafka's mock broker,
// then consuming it. The lost bytes are the record batch's records, which its header counts: the
// spans on both sides carry the whole message's values (1 message, 70 KB of batch, the offset)
// and no telegen.unknown. Before, every such span said telegen.unknown=true.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync, spawn, spawnSync } from 'child_process';
import { requireBpf, startAgent, waitFor, FlatSpan } from '../helpers/agent';

const CLIENT = 3;
const SERVER = 2;
const SIZE = 70_000;

test('Kafka: a 70 KB produce and its fetch through the running agent carry the whole message, not unknown (kcat ↔ mock broker)', { timeout: 180_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
  if (!has('gcc') || !has('kcat')) { t.skip('needs gcc and kcat'); return; }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-kafka-big-'));
  const bin = path.join(dir, 'mock-broker');
  execFileSync('gcc', ['-O1', '-Wall', '-o', bin, path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'kafka-mock', 'mock-broker.c'), '-lrdkafka']);
  const agent = await startAgent();
  const topic = 'big-writes';
  const broker = spawn(bin, ['1', topic], { stdio: ['pipe', 'pipe', 'pipe'] });
  try {
    let out = '';
    broker.stdout!.on('data', (d) => { out += String(d); });
    const bootstrap = await waitFor(() => /127\.0\.0\.1:\d+/.exec(out)?.[0], 10_000);
    const port = Number(bootstrap.split(':')[1]);
    const kcat = (args: string[], input?: string) => execFileSync('kcat', ['-b', bootstrap, ...args], { input, encoding: 'utf8', timeout: 30_000, maxBuffer: 1 << 24 });
    kcat(['-P', '-t', topic, '-p', '0', '-c', '1', '-X', 'compression.codec=none', '-X', 'client.id=big-producer'], 'v'.repeat(SIZE) + '\n');
    assert.equal(kcat(['-C', '-t', topic, '-p', '0', '-o', 'beginning', '-e', '-q', '-X', 'client.id=big-consumer']).trim().length, SIZE);

    const spans = (kind: number): FlatSpan[] => agent.spans().filter((s) => s.kind === kind && s.attributes['messaging.system'] === 'kafka' && s.attributes['server.port'] === port);
    const big = (kind: number) => spans(kind).filter((s) => ((s.attributes['messaging.message.body.size'] as number) ?? 0) > SIZE);
    for (const kind of [CLIENT, SERVER]) {
      await waitFor(() => big(kind).length >= 2, 30_000).catch(() => undefined);
      const got = big(kind).map((s) => {
        const a = s.attributes;
        return [a['messaging.operation.name'], a['messaging.client.id'], a['messaging.destination.name'], a['messaging.destination.partition.id'],
          a['messaging.batch.message_count'], a['messaging.kafka.offset'], a['telegen.unknown'] ?? false];
      });
      assert.deepEqual(got, [
        ['produce', 'big-producer', topic, '0', 1, 0, false],
        ['fetch', 'big-consumer', topic, '0', 1, 0, false],
      ], `kind ${kind}: ${JSON.stringify(spans(kind).map((s) => [s.name, s.attributes['messaging.message.body.size'], s.attributes['telegen.unknown']]))}`);
    }
  } finally {
    broker.kill('SIGTERM');
    await new Promise<void>((r) => { if (broker.exitCode !== null) return r(); broker.once('exit', () => r()); setTimeout(r, 5000).unref(); });
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(await agent.stop(), 0);
  }
});
