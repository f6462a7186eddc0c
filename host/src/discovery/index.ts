// The discovery engine: host, cloud, Kubernetes, listening services and per-process facts (runtime,
// container, pod, service.name), turned into OpenTelemetry resource attributes for every span.
// Processes are read lazily on first sight and by a periodic /proc rescan; exits come from the
// socket tracer (forget()).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readHost, hostAttributes, HostInfo } from './host';
import { readDmi, cloudFromDmi, cloudAttributes, enrichFromImds, CloudInfo } from './cloud';
import { readCgroup, CgroupFacts } from './cgroup';
import { detectRuntime, RuntimeInfo } from './runtime';
import { detectInCluster, PodIndex, PodContainer, k8sAttributes, InCluster } from './k8s';
import { readListening, socketInodes, recogniseService } from './sockets';
import { discoverySchema, DiscoveryConfig } from './config';
import { otelEnv, OtelEnv } from './env';
import { log } from '../log';
import { goStatus } from '../gotrace/status';

const dlog = log.child({ component: 'discovery' });

export interface DiscoveredProcess {
  pid: number;
  ppid?: number;
  executableName: string;
  executablePath?: string;
  commandLine?: string;
  owner?: string;
  serviceName: string;
  /** Where service.name came from: env, rule, k8s, container, executable. */
  serviceNameSource: string;
  /** Resource attributes the process declared in OTEL_RESOURCE_ATTRIBUTES. */
  envResource: Record<string, string>;
  runtime: RuntimeInfo;
  cgroup: CgroupFacts;
  pod?: PodContainer;
  /** Pod index version p.pod was resolved against. */
  podVersion?: number;
  firstSeen: number;
  /** Seen inside execve: the new executable is mapped but its arguments and environment are not
   *  on its stack yet (both read empty), so OTEL_SERVICE_NAME would be missed. Re-read until
   *  they appear or EXEC_SETTLE_MS pass. */
  unsettledUntil?: number;
  nextLookAt?: number;
}

const EXEC_SETTLE_MS = 3000;
const EXEC_RELOOK_MS = 20;

export interface DiscoveredService {
  transport: 'tcp' | 'udp';
  address: string;
  port: number;
  pid?: number;
  executableName?: string;
  service?: string;
  decoder?: string;
  system?: string;
}

const MAX_PROCS = 8192;

/** Facts only a privileged reader gets (exe link, OTEL_* environment, runtime from maps/ELF):
 *  under privilege separation the worker asks the loader (security/privsep/describe.ts). */
export interface PrivilegedFacts {
  executablePath?: string;
  env: OtelEnv;
  runtime: RuntimeInfo;
}
export type ProcessDescriber = (pid: number) => Promise<PrivilegedFacts | undefined>;

/** ENOENT (kernel thread, exited) is final; EACCES means someone with more rights could read it. */
function exeLink(p: string): { exe?: string; denied: boolean } {
  try { return { exe: fs.readlinkSync(p).replace(/ \(deleted\)$/, ''), denied: false }; } catch (e) {
    return { denied: (e as NodeJS.ErrnoException).code === 'EACCES' };
  }
}

function readText(p: string): string | undefined { try { return fs.readFileSync(p, 'utf8'); } catch { return undefined; } }

/** OTEL_RESOURCE_ATTRIBUTES: key=value pairs, comma separated, values percent-encoded. */
export function parseResourceAttributes(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of s.split(',')) {
    const i = kv.indexOf('=');
    if (i <= 0) continue;
    const k = kv.slice(0, i).trim();
    let v = kv.slice(i + 1).trim();
    try { v = decodeURIComponent(v); } catch { /* keep raw */ }
    if (k) out[k] = v;
  }
  return out;
}

function envOf(pid: number, procRoot: string): OtelEnv {
  const env = readText(`${procRoot}/${pid}/environ`);
  return env ? otelEnv(env) : {};
}

const userNames = new Map<number, string>();
function userName(uid: number): string {
  if (userNames.size === 0) {
    for (const line of (readText('/etc/passwd') ?? '').split('\n')) {
      const f = line.split(':');
      if (f.length > 2) userNames.set(Number(f[2]), f[0]);
    }
  }
  return userNames.get(uid) ?? String(uid);
}

