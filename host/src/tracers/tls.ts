// TLS plaintext tracer: uprobes on OpenSSL's SSL_read/SSL_write/SSL_read_ex/SSL_write_ex, on
// the SSL BIO's read/write, which call none of them (tls-bio.ts), and on GnuTLS's
// gnutls_record_send/recv (bpf/tls.bpf.c). Its records go
// into the socket tracer's ring as TG_DATA_TLS data events, so HTTPS and gRPC over TLS reach the
// same router and decoders as cleartext (host/src/ingest/kernel.ts routes the plaintext as the
// connection's stream and drops its ciphertext).
//
// A uprobe hooks a file (inode), not a process: once libssl.so.3, libgnutls.so.30 or the node binary is hooked,
// every process running it — started before or after — is covered. New binaries (another libssl
// copy, a container's, a static binary) are found from the Go tracer's exec events (only the new
// process's maps are read: followExecs); a full /proc scan is the slow safety net.
import * as fs from 'fs';
import * as path from 'path';
import { TracerContext, TracerFactory, RunningTracer } from '../agent';
import { log } from '../log';
import { loadNative, nativeAddonPath } from '../native';
import { tg_tls_stat, tg_tls_h2_cb } from '../generated/tls-layout';
import { MapDesc, statNames, trackTracerObject } from './map-fill';
import { ExecListener, goExecActive, offGoExec, onGoExec } from './go-exec';
import { sslBioFuncs, SslBioFuncs } from './tls-bio';
import { HandshakeFailures, HANDSHAKE_STATS, pltStubs, sslFieldCookie } from './tls-handshake';

const tlog = log.child({ component: 'tracer.tls' });

/** [exported function, entry program]; every one also gets the shared return program. */
export const SSL_FUNCS: ReadonlyArray<[string, string]> = [
  ['SSL_write', 'tls_write_enter'],
  ['SSL_read', 'tls_read_enter'],
  ['SSL_write_ex', 'tls_write_ex_enter'],
  ['SSL_read_ex', 'tls_read_ex_enter'],
];
const EXIT_PROG = 'tls_exit';

/** Where a handshake begins and ends (bpf/tls.bpf.c, Handshakes): [function, entry program,
 *  whether the return is hooked too (tls_hs_exit)]. SSL_connect and SSL_accept jump to
 *  SSL_do_handshake; hooked too, they name the side of a connection older than the agent. */
export const SSL_HANDSHAKE_FUNCS: ReadonlyArray<[string, string, boolean]> = [
  ['SSL_do_handshake', 'tls_hs_enter', true],
  ['SSL_connect', 'tls_hs_connect', true],
  ['SSL_accept', 'tls_hs_accept', true],
  ['SSL_set_connect_state', 'tls_hs_set_connect', false],
  ['SSL_set_accept_state', 'tls_hs_set_accept', false],
  ['SSL_free', 'tls_hs_free', false],
  ['SSL_get_verify_result', 'tls_hs_verify', false],
];
export const GNUTLS_HANDSHAKE_FUNCS: ReadonlyArray<[string, string, boolean]> = [
  ['gnutls_handshake', 'gnutls_hs_enter', true],
  ['gnutls_deinit', 'tls_hs_free', false],
];
/** OpenSSL's error queue entries: why a handshake failed. */
const ERR_FUNCS = ['ERR_vset_error', 'ERR_set_error'];

/** GnuTLS's record API (gnutls/gnutls.h): `ssize_t f(gnutls_session_t, data, size_t, …)`, the
 *  count moved or a negative error (GNUTLS_E_AGAIN, GNUTLS_E_INTERRUPTED…), 0 at the peer's close
 *  — SSL_read/SSL_write's shape, so the same programs serve (the return is read as an int: one
 *  call moves at most one record). The session pointer keys the socket as the SSL* does; GnuTLS's
 *  own socket push/pull (and libcurl's, wget's) run inside the call, on the caller's thread.
 *  gnutls_record_send jumps to gnutls_record_send2 (3.6.3+): the inner return takes the call,
 *  emitted once. The first is looked up first: a file without it carries no GnuTLS. */
