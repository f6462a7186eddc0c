// Kafka decoder unit tests: exact attributes per API, flexible vs classic encodings, split reads,
// pipelining, one-way produce, unsupported APIs, hostile input, large messages, gaps, timeouts.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'child_process';
import * as path from 'path';
import { loadDecoder, repoRoot, Harness } from '../helpers/decoder';
import { FLAG_ERROR, FLAG_NO_RESPONSE, FLAG_NO_REQUEST, FLAG_UNKNOWN, FLAG_TIMEOUT } from '../../decoders/abi/abi';
import { W, request, response, recordBatch, kafkajs, REQ, RESP, base } from './kafka-helpers';

execFileSync(process.execPath, [path.join(repoRoot, 'decoders', 'build.js'), 'kafka'], { stdio: 'ignore' });

function fresh(): Harness { return loadDecoder('kafka'); }

function only(h: Harness): Record<string, unknown> {
  assert.equal(h.records.length, 1, `expected one record, got ${JSON.stringify(h.records.map((r) => r.attributes))}`);
  return h.records[0].attributes;
}

// ---- per API, exact attributes ---------------------------------------------------------------

test('ApiVersions v3: flexible request header v2, response header v0 (always), body flexible', () => {
  const h = fresh();
  const req = request(18, 3, 7, 'adminclient-1', new W().cstr('apache-kafka-java').cstr('3.7.0').tag0().done(), true);
  const resp = response(7, new W().i16(0).carr(1).i16(0).i16(0).i16(11).tag0().i32(0).tag0().done(), false);
  h.inst.feed(1, REQ, req, 1000n);
  h.inst.feed(1, RESP, resp, 3000n);
  assert.deepEqual(only(h), {
    ...base(18, 3, 7, 'api_versions'),
    'messaging.client.id': 'adminclient-1',
    'telegen.request.size': req.length,
    'telegen.response.size': resp.length,
  });
  assert.equal(h.records[0].flags, 0);
  assert.equal(h.records[0].tsStart, 1000n);
  assert.equal(h.records[0].tsEnd, 3000n);
});

test('ApiVersions answered UNSUPPORTED_VERSION is version negotiation: code kept, not an error', () => {
  const h = fresh();
  const req = request(18, 3, 1, 'rdkafka', new W().cstr('librdkafka').cstr('2.0.2').tag0().done(), true);
  const resp = response(1, new W().i16(35).arr(0).done(), false);
  h.inst.feed(1, REQ, req, 1n); h.inst.feed(1, RESP, resp, 2n);
  const a = only(h);
  assert.equal(a['kafka.error_code'], 35);
  assert.equal(a['error.type'], undefined);
  assert.equal(h.records[0].flags, 0);
  // Any other ApiVersions error is one.
  h.inst.feed(1, REQ, request(18, 0, 2, 'x', Buffer.alloc(0), false), 3n);
  h.inst.feed(1, RESP, response(2, new W().i16(31).arr(0).done(), false), 4n);
  assert.equal(h.records[1].attributes['error.type'], 'CLUSTER_AUTHORIZATION_FAILED');
  assert.equal(h.records[1].flags, FLAG_ERROR);
});

test('Produce v3 from kafkajs (gzip, 2 records): topic, partition, count, codec, body size, offset', async () => {
  const h = fresh();
  const req = await kafkajs('produce', 3, {
    acks: -1, timeout: 30000, compression: 1,
    topicData: [{ topic: 'orders', partitions: [{ partition: 2, messages: [{ key: 'k1', value: 'v1' }, { key: 'k2', value: 'v2' }] }] }],
  }, 11, 'my-app');
  // Records field = whole request minus fixed framing: size, header (2+2+4+2+6), txn id (2),
  // acks (2), timeout (4), topics array (4), topic (2+6), partitions array (4), partition (4), bytes length (4).
  const recordsLen = req.length - (4 + 16 + 2 + 2 + 4 + 4 + 8 + 4 + 4 + 4);
  const resp = response(11, new W().arr(1).str('orders').arr(1).i32(2).i16(0).i64(42).i64(-1).i32(0).done(), false);
  h.inst.feed(3, REQ, req, 10n); h.inst.feed(3, RESP, resp, 20n);
  assert.deepEqual(only(h), {
    ...base(0, 3, 11, 'produce'),
    'messaging.operation.type': 'send',
    'messaging.client.id': 'my-app',
    'messaging.destination.name': 'orders',
    'messaging.destination.partition.id': '2',
    'messaging.batch.message_count': 2,
    'messaging.message.body.size': recordsLen,
    'kafka.compression.codec': 'gzip',
    'telegen.kafka.acks': -1,
    'messaging.kafka.offset': 42,
    'telegen.request.size': req.length,
    'telegen.response.size': resp.length,
  });
});

test('error.type names Kafka error codes; unknown codes keep the number', () => {
  const h = fresh();
  const names: Array<[number, string]> = [[-1, 'UNKNOWN_SERVER_ERROR'], [3, 'UNKNOWN_TOPIC_OR_PARTITION'], [58, 'SASL_AUTHENTICATION_FAILED'],
    [82, 'FENCED_INSTANCE_ID'], [100, 'UNKNOWN_TOPIC_ID'], [101, 'DUPLICATE_BROKER_REGISTRATION'], [113, 'STALE_MEMBER_EPOCH'],
    [120, 'TRANSACTION_ABORTABLE'], [121, '121'], [5120, '5120'], [-32768, '-32768']];
  names.forEach(([code], i) => {
    h.inst.feed(1, REQ, request(12, 4, i, 'e', new W().cstr('g').i32(1).cstr('m').cstr(null).tag0().done(), true), 1n);
    h.inst.feed(1, RESP, response(i, new W().i32(0).i16(code).tag0().done(), true), 2n);
  });
  assert.deepEqual(h.records.map((r) => [r.attributes['kafka.error_code'], r.attributes['error.type'], r.flags]), names.map(([c, n]) => [c, n, FLAG_ERROR]));
});

test('Produce acks=0 has no response: emitted at once as a completed one-way send', async () => {
  const h = fresh();
  const req = await kafkajs('produce', 3, {
    acks: 0, timeout: 1000,
    topicData: [{ topic: 'logs', partitions: [{ partition: 0, messages: [{ value: 'a' }] }] }],
  }, 5, 'fire');
  h.inst.feed(1, REQ, req, 100n);
  const a = only(h);
  assert.equal(h.records[0].flags, 0);
  assert.equal(a['telegen.kafka.acks'], 0);
  assert.equal(a['messaging.batch.message_count'], 1);
  assert.equal(a['messaging.destination.name'], 'logs');
  assert.equal(a['telegen.response.size'], undefined);
  // A stray answer (brokers send none; librdkafka's mock does) is dropped, not a second record.
  h.inst.feed(1, RESP, response(5, new W().arr(1).str('logs').arr(1).i32(0).i16(0).i64(0).i64(-1).i32(0).done(), false), 200n);
  // Nothing stays pending: closing the stream flushes nothing more.
  h.inst.closeStream(1);
  assert.equal(h.records.length, 1);
});

test('Produce v9 (flexible) with two topics: first topic named, all listed, counts summed, error first non-zero', () => {
  const h = fresh();
  const b1 = recordBatch(0, 3, 4, 40);
  const b2 = recordBatch(0, 2, 4, 10);
  const body = new W().cstr(null).i16(1).i32(1500).carr(2)
    .cstr('a-topic').carr(1).i32(0).cbytes(b1).tag0().tag0()
    .cstr('b-topic').carr(1).i32(5).cbytes(b2).tag0().tag0()
    .tag0().done();
  const req = request(0, 9, 99, 'console-producer', body, true);
  const rbody = new W().carr(2)
    .cstr('a-topic').carr(1).i32(0).i16(0).i64(10).i64(-1).i64(0).carr(0).cstr(null).tag0().tag0()
    .cstr('b-topic').carr(1).i32(5).i16(6).i64(-1).i64(-1).i64(-1).carr(0).cstr('not leader').tag0().tag0()
    .i32(0).tag0().done();
  const resp = response(99, rbody, true);
  h.inst.feed(1, REQ, req, 1n); h.inst.feed(1, RESP, resp, 2n);
  assert.deepEqual(only(h), {
    ...base(0, 9, 99, 'produce'),
    'messaging.operation.type': 'send',
    'messaging.client.id': 'console-producer',
    'messaging.destination.name': 'a-topic',
    'telegen.kafka.topics': ['a-topic', 'b-topic'],
    'telegen.kafka.partition_count': 2,
    'messaging.batch.message_count': 5,
    'messaging.message.body.size': b1.length + b2.length,
    'kafka.compression.codec': 'zstd',
    'telegen.kafka.acks': 1,
    'kafka.error_code': 6,
    'error.type': 'NOT_LEADER_OR_FOLLOWER',
    'telegen.request.size': req.length,
    'telegen.response.size': resp.length,
  });
  assert.equal(h.records[0].flags, FLAG_ERROR);
});

