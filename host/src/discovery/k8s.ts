// Kubernetes: in-cluster detection and a node-local pod index (container id → pod) kept current by
// one list + watch on /api/v1/pods with fieldSelector spec.nodeName=<node> — never a call per event.
import * as fs from 'fs';
import type { KubeConfig as KubeConfigT, V1Pod } from '@kubernetes/client-node';
import { log } from '../log';

const klog = log.child({ component: 'discovery.k8s' });

export const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface InCluster { inCluster: boolean; namespace?: string; host?: string; reason: string }

export function detectInCluster(env: NodeJS.ProcessEnv = process.env, saDir = SA_DIR): InCluster {
  const host = env.KUBERNETES_SERVICE_HOST;
  const token = fs.existsSync(`${saDir}/token`);
  let namespace: string | undefined;
  try { namespace = fs.readFileSync(`${saDir}/namespace`, 'utf8').trim(); } catch { /* not mounted */ }
  if (host && token) return { inCluster: true, namespace, host, reason: `KUBERNETES_SERVICE_HOST=${host} and service-account token at ${saDir}` };
  return { inCluster: false, namespace, host, reason: host ? `no service-account token at ${saDir}` : 'KUBERNETES_SERVICE_HOST not set' };
}

export interface PodContainer {
  containerId: string;
  containerName: string;
  namespace: string;
  podName: string;
  podUid: string;
  nodeName?: string;
  /** Deployment (via ReplicaSet), StatefulSet, DaemonSet, Job or CronJob owning the pod. */
  owner?: { kind: string; name: string };
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface K8sOptions {
  nodeName: string;
  /** Label / annotation keys copied onto k8s.pod.label.<key> / k8s.pod.annotation.<key>. */
  labels: string[];
  annotations: string[];
  /** Test or out-of-cluster use: API server URL; otherwise the in-cluster config is used. */
  server?: string;
  token?: string;
}

/** "containerd://<id>" → "<id>". */
export function stripRuntime(id: string): string { const i = id.indexOf('://'); return i >= 0 ? id.slice(i + 3) : id; }

export class PodIndex {
  readonly byContainer = new Map<string, PodContainer>();
  readonly pods = new Map<string, V1Pod>();
  private rsOwner = new Map<string, { kind: string; name: string } | null>();
  private stopped = false;
  private abort?: AbortController;
  private timer?: NodeJS.Timeout;
  synced = false;
  /** Bumped on every index change so cached resources know to re-resolve. */
  version = 0;
  lastError?: string;
  events = 0;
  private kc!: KubeConfigT;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  private k!: any;

  constructor(private opts: K8sOptions) {}