export class Discovery {
  readonly cfg: DiscoveryConfig;
  host: HostInfo;
  cloud: CloudInfo;
  k8s: InCluster;
  pods?: PodIndex;
  readonly procs = new Map<number, DiscoveredProcess>();
  services: DiscoveredService[] = [];
  readonly portHints: Record<string, number[]> = {};
  private inodePid = new Map<number, number>();
  /** Listening sockets the last fd walk found no owner for (a process in another pid namespace,
   *  one whose fds we may not read), and the pids that walk covered: such a socket alone no
   *  longer makes every scan walk every fd of every process again (~20 ms each, every 2 s). */
  private unplaced = new Set<number>();
  private walkedPids = new Set<number>();
  /** Full fd walks so far (GET /api/discovery shows none of this; the tests read it). */
  socketWalks = 0;
  private timers: NodeJS.Timeout[] = [];
  private rules: Array<{ name: string; exe?: RegExp; cmdline?: RegExp; namespace?: RegExp; container?: RegExp }>;
  private hostAttrs: Record<string, string | number>;
  private features?: unknown;
  private resCache = new Map<number, { podVersion: number; hasPod: boolean; serviceName: string; attrs: Record<string, string | number> }>();
  onPortHints?: (hints: Record<string, number[]>) => void;
  /** Set when this process may not read other users' /proc/PID/{exe,environ,maps}. */
  describer?: ProcessDescriber;
  lastScanMs = 0;

  constructor(cfg: Partial<DiscoveryConfig> = {}) {
    this.cfg = discoverySchema.parse(cfg);
    this.rules = compileRules(this.cfg.service_rules);
    this.host = readHost();
    this.cloud = cloudFromDmi(readDmi(this.cfg.dmi_root));
    this.k8s = detectInCluster();
    this.hostAttrs = this.computeHostAttrs();
  }

  private computeHostAttrs(): Record<string, string | number> {
    // Cloud instance id (IMDS) is the better host.id when known; machine-id otherwise.
    return { ...hostAttributes(this.host), ...cloudAttributes(this.cloud) };
  }

  /** Starts periodic scans, the pod watch and (when enabled) the metadata lookup. Never blocks on the network. */
  async start(): Promise<void> {
    this.scanProcs();
    this.scanSockets();
    this.timers.push(setInterval(() => this.scanProcs(), this.cfg.scan_interval_ms).unref());
    this.timers.push(setInterval(() => this.scanSocketsPaced(), this.cfg.socket_scan_interval_ms).unref());
    if (this.cfg.cloud_metadata.enabled && this.cloud.provider) {
      void enrichFromImds(this.cloud, this.cfg.cloud_metadata.timeout_ms, this.cfg.cloud_metadata.endpoint).then((c) => {
        this.cloud = c; this.hostAttrs = this.computeHostAttrs(); this.resCache.clear();
      });
    }
    const kc = this.cfg.kubernetes;
    const want = kc.enabled === 'true' || (kc.enabled === 'auto' && (this.k8s.inCluster || !!kc.api_server));
    if (want) {
      let token: string | undefined;
      if (kc.token_file) token = fs.readFileSync(kc.token_file, 'utf8').trim();
      this.pods = new PodIndex({ nodeName: kc.node_name ?? process.env.NODE_NAME ?? process.env.K8S_NODE_NAME ?? os.hostname(), labels: kc.labels, annotations: kc.annotations, server: kc.api_server, token });
      this.pods.start().catch((e) => { dlog.warn({ err: (e as Error).message }, 'Kubernetes pod watch could not start'); });
    }
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.pods?.stop();
  }

