// Security rules: policies/security/*.yaml (or the configured directory), one rule set per file,
// validated with zod so a wrong key or value names the file, the rule and what is allowed.
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import YAML from 'yaml';
import { z } from 'zod';
import { tg_security_limits as LIM } from '../generated/security-layout';

export const EVENT_KINDS = ['exec', 'setuid', 'setgid', 'capset', 'ptrace', 'bpf', 'module', 'mount', 'open', 'file_change', 'connect'] as const;
export type EventKind = typeof EVENT_KINDS[number];
/** What a file_change event did to its path (rename and link: the path is the new name). */
export const FILE_OPERATIONS = ['rename', 'link', 'symlink', 'unlink', 'rmdir', 'mkdir', 'mknod', 'chmod', 'chown', 'truncate'] as const;
export type FileOperation = typeof FILE_OPERATIONS[number];
/** Kinds filtered by path prefix in the kernel: their rules must name one. */
export const PATH_KINDS: readonly EventKind[] = ['open', 'file_change'];

const cidr = z.string().refine((s) => parseCidr(s) !== undefined, 'must be an address/prefix such as 10.0.0.0/8 or fc00::/7');
const ids = z.array(z.number().int().min(0).max(0xffffffff));

const matchSchema = z.object({
  executable: z.array(z.string().min(1)).optional().describe('Process name (comm, or for exec the executed file\'s name as named or as resolved) is one of these'),
  not_executable: z.array(z.string().min(1)).optional().describe('…and none of these'),
  parent_executable: z.array(z.string().min(1)).optional().describe("The parent's name is one of these"),
  ancestor_executable: z.array(z.string().min(1)).optional().describe('Any of the reported ancestors is one of these'),
  path_prefix: z.array(z.string().min(1).max(LIM.TG_SECURITY_PREFIX_LEN)).optional().describe('open: the opened path; file_change: the path changed or, for rename/link, their source; exec: the file as named (absolute) or the file that runs (symlinks, /dev/fd/N resolved; /memfd:NAME); mount: the target'),
  access: z.enum(['read', 'write', 'any']).optional().describe('open: write = O_WRONLY/O_RDWR/O_CREAT/O_TRUNC/O_APPEND'),
  operation: z.array(z.enum(FILE_OPERATIONS)).min(1).optional().describe('file_change: the operation is one of these (all when absent)'),
  uid: ids.optional().describe("The caller's real uid is one of these"),
  not_uid: ids.optional().describe("The caller's real uid is none of these"),
  target_id: ids.optional().describe('setuid/setgid: one of the ids asked for is one of these'),
  remote_port: z.array(z.number().int().min(0).max(65535)).optional().describe('connect: destination port'),
  not_remote_cidr: z.array(cidr).optional().describe('connect: the destination is outside all of these'),
  result: z.enum(['success', 'failure', 'any']).default('any').describe('Whether the call worked (connect in progress counts as success)'),
}).strict();

export const ruleSchema = z.object({
  id: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'lowercase letters, digits, . _ -'),
  description: z.string().min(1),
  event: z.enum(EVENT_KINDS),
  severity: z.enum(['info', 'warn', 'error', 'fatal']).default('warn'),
  match: matchSchema.default({}),
  rate_limit: z.object({
    per_second: z.number().positive().default(5),
    burst: z.number().int().min(1).default(20),
  }).strict().default({}).describe('Records per second per rule; the rest are counted as suppressed'),
}).strict().refine((r) => !PATH_KINDS.includes(r.event) || (r.match.path_prefix?.length ?? 0) > 0,
  (r) => ({ message: `${r.event === 'open' ? 'an' : 'a'} ${r.event} rule needs match.path_prefix (${r.event === 'open' ? 'opens' : 'file changes'} are filtered by prefix in the kernel)`, path: ['match', 'path_prefix'] }));

export const policyFileSchema = z.object({ rules: z.array(ruleSchema).default([]) }).strict();

export type Rule = z.infer<typeof ruleSchema>;

export interface Policy {
  rules: Rule[];
  /** Distinct path prefixes of the open and file_change rules: the kernel-side filter. */
  prefixes: string[];
  files: string[];
}

export class PolicyError extends Error {
  constructor(message: string) { super(message); this.name = 'PolicyError'; }
}

/** `10.0.0.0/8` → a BlockList holding it; undefined when malformed. */
export function parseCidr(s: string): net.BlockList | undefined {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const fam = net.isIP(m[1]);
  const bits = Number(m[2]);
  if (!fam || bits > (fam === 4 ? 32 : 128)) return undefined;
  const b = new net.BlockList();
  b.addSubnet(m[1], bits, fam === 4 ? 'ipv4' : 'ipv6');
  return b;
}

export function policyFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => path.join(dir, f));
}

/** Reads and validates every rule file of `dir`; throws a PolicyError naming each problem. */
export function loadPolicy(dir: string): Policy {
  const files = policyFiles(dir);
  const rules: Rule[] = [];
  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const file of files) {
    let raw: unknown;
    try { raw = YAML.parse(fs.readFileSync(file, 'utf8')) ?? {}; } catch (e) { problems.push(`${file}: ${(e as Error).message.split('\n')[0]}`); continue; }
    const r = policyFileSchema.safeParse(raw);
    if (!r.success) {
      for (const i of r.error.issues) problems.push(`${file}: ${i.path.join('.') || '(top level)'}: ${i.code === 'unrecognized_keys' ? `unknown key(s) ${i.keys.join(', ')}` : i.message}`);
      continue;
    }
    for (const rule of r.data.rules) {
      const prev = seen.get(rule.id);
      if (prev) { problems.push(`${file}: rule id "${rule.id}" already defined in ${prev}`); continue; }
      seen.set(rule.id, file);
      rules.push(rule);
    }
  }
  // A prefix inside another one adds nothing to the kernel filter (the rule still checks its own).
  const all = [...new Set(rules.filter((r) => PATH_KINDS.includes(r.event)).flatMap((r) => r.match.path_prefix ?? []))];
  const prefixes = all.filter((p) => !all.some((q) => q !== p && p.startsWith(q)));
  if (prefixes.length > LIM.TG_SECURITY_PREFIXES) {
    problems.push(`${dir}: ${prefixes.length} distinct open and file_change path_prefix values; the kernel filter holds ${LIM.TG_SECURITY_PREFIXES} (use shorter common prefixes)`);
  }
  if (problems.length) throw new PolicyError(`invalid security policy:\n  ${problems.join('\n  ')}`);
  return { rules, prefixes, files };
}

/** What changes when a file is edited, added or removed: names, sizes and mtimes. */
export function policySignature(dir: string): string {
  try {
    return policyFiles(dir).map((f) => { const s = fs.statSync(f); return `${f}:${s.size}:${s.mtimeMs}`; }).join('|');
  } catch (e) { return `error:${(e as Error).message}`; }
}
