// Offline discovery from fixture trees: DMI per cloud provider, cgroup path shapes, /proc/net
// tables, os-release, OTEL_RESOURCE_ATTRIBUTES; IMDS against a metadata server on loopback.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { repoRoot } from '../helpers/decoder';
import { readDmi, cloudFromDmi, cloudAttributes, enrichFromImds } from '../../host/src/discovery/cloud';
import { parseCgroupFile } from '../../host/src/discovery/cgroup';
import { parseNetTable, recogniseService } from '../../host/src/discovery/sockets';
import { parseOsRelease } from '../../host/src/discovery/host';
import { parseResourceAttributes } from '../../host/src/discovery';
import { classifyRuntime } from '../../host/src/discovery/runtime';

const FIX = path.join(repoRoot, 'test', 'fixtures');

test('cloud provider from each fixture DMI tree', () => {
  const want: Record<string, Record<string, string> | undefined> = {
    aws: { 'cloud.provider': 'aws', 'cloud.platform': 'aws_ec2', 'host.type': 'm5.large' },
    'aws-xen': { 'cloud.provider': 'aws', 'cloud.platform': 'aws_ec2' },
    gcp: { 'cloud.provider': 'gcp', 'cloud.platform': 'gcp_compute_engine' },
    azure: { 'cloud.provider': 'azure', 'cloud.platform': 'azure_vm' },
    alibaba: { 'cloud.provider': 'alibaba_cloud', 'cloud.platform': 'alibaba_cloud_ecs' },
    oracle: { 'cloud.provider': 'oracle_cloud', 'cloud.platform': 'oracle_cloud_compute' },
    digitalocean: { 'cloud.provider': 'digitalocean', 'cloud.platform': 'digitalocean_droplet' },
    hetzner: { 'cloud.provider': 'hetzner', 'cloud.platform': 'hetzner_cloud_server' },
    tencent: { 'cloud.provider': 'tencent_cloud', 'cloud.platform': 'tencent_cloud_cvm' },
    openstack: { 'cloud.provider': 'openstack', 'cloud.platform': 'openstack_nova' },
    'bare-qemu': {},
  };
  const dirs = fs.readdirSync(path.join(FIX, 'dmi')).sort();
  assert.deepEqual(dirs, Object.keys(want).sort(), 'every fixture tree has an expectation');
  for (const d of dirs) {
    const c = cloudFromDmi(readDmi(path.join(FIX, 'dmi', d)));
    assert.deepEqual(cloudAttributes(c), want[d], d);
  }
  assert.deepEqual(cloudAttributes(cloudFromDmi(readDmi(path.join(FIX, 'dmi', 'does-not-exist')))), {});
});

test('cgroup v1/v2 path shapes → container id, runtime, pod uid', () => {
  const k8sId = 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90';
  const dockerId = '3f4e2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f';
  const want: Record<string, { containerId?: string; runtime?: string; podUid?: string }> = {
    'docker-v1.txt': { containerId: dockerId, runtime: 'docker' },
    'docker-v2-systemd.txt': { containerId: dockerId, runtime: 'docker' },
    'containerd-v2-systemd.txt': { containerId: k8sId, runtime: 'containerd', podUid: '8a1c9a1e-5b2f-4c7d-9e3a-1f2b3c4d5e6f' },
    'containerd-v1-cgroupfs.txt': { containerId: k8sId, podUid: '8a1c9a1e-5b2f-4c7d-9e3a-1f2b3c4d5e6f' },
    'crio-v2.txt': { containerId: '9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0', runtime: 'cri-o', podUid: '0f9e8d7c-6b5a-4938-8271-605f4e3d2c1b' },
    'podman-v2.txt': { containerId: '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef', runtime: 'podman' },
    'host-v2.txt': {},
  };
  for (const f of fs.readdirSync(path.join(FIX, 'cgroup'))) {
    const got = parseCgroupFile(fs.readFileSync(path.join(FIX, 'cgroup', f), 'utf8'));
    assert.ok(f in want, `expectation for ${f}`);
    assert.deepEqual({ containerId: got.containerId, runtime: got.runtime, podUid: got.podUid }, { containerId: undefined, runtime: undefined, podUid: undefined, ...want[f] }, f);
  }
});

