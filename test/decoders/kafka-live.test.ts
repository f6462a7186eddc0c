// Real peers: librdkafka's mock cluster (test/fixtures/kafka-mock/mock-broker.c, built here with
// gcc -lrdkafka) on 127.0.0.1, driven by kcat (metadata, produce, consume) and kafkajs (producer
// with acks=-1 and acks=0, consumer group: FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
// OffsetFetch, OffsetCommit, LeaveGroup). The traffic is captured with tshark on lo; the decoder
// (through host/src/replay) and tshark (-d tcp.port==N,kafka) must agree on every message.
// Needs root (capture), gcc, librdkafka-dev, kcat and tshark; skipped otherwise.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync, execFileSync, ChildProcess } from 'child_process';
import { repoRoot } from '../helpers/decoder';
import { parseTsv, replayKafka, agree, tsharkArgs } from './kafka-oracle';
import { FLAG_NO_REQUEST } from '../../decoders/abi/abi';

const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const missing = [
  process.getuid?.() !== 0 ? 'root (packet capture)' : '',
  !has('gcc') ? 'gcc' : '', !has('kcat') ? 'kcat' : '', !has('tshark') ? 'tshark' : '',
  !fs.existsSync('/usr/include/librdkafka/rdkafka_mock.h') ? 'librdkafka-dev' : '',
].filter(Boolean);

function waitFor(child: ChildProcess, stream: 'stdout' | 'stderr', re: RegExp, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`timeout waiting for ${re} (got ${JSON.stringify(buf)})`)), ms);
    child[stream]!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = buf.match(re);
      if (m) { clearTimeout(timer); resolve(m[0]); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`exited ${code} before ${re}: ${buf}`)); });
  });
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) { resolve(); return; }
    child.on('exit', () => resolve());
  });
}