export const GNUTLS_FUNCS: ReadonlyArray<[string, string]> = [
  ['gnutls_record_send', 'tls_write_enter'],
  ['gnutls_record_send2', 'tls_write_enter'],
  ['gnutls_record_send_range', 'tls_write_enter'],
  ['gnutls_record_recv', 'tls_read_enter'],
  ['gnutls_record_recv_seq', 'tls_read_enter'],
];

/** nghttp2's exported API: [function, entry program, return program?]. The first is looked up
 *  first: a file without it carries no nghttp2. */
export const H2_FUNCS: ReadonlyArray<[string, string, string?]> = [
  ['nghttp2_session_mem_recv', 'h2_mem_recv'],
  ['nghttp2_session_mem_recv2', 'h2_mem_recv'],
  ['nghttp2_session_del', 'h2_session_del'],
  ['nghttp2_submit_request', 'h2_submit_request', 'h2_submit_request_ret'],
  ['nghttp2_submit_request2', 'h2_submit_request', 'h2_submit_request_ret'],
  ['nghttp2_submit_response', 'h2_submit_response'],
  ['nghttp2_submit_response2', 'h2_submit_response'],
  ['nghttp2_submit_trailer', 'h2_submit_trailer'],
  // node's own header callback (on_header_callback2's signature), exported by the node binary
  ['_ZN4node5http212Http2Session16OnHeaderCallbackEP15nghttp2_sessionPK13nghttp2_frameP13nghttp2_rcbufS8_hPv', 'h2_on_header2'],
];

interface NativeUprobeTracer {
  open(obj: string, opts: object): { attached: string[]; failed: Array<{ name: string; error: string }>; uprobes: string[] };
  attachUprobe(prog: string, binary: string, func: string | number, retprobe: boolean, pid?: number, cookie?: number): number;
  detach(handle: number): boolean;
  stats(map: string): number[];
  keys(map: string): Buffer[];
  maps(): MapDesc[];
  close(): void;
}

/** Files a process maps that may carry OpenSSL, GnuTLS or nghttp2: its libssl, libgnutls and
 *  libnghttp2 copies (from /proc/PID/maps text). */
export function libsslPaths(maps: string): string[] {
  // Most processes map none (and a node process maps ~400 lines): not split at all then.
  if (maps.indexOf('/libssl.so') < 0 && maps.indexOf('/libnghttp2.so') < 0 && maps.indexOf('/libgnutls.so') < 0) return [];
  const out = new Set<string>();
  for (const line of maps.split('\n')) {
    const slash = line.indexOf('/');
    if (slash < 0) continue;
    const p = line.slice(slash);
    if (/\/lib(ssl|nghttp2|gnutls)\.so[.\d]*$/.test(p)) out.add(p);
  }
  return [...out];
}

const LIBSSL_NAME = /^libssl\.so(\.\d+)*$/;
const LIBNGHTTP2_NAME = /^libnghttp2\.so(\.\d+)*$/;
export const LIBGNUTLS_NAME = /^libgnutls\.so(\.\d+)*$/;

/** The dynamic linker's default directories, searched even when ld.so.conf does not list them. */
const DEFAULT_LIB_DIRS = ['/lib', '/usr/lib', '/lib64', '/usr/lib64'];

/** Directories named by an ld.so.conf text; `include` globs are expanded by `expand`. */
export function ldConfDirs(text: string, expand: (pattern: string) => string[]): string[] {
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const inc = /^include\s+(.+)$/.exec(line);
    if (inc) {
      for (const pat of inc[1].split(/\s+/)) out.push(...expand(pat));
    } else if (line.startsWith('/')) {
      out.push(line);
    }
  }
  return out;
}

/** `dir/*.conf`-style patterns (the only form ld.so.conf uses): files in dir matching the suffix. */
function expandConfGlob(pattern: string): string[] {
  const dir = path.dirname(pattern);
  const base = path.basename(pattern);
  const star = base.indexOf('*');
  let names: string[];
  try {
    names = fs.readdirSync(dir).sort();
  } catch {
    return [];
  }
  const match = star < 0 ? (n: string) => n === base : (n: string) => n.startsWith(base.slice(0, star)) && n.endsWith(base.slice(star + 1));
  const dirs: string[] = [];
  for (const n of names.filter(match)) {
    try {
      dirs.push(...ldConfDirs(fs.readFileSync(path.join(dir, n), 'utf8'), expandConfGlob));
    } catch { /* unreadable conf: the linker skips it too */ }
  }
  return dirs;
}