test('/proc/net tables: listening TCP (v4, v6) and unconnected UDP', () => {
  const tcp = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   104        0 31337 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1538 0100007F:C350 01 00000000:00000000 00:00000000 00000000   104        0 31338 1 0000000000000000 20 4 30 10 -1
`;
  assert.deepEqual(parseNetTable(tcp, 'tcp'), [{ transport: 'tcp', address: '127.0.0.1', port: 5432, inode: 31337 }]);
  const tcp6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:18EB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4243 1 0000000000000000 100 0 0 10 0
`;
  assert.deepEqual(parseNetTable(tcp6, 'tcp').map((s) => `${s.address}|${s.port}`), ['::|6379', '::1|80']);
  const udp = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 777 2 0000000000000000 0
  101: 0100007F:D431 0100007F:0035 01 00000000:00000000 00:00000000 00000000     0        0 778 2 0000000000000000 0
`;
  assert.deepEqual(parseNetTable(udp, 'udp'), [{ transport: 'udp', address: '127.0.0.53', port: 53, inode: 777 }]);
});

test('service recognition: executable first, JVM services by command line, port last', () => {
  assert.equal(recogniseService('postgres', '', 41234)?.decoder, 'pgsql');
  assert.equal(recogniseService('mariadbd', '', 3307)?.name, 'mysql');
  assert.equal(recogniseService('redis-server', '', 7000)?.decoder, 'redis');
  assert.equal(recogniseService('java', 'java -cp /opt/kafka/libs/* kafka.Kafka config/server.properties', 19092)?.decoder, 'kafka');
  assert.equal(recogniseService('java', 'java org.elasticsearch.bootstrap.Elasticsearch', 9201)?.name, 'elasticsearch');
  assert.equal(recogniseService('mongod', '', 27018)?.name, 'mongodb');
  assert.equal(recogniseService('nginx', 'nginx: master process', 8080)?.decoder, 'http1');
  assert.equal(recogniseService('myapp', '', 9092)?.name, 'kafka');
  assert.equal(recogniseService('myapp', '', 8080), undefined);
});

test('os-release and OTEL_RESOURCE_ATTRIBUTES parsing', () => {
  const r = parseOsRelease('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n# comment\n');
  assert.deepEqual(r, { PRETTY_NAME: 'Debian GNU/Linux 12 (bookworm)', NAME: 'Debian GNU/Linux', VERSION_ID: '12', ID: 'debian' });
  assert.deepEqual(parseResourceAttributes('service.name=my%20svc, deployment.environment=prod,bad,=x'), { 'service.name': 'my svc', 'deployment.environment': 'prod' });
});

test('runtime classification from executable and mapped libraries', () => {
  assert.deepEqual(classifyRuntime('/usr/bin/python3.11', []), { name: 'cpython', version: '3.11' });
  assert.deepEqual(classifyRuntime('/usr/bin/uwsgi', ['/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0']), { name: 'cpython', version: '3.11' });
  assert.equal(classifyRuntime('/usr/lib/jvm/java-17/bin/java', ['/usr/lib/jvm/java-17/lib/server/libjvm.so'])?.name, 'java');
  assert.deepEqual(classifyRuntime('/usr/share/dotnet/dotnet', ['/usr/share/dotnet/shared/Microsoft.NETCore.App/8.0.1/libcoreclr.so']), { name: 'dotnet', version: '8.0.1' });
  assert.deepEqual(classifyRuntime('/usr/bin/ruby3.1', []), { name: 'ruby', version: '3.1' });
  assert.deepEqual(classifyRuntime('/usr/sbin/php-fpm8.2', []), { name: 'php', version: '8.2' });
  assert.equal(classifyRuntime('/usr/bin/node', [])?.name, 'nodejs');
  assert.equal(classifyRuntime('/usr/bin/bash', []), undefined);
});

test('instance metadata (AWS IMDSv2 shape) on loopback: region, zone, account, instance type; unreachable → DMI facts unchanged', async () => {
  let tokenSeen = '';
  const srv = http.createServer((req, res) => {
    if (req.method === 'PUT' && req.url === '/latest/api/token') { res.end('tok-123'); return; }
    if (req.url === '/latest/dynamic/instance-identity/document') {
      tokenSeen = String(req.headers['x-aws-ec2-metadata-token'] ?? '');
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ accountId: '123456789012', architecture: 'x86_64', availabilityZone: 'eu-west-1b', imageId: 'ami-0abcdef1234567890', instanceId: 'i-0123456789abcdef0', instanceType: 'm5.large', pendingTime: '2026-11-25T09:00:00Z', privateIp: '10.0.0.11', region: 'eu-west-1', version: '2017-09-30' }));
      return;
    }
    res.statusCode = 404; res.end();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  try {
    const dmi = cloudFromDmi(readDmi(path.join(FIX, 'dmi', 'aws')));
    const c = await enrichFromImds(dmi, 2000, `http://127.0.0.1:${port}`);
    assert.equal(tokenSeen, 'tok-123');
    assert.deepEqual(cloudAttributes(c), { 'cloud.provider': 'aws', 'cloud.platform': 'aws_ec2', 'cloud.region': 'eu-west-1', 'cloud.availability_zone': 'eu-west-1b', 'cloud.account.id': '123456789012', 'host.type': 'm5.large', 'host.id': 'i-0123456789abcdef0' });
  } finally { srv.close(); }
  // A closed port: one attempt, no retries, the DMI answer stands.
  const dmi = cloudFromDmi(readDmi(path.join(FIX, 'dmi', 'gcp')));
  const c2 = await enrichFromImds(dmi, 300, `http://127.0.0.1:${port}`);
  assert.deepEqual(cloudAttributes(c2), { 'cloud.provider': 'gcp', 'cloud.platform': 'gcp_compute_engine' });
});