test('Fetch v11 from kafkajs: request partition/offset; response records, bytes, high watermark', async () => {
  const h = fresh();
  const req = await kafkajs('fetch', 11, {
    replicaId: -1, maxWaitTime: 500, minBytes: 1, maxBytes: 1048576,
    topics: [{ topic: 'orders', partitions: [{ partition: 0, fetchOffset: '17', maxBytes: 1048576 }] }],
  }, 21, 'consumer-1');
  const batches = Buffer.concat([recordBatch(17, 3, 0, 30), recordBatch(20, 1, 0, 5)]);
  // A trailing partial batch (brokers may cut the last one) is not counted.
  const partial = recordBatch(21, 9, 0, 50).subarray(0, 40);
  const records = Buffer.concat([batches, partial]);
  const rbody = new W().i32(0).i16(0).i32(123)
    .arr(1).str('orders').arr(1).i32(0).i16(0).i64(100).i64(100).i64(0).arr(-1).i32(-1).bytes(records).done();
  const resp = response(21, rbody, false);
  h.inst.feed(2, REQ, req, 1n); h.inst.feed(2, RESP, resp, 2n);
  assert.deepEqual(only(h), {
    ...base(1, 11, 21, 'fetch'),
    'messaging.operation.type': 'receive',
    'messaging.client.id': 'consumer-1',
    'messaging.destination.name': 'orders',
    'messaging.destination.partition.id': '0',
    'messaging.batch.message_count': 4,
    'messaging.message.body.size': records.length,
    'kafka.compression.codec': 'none',
    'messaging.kafka.offset': 17,
    'telegen.kafka.high_watermark': 100,
    'telegen.request.size': req.length,
    'telegen.response.size': resp.length,
  });
});

test('Fetch v12 (flexible, tagged fields with content) and an OFFSET_OUT_OF_RANGE partition error', () => {
  const h = fresh();
  const body = new W().i32(-1).i32(500).i32(1).i32(52428800).i8(0).i32(0).i32(-1)
    .carr(1).cstr('payments').carr(1).i32(3).i32(0).i64(999).i32(-1).i64(-1).i32(1048576).tag0().tag0()
    .carr(0).cstr('rack-a').tagged(0, Buffer.from('cluster-xyz')).done();
  const req = request(1, 12, 4, 'consumer-x', body, true);
  const rbody = new W().i32(0).i16(0).i32(0)
    .carr(1).cstr('payments').carr(1).i32(3).i16(1).i64(500).i64(500).i64(0)
    .tagged(1, new W().i32(1).i32(5).tag0().done()) // CurrentLeader would be here in a real tag; skipped
    .done();
  // Tagged fields come last in a partition: rebuild the partition in the right order.
  const rbody2 = new W().i32(0).i16(0).i32(0)
    .carr(1).cstr('payments').carr(1).i32(3).i16(1).i64(500).i64(500).i64(0)
    .carr(-1).i32(-1).cbytes(Buffer.alloc(0)).tagged(1, new W().i32(1).i32(5).tag0().done())
    .tag0().tag0().done();
  void rbody;
  const resp = response(4, rbody2, true);
  h.inst.feed(1, REQ, req, 1n); h.inst.feed(1, RESP, resp, 2n);
  assert.deepEqual(only(h), {
    ...base(1, 12, 4, 'fetch'),
    'messaging.operation.type': 'receive',
    'messaging.client.id': 'consumer-x',
    'messaging.destination.name': 'payments',
    'messaging.destination.partition.id': '3',
    'messaging.batch.message_count': 0,
    'messaging.message.body.size': 0,
    'messaging.kafka.offset': 999,
    'telegen.kafka.high_watermark': 500,
    'kafka.error_code': 1,
    'error.type': 'OFFSET_OUT_OF_RANGE',
    'telegen.request.size': req.length,
    'telegen.response.size': resp.length,
  });
  assert.equal(h.records[0].flags, FLAG_ERROR);
});

const TOPIC_ID = '0f1e2d3c4b5a69788796a5b4c3d2e1f0';

test('Fetch v13 names its topic by id: learnt from a Metadata v12 response, else the id itself', () => {
  const h = fresh();
  const fetch13 = (corr: number) => request(1, 13, corr, 'c', new W().i32(-1).i32(500).i32(1).i32(1000).i8(0).i32(0).i32(-1)
    .carr(1).uuid(TOPIC_ID).carr(1).i32(0).i32(0).i64(5).i32(-1).i64(-1).i32(1000).tag0().tag0()
    .carr(0).cstr('').tag0().done(), true);
  // Unknown id first: the base64url form Kafka tools print.
  h.inst.feed(1, REQ, fetch13(1), 1n);
  h.inst.closeStream(1);
  assert.equal(h.records[0].attributes['telegen.kafka.topic_id'], Buffer.from(TOPIC_ID, 'hex').toString('base64url'));
  assert.equal(h.records[0].attributes['messaging.destination.name'], undefined);
  assert.equal(h.records[0].flags, FLAG_NO_RESPONSE);

  const mreq = request(3, 12, 2, 'c', new W().carr(1).uuid('00000000000000000000000000000000').cstr('inventory').tag0().i8(1).i8(0).tag0().done(), true);
  const mresp = response(2, new W().i32(0)
    .carr(1).i32(1).cstr('127.0.0.1').i32(9092).cstr(null).tag0()
    .cstr('cluster').i32(1)
    .carr(1).i16(0).cstr('inventory').uuid(TOPIC_ID).i8(0)
    .carr(1).i16(0).i32(0).i32(1).i32(0).carr(1).i32(1).carr(1).i32(1).carr(0).tag0()
    .i32(-2147483648).tag0()
    .tag0().done(), true);
  h.inst.feed(2, REQ, mreq, 3n); h.inst.feed(2, RESP, mresp, 4n);
  assert.deepEqual(h.records[1].attributes, {
    ...base(3, 12, 2, 'metadata'),
    'messaging.client.id': 'c',
    'messaging.destination.name': 'inventory',
    'messaging.destination.partition.id': '0',
    'telegen.request.size': mreq.length,
    'telegen.response.size': mresp.length,
  });
  h.inst.feed(3, REQ, fetch13(3), 5n);
  h.inst.closeStream(3);
  assert.equal(h.records[2].attributes['messaging.destination.name'], 'inventory');
  assert.equal(h.records[2].attributes['telegen.kafka.topic_id'], undefined);
});

test('Metadata v1 from kafkajs for two topics; response errors per topic', async () => {
  const h = fresh();
  const req = await kafkajs('metadata', 1, { topics: ['alpha', 'beta'] }, 3, 'meta-client');
  const resp = response(3, new W()
    .arr(1).i32(0).str('localhost').i32(9092).str(null)
    .i32(0)
    .arr(2)
    .i16(0).str('alpha').i8(0).arr(2)
    .i16(0).i32(0).i32(0).arr(1).i32(0).arr(1).i32(0)
    .i16(0).i32(1).i32(0).arr(1).i32(0).arr(1).i32(0)
    .i16(3).str('beta').i8(0).arr(0)
    .done(), false);
  h.inst.feed(1, REQ, req, 1n); h.inst.feed(1, RESP, resp, 2n);
  assert.deepEqual(only(h), {
    ...base(3, 1, 3, 'metadata'),
    'messaging.client.id': 'meta-client',
    'messaging.destination.name': 'alpha',
    'telegen.kafka.topics': ['alpha', 'beta'],
    'telegen.kafka.partition_count': 2,
    'kafka.error_code': 3,
    'error.type': 'UNKNOWN_TOPIC_OR_PARTITION',
    'telegen.request.size': req.length,
    'telegen.response.size': resp.length,
  });
});

test('consumer group APIs from kafkajs carry the group; errors come from the response', async () => {
  const h = fresh();
  const cases: Array<[string, number, Record<string, unknown>, number, string, Buffer, Record<string, unknown>]> = [
    ['findCoordinator', 2, { coordinatorKey: 'grp-a', coordinatorType: 0 }, 10, 'find_coordinator',
      new W().i32(0).i16(0).str(null).i32(1).str('localhost').i32(9092).done(), {}],
    ['joinGroup', 5, { groupId: 'grp-a', sessionTimeout: 30000, rebalanceTimeout: 60000, memberId: '', protocolType: 'consumer', groupProtocols: [{ name: 'RoundRobinAssigner', metadata: Buffer.from('x') }] }, 11, 'join_group',
      new W().i32(0).i16(79).i32(-1).str('').str('').str('member-1').arr(0).done(), { 'kafka.error_code': 79, 'error.type': 'MEMBER_ID_REQUIRED' }],
    ['syncGroup', 3, { groupId: 'grp-a', generationId: 1, memberId: 'member-1', groupAssignment: [] }, 14, 'sync_group',
      new W().i32(0).i16(0).bytes(Buffer.alloc(0)).done(), {}],
    ['heartbeat', 3, { groupId: 'grp-a', groupGenerationId: 1, memberId: 'member-1' }, 12, 'heartbeat',
      new W().i32(0).i16(27).done(), { 'kafka.error_code': 27, 'error.type': 'REBALANCE_IN_PROGRESS' }],
    ['leaveGroup', 3, { groupId: 'grp-a', members: [{ memberId: 'member-1', groupInstanceId: null }] }, 13, 'leave_group',
      new W().i32(0).i16(0).arr(1).str('member-1').str(null).i16(25).done(), { 'kafka.error_code': 25, 'error.type': 'UNKNOWN_MEMBER_ID' }],
  ];
  let corr = 100;
  for (const [api, ver, args, key, name, rbody, extra] of cases) {
    h.records.length = 0;
    corr++;
    const req = await kafkajs(api, ver, args, corr, 'cg');
    const resp = response(corr, rbody, false);
    h.inst.feed(1, REQ, req, 1n); h.inst.feed(1, RESP, resp, 2n);
    assert.deepEqual(only(h), {
      ...base(key, ver, corr, name),
      'messaging.client.id': 'cg',
      'messaging.consumer.group.name': 'grp-a',
      ...extra,
      'telegen.request.size': req.length,
      'telegen.response.size': resp.length,
    }, api);
  }
});