/** Every libssl the dynamic linker can load on this host. A short-lived client (curl) can
 * start, handshake and exit between two /proc scans; hooking the system's libssl at start
 * covers it from its first SSL_write. */
export function systemLibssl(confFile = '/etc/ld.so.conf', name = LIBSSL_NAME): string[] {
  let conf = '';
  try {
    conf = fs.readFileSync(confFile, 'utf8');
  } catch { /* no ld.so.conf: the defaults alone */ }
  const dirs = [...new Set([...ldConfDirs(conf, expandConfGlob), ...DEFAULT_LIB_DIRS])];
  const out: string[] = [];
  for (const d of dirs) {
    let names: string[];
    try {
      names = fs.readdirSync(d);
    } catch {
      continue;
    }
    for (const n of names.sort()) if (name.test(n)) out.push(path.join(d, n));
  }
  return out;
}

/** The file and file offset of a process address (from /proc/PID/maps text), or null. */
export function fileOffsetOf(maps: string, addr: bigint): { path: string; offset: number } | null {
  for (const line of maps.split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ ([0-9a-f]+) \S+ \d+\s+(\/.*)$/.exec(line);
    if (!m) continue;
    const lo = BigInt('0x' + m[1]);
    const hi = BigInt('0x' + m[2]);
    if (addr < lo || addr >= hi) continue;
    return { path: m[4].replace(/ \(deleted\)$/, ''), offset: Number(addr - lo + BigInt('0x' + m[3])) };
  }
  return null;
}

/** dev:inode of a file, the identity a uprobe hooks; null when it cannot be stat'ed. */
export function fileKey(p: string): string | null {
  try {
    const st = fs.statSync(p);
    return `${st.dev}:${st.ino}`;
  } catch {
    return null;
  }
}

export class TlsAttacher {
  /** dev:inode → handles (empty: looked at, exports no OpenSSL). */
  readonly hooked = new Map<string, { path: string; handles: number[] }>();
  scans = 0;
  /** Processes looked at (a full scan looks at all of them). */
  pidScans = 0;

  /** Hooks every SSL_*, gnutls_record_* and nghttp2 function `file` exports (only the TLS
   *  functions named in `only`, when given: a request names what it wants); returns how many
   *  were hooked. */
  attachFile(file: string, key: string, only?: ReadonlySet<string>): number {
    const handles = [...this.attachSsl(file, only), ...this.attachGnutls(file, only), ...(only ? [] : this.attachNghttp2(file))];
    this.hooked.set(key, { path: file, handles });
    return handles.length;
  }

  /** Attaches at the symbol's file offset (attachAt: the `_multi` twin first), or by name as a
   *  perf-event uprobe when the offset is not known. */
  private attachNamed(prog: string, file: string, func: string, ret: boolean, cookie = 0): number {
    const off = this.symbolOffset ? this.symbolOffset(file, func) : -1;
    if (off >= 0) return this.attachAt(prog, file, off, ret, cookie);
    return this.t.attachUprobe(prog, file, func, ret, -1, cookie);
  }

  private attachSsl(file: string, only?: ReadonlySet<string>): number[] {
    const handles: number[] = [];
    let cookie = -1;
    for (const [func, prog] of SSL_FUNCS) {
      if (only && !only.has(func)) continue;
      let enter: number;
      try {
        enter = this.attachNamed(prog, file, func, false);
      } catch {
        // No SSL_write: not OpenSSL at all (most executables) — spare the other ELF lookups.
        if (func === 'SSL_write') break;
        continue; // SSL_*_ex are missing before OpenSSL 1.1.1
      }
      // The SSL object's handshake-state and verify-result fields, for the handshake programs.
      if (cookie < 0) cookie = this.symbolOffset ? sslFieldCookie(file, this.symbolOffset) : 0;
      try {
        handles.push(enter, this.attachNamed(EXIT_PROG, file, func, true, cookie));
      } catch (e) {
        // An entry without its return would only leave stale calls behind.
        this.t.detach(enter);
        tlog.warn({ file, func, err: (e as Error).message }, 'uretprobe did not attach');
      }
    }
    const functions = handles.length / 2;
    // The SSL BIO's own read/write: the only place its plaintext passes (tls-bio.ts).
    const bio = functions && (!only || only.has('SSL_write')) ? this.attachSslBio(file) : [];
    handles.push(...bio);
    const handshake = functions && !only ? [...this.attachHandshake(file, SSL_HANDSHAKE_FUNCS, cookie), ...this.attachErrors(file)] : [];
    handles.push(...handshake);
    if (handles.length) tlog.info({ file, functions, sslBio: bio.length > 0, handshake: handshake.length > 0, sslFields: cookie > 0 }, 'OpenSSL hooked');
    return handles;
  }

