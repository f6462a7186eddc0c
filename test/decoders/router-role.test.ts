// A connection older than the agent has no role from the kernel. Its bytes cannot always tell:
// HTTP/2 WINDOW_UPDATE and PING frames score 55 as either side and Kafka reads them as a Produce
// header, so a Go client that first read its server's frames became a "server" (its spans SERVER
// with the client's pid: test/gotrace/http2-late failed once in CI). A port that listens here
// decides first.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'path';
import { DecoderRegistry } from '../../host/src/decoders/registry';
import { Router } from '../../host/src/ingest/router';
import { SelfMetrics } from '../../host/src/metrics/self';
import { ConnMeta } from '../../host/src/model';
import { repoRoot } from '../helpers/decoder';
import { frame, headers, idx } from './http2-helpers';

function router(listening?: (port: number) => boolean): Router {
  let r!: Router;
  const registry = new DecoderRegistry({ onRecord: (rec, inst) => r.onRecord(rec, inst.meta.name) });
  registry.loadDir(path.join(repoRoot, 'build', 'decoders'));
  r = new Router(registry, () => undefined, new SelfMetrics(), { detectThreshold: 50, listening });
  return r;
}

const late = (m: Partial<ConnMeta> = {}): ConnMeta => ({ role: 'unknown', transport: 'tcp', localAddr: '127.0.0.1', localPort: 51000, remoteAddr: '127.0.0.1', remotePort: 37309, pid: 4242, ...m });
const controlFrames = Buffer.concat([frame(8, 0, 0, Buffer.from([0, 0, 0x40, 0])), frame(6, 0, 0, Buffer.alloc(8))]);
const listens = (port: number) => port === 37309;

test('a connection older than the agent to a loopback port that listens here is the client, whatever its first bytes read like', () => {
  const r = router(listens);
  const conn = r.open(late());
  r.dataLocal(conn, false, controlFrames, 1000n); // its read of the server's flow-control frames
  assert.equal(conn.meta.role, 'client');
});

test('one whose local port listens is the server', () => {
  const r = router(listens);
  const conn = r.open(late({ localPort: 37309, remotePort: 51000 }));
  r.dataLocal(conn, true, controlFrames, 1000n);
  assert.equal(conn.meta.role, 'server');
});

test('to a port that does not listen here (or to another host), the bytes decide as before', () => {
  const r = router(listens);
  const a = r.open(late({ remotePort: 8443 }));
  r.dataLocal(a, false, headers(5, idx(8)), 1000n); // a :status block read: the client
  assert.equal(a.meta.role, 'client');
  const b = r.open(late({ remoteAddr: '10.1.2.3' }));
  r.dataLocal(b, true, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), 1000n);
  assert.equal(b.meta.role, 'client');
  // Without the listening set (replay, discovery off) the bytes decide: a :status block sent.
  const plain = router();
  const c = plain.open(late());
  plain.dataLocal(c, true, headers(5, idx(8)), 1000n);
  assert.equal(c.meta.role, 'server');
});

test('a response read first (the agent started while a request was in flight) makes the reader the client', () => {
  const r = router(listens);
  const a = r.open(late({ remoteAddr: '10.1.2.3', remotePort: 8080 }));
  r.dataLocal(a, false, Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'), 1000n);
  assert.equal(a.meta.role, 'client');
  assert.equal(a.decoder?.name, 'http1');
  // and the server that wrote it is the server
  const b = r.open(late({ localPort: 8080, remoteAddr: '10.1.2.3', remotePort: 51000 }));
  r.dataLocal(b, true, Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'), 1000n);
  assert.equal(b.meta.role, 'server');
  // a DNS answer over TCP read first: the QR bit says who sent it
  const answer = Buffer.from('001d' + 'abcd8180000100000000000007' + '6578616d706c6503636f6d0000010001', 'hex');
  const c = r.open(late({ remoteAddr: '10.1.2.3', remotePort: 53 }));
  r.dataLocal(c, false, answer, 1000n);
  assert.equal(c.meta.role, 'client');
});

test('bytes that read as either side decide nothing: the next read does', () => {
  const r = router(listens);
  const conn = r.open(late({ remoteAddr: '10.1.2.3', remotePort: 8443 }));
  r.dataLocal(conn, false, controlFrames, 1000n); // WINDOW_UPDATE + PING: either side sends them
  assert.equal(conn.meta.role, 'unknown');
  r.dataLocal(conn, false, headers(5, idx(8)), 2000n); // a :status block read
  assert.equal(conn.meta.role, 'client');
  // Redis: a command is an array of bulk strings, and so may a reply be.
  const redis = r.open(late({ remoteAddr: '10.1.2.3', remotePort: 6379 }));
  r.dataLocal(redis, true, Buffer.from('*2\r\n$3\r\nGET\r\n$1\r\nk\r\n'), 1000n);
  assert.equal(redis.meta.role, 'unknown');
  r.dataLocal(redis, false, Buffer.from('$1\r\nv\r\n'), 2000n); // a bulk string alone: only a reply
  assert.equal(redis.meta.role, 'client');
});
