// A transactional producer through the running agent: kafkajs (its own process) runs a
// consume-transform-produce transaction against librdkafka's mock cluster — FindCoordinator for
// the transaction, InitProducerId, AddPartitionsToTxn, Produce v7 carrying the transactional id,
// AddOffsetsToTxn and TxnOffsetCommit for consumer group cg-1, EndTxn committing — then a second
// transaction that it aborts. tshark (-d tcp.port==N,kafka) reads the same traffic from lo and is
// the oracle for every transactional request, on the client's and on the broker's spans.
// EndTxn's outcome is telegen.kafka.transaction_result (tshark's kafka.transaction_result): before
// it, a committed and an aborted transaction ended in the same span.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync, execFileSync } from 'child_process';
import { requireBpf, startAgent, waitFor, FlatSpan } from '../helpers/agent';
import { startLoCapture, stopLoCapture, Capture } from '../helpers/capture';
import { repoRoot } from '../helpers/decoder';

const SERVER = 2;
const CLIENT = 3;
/** The transactional APIs: Produce, FindCoordinator, InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, TxnOffsetCommit. */
const TXN_APIS = new Set([0, 10, 22, 24, 25, 26, 28]);

const CLIENT_JS = (kafkajs: string) => `
const { Kafka, logLevel } = require(${JSON.stringify(kafkajs)});
(async () => {
  const kafka = new Kafka({ clientId: 'txn-app', brokers: [process.argv[2]], logLevel: logLevel.NOTHING });
  const p = kafka.producer({ transactionalId: 'tx-orders', idempotent: true, maxInFlightRequests: 1 });
  // The mock names no controller: the idempotent init that connect() tries fails; the transaction
  // below inits through its coordinator.
  await p.connect().catch(() => {});
  let t = await p.transaction();
  await t.send({ topic: 'orders', messages: [{ key: 'k1', value: 'paid', partition: 0 }] });
  await t.sendOffsets({ consumerGroupId: 'cg-1', topics: [{ topic: 'orders', partitions: [{ partition: 0, offset: '1' }] }] });
  await t.commit();
  t = await p.transaction();
  await t.send({ topic: 'orders', messages: [{ key: 'k2', value: 'refunded', partition: 1 }] });
  await t.abort();
  await p.disconnect();
  process.stdout.write('committed,aborted');
})().catch((e) => { process.stdout.write('failed: ' + e.message); process.exit(1); });
`;

/** One transactional request as "api/version corr topic txn group result". */
function line(key: number, version: number, corr: number, topic: string, txn: string, group: string, result: string): string {
  return `${key}/${version} #${corr} topic=${topic} txn=${txn} group=${group} result=${result}`;
}

/** tshark's transactional requests; FindCoordinator names its key (a transaction, type 1, or a
 *  group, type 0) as kafka.coordinator_key, the agent as the transactional id or the group. */
