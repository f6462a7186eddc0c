// Kernel records of bpf/security.bpf.c → SecurityEvent: the call grouped into the event kind the
// rules name, with its process, ancestry and arguments decoded.
import * as path from 'path';
import { addrText, cString } from '../tracers/bpf-object';
import { tg_security_event as L, tg_security_call as C, tg_security_limits as LIM, tg_security_flags as F } from '../generated/security-layout';
import type { EventKind, FileOperation } from './policy';

export const CALLS: Record<number, { kind: EventKind; syscall: string }> = {
  [C.TG_SECURITY_EXEC]: { kind: 'exec', syscall: 'execve' },
  [C.TG_SECURITY_SETUID]: { kind: 'setuid', syscall: 'setuid' },
  [C.TG_SECURITY_SETREUID]: { kind: 'setuid', syscall: 'setreuid' },
  [C.TG_SECURITY_SETRESUID]: { kind: 'setuid', syscall: 'setresuid' },
  [C.TG_SECURITY_SETGID]: { kind: 'setgid', syscall: 'setgid' },
  [C.TG_SECURITY_SETREGID]: { kind: 'setgid', syscall: 'setregid' },
  [C.TG_SECURITY_SETRESGID]: { kind: 'setgid', syscall: 'setresgid' },
  [C.TG_SECURITY_CAPSET]: { kind: 'capset', syscall: 'capset' },
  [C.TG_SECURITY_PTRACE]: { kind: 'ptrace', syscall: 'ptrace' },
  [C.TG_SECURITY_BPF]: { kind: 'bpf', syscall: 'bpf' },
  [C.TG_SECURITY_INIT_MODULE]: { kind: 'module', syscall: 'init_module' },
  [C.TG_SECURITY_FINIT_MODULE]: { kind: 'module', syscall: 'finit_module' },
  [C.TG_SECURITY_MOUNT]: { kind: 'mount', syscall: 'mount' },
  [C.TG_SECURITY_OPENAT]: { kind: 'open', syscall: 'openat' },
  [C.TG_SECURITY_OPEN]: { kind: 'open', syscall: 'open' },
  [C.TG_SECURITY_CONNECT]: { kind: 'connect', syscall: 'connect' },
  [C.TG_SECURITY_RENAME]: { kind: 'file_change', syscall: 'rename' },
  [C.TG_SECURITY_RENAMEAT]: { kind: 'file_change', syscall: 'renameat' },
  [C.TG_SECURITY_RENAMEAT2]: { kind: 'file_change', syscall: 'renameat2' },
  [C.TG_SECURITY_LINK]: { kind: 'file_change', syscall: 'link' },
  [C.TG_SECURITY_LINKAT]: { kind: 'file_change', syscall: 'linkat' },
  [C.TG_SECURITY_SYMLINK]: { kind: 'file_change', syscall: 'symlink' },
  [C.TG_SECURITY_SYMLINKAT]: { kind: 'file_change', syscall: 'symlinkat' },
  [C.TG_SECURITY_UNLINK]: { kind: 'file_change', syscall: 'unlink' },
  [C.TG_SECURITY_UNLINKAT]: { kind: 'file_change', syscall: 'unlinkat' },
  [C.TG_SECURITY_RMDIR]: { kind: 'file_change', syscall: 'rmdir' },
  [C.TG_SECURITY_CHMOD]: { kind: 'file_change', syscall: 'chmod' },
  [C.TG_SECURITY_FCHMODAT]: { kind: 'file_change', syscall: 'fchmodat' },
  [C.TG_SECURITY_FCHMODAT2]: { kind: 'file_change', syscall: 'fchmodat2' },
  [C.TG_SECURITY_CHOWN]: { kind: 'file_change', syscall: 'chown' },
  [C.TG_SECURITY_LCHOWN]: { kind: 'file_change', syscall: 'lchown' },
  [C.TG_SECURITY_FCHOWNAT]: { kind: 'file_change', syscall: 'fchownat' },
  [C.TG_SECURITY_TRUNCATE]: { kind: 'file_change', syscall: 'truncate' },
  [C.TG_SECURITY_MKDIR]: { kind: 'file_change', syscall: 'mkdir' },
  [C.TG_SECURITY_MKDIRAT]: { kind: 'file_change', syscall: 'mkdirat' },
  [C.TG_SECURITY_MKNOD]: { kind: 'file_change', syscall: 'mknod' },
  [C.TG_SECURITY_MKNODAT]: { kind: 'file_change', syscall: 'mknodat' },
  [C.TG_SECURITY_FCHMOD]: { kind: 'file_change', syscall: 'fchmod' },
  [C.TG_SECURITY_FCHOWN]: { kind: 'file_change', syscall: 'fchown' },
  [C.TG_SECURITY_FTRUNCATE]: { kind: 'file_change', syscall: 'ftruncate' },
};

