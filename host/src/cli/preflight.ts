// `telegen run` checks what it can before it loads a single BPF program, so an operator's
// mistake is one sentence in under a second — not a libbpf error, a stack trace, or a failure
// seconds later after every tracer attached and then detached again:
//  - privileges: without CAP_BPF (or CAP_SYS_ADMIN) no tracer loads; before, the agent ran on
//    tracing nothing, with one libbpf error per tracer ("Make sure your kernel supports BPF").
//  - the data dir: created and written to (api-token, OTLP/JSON files); a path under /proc made
//    Node's recursive mkdir spin forever with no output.
//  - one agent per data dir: a second `telegen run` on the same dir overwrote the first one's
//    api-token (its `telegen decoders load` got 401) and rotated the same traces.jsonl.
//  - the API address: in use (another agent) or not local, named with the key that sets it.
//  - files the config names: api.token_file, api.tls.*, decoders.dir.
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import type { Config } from '../config';
import { CAP, effectiveCapabilities } from '../security/caps';

export class PreflightError extends Error {
  readonly userFacing = true;
  constructor(message: string) { super(message); this.name = 'PreflightError'; }
}

const errno = (e: unknown): string => (e as NodeJS.ErrnoException)?.code ?? (e as Error)?.message ?? String(e);

/** Whether `caps` (a CapEff mask) can load BPF programs: CAP_BPF, or CAP_SYS_ADMIN (kernels before 5.8). */
export function canLoadBpf(caps: bigint): boolean {
  return ((caps >> BigInt(CAP.BPF)) & 1n) === 1n || ((caps >> BigInt(CAP.SYS_ADMIN)) & 1n) === 1n;
}

/** Kernel tracers the config turns on (the socket tracer is the one every span comes from). */
export function kernelTracersOn(cfg: Config): string[] {
  const t = cfg.tracers;
  const on: string[] = [];
  for (const [name, v] of Object.entries(t)) if ((v as { enabled?: boolean }).enabled) on.push(name);
  return on;
}

export function checkPrivileges(cfg: Config, caps: bigint = effectiveCapabilities(), uid: number = process.getuid?.() ?? 0, command = 'run'): void {
  if (canLoadBpf(caps)) return;
  const on = kernelTracersOn(cfg);
  if (!on.length) return;
  throw new PreflightError(
    `telegen ${command} needs root, or CAP_BPF and CAP_PERFMON (CAP_SYS_ADMIN before Linux 5.8), to load its eBPF tracers (${on.join(', ')}); ` +
    `this process (uid ${uid}) has neither, so nothing could be traced. Run it as root (sudo), or grant the capabilities ` +
    '(docs/security.md); `telegen doctor` shows what this machine offers, and `telegen replay FILE.pcap` needs no privileges.',
  );
}

/** mkdir -p without Node's recursive mkdir, which loops forever on an ENOENT from a parent that
 *  exists (any path under /proc). */
function mkdirp(dir: string): void {
  const abs = path.resolve(dir);
  const missing: string[] = [];
  for (let d = abs; ; d = path.dirname(d)) {
    if (fs.existsSync(d)) {
      if (!fs.statSync(d).isDirectory()) throw Object.assign(new Error(`${d} is not a directory`), { code: 'ENOTDIR' });
      break;
    }
    missing.unshift(d);
    if (path.dirname(d) === d) break;
  }
  for (const d of missing) fs.mkdirSync(d);
}

/** Creates the data dir and proves it writable. `flag` names where the value came from. */
export function checkDataDir(dir: string, flag = 'data_dir'): void {
  try { mkdirp(dir); } catch (e) {
    throw new PreflightError(`cannot create the data dir ${dir} (${flag}): ${(e as Error).message} — give --data-dir a directory this user can write`);
  }
  const probe = path.join(dir, `.telegen-write-test-${process.pid}`);
  try { fs.writeFileSync(probe, ''); fs.unlinkSync(probe); } catch (e) {
    throw new PreflightError(`the data dir ${dir} (${flag}) is not writable: ${errno(e)} — the agent writes its API token and, without an OTLP endpoint, its OTLP/JSON files there; give --data-dir a directory this user can write`);
  }
}

const LOCK = 'telegen.pid';