  /** Handshake entries (and returns) of `funcs`; `cookie`: the SSL object's field offsets. A
   *  function missing (an older or trimmed library) leaves the rest. */
  private attachHandshake(file: string, funcs: ReadonlyArray<[string, string, boolean]>, cookie: number): number[] {
    const handles: number[] = [];
    for (const [func, prog, ret] of funcs) {
      let enter: number;
      try {
        enter = this.attachNamed(prog, file, func, false, cookie);
      } catch {
        continue;
      }
      if (!ret) { handles.push(enter); continue; }
      try {
        handles.push(this.attachNamed('tls_hs_exit', file, func, true, cookie), enter);
      } catch (e) {
        this.t.detach(enter);
        tlog.warn({ file, func, err: (e as Error).message }, 'uretprobe did not attach: handshake failures from it stay unseen');
      }
    }
    return handles;
  }

  /** The errors an OpenSSL file raises: a shared libssl's calls into libcrypto's error queue, at
   *  its PLT stubs (pltStubs: not every error libcrypto raises); with OpenSSL linked in (node),
   *  the function itself. */
  private attachErrors(file: string): number[] {
    const handles: number[] = [];
    let stubs: Map<string, number>;
    try {
      stubs = pltStubs(file, ERR_FUNCS);
    } catch {
      stubs = new Map();
    }
    for (const func of ERR_FUNCS) {
      try {
        const stub = stubs.get(func);
        if (stub !== undefined) handles.push(this.attachAt('tls_err_raised', file, stub, false));
        else if (func === ERR_FUNCS[0]) handles.push(this.attachNamed('tls_err_raised', file, func, false));
      } catch { /* not in this file: no error reasons, failures are still seen */ }
    }
    return handles;
  }

  /** GnuTLS's record functions: the OpenSSL entry programs and the shared return program. */
  private attachGnutls(file: string, only?: ReadonlySet<string>): number[] {
    const handles: number[] = [];
    const names: string[] = [];
    for (const [i, [func, prog]] of GNUTLS_FUNCS.entries()) {
      if (only && !only.has(func)) continue;
      let enter: number;
      try {
        enter = this.attachNamed(prog, file, func, false);
      } catch {
        if (i === 0) break; // no gnutls_record_send: no GnuTLS here (most files)
        continue; // send2 is 3.6.3+, the others may be missing from a trimmed build
      }
      try {
        handles.push(enter, this.attachNamed(EXIT_PROG, file, func, true));
        names.push(func);
      } catch (e) {
        this.t.detach(enter);
        tlog.warn({ file, func, err: (e as Error).message }, 'uretprobe did not attach');
      }
    }
    if (names.length && !only) handles.push(...this.attachHandshake(file, GNUTLS_HANDSHAKE_FUNCS, 0));
    if (names.length) tlog.info({ file, functions: names }, 'GnuTLS hooked');
    return handles;
  }

  private attachSslBio(file: string): number[] {
    let f: SslBioFuncs | null;
    try {
      f = sslBioFuncs(file);
    } catch (e) {
      f = null;
      tlog.warn({ file, err: (e as Error).message }, 'SSL BIO functions not read');
    }
    if (!f) return [];
    const handles: number[] = [];
    for (const [off, prog] of [[f.read, 'tls_read_ex_enter'], [f.write, 'tls_write_ex_enter']] as const) {
      let enter = -1;
      try {
        enter = this.attachAt(prog, file, off, false);
        handles.push(this.attachAt(EXIT_PROG, file, off, true), enter);
      } catch (e) {
        // An entry without its return would only leave stale calls behind.
        if (enter >= 0) this.t.detach(enter);
        tlog.warn({ file, offset: off, err: (e as Error).message }, 'SSL BIO function not hooked: plaintext through BIO_f_ssl stays unseen');
      }
    }
    return handles;
  }

