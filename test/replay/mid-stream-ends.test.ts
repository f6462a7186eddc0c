// `telegen replay` of captures that begin after the handshake: the ports guess who serves
// (well-known, then privileged, then the smaller port), and the first bytes that read as one side
// only correct a wrong guess; one well-formed message on a decoder's own port is enough to bind.
// Before, a 2-packet capture of a Kafka JoinGroup between ports 30120 (client) and 36333 (broker),
// and a failed query on 5432, gave no span at all.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { repoRoot, corpusDir } from '../helpers/decoder';
import { Conv, PSH } from './build';

interface JsonSpan { name: string; kind: string; status: string; attributes: Record<string, unknown> }

function replay(file: string): { spans: JsonSpan[]; summary: string } {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'telegen'), 'replay', file], { encoding: 'utf8', env: { ...process.env, TELEGEN_LOG_LEVEL: 'warn' } });
  assert.equal(r.status, 0, r.stderr);
  return { spans: r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l)), summary: r.stderr };
}

const ends = (s: JsonSpan) => [s.attributes['client.address'], s.attributes['client.port'], s.attributes['server.address'], s.attributes['server.port']];

const corpus = (p: string) => path.join(corpusDir, 'pcap', p);
const haveCorpus = fs.existsSync(corpus('kafka/deepflow__11-join-group-v7.pcap'));

test('mid-stream Kafka on unknown ports: the request\'s sender is the client though its port is the smaller', { skip: !haveCorpus && 'no corpus' }, () => {
  for (const [file, op, group] of [['deepflow__11-join-group-v7.pcap', 'join_group', 'zzzz12'], ['deepflow__14-sync-group-v5.pcap', 'sync_group', 'zzzz12']]) {
    const { spans } = replay(corpus(`kafka/${file}`));
    assert.equal(spans.length, 1, `${file}: ${JSON.stringify(spans)}`);
    const s = spans[0];
    assert.equal(s.name, op);
    assert.deepEqual(ends(s), ['10.50.71.3', 30120, '10.50.71.119', 36333], file);
    assert.equal(s.attributes['messaging.client.id'], 'consumer-zzzz12-1');
    assert.equal(s.attributes['messaging.consumer.group.name'], group);
    assert.equal(s.attributes['kafka.correlation_id'], 120);
    // tshark: kafka.error -1 in the response (UNKNOWN_SERVER_ERROR).
    assert.equal(s.attributes['kafka.error_code'], -1);
    assert.equal(s.status, 'ERROR');
  }
});

test('mid-stream PostgreSQL on 5432: one Simple Query and its ErrorResponse are a span', { skip: !haveCorpus && 'no corpus' }, () => {
  const { spans } = replay(corpus('pgsql/deepflow__error.pcap'));
  assert.equal(spans.length, 1, JSON.stringify(spans));
  const s = spans[0];
  assert.deepEqual(ends(s), ['172.17.0.1', 35698, '172.17.0.3', 5432]);
  assert.equal(s.attributes['db.query.text'], 'asdsdfdsf;');
  // tshark: pgsql.code 42601, pgsql.message 'syntax error at or near "asdsdfdsf"'.
  assert.equal(s.attributes['db.response.status_code'], '42601');
  assert.equal(s.attributes['error.message'], 'syntax error at or near "asdsdfdsf"');
  assert.equal(s.status, 'ERROR');
});

test('mid-stream HTTP/1 from a low client port to a high server port: ends swapped by the request line', () => {
  // Client 1000 → server 31000: "the smaller port serves" guesses 1000.
  const cv = new Conv({ addr: '10.9.0.1', port: 1000 }, { addr: '10.9.0.2', port: 31000 });
  const req = 'GET /mid?x=1 HTTP/1.1\r\nHost: svc.test\r\n\r\n';
  const res = 'HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nnop';
  cv.tcp(true, 100, PSH, req, 500);
  cv.tcp(false, 500, PSH, res, 100 + req.length);
  const { spans } = replay(cv.write('mid-low-client.pcap'));
  assert.equal(spans.length, 1, JSON.stringify(spans));
  assert.equal(spans[0].attributes['url.path'], '/mid');
  assert.equal(spans[0].attributes['http.response.status_code'], 404);
  // server.address is the Host header's name (semconv); the port is the server's end.
  assert.deepEqual(ends(spans[0]), ['10.9.0.1', 1000, 'svc.test', 31000]);
});

test('mid-stream with a guess the bytes confirm, or cannot judge, keeps the ports\' ends', () => {
  // Confirmed: the client on the higher port sends the request.
  const ok = new Conv({ addr: '10.9.1.1', port: 45000 }, { addr: '10.9.1.2', port: 31000 });
  const req = 'GET /ok HTTP/1.1\r\nHost: svc.test\r\n\r\n';
  ok.tcp(true, 1, PSH, req, 1);
  ok.tcp(false, 1, PSH, 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', 1 + req.length);
  const a = replay(ok.write('mid-confirmed.pcap')).spans;
  assert.deepEqual(a.map(ends), [['10.9.1.1', 45000, 'svc.test', 31000]]);
  // Bytes no decoder reads as either side: nothing bound, nothing swapped, no span.
  const junk = new Conv({ addr: '10.9.2.1', port: 1000 }, { addr: '10.9.2.2', port: 31000 });
  junk.tcp(true, 1, PSH, Buffer.alloc(64, 0xee), 1);
  junk.tcp(false, 1, PSH, Buffer.alloc(64, 0xdd), 65);
  assert.deepEqual(replay(junk.write('mid-junk.pcap')).spans, []);
});