test('OffsetCommit v5 / OffsetFetch v4 / ListOffsets v3 / CreateTopics v3 / InitProducerId v1 from kafkajs', async () => {
  const h = fresh();
  const run = async (api: string, ver: number, args: Record<string, unknown>, corr: number, rbody: Buffer): Promise<Record<string, unknown>> => {
    h.records.length = 0;
    const req = await kafkajs(api, ver, args, corr, 'ops');
    h.inst.feed(1, REQ, req, 1n); h.inst.feed(1, RESP, response(corr, rbody, false), 2n);
    return only(h);
  };
  let a = await run('offsetCommit', 5, { groupId: 'g1', groupGenerationId: 3, memberId: 'm', topics: [{ topic: 'orders', partitions: [{ partition: 1, offset: '55' }] }] }, 1,
    new W().i32(0).arr(1).str('orders').arr(1).i32(1).i16(0).done());
  assert.equal(a['messaging.operation.name'], 'offset_commit');
  assert.equal(a['messaging.operation.type'], 'settle');
  assert.equal(a['messaging.consumer.group.name'], 'g1');
  assert.equal(a['messaging.destination.name'], 'orders');
  assert.equal(a['messaging.destination.partition.id'], '1');
  assert.equal(a['messaging.kafka.offset'], 55);
  assert.equal(a['kafka.error_code'], undefined);

  a = await run('offsetFetch', 4, { groupId: 'g1', topics: [{ topic: 'orders', partitions: [{ partition: 1 }] }] }, 2,
    new W().i32(0).arr(1).str('orders').arr(1).i32(1).i64(55).str('').i16(0).i16(0).done());
  assert.deepEqual([a['messaging.operation.name'], a['messaging.consumer.group.name'], a['messaging.destination.name'], a['messaging.destination.partition.id'], a['messaging.kafka.offset']],
    ['offset_fetch', 'g1', 'orders', '1', 55]);

  a = await run('listOffsets', 3, { replicaId: -1, isolationLevel: 1, topics: [{ topic: 'orders', partitions: [{ partition: 0, timestamp: '-1' }] }] }, 3,
    new W().i32(0).arr(1).str('orders').arr(1).i32(0).i16(0).i64(-1).i64(1234).done());
  assert.deepEqual([a['messaging.operation.name'], a['messaging.destination.name'], a['messaging.destination.partition.id'], a['messaging.kafka.offset']],
    ['list_offsets', 'orders', '0', 1234]);

  a = await run('createTopics', 3, { topics: [{ topic: 'new-topic', numPartitions: 3, replicationFactor: 1 }], timeout: 5000, validateOnly: false }, 4,
    new W().i32(0).arr(1).str('new-topic').i16(36).str('Topic already exists').done());
  assert.deepEqual([a['messaging.operation.name'], a['messaging.destination.name'], a['kafka.error_code'], a['error.type']],
    ['create_topics', 'new-topic', 36, 'TOPIC_ALREADY_EXISTS']);

  a = await run('initProducerId', 1, { transactionalId: null, transactionTimeout: 60000 }, 5,
    new W().i32(0).i16(0).i64(4000).i16(0).done());
  assert.equal(a['messaging.operation.name'], 'init_producer_id');
  assert.equal(a['kafka.error_code'], undefined);
});

test('flexible group APIs (JoinGroup v7, SyncGroup v5, Heartbeat v4, OffsetCommit v8, OffsetFetch v8, FindCoordinator v4, InitProducerId v4, CreateTopics v5)', () => {
  const h = fresh();
  const flex = (key: number, ver: number, corr: number, body: Buffer, rbody: Buffer): Record<string, unknown> => {
    h.records.length = 0;
    h.inst.feed(1, REQ, request(key, ver, corr, 'flexy', body, true), 1n);
    h.inst.feed(1, RESP, response(corr, rbody, true), 2n);
    return only(h);
  };
  let a = flex(11, 7, 1, new W().cstr('fg').i32(45000).i32(300000).cstr('').cstr(null).cstr('consumer').carr(1).cstr('range').cbytes(Buffer.from([0, 1])).tag0().tag0().done(),
    new W().i32(0).i16(0).i32(1).cstr('consumer').cstr('range').cstr('m1').cstr('m1').carr(0).tag0().done());
  assert.equal(a['messaging.consumer.group.name'], 'fg');
  assert.equal(a['kafka.error_code'], undefined);
  a = flex(14, 5, 2, new W().cstr('fg').i32(1).cstr('m1').cstr(null).cstr('consumer').cstr('range').carr(0).tag0().done(),
    new W().i32(0).i16(22).cstr('consumer').cstr('range').cbytes(Buffer.alloc(0)).tag0().done());
  assert.deepEqual([a['messaging.consumer.group.name'], a['kafka.error_code'], a['error.type']], ['fg', 22, 'ILLEGAL_GENERATION']);
  a = flex(12, 4, 3, new W().cstr('fg').i32(1).cstr('m1').cstr(null).tag0().done(), new W().i32(0).i16(0).tag0().done());
  assert.equal(a['messaging.operation.name'], 'heartbeat');
  a = flex(8, 8, 4, new W().cstr('fg').i32(1).cstr('m1').cstr(null).carr(1).cstr('t8').carr(1).i32(2).i64(77).i32(-1).cstr('').tag0().tag0().tag0().done(),
    new W().i32(0).carr(1).cstr('t8').carr(1).i32(2).i16(0).tag0().tag0().tag0().done());
  assert.deepEqual([a['messaging.destination.name'], a['messaging.destination.partition.id'], a['messaging.kafka.offset']], ['t8', '2', 77]);
  a = flex(9, 8, 5, new W().carr(1).cstr('fg').carr(1).cstr('t8').carr(1).i32(2).tag0().tag0().i8(0).tag0().done(),
    new W().i32(0).carr(1).cstr('fg').carr(1).cstr('t8').carr(1).i32(2).i64(77).i32(-1).cstr('').i16(0).tag0().tag0().i16(16).tag0().tag0().done());
  assert.deepEqual([a['messaging.consumer.group.name'], a['messaging.destination.name'], a['kafka.error_code']], ['fg', 't8', 16]);
  a = flex(10, 4, 6, new W().i8(0).carr(1).cstr('fg').tag0().done(),
    new W().i32(0).carr(1).cstr('fg').i32(1).cstr('localhost').i32(9092).i16(15).cstr(null).tag0().tag0().done());
  assert.deepEqual([a['messaging.consumer.group.name'], a['kafka.error_code'], a['error.type']], ['fg', 15, 'COORDINATOR_NOT_AVAILABLE']);
  a = flex(22, 4, 7, new W().cstr(null).i32(60000).i64(-1).i16(-1).tag0().done(), new W().i32(0).i16(0).i64(1).i16(0).tag0().done());
  assert.equal(a['messaging.operation.name'], 'init_producer_id');
  a = flex(19, 5, 8, new W().carr(1).cstr('nt').i32(1).i16(1).carr(0).carr(1).cstr('retention.ms').cstr('1000').tag0().tag0().i32(30000).i8(0).tag0().done(),
    new W().i32(0).carr(1).cstr('nt').i16(0).cstr(null).i32(1).i16(1).carr(-1).tag0().tag0().done());
  assert.deepEqual([a['messaging.destination.name'], a['kafka.error_code']], ['nt', undefined]);
  // Transactional-id coordinator lookup is not a consumer group.
  a = flex(10, 4, 9, new W().i8(1).carr(1).cstr('txn-1').tag0().done(),
    new W().i32(0).carr(1).cstr('txn-1').i32(1).cstr('localhost').i32(9092).i16(0).cstr(null).tag0().tag0().done());
  assert.equal(a['messaging.consumer.group.name'], undefined);
});

test('DescribeGroups, DeleteGroups, TxnOffsetCommit name the group; DeleteTopics v6 a topic by name or id', () => {
  const h = fresh();
  const one = (key: number, ver: number, flexible: boolean, body: Buffer, rbody: Buffer): Record<string, unknown> => {
    h.records.length = 0;
    h.inst.feed(1, REQ, request(key, ver, 1, 'adm', body, flexible), 1n);
    h.inst.feed(1, RESP, response(1, rbody, flexible), 2n);
    return only(h);
  };
  let a = one(15, 5, true, new W().carr(2).cstr('dg-1').cstr('dg-2').i8(0).tag0().done(), new W().i32(0).carr(0).tag0().done());
  assert.deepEqual([a['messaging.operation.name'], a['messaging.consumer.group.name']], ['describe_groups', 'dg-1']);
  a = one(42, 1, false, new W().arr(1).str('old-group').done(), new W().i32(0).arr(0).done());
  assert.deepEqual([a['messaging.operation.name'], a['messaging.consumer.group.name']], ['delete_groups', 'old-group']);
  a = one(28, 3, true, new W().cstr('txn').cstr('tx-group').i64(1).i16(0).i32(-1).cstr('').cstr(null).carr(0).tag0().done(), new W().i32(0).carr(0).tag0().done());
  assert.deepEqual([a['messaging.operation.name'], a['messaging.consumer.group.name'], a['messaging.operation.type']], ['txn_offset_commit', 'tx-group', 'settle']);
  a = one(20, 6, true, new W().carr(1).cstr(null).uuid(TOPIC_ID).tag0().i32(1000).tag0().done(), new W().i32(0).carr(0).tag0().done());
  assert.deepEqual([a['messaging.operation.name'], a['telegen.kafka.topic_id']], ['delete_topics', Buffer.from(TOPIC_ID, 'hex').toString('base64url')]);
  a = one(20, 3, false, new W().arr(2).str('gone-1').str('gone-2').i32(1000).done(), new W().i32(0).arr(0).done());
  assert.deepEqual([a['messaging.destination.name'], a['telegen.kafka.topics']], ['gone-1', ['gone-1', 'gone-2']]);
});

