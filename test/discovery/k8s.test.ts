// Kubernetes enrichment against a recorded API served on loopback: the pod list, then a watch
// stream (ADDED, BOOKMARK, DELETED), ReplicaSets for Deployment owners; processes from a fixture
// /proc tree whose cgroup paths name the containers.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { repoRoot } from '../helpers/decoder';
import { waitFor } from '../helpers/agent';
import { Discovery } from '../../host/src/discovery';
import { detectInCluster } from '../../host/src/discovery/k8s';

const FIX = path.join(repoRoot, 'test', 'fixtures');
const CHECKOUT = 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90';
const PG = '9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0';
const CART = 'c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f901a1b';

interface Api { url: string; requests: string[]; releaseWatch(): void; close(): void }

async function fakeApi(): Promise<Api> {
  const requests: string[] = [];
  const watchLines = fs.readFileSync(path.join(FIX, 'k8s', 'watch.jsonl'), 'utf8').split('\n').filter(Boolean);
  const open: http.ServerResponse[] = [];
  let release!: () => void;
  const released = new Promise<void>((r) => { release = r; });
  const srv = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url} auth=${req.headers.authorization ?? ''}`);
    const u = new URL(req.url ?? '/', 'http://x');
    res.setHeader('content-type', 'application/json');
    if (u.pathname === '/api/v1/pods' && u.searchParams.get('watch') === 'true') {
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      open.push(res);
      // Events only once the test has checked the listed state; the stream then stays open.
      void released.then(() => { for (const l of watchLines) res.write(l + '\n'); });
      return;
    }
    if (u.pathname === '/api/v1/pods') { res.end(fs.readFileSync(path.join(FIX, 'k8s', 'pods.json'))); return; }
    const rs = /^\/apis\/apps\/v1\/namespaces\/([^/]+)\/replicasets\/([^/]+)$/.exec(u.pathname);
    const f = rs && path.join(FIX, 'k8s', `replicaset-${rs[2]}.json`);
    if (f && fs.existsSync(f)) { res.end(fs.readFileSync(f)); return; }
    res.statusCode = 404;
    res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 }));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(srv.address() as { port: number }).port}`, requests, releaseWatch: release,
    close: () => { for (const r of open) r.destroy(); srv.close(); },
  };
}

/** A /proc-shaped tree: one process per container, plus one declaring OTEL_SERVICE_NAME. */
function fakeProc(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-proc-'));
  const mk = (pid: number, cgroupFile: string | null, cgroupText: string | null, env = '') => {
    const d = path.join(root, String(pid));
    fs.mkdirSync(d);
    fs.symlinkSync(process.execPath, path.join(d, 'exe'));
    fs.writeFileSync(path.join(d, 'cmdline'), `node\0server.js\0`);
    fs.writeFileSync(path.join(d, 'environ'), env);
    fs.writeFileSync(path.join(d, 'status'), `Name:\tnode\nPPid:\t1\nUid:\t0\t0\t0\t0\n`);
    fs.writeFileSync(path.join(d, 'maps'), '');
    fs.writeFileSync(path.join(d, 'cgroup'), cgroupText ?? fs.readFileSync(path.join(FIX, 'cgroup', cgroupFile!)));
  };
  mk(4242, 'containerd-v2-systemd.txt', null);
  mk(4343, 'crio-v2.txt', null);
  mk(4444, null, `0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1b2c3d4e_5f60_4718_9a3b_4c5d6e7f8091.slice/cri-containerd-${CART}.scope\n`);
  mk(4545, 'containerd-v2-systemd.txt', null, 'PATH=/bin\0OTEL_SERVICE_NAME=checkout-api\0');
  return root;
}

