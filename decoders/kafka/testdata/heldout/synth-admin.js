#!/usr/bin/env node
// synth-admin.pcap: admin and transaction APIs that librdkafka's mock cluster does not answer
// (OffsetDelete, ElectLeaders, partition reassignments, WriteTxnMarkers, AddPartitionsToTxn v4+,
// DescribeProducers/Transactions, ListTransactions, DescribeCluster, ACLs, configs, log dirs,
// delegation tokens, quotas, SCRAM, ConsumerGroupHeartbeat), built field by field from the
// message definitions (clients/src/main/resources/common/message/*.json) and written as raw-IP
// TCP on 127.0.0.1:9092. Usage: node synth-admin.js DIR (writes DIR/synth-admin.pcap and
// DIR/synth-admin-new.pcap), then tshark with kafka-oracle.ts tsharkArgs(synth-admin.pcap) >
// synth-admin.expected.tsv — tshark is the oracle for what it dissects.
'use strict';
const fs = require('fs');

class W {
  constructor() { this.p = []; }
  i8(v) { const b = Buffer.alloc(1); b.writeInt8(v); this.p.push(b); return this; }
  i16(v) { const b = Buffer.alloc(2); b.writeInt16BE(v); this.p.push(b); return this; }
  i32(v) { const b = Buffer.alloc(4); b.writeInt32BE(v); this.p.push(b); return this; }
  i64(v) { const b = Buffer.alloc(8); b.writeBigInt64BE(BigInt(v)); this.p.push(b); return this; }
  f64(v) { const b = Buffer.alloc(8); b.writeDoubleBE(v); this.p.push(b); return this; }
  uv(v) { const o = []; let n = v >>> 0; while (n >= 0x80) { o.push((n & 0x7f) | 0x80); n >>>= 7; } o.push(n); this.p.push(Buffer.from(o)); return this; }
  raw(b) { this.p.push(Buffer.from(b)); return this; }
  // f: flexible (compact) encoding
  str(s, f) { if (s === null) return f ? this.uv(0) : this.i16(-1); const b = Buffer.from(s); return (f ? this.uv(b.length + 1) : this.i16(b.length)).raw(b); }
  arr(n, f) { return n === null ? (f ? this.uv(0) : this.i32(-1)) : (f ? this.uv(n + 1) : this.i32(n)); }
  ints(xs, f) { this.arr(xs === null ? null : xs.length, f); if (xs) for (const x of xs) this.i32(x); return this; }
  bytes(b, f) { return (f ? this.uv(b.length + 1) : this.i32(b.length)).raw(b); }
  tag(f) { return f ? this.uv(0) : this; }
  done() { return Buffer.concat(this.p); }
}

// [api key, version, flexible, request body(w, f), response body(w, f), tshark 4.0 dissects it]
// Where tshark 4.0 does not know an api or version, or misreads it (ElectLeaders v0/v1 requests
// skip the topic name, the reassignment APIs stop at the first topic, WriteTxnMarkers v1 and
// AddPartitionsToTxn v3+ are read with the v0 layout), the exchange goes to
// synth-admin-new.pcap, whose values kafka-corpus.test.ts states field by field.
const X = [];
const ex = (key, ver, flex, req, resp, tshark = true) => X.push({ key, ver, flex, req, resp, tshark });
const NEW = false;

// OffsetDelete v0: one partition's error; then a group-level error with no topics.
ex(47, 0, false, (w, f) => w.str('od-group', f).arr(1, f).str('od-topic', f).arr(1, f).i32(3),
  (w, f) => w.i16(0).i32(0).arr(1, f).str('od-topic', f).arr(1, f).i32(3).i16(86));
ex(47, 0, false, (w, f) => w.str('od-gone', f).arr(1, f).str('od-topic', f).arr(2, f).i32(0).i32(1),
  (w, f) => w.i16(69).i32(0).arr(0, f));