test('SaslHandshake v0: the bare SASL token frames that follow are skipped, never described', () => {
  const h = fresh();
  h.inst.feed(1, REQ, request(17, 0, 1, 'auth', new W().str('PLAIN').done(), false), 1n);
  h.inst.feed(1, RESP, response(1, new W().i16(0).arr(1).str('PLAIN').done(), false), 2n);
  // PLAIN token: authzid NUL user NUL password, size-prefixed, no Kafka header; an empty answer.
  const token = Buffer.from('\0alice\0s3cret-password', 'latin1');
  h.inst.feed(1, REQ, Buffer.concat([new W().i32(token.length).done(), token]), 3n);
  h.inst.feed(1, RESP, new W().i32(0).done(), 4n);
  h.inst.feed(1, REQ, request(3, 1, 2, 'auth', new W().arr(0).done(), false), 5n);
  h.inst.feed(1, RESP, response(2, new W().arr(0).i32(1).arr(0).done(), false), 6n);
  assert.deepEqual(h.records.map((r) => [r.attributes['messaging.operation.name'], r.attributes['kafka.correlation_id'], r.flags]),
    [['sasl_handshake', 1, 0], ['metadata', 2, 0]]);
  assert.ok(!JSON.stringify(h.records.map((r) => r.attributes)).includes('s3cret'));
  assert.equal(h.inst.pendingBytes(), 0);
});

// ---- framing ----------------------------------------------------------------------------------

async function produceExchange(corr: number): Promise<[Buffer, Buffer]> {
  const req = await kafkajs('produce', 3, {
    acks: 1, timeout: 1000,
    topicData: [{ topic: 'split', partitions: [{ partition: 0, messages: [{ key: 'a', value: 'b' }] }] }],
  }, corr, 'splitter');
  return [req, response(corr, new W().arr(1).str('split').arr(1).i32(0).i16(0).i64(9).i64(-1).i32(0).done(), false)];
}

test('split reads: every byte boundary of a classic and a flexible exchange gives the same record', async () => {
  const [req, resp] = await produceExchange(5);
  const fReq = request(1, 12, 6, 'flex', new W().i32(-1).i32(500).i32(1).i32(1000).i8(0).i32(0).i32(-1)
    .carr(1).cstr('t').carr(1).i32(0).i32(0).i64(1).i32(-1).i64(-1).i32(100).tag0().tag0().carr(0).cstr('').tag0().done(), true);
  const fResp = response(6, new W().i32(0).i16(0).i32(0).carr(1).cstr('t').carr(1).i32(0).i16(0).i64(2).i64(2).i64(0)
    .carr(-1).i32(-1).cbytes(recordBatch(1, 1, 0, 3)).tag0().tag0().tag0().done(), true);
  for (const [q, r] of [[req, resp], [fReq, fResp]] as Array<[Buffer, Buffer]>) {
    const whole = fresh();
    whole.inst.feed(1, REQ, q, 1n); whole.inst.feed(1, RESP, r, 2n);
    const want = only(whole);
    for (let cut = 1; cut < q.length; cut++) {
      const h = fresh();
      h.inst.feed(1, REQ, q.subarray(0, cut), 1n);
      h.inst.feed(1, REQ, q.subarray(cut), 1n);
      h.inst.feed(1, RESP, r, 2n);
      assert.deepEqual(only(h), want, `request cut at ${cut}`);
    }
    for (let cut = 1; cut < r.length; cut++) {
      const h = fresh();
      h.inst.feed(1, REQ, q, 1n);
      h.inst.feed(1, RESP, r.subarray(0, cut), 2n);
      h.inst.feed(1, RESP, r.subarray(cut), 3n);
      assert.deepEqual(only(h), want, `response cut at ${cut}`);
      assert.equal(h.records[0].tsEnd, 3n);
    }
    const h = fresh();
    for (let i = 0; i < q.length; i++) h.inst.feed(1, REQ, q.subarray(i, i + 1), 10n + BigInt(i));
    for (let i = 0; i < r.length; i++) h.inst.feed(1, RESP, r.subarray(i, i + 1), 1000n + BigInt(i));
    assert.deepEqual(only(h), want, 'one byte at a time');
    assert.equal(h.records[0].tsStart, 10n, 'ts_start = first request byte');
    assert.equal(h.records[0].tsEnd, 1000n + BigInt(r.length - 1), 'ts_end = last response byte');
  }
});

test('pipelining: 50 requests in flight, answered in order in one read; mixed APIs', async () => {
  const h = fresh();
  const reqs: Buffer[] = [];
  const resps: Buffer[] = [];
  for (let i = 0; i < 50; i++) {
    if (i % 2 === 0) {
      const [q, r] = await produceExchange(1000 + i);
      reqs.push(q); resps.push(r);
    } else {
      reqs.push(request(12, 4, 1000 + i, 'hb', new W().cstr(`g${i}`).i32(1).cstr('m').cstr(null).tag0().done(), true));
      resps.push(response(1000 + i, new W().i32(0).i16(0).tag0().done(), true));
    }
  }
  h.inst.feed(1, REQ, Buffer.concat(reqs), 1n);
  assert.equal(h.records.length, 0);
  h.inst.feed(1, RESP, Buffer.concat(resps), 2n);
  assert.equal(h.records.length, 50);
  h.records.forEach((r, i) => {
    assert.equal(r.attributes['kafka.correlation_id'], 1000 + i);
    assert.equal(r.attributes['kafka.api_key'], i % 2 === 0 ? 0 : 12);
    if (i % 2 === 1) assert.equal(r.attributes['messaging.consumer.group.name'], `g${i}`);
    assert.equal(r.flags, 0);
  });
});

test('in-flight requests are bounded: beyond 64 the oldest is flushed unanswered', () => {
  const h = fresh();
  const hb = (c: number) => request(12, 4, c, 'hb', new W().cstr('g').i32(1).cstr('m').cstr(null).tag0().done(), true);
  for (let c = 0; c < 100; c++) h.inst.feed(1, REQ, hb(c), BigInt(c));
  assert.equal(h.records.length, 36);
  assert.ok(h.records.every((r, i) => r.flags === FLAG_NO_RESPONSE && r.attributes['kafka.correlation_id'] === i));
  h.inst.feed(1, RESP, response(99, new W().i32(0).i16(0).tag0().done(), true), 200n);
  // Kafka answers in order: the 63 requests before 99 will never be answered.
  assert.equal(h.records.length, 36 + 64);
  assert.equal(h.records.at(-1)!.flags, 0);
  assert.equal(h.records.at(-1)!.attributes['kafka.correlation_id'], 99);
});

test('a response whose request was not seen: FLAG_NO_REQUEST with the correlation id only', () => {
  const h = fresh();
  h.inst.feed(1, RESP, response(77, new W().i16(0).done(), false), 5n);
  assert.deepEqual(only(h), {
    'network.protocol.name': 'kafka', 'messaging.system': 'kafka', 'kafka.correlation_id': 77, 'telegen.response.size': 10,
  });
  assert.equal(h.records[0].flags, FLAG_NO_REQUEST);
});

test('unsupported api / version: header-level record, body skipped by size, next message decoded', async () => {
  const h = fresh();
  const unknownKey = request(500, 0, 1, 'future', Buffer.alloc(30, 7), false);
  const newVersion = request(0, 42, 2, 'future', Buffer.alloc(50, 0xff), false);
  const known = (await produceExchange(3));
  h.inst.feed(1, REQ, Buffer.concat([unknownKey, newVersion, known[0]]), 1n);
  h.inst.feed(1, RESP, Buffer.concat([response(1, Buffer.alloc(9), false), response(2, Buffer.alloc(3), false), known[1]]), 2n);
  assert.equal(h.records.length, 3);
  assert.deepEqual(h.records[0].attributes, {
    'network.protocol.name': 'kafka', 'messaging.system': 'kafka', 'kafka.api_key': 500, 'kafka.api_version': 0,
    'kafka.correlation_id': 1, 'messaging.client.id': 'future', 'telegen.request.size': unknownKey.length, 'telegen.response.size': 17,
  });
  assert.deepEqual(h.records[1].attributes, {
    ...base(0, 42, 2, 'produce'), 'messaging.operation.type': 'send', 'messaging.client.id': 'future',
    'telegen.request.size': newVersion.length, 'telegen.response.size': 11,
  });
  assert.equal(h.records[2].attributes['messaging.destination.name'], 'split');
  assert.ok(h.records.every((r) => r.flags === 0));
});

test('a message larger than the input window: prefix decoded, rest skipped, next message decoded', async () => {
  const h = fresh();
  const big = recordBatch(0, 5000, 3, 400000);
  const req = request(0, 9, 1, 'bulk', new W().cstr(null).i16(-1).i32(1000).carr(1).cstr('bulk-topic').carr(1).i32(4).cbytes(big).tag0().tag0().tag0().done(), true);
  const [next, nextResp] = await produceExchange(2);
  const stream = Buffer.concat([req, next]);
  for (let i = 0; i < stream.length; i += 65536) h.inst.feed(1, REQ, stream.subarray(i, i + 65536), 1n + BigInt(i));
  h.inst.feed(1, RESP, response(1, new W().carr(1).cstr('bulk-topic').carr(1).i32(4).i16(0).i64(0).i64(-1).i64(0).carr(0).cstr(null).tag0().tag0().i32(0).tag0().done(), true), 9n);
  h.inst.feed(1, RESP, nextResp, 10n);
  assert.equal(h.inst.counters.overflows, 0);
  assert.equal(h.records.length, 2);
  const a = h.records[0].attributes;
  assert.equal(a['messaging.destination.name'], 'bulk-topic');
  assert.equal(a['messaging.batch.message_count'], 5000);
  assert.equal(a['messaging.message.body.size'], big.length);
  assert.equal(a['kafka.compression.codec'], 'lz4');
  assert.equal(a['telegen.request.size'], req.length);
  // the records end the message (flexible: then three empty tag sections): every value is known
  assert.equal(h.records[0].flags, 0);
  assert.equal(h.records[1].attributes['kafka.correlation_id'], 2);
  assert.equal(h.records[1].attributes['messaging.destination.name'], 'split');
});

