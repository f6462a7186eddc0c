// Who a pid is: service.name (OTEL_SERVICE_NAME from its environment, else the executable's
// name), process.executable.*, container.id from its cgroup. Read once per pid and kept
// (bounded) so samples of processes that exited before the drain still carry them.
import * as fs from 'fs';
import * as path from 'path';
import { Lru } from './lru';

export interface ProcessInfo {
  pid: number;
  serviceName: string;
  executableName: string;
  executablePath: string;
  commandLine: string;
  containerId: string;
  cgroupPath: string;
}

const CONTAINER_ID = /([0-9a-f]{64})(?:\.scope)?$/;

function read(file: string): string | undefined {
  try { return fs.readFileSync(file, 'utf8'); } catch { return undefined; }
}

export function readProcessInfo(pid: number, comm = ''): ProcessInfo {
  const env = read(`/proc/${pid}/environ`) ?? '';
  const svc = /(?:^|\0)OTEL_SERVICE_NAME=([^\0]+)/.exec(env)?.[1];
  let exe = '';
  try { exe = fs.readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, ''); } catch { /* exited or kernel thread */ }
  const cmd = (read(`/proc/${pid}/cmdline`) ?? '').split('\0').filter(Boolean).join(' ');
  const cg = (read(`/proc/${pid}/cgroup`) ?? '').split('\n').find((l) => l.startsWith('0::'))?.slice(3) ?? '';
  const cid = CONTAINER_ID.exec(cg.split('/').filter(Boolean).pop() ?? '')?.[1] ?? '';
  if (!comm) comm = (read(`/proc/${pid}/comm`) ?? '').trim();
  const exeName = exe ? path.basename(exe) : comm;
  return { pid, serviceName: svc ?? (exeName || comm || `pid-${pid}`), executableName: exeName, executablePath: exe, commandLine: cmd.slice(0, 512), containerId: cid, cgroupPath: cg };
}

export class ProcessTable {
  private cache: Lru<number, ProcessInfo>;
  constructor(max = 4096) { this.cache = new Lru(max); }
  get(pid: number, comm = ''): ProcessInfo {
    let p = this.cache.get(pid);
    if (!p) { p = readProcessInfo(pid, comm); this.cache.set(pid, p); }
    return p;
  }
  /** Drops a pid whose /proc entry is gone (pids are reused). */
  forget(pid: number): void { this.cache.delete(pid); }
}

/** Every live pid with its info, for re-targeting by service or container. */
export function listProcesses(table: ProcessTable): ProcessInfo[] {
  let pids: number[] = [];
  try { pids = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number); } catch { return []; }
  return pids.map((p) => table.get(p));
}

/** cgroup v2 id (the directory's inode) of a cgroup path, as bpf_get_current_cgroup_id() sees it. */
export function cgroupId(cgroupPath: string): bigint | undefined {
  try { return BigInt(fs.statSync(path.join('/sys/fs/cgroup', cgroupPath), { bigint: true }).ino); } catch { return undefined; }
}