// ElectLeaders v0 (no election type), v1, v2 (flexible; null = every partition).
ex(43, 0, false, (w, f) => w.arr(1, f).str('el', f).ints([0, 1], f).i32(60000),
  (w, f) => w.i32(0).arr(1, f).str('el', f).arr(2, f).i32(0).i16(0).str(null, f).i32(1).i16(84).str('not needed', f), NEW);
ex(43, 1, false, (w, f) => w.i8(0).arr(1, f).str('el', f).ints([2], f).i32(60000),
  (w, f) => w.i32(0).i16(0).arr(1, f).str('el', f).arr(1, f).i32(2).i16(0).str(null, f), NEW);
ex(43, 2, true, (w, f) => w.i8(1).arr(null, f).i32(60000).tag(f),
  (w, f) => w.i32(0).i16(0).arr(2, f)
    .str('el', f).arr(1, f).i32(0).i16(83).str('no eligible', f).tag(f).tag(f)
    .str('el2', f).arr(1, f).i32(0).i16(0).str(null, f).tag(f).tag(f).tag(f));
// AlterPartitionReassignments v0 (flexible): move one partition, cancel another.
ex(45, 0, true, (w, f) => w.i32(60000).arr(1, f).str('apr', f).arr(2, f)
    .i32(1).ints([1, 2], f).tag(f).i32(2).ints(null, f).tag(f).tag(f).tag(f),
  (w, f) => w.i32(0).i16(0).str(null, f).arr(1, f).str('apr', f).arr(2, f)
    .i32(1).i16(0).str(null, f).tag(f).i32(2).i16(85).str('none in progress', f).tag(f).tag(f).tag(f), NEW);
// ListPartitionReassignments v0 (flexible).
ex(46, 0, true, (w, f) => w.i32(60000).arr(1, f).str('lpr', f).ints([0], f).tag(f).tag(f),
  (w, f) => w.i32(0).i16(0).str(null, f).arr(1, f).str('lpr', f).arr(1, f)
    .i32(0).ints([1, 2, 3], f).ints([3], f).ints([1], f).tag(f).tag(f).tag(f), NEW);
ex(46, 0, true, (w, f) => w.i32(60000).arr(null, f).tag(f),
  (w, f) => w.i32(0).i16(29).str('denied', f).arr(0, f).tag(f), NEW);
// WriteTxnMarkers v0 (classic) and v1 (flexible): broker to broker, commit markers.
ex(27, 0, false, (w, f) => w.arr(1, f).i64(4001).i16(0).i8(1).arr(1, f).str('wtm', f).ints([0, 1], f).i32(7),
  // tshark 4.0 reads a throttle time this response does not have, so it lists no errors: none here
  (w, f) => w.arr(1, f).i64(4001).arr(1, f).str('wtm', f).arr(2, f).i32(0).i16(0).i32(1).i16(0));
ex(27, 1, true, (w, f) => w.arr(1, f).i64(4002).i16(1).i8(0).arr(1, f).str('wtm', f).ints([1], f).tag(f).i32(7).tag(f).tag(f),
  (w, f) => w.arr(1, f).i64(4002).arr(1, f).str('wtm', f).arr(1, f).i32(1).i16(48).tag(f).tag(f).tag(f).tag(f), NEW);
// AddPartitionsToTxn v3 (the last per-transaction layout, already decoded) and v4/v5 (KIP-890 batches).
ex(24, 3, true, (w, f) => w.str('txn-3', f).i64(5001).i16(0).arr(1, f).str('apt', f).ints([0], f).tag(f).tag(f),
  (w, f) => w.i32(0).arr(1, f).str('apt', f).arr(1, f).i32(0).i16(0).tag(f).tag(f).tag(f), NEW);
ex(24, 4, true, (w, f) => w.arr(1, f).str('txn-4', f).i64(5002).i16(0).i8(0).arr(1, f).str('apt', f).ints([0, 1], f).tag(f).tag(f).tag(f),
  (w, f) => w.i32(0).i16(0).arr(1, f).str('txn-4', f).arr(1, f).str('apt', f).arr(2, f)
    .i32(0).i16(0).tag(f).i32(1).i16(0).tag(f).tag(f).tag(f).tag(f), NEW);