test('a produce larger than the window whose big records are not last: what follows them is unknown (FLAG_UNKNOWN)', () => {
  const h = fresh();
  // kafkajs-like v7: partition 1's 600 KB batch, then partition 0's small one beyond the window
  const req = request(0, 7, 3, 'c', new W().str(null).i16(-1).i32(1000).arr(1).str('t').arr(2)
    .i32(1).bytes(recordBatch(0, 1, 0, 600000)).i32(0).bytes(recordBatch(0, 3, 1, 100)).done(), false);
  for (let i = 0; i < req.length; i += 100000) h.inst.feed(1, REQ, req.subarray(i, i + 100000), 1n);
  h.inst.feed(1, RESP, response(3, new W().arr(1).str('t').arr(2).i32(1).i16(0).i64(0).i64(-1).i64(0).i32(0).i16(0).i64(0).i64(-1).i64(0).i32(0).done(), false), 2n);
  const a = only(h);
  assert.equal(a['messaging.batch.message_count'], 1);
  assert.equal(h.records[0].flags & FLAG_UNKNOWN, FLAG_UNKNOWN);
});

test('a fetch response larger than the window: emitted when its last byte has passed', () => {
  const h = fresh();
  const req = request(1, 11, 8, 'c', new W().i32(-1).i32(500).i32(1).i32(5e6).i8(0).i32(0).i32(-1)
    .arr(1).str('big').arr(1).i32(0).i32(-1).i64(0).i64(-1).i32(5e6).arr(0).str('').done(), false);
  const records = Buffer.concat([recordBatch(0, 100, 0, 150000), recordBatch(100, 50, 0, 150000)]);
  const resp = response(8, new W().i32(0).i16(0).i32(0).arr(1).str('big').arr(1).i32(0).i16(0).i64(150).i64(150).i64(0).arr(-1).i32(-1).bytes(records).done(), false);
  h.inst.feed(1, REQ, req, 1n);
  for (let i = 0; i < resp.length; i += 100000) {
    h.inst.feed(1, RESP, resp.subarray(i, i + 100000), 100n + BigInt(i));
    if (i + 100000 < resp.length) assert.equal(h.records.length, 0, `not before the end (at ${i})`);
  }
  const a = only(h);
  assert.equal(h.records[0].tsEnd, 100n + BigInt(Math.floor((resp.length - 1) / 100000) * 100000));
  assert.equal(a['telegen.kafka.high_watermark'], 150);
  assert.equal(a['messaging.message.body.size'], records.length);
  // Both batch headers lie in the window (the second's body does not): both counted, and as the
  // records end the message nothing unseen is missing from the record.
  assert.equal(a['messaging.batch.message_count'], 150);
  assert.equal(h.records[0].flags, 0);
});

// ---- resynchronisation, gaps, timeouts ---------------------------------------------------------

test('joined mid-stream: garbage before the first header is skipped, then requests decode', async () => {
  const h = fresh();
  const [q, r] = await produceExchange(31);
  const tail = Buffer.from('partial-previous-message-bytes\x00\x01\x02\xff\xfe', 'latin1');
  h.inst.feed(1, REQ, Buffer.concat([tail, q]), 1n);
  h.inst.feed(1, RESP, r, 2n);
  assert.equal(only(h)['kafka.correlation_id'], 31);
});

test('gap inside a skipped large message is absorbed; a gap elsewhere resynchronises', async () => {
  const h = fresh();
  const big = recordBatch(0, 10, 0, 300000);
  const req = request(0, 3, 1, 'g', new W().str(null).i16(1).i32(1000).arr(1).str('gt').arr(1).i32(0).bytes(big).done(), false);
  h.inst.feed(1, REQ, req.subarray(0, 262144), 1n);
  assert.equal(h.inst.gap(1, REQ, 1000), 'ok');
  const [q, r] = await produceExchange(2);
  h.inst.feed(1, REQ, Buffer.concat([req.subarray(262144 + 1000), q]), 2n);
  h.inst.feed(1, RESP, response(1, new W().arr(1).str('gt').arr(1).i32(0).i16(0).i64(0).i64(-1).i32(0).done(), false), 3n);
  h.inst.feed(1, RESP, r, 4n);
  assert.deepEqual(h.records.map((x) => x.attributes['kafka.correlation_id']), [1, 2]);
  // Lost bytes in the middle of a normal request: the decoder kept the 20 bytes the host held (its
  // header), decodes them as the request cut short and skips the rest of it as it comes.
  h.records.length = 0;
  const [q3, r3] = await produceExchange(3);
  const [q4, r4] = await produceExchange(4);
  h.inst.feed(1, REQ, q3.subarray(0, 20), 5n);
  // The host held 20 unconsumed bytes: they are the start of the gap the decoder absorbs (30 bytes).
  assert.equal(h.inst.gap(1, REQ, 10), 'ok');
  h.inst.feed(1, REQ, Buffer.concat([q3.subarray(30), q4]), 6n);
  h.inst.feed(1, RESP, Buffer.concat([r3, r4]), 7n);
  assert.deepEqual(h.records.map((x) => [x.attributes['kafka.correlation_id'], x.attributes['kafka.api_key'], x.flags]), [[3, 0, FLAG_UNKNOWN], [4, 0, 0]]);
  // A gap that runs past the held message's end also took the next one's start: the next header is looked for.
  h.records.length = 0;
  const [q7, r7] = await produceExchange(7);
  const [q8, r8] = await produceExchange(8);
  const [q9, r9] = await produceExchange(9);
  h.inst.feed(1, REQ, q7.subarray(0, 20), 11n);
  assert.equal(h.inst.gap(1, REQ, q7.length - 20 + 10), 'ok');
  h.inst.feed(1, REQ, Buffer.concat([q8.subarray(10), q9]), 12n);
  h.inst.feed(1, RESP, Buffer.concat([r7, r8, r9]), 13n);
  assert.deepEqual(h.records.map((x) => [x.attributes['kafka.correlation_id'], x.flags]), [[7, FLAG_UNKNOWN], [8, FLAG_NO_REQUEST], [9, 0]]);
  // With nothing held by the host, gap() is the decoder's: it absorbs and resyncs.
  h.records.length = 0;
  const [q5, r5] = await produceExchange(5);
  h.inst.feed(1, REQ, q5, 8n);
  assert.equal(h.inst.gap(1, REQ, 123), 'ok');
  const [q6, r6] = await produceExchange(6);
  h.inst.feed(1, REQ, Buffer.concat([Buffer.alloc(17, 0x41), q6]), 9n);
  h.inst.feed(1, RESP, Buffer.concat([r5, r6]), 10n);
  assert.deepEqual(h.records.map((x) => [x.attributes['kafka.correlation_id'], x.flags]), [[5, 0], [6, 0]]);
});

test('tick expires unanswered requests, ending them at the tick (timed out); close flushes the rest', () => {
  const h = fresh();
  const hb = (c: number) => request(12, 4, c, 'hb', new W().cstr('g').i32(1).cstr('m').cstr(null).tag0().done(), true);
  h.inst.feed(1, REQ, hb(1), 1_000_000_000n);
  h.inst.feed(1, REQ, hb(2), 20_000_000_000n);
  h.inst.tick(30_000_000_000n);
  assert.equal(h.records.length, 0, 'not yet 30 s old');
  h.inst.tick(32_000_000_000n);
  // Still unanswered at the tick: it lasted 31 s, not 0 s (the fastest request of the histogram).
  assert.deepEqual(h.records.map((r) => [r.attributes['kafka.correlation_id'], r.flags, r.tsStart, r.tsEnd]),
    [[1, FLAG_NO_RESPONSE | FLAG_TIMEOUT, 1_000_000_000n, 32_000_000_000n]]);
  h.inst.closeStream(1);
  // At close the decoder knows no more than the request (the host ends it at the close it saw).
  assert.deepEqual(h.records.map((r) => [r.attributes['kafka.correlation_id'], r.flags, r.tsEnd]),
    [[1, FLAG_NO_RESPONSE | FLAG_TIMEOUT, 32_000_000_000n], [2, FLAG_NO_RESPONSE, 20_000_000_000n]]);
});