  /** Facts for a pid, read from /proc on first sight (comm is the kernel's name if /proc is gone). */
  process(pid: number, comm?: string): DiscoveredProcess {
    const hit = this.procs.get(pid);
    if (hit && (hit.unsettledUntil === undefined || !this.relook(hit))) return hit;
    const root = this.cfg.proc_root;
    const link = exeLink(`${root}/${pid}/exe`);
    const executablePath = link.exe;
    const cmd = readText(`${root}/${pid}/cmdline`);
    const commandLine = cmd ? cmd.split('\0').filter(Boolean).join(' ') || undefined : undefined;
    const status = readText(`${root}/${pid}/status`) ?? '';
    const ppid = /PPid:\s*(\d+)/.exec(status)?.[1];
    const uid = /Uid:\s*(\d+)/.exec(status)?.[1];
    const name = /Name:\s*(.*)/.exec(status)?.[1];
    const executableName = executablePath ? path.basename(executablePath) : (comm || name || `pid-${pid}`);
    const env = envOf(pid, root);
    const envResource = env.OTEL_RESOURCE_ATTRIBUTES ? parseResourceAttributes(env.OTEL_RESOURCE_ATTRIBUTES) : {};
    const p: DiscoveredProcess = {
      pid, ppid: ppid ? Number(ppid) : undefined, executableName, executablePath, commandLine,
      owner: uid !== undefined ? userName(Number(uid)) : undefined,
      serviceName: '', serviceNameSource: '', envResource,
      runtime: detectRuntime(pid, executablePath, root),
      cgroup: readCgroup(pid, root),
      firstSeen: hit?.firstSeen ?? Date.now(),
    };
    if (executablePath !== undefined && !commandLine) {
      p.unsettledUntil = hit?.unsettledUntil ?? p.firstSeen + EXEC_SETTLE_MS;
      p.nextLookAt = Date.now() + EXEC_RELOOK_MS;
    }
    const envName = env.OTEL_SERVICE_NAME || envResource['service.name'];
    if (envName) { p.serviceName = envName; p.serviceNameSource = 'env'; }
    this.name(p);
    if (this.procs.size >= MAX_PROCS) this.procs.delete(this.procs.keys().next().value as number);
    this.procs.set(pid, p);
    if (link.denied && this.describer) void this.describer(pid).then((f) => { if (f && this.procs.get(pid) === p) this.applyPrivileged(p, f); }, () => undefined);
    return p;
  }

  /** True (and the process forgotten, to be read again) when one caught mid-exec is due a look. */
  private relook(p: DiscoveredProcess): boolean {
    const now = Date.now();
    if (now >= p.unsettledUntil!) { p.unsettledUntil = undefined; return false; }
    if (now < p.nextLookAt!) return false;
    this.forget(p.pid);
    return true;
  }

  /** The describer's answer arrives after the first sight: spans from then on carry it. */
  private applyPrivileged(p: DiscoveredProcess, f: PrivilegedFacts): void {
    if (f.executablePath) { p.executablePath = f.executablePath; p.executableName = path.basename(f.executablePath); }
    p.runtime = f.runtime;
    p.envResource = f.env.OTEL_RESOURCE_ATTRIBUTES ? parseResourceAttributes(f.env.OTEL_RESOURCE_ATTRIBUTES) : {};
    const envName = f.env.OTEL_SERVICE_NAME || p.envResource['service.name'];
    if (envName) { p.serviceName = envName; p.serviceNameSource = 'env'; } else if (p.serviceNameSource === 'env') p.serviceNameSource = '';
    this.name(p);
    this.resCache.delete(p.pid);
  }

  /** service.name after env: config rules, then k8s owner, container name, executable. */
  private name(p: DiscoveredProcess): void {
    if (p.cgroup.containerId && this.pods) p.pod = this.pods.lookup(p.cgroup.containerId);
    if (p.serviceNameSource === 'env') return;
    for (const r of this.rules) {
      if (r.exe && !r.exe.test(p.executableName)) continue;
      if (r.cmdline && !r.cmdline.test(p.commandLine ?? '')) continue;
      if (r.namespace && !r.namespace.test(p.pod?.namespace ?? '')) continue;
      if (r.container && !r.container.test(p.pod?.containerName ?? '')) continue;
      p.serviceName = r.name; p.serviceNameSource = 'rule'; return;
    }
    if (p.pod) {
      const owner = p.pod.owner && p.pod.owner.kind !== 'ReplicaSet' && p.pod.owner.kind !== 'Job' ? p.pod.owner.name : undefined;
      if (owner) { p.serviceName = owner; p.serviceNameSource = 'k8s'; return; }
      p.serviceName = p.pod.containerName; p.serviceNameSource = 'container'; return;
    }
    p.serviceName = p.executableName; p.serviceNameSource = 'executable';
  }

