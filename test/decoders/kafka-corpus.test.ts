// Corpus agreement: every capture in ../shared/corpus/pcap/kafka and decoders/kafka/testdata is
// replayed (host/src/replay) into the Kafka decoder; every message tshark decodes (the
// `*.expected.tsv` beside each capture) must be decoded with the same api key, version,
// correlation id, client id, topics, partition and error code — and no message more.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync, spawnSync } from 'child_process';
import { corpusDir, repoRoot } from '../helpers/decoder';
import { parseTsv, replayKafka, agree, KAFKA_PORTS } from './kafka-oracle';
import { FLAG_ERROR } from '../../decoders/abi/abi';

execFileSync(process.execPath, [path.join(repoRoot, 'decoders', 'build.js'), 'kafka'], { stdio: 'ignore' });

function captures(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((f) => /\.pcap(ng)?$/.test(f)).sort().map((f) => path.join(dir, f));
}

const shared = captures(path.join(corpusDir, 'pcap', 'kafka'));
// synth-admin-new.pcap holds APIs and versions tshark 4.0 misreads or does not know: it has exact
// expected attributes below instead of a tshark TSV.
const own = captures(path.join(repoRoot, 'decoders', 'kafka', 'testdata')).filter((f) => path.basename(f) !== 'synth-admin-new.pcap');

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

// tshark 4.0 decodes only the headers of flexible versions newer than it knows (Produce v9,
// Fetch v12+, …); there the body values are checked exactly. They match the raw bytes and the
// decoding recorded by the captures' origin project (deepflow's *.result files for the same pcaps).
const FLEXIBLE_BODIES: Array<[string, number, Record<string, unknown>]> = [
  ['deepflow__00-produce-v9.pcap', 47, {
    'messaging.operation.name': 'produce', 'kafka.api_version': 9, 'messaging.client.id': 'console-producer',
    'messaging.destination.name': 'zqy-test', 'messaging.destination.partition.id': '0', 'messaging.batch.message_count': 1,
    'messaging.message.body.size': 99, 'kafka.compression.codec': 'none', 'telegen.kafka.acks': 1, 'messaging.kafka.offset': 35,
  }],
  ['deepflow__01-fetch-v12-ok.pcap', 15603, {
    'messaging.operation.name': 'fetch', 'kafka.api_version': 12, 'messaging.destination.name': 'zqy-test',
    'messaging.destination.partition.id': '0', 'messaging.kafka.offset': 36,
  }],
  ['deepflow__01-fetch-v12-unknown.pcap', 20, { 'kafka.api_version': 12, 'kafka.error_code': 5120, 'error.type': '5120' }],
  ['deepflow__mixed-with-unsupported.pcap', 15551978, { 'messaging.operation.name': 'heartbeat', 'kafka.api_version': 4, 'messaging.consumer.group.name': 'frauddetectionservice' }],
  ['ndpi__kafka.pcapng', 5, { 'messaging.operation.name': 'metadata', 'kafka.api_version': 12, 'messaging.destination.name': 'sampleTopic', 'messaging.destination.partition.id': '0' }],
  ['ndpi__kafka.pcapng', 6, {
    'messaging.operation.name': 'produce', 'kafka.api_version': 9, 'messaging.destination.name': 'sampleTopic',
    'messaging.batch.message_count': 1, 'telegen.kafka.acks': -1, 'messaging.kafka.offset': 0,
  }],
  ['ndpi__kafka.pcapng', 4, { 'messaging.operation.name': 'init_producer_id', 'kafka.api_version': 4, 'messaging.client.id': 'console-producer' }],
];

for (const [name, corr, want] of FLEXIBLE_BODIES) {
  const file = path.join(corpusDir, 'pcap', 'kafka', name);
  test(`flexible body beyond tshark 4.0: ${name} corr ${corr}`, { skip: !fs.existsSync(file) && 'no corpus' }, async () => {
    const rep = await replayKafka(file);
    const recs = rep.records.filter((r) => r.attributes['kafka.correlation_id'] === corr && r.attributes['messaging.client.id'] !== 'rdkafka');
    assert.equal(recs.length, 1);
    const got: Record<string, unknown> = {};
    for (const k of Object.keys(want)) got[k] = recs[0].attributes[k];
    assert.deepEqual(got, want);
  });
}