test('an unanswered request skipped by a later answer ends where that answer began; one pushed out by the 64-request cap where the request that pushed it began', () => {
  const h = fresh();
  const hb = (c: number) => request(12, 4, c, 'hb', new W().cstr('g').i32(1).cstr('m').cstr(null).tag0().done(), true);
  const hbResp = (c: number) => response(c, new W().i32(0).i16(0).tag0().done(), true);
  h.inst.feed(1, REQ, hb(1), 1_000n);
  h.inst.feed(1, REQ, hb(2), 2_000n);
  h.inst.feed(1, RESP, hbResp(2), 9_000n);
  assert.deepEqual(h.records.map((r) => [r.attributes['kafka.correlation_id'], r.flags, r.tsStart, r.tsEnd]),
    [[1, FLAG_NO_RESPONSE, 1_000n, 9_000n], [2, 0, 2_000n, 9_000n]]);
  h.records.length = 0;
  for (let c = 10; c < 74; c++) h.inst.feed(2, REQ, hb(c), BigInt(c) * 1_000n);
  assert.equal(h.records.length, 0);
  h.inst.feed(2, REQ, hb(74), 74_000n);
  assert.deepEqual(h.records.map((r) => [r.attributes['kafka.correlation_id'], r.flags, r.tsStart, r.tsEnd]),
    [[10, FLAG_NO_RESPONSE, 10_000n, 74_000n]]);
});

// ---- hostile input ---------------------------------------------------------------------------

test('hostile sizes: negative, huge and tiny sizes never trap and are not waited for', () => {
  const h = fresh();
  for (const size of [-1, -2147483648, 0x7fffffff, 104857601, 0, 3, 7]) {
    const b = new W().i32(size).i16(0).i16(3).i32(1).str('x').done();
    h.inst.feed(9, REQ, b, 1n);
    h.inst.feed(9, RESP, b, 1n);
  }
  assert.equal(h.inst.counters.traps, 0);
  assert.equal(h.inst.counters.overflows, 0);
  // Nothing waits for a hostile length: at most a short tail is held while looking for a header.
  assert.ok(h.inst.pendingBytes() <= 300, `pending ${h.inst.pendingBytes()}`);
  // The next real request is found and decoded.
  const ok = request(12, 4, 5, 'after', new W().cstr('g').i32(1).cstr('m').cstr(null).tag0().done(), true);
  h.inst.feed(9, REQ, ok, 2n);
  h.inst.feed(9, RESP, response(5, new W().i32(0).i16(0).tag0().done(), true), 3n);
  assert.deepEqual(h.records.map((r) => [r.attributes['kafka.correlation_id'], r.attributes['messaging.consumer.group.name'], r.flags]), [[5, 'g', 0]]);
  // A stream of garbage is declared not Kafka after 1 MiB.
  const junk = Buffer.alloc(65536, 0x41);
  let r = 'ok';
  for (let i = 0; i < 20 && r === 'ok'; i++) r = h.inst.feed(10, REQ, junk, 1n);
  assert.equal(r, 'invalid');
});

test('hostile bodies: varint overflow, huge array counts, negative lengths -> FLAG_UNKNOWN, no trap', () => {
  const h = fresh();
  const bodies = [
    new W().raw([0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]).done(),                         // 6-byte varint
    new W().cstr(null).i16(1).i32(1).raw([0xff, 0xff, 0xff, 0xff, 0x0f]).done(),        // compact array 2^32-1
    new W().cstr(null).i16(1).i32(1).carr(1).uv(0xfffffff0).done(),                    // string longer than message
    new W().cstr(null).i16(1).i32(1).carr(1).cstr('t').carr(1).i32(0).uv(0x7ffffff0).done(), // records beyond end
  ];
  bodies.forEach((b, i) => h.inst.feed(1, REQ, request(0, 9, i, 'evil', b, true), 1n));
  const classic = [
    new W().str(null).i16(1).i32(1).i32(0x7fffffff).done(),
    new W().str(null).i16(1).i32(1).i32(1).i16(-5).done(),
    new W().str(null).i16(1).i32(1).i32(1).str('t').i32(1).i32(0).i32(-7).done(),
  ];
  classic.forEach((b, i) => h.inst.feed(1, REQ, request(0, 3, 10 + i, 'evil', b, false), 1n));
  h.inst.closeStream(1);
  assert.equal(h.inst.counters.traps, 0);
  assert.equal(h.records.length, bodies.length + classic.length);
  assert.ok(h.records.every((r) => (r.flags & FLAG_UNKNOWN) === FLAG_UNKNOWN), JSON.stringify(h.records.map((r) => r.flags)));
});

test('fuzz: random and mutated messages never trap; memory stays bounded over many streams', async () => {
  const h = fresh();
  let seed = 12345;
  const rnd = (): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed; };
  const [q, r] = await produceExchange(1);
  const seeds = [q, r, request(1, 12, 2, 'x', new W().i32(-1).i32(1).i32(1).i32(1).i8(0).i32(0).i32(-1).carr(1).cstr('t').carr(1).i32(0).i32(0).i64(0).i32(0).i64(0).i32(0).tag0().tag0().carr(0).cstr('').tag0().done(), true)];
  const memBefore = h.inst.memoryBytes();
  for (let i = 0; i < 3000; i++) {
    const src = seeds[i % seeds.length];
    const m = Buffer.from(src);
    const flips = 1 + (rnd() % 6);
    for (let k = 0; k < flips; k++) m[rnd() % m.length] = rnd() & 0xff;
    const stream = 100 + (i % 50);
    if (i % 7 === 0) h.inst.feed(stream, RESP, m, BigInt(i));
    else h.inst.feed(stream, REQ, m, BigInt(i));
    if (i % 5 === 0) {
      const junk = Buffer.alloc(rnd() % 200);
      for (let k = 0; k < junk.length; k++) junk[k] = rnd() & 0xff;
      h.inst.feed(stream, rnd() % 2, junk, BigInt(i));
    }
    if (i % 97 === 0) h.inst.closeStream(stream);
  }
  for (let s = 100; s < 150; s++) h.inst.closeStream(s);
  assert.equal(h.inst.counters.traps, 0, h.inst.lastError);
  assert.equal(h.inst.counters.badRecords, 0);
  // Many short-lived streams: state is freed on close, memory does not keep growing.
  const memMid = h.inst.memoryBytes();
  for (let round = 0; round < 5; round++) {
    for (let s = 0; s < 500; s++) {
      const stream = 10000 + round * 1000 + s;
      h.inst.feed(stream, REQ, q, 1n);
      h.inst.closeStream(stream);
    }
  }
  assert.equal(h.inst.counters.traps, 0);
  assert.ok(h.inst.memoryBytes() <= Math.max(memMid, memBefore) + 2 * 1024 * 1024, `memory grew from ${memMid} to ${h.inst.memoryBytes()}`);
});

test('detect: a request header scores high, other protocols zero', async () => {
  const h = fresh();
  const [q] = await produceExchange(1);
  assert.ok(h.inst.detect(REQ, q) >= 80);
  assert.equal(h.inst.detect(REQ, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), 0);
  assert.equal(h.inst.detect(REQ, Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0, 0, 0, 0])), 0);
  assert.ok(h.inst.detect(RESP, response(1, Buffer.alloc(6), false)) > 0);
  assert.equal(h.inst.meta.name, 'kafka');
  assert.deepEqual(h.inst.meta.ports, [9092]);
});

test('transactions: AddPartitionsToTxn v3 and TxnOffsetCommit v3 (flexible) name their topic, partition and error', () => {
  const h = fresh();
  // AddPartitionsToTxn v3: transactional id, producer id, epoch, topics [name, partitions[int32]]
  const add = request(24, 3, 11, 'txn-client', new W().cstr('tx-1').i64(4000).i16(0)
    .carr(1).cstr('orders').carr(1).i32(2).tag0().tag0().done(), true);
  // response: throttle, results [name, [partition, error]]: INVALID_TXN_STATE (48)
  const addResp = response(11, new W().i32(0).carr(1).cstr('orders').carr(1).i32(2).i16(48).tag0().tag0().tag0().done(), true);
  // TxnOffsetCommit v3: transactional id, group, producer id, epoch, generation, member, instance id, topics
  const commit = request(28, 3, 12, 'txn-client', new W().cstr('tx-1').cstr('billing').i64(4000).i16(0).i32(5).cstr('m-1').cstr(null)
    .carr(1).cstr('ledger').carr(1).i32(7).i64(1234).i32(-1).cstr('').tag0().tag0().tag0().done(), true);
  const commitResp = response(12, new W().i32(0).carr(1).cstr('ledger').carr(1).i32(7).i16(0).tag0().tag0().tag0().done(), true);
  h.inst.feed(1, REQ, add, 1n); h.inst.feed(1, RESP, addResp, 2n);
  h.inst.feed(1, REQ, commit, 3n); h.inst.feed(1, RESP, commitResp, 4n);
  assert.equal(h.records.length, 2);
  assert.deepEqual(h.records[0].attributes, {
    ...base(24, 3, 11, 'add_partitions_to_txn'),
    'messaging.client.id': 'txn-client',
    'messaging.destination.name': 'orders',
    'messaging.destination.partition.id': '2',
    'telegen.kafka.transactional_id': 'tx-1',
    'kafka.error_code': 48,
    'error.type': 'INVALID_TXN_STATE',
    'telegen.request.size': add.length,
    'telegen.response.size': addResp.length,
  });
  assert.equal(h.records[0].flags, FLAG_ERROR);
  assert.deepEqual(h.records[1].attributes, {
    ...base(28, 3, 12, 'txn_offset_commit'),
    'messaging.operation.type': 'settle',
    'messaging.client.id': 'txn-client',
    'messaging.consumer.group.name': 'billing',
    'telegen.kafka.transactional_id': 'tx-1',
    'messaging.destination.name': 'ledger',
    'messaging.destination.partition.id': '7',
    'messaging.kafka.offset': 1234,
    'telegen.request.size': commit.length,
    'telegen.response.size': commitResp.length,
  });
  assert.equal(h.records[1].flags, 0);
});

