// deploy/: renders the kustomize base and overlays with `kubectl kustomize` (offline), validates
// every object against the Kubernetes schemas (kubernetes-models) and checks the security
// properties an operator relies on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import YAML from 'yaml';
import { repoRoot } from '../helpers/decoder';
import { parseConfig } from '../../host/src/config';
import { resolveExportConfig } from '../../host/src/export';
import { parseCollectConfig } from '../../host/src/collect/config';

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; [k: string]: any }; // eslint-disable-line @typescript-eslint/no-explicit-any

const SEED_CAPS = ['BPF', 'PERFMON', 'SYS_PTRACE', 'NET_ADMIN', 'DAC_READ_SEARCH'];

// kubectl (with its built-in kustomize) is on the developer and CI machines; Debian 12's own
// kubernetes-client 1.20 embeds a kustomize too old for `labels`/`replacements`.
const hasKubectl = (() => { try { execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore' }); return true; } catch { return false; } })();
if (!hasKubectl && process.env.CI === 'true') throw new Error('kubectl is required to render deploy/kustomize');
const needsKubectl = { skip: hasKubectl ? false : 'kubectl not installed' };

function render(dir: string): Obj[] {
  const out = execFileSync('kubectl', ['kustomize', path.join(repoRoot, 'deploy', 'kustomize', dir)], { encoding: 'utf8' });
  return YAML.parseAllDocuments(out).map((d) => d.toJSON() as Obj).filter(Boolean);
}

/** Maps apiVersion to the kubernetes-models module that holds its classes. */
function modelModule(apiVersion: string): string {
  return apiVersion.includes('/') ? `kubernetes-models/${apiVersion}` : `kubernetes-models/v1`;
}

function validate(o: Obj): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(modelModule(o.apiVersion)) as Record<string, new (x: unknown) => { validate(): void }>;
  const Cls = mod[o.kind];
  assert.ok(Cls, `no schema for ${o.apiVersion} ${o.kind}`);
  new Cls(o).validate();
}

const find = (objs: Obj[], kind: string, name?: string) => {
  const o = objs.find((x) => x.kind === kind && (!name || x.metadata.name === name));
  assert.ok(o, `rendered output has ${kind}${name ? ` ${name}` : ''}`);
  return o;
};

test('every rendered object validates against the Kubernetes schemas', needsKubectl, () => {
  for (const dir of ['base', 'overlays/collector', 'overlays/legacy-kernel', 'overlays/single-process']) {
    const objs = render(dir);
    assert.ok(objs.length >= 6, `${dir}: ${objs.length} objects`);
    for (const o of objs) {
      assert.doesNotThrow(() => validate(o), `${dir}: ${o.kind}/${o.metadata.name}`);
    }
  }
});

test('the schema validation rejects a broken object (the check can fail)', needsKubectl, () => {
  const ds = structuredClone(find(render('base'), 'DaemonSet'));
  container(ds, 'worker').ports[0].containerPort = 'not-a-port';
  assert.throws(() => validate(ds), /containerPort/);
});

type Container = { name: string; args: string[]; securityContext: any; volumeMounts: Array<{ name: string; mountPath: string; readOnly?: boolean }>; [k: string]: any }; // eslint-disable-line @typescript-eslint/no-explicit-any
const container = (ds: Obj, name: string): Container => {
  const c = ds.spec.template.spec.containers.find((x: { name: string }) => x.name === name);
  assert.ok(c, `container ${name}`);
  return c;
};

test('DaemonSet: privilege-separated pod — loader with exactly the seed capabilities, worker non-root with none, one socket between them', needsKubectl, () => {
  const objs = render('base');
  for (const o of objs) assert.ok(!JSON.stringify(o).includes('"privileged":true'), `${o.kind}/${o.metadata.name} is not privileged`);
  const ds = find(objs, 'DaemonSet', 'telegen');
  const pod = ds.spec.template.spec;
  assert.equal(pod.hostPID, true);
  assert.equal(pod.hostNetwork, undefined, 'no host network');
  assert.deepEqual(pod.tolerations, [{ operator: 'Exists' }]);
  assert.equal(pod.serviceAccountName, 'telegen');
  assert.deepEqual(pod.containers.map((c: { name: string }) => c.name).sort(), ['loader', 'worker']);
  const loader = container(ds, 'loader');
  const worker = container(ds, 'worker');

  const ls = loader.securityContext;
  assert.equal(ls.privileged, false);
  assert.equal(ls.runAsUser, 0, 'Kubernetes grants added capabilities to uid 0 only');
  assert.equal(ls.allowPrivilegeEscalation, false);
  assert.equal(ls.readOnlyRootFilesystem, true);
  assert.deepEqual(ls.capabilities.drop, ['ALL']);
  assert.deepEqual([...ls.capabilities.add].sort(), [...SEED_CAPS].sort(), 'exactly the seed list, no SYS_ADMIN in the base');
  assert.equal(loader.args[0], 'loader');
  assert.equal(loader.ports, undefined, 'the loader serves nothing on the network');

  const ws = worker.securityContext;
  assert.equal(ws.privileged, false);
  assert.equal(ws.runAsNonRoot, true);
  assert.ok(ws.runAsUser > 0 && ws.runAsGroup > 0, 'worker uid/gid not 0');
  assert.equal(ws.allowPrivilegeEscalation, false);
  assert.equal(ws.readOnlyRootFilesystem, true);
  assert.deepEqual(ws.capabilities, { drop: ['ALL'] }, 'the worker adds no capability');
  assert.equal(worker.args[0], 'worker');

  // The socket: the same path for both, inside an emptyDir both mount and no other container has.
  const sock = (c: Container) => c.args[c.args.indexOf('--socket') + 1];
  assert.equal(sock(loader), sock(worker));
  const vols = new Map<string, { hostPath?: { path: string }; emptyDir?: unknown; configMap?: unknown }>(pod.volumes.map((v: { name: string }) => [v.name, v]));
  const holding = (c: Container) => c.volumeMounts.find((m) => sock(c).startsWith(`${m.mountPath}/`));
  const lm = holding(loader), wm = holding(worker);
  assert.ok(lm && wm, 'the socket path is on a mount in both containers');
  assert.equal(lm.name, wm.name);
  assert.equal(lm.mountPath, wm.mountPath);
  assert.ok(vols.get(lm.name)?.emptyDir, 'the socket lives in an emptyDir, not on the host');

  // Host paths: the loader's only, read-only but bpffs (pinning needs writes); the worker none.
  const mountOf = (hostPath: string) => {
    const v = [...vols.entries()].find(([, x]) => x.hostPath?.path === hostPath);
    assert.ok(v, `volume for ${hostPath}`);
    const m = loader.volumeMounts.find((x) => x.name === v[0]);
    assert.ok(m, `mount of ${hostPath}`);
    return m;
  };
  for (const p of ['/sys/kernel/btf', '/sys/kernel/tracing', '/proc']) assert.equal(mountOf(p).readOnly, true, `${p} read-only`);
  assert.equal(mountOf('/sys/fs/bpf').mountPath, '/sys/fs/bpf');
  for (const m of loader.volumeMounts) {
    const v = vols.get(m.name);
    if (v?.hostPath && v.hostPath.path !== '/sys/fs/bpf') assert.equal(m.readOnly, true, `${v.hostPath.path} read-only`);
  }
  for (const m of worker.volumeMounts) {
    const v = vols.get(m.name);
    assert.ok(!v?.hostPath, `worker mounts no host path (${m.name})`);
    assert.ok(!v?.configMap, 'the worker gets its config from the loader');
  }

  // The API, its probes and the seed's memory defaults belong to the worker (it holds the
  // ring mapping and the queues).
  assert.equal(worker.resources.requests.memory, '256Mi');
  assert.equal(worker.resources.limits.memory, '1Gi');
  assert.ok(loader.resources.limits.memory, 'the loader is bounded too');
  assert.equal(worker.livenessProbe.httpGet.path, '/healthz');
  assert.equal(worker.readinessProbe.httpGet.path, '/readyz');
  assert.equal(worker.livenessProbe.httpGet.port, 'api');
  assert.ok(worker.ports.some((p: { name: string; containerPort: number }) => p.name === 'api' && p.containerPort === 9464));
});

test('SYS_ADMIN is granted only by the legacy-kernel overlay, to the loader only', needsKubectl, () => {
  const ds = find(render('overlays/legacy-kernel'), 'DaemonSet', 'telegen');
  assert.deepEqual([...container(ds, 'loader').securityContext.capabilities.add].sort(), [...SEED_CAPS, 'SYS_ADMIN'].sort());
  assert.deepEqual(container(ds, 'worker').securityContext.capabilities, { drop: ['ALL'] });
});

test('single-process overlay: one `telegen run` container, the same seed capabilities, the worker\'s API, probes and data', needsKubectl, () => {
  const objs = render('overlays/single-process');
  for (const o of objs) assert.ok(!JSON.stringify(o).includes('"privileged":true'), `${o.kind}/${o.metadata.name} is not privileged`);
  const ds = find(objs, 'DaemonSet', 'telegen');
  assert.deepEqual(ds.spec.template.spec.containers.map((c: { name: string }) => c.name), ['telegen']);
  const c = container(ds, 'telegen');
  assert.deepEqual(c.args, ['run', '--config', '/etc/telegen/telegen.yaml']);
  assert.deepEqual([...c.securityContext.capabilities.add].sort(), [...SEED_CAPS].sort());
  assert.equal(c.securityContext.allowPrivilegeEscalation, false);
  assert.equal(c.readinessProbe.httpGet.path, '/readyz');
  assert.equal(c.resources.limits.memory, '1Gi');
  assert.ok(c.volumeMounts.some((m) => m.name === 'data' && m.mountPath === '/var/lib/telegen'));
});

test('RBAC: get/list/watch on pods, nodes, replicasets, namespaces only', needsKubectl, () => {
  const objs = render('base');
  const role = find(objs, 'ClusterRole', 'telegen');
  const granted = new Set<string>();
  for (const r of role.rules) {
    assert.deepEqual([...r.verbs].sort(), ['get', 'list', 'watch']);
    assert.equal(r.nonResourceURLs, undefined);
    for (const g of r.apiGroups) for (const res of r.resources) granted.add(`${g}/${res}`);
  }
  assert.deepEqual([...granted].sort(), ['/namespaces', '/nodes', '/pods', 'apps/replicasets']);
  const sa = find(objs, 'ServiceAccount', 'telegen');
  const binding = find(objs, 'ClusterRoleBinding', 'telegen');
  assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'telegen' });
  assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'telegen', namespace: sa.metadata.namespace }]);
});