// Admin and transaction APIs that tshark 4.0 does not dissect or misreads (see
// testdata/heldout/synth-admin.js: ElectLeaders v0/v1 requests without their topic names, the
// reassignment APIs stopped at the first topic, WriteTxnMarkers v1 and AddPartitionsToTxn v3+
// read with the v0 layout, apis 48-68 unknown to it): the bytes are built field by field from the
// message definitions and every value below is stated from those bytes.
const op = (name: string, key: number, version: number, corr: number): Record<string, unknown> =>
  ({ 'messaging.operation.name': name, 'kafka.api_key': key, 'kafka.api_version': version, 'kafka.correlation_id': corr });
const err = (code: number, name: string): Record<string, unknown> => ({ 'kafka.error_code': code, 'error.type': name });
const BEYOND_TSHARK: Array<Record<string, unknown>> = [
  // a request for partitions 0 and 1; partition 1 needed no election
  { ...op('elect_leaders', 43, 0, 100), 'messaging.destination.name': 'el', 'telegen.kafka.partition_count': 2, ...err(84, 'ELECTION_NOT_NEEDED') },
  { ...op('elect_leaders', 43, 1, 101), 'messaging.destination.name': 'el', 'messaging.destination.partition.id': '2' },
  // partition 1 moved, partition 2's move cancelled but none was in progress
  { ...op('alter_partition_reassignments', 45, 0, 102), 'messaging.destination.name': 'apr', 'telegen.kafka.partition_count': 2, ...err(85, 'NO_REASSIGNMENT_IN_PROGRESS') },
  { ...op('list_partition_reassignments', 46, 0, 103), 'messaging.destination.name': 'lpr', 'messaging.destination.partition.id': '0' },
  // every reassignment (null topics), refused
  { ...op('list_partition_reassignments', 46, 0, 104), ...err(29, 'TOPIC_AUTHORIZATION_FAILED') },
  { ...op('write_txn_markers', 27, 1, 105), 'messaging.destination.name': 'wtm', 'messaging.destination.partition.id': '1', ...err(48, 'INVALID_TXN_STATE') },
  { ...op('add_partitions_to_txn', 24, 3, 106), 'messaging.destination.name': 'apt', 'messaging.destination.partition.id': '0', 'telegen.kafka.transactional_id': 'txn-3' },
  // KIP-890 batches: one transaction with two partitions; two transactions, each to partition 2
  // (the first transaction's id)
  { ...op('add_partitions_to_txn', 24, 4, 107), 'messaging.destination.name': 'apt', 'telegen.kafka.partition_count': 2, 'telegen.kafka.transactional_id': 'txn-4' },
  { ...op('add_partitions_to_txn', 24, 5, 108), 'messaging.destination.name': 'apt', 'telegen.kafka.topics': ['apt', 'apt2'], 'telegen.kafka.transactional_id': 'txn-5a',
    'messaging.destination.partition.id': '2', 'telegen.kafka.partition_count': 2, ...err(53, 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED') },
  { ...op('describe_producers', 61, 0, 109), 'messaging.destination.name': 'dp', 'messaging.destination.partition.id': '4' },
  // the request names transactions only: the topic is the one the transaction writes to
  { ...op('describe_transactions', 65, 0, 110), 'messaging.destination.name': 'dt', 'messaging.destination.partition.id': '0', 'telegen.kafka.transactional_id': 'txn-d' },
  op('list_transactions', 66, 0, 111),
  op('describe_cluster', 60, 0, 112),
  { ...op('describe_log_dirs', 35, 3, 113), 'messaging.destination.name': 'dld', 'messaging.destination.partition.id': '1' },
  op('describe_client_quotas', 48, 0, 114),
  { ...op('alter_client_quotas', 49, 0, 115), ...err(42, 'INVALID_REQUEST') },
  { ...op('describe_user_scram_credentials', 50, 0, 116), ...err(91, 'RESOURCE_NOT_FOUND') },
  { ...op('consumer_group_heartbeat', 68, 0, 117), 'messaging.consumer.group.name': 'cg-848' },
  { ...op('alter_partition_reassignments', 45, 1, 118), 'messaging.destination.name': 'apr', 'messaging.destination.partition.id': '0', ...err(39, 'INVALID_REPLICA_ASSIGNMENT') },
  { ...op('consumer_group_describe', 69, 0, 119), 'messaging.consumer.group.name': 'cg-848', ...err(69, 'GROUP_ID_NOT_FOUND') },
  { ...op('alter_user_scram_credentials', 51, 0, 120), ...err(93, 'UNACCEPTABLE_CREDENTIAL') },
  op('list_transactions', 66, 1, 121),
  { ...op('describe_cluster', 60, 1, 122), ...err(114, 'MISMATCHED_ENDPOINT_TYPE') },
  { ...op('describe_log_dirs', 35, 4, 123), 'messaging.destination.name': 'dld', 'messaging.destination.partition.id': '2' },
  { ...op('consumer_group_heartbeat', 68, 1, 124), 'messaging.consumer.group.name': 'cg-848', ...err(110, 'FENCED_MEMBER_EPOCH') },
  // every topic asked for: the answer names it; partition 1 has no leader
  { ...op('describe_topic_partitions', 75, 0, 125), 'messaging.destination.name': 'dtp', 'telegen.kafka.partition_count': 2, ...err(5, 'LEADER_NOT_AVAILABLE') },
  op('get_telemetry_subscriptions', 71, 0, 126),
  { ...op('push_telemetry', 72, 0, 127), ...err(118, 'TELEMETRY_TOO_LARGE') },
];

test('admin and transaction APIs beyond tshark 4.0: synth-admin-new.pcap, exact attributes', async () => {
  const rep = await replayKafka(path.join(repoRoot, 'decoders', 'kafka', 'testdata', 'synth-admin-new.pcap'));
  assert.equal(rep.traps, 0);
  const got = rep.records.map((r) => {
    const a: Record<string, unknown> = { ...r.attributes };
    for (const k of ['network.protocol.name', 'messaging.system', 'messaging.client.id', 'telegen.request.size', 'telegen.response.size']) delete a[k];
    return a;
  });
  assert.deepEqual(got, BEYOND_TSHARK);
  assert.deepEqual(rep.records.map((r) => r.flags), BEYOND_TSHARK.map((w) => ('kafka.error_code' in w ? FLAG_ERROR : 0)));
  assert.ok(rep.records.every((r) => r.attributes['messaging.client.id'] === 'synth-admin'));
});

test('synth-admin captures cut short: every cut of every body gives one record (FLAG_UNKNOWN when a read fell off), and the next exchange decodes whole', async () => {
  const { replayFile } = await import('../../host/src/replay/index');
  const { loadDecoder } = await import('../helpers/decoder');
  const { FLAG_UNKNOWN } = await import('../../decoders/abi/abi');
  // synth-admin.js writes one Kafka message per packet, a request then its response.
  const exchanges: Array<[Buffer, Buffer]> = [];
  for (const name of ['synth-admin.pcap', 'synth-admin-new.pcap']) {
    const msgs = new Map<number, Buffer[]>();
    await replayFile(path.join(repoRoot, 'decoders', 'kafka', 'testdata', name), {
      onOpen: (c) => { msgs.set(c.id, []); },
      onData: (c, _fromClient, bytes) => { msgs.get(c.id)!.push(Buffer.from(bytes)); },
      onGap: () => {},
      onClose: () => {},
    });
    for (const m of msgs.values()) for (let i = 0; i + 1 < m.length; i += 2) exchanges.push([m[i], m[i + 1]]);
  }
  assert.equal(exchanges.length, 44);
  const cutTo = (msg: Buffer, n: number): Buffer => {
    const b = Buffer.from(msg.subarray(0, 4 + n));
    b.writeInt32BE(n, 0);
    return b;
  };
  const h = loadDecoder('kafka');
  let stream = 1;
  let unknown = 0;
  for (const [req, resp] of exchanges) {
    const whole = loadDecoder('kafka');
    whole.inst.feed(1, 0, req, 1n); whole.inst.feed(1, 1, resp, 2n);
    const want = whole.records[0].attributes;
    // a request header is at least 8 bytes plus the client id; a response header 4 (+ tags)
    const reqHeader = 10 + req.readInt16BE(12);
    for (const side of [0, 1]) {
      const msg = side === 0 ? req : resp;
      for (let n = side === 0 ? reqHeader : 4; n < msg.length - 4; n++) {
        const s = stream++;
        h.records.length = 0;
        h.inst.feed(s, 0, side === 0 ? cutTo(req, n) : req, 1n);
        h.inst.feed(s, 1, side === 1 ? cutTo(resp, n) : resp, 2n);
        // the same exchange again, whole, with the next correlation id
        const req2 = Buffer.from(req); req2.writeInt32BE(req.readInt32BE(8) + 1000, 8);
        const resp2 = Buffer.from(resp); resp2.writeInt32BE(resp.readInt32BE(4) + 1000, 4);
        h.inst.feed(s, 0, req2, 3n); h.inst.feed(s, 1, resp2, 4n);
        h.inst.closeStream(s);
        const where = `api ${want['kafka.api_key']} v${want['kafka.api_version']} ${side ? 'response' : 'request'} cut to ${n}`;
        assert.equal(h.records.length, 2, where);
        const [cut, next] = h.records.map((r) => r.attributes);
        assert.equal(cut['kafka.correlation_id'], want['kafka.correlation_id'], where);
        assert.equal(cut['kafka.api_key'], want['kafka.api_key'], where);
        if (h.records[0].flags & FLAG_UNKNOWN) unknown++;
        assert.deepEqual({ ...next, 'kafka.correlation_id': 0 }, { ...want, 'kafka.correlation_id': 0 }, where);
      }
    }
  }
  assert.equal(h.inst.counters.traps, 0, h.inst.lastError);
  assert.equal(h.inst.counters.badRecords, 0);
  assert.ok(unknown > 1000, `${unknown} cuts flagged`);
});

test('fuzz over real traffic: every capture re-chunked, bytes flipped, gaps injected -> no trap, bounded state', { skip: shared.length === 0 && 'no corpus' }, async () => {
  // Collect every capture's directional byte streams once.
  const streams: Array<{ dir: number; bytes: Buffer }[]> = [];
  const { replayFile } = await import('../../host/src/replay/index');
  for (const file of [...shared, ...own]) {
    const byConn = new Map<number, { dir: number; bytes: Buffer }[]>();
    await replayFile(file, {
      onOpen: (c) => { byConn.set(c.id, []); },
      onData: (c, fromClient, bytes) => { byConn.get(c.id)!.push({ dir: fromClient ? 0 : 1, bytes: Buffer.from(bytes) }); },
      onGap: () => {},
      onClose: () => {},
    });
    streams.push(...byConn.values());
  }
  const { loadDecoder } = await import('../helpers/decoder');
  const h = loadDecoder('kafka');
  let seed = 7;
  const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  let id = 1;
  for (let round = 0; round < 12; round++) {
    for (const chunks of streams) {
      const stream = id++;
      for (const c of chunks) {
        const b = Buffer.from(c.bytes);
        if (round > 0) for (let k = rnd(4); k > 0; k--) b[rnd(b.length)] = rnd(256);
        let at = 0;
        while (at < b.length) {
          const n = 1 + rnd(Math.min(b.length - at, 700));
          if (round > 0 && rnd(20) === 0) h.inst.gap(stream, c.dir, n);
          else h.inst.feed(stream, c.dir, b.subarray(at, at + n), BigInt(at));
          at += n;
        }
      }
      h.inst.closeStream(stream);
    }
  }
  assert.equal(h.inst.counters.traps, 0, h.inst.lastError);
  assert.equal(h.inst.counters.badRecords, 0);
  assert.equal(h.inst.pendingBytes(), 0);
  assert.ok(h.inst.memoryBytes() < 8 * 1024 * 1024, `memory ${h.inst.memoryBytes()}`);
});

// telegen.kafka.transactional_id against tshark's kafka.transactional_id (and the coordinator key
// of a FindCoordinator for a transaction, key type 1), request by request, in every capture. tshark
// shows a null id as "[ Null ]" and Produce v9's (compact) null as ""; both are none.
const haveTshark = spawnSync('tshark', ['-v'], { stdio: 'ignore' }).status === 0;
// (synth-admin-new.pcap's are stated exactly above: tshark 4.0 reads its AddPartitionsToTxn v3+ with the v0 layout.)
for (const file of [...shared, ...own]) {
  test(`transactional ids agree with tshark: ${path.basename(file)}`, { skip: !haveTshark && 'tshark not installed' }, async () => {
    const syn = execFileSync('tshark', ['-r', file, '-Y', 'tcp.flags.syn==1 && tcp.flags.ack==0', '-T', 'fields', '-e', 'tcp.dstport'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const ports = [...new Set([...KAFKA_PORTS, ...syn.split('\n').filter(Boolean).map(Number)])];
    const out = execFileSync('tshark', ['-r', file, ...ports.flatMap((p) => ['-d', `tcp.port==${p},kafka`]), '-Y', 'kafka.request_key && !kafka.response_key', '-T', 'fields',
      '-E', 'occurrence=f', '-e', 'kafka.correlation_id', '-e', 'kafka.request_key', '-e', 'kafka.transactional_id', '-e', 'kafka.coordinator_key', '-e', 'kafka.coordinator_type'],
    { encoding: 'utf8', maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'ignore'] });
    const want: string[] = [];
    for (const line of out.split('\n').filter(Boolean)) {
      const [corr, key, txn, coordKey, coordType] = line.split('\t');
      const id = key === '10' ? (coordType === '1' ? coordKey : '') : txn;
      if (id && id !== '[ Null ]') want.push(`${corr}/${key}/${id}`);
    }
    const rep = await replayKafka(file, ports);
    const got = rep.records.filter((r) => typeof r.attributes['telegen.kafka.transactional_id'] === 'string')
      .map((r) => `${r.attributes['kafka.correlation_id']}/${r.attributes['kafka.api_key']}/${r.attributes['telegen.kafka.transactional_id']}`);
    assert.deepEqual(got.sort(), want.sort());
    if (path.basename(file) === 'heldout-txn.pcapng') assert.equal(want.length, 11);
  });
}

// heldout-sweep.pcapng (testdata/heldout/record-sweep.sh: kafkajs and kcat against the mock
// cluster), beyond what tshark's TSV holds: a GZIP batch, a 280 KiB record (past the 256 KiB input
// window) produced and fetched with exact counts and no FLAG_UNKNOWN (the records end both
// messages), a rebalance (the first member's heartbeats answered REBALANCE_IN_PROGRESS, it joins
// again), and Fetch answers that waited out max-wait empty.
test('heldout-sweep.pcapng: gzip, a record past the window, a rebalance, empty fetches', async () => {
  const rep = await replayKafka(path.join(repoRoot, 'decoders', 'kafka', 'testdata', 'heldout-sweep.pcapng'));
  const pick = (op: string, client: string) => rep.records.filter((r) => r.attributes['messaging.operation.name'] === op && r.attributes['messaging.client.id'] === client);
  const body = (r: (typeof rep.records)[number]) => [r.flags, r.attributes['messaging.destination.partition.id'] ?? null, r.attributes['messaging.batch.message_count'], r.attributes['messaging.message.body.size'], r.attributes['kafka.compression.codec']];
  assert.deepEqual(pick('produce', 'sweep-gzip').map(body), [[0, null, 3, 206, 'gzip'], [0, '1', 1, 286792, 'none']]);
  const bigFetch = pick('fetch', 'sweep-big').filter((r) => Number(r.attributes['messaging.message.body.size']) > 100000);
  assert.deepEqual(bigFetch.map((r) => [r.flags, r.attributes['messaging.batch.message_count'], r.attributes['messaging.message.body.size']]), [[0, 1, 286792]]);
  const m1 = rep.records.filter((r) => r.attributes['messaging.client.id'] === 'sweep-member-1' && r.attributes['messaging.consumer.group.name'] === 'sweep-group');
  assert.equal(m1.filter((r) => r.attributes['messaging.operation.name'] === 'join_group').length, 2);
  const rebalancing = m1.filter((r) => r.attributes['kafka.error_code'] === 27);
  assert.ok(rebalancing.length >= 1 && rebalancing.every((r) => r.attributes['messaging.operation.name'] === 'heartbeat' && r.attributes['error.type'] === 'REBALANCE_IN_PROGRESS' && r.flags === FLAG_ERROR));
  assert.equal(pick('join_group', 'sweep-member-2').length, 1);
  const fetches = rep.records.filter((r) => r.attributes['messaging.operation.name'] === 'fetch' && /^sweep-member/.test(String(r.attributes['messaging.client.id'])));
  assert.ok(fetches.length >= 20, `${fetches.length} fetches`);
  assert.ok(fetches.every((r) => r.flags === 0 && r.attributes['messaging.batch.message_count'] === 0 && r.attributes['messaging.message.body.size'] === 0));
});