ex(24, 5, true, (w, f) => w.arr(2, f)
    .str('txn-5a', f).i64(5003).i16(0).i8(1).arr(1, f).str('apt', f).ints([2], f).tag(f).tag(f)
    .str('txn-5b', f).i64(5004).i16(0).i8(1).arr(1, f).str('apt2', f).ints([2], f).tag(f).tag(f).tag(f),
  (w, f) => w.i32(0).i16(0).arr(2, f)
    .str('txn-5a', f).arr(1, f).str('apt', f).arr(1, f).i32(2).i16(0).tag(f).tag(f).tag(f)
    .str('txn-5b', f).arr(1, f).str('apt2', f).arr(1, f).i32(2).i16(53).tag(f).tag(f).tag(f).tag(f), NEW);
// DescribeProducers v0 (flexible).
ex(61, 0, true, (w, f) => w.arr(1, f).str('dp', f).ints([4], f).tag(f).tag(f),
  (w, f) => w.i32(0).arr(1, f).str('dp', f).arr(1, f).i32(4).i16(0).str(null, f).arr(1, f)
    .i64(6001).i32(0).i32(9).i64(1700000000000).i32(-1).i64(-1).tag(f).tag(f).tag(f).tag(f), NEW);
// DescribeTransactions v0 (flexible): a state with its topic partitions.
ex(65, 0, true, (w, f) => w.arr(1, f).str('txn-d', f).tag(f),
  (w, f) => w.i32(0).arr(1, f).i16(0).str('txn-d', f).str('Ongoing', f).i32(60000).i64(1700000000000)
    .i64(7001).i16(0).arr(1, f).str('dt', f).ints([0], f).tag(f).tag(f).tag(f), NEW);
// ListTransactions v0 (flexible).
ex(66, 0, true, (w, f) => w.arr(0, f).arr(0, f).tag(f),
  (w, f) => w.i32(0).i16(0).arr(0, f).arr(1, f).str('txn-l', f).i64(7002).str('Ongoing', f).tag(f).tag(f), NEW);
// DescribeCluster v0 (flexible).
ex(60, 0, true, (w, f) => w.i8(0).tag(f),
  (w, f) => w.i32(0).i16(0).str(null, f).str('cluster-1', f).i32(1).arr(1, f).i32(1).str('127.0.0.1', f).i32(9092).str(null, f).tag(f).i32(-2147483648).tag(f), NEW);
// ACLs v1 (classic): describe with a cluster authorization error, create, delete.
ex(29, 1, false, (w, f) => w.i8(2).str('acl-topic', f).i8(3).str(null, f).str(null, f).i8(1).i8(1),
  (w, f) => w.i32(0).i16(31).str('no', f).arr(0, f));
ex(30, 1, false, (w, f) => w.arr(1, f).i8(2).str('acl-topic', f).i8(3).str('User:a', f).str('*', f).i8(3).i8(3),
  (w, f) => w.i32(0).arr(1, f).i16(0).str(null, f));
ex(31, 1, false, (w, f) => w.arr(1, f).i8(2).str('acl-topic', f).i8(3).str('User:a', f).str('*', f).i8(3).i8(3),
  (w, f) => w.i32(0).arr(1, f).i16(0).str(null, f).arr(1, f).i16(0).str(null, f).i8(2).str('acl-topic', f).i8(3).str('User:a', f).str('*', f).i8(3).i8(3));
// AlterConfigs v1 and IncrementalAlterConfigs v0 (classic) and v1 (flexible).
ex(33, 1, false, (w, f) => w.arr(1, f).i8(2).str('cfg-topic', f).arr(1, f).str('retention.ms', f).str('1000', f).i8(0),
  (w, f) => w.i32(0).arr(1, f).i16(40).str('bad', f).i8(2).str('cfg-topic', f));
