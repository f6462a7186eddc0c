// The loader ↔ worker protocol: u32 big-endian length + UTF-8 JSON per frame, both ways. The
// loader is root and the worker parses untrusted bytes, so everything the worker asks for is
// checked here twice — shape (zod, strict) then policy (what exists on this host right now) — and
// refused with a reason otherwise. Pure functions; the loader supplies the host lookups.
import * as path from 'path';
import { z } from 'zod';
import { SSL_FUNCS, GNUTLS_FUNCS } from '../../tracers/tls';

/** A request never needs more; anything longer is refused before parsing. */
export const MAX_REQUEST_BYTES = 64 * 1024;
export const PROTOCOL_VERSION = 1;

export function encodeFrame(msg: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(msg), 'utf8');
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, 4);
  return out;
}

/**
 * Splits a byte stream into frames. A declared length above `max` is reported once through
 * onOversize and the stream is then useless (the caller closes it): resynchronising on a
 * stream whose peer lies about lengths is not worth it.
 */
export function frameReader(max: number, onFrame: (body: Buffer) => void, onOversize: (len: number) => void): (chunk: Buffer) => void {
  let buf = Buffer.alloc(0);
  let dead = false;
  return (chunk) => {
    if (dead) return;
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    while (buf.length >= 4) {
      const len = buf.readUInt32BE(0);
      if (len > max) { dead = true; onOversize(len); return; }
      if (buf.length < 4 + len) return;
      const body = buf.subarray(4, 4 + len);
      buf = buf.subarray(4 + len);
      onFrame(body);
    }
  };
}

/** Uprobe targets each tracer may ask for: library file names, whether the process's own
 *  executable may be hooked (node links OpenSSL statically), and the functions: OpenSSL's and
 *  GnuTLS's record functions (a container's own libgnutls copy is hooked only on request). */
export const UPROBE_POLICY: Record<string, { library: RegExp; executable: boolean; symbols: ReadonlySet<string> }> = {
  tls: {
    library: /^lib(ssl|gnutls)\.so(\.\d+)*$/,
    executable: true,
    symbols: new Set([...SSL_FUNCS, ...GNUTLS_FUNCS].map(([f]) => f)),
  },
};

const absPath = z.string().min(2).max(4096).refine((p) => p.startsWith('/') && !p.includes('\0'), 'must be an absolute path');
const tracerName = z.string().max(32);
const pid = z.number().int().min(1).max(0x3fffffff);
const id = z.number().int().nonnegative();

export const requestSchema = z.discriminatedUnion('op', [
  z.object({ op: z.literal('ping'), id }).strict(),
  // Which files of this process the tracer could hook: its mapped libraries the policy names
  // and its executable (the worker cannot read other users' /proc/PID/maps or exe itself).
  z.object({ op: z.literal('list_targets'), id, tracer: tracerName, pid }).strict(),
  z.object({
    op: z.literal('attach_uprobe'),
    id,
    tracer: tracerName,
    pid,
    library: absPath,
    symbols: z.array(z.string().max(128)).min(1).max(16),
  }).strict(),
  // Enrichment facts the worker cannot read itself (exe link, OTEL_* environment, runtime from
  // maps/ELF): a fixed set of bounded fields, never file contents (describe.ts).
  z.object({ op: z.literal('describe_process'), id, pid }).strict(),
]);
export type Request = z.infer<typeof requestSchema>;

export interface Refusal { ok: false; id?: number; error: 'malformed' | 'refused' | 'failed'; reason: string }
export type Reply = { ok: true; id: number; [k: string]: unknown } | Refusal;

/** What the policy needs to know about the host; the loader reads /proc, tests may not. */
export interface HostView {
  /** Whether a process with this pid exists now. */
  pidExists(pid: number): boolean;
  /** Files the process has mapped (paths as /proc/PID/maps shows them, inside its root). */
  mappedFiles(pid: number): string[];
  /** Inode numbers /proc/PID/maps shows for mappings of `file`. */
  mappedInodes(pid: number, file: string): number[];
  /** The process's executable as it names it (/proc/PID/exe), null if unreadable or deleted. */
  executable(pid: number): string | null;
  /** Inode of the file the process runs (stat of /proc/PID/exe). */
  executableInode(pid: number): number | null;
  /** PATH resolved inside the process's root without following a symlink: its inode when it is
   *  a regular file, else null. */
  regularFileInRoot(pid: number, file: string): { ino: number } | null;
  /** Pids the request may never target (the loader and the worker themselves). */
  protectedPids: ReadonlySet<number>;
}