test('ConfigMap holds a config the agent accepts, and the DaemonSet mounts it', needsKubectl, () => {
  const objs = render('base');
  const cm = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('telegen-config'));
  assert.ok(cm, 'config map rendered');
  const raw = YAML.parse(cm.data['telegen.yaml']);
  const cfg = parseConfig(raw, 'configmap');
  assert.equal(cfg.data_dir, '/var/lib/telegen');
  const resolved = resolveExportConfig(cfg.otlp ?? {}, {});
  assert.equal(resolved.traces.mode, 'otlp');
  assert.equal(resolved.traces.protocol, 'grpc');
  const ds = find(objs, 'DaemonSet', 'telegen');
  const vol = ds.spec.template.spec.volumes.find((v: { configMap?: { name: string } }) => v.configMap);
  assert.equal(vol.configMap.name, cm.metadata.name, 'the hashed generator name is wired into the pod');
  const loader = container(ds, 'loader');
  assert.equal(loader.args[loader.args.indexOf('--config') + 1], '/etc/telegen/telegen.yaml');
  assert.ok(loader.volumeMounts.some((m) => m.name === vol.name && m.mountPath === '/etc/telegen'));
  // The loader hands the fds only to a process of security.worker_user: the worker's uid.
  assert.equal(cfg.security.worker_user, container(ds, 'worker').securityContext.runAsUser);
});