ex(44, 0, false, (w, f) => w.arr(1, f).i8(2).str('cfg-topic', f).arr(1, f).str('retention.ms', f).i8(0).str('1000', f).i8(0),
  (w, f) => w.i32(0).arr(1, f).i16(0).str(null, f).i8(2).str('cfg-topic', f));
ex(44, 1, true, (w, f) => w.arr(1, f).i8(4).str('1', f).arr(1, f).str('log.cleaner.threads', f).i8(0).str('2', f).tag(f).tag(f).i8(0).tag(f),
  (w, f) => w.i32(0).arr(1, f).i16(0).str(null, f).i8(4).str('1', f).tag(f).tag(f));
// AlterReplicaLogDirs v1 and DescribeLogDirs v1 (classic), v3 (flexible, top-level error).
ex(34, 1, false, (w, f) => w.arr(1, f).str('/data/b', f).arr(1, f).str('ard', f).ints([0], f),
  (w, f) => w.i32(0).arr(1, f).str('ard', f).arr(1, f).i32(0).i16(57));
ex(35, 1, false, (w, f) => w.arr(1, f).str('dld', f).ints([0], f),
  (w, f) => w.i32(0).arr(1, f).i16(0).str('/data/a', f).arr(1, f).str('dld', f).arr(1, f).i32(0).i64(1024).i64(0).i8(0));
ex(35, 3, true, (w, f) => w.arr(null, f).tag(f),
  (w, f) => w.i32(0).i16(0).arr(1, f).i16(0).str('/data/a', f).arr(1, f).str('dld', f).arr(1, f).i32(1).i64(2048).i64(0).i8(0).tag(f).tag(f).tag(f).tag(f), NEW);
// Delegation tokens v1 (classic): the error code comes first; hmac and token ids are not read.
ex(38, 1, false, (w, f) => w.arr(0, f).i64(-1),
  (w, f) => w.i16(65).str('User', f).str('a', f).i64(0).i64(0).i64(0).str('', f).bytes(Buffer.alloc(0), f).i32(0));
ex(39, 1, false, (w, f) => w.bytes(Buffer.from('hmac'), f).i64(1000), (w, f) => w.i16(62).i64(0).i32(0));
ex(40, 1, false, (w, f) => w.bytes(Buffer.from('hmac'), f).i64(-1), (w, f) => w.i16(0).i64(123).i32(0));
ex(41, 1, false, (w, f) => w.arr(null, f), (w, f) => w.i16(0).arr(0, f).i32(0));
// Client quotas v0 (classic) and SCRAM credentials v0 (flexible).
ex(48, 0, false, (w, f) => w.arr(1, f).str('user', f).i8(1).str(null, f).i8(0),
  (w, f) => w.i32(0).i16(0).str(null, f).arr(0, f), NEW);
ex(49, 0, false, (w, f) => w.arr(1, f).arr(1, f).str('user', f).str('alice', f).arr(1, f).str('producer_byte_rate', f).f64(1024).i8(0).i8(0),
  (w, f) => w.i32(0).arr(1, f).i16(42).str('bad quota', f).arr(1, f).str('user', f).str('alice', f), NEW);
ex(50, 0, true, (w, f) => w.arr(1, f).str('alice', f).tag(f).tag(f),
  (w, f) => w.i32(0).i16(0).str(null, f).arr(1, f).str('alice', f).i16(91).str('none', f).arr(0, f).tag(f).tag(f), NEW);
// ConsumerGroupHeartbeat v0 (KIP-848, flexible): join with a subscription.
ex(68, 0, true, (w, f) => w.str('cg-848', f).str('', f).i32(0).str(null, f).str(null, f).i32(300000)
    .arr(1, f).str('cgh', f).str(null, f).arr(0, f).tag(f),
  (w, f) => w.i32(0).i16(0).str(null, f).str('member-1', f).i32(1).i32(5000).i8(-1).tag(f), NEW);