  async start(): Promise<void> {
    // Loaded only when Kubernetes is in use: the client is large and ESM.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    this.k = require('@kubernetes/client-node');
    const kc: KubeConfigT = new this.k.KubeConfig();
    if (this.opts.server) {
      kc.loadFromOptions({
        clusters: [{ name: 'c', server: this.opts.server, skipTLSVerify: true }],
        users: [{ name: 'u', token: this.opts.token }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x',
      });
    } else kc.loadFromCluster();
    this.kc = kc;
    await this.listAndWatch();
  }

  private async listAndWatch(): Promise<void> {
    if (this.stopped) return;
    const fieldSelector = `spec.nodeName=${this.opts.nodeName}`;
    try {
      const core = this.kc.makeApiClient(this.k.CoreV1Api) as { listPodForAllNamespaces(p: { fieldSelector: string }): Promise<{ items: V1Pod[]; metadata?: { resourceVersion?: string } }> };
      const list = await core.listPodForAllNamespaces({ fieldSelector });
      this.pods.clear();
      for (const p of list.items) this.upsert(p);
      this.rebuild();
      this.synced = true;
      const rv = list.metadata?.resourceVersion;
      const watch = new this.k.Watch(this.kc);
      this.abort = await watch.watch('/api/v1/pods', { fieldSelector, resourceVersion: rv, allowWatchBookmarks: true },
        (type: string, obj: V1Pod) => this.onEvent(type, obj),
        (err: unknown) => this.restart(err));
    } catch (e) { this.restart(e); }
  }

  private restart(err: unknown): void {
    if (this.stopped) return;
    if (err) { this.lastError = (err as Error).message ?? String(err); klog.warn({ err: this.lastError }, 'pod watch ended; re-listing'); }
    // A watch ends normally after the server timeout: re-list then, without hammering on errors.
    this.timer = setTimeout(() => { void this.listAndWatch(); }, err ? 5000 : 200);
    this.timer.unref();
  }

  private onEvent(type: string, pod: V1Pod): void {
    this.events++;
    if (type === 'BOOKMARK') return;
    const uid = pod.metadata?.uid;
    if (!uid) return;
    if (type === 'DELETED') this.pods.delete(uid);
    else this.upsert(pod);
    this.rebuild();
  }

  private upsert(p: V1Pod): void { if (p.metadata?.uid) this.pods.set(p.metadata.uid, p); }

  private ownerOf(p: V1Pod): { kind: string; name: string } | undefined {
    const ref = p.metadata?.ownerReferences?.find((o) => o.controller) ?? p.metadata?.ownerReferences?.[0];
    if (!ref) return undefined;
    if (ref.kind !== 'ReplicaSet') return { kind: ref.kind, name: ref.name };
    const key = `${p.metadata?.namespace}/${ref.name}`;
    if (this.rsOwner.has(key)) return this.rsOwner.get(key) ?? { kind: 'ReplicaSet', name: ref.name };
    // One read per ReplicaSet, cached; the pod index is rebuilt when it answers.
    this.rsOwner.set(key, null);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const apps = this.kc.makeApiClient(this.k.AppsV1Api) as any;
    apps.readNamespacedReplicaSet({ name: ref.name, namespace: p.metadata!.namespace! }).then((rs: { metadata?: { ownerReferences?: Array<{ kind: string; name: string; controller?: boolean }> } }) => {
      const o = rs.metadata?.ownerReferences?.find((x) => x.controller) ?? rs.metadata?.ownerReferences?.[0];
      this.rsOwner.set(key, o ? { kind: o.kind, name: o.name } : { kind: 'ReplicaSet', name: ref.name });
      this.rebuild();
    }, (e: Error) => { this.lastError = e.message; this.rsOwner.set(key, { kind: 'ReplicaSet', name: ref.name }); this.rebuild(); });
    return { kind: 'ReplicaSet', name: ref.name };
  }

  private rebuild(): void {
    this.version++;
    this.byContainer.clear();
    for (const p of this.pods.values()) {
      const owner = this.ownerOf(p);
      const statuses = [...(p.status?.containerStatuses ?? []), ...(p.status?.initContainerStatuses ?? []), ...(p.status?.ephemeralContainerStatuses ?? [])];
      for (const s of statuses) {
        if (!s.containerID) continue;
        const id = stripRuntime(s.containerID);
        this.byContainer.set(id, {
          containerId: id, containerName: s.name, namespace: p.metadata?.namespace ?? '', podName: p.metadata?.name ?? '', podUid: p.metadata?.uid ?? '',
          nodeName: p.spec?.nodeName, owner, labels: p.metadata?.labels ?? {}, annotations: p.metadata?.annotations ?? {},
        });
      }
    }
  }

  lookup(containerId: string): PodContainer | undefined { return this.byContainer.get(containerId); }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.abort?.abort();
  }
}

/** k8s.* resource attributes for one container of a pod. */
export function k8sAttributes(c: PodContainer, opts: Pick<K8sOptions, 'labels' | 'annotations'>): Record<string, string> {
  const a: Record<string, string> = {
    'k8s.namespace.name': c.namespace, 'k8s.pod.name': c.podName, 'k8s.pod.uid': c.podUid, 'k8s.container.name': c.containerName, 'container.id': c.containerId,
  };
  if (c.nodeName) a['k8s.node.name'] = c.nodeName;
  if (c.owner) {
    const kind = { Deployment: 'deployment', ReplicaSet: 'replicaset', StatefulSet: 'statefulset', DaemonSet: 'daemonset', Job: 'job', CronJob: 'cronjob' }[c.owner.kind];
    if (kind) a[`k8s.${kind}.name`] = c.owner.name;
  }
  for (const k of opts.labels) if (c.labels[k] !== undefined) a[`k8s.pod.label.${k}`] = c.labels[k];
  for (const k of opts.annotations) if (c.annotations[k] !== undefined) a[`k8s.pod.annotation.${k}`] = c.annotations[k];
  return a;
}