/**
 * Token bucket per session: a worker compromised by a decoder bug must not turn the loader into
 * a loop of ELF lookups and uprobe attaches. `now` is injectable for tests.
 */
export class RateLimit {
  private tokens: number;
  private at: number;
  constructor(readonly burst = 64, readonly perSecond = 16, private readonly now: () => number = Date.now) {
    this.tokens = burst;
    this.at = now();
  }
  take(): boolean {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.at) / 1000) * this.perSecond);
    this.at = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** Parse + validate one frame body. Returns the request or the refusal to send back. */
export function parseRequest(body: Buffer): Request | Refusal {
  let raw: unknown;
  try { raw = JSON.parse(body.toString('utf8')); } catch (e) {
    return { ok: false, error: 'malformed', reason: `not JSON: ${(e as Error).message}` };
  }
  const r = requestSchema.safeParse(raw);
  if (!r.success) {
    const id = raw && typeof raw === 'object' && typeof (raw as { id?: unknown }).id === 'number' ? (raw as { id: number }).id : undefined;
    return { ok: false, id, error: 'malformed', reason: r.error.issues.map((i) => `${i.path.join('.') || '(request)'}: ${i.message}`).join('; ') };
  }
  return r.data;
}

/** The policy: null when the request may run, else the reason it may not. */
export function policyRefusal(req: Request, host: HostView): string | null {
  if (req.op === 'ping') return null;
  if (req.op === 'describe_process') {
    if (host.protectedPids.has(req.pid)) return `pid ${req.pid} is telegen itself`;
    return host.pidExists(req.pid) ? null : `pid ${req.pid} does not exist`;
  }
  const rule = UPROBE_POLICY[req.tracer];
  if (!rule) return `tracer "${req.tracer}" may not request uprobes (allowed: ${Object.keys(UPROBE_POLICY).join(', ')})`;
  if (host.protectedPids.has(req.pid)) return `pid ${req.pid} is telegen itself`;
  if (!host.pidExists(req.pid)) return `pid ${req.pid} does not exist`;
  if (req.op === 'list_targets') return null;
  if (path.posix.normalize(req.library) !== req.library || req.library.split('/').includes('..'))
    return `library path ${JSON.stringify(req.library)} is not normalized`;
  const isExe = rule.executable && host.executable(req.pid) === req.library;
  if (!isExe && !rule.library.test(path.posix.basename(req.library)))
    return `library ${req.library} is not one tracer "${req.tracer}" may hook (${rule.library.source}${rule.executable ? ' or the process\'s executable' : ''})`;
  const bad = req.symbols.filter((s) => !rule.symbols.has(s));
  if (bad.length) return `symbol(s) ${bad.join(', ')} not allowed for tracer "${req.tracer}"`;
  const inodes = isExe ? [host.executableInode(req.pid)] : host.mappedInodes(req.pid, req.library);
  if (!inodes.length) return `pid ${req.pid} has no mapping of ${req.library}`;
  const file = host.regularFileInRoot(req.pid, req.library);
  if (!file) return `${req.library} is not a regular file inside /proc/${req.pid}/root`;
  // The path could name another file than the one mapped (replaced on disk, or a bind mount):
  // only the very inode the process runs may be hooked.
  if (!inodes.includes(file.ino)) return `${req.library} inside /proc/${req.pid}/root is not the file pid ${req.pid} ${isExe ? 'runs' : 'maps'}`;
  return null;
}

/** Files of a process a tracer may hook (reply to list_targets): policy-named libraries it maps
 *  and, where allowed, its executable. */
export function uprobeTargets(tracer: string, pid: number, host: HostView): string[] {
  const rule = UPROBE_POLICY[tracer];
  if (!rule) return [];
  const out = new Set(host.mappedFiles(pid).filter((f) => rule.library.test(path.posix.basename(f))));
  const exe = rule.executable ? host.executable(pid) : null;
  if (exe) out.add(exe);
  return [...out];
}