// Later versions and the group/credential APIs around them (all beyond tshark 4.0).
// AlterPartitionReassignments v1 (KIP-860: allow replication factor change), refused for the topic.
ex(45, 1, true, (w, f) => w.i32(60000).i8(0).arr(1, f).str('apr', f).arr(1, f).i32(0).ints([1, 2, 3], f).tag(f).tag(f).tag(f),
  (w, f) => w.i32(0).i8(0).i16(0).str(null, f).arr(1, f).str('apr', f).arr(1, f)
    .i32(0).i16(39).str('factor change not allowed', f).tag(f).tag(f).tag(f), NEW);
// ConsumerGroupDescribe v0 (KIP-848): a group that is not there.
ex(69, 0, true, (w, f) => w.arr(1, f).str('cg-848', f).i8(0).tag(f),
  (w, f) => w.i32(0).arr(1, f).i16(69).str(null, f).str('cg-848', f).str('Dead', f).i32(0).i32(0).str('uniform', f)
    .arr(0, f).i32(-2147483648).tag(f).tag(f), NEW);
// AlterUserScramCredentials v0: an upsertion refused (the salted password is not read).
ex(51, 0, true, (w, f) => w.arr(0, f).arr(1, f).str('alice', f).i8(1).i32(8192).bytes(Buffer.from('salt'), f).bytes(Buffer.alloc(32, 7), f).tag(f).tag(f),
  (w, f) => w.i32(0).arr(1, f).str('alice', f).i16(93).str('bad credential', f).tag(f).tag(f), NEW);
// ListTransactions v1 (duration filter), DescribeCluster v1 (endpoint type), DescribeLogDirs v4
// (total and usable bytes), ConsumerGroupHeartbeat v1 (subscription regex) fenced.
ex(66, 1, true, (w, f) => w.arr(0, f).arr(0, f).i64(60000).tag(f),
  (w, f) => w.i32(0).i16(0).arr(0, f).arr(0, f).tag(f), NEW);
ex(60, 1, true, (w, f) => w.i8(0).i8(2).tag(f),
  (w, f) => w.i32(0).i16(114).str('not a controller endpoint', f).i8(2).str('cluster-1', f).i32(-1).arr(0, f).i32(-2147483648).tag(f), NEW);
ex(35, 4, true, (w, f) => w.arr(1, f).str('dld', f).ints([2], f).tag(f).tag(f),
  (w, f) => w.i32(0).i16(0).arr(1, f).i16(0).str('/data/a', f).arr(1, f).str('dld', f).arr(1, f).i32(2).i64(4096).i64(0).i8(0).tag(f).tag(f)
    .i64(1 << 30).i64(1 << 29).tag(f).tag(f), NEW);
ex(68, 1, true, (w, f) => w.str('cg-848', f).str('member-1', f).i32(3).str(null, f).str(null, f).i32(300000)
    .arr(null, f).str('cgh-.*', f).str(null, f).arr(null, f).tag(f),
  (w, f) => w.i32(0).i16(110).str('fenced', f).str(null, f).i32(0).i32(5000).i8(-1).tag(f), NEW);

// DescribeTopicPartitions v0 (KIP-966: what admin clients use instead of Metadata from Kafka
// 3.7): every topic (empty list), answered with one topic, its id, partition 1 without a leader.
ex(75, 0, true, (w, f) => w.arr(0, f).i32(2000).i8(-1).tag(f),
  (w, f) => w.i32(0).arr(1, f).i16(0).str('dtp', f).raw(Buffer.from('6b61666b612d746f7069632d69642d31', 'hex')).i8(0).arr(2, f)
    .i16(0).i32(0).i32(1).i32(0).ints([1], f).ints([1], f).ints(null, f).ints(null, f).ints([], f).tag(f)
    .i16(5).i32(1).i32(-1).i32(0).ints([2], f).ints([], f).ints(null, f).ints(null, f).ints([2], f).tag(f)
    .i32(-2147483648).tag(f).i8(-1).tag(f), NEW);