  /** A uprobe at a file offset: the program's uprobe_multi twin where the kernel has them (6.6+),
   *  else a perf-event uprobe. A perf-event uprobe's close holds the kernel's global event_mutex
   *  through a tasks-trace RCU grace period (perf_uprobe_destroy), so every agent on the host
   *  detached them one at a time: with four agents stopping at once none had exited 60 s after
   *  SIGTERM, every thread in perf_uprobe_destroy. A uprobe_multi link's release waits without
   *  that lock, and concurrent releases share grace periods. After the capability drop the kernel
   *  creates perf-event uprobes for CAP_SYS_ADMIN only: there the twin is the only way. */
  private attachAt(prog: string, file: string, offset: number, ret: boolean, cookie = 0): number {
    let multiErr: Error | undefined;
    if (!this.noMulti) {
      try {
        return this.t.attachUprobe(`${prog}_multi`, file, offset, ret, -1, cookie);
      } catch (e) {
        // Loaded without its twins (a kernel without uprobe_multi): perf-event uprobes from now on.
        if (/^no program /.test((e as Error).message)) this.noMulti = true; else multiErr = e as Error;
      }
    }
    try {
      return this.t.attachUprobe(prog, file, offset, ret, -1, cookie);
    } catch (e) {
      throw multiErr ? new Error(`${(e as Error).message}; ${multiErr.message}`) : e;
    }
  }
  private noMulti = false;

  /** A library file's callback offsets inside nghttp2_session, for finding applications'
   *  header callbacks (0: unknown, e.g. an executable, which cannot be loaded to look). */
  private cookieFor(file: string): number {
    if (!LIBNGHTTP2_NAME.test(path.basename(file)) || !this.layout) return 0;
    try {
      const l = this.layout(file);
      return l.onHeader * 2 ** 32 + l.onHeader2;
    } catch (e) {
      tlog.warn({ file, err: (e as Error).message }, 'nghttp2 session layout not found: received headers come from the wire only');
      return 0;
    }
  }

  private attachNghttp2(file: string): number[] {
    const handles: number[] = [];
    const names: string[] = [];
    let cookie = 0;
    for (const [i, [func, prog, ret]] of H2_FUNCS.entries()) {
      let enter: number;
      try {
        if (i === 0) {
          // A presence check first: the layout probe (dlopen) runs only for real nghttp2 files.
          enter = this.attachNamed(prog, file, func, false);
          cookie = this.cookieFor(file);
          if (cookie) {
            this.t.detach(enter);
            enter = this.attachNamed(prog, file, func, false, cookie);
          }
        } else {
          enter = this.attachNamed(prog, file, func, false, prog === 'h2_mem_recv' ? cookie : 0);
        }
      } catch {
        if (i === 0) break; // no nghttp2 here
        continue; // older nghttp2 (no *2 variants), or not node
      }
      if (ret) {
        try {
          handles.push(this.attachNamed(ret, file, func, true));
        } catch (e) {
          this.t.detach(enter);
          tlog.warn({ file, func, err: (e as Error).message }, 'uretprobe did not attach');
          continue;
        }
      }
      handles.push(enter);
      names.push(func.startsWith('_ZN4node') ? 'node OnHeaderCallback' : func);
    }
    if (names.length) tlog.info({ file, functions: names, callbackDiscovery: !!cookie }, 'nghttp2 hooked');
    return handles;
  }

