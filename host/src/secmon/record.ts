// A matched event → an OTLP log record: severity from the rule, OpenTelemetry process/file/network
// attribute names where they exist, telegen.* for the rest (rule, syscall, ancestry, arguments).
import { AnyValueMap, LogRecord, SeverityNumber } from '@opentelemetry/api-logs';
import * as os from 'os';
import { Rule } from './policy';
import { SecurityEvent, targetIds, openAccess, succeeded, fileOperation, sourcePath, PTRACE_REQUEST, BPF_COMMAND } from './event';
import { CgroupFacts, parseCgroupPath, readCgroup } from '../discovery/cgroup';

/** The caller's container: from the cgroup the kernel named with the event (a process that
 *  exited at once still has it), else from /proc/PID/cgroup while the process lives (cgroup v1
 *  hierarchies, where runtimes may leave the v2 cgroup at the root). */
function containerOf(ev: SecurityEvent): CgroupFacts {
  const k = ev.cgroup ? parseCgroupPath(`/${ev.cgroup.parent}/${ev.cgroup.name}`) : {};
  return k.containerId ? k : { ...readCgroup(ev.pid), ...(k.podUid ? { podUid: k.podUid } : {}) };
}

const SEVERITY: Record<Rule['severity'], [SeverityNumber, string]> = {
  info: [SeverityNumber.INFO, 'INFO'], warn: [SeverityNumber.WARN, 'WARN'],
  error: [SeverityNumber.ERROR, 'ERROR'], fatal: [SeverityNumber.FATAL, 'FATAL'],
};
const ERRNO = new Map<number, string>(Object.entries(os.constants.errno).map(([k, v]) => [v, k]));

const S_IFMT = 0o170000;
const NODE_TYPES: Record<number, string> = { 0: 'file', 0o100000: 'file', 0o020000: 'character_device', 0o060000: 'block_device', 0o010000: 'fifo', 0o140000: 'socket' };
/** mknod's mode names what it creates (0 is a regular file, as S_IFREG). */
function nodeType(mode: number): string {
  return NODE_TYPES[mode & S_IFMT] ?? `0${((mode & S_IFMT) >>> 0).toString(8)}`;
}
/** mknod's dev as the kernel decodes it (new_decode_dev): "major:minor". */
function deviceNumber(dev: number): string {
  return `${(dev & 0xfff00) >>> 8}:${((dev & 0xff) | ((dev >>> 12) & 0xfff00)) >>> 0}`;
}

function what(ev: SecurityEvent): string {
  switch (ev.kind) {
    case 'exec': return `exec ${ev.extra.length ? ev.extra.join(' ') : ev.path}`;
    case 'setuid': case 'setgid': return `${ev.syscall}(${targetIds(ev).join(', ')})`;
    case 'ptrace': return `ptrace ${PTRACE_REQUEST[Number(ev.args[0])] ?? ev.args[0]} pid ${ev.args[1]}`;
    case 'bpf': return `bpf ${BPF_COMMAND[Number(ev.args[0])] ?? ev.args[0]}`;
    case 'module': return ev.syscall;
    case 'mount': return `mount ${ev.extra[0] ?? ''} on ${ev.path} type ${ev.extra[1] ?? ''}`;
    case 'open': return `open ${ev.path} for ${openAccess(ev)}`;
    case 'file_change': {
      const src = sourcePath(ev);
      const op = fileOperation(ev);
      return op === 'symlink' ? `symlink ${ev.path} -> ${ev.extra[0] ?? ''}` : `${op} ${src !== undefined ? `${src} to ` : ''}${ev.path}`;
    }
    case 'connect': return `connect ${ev.address}:${ev.port}`;
    default: return ev.syscall;
  }
}

