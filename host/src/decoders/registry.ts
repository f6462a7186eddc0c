// Every protocol decoder the agent runs, with its versions: loaded from .wasm files or swapped in
// at run time (policy-checked), verified, indexed by port hint. New streams go to the active
// version; streams already bound stay on the version they started with until they end (drain).
import * as fs from 'fs';
import * as path from 'path';
import { DecoderInstance, InstanceHooks, VerifyPolicy, DEFAULT_VERIFY_POLICY } from './instance';
import { Policy, parsePolicy, verifyPolicyFor, sha256Hex } from './policy';
import { log } from '../log';
import { installRoot } from '../paths';
import { processInfo } from '../pipeline/process';

const dlog = log.child({ component: 'decoders' });

export type DecoderState = 'active' | 'draining' | 'retired' | 'quarantined';

export interface LoadedDecoder {
  name: string;
  version: string;
  file: string;
  sha256: string;
  inst: DecoderInstance;
  loadedAt: number;
  state: DecoderState;
  /** builtin (install dir), api, cli, watch */
  source: string;
  /** Who vouched for a run-time module: signing key name or 'sha256-allowlist'. */
  approvedBy?: string;
  /** Streams currently bound to this version. */
  streams: number;
  stateSince: number;
  /** Monotonic load number: tells versions of one name apart. */
  generation: number;
}

export function defaultDecodersDir(): string {
  return process.env.TELEGEN_DECODERS_DIR || path.join(installRoot(), 'build', 'decoders');
}

const KEEP_VERSIONS = 4;

const cgroupCache = new Map<number, string[]>();
/** The cgroup paths of a process (v1 and v2 lines of /proc/PID/cgroup), cached per pid. */
export function cgroupPaths(pid: number): string[] {
  let c = cgroupCache.get(pid);
  if (c) return c;
  try {
    c = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').filter(Boolean).map((l) => l.slice(l.indexOf(':', l.indexOf(':') + 1) + 1));
  } catch { c = []; }
  if (cgroupCache.size > 8192) cgroupCache.clear();
  cgroupCache.set(pid, c);
  return c;
}

export class DecoderRegistry {
  /** The active version of each decoder name. */
  readonly decoders = new Map<string, LoadedDecoder>();
  /** Every version still known per name, oldest first (retired ones are dropped). */
  readonly versions = new Map<string, LoadedDecoder[]>();
  private readonly byPort = new Map<number, string[]>();
  private generation = 0;
  private readonly listeners: Array<(event: string, d: LoadedDecoder) => void> = [];

  constructor(private readonly hooks: InstanceHooks, readonly policy: Policy = parsePolicy({})) {}

  onChange(fn: (event: string, d: LoadedDecoder) => void): void { this.listeners.push(fn); }
  private emit(event: string, d: LoadedDecoder): void { for (const l of this.listeners) l(event, d); }

  verifyPolicy(name?: string): VerifyPolicy {
    return this.policy ? verifyPolicyFor(this.policy, name) : DEFAULT_VERIFY_POLICY;
  }

  loadDir(dir: string, disabled: string[] = []): void {
    let files: string[];
    try { files = fs.readdirSync(dir).filter((f) => f.endsWith('.wasm')).sort(); } catch (e) {
      dlog.error({ dir, err: (e as Error).message }, 'decoder directory unreadable; no protocol will be decoded');
      return;
    }
    for (const f of files) {
      const name = path.basename(f, '.wasm');
      if (disabled.includes(name) || this.policy.decoders[name]?.enabled === false) continue;
      try { this.loadFile(path.join(dir, f)); } catch (e) {
        dlog.error({ file: f, err: (e as Error).message }, 'decoder refused');
      }
    }
  }

  loadFile(file: string, source = 'builtin'): LoadedDecoder {
    return this.add(fs.readFileSync(file), file, source);
  }