function oracle(pcap: string, port: number): string[] {
  const out = execFileSync('tshark', ['-r', pcap, '-d', `tcp.port==${port},kafka`, '-Y', 'kafka.request_key', '-T', 'fields',
    '-E', 'occurrence=a', '-E', 'aggregator=|', '-e', 'kafka.correlation_id', '-e', 'kafka.request_key', '-e', 'kafka.request.version',
    '-e', 'kafka.topic_name', '-e', 'kafka.transactional_id', '-e', 'kafka.consumer_group', '-e', 'kafka.transaction_result',
    '-e', 'kafka.coordinator_key', '-e', 'kafka.coordinator_type'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const rows: string[] = [];
  for (const l of out.split('\n').filter((x) => x.trim())) {
    const [corr, key, ver, topics, txnId, group, result, coordKey, coordType] = l.split('\t');
    assert.ok(!corr.includes('|'), `one request per packet: ${l}`);
    if (!TXN_APIS.has(Number(key))) continue;
    const txn = Number(key) === 10 ? (coordType === '1' ? coordKey : '') : txnId;
    const grp = Number(key) === 10 ? (coordType === '0' ? coordKey : '') : group;
    const res = result === '' ? '' : result === '1' ? 'commit' : 'abort';
    rows.push(line(Number(key), Number(ver), Number(corr), topics.split('|')[0] ?? '', txn, grp, res));
  }
  return rows;
}

function fromSpan(s: FlatSpan): string {
  const a = s.attributes;
  const str = (k: string) => (a[k] === undefined ? '' : String(a[k]));
  return line(Number(a['kafka.api_key']), Number(a['kafka.api_version']), Number(a['kafka.correlation_id']),
    str('messaging.destination.name'), str('telegen.kafka.transactional_id'), str('messaging.consumer.group.name'), str('telegen.kafka.transaction_result'));
}

test('kafkajs transactions through the running agent: commit and abort, both sides, as tshark reads them', { timeout: 180_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
  if (!has('gcc') || !has('tshark') || !fs.existsSync('/usr/include/librdkafka/rdkafka_mock.h')) {
    if (process.env.CI === 'true') throw new Error('needs gcc, tshark and librdkafka-dev');
    t.skip('needs gcc, tshark and librdkafka-dev');
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-kafka-txn-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const bin = path.join(dir, 'mock-broker');
  execFileSync('gcc', ['-O1', '-Wall', '-o', bin, path.join(repoRoot, 'test', 'fixtures', 'kafka-mock', 'mock-broker.c'), '-lrdkafka']);
  const script = path.join(dir, 'txn.js');
  fs.writeFileSync(script, CLIENT_JS(path.join(repoRoot, 'node_modules', 'kafkajs')));

  const agent = await startAgent();
  const broker = spawn(bin, ['2', 'orders'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let cap: Capture | undefined;
  const pcap = path.join(dir, 'txn.pcapng');
  try {
    let out = '';
    broker.stdout!.on('data', (d) => { out += String(d); });
    const bootstrap = await waitFor(() => /127\.0\.0\.1:\d+/.exec(out)?.[0], 10_000);
    const port = Number(bootstrap.split(':')[1]);
    cap = await startLoCapture(pcap, `tcp port ${port}`, port);
    const client = spawnSync(process.execPath, [script, bootstrap], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(client.stdout, 'committed,aborted', client.stderr);
    await stopLoCapture(cap);
    cap = undefined;

    const want = oracle(pcap, port);
    // The oracle saw what the test is about: both EndTxns, the offsets sent in the transaction.
    assert.ok(want.some((l) => l.startsWith('26/') && l.endsWith('result=commit')), want.join('\n'));
    assert.ok(want.some((l) => l.startsWith('26/') && l.endsWith('result=abort')), want.join('\n'));
    assert.ok(want.some((l) => l.startsWith('28/') && l.includes('group=cg-1')), want.join('\n'));
    assert.equal(want.filter((l) => l.startsWith('0/')).length, 2, want.join('\n'));

    const side = (kind: number, pid: number) => agent.spans()
      .filter((s) => s.kind === kind && s.attributes['process.pid'] === pid && s.attributes['server.port'] === port && TXN_APIS.has(Number(s.attributes['kafka.api_key'])));
    for (const [kind, pid] of [[CLIENT, client.pid], [SERVER, broker.pid!]]) {
      await waitFor(() => side(kind, pid).length >= want.length, 30_000).catch(() => undefined);
      const spans = side(kind, pid);
      const got = spans.map(fromSpan).sort((a, b) => Number(a.split('#')[1].split(' ')[0]) - Number(b.split('#')[1].split(' ')[0]));
      assert.deepEqual(got, want, `kind ${kind}`);
      // Span names: the messaging operation and its destination, else the api name.
      const ends = spans.filter((s) => s.attributes['kafka.api_key'] === 26);
      assert.deepEqual(ends.map((s) => `${s.name} ${s.attributes['telegen.kafka.transaction_result']}`), ['end_txn commit', 'end_txn abort']);
      const sends = spans.filter((s) => s.attributes['kafka.api_key'] === 0);
      assert.deepEqual(sends.map((s) => [s.name, s.attributes['messaging.operation.type'], s.attributes['messaging.destination.partition.id'], s.attributes['messaging.batch.message_count']]),
        [['produce orders', 'send', '0', 1], ['produce orders', 'send', '1', 1]]);
      for (const s of spans) assert.equal(s.status.code ?? 0, 0, `${s.name}: ${JSON.stringify(s.attributes)}`);
    }
  } finally {
    if (cap) await stopLoCapture(cap);
    broker.kill('SIGTERM');
    await new Promise<void>((r) => { if (broker.exitCode !== null) return r(); broker.once('exit', () => r()); setTimeout(r, 5000).unref(); });
    assert.equal(await agent.stop(), 0);
  }
});