// Client telemetry (KIP-714): a subscription, then a push the broker finds too large.
ex(71, 0, true, (w, f) => w.raw(Buffer.alloc(16)).tag(f),
  (w, f) => w.i32(0).i16(0).raw(Buffer.alloc(16, 1)).i32(7).arr(1, f).i8(3).i32(30000).i32(1048576).i8(0).arr(1, f).str('org.apache.kafka.', f).tag(f), NEW);
ex(72, 0, true, (w, f) => w.raw(Buffer.alloc(16, 1)).i32(7).i8(0).i8(0).bytes(Buffer.alloc(64, 9), f).tag(f),
  (w, f) => w.i32(0).i16(118).tag(f), NEW);

// ---- framing ------------------------------------------------------------------------------

function request(x, corr) {
  const hdr = new W().i16(x.key).i16(x.ver).i32(corr).str('synth-admin', false);
  if (x.flex) hdr.uv(0);
  const p = Buffer.concat([hdr.done(), x.req(new W(), x.flex).done()]);
  return Buffer.concat([new W().i32(p.length).done(), p]);
}
function response(x, corr) {
  const hdr = new W().i32(corr);
  if (x.flex) hdr.uv(0);
  const p = Buffer.concat([hdr.done(), x.resp(new W(), x.flex).done()]);
  return Buffer.concat([new W().i32(p.length).done(), p]);
}

const pkts = [];
let t = 1700000000;
function tcp(fromClient, sport, seq, ack, flags, data) {
  const d = data || Buffer.alloc(0);
  const th = Buffer.alloc(20);
  th.writeUInt16BE(fromClient ? sport : 9092, 0); th.writeUInt16BE(fromClient ? 9092 : sport, 2);
  th.writeUInt32BE(seq >>> 0, 4); th.writeUInt32BE(ack >>> 0, 8);
  th[12] = 0x50; th[13] = flags; th.writeUInt16BE(65535, 14);
  const ih = Buffer.alloc(20);
  ih[0] = 0x45; ih.writeUInt16BE(40 + d.length, 2); ih[8] = 64; ih[9] = 6;
  Buffer.from([127, 0, 0, 1]).copy(ih, 12); Buffer.from([127, 0, 0, 1]).copy(ih, 16);
  pkts.push({ t: t++, data: Buffer.concat([ih, th, d]) });
}
// One connection per group of exchanges; correlation ids are unique across connections.
function connection(sport, xs, corr0) {
  let cs = 1000, ss = 5000;
  tcp(true, sport, cs++, 0, 0x02); tcp(false, sport, ss++, cs, 0x12); tcp(true, sport, cs, ss, 0x10);
  xs.forEach((x, i) => {
    const q = request(x, corr0 + i); tcp(true, sport, cs, ss, 0x18, q); cs += q.length;
    const r = response(x, corr0 + i); tcp(false, sport, ss, cs, 0x18, r); ss += r.length;
  });
  tcp(true, sport, cs++, ss, 0x11); tcp(false, sport, ss++, cs, 0x11); tcp(true, sport, cs, ss, 0x10);
}
function write(file, xs) {
  pkts.length = 0;
  const per = 8;
  for (let i = 0; i < xs.length; i += per) connection(41000 + i, xs.slice(i, i + per), 100 + i);
  const out = [];
const gh = Buffer.alloc(24);
gh.writeUInt32LE(0xa1b2c3d4, 0); gh.writeUInt16LE(2, 4); gh.writeUInt16LE(4, 6); gh.writeUInt32LE(65535, 16); gh.writeUInt32LE(101, 20);
out.push(gh);
for (const p of pkts) {
  const h = Buffer.alloc(16);
  h.writeUInt32LE(p.t, 0); h.writeUInt32LE(0, 4); h.writeUInt32LE(p.data.length, 8); h.writeUInt32LE(p.data.length, 12);
  out.push(h, p.data);
}
  fs.writeFileSync(file, Buffer.concat(out));
}
const dir = process.argv[2] || '.';
write(`${dir}/synth-admin.pcap`, X.filter((x) => x.tshark));
write(`${dir}/synth-admin-new.pcap`, X.filter((x) => !x.tshark));
