// Issue 3 item 5: which ports/processes/cgroups/namespaces each decoder may see.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import { DecoderRegistry, cgroupPaths } from '../../host/src/decoders/registry';
import { parsePolicy } from '../../host/src/decoders/policy';
import { wasmPath } from '../helpers/decoder';

test('policy scopes: ports, processes, cgroup prefixes and Kubernetes namespaces', () => {
  const mine = cgroupPaths(process.pid);
  assert.ok(mine.length >= 1, 'this process has a cgroup');
  const prefix = mine[0].split('/').slice(0, 2).join('/') || '/';
  const reg = new DecoderRegistry({ onRecord: () => undefined }, parsePolicy({
    decoders: {
      pgsql: { ports: [5432] },
      kafka: { processes: ['java'] },
      dns: { cgroups: [prefix] },
      redis: { cgroups: ['/no/such/slice'] },
      http2: { namespaces: ['payments'] },
    },
  }));
  for (const n of ['http1', 'http2', 'dns', 'pgsql', 'kafka', 'redis']) reg.add(fs.readFileSync(wasmPath(n)), n, 'test');
  const names = (port: number, exe: string, pid?: number) => reg.candidates(port, 'tcp', exe, pid).map((d) => d.name).sort();
  const here = names(5432, 'node', process.pid);
  assert.ok(here.includes('pgsql'), 'pgsql sees its port');
  assert.ok(!names(6543, 'node', process.pid).includes('pgsql'), 'pgsql does not see another port');
  assert.ok(!here.includes('kafka'), 'kafka limited to java processes');
  assert.ok(names(9092, 'java', process.pid).includes('kafka'));
  assert.ok(reg.candidates(53, 'udp', 'node', process.pid).some((d) => d.name === 'dns'), 'dns sees processes in its cgroup');
  assert.ok(!reg.candidates(53, 'udp', 'node', undefined).some((d) => d.name === 'dns'), 'no process known: fail closed');
  assert.ok(!here.includes('redis'), 'redis sees nothing outside its cgroup prefix');
  assert.ok(!here.includes('http2'), 'http2 limited to a namespace this process is not in');
  assert.ok(here.includes('http1'), 'no rule: everything');
});