test('not in a cluster here; in-cluster when the env and service-account files say so', () => {
  assert.equal(detectInCluster({}, '/nonexistent').inCluster, false);
  const sa = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-sa-'));
  fs.writeFileSync(path.join(sa, 'token'), 'x');
  fs.writeFileSync(path.join(sa, 'namespace'), 'observability\n');
  const r = detectInCluster({ KUBERNETES_SERVICE_HOST: '10.96.0.1' }, sa);
  assert.deepEqual([r.inCluster, r.namespace], [true, 'observability']);
  fs.rmSync(sa, { recursive: true });
});

test('pods on this node: list + watch with spec.nodeName, Deployment via ReplicaSet, labels, service.name', async () => {
  const api = await fakeApi();
  const proc = fakeProc();
  const d = new Discovery({
    proc_root: proc, dmi_root: path.join(FIX, 'dmi', 'gcp'), port_hints: false,
    kubernetes: { enabled: 'true', node_name: 'node-1', api_server: api.url, labels: ['app', 'app.kubernetes.io/version'], annotations: ['team'] },
  });
  try {
    await d.start();
    await waitFor(() => d.pods?.synced && d.resource(4242)['k8s.deployment.name'] === 'checkout');
    const r = d.resource(4242);
    assert.equal(r['service.name'], 'checkout');
    assert.equal(r['k8s.namespace.name'], 'shop');
    assert.equal(r['k8s.pod.name'], 'checkout-7d9f8b6c5-x2k4q');
    assert.equal(r['k8s.pod.uid'], '8a1c9a1e-5b2f-4c7d-9e3a-1f2b3c4d5e6f');
    assert.equal(r['k8s.container.name'], 'checkout');
    assert.equal(r['k8s.node.name'], 'node-1');
    assert.equal(r['container.id'], CHECKOUT);
    assert.equal(r['container.runtime'], 'containerd');
    assert.equal(r['k8s.pod.label.app'], 'checkout');
    assert.equal(r['k8s.pod.label.app.kubernetes.io/version'], '1.4.2');
    assert.equal(r['k8s.pod.annotation.team'], 'payments');
    assert.equal(r['k8s.pod.annotation.prometheus.io/scrape'], undefined, 'only configured annotations');
    assert.equal(r['cloud.provider'], 'gcp');
    // StatefulSet owner names the service; the process env beats everything.
    assert.equal(d.resource(4343)['k8s.statefulset.name'], 'pg');
    assert.equal(d.resource(4343)['service.name'], 'pg');
    assert.equal(d.resource(4545)['service.name'], 'checkout-api');
    assert.equal(d.resource(4545)['k8s.deployment.name'], 'checkout');
    // Not yet known: the cart pod arrives on the watch.
    assert.equal(d.resource(4444)['k8s.pod.name'], undefined);
    assert.equal(d.resource(4444)['service.name'], 'node');

    api.releaseWatch();
    await waitFor(() => d.resource(4444)['k8s.deployment.name'] === 'cart');
    assert.equal(d.resource(4444)['service.name'], 'cart');
    assert.equal(d.resource(4444)['k8s.pod.name'], 'cart-5c6b7a8d9-qq7rt');
    await waitFor(() => !d.pods!.lookup(PG));

    const list = api.requests.filter((q) => q.startsWith('GET /api/v1/pods') && !q.includes('watch=true'));
    const watches = api.requests.filter((q) => q.includes('watch=true'));
    assert.equal(list.length, 1, 'one list, then events from the watch');
    assert.equal(watches.length, 1);
    for (const q of [...list, ...watches]) assert.match(decodeURIComponent(q), /fieldSelector=spec\.nodeName=node-1/);
    assert.match(watches[0], /resourceVersion=1050/);
    assert.equal(api.requests.filter((q) => q.includes('/replicasets/checkout-7d9f8b6c5')).length, 1, 'ReplicaSet read once and cached');

    const snap = d.snapshot() as { kubernetes: { watching: boolean; synced: boolean; pods: number } };
    assert.deepEqual([snap.kubernetes.watching, snap.kubernetes.synced, snap.kubernetes.pods], [true, true, 2]);
  } finally {
    d.stop();
    api.close();
    fs.rmSync(proc, { recursive: true, force: true });
  }
});