test('collector overlay: StatefulSet of 2, non-root, no capabilities, ordinal and replica count from Kubernetes', needsKubectl, () => {
  const objs = render('overlays/collector');
  const ss = find(objs, 'StatefulSet', 'telegen-collector');
  assert.equal(ss.spec.replicas, 2);
  const pod = ss.spec.template.spec;
  assert.notEqual(pod.hostPID, true);
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.ok(pod.securityContext.runAsUser > 0);
  const c = pod.containers[0];
  assert.equal(c.args[0], 'collect');
  assert.deepEqual(c.securityContext.capabilities, { drop: ['ALL'] });
  assert.equal(c.securityContext.readOnlyRootFilesystem, true);
  assert.ok(!pod.volumes.some((v: { hostPath?: unknown }) => v.hostPath), 'no host paths');
  const env = new Map<string, { value?: string; valueFrom?: { fieldRef: { fieldPath: string } } }>(c.env.map((e: { name: string }) => [e.name, e]));
  assert.equal(env.get('TELEGEN_POD_NAME')?.valueFrom?.fieldRef.fieldPath, 'metadata.name');
  assert.equal(env.get('TELEGEN_REPLICA_INDEX')?.valueFrom?.fieldRef.fieldPath, "metadata.labels['apps.kubernetes.io/pod-index']");
  assert.equal(env.get('TELEGEN_REPLICAS')?.value, String(ss.spec.replicas), 'replica count follows spec.replicas');
  assert.equal(c.livenessProbe.httpGet.path, '/healthz');
  assert.equal(c.readinessProbe.httpGet.path, '/readyz');
  const cm = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('telegen-collector-config'));
  assert.ok(cm);
  const cc = parseCollectConfig(YAML.parse(cm.data['collector.yaml']), 'configmap');
  assert.deepEqual(cc.collect.targets.map((t) => t.type).sort(), ['kafka', 'postgresql', 'prometheus']);
  // The DaemonSet of the base is still there.
  find(objs, 'DaemonSet', 'telegen');
  find(objs, 'Service', 'telegen-collector');
});