  /** Config reload (SIGHUP): the rules name every known process again (not one named by its
   *  environment), and the next span of each pid gets a resource built with the new name. */
  setServiceRules(rules: DiscoveryConfig['service_rules']): void {
    this.rules = compileRules(rules);
    this.cfg.service_rules = rules;
    for (const p of this.procs.values()) this.name(p);
    this.resCache.clear();
  }

  forget(pid: number): void {
    this.procs.delete(pid);
    this.resCache.delete(pid);
  }

  /** Resource attributes for spans of this pid (host, cloud, k8s, process, service). */
  resource(pid: number, comm?: string): Record<string, string | number> {
    const p = this.process(pid, comm);
    // The pod (or its Deployment) can arrive after the process (watch lag, ReplicaSet read):
    // re-resolve whenever the pod index changed since we last looked.
    const podVersion = this.pods?.version ?? 0;
    if (p.cgroup.containerId && this.pods && p.podVersion !== podVersion) { p.podVersion = podVersion; this.name(p); }
    // Compared field by field: a key string built per span was garbage on every span.
    const hasPod = !!p.pod;
    const c = this.resCache.get(pid);
    if (c && c.podVersion === podVersion && c.hasPod === hasPod && c.serviceName === p.serviceName) return c.attrs;
    const a: Record<string, string | number> = { ...this.hostAttrs, ...p.envResource };
    a['service.name'] = p.serviceName;
    a['process.pid'] = pid;
    if (p.ppid !== undefined) a['process.parent_pid'] = p.ppid;
    a['process.executable.name'] = p.executableName;
    if (p.executablePath) a['process.executable.path'] = p.executablePath;
    if (p.commandLine) a['process.command_line'] = p.commandLine.length > 1024 ? p.commandLine.slice(0, 1024) : p.commandLine;
    if (p.owner) a['process.owner'] = p.owner;
    a['process.runtime.name'] = p.runtime.name;
    if (p.runtime.version) a['process.runtime.version'] = p.runtime.version;
    if (p.runtime.description) a['process.runtime.description'] = p.runtime.description;
    if (p.cgroup.containerId) a['container.id'] = p.cgroup.containerId;
    if (p.cgroup.runtime) a['container.runtime'] = p.cgroup.runtime;
    if (p.pod) Object.assign(a, k8sAttributes(p.pod, this.cfg.kubernetes));
    a['telemetry.sdk.name'] = 'telegen';
    a['telemetry.sdk.language'] = 'ebpf';
    this.resCache.set(pid, { podVersion, hasPod, serviceName: p.serviceName, attrs: a });
    if (this.resCache.size > MAX_PROCS) this.resCache.delete(this.resCache.keys().next().value as number);
    return a;
  }

  /** New pids are read, vanished ones dropped (backs up the exit events for exec'd and short-lived processes).
   *  A pid first seen by a scan is read at the next one if it still runs (the first scan reads
   *  all): on a busy host most new pids are short-lived commands, and reading each (cmdline,
   *  status, environ, maps, cgroup, ELF) was most of the idle agent's discovery time. A process
   *  whose traffic is traced is read on its first span anyway (process()), and one that opened a
   *  listening socket when the socket scan looks for its owner (placeSockets). */
  scanProcs(): void {
    const t0 = Date.now();
    const eager = this.procScans++ === 0;
    let names: string[];
    try { names = fs.readdirSync(this.cfg.proc_root); } catch { return; }
    const live = new Set<number>();
    for (const n of names) {
      const c = n.charCodeAt(0);
      if (c < 48 || c > 57) continue;
      const pid = Number(n);
      live.add(pid);
      if (this.noExe.has(pid)) continue;
      const known = this.procs.get(pid);
      if (!known && !eager && !this.seenOnce.has(pid)) { this.seenOnce.add(pid); continue; }
      this.readNew(pid, known);
    }
    for (const pid of [...this.procs.keys()]) if (!live.has(pid)) this.forget(pid);
    for (const pid of this.noExe) if (!live.has(pid)) this.noExe.delete(pid);
    for (const pid of this.seenOnce) if (!live.has(pid) || this.procs.has(pid) || this.noExe.has(pid)) this.seenOnce.delete(pid);
    this.lastScanMs = Date.now() - t0;
  }

