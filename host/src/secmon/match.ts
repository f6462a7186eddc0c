// Rule ↔ event: every condition a rule states must hold (pure; called once per rule per event).
import * as path from 'path';
import { Rule, parseCidr } from './policy';
import { SecurityEvent, targetIds, openAccess, succeeded, fileOperation, sourcePath } from './event';
import * as net from 'net';

const cidrCache = new Map<string, net.BlockList>();
function inCidr(addr: string, cidr: string): boolean {
  let b = cidrCache.get(cidr);
  if (!b) { b = parseCidr(cidr)!; cidrCache.set(cidr, b); }
  const fam = net.isIP(addr);
  return fam !== 0 && b.check(addr, fam === 4 ? 'ipv4' : 'ipv6');
}

/** The names a process answers to: its comm and, for exec, the executed file's name (and the
 *  script's, when an interpreter was given one). */
export function processNames(ev: SecurityEvent): string[] {
  if (ev.kind !== 'exec') return [ev.comm];
  return [ev.comm, ...[ev.path, ev.exe, ev.scriptPath].filter((p): p is string => !!p).map((p) => path.basename(p))];
}

/** The paths a path_prefix is checked against: a rename or link matters at either end, an exec
 *  by the name it was given (made absolute), by the file that runs and by the script an
 *  interpreter was given. */
function eventPaths(ev: SecurityEvent): string[] {
  if (ev.kind === 'exec') return [ev.path, ev.exe, ev.scriptPath].filter((p): p is string => !!p);
  const src = sourcePath(ev);
  return src ? [ev.path, src] : [ev.path];
}

/** A file change the kernel could not walk (a name longer than it keeps, a symlink whose target
 *  is not in the inode) may have changed any path: every prefix matches rather than none. */
function pathMatches(ev: SecurityEvent, prefixes: string[]): boolean {
  if (ev.unresolved || (ev.sourceUnresolved && sourcePath(ev) !== undefined)) return true;
  return eventPaths(ev).some((p) => p && prefixes.some((x) => p.startsWith(x)));
}

export function matches(rule: Rule, ev: SecurityEvent): boolean {
  if (rule.event !== ev.kind) return false;
  const m = rule.match;
  const names = processNames(ev);
  if (m.executable && !names.some((n) => m.executable!.includes(n))) return false;
  if (m.not_executable && names.some((n) => m.not_executable!.includes(n))) return false;
  if (m.parent_executable && !(ev.ancestors[0] && m.parent_executable.includes(ev.ancestors[0].name))) return false;
  if (m.ancestor_executable && !ev.ancestors.some((a) => m.ancestor_executable!.includes(a.name))) return false;
  if (m.path_prefix && !pathMatches(ev, m.path_prefix)) return false;
  if (m.access && m.access !== 'any' && !(ev.kind === 'open' && openAccess(ev) === m.access)) return false;
  if (m.operation && !m.operation.includes(fileOperation(ev)!)) return false;
  if (m.uid && !m.uid.includes(ev.uid)) return false;
  if (m.not_uid && m.not_uid.includes(ev.uid)) return false;
  if (m.target_id && !targetIds(ev).some((id) => m.target_id!.includes(id))) return false;
  if (m.remote_port && !(ev.port !== undefined && m.remote_port.includes(ev.port))) return false;
  if (m.not_remote_cidr && !(ev.address && !m.not_remote_cidr.some((c) => inCidr(ev.address!, c)))) return false;
  if (m.result !== 'any' && succeeded(ev) !== (m.result === 'success')) return false;
  return true;
}