  /** Verifies and instantiates a module; it becomes the active version of its name. */
  add(bytes: Uint8Array, file: string, source: string, approvedBy?: string, expectName?: string): LoadedDecoder {
    let inst = DecoderInstance.fromBytes(bytes, this.hooks, this.verifyPolicy());
    const name = inst.meta.name;
    if (expectName && name !== expectName) throw new Error(`module calls itself "${name}", not "${expectName}"`);
    const own = this.verifyPolicy(name);
    if (JSON.stringify(own) !== JSON.stringify(this.verifyPolicy())) inst = DecoderInstance.fromBytes(bytes, this.hooks, own);
    const now = Date.now();
    const d: LoadedDecoder = {
      name, version: inst.meta.version, file, sha256: sha256Hex(bytes), inst, loadedAt: now, state: 'active', source, approvedBy,
      streams: 0, stateSince: now, generation: ++this.generation,
    };
    const prev = this.decoders.get(name);
    if (prev) this.setState(prev, 'draining');
    this.decoders.set(name, d);
    const list = this.versions.get(name) ?? [];
    list.push(d);
    this.versions.set(name, list);
    this.trim(name);
    this.reindex();
    dlog.info({ decoder: name, version: d.version, sha256: d.sha256.slice(0, 16), source, replaced: prev ? prev.generation : undefined }, prev ? 'decoder swapped in' : 'decoder loaded');
    this.emit('active', d);
    return d;
  }

  private setState(d: LoadedDecoder, s: DecoderState): void {
    d.state = s;
    d.stateSince = Date.now();
    this.emit(s, d);
  }

  /** Drops the oldest versions beyond KEEP_VERSIONS that no stream uses any more: quarantined
   *  ones first, and never the newest good one that is not active — quarantine's fallback. Four
   *  hostile swaps in a row, each quarantined while connections stayed bound to it, left the good
   *  version the oldest unused one: it was dropped, and the fourth quarantine had nothing to fall
   *  back to (http1 went untraced; e2e/sandbox-live failed in a clean-clone CI). */
  private trim(name: string): void {
    const list = this.versions.get(name)!;
    while (list.length > KEEP_VERSIONS) {
      const cur = this.decoders.get(name);
      const fallback = [...list].reverse().find((x) => x !== cur && x.state !== 'quarantined');
      let i = list.findIndex((x) => x.state === 'quarantined' && x.streams === 0);
      if (i < 0) i = list.findIndex((x) => x.state !== 'active' && x.state !== 'quarantined' && x !== fallback && x.streams === 0);
      if (i < 0) break;
      this.setState(list[i], 'retired');
      list.splice(i, 1);
    }
  }

  /** Reactivates the newest earlier version that is not quarantined. */
  rollback(name: string): LoadedDecoder {
    const list = this.versions.get(name);
    const cur = this.decoders.get(name);
    if (!list || !cur) throw new Error(`no decoder named "${name}"`);
    const prev = [...list].reverse().find((x) => x !== cur && x.state !== 'quarantined' && x.generation < cur.generation);
    if (!prev) throw new Error(`decoder "${name}" has no earlier version to roll back to`);
    if (cur.state === 'active') this.setState(cur, 'draining');
    this.setState(prev, 'active');
    this.decoders.set(name, prev);
    // The rolled-back version goes last so it counts as newest again.
    list.splice(list.indexOf(prev), 1);
    list.push(prev);
    this.reindex();
    dlog.warn({ decoder: name, version: prev.version, sha256: prev.sha256.slice(0, 16) }, 'decoder rolled back');
    return prev;
  }