export function securityLogRecord(rule: Rule, ev: SecurityEvent, suppressed: number): LogRecord {
  const [severityNumber, severityText] = SEVERITY[rule.severity];
  const ok = succeeded(ev);
  const a: AnyValueMap = {
    'event.name': 'telegen.security.alert',
    'telegen.security.rule.id': rule.id,
    'telegen.security.event': ev.kind,
    'telegen.security.syscall': ev.syscall,
    'telegen.security.result': ok ? 'success' : 'failure',
    'process.pid': ev.pid,
    'process.executable.name': ev.comm,
    'process.real_user.id': ev.uid,
    'process.user.id': ev.euid,
    'telegen.process.ancestors': ev.ancestors.map((x) => `${x.pid} ${x.name}`),
  };
  if (!ok) a['error.type'] = ERRNO.get(-ev.ret) ?? String(-ev.ret);
  if (ev.ancestors[0]) { a['process.parent_pid'] = ev.ancestors[0].pid; a['telegen.process.parent.executable.name'] = ev.ancestors[0].name; }
  const ctr = containerOf(ev);
  if (ctr.containerId) a['container.id'] = ctr.containerId;
  if (ctr.runtime) a['container.runtime'] = ctr.runtime;
  if (ctr.podUid) a['k8s.pod.uid'] = ctr.podUid;
  switch (ev.kind) {
    case 'exec':
      a['process.executable.path'] = ev.path;
      if (ev.exe) a['telegen.exec.resolved_path'] = ev.exe;
      if (ev.scriptPath) a['telegen.exec.script_path'] = ev.scriptPath;
      a['process.command_args'] = ev.extra;
      a['process.command_line'] = ev.extra.join(' ');
      break;
    case 'setuid': case 'setgid':
      a['telegen.security.target_ids'] = targetIds(ev);
      break;
    case 'ptrace':
      a['telegen.ptrace.request'] = PTRACE_REQUEST[Number(ev.args[0])] ?? String(ev.args[0]);
      a['telegen.ptrace.target.pid'] = Number(ev.args[1]);
      break;
    case 'bpf':
      a['telegen.bpf.command'] = BPF_COMMAND[Number(ev.args[0])] ?? String(ev.args[0]);
      break;
    case 'module':
      if (ev.extra[0]) a['telegen.module.params'] = ev.extra[0];
      break;
    case 'mount':
      a['file.path'] = ev.path;
      a['telegen.mount.source'] = ev.extra[0] ?? '';
      a['telegen.mount.fstype'] = ev.extra[1] ?? '';
      break;
    case 'open':
      a['file.path'] = ev.path;
      a['telegen.file.access'] = openAccess(ev);
      break;
    case 'file_change': {
      const op = fileOperation(ev);
      a['file.path'] = ev.path;
      a['telegen.file.operation'] = op ?? ev.syscall;
      const src = sourcePath(ev);
      if (src !== undefined) a['telegen.file.source.path'] = src;
      if (op === 'symlink') a['file.symbolic_link.target_path'] = ev.extra[0] ?? '';
      if (op === 'chmod' || op === 'mkdir' || op === 'mknod') a['file.mode'] = (Number(ev.args[0]) & 0o7777).toString(8).padStart(4, '0');
      if (op === 'mknod') {
        const type = nodeType(Number(ev.args[0]));
        a['telegen.file.type'] = type;
        if (type === 'character_device' || type === 'block_device') a['telegen.file.device'] = deviceNumber(Number(ev.args[1]));
      }
      if (op === 'chown') {
        // -1 leaves the id unchanged
        const uid = Number(BigInt.asUintN(32, ev.args[0])), gid = Number(BigInt.asUintN(32, ev.args[1]));
        if (uid !== 0xffffffff) a['file.owner.id'] = String(uid);
        if (gid !== 0xffffffff) a['file.group.id'] = String(gid);
      }
      if (op === 'truncate') a['file.size'] = Number(ev.args[0]);
      if (ev.unresolved || ev.sourceUnresolved) a['telegen.file.path_unresolved'] = true;
      break;
    }
    case 'connect':
      a['server.address'] = ev.address ?? '';
      a['server.port'] = ev.port ?? 0;
      break;
  }
  if (suppressed) a['telegen.security.suppressed'] = suppressed;
  return {
    severityNumber, severityText, eventName: 'telegen.security.alert',
    body: `${rule.description}: ${ev.comm} (pid ${ev.pid}) ${what(ev)}${ok ? '' : ` → ${a['error.type']}`}`,
    attributes: a,
  };
}