/** The syscalls of each file_change operation (unlinkat is rmdir with AT_REMOVEDIR: see fileOperation). */
const FILE_SYSCALLS: Record<FileOperation, string[]> = {
  rename: ['rename', 'renameat', 'renameat2'],
  link: ['link', 'linkat'],
  symlink: ['symlink', 'symlinkat'],
  unlink: ['unlink', 'unlinkat'],
  rmdir: ['rmdir'],
  mkdir: ['mkdir', 'mkdirat'],
  mknod: ['mknod', 'mknodat'],
  chmod: ['chmod', 'fchmodat', 'fchmodat2', 'fchmod'],
  chown: ['chown', 'lchown', 'fchownat', 'fchown'],
  truncate: ['truncate', 'ftruncate'],
};
const OPERATION_OF = new Map(Object.entries(FILE_SYSCALLS).flatMap(([op, calls]) => calls.map((c) => [c, op as FileOperation])));

/** The BPF programs each event kind comes from (a kind whose programs did not attach is inactive). */
export const KIND_PROGRAMS: Record<EventKind, string[][]> = {
  exec: [['tg_sec_exec']],
  setuid: ['setuid', 'setreuid', 'setresuid'].map((s) => [`tg_sec_in_${s}`, `tg_sec_out_${s}`]),
  setgid: ['setgid', 'setregid', 'setresgid'].map((s) => [`tg_sec_in_${s}`, `tg_sec_out_${s}`]),
  capset: [['tg_sec_in_capset', 'tg_sec_out_capset']],
  ptrace: [['tg_sec_in_ptrace', 'tg_sec_out_ptrace']],
  bpf: [['tg_sec_in_bpf', 'tg_sec_out_bpf']],
  module: ['init_module', 'finit_module'].map((s) => [`tg_sec_in_${s}`, `tg_sec_out_${s}`]),
  mount: [['tg_sec_in_mount', 'tg_sec_out_mount']],
  open: ['openat', 'openat2', 'open'].map((s) => [`tg_sec_in_${s}`, `tg_sec_out_${s}`]),
  file_change: Object.values(FILE_SYSCALLS).flat().map((s) => [`tg_sec_in_${s}`, `tg_sec_out_${s}`]),
  connect: [['tg_sec_in_connect', 'tg_sec_out_connect']],
};

/** The tracepoint a security program attaches to (category/name), from the naming bpf/security.bpf.c
 *  follows: tg_sec_in_X / tg_sec_out_X on syscalls/sys_enter_X / sys_exit_X, tg_sec_exec on sched_process_exec. */
export function programTracepoint(prog: string): string {
  if (prog === 'tg_sec_exec') return 'sched/sched_process_exec';
  const m = /^tg_sec_(in|out)_(\w+)$/.exec(prog);
  if (!m) throw new Error(`no tracepoint known for ${prog}`);
  return `syscalls/sys_${m[1] === 'in' ? 'enter' : 'exit'}_${m[2]}`;
}

export const PTRACE_REQUEST: Record<number, string> = { 0: 'traceme', 16: 'attach', 0x4206: 'seize' };
export const BPF_COMMAND: Record<number, string> = { 0: 'BPF_MAP_CREATE', 5: 'BPF_PROG_LOAD', 8: 'BPF_PROG_ATTACH', 17: 'BPF_RAW_TRACEPOINT_OPEN', 28: 'BPF_LINK_CREATE' };

export interface Ancestor { pid: number; name: string }

