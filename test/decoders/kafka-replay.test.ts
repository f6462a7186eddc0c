// The Kafka decoder through the product: `telegen replay` over the self-recorded capture
// (librdkafka mock broker, kcat, kafkajs) prints one span per exchange, asserted exactly.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { repoRoot } from '../helpers/decoder';

const capture = path.join(repoRoot, 'decoders', 'kafka', 'testdata', 'mock-kcat-kafkajs.pcapng');
const cli = path.join(repoRoot, 'bin', 'telegen');

interface JsonSpan { name: string; kind: string; startTimeUnixNano: string; endTimeUnixNano: string; status: string; attributes: Record<string, unknown> }

test('telegen replay: one span per Kafka exchange of a kcat + kafkajs session, exact attributes', { skip: !fs.existsSync(cli) && 'no CLI', timeout: 120_000 }, () => {
  spawnSync(process.execPath, [path.join(repoRoot, 'decoders', 'build.js'), 'kafka'], { stdio: 'ignore' });
  const r = spawnSync(process.execPath, [cli, 'replay', capture, '--format', 'jsonl'], { encoding: 'utf8', timeout: 100_000, maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, r.stderr);
  const spans: JsonSpan[] = r.stdout.split('\n').filter((l) => l.startsWith('{') && l.includes('"startTimeUnixNano"')).map((l) => JSON.parse(l));
  const names: Record<string, number> = {};
  for (const s of spans) names[s.name] = (names[s.name] ?? 0) + 1;
  assert.deepEqual(names, {
    api_versions: 20, metadata: 2, 'metadata telegen-live': 8, 'metadata telegen-compressed': 6,
    'produce telegen-live': 4, 'produce telegen-compressed': 4, 'list_offsets telegen-live': 2, 'list_offsets telegen-compressed': 1,
    'fetch telegen-live': 6, 'fetch telegen-compressed': 6, init_producer_id: 1, find_coordinator: 1, join_group: 1, sync_group: 1,
    'offset_fetch telegen-live': 1, heartbeat: 1, 'offset_commit telegen-live': 4, leave_group: 1,
  });
  assert.ok(spans.every((s) => s.kind === 'SERVER' && s.attributes['server.address'] === '127.0.0.1' && s.attributes['messaging.system'] === 'kafka'));
  // librdkafka (2.0.2) opens with ApiVersions v3; the mock answers UNSUPPORTED_VERSION and the
  // client retries with v0: negotiation, not an error.
  assert.ok(spans.every((s) => s.status !== 'ERROR'), 'no error spans in a healthy session');

  const pick = (pred: (s: JsonSpan) => boolean): Record<string, unknown> => {
    const found = spans.filter(pred);
    assert.equal(found.length, 1);
    const a = { ...found[0].attributes };
    for (const k of ['server.port', 'client.port', 'network.peer.port', 'client.address', 'network.peer.address', 'server.address', 'network.transport', 'network.type']) delete a[k];
    return a;
  };
  assert.deepEqual(pick((s) => s.name === 'produce telegen-live' && s.attributes['messaging.client.id'] === 'rdkafka' && s.attributes['messaging.batch.message_count'] === 3), {
    'network.protocol.name': 'kafka', 'messaging.system': 'kafka', 'messaging.operation.name': 'produce', 'messaging.operation.type': 'send',
    'kafka.api_key': 0, 'kafka.api_version': 7, 'kafka.correlation_id': 4, 'messaging.client.id': 'rdkafka',
    'messaging.destination.name': 'telegen-live', 'messaging.destination.partition.id': '0', 'messaging.batch.message_count': 3,
    'messaging.message.body.size': 96, 'kafka.compression.codec': 'none', 'telegen.kafka.acks': -1, 'messaging.kafka.offset': 0,
    'telegen.request.size': 155, 'telegen.response.size': 64,
  });
  assert.deepEqual(pick((s) => s.name === 'join_group'), {
    'network.protocol.name': 'kafka', 'messaging.system': 'kafka', 'messaging.operation.name': 'join_group',
    'kafka.api_key': 11, 'kafka.api_version': 5, 'kafka.correlation_id': 3, 'messaging.client.id': 'telegen-kafkajs',
    'messaging.consumer.group.name': 'telegen-group', 'telegen.request.size': 118, 'telegen.response.size': 120,
  });
  const codecs = spans.filter((s) => s.name === 'produce telegen-compressed').map((s) => s.attributes['kafka.compression.codec']);
  assert.deepEqual(codecs, ['gzip', 'snappy', 'lz4', 'zstd']);
  const oneWay = spans.filter((s) => s.attributes['telegen.kafka.acks'] === 0);
  assert.equal(oneWay.length, 1);
  assert.equal(oneWay[0].attributes['telegen.response.size'], undefined);
  for (const s of spans) assert.ok(BigInt(s.endTimeUnixNano) >= BigInt(s.startTimeUnixNano));
});