  /** The scan's look at one live pid: read when new or exec'd, remembered when it has no executable. */
  private readNew(pid: number, known: DiscoveredProcess | undefined): void {
    const link = exeLink(`${this.cfg.proc_root}/${pid}/exe`);
    if (known) {
      // exec keeps the pid but changes the executable: re-read such a process on this scan.
      // (Unprivileged, the link is unreadable: exec shows as a new comm instead.)
      if (known.unsettledUntil !== undefined) { this.process(pid); return; }
      if (link.exe === undefined || link.exe === known.executablePath) return;
      this.forget(pid);
    }
    // Kernel threads have no executable: not worth a row. Nor a failed readlink (an exception)
    // every scan: a pid without one (kernel thread, zombie) never gets one back.
    if (link.exe === undefined && !link.denied) { if (!known) this.noExe.add(pid); return; }
    this.process(pid);
  }

  /**
   * The periodic scan. Read from /proc/net (another proc_root, or no socket diag), under
   * connection churn the table lists every TIME_WAIT socket (tens of thousands) and one read
   * costs the kernel and us tens of milliseconds of CPU: reads are spaced at least 50× their own
   * CPU cost apart (at most 20 s), so the scan stays near 2% of a core however busy the node is.
   * The socket diag dump of listeners only costs microseconds, so this then leaves the interval.
   */
  private scanSocketsPaced(): void {
    if (Date.now() < this.socketScanDueAt) return;
    const c0 = process.cpuUsage();
    this.scanSockets();
    const c = process.cpuUsage(c0);
    this.socketScanDueAt = Date.now() + Math.min(20_000, ((c.user + c.system) / 1000) * 50);
  }
  private socketScanDueAt = 0;
  /** Pids whose exe link is gone for good (kernel threads, zombies): skipped until they vanish. */
  private readonly noExe = new Set<number>();
  /** Pids one scan saw and did not read yet (read at the next scan if they still run). */
  private readonly seenOnce = new Set<number>();
  private procScans = 0;

  /** Whether a socket of `transport` listens on `port` here, as of the last socket scan. */
  listensOn(port: number, transport: 'tcp' | 'udp' = 'tcp'): boolean {
    for (const s of this.services) if (s.port === port && s.transport === transport) return true;
    return false;
  }