export interface SecurityEvent {
  call: number; kind: EventKind; syscall: string;
  pid: number; tid: number; uid: number; euid: number; ret: number;
  args: bigint[];
  comm: string;
  ancestors: Ancestor[];
  /** exec: the file as named, made absolute from the caller's working directory when relative */
  path: string;
  /** exec: the file the new image runs, resolved from its dentries (a script's interpreter) */
  exe?: string;
  /** exec of an interpreter (shell, python, perl, …): the script argv gives it to run, made
   *  absolute from the caller's working directory (`sh /tmp/x.sh` runs /tmp/x.sh as surely as
   *  `/tmp/x.sh` does) */
  scriptPath?: string;
  /** The caller's cgroup v2 directory as the kernel named it: its parent's name and its own */
  cgroup?: { parent: string; name: string };
  /** exec: argv; mount: [source, fstype]; module: [params]; file_change: [source path] (rename,
   *  link) or [symlink target as given] */
  extra: string[];
  address?: string; port?: number;
  /** file_change: the kernel could not walk the name (path, source) and sent it as given */
  unresolved?: boolean; sourceUnresolved?: boolean;
}

function nulList(b: Buffer, off: number, len: number): string[] {
  const s = b.subarray(off, off + len);
  let end = s.length;
  while (end > 0 && s[end - 1] === 0) end--;
  return end ? s.subarray(0, end).toString('utf8').split('\0') : [];
}

export function parseSecurityEvent(b: Buffer): SecurityEvent | undefined {
  const call = b.readUInt32LE(L.call);
  const c = CALLS[call];
  if (!c) return undefined;
  const ancestors: Ancestor[] = [];
  for (let i = 0; i < LIM.TG_SECURITY_ANCESTORS; i++) {
    const pid = b.readUInt32LE(L.ppid + 4 * i);
    if (!pid) break;
    ancestors.push({ pid, name: cString(b, L.pcomm + 16 * i, 16) });
  }
  const args = [0, 1, 2, 3].map((i) => b.readBigUInt64LE(L.args + 8 * i));
  let extra: string[];
  if (c.kind === 'mount') {
    const half = LIM.TG_SECURITY_EXTRA_LEN / 2;
    extra = [cString(b, L.extra, half), cString(b, L.extra + half, half)];
  } else if (c.kind === 'exec') {
    extra = nulList(b, L.extra, LIM.TG_SECURITY_EXTRA_LEN);
  } else {
    const s = cString(b, L.extra, LIM.TG_SECURITY_EXTRA_LEN);
    extra = s ? [s] : [];
  }
  const ev: SecurityEvent = {
    call, kind: c.kind, syscall: c.syscall,
    pid: b.readUInt32LE(L.pid), tid: b.readUInt32LE(L.tid), uid: b.readUInt32LE(L.uid), euid: b.readUInt32LE(L.euid),
    ret: Number(b.readBigInt64LE(L.ret)), args, comm: cString(b, L.comm, 16), ancestors,
    path: cString(b, L.path, LIM.TG_SECURITY_PATH_LEN), extra,
  };
  const cgName = cString(b, L.cgroup + LIM.TG_SECURITY_CGROUP_NAME_LEN, LIM.TG_SECURITY_CGROUP_NAME_LEN);
  if (cgName) ev.cgroup = { parent: cString(b, L.cgroup, LIM.TG_SECURITY_CGROUP_NAME_LEN), name: cgName };
  if (c.kind === 'connect') { ev.address = addrText(b, L.addr); ev.port = b.readUInt16LE(L.port); }
  if (c.kind === 'exec') {
    const exe = cString(b, L.exe, LIM.TG_SECURITY_PATH_LEN);
    if (exe) ev.exe = exe;
    const cwd = cString(b, L.cwd, LIM.TG_SECURITY_PATH_LEN);
    if (cwd && ev.path && !ev.path.startsWith('/')) ev.path = path.posix.join(cwd, ev.path);
    const script = scriptArgument(ev);
    if (script) ev.scriptPath = script.startsWith('/') ? path.posix.normalize(script) : cwd ? path.posix.join(cwd, script) : undefined;
  }
  if (c.kind === 'file_change') {
    const flags = b.readUInt32LE(L.flags);
    ev.unresolved = (flags & F.TG_SECURITY_F_UNRESOLVED) !== 0;
    ev.sourceUnresolved = (flags & F.TG_SECURITY_F_SOURCE_UNRESOLVED) !== 0;
  }
  return ev;
}

/** How an interpreter's command line names the program it runs: option letters after which the
 *  program is not a file (an argument or stdin: sh -c, python -m, perl -e), option letters whose
 *  value is the next argument when not attached (bash -o, python -W), php's -f (the value is the
 *  file), and the long forms of both. Anything else before the first operand is an option. */