  /** Header callbacks the kernel side found in applications' nghttp2 sessions (map h2_cbs):
   *  each is hooked once per file and offset, for every process running that file. */
  readonly callbacks = new Map<string, number>();
  hookCallbacks(): void {
    let keys: Buffer[];
    try {
      keys = this.t.keys('h2_cbs');
    } catch {
      return;
    }
    for (const k of keys) {
      const addr = k.readBigUInt64LE(tg_tls_h2_cb.addr);
      const pid = k.readUInt32LE(tg_tls_h2_cb.pid);
      const version = k.readUInt32LE(tg_tls_h2_cb.version);
      const seen = `${pid}:${addr}`;
      if (this.seenCbs.has(seen)) continue;
      this.seenCbs.add(seen);
      let maps: string;
      try {
        maps = fs.readFileSync(`/proc/${pid}/maps`, 'latin1');
      } catch {
        continue; // exited
      }
      const where = fileOffsetOf(maps, addr);
      if (!where) continue;
      // The process's own view of the file; the plain path when it is the same file (the
      // kernel refuses uprobes through /proc/PID/root magic links: EACCES).
      const inRoot = path.join(`/proc/${pid}/root`, where.path);
      const fk = fileKey(inRoot);
      if (!fk) continue;
      const file = fileKey(where.path) === fk ? where.path : inRoot;
      const id = `${fk}@${where.offset}`;
      if (this.callbacks.has(id)) continue;
      const prog = version === 2 ? 'h2_on_header2' : 'h2_on_header1';
      try {
        this.callbacks.set(id, this.attachLate(prog, file, where.offset));
        tlog.info({ file: where.path, offset: where.offset, version }, 'nghttp2 header callback hooked');
      } catch (e) {
        this.callbacks.set(id, -1);
        tlog.warn({ file: where.path, offset: where.offset, err: (e as Error).message }, 'header callback did not attach');
      }
    }
  }
  private readonly seenCbs = new Set<string>();

  /** A uprobe found after start-up (attachAt: the uprobe_multi twin first). */
  private attachLate(prog: string, file: string, offset: number): number {
    return this.attachAt(prog, file, offset, false);
  }

  constructor(
    private readonly t: NativeUprobeTracer,
    private readonly layout?: (file: string) => { onHeader: number; onHeader2: number },
    private readonly symbolOffset?: (file: string, func: string) => number,
  ) {}

  private consider(file: string, pidRoot: string): void {
    // A process in another mount namespace names files from its own root.
    const candidates = [file, path.join(pidRoot, file)];
    for (const c of candidates) {
      const key = fileKey(c);
      if (!key) continue;
      if (!this.hooked.has(key)) this.attachFile(c, key);
      return;
    }
  }

  /** The libssl, libgnutls and libnghttp2 copies the dynamic linker would load (symlinks resolve to one inode). */
  scanSystem(): void {
    for (const lib of [...systemLibssl(), ...systemLibssl(undefined, LIBGNUTLS_NAME), ...systemLibssl(undefined, LIBNGHTTP2_NAME)]) {
      const key = fileKey(lib);
      if (key && !this.hooked.has(key)) this.attachFile(fs.realpathSync(lib), key);
    }
  }

  /** One pass over /proc: every process's executable and libssl copies. */
  scan(): void {
    this.scans++;
    let pids: string[];
    try {
      pids = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d));
    } catch {
      return;
    }
    for (const pid of pids) this.scanPid(pid);
  }

  /** One process's executable and libssl copies; `mapsOnly`: its libraries alone (a process
   *  looked at since its exec runs the same executable). False when the process is gone. */
  scanPid(pid: string | number, mapsOnly = false): boolean {
    this.pidScans++;
    const root = `/proc/${pid}/root`;
    try {
      if (!mapsOnly) {
        const exe = fs.readlinkSync(`/proc/${pid}/exe`);
        if (!exe.endsWith(' (deleted)')) {
          const key = fileKey(`/proc/${pid}/exe`);
          if (key && !this.hooked.has(key)) this.attachFile(fs.existsSync(exe) && fileKey(exe) === key ? exe : `/proc/${pid}/exe`, key);
        }
      }
      for (const lib of libsslPaths(fs.readFileSync(`/proc/${pid}/maps`, 'latin1'))) this.consider(lib, root);
      return true;
    } catch {
      /* kernel threads have no exe; processes exit while we look */
      return false;
    }
  }

  hookedFiles(): string[] {
    return [...this.hooked.values()].filter((h) => h.handles.length).map((h) => h.path);
  }
}

function objectPath(): string {
  // native/build/Release/telegen_native.node → repository root
  return path.join(path.dirname(nativeAddonPath()), '..', '..', '..', 'build', 'bpf', 'tls.bpf.o');
}

