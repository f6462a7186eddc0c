// Who a pid is: service.name (OTEL_SERVICE_NAME from its environment, else the executable's
// name), process.executable.*, container.id from its cgroup. Read once per pid and kept
// (bounded) so samples of processes that exited before the drain still carry them. Pids are
// reused: an entry is checked against the process's start time (at most once a second per pid)
// and read again when another process holds the pid now.
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
  /** Start time in clock ticks after boot (/proc/PID/stat field 22); '' when unreadable. */
  startTime?: string;
}

const CONTAINER_ID = /([0-9a-f]{64})(?:\.scope)?$/;

function read(file: string): string | undefined {
  try { return fs.readFileSync(file, 'utf8'); } catch { return undefined; }
}

/** Field 22 of /proc/PID/stat; the name (field 2) may hold spaces and parentheses, so fields
 *  are counted after its last ')'. */
export function readStartTime(pid: number, root = '/proc'): string {
  const st = read(`${root}/${pid}/stat`);
  if (!st) return '';
  return st.slice(st.lastIndexOf(')') + 2).split(' ')[19] ?? '';
}

export function readProcessInfo(pid: number, comm = '', root = '/proc'): ProcessInfo {
  const startTime = readStartTime(pid, root);
  const env = read(`${root}/${pid}/environ`) ?? '';
  const svc = /(?:^|\0)OTEL_SERVICE_NAME=([^\0]+)/.exec(env)?.[1];
  let exe = '';
  try { exe = fs.readlinkSync(`${root}/${pid}/exe`).replace(/ \(deleted\)$/, ''); } catch { /* exited or kernel thread */ }
  const cmd = (read(`${root}/${pid}/cmdline`) ?? '').split('\0').filter(Boolean).join(' ');
  const cg = (read(`${root}/${pid}/cgroup`) ?? '').split('\n').find((l) => l.startsWith('0::'))?.slice(3) ?? '';
  const cid = CONTAINER_ID.exec(cg.split('/').filter(Boolean).pop() ?? '')?.[1] ?? '';
  if (!comm) comm = (read(`${root}/${pid}/comm`) ?? '').trim();
  const exeName = exe ? path.basename(exe) : comm;
  return { pid, serviceName: svc ?? (exeName || comm || `pid-${pid}`), executableName: exeName, executablePath: exe, commandLine: cmd.slice(0, 512), containerId: cid, cgroupPath: cg, startTime };
}

const RECHECK_MS = 1000;

export class ProcessTable {
  private cache: Lru<number, { info: ProcessInfo; checkedAt: number }>;
  constructor(max = 4096, private readonly root = '/proc', private readonly now: () => number = Date.now) { this.cache = new Lru(max); }
  get(pid: number, comm = ''): ProcessInfo {
    const t = this.now();
    const e = this.cache.get(pid);
    if (e && t - e.checkedAt < RECHECK_MS) return e.info;
    if (e) {
      e.checkedAt = t;
      // Unreadable: the process exited; its samples still name it.
      const st = readStartTime(pid, this.root);
      if (!st || st === e.info.startTime) return e.info;
    }
    const info = readProcessInfo(pid, comm, this.root);
    this.cache.set(pid, { info, checkedAt: t });
    return info;
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