test('transactional id: every request naming one carries it (InitProducerId, FindCoordinator key type 1, AddOffsetsToTxn, EndTxn, Produce v3+, DescribeTransactions); null or empty carries none', () => {
  const h = fresh();
  const cases: Array<[number, number, boolean, Buffer, Buffer, string | null]> = [
    // InitProducerId v1 with an id, v4 (flexible) with none (an idempotent producer)
    [22, 1, false, new W().str('pay-tx').i32(60000).done(), new W().i32(0).i16(0).i64(7).i16(0).done(), 'pay-tx'],
    [22, 4, true, new W().cstr(null).i32(60000).i64(-1).i16(-1).tag0().done(), new W().i32(0).i16(0).i64(8).i16(0).tag0().done(), null],
    // FindCoordinator v2 for a transaction (key type 1), v4 for a group (key type 0)
    [10, 2, false, new W().str('pay-tx').i8(1).done(), new W().i32(0).i16(0).str(null).i32(1).str('b').i32(9092).done(), 'pay-tx'],
    [10, 4, true, new W().i8(0).carr(1).cstr('grp').tag0().done(), new W().i32(0).carr(0).tag0().done(), null],
    // AddOffsetsToTxn v0: the transaction and the group whose offsets it commits
    [25, 0, false, new W().str('pay-tx').i64(7).i16(0).str('grp').done(), new W().i32(0).i16(0).done(), 'pay-tx'],
    // EndTxn v3 (flexible), committing
    [26, 3, true, new W().cstr('pay-tx').i64(7).i16(0).i8(1).tag0().done(), new W().i32(0).i16(0).tag0().done(), 'pay-tx'],
    // Produce v3 with an empty transactional id: none
    [0, 3, false, new W().str('').i16(1).i32(1000).arr(0).done(), new W().arr(0).i32(0).done(), null],
    // DescribeTransactions v0: the first id asked about
    [65, 0, true, new W().carr(2).cstr('pay-tx').cstr('other-tx').tag0().done(), new W().i32(0).carr(0).tag0().done(), 'pay-tx'],
  ];
  cases.forEach(([api, v, flex, body, rbody], i) => {
    h.inst.feed(1, REQ, request(api, v, 200 + i, 'c', body, flex), BigInt(2 * i + 1));
    h.inst.feed(1, RESP, response(200 + i, rbody, flex), BigInt(2 * i + 2));
  });
  assert.deepEqual(h.records.map((r) => [r.attributes['kafka.api_key'], r.attributes['telegen.kafka.transactional_id'] ?? null, r.flags]),
    cases.map(([api, , , , , id]) => [api, id, 0]));
  assert.equal(h.records[4].attributes['messaging.consumer.group.name'], 'grp');
  assert.equal(h.records[3].attributes['messaging.consumer.group.name'], 'grp');
  assert.equal(h.records[2].attributes['messaging.consumer.group.name'], undefined);
});

test('EndTxn says whether the transaction committed or aborted (telegen.kafka.transaction_result), v1 and v3 (flexible); a cut body says nothing', () => {
  const h = fresh();
  const cases: Array<[number, boolean, Buffer, string | undefined]> = [
    [1, false, new W().str('tx-1').i64(7).i16(0).i8(1).done(), 'commit'],
    [1, false, new W().str('tx-1').i64(7).i16(0).i8(0).done(), 'abort'],
    [3, true, new W().cstr('tx-1').i64(7).i16(1).i8(0).tag0().done(), 'abort'],
    [3, true, new W().cstr('tx-1').i64(7).i16(1).i8(1).tag0().done(), 'commit'],
    // cut before Committed: no result
    [1, false, new W().str('tx-1').i64(7).done(), undefined],
  ];
  cases.forEach(([v, flex, body], i) => {
    h.inst.feed(1, REQ, request(26, v, 300 + i, 'c', body, flex), BigInt(2 * i + 1));
    h.inst.feed(1, RESP, response(300 + i, flex ? new W().i32(0).i16(0).tag0().done() : new W().i32(0).i16(0).done(), flex), BigInt(2 * i + 2));
  });
  assert.deepEqual(h.records.map((r) => r.attributes['telegen.kafka.transaction_result']), cases.map((c) => c[3]));
  for (const r of h.records) assert.equal(r.attributes['telegen.kafka.transactional_id'], 'tx-1');
});

test('responses that open with their error code: AddOffsetsToTxn, EndTxn, ListGroups, SaslAuthenticate, DescribeGroups, DeleteGroups', () => {
  const h = fresh();
  const cases: Array<[number, number, boolean, Buffer, Buffer, number]> = [
    // api, version, flexible, request body, response body, error code
    [25, 0, false, new W().str('tx-1').i64(1).i16(0).str('g').done(), new W().i32(0).i16(47).done(), 47],
    [26, 3, true, new W().cstr('tx-1').i64(1).i16(0).i8(1).tag0().done(), new W().i32(0).i16(0).tag0().done(), 0],
    [16, 4, true, new W().carr(0).tag0().done(), new W().i32(0).i16(15).carr(0).tag0().done(), 15],
    [36, 1, false, new W().bytes(Buffer.from('secret-token')).done(), new W().i16(58).str('bad credentials').bytes(Buffer.alloc(0)).i64(0).done(), 58],
    [15, 5, true, new W().carr(1).cstr('g1').i8(0).tag0().done(), new W().i32(0).carr(1).i16(16).cstr('g1').cstr('').cstr('').cstr('').carr(0).i32(0).tag0().tag0().done(), 16],
    [42, 2, true, new W().carr(1).cstr('g1').tag0().done(), new W().i32(0).carr(1).cstr('g1').i16(69).tag0().tag0().done(), 69],
  ];
  cases.forEach(([api, v, flex, body, rbody], i) => {
    h.inst.feed(1, REQ, request(api, v, 100 + i, 'c', body, flex), BigInt(2 * i + 1));
    h.inst.feed(1, RESP, response(100 + i, rbody, flex && api !== 18), BigInt(2 * i + 2));
  });
  assert.deepEqual(h.records.map((r) => [r.attributes['kafka.api_key'], r.attributes['kafka.error_code'] ?? 0, r.flags & FLAG_ERROR]),
    cases.map(([api, , , , , code]) => [api, code, code ? FLAG_ERROR : 0]));
  const all = JSON.stringify(h.records.map((r) => r.attributes));
  assert.ok(!all.includes('secret-token') && !all.includes('bad credentials'));
});

test('OffsetForLeaderEpoch v3 and DeleteRecords v1: topic, partition, offset and partition errors', () => {
  const h = fresh();
  const ofle = request(23, 3, 31, 'rdkafka', new W().i32(-1).arr(1).str('payments').arr(1).i32(4).i32(7).i32(6).done(), false);
  const ofleResp = response(31, new W().i32(0).arr(1).str('payments').arr(1).i16(74).i32(4).i32(6).i64(1200).done(), false);
  const del = request(21, 1, 32, 'admin', new W().arr(1).str('audit').arr(1).i32(0).i64(500).i32(30000).done(), false);
  const delResp = response(32, new W().i32(0).arr(1).str('audit').arr(1).i32(0).i64(500).i16(0).done(), false);
  h.inst.feed(1, REQ, ofle, 1n); h.inst.feed(1, RESP, ofleResp, 2n);
  h.inst.feed(1, REQ, del, 3n); h.inst.feed(1, RESP, delResp, 4n);
  const a = h.records.map((r) => r.attributes);
  assert.deepEqual([a[0]['messaging.operation.name'], a[0]['messaging.destination.name'], a[0]['messaging.destination.partition.id'], a[0]['kafka.error_code'], a[0]['error.type']],
    ['offset_for_leader_epoch', 'payments', '4', 74, 'FENCED_LEADER_EPOCH']);
  assert.equal(h.records[0].flags, FLAG_ERROR);
  assert.deepEqual([a[1]['messaging.operation.name'], a[1]['messaging.destination.name'], a[1]['messaging.destination.partition.id'], a[1]['messaging.kafka.offset'], a[1]['kafka.error_code']],
    ['delete_records', 'audit', '0', 500, undefined]);
  assert.equal(h.records[1].flags, 0);
});

test('CreatePartitions v1 (topic from the request, error of the result) and DescribeConfigs v2 (error of the first resource)', () => {
  const h = fresh();
  const cp = request(37, 1, 41, 'admin', new W().arr(1).str('events').i32(6).arr(1).arr(1).i32(1).i32(30000).i8(0).done(), false);
  const cpResp = response(41, new W().i32(0).arr(1).str('events').i16(37).str('invalid count').done(), false);
  const dc = request(32, 2, 42, 'admin', new W().arr(1).i8(2).str('events').arr(-1).i8(0).done(), false);
  const dcResp = response(42, new W().i32(0).arr(1).i16(29).str('denied').i8(2).str('events').arr(0).done(), false);
  h.inst.feed(1, REQ, cp, 1n); h.inst.feed(1, RESP, cpResp, 2n);
  h.inst.feed(1, REQ, dc, 3n); h.inst.feed(1, RESP, dcResp, 4n);
  const a = h.records.map((r) => r.attributes);
  assert.deepEqual([a[0]['messaging.operation.name'], a[0]['messaging.destination.name'], a[0]['kafka.error_code'], a[0]['error.type']],
    ['create_partitions', 'events', 37, 'INVALID_PARTITIONS']);
  assert.deepEqual([a[1]['messaging.operation.name'], a[1]['kafka.error_code'], a[1]['error.type']], ['describe_configs', 29, 'TOPIC_AUTHORIZATION_FAILED']);
  assert.deepEqual(h.records.map((r) => r.flags), [FLAG_ERROR, FLAG_ERROR]);
});