interface Interpreter { inline: string; takes: string; file?: string; longInline?: string[]; longTakes?: string[]; plus?: boolean }
const SHELL: Interpreter = { inline: 'cs', takes: 'oO', longTakes: ['--rcfile', '--init-file'], plus: true };
const INTERPRETERS: Array<[RegExp, Interpreter]> = [
  [/^(?:ba|da|z|k|mk|a|y|po)?sh$/, SHELL],
  [/^python[0-9.]*$/, { inline: 'cm', takes: 'WX', longInline: ['--check-hash-based-pycs'] }],
  [/^perl[0-9.]*$/, { inline: 'eE', takes: 'I' }],
  [/^ruby[0-9.]*$/, { inline: 'e', takes: 'IrC' }],
  [/^(?:node|nodejs)$/, { inline: 'ep', takes: 'r', longInline: ['--eval', '--print'], longTakes: ['--require', '--import', '--loader', '--experimental-loader', '--input-type'] }],
  [/^php[0-9.]*$/, { inline: 'rR', takes: 'cdz', file: 'f' }],
  [/^lua[0-9.]*$/, { inline: 'e', takes: 'l' }],
  [/^tclsh[0-9.]*$/, { inline: '', takes: '' }],
];

function interpreterOf(ev: SecurityEvent): Interpreter | undefined {
  // The resolved file first (dash behind /bin/sh, python3.11 behind python3); busybox by argv[0].
  for (const p of [ev.exe, ev.path, ev.extra[0]]) {
    if (!p) continue;
    const name = path.posix.basename(p);
    const hit = INTERPRETERS.find(([re]) => re.test(name));
    if (hit) return hit[1];
  }
  return undefined;
}

/** exec: the script an interpreter was given on its command line (as written), if it was given one. */
export function scriptArgument(ev: SecurityEvent): string | undefined {
  const it = interpreterOf(ev);
  if (!it) return undefined;
  const argv = ev.extra;
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') return argv[i + 1] || undefined;
    if (a === '-' || a === '') return undefined;
    if (a.startsWith('--')) {
      const [name, value] = a.split('=', 2);
      if (it.longInline?.includes(name)) return undefined;
      if (value === undefined && it.longTakes?.includes(name)) i++;
      continue;
    }
    if (a[0] !== '-' && !(it.plus && a[0] === '+')) return a;
    for (let j = 1; j < a.length; j++) {
      const c = a[j];
      if (it.inline.includes(c)) return undefined;
      if (it.file?.includes(c)) return a.slice(j + 1) || argv[i + 1] || undefined;
      if (it.takes.includes(c)) {
        if (j === a.length - 1) i++;
        break;
      }
    }
  }
  return undefined;
}

const AT_REMOVEDIR = 0x200;
/** file_change: what the call did (unlinkat with AT_REMOVEDIR removes a directory). */
export function fileOperation(ev: SecurityEvent): FileOperation | undefined {
  if (ev.syscall === 'unlinkat' && (Number(ev.args[2] & 0xffffffffn) & AT_REMOVEDIR)) return 'rmdir';
  return OPERATION_OF.get(ev.syscall);
}

/** file_change: the path the file came from (rename, link), whose loss or exposure also matters. */
export function sourcePath(ev: SecurityEvent): string | undefined {
  const op = fileOperation(ev);
  return op === 'rename' || op === 'link' ? ev.extra[0] : undefined;
}

/** setuid/setgid family: the ids asked for, without the -1 that means "unchanged". */
export function targetIds(ev: SecurityEvent): number[] {
  const n = ev.syscall.startsWith('setres') ? 3 : ev.syscall.startsWith('setre') ? 2 : 1;
  return ev.args.slice(0, n).map((a) => Number(BigInt.asUintN(32, a))).filter((x) => x !== 0xffffffff);
}

const O_WRONLY = 0o1, O_RDWR = 0o2, O_CREAT = 0o100, O_TRUNC = 0o1000, O_APPEND = 0o2000;
export function openAccess(ev: SecurityEvent): 'read' | 'write' {
  return Number(ev.args[2] & 0xffffffffn) & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND) ? 'write' : 'read';
}

const EINPROGRESS = 115;
export function succeeded(ev: SecurityEvent): boolean {
  return ev.ret >= 0 || (ev.kind === 'connect' && ev.ret === -EINPROGRESS);
}