// The OpenSSL object writes every counter of the shared enum but the Go tracer's links; the
// handshake counters are telegen.tls.handshakes, not records.
const STAT_NAMES = statNames(tg_tls_stat, 'TG_TLS_STAT_').filter((s) => s.name !== 'links');
const RECORD_STATS = STAT_NAMES.filter((s) => !s.name.startsWith('hs_'));

/** A TLS tracer whose new targets come from requests (the privilege-separated loader): no
 *  periodic /proc scan, `attach` hooks one file a request named, once per inode. */
export interface RequestedTlsTracer extends RunningTracer {
  attach(file: string, key: string, symbols: ReadonlySet<string>): { attached: number; already: boolean };
}

/** After an exec, when to look at the process again: libssl is often dlopen'ed after exec
 *  (Python's ssl module, curl's backends, node addons), at start-up or at the first request. */
const FOLLOW_UP_MS = [200, 1000, 5000];

/** New processes found from the Go tracer's exec events (bpf/go_exec.bpf.c: every executable
 *  not looked at yet) instead of reading every process's maps each `rescan_ms`: only the new
 *  pid's maps are read, at exec and FOLLOW_UP_MS later. A full scan stays as a safety net every
 *  `safetyMs` (a known executable that dlopens a libssl copy not hooked yet raises no event) and
 *  at once when the exec ring dropped events. Without exec events (Go tracer off, or its
 *  object refused) every tick is a full scan, as before. */
function followExecs(attacher: TlsAttacher, tickMs: number, safetyMs: number): { stop(): void } {
  let lastFull = Date.now();
  let missed = false;
  const timers = new Set<NodeJS.Timeout>();
  const look = (pid: number, mapsOnly: boolean): boolean => {
    try {
      return attacher.scanPid(pid, mapsOnly);
    } catch (e) {
      tlog.error({ err: (e as Error).message, pid }, 'scan failed');
      return false;
    }
  };
  // Follow-ups read the maps alone (the executable was looked at on the exec) and stop once the
  // process is gone: most exec'd processes are short-lived commands.
  const followUp = (pid: number, i: number) => {
    const t = setTimeout(() => {
      timers.delete(t);
      if (look(pid, true) && i + 1 < FOLLOW_UP_MS.length) followUp(pid, i + 1);
    }, FOLLOW_UP_MS[i] - (i ? FOLLOW_UP_MS[i - 1] : 0));
    t.unref();
    timers.add(t);
  };
  const listener: ExecListener = {
    exec(pid) {
      if (look(pid, false)) followUp(pid, 0);
    },
    missed() { missed = true; },
  };
  const tick = () => {
    const now = Date.now();
    // The Go tracer starts after this one and may stop: asked on every tick.
    if (goExecActive() && !missed && now - lastFull < safetyMs) return;
    missed = false;
    lastFull = now;
    try {
      attacher.scan();
    } catch (e) {
      tlog.error({ err: (e as Error).message }, 'scan failed');
    }
  };
  onGoExec(listener);
  const timer = setInterval(tick, tickMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      offGoExec(listener);
      for (const t of timers) clearTimeout(t);
    },
  };
}

export const tlsTracer: TracerFactory = (ctx: TracerContext): RunningTracer | null => openTlsTracer(ctx, true);