test('Dockerfile: multi-stage on Debian 12, builds every part, unprivileged runtime user', () => {
  const text = fs.readFileSync(path.join(repoRoot, 'deploy', 'Dockerfile'), 'utf8');
  const froms = [...text.matchAll(/^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/gim)].map((m) => ({ image: m[1], stage: m[2] }));
  assert.ok(froms.length >= 2, 'multi-stage');
  const base = /^ARG NODE_IMAGE=(\S+)/m.exec(text)?.[1] ?? '';
  assert.match(base, /bookworm/, 'Debian 12 (bookworm) base');
  for (const f of froms) assert.match(f.image.replace('${NODE_IMAGE}', base), /bookworm/);
  assert.match(text, /npm run build\b/);
  assert.match(text, /clang .*libbpf-dev .*bpftool/);
  for (const p of ['build/bpf', 'build/decoders', 'telegen_native.node', 'dist', 'policies']) assert.ok(text.includes(`COPY --from=build /src/${p}`) || text.includes(p), `runtime copies ${p}`);
  const users = [...text.matchAll(/^USER\s+(\S+)/gm)].map((m) => m[1]);
  // The entry point is bin/telegen; the DaemonSet's containers name commands it has.
  assert.match(text, /^ENTRYPOINT \[.*"\/opt\/telegen\/bin\/telegen"\]/m);
  const usage = execFileSync(process.execPath, [path.join(repoRoot, 'bin', 'telegen'), 'help'], { encoding: 'utf8' });
  for (const cmd of ['loader --socket', 'worker --socket']) assert.ok(usage.includes(`telegen ${cmd}`), `telegen ${cmd}`);
  assert.equal(users.at(-1), '65534:65534');
  assert.ok(!/--privileged/.test(text));
});
