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
