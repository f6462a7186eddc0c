// heldout-kafkajs-admin: kafkajs' admin client (its own requests over a real socket) against a
// stand-in broker on 127.0.0.1 that answers ApiVersions, Metadata, the ACL/config APIs and the
// partition reassignment APIs with
// bodies built from the message definitions. librdkafka's mock cluster cannot serve these: it
// has no controller in its Metadata, so admin clients never send them. usage: node
// kafkajs-admin.js KAFKAJS_DIR (prints the port, starts on a line on stdin or after WAIT_MS ms;
// record-kafkajs-admin.sh and kafka-live.test.ts take the capture)
'use strict';
const net = require('net');
const { Kafka, logLevel } = require(process.argv[2]);

const be = (n, v) => { const b = Buffer.alloc(n); if (n === 1) b.writeInt8(v); else if (n === 2) b.writeInt16BE(v); else b.writeInt32BE(v); return b; };
const str = (s) => s === null ? be(2, -1) : Buffer.concat([be(2, Buffer.byteLength(s)), Buffer.from(s)]);
const arr = (items) => Buffer.concat([be(4, items.length), ...items]);

// api key -> [min, max] advertised; kafkajs picks the highest it knows within them
const APIS = { 3: [0, 1], 18: [0, 1], 29: [0, 1], 30: [0, 1], 31: [0, 1], 33: [0, 1], 45: [0, 0], 46: [0, 0] };
// flexible (compact) bodies and a tagged-fields byte after the correlation id
const FLEX = new Set([45, 46]);
const uv = (n) => Buffer.from([n]); // every count and length here is < 127
const cstr = (s) => s === null ? uv(0) : Buffer.concat([uv(Buffer.byteLength(s) + 1), Buffer.from(s)]);
const carr = (items) => Buffer.concat([uv(items.length + 1), ...items]);
const TAG0 = uv(0);
let port = 0;
const acl = () => Buffer.concat([str('User:alice'), str('*'), be(1, 3), be(1, 3)]);
function body(key, ver) {
  switch (key) {
    case 18: return Buffer.concat([be(2, 0), arr(Object.entries(APIS).map(([k, [a, b]]) => Buffer.concat([be(2, +k), be(2, a), be(2, b)]))), ver >= 1 ? be(4, 0) : Buffer.alloc(0)]);
    case 3: // v1: brokers (id, host, port, rack), controller id, topics
      return Buffer.concat([arr([Buffer.concat([be(4, 1), str('127.0.0.1'), be(4, port), str(null)])]), be(4, 1),
        arr([Buffer.concat([be(2, 0), str('held'), be(1, 0), arr([0, 1].map((p) => Buffer.concat([be(2, 0), be(4, p), be(4, 1), arr([be(4, 1)]), arr([be(4, 1)])])))])])]);
    case 30: return Buffer.concat([be(4, 0), arr([Buffer.concat([be(2, 0), str(null)])])]);
    // DescribeAcls: denied (CLUSTER_AUTHORIZATION_FAILED)
    case 29: return Buffer.concat([be(4, 0), be(2, 31), str('denied'), arr([])]);
    // DeleteAcls: one matching ACL deleted (tshark 4.0 lists no DeleteAcls results: no error here)
    case 31: return Buffer.concat([be(4, 0), arr([Buffer.concat([be(2, 0), str(null), arr([Buffer.concat([be(2, 0), str(null), be(1, 2), str('held'), ...(ver >= 1 ? [be(1, 3)] : []), acl()])])])])]);
    // AlterConfigs: INVALID_CONFIG for the topic
    case 33: return Buffer.concat([be(4, 0), arr([Buffer.concat([be(2, 40), str('retention.ms too small'), be(1, 2), str('held')])])]);
    // AlterPartitionReassignments v0: partition 0 of held refused (INVALID_REPLICA_ASSIGNMENT)
    case 45: return Buffer.concat([be(4, 0), be(2, 0), cstr(null), carr([Buffer.concat([cstr('held'),
      carr([Buffer.concat([be(4, 0), be(2, 39), cstr('broker 1 only'), TAG0])]), TAG0])]), TAG0]);
    // ListPartitionReassignments v0: partition 0 of held moving from 1 to 2
    case 46: return Buffer.concat([be(4, 0), be(2, 0), cstr(null), carr([Buffer.concat([cstr('held'),
      carr([Buffer.concat([be(4, 0), carr([be(4, 1), be(4, 2)]), carr([be(4, 2)]), carr([be(4, 1)]), TAG0])]), TAG0])]), TAG0]);
  }
  return null;
}

const server = net.createServer((sock) => {
  let buf = Buffer.alloc(0);
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 4 && buf.length >= 4 + buf.readInt32BE(0)) {
      const size = buf.readInt32BE(0);
      const key = buf.readInt16BE(4), ver = buf.readInt16BE(6), corr = buf.readInt32BE(8);
      buf = buf.subarray(4 + size);
      const b = body(key, ver);
      if (!b) { sock.destroy(); return; }
      const h = FLEX.has(key) ? Buffer.concat([be(4, corr), TAG0]) : be(4, corr);
      sock.write(Buffer.concat([be(4, h.length + b.length), h, b]));
    }
  });
  sock.on('error', () => {});
});

server.listen(0, '127.0.0.1', async () => {
  port = server.address().port;
  console.log(port);
  // Start once the capture runs: a line on stdin, or WAIT_MS.
  await new Promise((r) => {
    if (process.env.WAIT_MS) setTimeout(r, Number(process.env.WAIT_MS));
    else process.stdin.once('data', r);
  });
  process.stdin.destroy();
  const kafka = new Kafka({ clientId: 'kafkajs-admin', brokers: [`127.0.0.1:${port}`], logLevel: logLevel.NOTHING, retry: { retries: 0 } });
  const admin = kafka.admin();
  const rule = { resourceType: 2, resourceName: 'held', resourcePatternType: 3, principal: 'User:alice', host: '*', operation: 3, permissionType: 3 };
  try {
    await admin.connect();
    try { await admin.createAcls({ acl: [rule] }); } catch (e) { console.error('createAcls', e.message); }
    try { await admin.describeAcls(rule); } catch (e) { console.error('describeAcls', e.message); }
    try { await admin.deleteAcls({ filters: [rule] }); } catch (e) { console.error('deleteAcls', e.message); }
    try { await admin.alterPartitionReassignments({ topics: [{ topic: 'held', partitionAssignment: [{ partition: 0, replicas: [1] }] }] }); } catch (e) { console.error('alterPartitionReassignments', e.message); }
    try { console.error('listPartitionReassignments', JSON.stringify(await admin.listPartitionReassignments({ topics: [{ topic: 'held', partitions: [0] }] }))); } catch (e) { console.error('listPartitionReassignments', e.message); }
    try { await admin.alterConfigs({ validateOnly: false, resources: [{ type: 2, name: 'held', configEntries: [{ name: 'retention.ms', value: '1' }] }] }); } catch (e) { console.error('alterConfigs', e.message); }
  } finally {
    await admin.disconnect();
    server.close();
  }
});
