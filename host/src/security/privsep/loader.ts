// The privileged half of `telegen run` under security.privilege_separation: it loads and attaches
// the socket tracer, holds its maps, and never reads a captured byte. The worker (worker.ts, an
// unprivileged uid with no capabilities) gets the map fds over this process's Unix socket and
// does everything else. See docs/security.md.
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { spawn, ChildProcess } from 'child_process';
import { Config, ConfigError } from '../../config';
import { log } from '../../log';
import { ensureMounts } from '../../doctor/probe';
import { dropToRuntimeCapabilities } from '../caps';
import { AttachReport } from '../../native';
import { metrics as otelMetrics } from '@opentelemetry/api';
import type { Agent, RunningTracer, TracerStatus } from '../../agent';
import type { Signals } from '../../signals';
import { SelfMetrics } from '../../metrics/self';
import { privsepNative, loaderSocketTracer, LoaderSocketTracer } from './native';
import { encodeFrame, frameReader, parseRequest, policyRefusal, HostView, MAX_REQUEST_BYTES, PROTOCOL_VERSION, Reply } from './protocol';

const llog = log.child({ component: 'loader' });

/** Order of the fds in the worker's hello frame. */
export const HANDED_FDS = ['ring', 'stats', 'conns'] as const;

export interface Hello {
  v: number;
  role: 'worker' | 'admin';
  config?: Config;
  socket?: { ok: true; report: AttachReport; fds: readonly string[] } | { ok: false; error: string };
  /** Tracers running in the loader besides the socket tracer (their records share its ring). */
  tracers?: TracerStatus[];
}

/** uid/gid of `user` from /etc/passwd (a number is taken as the uid). Refuses root. */
export function resolveUser(user: string | number, group?: number, passwd = '/etc/passwd'): { uid: number; gid: number } {
  let uid = typeof user === 'number' ? user : -1;
  let gid = group ?? -1;
  const lines = fs.readFileSync(passwd, 'utf8').split('\n').map((l) => l.split(':'));
  const row = lines.find((f) => (typeof user === 'number' ? Number(f[2]) === user : f[0] === user));
  if (row) { uid = Number(row[2]); if (gid < 0) gid = Number(row[3]); }
  if (uid < 0) throw new ConfigError(`security.worker_user: no user "${user}" in ${passwd}`);
  if (gid < 0) gid = uid;
  if (uid === 0 || gid === 0) throw new ConfigError('security.worker_user: the worker must not run as uid or gid 0');
  return { uid, gid };
}

function hostView(protectedPids: Set<number>): HostView {
  return {
    protectedPids,
    pidExists: (pid) => fs.existsSync(`/proc/${pid}`),
    mappedFiles: (pid) => {
      try {
        return fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')
          .map((l) => l.split(/\s+/).slice(5).join(' ')).filter((p) => p.startsWith('/'));
      } catch { return []; }
    },
    regularFileInRoot: (pid, file) => {
      // Walk the path component by component under the process's root, refusing symlinks: a
      // link could point outside that root (the container's view), and we follow none.
      let cur = `/proc/${pid}/root`;
      try {
        for (const part of file.split('/').filter(Boolean)) {
          cur = path.join(cur, part);
          const st = fs.lstatSync(cur);
          if (st.isSymbolicLink()) return false;
        }
        return fs.lstatSync(cur).isFile();
      } catch { return false; }
    },
  };
}

/**
 * Loader main: spawn the worker first (its pid goes into the BPF program as the process never
 * traced, so its own exports are not captured), load and attach, hand the fds over, drop to the
 * run-time capabilities, then serve attach requests until SIGTERM.
 */