  /** Listening sockets → owning process → recognised service; new decoder ports become hints. */
  scanSockets(): void {
    const socks = readListening(this.cfg.proc_root);
    this.placeSockets(socks);
    const out: DiscoveredService[] = [];
    const fresh: Record<string, number[]> = {};
    const seen = new Set<string>();
    for (const s of socks) {
      const key = `${s.transport}:${s.address}:${s.port}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const pid = this.inodePid.get(s.inode);
      const p = pid !== undefined ? this.procs.get(pid) : undefined;
      const kind = recogniseService(p?.executableName ?? '', p?.commandLine ?? '', s.port);
      out.push({ transport: s.transport, address: s.address, port: s.port, pid, executableName: p?.executableName, service: kind?.name, decoder: kind?.decoder, system: kind?.system });
      if (kind?.decoder && (p || s.port < 1024 || kind.name !== 'dns')) {
        const l = (this.portHints[kind.decoder] ??= []);
        if (!l.includes(s.port)) { l.push(s.port); (fresh[kind.decoder] ??= []).push(s.port); }
      }
    }
    this.services = out;
    if (Object.keys(fresh).length && this.cfg.port_hints) {
      dlog.info({ hints: fresh }, 'decoder port hints from discovered services');
      this.onPortHints?.(fresh);
    }
  }

  /** Owners of listening sockets: every process's fds are walked only when a socket appeared that
   *  no walk has seen yet; sockets an earlier walk could not place are looked for in the fds of
   *  processes that appeared since (their owner may not have been scanned yet) and nowhere else. */
  private placeSockets(socks: Array<{ inode: number }>): void {
    const listening = new Set<number>();
    for (const s of socks) listening.add(s.inode);
    // Only listening sockets are kept; one closed, or whose owner is gone, is looked for again.
    for (const [ino, pid] of this.inodePid) if (!listening.has(ino) || !this.procs.has(pid)) this.inodePid.delete(ino);
    const unknown = socks.filter((s) => !this.inodePid.has(s.inode));
    if (!unknown.length) return;
    const root = this.cfg.proc_root;
    const place = (pid: number, want?: Set<number>) => {
      for (const ino of socketInodes(pid, root)) if (listening.has(ino)) { this.inodePid.set(ino, pid); want?.delete(ino); }
    };
    if (unknown.some((s) => !this.unplaced.has(s.inode))) {
      // A new socket's owner may be a process the last scan saw and did not read yet (a socket
      // no walk could place is looked for in processes as they are read, below).
      for (const pid of this.seenOnce) { this.seenOnce.delete(pid); if (!this.procs.has(pid) && !this.noExe.has(pid)) this.readNew(pid, undefined); }
      this.socketWalks++;
      // Newest processes first (a new socket is most often a new process's), stopping once every
      // unknown socket is placed: on a host where tests open servers all day, each new listener
      // walked every fd of every process (~10% of the idle agent's samples).
      // Sockets no walk could place before (another pid namespace's) are not waited for: the
      // processes this walk skips are looked at by the next scans, as new ones are.
      const want = new Set(unknown.filter((s) => !this.unplaced.has(s.inode)).map((s) => s.inode));
      const pids = [...this.procs.keys()].sort((x, y) => y - x);
      for (const pid of this.walkedPids) if (!this.procs.has(pid)) this.walkedPids.delete(pid);
      for (const pid of pids) {
        this.walkedPids.add(pid);
        place(pid, want);
        if (!want.size) break;
      }
    } else {
      for (const pid of this.walkedPids) if (!this.procs.has(pid)) this.walkedPids.delete(pid);
      for (const pid of this.procs.keys()) {
        if (this.walkedPids.has(pid)) continue;
        this.walkedPids.add(pid);
        place(pid);
      }
    }
    this.unplaced = new Set(socks.filter((s) => !this.inodePid.has(s.inode)).map((s) => s.inode));
  }

  /** Cached BPF feature probe (bpftool; shared with doctor). */
  bpfFeatures(): unknown {
    if (this.features === undefined) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { probeFeatures } = require('../doctor/probe') as typeof import('../doctor/probe');
      this.features = probeFeatures();
    }
    return this.features;
  }

  snapshot(opts: { features?: boolean } = {}): Record<string, unknown> {
    return {
      host: this.host,
      resource: this.hostAttrs,
      cloud: { ...this.cloud, dmi: undefined },
      kubernetes: { ...this.k8s, watching: !!this.pods, synced: this.pods?.synced ?? false, pods: this.pods?.pods.size ?? 0, containers: this.pods?.byContainer.size ?? 0, lastError: this.pods?.lastError },
      services: this.services,
      portHints: this.portHints,
      processes: [...this.procs.values()].map((p) => ({ ...p, resource: undefined })),
      // The Go tracer's view: which Go executables are instrumented, and why not (null: not running).
      goInstrumentation: goStatus() ?? null,
      ...(opts.features ? { bpf: this.bpfFeatures() } : {}),
    };
  }
}

function compileRules(rules: DiscoveryConfig['service_rules']) {
  return rules.map((r) => ({
    name: r.name, exe: r.exe ? new RegExp(r.exe) : undefined, cmdline: r.cmdline ? new RegExp(r.cmdline) : undefined,
    namespace: r.namespace ? new RegExp(r.namespace) : undefined, container: r.container ? new RegExp(r.container) : undefined,
  }));
}

let active: Discovery | undefined;

/** The engine the agent started, or a plain one (no timers, no network) for replay and tools. */
export function discovery(): Discovery {
  if (!active) active = new Discovery({});
  return active;
}
export function setDiscovery(d: Discovery | undefined): void { active = d; }
export function activeDiscovery(): Discovery | undefined { return active; }