  /** A version failed too often: stop giving it traffic, fall back to an earlier one if any. */
  quarantine(d: LoadedDecoder, reason: string): void {
    if (d.state === 'quarantined') return;
    const wasActive = this.decoders.get(d.name) === d;
    this.setState(d, 'quarantined');
    dlog.error({ decoder: d.name, version: d.version, sha256: d.sha256.slice(0, 16), reason }, 'decoder quarantined');
    if (!wasActive) return;
    const list = this.versions.get(d.name) ?? [];
    const fallback = [...list].reverse().find((x) => x !== d && (x.state === 'draining' || x.state === 'retired'));
    if (fallback) {
      this.setState(fallback, 'active');
      this.decoders.set(d.name, fallback);
      dlog.warn({ decoder: d.name, version: fallback.version, sha256: fallback.sha256.slice(0, 16) }, 'traffic falls back to the previous version');
    } else {
      this.decoders.delete(d.name);
    }
    this.reindex();
  }

  /** Called when a stream binds to / leaves a version. */
  bound(d: LoadedDecoder, delta: 1 | -1): void {
    d.streams += delta;
    if (d.streams === 0 && (d.state === 'draining' || d.state === 'quarantined')) this.trim(d.name);
  }

  private reindex(): void {
    this.byPort.clear();
    for (const d of this.decoders.values()) {
      for (const p of d.inst.meta.ports ?? []) {
        const l = this.byPort.get(p) ?? [];
        l.push(d.name);
        this.byPort.set(p, l);
      }
    }
    for (const [name, rule] of Object.entries(this.policy.decoders)) {
      for (const p of rule.ports ?? []) {
        const l = this.byPort.get(p) ?? [];
        if (!l.includes(name)) l.unshift(name);
        this.byPort.set(p, l);
      }
    }
  }

  addPortHints(hints: Record<string, number[]>): void {
    for (const [name, ports] of Object.entries(hints)) {
      for (const p of ports) {
        const l = this.byPort.get(p) ?? [];
        if (!l.includes(name)) l.unshift(name);
        this.byPort.set(p, l);
      }
    }
  }

  /** Whether the policy lets decoder `name` see this connection. */
  allowed(name: string, serverPort: number, exe?: string, pid?: number): boolean {
    const rule = this.policy.decoders[name];
    if (!rule) return true;
    if (rule.enabled === false) return false;
    if (rule.ports && !rule.ports.includes(serverPort)) return false;
    if (rule.processes && exe !== undefined && !rule.processes.includes(exe)) return false;
    // Scopes that need the process: unknown process (replay) → not in scope, fail closed.
    if (rule.cgroups) {
      const paths = pid !== undefined ? cgroupPaths(pid) : [];
      if (!paths.some((p) => rule.cgroups!.some((prefix) => p.startsWith(prefix)))) return false;
    }
    if (rule.namespaces) {
      const ns = pid !== undefined ? processInfo(pid).resource['k8s.namespace.name'] : undefined;
      if (typeof ns !== 'string' || !rule.namespaces.includes(ns)) return false;
    }
    return true;
  }

  /** Whether `name` is hinted for this server port (config decoders.ports or the module's own). */
  hintedFor(name: string, port: number): boolean {
    return this.byPort.get(port)?.includes(name) ?? false;
  }

  /** Active decoders to try for a connection: port-hinted ones first, then the rest. */
  candidates(serverPort: number, transport: 'tcp' | 'udp', exe?: string, pid?: number): LoadedDecoder[] {
    const hinted = this.byPort.get(serverPort) ?? [];
    const out: LoadedDecoder[] = [];
    for (const n of hinted) { const d = this.decoders.get(n); if (d && !out.includes(d)) out.push(d); }
    for (const d of this.decoders.values()) if (!hinted.includes(d.name)) out.push(d);
    return out.filter((d) => {
      const t = d.inst.meta.transport ?? 'tcp';
      return (t === 'both' || t === transport) && this.allowed(d.name, serverPort, exe, pid);
    });
  }

  get(name: string): LoadedDecoder | undefined { return this.decoders.get(name); }

  all(): LoadedDecoder[] {
    const out: LoadedDecoder[] = [];
    for (const l of this.versions.values()) out.push(...l);
    return out;
  }
}