export function openTlsTracer(ctx: TracerContext, rescan: false): RequestedTlsTracer | null;
export function openTlsTracer(ctx: TracerContext, rescan: boolean): RunningTracer | null;
export function openTlsTracer(ctx: TracerContext, rescan: boolean): RequestedTlsTracer | null {
  const cfg = ctx.cfg.tracers.tls;
  if (!cfg.enabled || process.env.TELEGEN_TLS === '0') return null;
  if (!ctx.cfg.tracers.socket.enabled) throw new Error('the TLS tracer writes into the socket tracer\'s ring: enable tracers.socket');
  const Native = (loadNative() as unknown as { UprobeTracer: (new () => NativeUprobeTracer) & { nghttp2Layout(file: string): { onHeader: number; onHeader2: number }; symbolOffset(file: string, func: string): number } }).UprobeTracer;
  const t = new Native();
  const rep = t.open(objectPath(), {
    rodata: { self_pid: ctx.selfPid ?? process.pid, target_pid: ctx.cfg.tracers.socket.target_pid ?? 0, capture_max: cfg.capture_max, capture_tail: cfg.capture_tail },
    // tg_calls: which socket the thread touched last, kept by the socket tracer's syscall programs.
    shareMaps: ['tg_conns', 'tg_ring', 'tg_calls'],
  });
  for (const f of rep.failed) tlog.warn({ program: f.name, err: f.error }, 'program did not attach; TLS attribution falls back to known SSL objects');
  const attacher = new TlsAttacher(t, (f) => Native.nghttp2Layout(f), (f, fn) => Native.symbolOffset(f, fn));
  attacher.scanSystem();
  attacher.scan();
  const events = rescan ? followExecs(attacher, cfg.rescan_ms, cfg.safety_rescan_ms) : undefined;
  // Callbacks found in sessions are hooked quickly: the next header of that session needs it.
  const cbTimer = setInterval(() => attacher.hookCallbacks(), 250);
  cbTimer.unref();

  const meter = ctx.signals.meter;
  const gauge = meter.createObservableCounter('telegen.tls.records', { description: 'TLS tracer kernel counters (plaintext records, ring full, no connection, faults, truncated)', unit: '{record}' });
  // The last counters read: the agent's final metrics export runs after stop() closed the object.
  let stats: number[] = [];
  let closed = false;
  const readStats = () => (closed ? stats : (stats = t.stats('tls_stats')));
  gauge.addCallback((r) => {
    const v = readStats();
    for (const { name, index } of RECORD_STATS) r.observe(v[index] ?? 0, { 'telegen.counter': name });
  });
  const handshakes = meter.createObservableCounter('telegen.tls.handshakes', { description: 'TLS handshakes of OpenSSL and GnuTLS by outcome (ok: the connection read plaintext or was freed with its handshake complete; failed: one span each, error.type tls.handshake_failed) and side', unit: '{handshake}' });
  const hsAttrs = HANDSHAKE_STATS.map(([, outcome, side]) => ({ 'telegen.tls.handshake.outcome': outcome, 'telegen.tls.side': side }));
  // The privilege-separated loader runs this without an agent: its worker reads the ring (and
  // leaves the handshake records out).
  const agent = ctx.agent as typeof ctx.agent | undefined;
  let firstFailure = true;
  const failures = agent && new HandshakeFailures(agent.clock, (span, conn) => {
    if (firstFailure) { firstFailure = false; tlog.info({ pid: conn.pid, status: span.status.message }, 'first TLS handshake failure'); }
    agent.correlate?.(span, conn);
  });
  // Rejections the host decides (HandshakeFailures) count as failed next to the kernel's.
  const SIDE_ROLE: Record<string, number> = { client: 1, server: 2, unknown: 0 };
  handshakes.addCallback((r) => {
    const v = readStats();
    HANDSHAKE_STATS.forEach(([index, outcome, side], i) => r.observe((v[index] ?? 0) + (outcome === 'failed' && failures ? failures.rejected[SIDE_ROLE[side]] : 0), hsAttrs[i]));
  });
  const kernel = agent?.kernel;
  let hsTimer: NodeJS.Timeout | undefined;
  if (kernel && failures) {
    kernel.tlsHandshake = (dv, off, conn, decoder) => { failures.onRecord(dv, off, conn, decoder); };
    hsTimer = setInterval(() => failures.tick((id) => kernel.isOpen(id)), 500);
    hsTimer.unref();
  }
  const untrack = trackTracerObject(ctx.metrics, 'tls', t, 'tls_stats', STAT_NAMES);
  const files = attacher.hookedFiles();
  return {
    name: 'tls',
    detail: `OpenSSL/GnuTLS hooked in ${files.length} file(s): ${files.map((f) => path.basename(f)).join(', ') || 'none yet'}`,
    attach(file, key, symbols) {
      if (attacher.hooked.has(key)) return { attached: 0, already: true };
      return { attached: attacher.attachFile(file, key, symbols), already: false };
    },
    stop(): void {
      events?.stop();
      if (kernel) kernel.tlsHandshake = undefined;
      clearInterval(hsTimer);
      clearInterval(cbTimer);
      untrack();
      readStats();
      closed = true;
      t.close();
    },
  };
}