// ---- admin APIs, cross-checked with kafkajs (a second implementation of the protocol) --------

function kafkajsResponse(api: string, version: number): { decode: (b: Buffer) => Promise<Record<string, unknown>> } {
  const root = path.dirname(require.resolve('kafkajs/package.json'));
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  return require(path.join(root, 'src/protocol/requests', api, `v${version}`, 'response.js'));
}

test('admin APIs tshark 4.0 misreads: kafkajs encodes the requests and decodes the responses to the errors the decoder reports', async () => {
  const acl = { resourceType: 2, resourceName: 'kjs-acl', resourcePatternType: 3, principal: 'User:a', host: '*', operation: 2, permissionType: 3 };
  const cases: Array<{ api: string; v: number; flex: boolean; args: Record<string, unknown>; body: Buffer; kjs: (d: any) => unknown; want: Record<string, unknown> }> = [
    {
      api: 'alterPartitionReassignments', v: 0, flex: true,
      args: { topics: [{ topic: 'kjs-apr', partitionAssignment: [{ partition: 3, replicas: [1, 2] }] }] },
      body: new W().i32(0).i16(0).cstr(null).carr(1).cstr('kjs-apr').carr(1).i32(3).i16(60).cstr('moving').tag0().tag0().tag0().done(),
      kjs: (d) => d.responses[0].partitions[0].errorCode,
      want: { ...base(45, 0, 1, 'alter_partition_reassignments'), 'messaging.destination.name': 'kjs-apr', 'messaging.destination.partition.id': '3', 'kafka.error_code': 60, 'error.type': 'REASSIGNMENT_IN_PROGRESS' },
    },
    {
      api: 'listPartitionReassignments', v: 0, flex: true,
      args: { topics: [{ topic: 'kjs-lpr', partitions: [0, 1] }] },
      body: new W().i32(0).i16(0).cstr(null).carr(1).cstr('kjs-lpr').carr(1).i32(1).carr(2).i32(1).i32(2).carr(1).i32(2).carr(0).tag0().tag0().tag0().done(),
      kjs: (d) => d.topics,
      want: { ...base(46, 0, 2, 'list_partition_reassignments'), 'messaging.destination.name': 'kjs-lpr', 'telegen.kafka.partition_count': 2 },
    },
    {
      api: 'deleteAcls', v: 1, flex: false,
      args: { filters: [acl] },
      body: new W().i32(0).arr(1).i16(0).str(null).arr(1).i16(29).str('denied').i8(2).str('kjs-acl').i8(3).str('User:a').str('*').i8(2).i8(3).done(),
      kjs: (d) => (d.filterResponses as any)[0].matchingAcls[0].errorCode,
      want: { ...base(31, 1, 3, 'delete_acls'), 'kafka.error_code': 29, 'error.type': 'TOPIC_AUTHORIZATION_FAILED' },
    },
    {
      api: 'createAcls', v: 1, flex: false,
      args: { creations: [acl, acl] },
      body: new W().i32(0).arr(2).i16(0).str(null).i16(44).str('policy').done(),
      kjs: (d) => (d.creationResponses as any).map((c: any) => c.errorCode),
      want: { ...base(30, 1, 4, 'create_acls'), 'kafka.error_code': 44, 'error.type': 'POLICY_VIOLATION' },
    },
    {
      api: 'describeAcls', v: 1, flex: false,
      args: acl,
      body: new W().i32(0).i16(31).str('denied').arr(0).done(),
      kjs: (d) => d.errorCode,
      want: { ...base(29, 1, 5, 'describe_acls'), 'kafka.error_code': 31, 'error.type': 'CLUSTER_AUTHORIZATION_FAILED' },
    },
    {
      api: 'alterConfigs', v: 1, flex: false,
      args: { resources: [{ type: 2, name: 'kjs-cfg', configEntries: [{ name: 'retention.ms', value: '1' }] }], validateOnly: false },
      body: new W().i32(0).arr(1).i16(40).str('bad').i8(2).str('kjs-cfg').done(),
      kjs: (d) => (d.resources as any)[0].errorCode,
      // a topic resource names its topic
      want: { ...base(33, 1, 6, 'alter_configs'), 'messaging.destination.name': 'kjs-cfg', 'kafka.error_code': 40, 'error.type': 'INVALID_CONFIG' },
    },
  ];
  const kjsSeen: unknown[] = [];
  const h = fresh();
  for (const [i, c] of cases.entries()) {
    const req = await kafkajs(c.api, c.v, c.args, i + 1, 'kjs-admin');
    const resp = response(i + 1, c.body, c.flex);
    // kafkajs decodes what follows the correlation id (flexible: the header's tagged fields first)
    kjsSeen.push(c.kjs(await kafkajsResponse(c.api, c.v).decode(resp.subarray(8))));
    h.inst.feed(1, REQ, req, 1000n);
    h.inst.feed(1, RESP, resp, 2000n);
  }
  assert.deepEqual(kjsSeen, [60, [{ name: 'kjs-lpr', partitions: [{ partition: 1, replicas: [1, 2], addingReplicas: [2], removingReplicas: [] }] }], 29, [0, 44], 31, 40]);
  assert.equal(h.records.length, cases.length);
  h.records.forEach((r, i) => {
    const a = { ...r.attributes };
    delete a['telegen.request.size']; delete a['telegen.response.size'];
    assert.deepEqual(a, { ...cases[i].want, 'messaging.client.id': 'kjs-admin' }, cases[i].api);
    assert.equal(r.flags, 'kafka.error_code' in cases[i].want ? FLAG_ERROR : 0, cases[i].api);
  });
});

test('config APIs name the topics of their topic resources, not brokers or loggers', () => {
  const h = fresh();
  // DescribeConfigs v4 (flexible): a broker, then two topics (one with its config keys listed)
  const dc = new W().carr(3)
    .i8(4).cstr('1').carr(-1).tag0()
    .i8(2).cstr('orders').carr(1).cstr('retention.ms').tag0()
    .i8(2).cstr('payments').carr(-1).tag0()
    .i8(0).i8(0).tag0().done();
  h.inst.feed(1, REQ, request(32, 4, 1, 'cfg', dc, true), 1n);
  h.inst.feed(1, RESP, response(1, new W().i32(0).carr(0).tag0().done(), true), 2n);
  // IncrementalAlterConfigs v1 (flexible): a broker logger, then one topic
  const iac = new W().carr(2)
    .i8(8).cstr('1').carr(1).cstr('kafka.server').i8(0).cstr('DEBUG').tag0().tag0()
    .i8(2).cstr('orders').carr(2).cstr('retention.ms').i8(0).cstr('1000').tag0().cstr('cleanup.policy').i8(1).cstr(null).tag0().tag0()
    .i8(0).tag0().done();
  h.inst.feed(1, REQ, request(44, 1, 2, 'cfg', iac, true), 3n);
  h.inst.feed(1, RESP, response(2, new W().i32(0).carr(0).tag0().done(), true), 4n);
  // AlterConfigs v0 (classic) on a broker only
  const ac = new W().arr(1).i8(4).str('1').arr(1).str('log.retention.ms').str('1000').i8(0).done();
  h.inst.feed(1, REQ, request(33, 0, 3, 'cfg', ac, false), 5n);
  h.inst.feed(1, RESP, response(3, new W().i32(0).arr(0).done(), false), 6n);
  assert.deepEqual(h.records.map((r) => [r.attributes['messaging.operation.name'], r.attributes['messaging.destination.name'], r.attributes['telegen.kafka.topics'], r.flags]), [
    ['describe_configs', 'orders', ['orders', 'payments'], 0],
    ['incremental_alter_configs', 'orders', undefined, 0],
    ['alter_configs', undefined, undefined, 0],
  ]);
});

test('DescribeTopicPartitions (KIP-966) names its topics and teaches their ids, as Metadata v10+ does', () => {
  const h = fresh();
  const id = '0f1e2d3c4b5a69788796a5b4c3d2e1f0';
  const req = request(75, 0, 1, 'admin', new W().carr(1).cstr('ledger').tag0().i32(2000).i8(-1).tag0().done(), true);
  const resp = response(1, new W().i32(0).carr(1).i16(0).cstr('ledger').uuid(id).i8(0)
    .carr(1).i16(0).i32(4).i32(1).i32(3).carr(1).i32(1).carr(1).i32(1).carr(-1).carr(-1).carr(0).tag0()
    .i32(-2147483648).tag0()
    .i8(1).cstr('ledger').i32(5).tag0() // a next-page cursor
    .tag0().done(), true);
  h.inst.feed(1, REQ, req, 1n); h.inst.feed(1, RESP, resp, 2n);
  // a consumer fetching by topic id on another connection: the name is known now
  const fetch = request(1, 13, 9, 'c', new W().i32(-1).i32(500).i32(1).i32(1000).i8(0).i32(0).i32(-1)
    .carr(1).uuid(id).carr(1).i32(4).i32(3).i64(77).i32(-1).i64(-1).i32(1000).tag0().tag0()
    .carr(0).cstr('').tag0().done(), true);
  h.inst.feed(2, REQ, fetch, 3n);
  h.inst.closeStream(2);
  assert.deepEqual(h.records.map((r) => [r.attributes['messaging.operation.name'], r.attributes['messaging.destination.name'],
    r.attributes['messaging.destination.partition.id'], r.attributes['telegen.kafka.topic_id'], r.flags & ~FLAG_NO_RESPONSE]), [
    ['describe_topic_partitions', 'ledger', '4', undefined, 0],
    ['fetch', 'ledger', '4', undefined, 0],
  ]);
});