/** The pid holding `dir`'s lock if that process is alive and is a telegen, else undefined. */
export function lockHolder(dir: string): number | undefined {
  let pid: number;
  try { pid = Number(fs.readFileSync(path.join(dir, LOCK), 'utf8').trim()); } catch { return undefined; }
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return undefined;
  try {
    // A pid reused by another program after a SIGKILL is not a holder.
    const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return /telegen/.test(cmd) ? pid : undefined;
  } catch { return undefined; }
}

/** One agent per data dir: takes DATA_DIR/telegen.pid (a stale one, from a killed agent, is
 *  replaced) and returns its release; throws naming the running agent otherwise. */
export function lockDataDir(dir: string): () => void {
  const file = path.join(dir, LOCK);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        try { if (fs.readFileSync(file, 'utf8').trim() === String(process.pid)) fs.unlinkSync(file); } catch { /* gone already */ }
      };
      process.once('exit', release);
      return release;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new PreflightError(`cannot write ${file}: ${errno(e)}`);
      const holder = lockHolder(dir);
      if (holder) {
        throw new PreflightError(`another telegen agent (pid ${holder}) is running with the data dir ${dir}: stop it first (kill ${holder}), or give this one its own --data-dir (and --api-listen)`);
      }
      try { fs.unlinkSync(file); } catch { /* raced with another starter: retry once */ }
    }
  }
  throw new PreflightError(`another telegen agent is starting with the data dir ${dir}`);
}

/** Binds the API address once and lets it go: in use or not an address of this host is said
 *  now, not after every tracer attached. */
export function checkApiAddress(listen: string, flag = 'api.listen'): Promise<void> {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(listen.slice(i + 1));
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') reject(new PreflightError(`the API address ${listen} (${flag}) is already in use — another telegen agent, or another program, listens there: stop it, or choose another with --api-listen HOST:PORT (or api.enabled: false)`));
      else if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') reject(new PreflightError(`the API address ${listen} (${flag}) is not an address of this host (${e.code})`));
      else if (e.code === 'EACCES') reject(new PreflightError(`the API address ${listen} (${flag}) needs privileges this process lacks (${e.code}): choose a port above 1023`));
      else reject(new PreflightError(`the API cannot listen on ${listen} (${flag}): ${e.message}`));
    });
    s.listen({ port, host, exclusive: true }, () => s.close(() => resolve()));
  });
}

/** A file the config names must be readable now, not at the end of start-up. */
export function checkReadable(file: string, key: string): void {
  try { fs.accessSync(file, fs.constants.R_OK); } catch (e) {
    throw new PreflightError(`${key}: cannot read ${file} (${errno(e)})`);
  }
  if (fs.statSync(file).isDirectory()) throw new PreflightError(`${key}: ${file} is a directory, not a file`);
}

export interface PreflightOptions {
  /** Where data_dir and api.listen came from, for the messages (`--data-dir`, `TELEGEN_API_LISTEN`). */
  dataDirFrom?: string;
  listenFrom?: string;
  caps?: bigint;
  uid?: number;
}

/** Everything `telegen run` can check before loading BPF. Returns the data dir lock's release. */
export async function preflightRun(cfg: Config, opts: PreflightOptions = {}): Promise<() => void> {
  checkPrivileges(cfg, opts.caps, opts.uid);
  checkDataDir(cfg.data_dir, opts.dataDirFrom ?? 'data_dir');
  const release = lockDataDir(cfg.data_dir);
  try {
    if (cfg.decoders.dir !== undefined) {
      if (!fs.existsSync(cfg.decoders.dir) || !fs.statSync(cfg.decoders.dir).isDirectory()) {
        throw new PreflightError(`decoders.dir: ${cfg.decoders.dir} is not a directory (nothing could be decoded)`);
      }
    }
    if (cfg.api.enabled) {
      const tokenFile = cfg.api.token_file ?? process.env.TELEGEN_API_TOKEN_FILE;
      if (tokenFile) checkReadable(tokenFile, cfg.api.token_file ? 'api.token_file' : 'TELEGEN_API_TOKEN_FILE');
      if (cfg.api.tls) { checkReadable(cfg.api.tls.cert_file, 'api.tls.cert_file'); checkReadable(cfg.api.tls.key_file, 'api.tls.key_file'); }
      await checkApiAddress(cfg.api.listen, opts.listenFrom ?? 'api.listen');
    }
  } catch (e) { release(); throw e; }
  return release;
}