function run(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', timeout: 30000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

test('kcat and kafkajs against librdkafka\'s mock broker: decoder and tshark agree', { skip: missing.length > 0 && `needs ${missing.join(', ')}`, timeout: 120000 }, async () => {
  execFileSync(process.execPath, [path.join(repoRoot, 'decoders', 'build.js'), 'kafka'], { stdio: 'ignore' });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-kafka-'));
  const bin = path.join(dir, 'mock-broker');
  execFileSync('gcc', ['-O1', '-Wall', '-o', bin, path.join(repoRoot, 'test', 'fixtures', 'kafka-mock', 'mock-broker.c'), '-lrdkafka']);

  const topic = 'telegen-live';
  const zipped = 'telegen-compressed';
  const broker = spawn(bin, ['2', topic, zipped], { stdio: ['pipe', 'pipe', 'pipe'] });
  let tshark: ChildProcess | undefined;
  const pcap = path.join(dir, 'kafka-live.pcapng');
  try {
    const bootstrap = (await waitFor(broker, 'stdout', /127\.0\.0\.1:\d+/, 10000)).trim();
    const port = Number(bootstrap.split(':')[1]);
    tshark = spawn('tshark', ['-i', 'lo', '-f', `tcp port ${port}`, '-w', pcap], { stdio: ['ignore', 'ignore', 'pipe'] });
    await waitFor(tshark, 'stderr', /Capturing on/, 15000);
    await new Promise((r) => setTimeout(r, 500));

    // kcat: metadata, produce three keyed messages to partition 0, consume them back.
    run('kcat', ['-b', bootstrap, '-L']);
    run('kcat', ['-b', bootstrap, '-P', '-t', topic, '-p', '0', '-K', ':'], 'a:one\nb:two\nc:three\n');
    const consumed = run('kcat', ['-b', bootstrap, '-C', '-t', topic, '-p', '0', '-o', 'beginning', '-e', '-q', '-f', '%s\n']);
    assert.deepEqual(consumed.trim().split('\n'), ['one', 'two', 'three']);
    // librdkafka's own compressors: one produce per codec (another topic: kafkajs reads gzip
    // only). The values compress well: librdkafka sends a batch uncompressed when compressing
    // would not make it smaller. kcat reads them back (Fetch of compressed batches).
    for (const codec of ['gzip', 'snappy', 'lz4', 'zstd']) {
      run('kcat', ['-b', bootstrap, '-P', '-t', zipped, '-p', '0', '-z', codec, '-X', 'linger.ms=100'],
        `${codec}-1 ${'x'.repeat(1000)}\n${codec}-2 ${'y'.repeat(1000)}\n`);
    }
    const unzipped = run('kcat', ['-b', bootstrap, '-C', '-t', zipped, '-p', '0', '-o', 'beginning', '-e', '-q', '-f', '%s\n']);
    assert.equal(unzipped.trim().split('\n').length, 8);
    // An idempotent producer asks for a producer id first (InitProducerId).
    run('kcat', ['-b', bootstrap, '-P', '-t', topic, '-p', '0', '-X', 'enable.idempotence=true', '-c', '1'], 'exactly-once\n');

    // kafkajs: producer (acks -1, then acks 0) and a consumer group that commits offsets.
    const script = `
      const { Kafka, logLevel } = require(${JSON.stringify(require.resolve('kafkajs'))});
      (async () => {
        const kafka = new Kafka({ clientId: 'telegen-kafkajs', brokers: [${JSON.stringify(bootstrap)}], logLevel: logLevel.NOTHING });
        const producer = kafka.producer();
        await producer.connect();
        await producer.send({ topic: ${JSON.stringify(topic)}, messages: [{ key: 'k1', value: 'hello', partition: 1 }, { key: 'k2', value: 'world', partition: 1 }] });
        await producer.send({ topic: ${JSON.stringify(topic)}, acks: 0, messages: [{ value: 'fire-and-forget', partition: 1 }] });
        await producer.disconnect();
        const consumer = kafka.consumer({ groupId: 'telegen-group', heartbeatInterval: 300, sessionTimeout: 10000 });
        await consumer.connect();
        await consumer.subscribe({ topic: ${JSON.stringify(topic)}, fromBeginning: true });
        let n = 0;
        await new Promise((resolve) => {
          consumer.run({ autoCommitInterval: 200, eachMessage: async () => { if (++n >= 7) resolve(); } });
          setTimeout(resolve, 20000);
        });
        await new Promise((r) => setTimeout(r, 1200));
        await consumer.disconnect();
        console.log(n);
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const n = Number(run(process.execPath, ['-e', script]).trim());
    assert.equal(n, 7, 'the kafkajs consumer group received every message');
    await new Promise((r) => setTimeout(r, 500));
  } finally {
    if (tshark) { tshark.kill('SIGTERM'); await exited(tshark); }
    broker.stdin!.end();
    const t = setTimeout(() => broker.kill('SIGTERM'), 3000);
    await exited(broker);
    clearTimeout(t);
  }

  const port = Number(run('tshark', ['-r', pcap, '-T', 'fields', '-e', 'tcp.dstport', '-Y', 'tcp.flags.syn==1 && tcp.flags.ack==0', '-c', '1']).trim());
  const tsv = run('tshark', tsharkArgs(pcap, port));
  if (process.env.TELEGEN_KAFKA_SAVE_CAPTURE) {
    // Refresh the committed capture: decoders/kafka/testdata/<name>.pcapng + .expected.tsv.
    const out = process.env.TELEGEN_KAFKA_SAVE_CAPTURE;
    fs.copyFileSync(pcap, `${out}.pcapng`);
    fs.writeFileSync(`${out}.expected.tsv`, tsv);
  }
  const oracle = parseTsv(tsv);
  const rep = await replayKafka(pcap, [port]);
  const res = agree(oracle, rep);
  assert.deepEqual(res.problems, []);
  assert.equal(rep.records.length, res.messages);
  assert.ok(rep.records.every((r) => !(r.flags & FLAG_NO_REQUEST)), 'every response had its request');

  // What a user sees: the APIs of a produce/consume/group session, with their topic and group.
  const byOp = (name: string) => rep.records.filter((r) => r.attributes['messaging.operation.name'] === name);
  for (const op of ['api_versions', 'metadata', 'produce', 'fetch', 'list_offsets', 'find_coordinator', 'join_group',
    'sync_group', 'heartbeat', 'offset_fetch', 'offset_commit', 'leave_group']) {
    assert.ok(byOp(op).length > 0, `saw ${op}`);
  }
  const kcatProduce = byOp('produce').filter((r) => r.attributes['messaging.client.id'] === 'rdkafka');
  assert.deepEqual(kcatProduce.map((r) => [r.attributes['messaging.destination.name'], r.attributes['messaging.destination.partition.id'],
    r.attributes['messaging.batch.message_count'], r.attributes['kafka.compression.codec']]),
  [[topic, '0', 3, 'none'], [zipped, '0', 2, 'gzip'], [zipped, '0', 2, 'snappy'], [zipped, '0', 2, 'lz4'], [zipped, '0', 2, 'zstd'], [topic, '0', 1, 'none']]);
  const zippedFetch = byOp('fetch').filter((r) => r.attributes['messaging.destination.name'] === zipped);
  assert.equal(zippedFetch.reduce((s, r) => s + Number(r.attributes['messaging.batch.message_count'] ?? 0), 0), 8);
  const jsProduce = byOp('produce').filter((r) => r.attributes['messaging.client.id'] === 'telegen-kafkajs');
  assert.deepEqual(jsProduce.map((r) => [r.attributes['telegen.kafka.acks'], r.attributes['messaging.batch.message_count'], r.attributes['messaging.destination.partition.id']]),
    [[-1, 2, '1'], [0, 1, '1']]);
  assert.equal(byOp('init_producer_id').length, 1, 'the idempotent producer asked for an id');
  assert.ok(jsProduce[1].attributes['telegen.response.size'] === undefined, 'acks=0 has no response');
  for (const op of ['join_group', 'sync_group', 'heartbeat', 'offset_commit', 'leave_group']) {
    assert.ok(byOp(op).every((r) => r.attributes['messaging.consumer.group.name'] === 'telegen-group'), op);
  }
  const fetched = byOp('fetch').reduce((s, r) => s + Number(r.attributes['messaging.batch.message_count'] ?? 0), 0);
  assert.ok(fetched >= 15, `fetch responses carried ${fetched} records`);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('kafkajs admin client (ACLs, configs, partition reassignments) against a stand-in broker: decoder and tshark agree, errors named', { skip: missing.length > 0 && `needs ${missing.join(', ')}`, timeout: 60000 }, async () => {
  execFileSync(process.execPath, [path.join(repoRoot, 'decoders', 'build.js'), 'kafka'], { stdio: 'ignore' });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-kafka-admin-'));
  const pcap = path.join(dir, 'kafka-admin.pcapng');
  const script = path.join(repoRoot, 'decoders', 'kafka', 'testdata', 'heldout', 'kafkajs-admin.js');
  const kafkajsDir = path.dirname(require.resolve('kafkajs/package.json'));
  const node = spawn(process.execPath, [script, kafkajsDir], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  node.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  let tshark: ChildProcess | undefined;
  let port = 0;
  try {
    port = Number((await waitFor(node, 'stdout', /\d+/, 10000)).trim());
    tshark = spawn('tshark', ['-i', 'lo', '-f', `tcp port ${port}`, '-w', pcap], { stdio: ['ignore', 'ignore', 'pipe'] });
    await waitFor(tshark, 'stderr', /Capturing on/, 15000);
    await new Promise((r) => setTimeout(r, 500));
    node.stdin!.write('go\n');
    await exited(node);
    await new Promise((r) => setTimeout(r, 500));
  } finally {
    if (tshark) { tshark.kill('SIGTERM'); await exited(tshark); }
    if (node.exitCode === null) { node.kill('SIGTERM'); await exited(node); }
  }
  // kafkajs turns the two refusals into exceptions: the client saw them
  assert.match(stderr, /describeAcls Cluster authorization failed/);
  assert.match(stderr, /alterConfigs Configuration is invalid/);
  const rep = await replayKafka(pcap, [port]);
  const res = agree(parseTsv(run('tshark', tsharkArgs(pcap, port))), rep);
  assert.deepEqual(res.problems, []);
  assert.equal(rep.records.length, res.messages);
  const admin = rep.records.map((r) => r.attributes).filter((a) => !['api_versions', 'metadata'].includes(a['messaging.operation.name'] as string));
  assert.deepEqual(admin.map((a) => [a['messaging.operation.name'], a['kafka.api_version'], a['messaging.client.id'], a['error.type']]), [
    ['create_acls', 1, 'kafkajs-admin', undefined],
    ['describe_acls', 1, 'kafkajs-admin', 'CLUSTER_AUTHORIZATION_FAILED'],
    ['delete_acls', 1, 'kafkajs-admin', undefined],
    ['alter_partition_reassignments', 0, 'kafkajs-admin', 'INVALID_REPLICA_ASSIGNMENT'],
    ['list_partition_reassignments', 0, 'kafkajs-admin', undefined],
    ['alter_configs', 1, 'kafkajs-admin', 'INVALID_CONFIG'],
  ]);
  // tshark 4.0 stops at the reassignment APIs' first topic; kafkajs read the bodies: held,
  // partition 0. AlterConfigs names the topic whose config it alters (a topic resource).
  assert.match(stderr, /"name":"held","partitions":\[\{"partition":0,"replicas":\[1,2\]/);
  assert.deepEqual(admin.map((a) => [a['messaging.destination.name'], a['messaging.destination.partition.id']]),
    [[undefined, undefined], [undefined, undefined], [undefined, undefined], ['held', '0'], ['held', '0'], ['held', undefined]]);
  fs.rmSync(dir, { recursive: true, force: true });
});