export async function runLoader(cfg: Config): Promise<void> {
  if (process.getuid?.() !== 0) throw new ConfigError('security.privilege_separation: the loader must start as root (it sets the worker\'s uid)');
  const sec = cfg.security;
  const user = resolveUser(sec.worker_user, sec.worker_group);
  const native = privsepNative();

  // The worker writes exports, the API token and its state here.
  fs.mkdirSync(cfg.data_dir, { recursive: true });
  try { fs.chownSync(cfg.data_dir, user.uid, user.gid); } catch (e) {
    throw new ConfigError(`security.privilege_separation: cannot hand ${cfg.data_dir} to uid ${user.uid} (${(e as Error).message}); start-up needs CAP_CHOWN, CAP_SETUID and CAP_SETGID besides the seed's set`);
  }
  const mounted = ensureMounts();
  if (mounted.length) llog.info({ mounted }, 'mounted kernel filesystems');

  const sockPath = sec.loader_socket ?? `/run/telegen/loader-${process.pid}.sock`;
  fs.mkdirSync(path.dirname(sockPath), { recursive: true, mode: 0o755 });
  try { fs.unlinkSync(sockPath); } catch { /* not there */ }

  // no_new_privs and an empty bounding set on this thread are inherited by the fork and kept
  // across the worker's exec. Without CAP_SETPCAP (a DaemonSet) the bounding set stays; with
  // no_new_privs and a non-root uid it could not be used anyway.
  try { native.setNoNewPrivs(true); } catch { native.setNoNewPrivs(false); }
  const cli = process.argv[1];
  const worker: ChildProcess = spawn(process.execPath, [...process.execArgv, cli, 'run'], {
    uid: user.uid, gid: user.gid, stdio: 'inherit',
    env: { ...process.env, TELEGEN_PRIVSEP_ROLE: 'worker', TELEGEN_LOADER_SOCKET: sockPath },
  });
  const workerPid = worker.pid ?? -1;
  // Registered now: a worker that dies while we load must not go unnoticed.
  let early: [number | null, NodeJS.Signals | null] | undefined;
  let onWorkerExit = (code: number | null, signal: NodeJS.Signals | null) => { early = [code, signal]; };
  worker.on('exit', (code, signal) => onWorkerExit(code, signal));
  llog.info({ worker: workerPid, uid: user.uid, gid: user.gid, socket: sockPath }, 'worker started');

  let tracer: LoaderSocketTracer | undefined;
  let socketState: Hello['socket'];
  let fds: number[] = [];
  if (cfg.tracers.socket.enabled) {
    const sc = cfg.tracers.socket;
    try {
      tracer = loaderSocketTracer();
      const report = tracer.open({ ringBytes: sc.ring_bytes, captureMax: sc.capture_max, connMax: sc.conn_max, selfPid: workerPid, targetPid: sc.target_pid, drain: false }, () => undefined);
      const m = tracer.mapFds();
      fds = HANDED_FDS.map((k) => m[k]);
      socketState = { ok: true, report, fds: HANDED_FDS };
      llog.info({ attached: report.attached.length, progIds: report.progIds, failed: report.failed.map((f) => f.name) }, 'socket tracer loaded; the worker drains it');
    } catch (e) {
      socketState = { ok: false, error: (e as Error).message };
      llog.error({ err: (e as Error).message }, 'socket tracer could not start; run `telegen doctor`');
    }
  } else socketState = { ok: false, error: 'disabled in config' };

  // The TLS tracer only attaches uprobes and scans /proc for binaries to hook: loader work. Its
  // plaintext records go into the socket tracer's ring, which the worker drains.
  const loaderTracers: TracerStatus[] = [];
  const running: RunningTracer[] = [];
  if (socketState.ok && cfg.tracers.tls.enabled && process.env.TELEGEN_TLS !== '0') {
    try {
      const { tlsTracer } = await import('../../tracers/tls');
      const t = await tlsTracer({
        cfg, selfPid: workerPid, metrics: new SelfMetrics(), agent: undefined as unknown as Agent,
        // The loader has no exporter: the TLS tracer's kernel counters go to the API's no-op meter.
        signals: { meter: otelMetrics.getMeter('telegen-loader') } as unknown as Signals,
      });
      if (t) {
        running.push(t);
        loaderTracers.push({ name: 'tls', ok: true, detail: `in the loader: ${t.detail}` });
        llog.info({ detail: t.detail }, 'TLS tracer running in the loader');
      }
    } catch (e) {
      loaderTracers.push({ name: 'tls', ok: false, detail: (e as Error).message });
      llog.error({ tracer: 'tls', err: (e as Error).message }, 'TLS tracer could not start in the loader');
    }
  }

  const view = hostView(new Set([process.pid, workerPid]));
  let handedOver = false;
  let workerSock: net.Socket | undefined;
  const sessions = new Set<net.Socket>();
  // Listening only now that everything is loaded: loading blocks this thread for seconds, and the
  // worker retries its connect until the socket is there.
  const server = net.createServer();
  server.on('connection', (sock) => {
    sessions.add(sock);
    sock.on('close', () => sessions.delete(sock));
    sock.on('error', () => sock.destroy());
    const fd = (sock as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;
    let cred: { pid: number; uid: number; gid: number };
    try { cred = native.peerCred(fd); } catch { sock.destroy(); return; }
    if (cred.pid === workerPid && !handedOver) {
      handedOver = true;
      workerSock = sock;
      const hello: Hello = { v: PROTOCOL_VERSION, role: 'worker', config: cfg, socket: socketState, tracers: loaderTracers };
      try { native.sendFds(fd, socketState?.ok ? fds : [], encodeFrame(hello)); } catch (e) {
        llog.error({ err: (e as Error).message }, 'could not hand the fds to the worker'); sock.destroy(); return;
      }
    } else if (cred.uid === 0) {
      // root may ask (operators, tests); root could do all of it anyway, but gets no fds
      sock.write(encodeFrame({ v: PROTOCOL_VERSION, role: 'admin' } satisfies Hello));
    } else {
      llog.warn({ peer: cred }, 'loader socket: connection refused');
      sock.end(encodeFrame({ ok: false, error: 'refused', reason: `uid ${cred.uid} (pid ${cred.pid}) may not use the loader` } satisfies Reply));
      return;
    }
    const peer = cred;
    sock.on('data', frameReader(MAX_REQUEST_BYTES, (body) => {
      const reply = handle(body, view);
      if (!reply.ok) llog.warn({ peer, error: reply.error, reason: reply.reason }, 'loader request refused');
      sock.write(encodeFrame(reply));
    }, (len) => {
      llog.warn({ peer, len }, 'loader request refused: frame too large');
      sock.end(encodeFrame({ ok: false, error: 'malformed', reason: `frame of ${len} bytes exceeds ${MAX_REQUEST_BYTES}` } satisfies Reply));
    }));
  });

  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(sockPath, () => resolve()); });
  // Anyone may connect; who they are is checked per connection with SO_PEERCRED.
  fs.chmodSync(sockPath, 0o666);
  llog.info({ socket: sockPath }, 'loader listening');

  // CAP_SETUID was only needed for the spawn: from here on only what attaching needs.
  if (process.env.TELEGEN_DROP_CAPABILITIES !== '0') {
    try {
      const r = dropToRuntimeCapabilities();
      llog.info({ kept: r.kept, threads: r.threads, unreachable: r.unreachable }, 'loader capabilities dropped to the run-time set');
    } catch (e) { llog.warn({ err: (e as Error).message }, 'loader: could not drop capabilities'); }
  }

  let stopping = false;
  const finish = async (code: number) => {
    for (const t of running) {
      try { await t.stop(); } catch (e) { llog.error({ tracer: t.name, err: (e as Error).message }, 'tracer stop failed'); }
    }
    try { tracer?.close(); } catch (e) { llog.error({ err: (e as Error).message }, 'socket tracer close failed'); }
    for (const s of sessions) s.destroy();
    server.close();
    try { fs.unlinkSync(sockPath); } catch { /* gone */ }
    llog.info({ code }, 'loader stopped');
    process.exit(code);
  };
  onWorkerExit = (code, signal) => {
    if (stopping) { void finish(code === 0 ? 0 : 1); return; }
    llog.error({ code, signal }, 'worker exited; stopping');
    void finish(1);
  };
  if (early) onWorkerExit(...early);
  const stop = (sig: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    llog.info({ signal: sig }, 'stopping: waiting for the worker to flush');
    // Without CAP_KILL, root cannot signal another uid: the stop goes over the socket, and a
    // worker that never connected had nothing to flush.
    if (workerSock && !workerSock.destroyed) workerSock.write(encodeFrame({ op: 'stop' }));
    else void finish(0);
    // The worker flushes within its export shutdown deadline; never wait forever for it. Closing
    // the socket stops it too (it treats a lost loader as fatal).
    setTimeout(() => { llog.error('worker did not stop in time; leaving it to notice the closed socket'); void finish(1); }, 30_000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => llog.info('SIGHUP: restart to apply config changes under privilege separation'));
}

/** One request: shape, then policy. A valid uprobe request is still refused: the loader's TLS
 *  tracer finds and hooks processes by itself (docs/security.md) and takes no requests yet. */
export function handle(body: Buffer, view: HostView): Reply {
  const req = parseRequest(body);
  if ('ok' in req) return req;
  const why = policyRefusal(req, view);
  if (why) return { ok: false, id: req.id, error: 'refused', reason: why };
  if (req.op === 'ping') return { ok: true, id: req.id, pid: process.pid };
  return { ok: false, id: req.id, error: 'refused', reason: 'valid, but not served yet: the loader\'s TLS tracer hooks processes from its own /proc scan (tracers.tls.rescan_ms)' };
}
