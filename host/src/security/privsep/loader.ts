// The privileged half of `telegen run` under security.privilege_separation: it loads and attaches
// the socket tracer, holds its maps, and never reads a captured byte. The worker (worker.ts, an
// unprivileged uid with no capabilities) gets the map fds over this process's Unix socket and
// does everything else. See docs/security.md.
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { spawn, ChildProcess } from 'child_process';
import { Config, ConfigError } from '../../config';
import { log, setLogLevel } from '../../log';
import { ensureMounts } from '../../doctor/probe';
import { dropToRuntimeCapabilities } from '../caps';
import { AttachReport } from '../../native';
import { metrics as otelMetrics } from '@opentelemetry/api';
import type { Agent, RunningTracer, TracerStatus } from '../../agent';
import type { Signals } from '../../signals';
import { SelfMetrics } from '../../metrics/self';
import { privsepNative, loaderSocketTracer, LoaderSocketTracer } from './native';
import { encodeFrame, frameReader, parseRequest, policyRefusal, uprobeTargets, HostView, RateLimit, MAX_REQUEST_BYTES, PROTOCOL_VERSION, Reply } from './protocol';
import { fileKey, type RequestedTlsTracer } from '../../tracers/tls';
import { describeProcess } from './describe';
import { takeEarlyHangup } from '../../cli/hangup';

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
  /** Tracers whose new targets the worker asks for with list_targets/attach_uprobe. */
  serves?: string[];
  /** The TCP tracer, loaded here and drained by the worker: its fds' places in the frame's fds. */
  tcp?: { report: import('../../tracers/bpf-object').AttachReport; ringBytes: number; statsKeys: number; histKeys: number; fds: { ring: number; stats: number; hist: number } };
}

/** Files hooked on request, at most: each is a set of uprobes held for the agent's life. */
export const MAX_REQUESTED_FILES = 256;

/** How `telegen loader` was started: `spawn` (one `telegen run`, the loader forks the worker as
 *  security.worker_user) or `pod` (`telegen loader --socket`: the worker is another container's
 *  process, started unprivileged by the runtime, and is recognised by its uid). */
export type LoaderMode = { kind: 'spawn' } | { kind: 'pod'; socket: string };

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

function inodeOf(p: string): number | null {
  try { return fs.statSync(p).ino; } catch { return null; }
}

function hostView(protectedPids: Set<number>): HostView {
  const mapsRows = (pid: number) => {
    try {
      return fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').map((l) => l.split(/\s+/));
    } catch { return []; }
  };
  return {
    protectedPids,
    pidExists: (pid) => fs.existsSync(`/proc/${pid}`),
    mappedFiles: (pid) => [...new Set(mapsRows(pid).map((f) => f.slice(5).join(' ')).filter((p) => p.startsWith('/')))],
    mappedInodes: (pid, file) => [...new Set(mapsRows(pid).filter((f) => f.slice(5).join(' ') === file).map((f) => Number(f[4])))],
    executable: (pid) => {
      try {
        const exe = fs.readlinkSync(`/proc/${pid}/exe`);
        return exe.endsWith(' (deleted)') ? null : exe;
      } catch { return null; }
    },
    executableInode: (pid) => inodeOf(`/proc/${pid}/exe`),
    regularFileInRoot: (pid, file) => {
      // Walk the path component by component under the process's root, refusing symlinks: a
      // link could point outside that root (the container's view), and we follow none.
      let cur = `/proc/${pid}/root`;
      try {
        for (const part of file.split('/').filter(Boolean)) {
          cur = path.join(cur, part);
          const st = fs.lstatSync(cur);
          if (st.isSymbolicLink()) return null;
        }
        const st = fs.lstatSync(cur);
        return st.isFile() ? { ino: st.ino } : null;
      } catch { return null; }
    },
  };
}

/** What the loader runs for the worker: the socket tracer (fds handed over) and the TLS tracer
 *  (uprobes; its records share the socket tracer's ring). */
interface Loaded {
  tracer?: LoaderSocketTracer;
  socketState: Hello['socket'];
  fds: number[];
  running: RunningTracer[];
  statuses: TracerStatus[];
  tls?: RequestedTlsTracer;
  tcp?: Hello['tcp'];
}

async function loadForWorker(cfg: Config, workerPid: number): Promise<Loaded> {
  const out: Loaded = { socketState: { ok: false, error: 'disabled in config' }, fds: [], running: [], statuses: [] };
  if (cfg.tracers.socket.enabled) {
    const sc = cfg.tracers.socket;
    try {
      out.tracer = loaderSocketTracer();
      const report = out.tracer.open({ ringBytes: sc.ring_bytes, captureMax: sc.capture_max, captureTail: sc.capture_tail, connMax: sc.conn_max, selfPid: workerPid, targetPid: sc.target_pid, iovWalk: sc.iov_walk, drain: false }, () => undefined);
      const m = out.tracer.mapFds();
      out.fds = HANDED_FDS.map((k) => m[k]);
      out.socketState = { ok: true, report, fds: HANDED_FDS };
      llog.info({ attached: report.attached.length, progIds: report.progIds, failed: report.failed.map((f) => f.name) }, 'socket tracer loaded; the worker drains it');
    } catch (e) {
      out.socketState = { ok: false, error: (e as Error).message };
      llog.error({ err: (e as Error).message }, 'socket tracer could not start; run `telegen doctor`');
    }
  }
  // The TLS tracer only attaches uprobes: loader work. At start it hooks the system's libssl and
  // what runs now; processes started later are hooked when the worker asks (attach_uprobe), not
  // by a /proc rescan of its own.
  if (out.socketState?.ok && cfg.tracers.tls.enabled && process.env.TELEGEN_TLS !== '0') {
    try {
      const { openTlsTracer } = await import('../../tracers/tls');
      const t = openTlsTracer({
        cfg, selfPid: workerPid, metrics: new SelfMetrics(), agent: undefined as unknown as Agent,
        // The loader has no exporter: the TLS tracer's kernel counters go to the API's no-op meter.
        signals: { meter: otelMetrics.getMeter('telegen-loader') } as unknown as Signals,
      }, false);
      if (t) {
        out.running.push(t);
        out.tls = t;
        out.statuses.push({ name: 'tls', ok: true, detail: `in the loader: ${t.detail}; later processes on the worker's request` });
        llog.info({ detail: t.detail }, 'TLS tracer running in the loader');
      }
    } catch (e) {
      out.statuses.push({ name: 'tls', ok: false, detail: (e as Error).message });
      llog.error({ tracer: 'tls', err: (e as Error).message }, 'TLS tracer could not start in the loader');
    }
  }
  // The TCP tracer: its programs are counted here, its ring and counters are read by the worker.
  if (cfg.tracers.tcp.enabled) {
    try {
      const { loadTcp } = await import('../../tracers/tcp');
      const obj = loadTcp(cfg.tracers.tcp, workerPid);
      out.running.push({ name: 'tcp', detail: '', stop: () => obj.close() });
      const m = privsepNative().mapFdsByName(['tg_tcp_ring', 'tg_tcp_stats', 'tg_tcp_rtt_hist']);
      const at = (name: string) => {
        if (m[name] === undefined) throw new Error(`map ${name} not found among this process's fds`);
        out.fds.push(m[name]);
        return out.fds.length - 1;
      };
      out.tcp = {
        report: obj.report, ringBytes: cfg.tracers.tcp.ring_bytes,
        statsKeys: obj.mapInfo('tg_tcp_stats').maxEntries, histKeys: obj.mapInfo('tg_tcp_rtt_hist').maxEntries,
        fds: { ring: at('tg_tcp_ring'), stats: at('tg_tcp_stats'), hist: at('tg_tcp_rtt_hist') },
      };
      llog.info({ attached: obj.report.attached.length }, 'TCP tracer loaded; the worker drains it');
    } catch (e) {
      out.statuses.push({ name: 'tcp', ok: false, detail: (e as Error).message });
      llog.error({ tracer: 'tcp', err: (e as Error).message }, 'TCP tracer could not start in the loader');
    }
  }
  return out;
}

/**
 * Loader main. `spawn`: spawn the worker first (its pid goes into the BPF program as the process
 * never traced, so its own exports are not captured), load and attach, listen, hand the fds
 * over. `pod`: listen first, wait for the worker container's process to connect (its pid, from
 * SO_PEERCRED, is then the one never traced), load, hand the fds over. Both then drop to the
 * run-time capabilities and serve requests until SIGTERM.
 */
/** `reread`: the config file read and validated again (SIGHUP), throwing why it is refused. */
export async function runLoader(cfg: Config, mode: LoaderMode = { kind: 'spawn' }, reread?: () => Config): Promise<void> {
  if (process.getuid?.() !== 0) throw new ConfigError('security.privilege_separation: the loader must run as root (uid 0 holds the BPF capabilities)');
  const sec = cfg.security;
  const user = resolveUser(sec.worker_user, sec.worker_group);
  const native = privsepNative();
  const pod = mode.kind === 'pod';
  // Node exits on SIGHUP without a handler: one sent while the tracers load is held, handled below.
  let heldHup = false;
  let onHup = () => { heldHup = true; };
  process.on('SIGHUP', () => onHup());
  if (takeEarlyHangup()) heldHup = true;

  if (!pod) {
    // The worker writes exports, the API token and its state here.
    fs.mkdirSync(cfg.data_dir, { recursive: true });
    try { fs.chownSync(cfg.data_dir, user.uid, user.gid); } catch (e) {
      throw new ConfigError(`security.privilege_separation: cannot hand ${cfg.data_dir} to uid ${user.uid} (${(e as Error).message}); start-up needs CAP_CHOWN, CAP_SETUID and CAP_SETGID besides the seed's set (or run \`telegen loader --socket\` and \`telegen worker --socket\` as two processes)`);
    }
  }
  const mounted = ensureMounts();
  if (mounted.length) llog.info({ mounted }, 'mounted kernel filesystems');

  const sockPath = pod ? mode.socket : sec.loader_socket ?? `/run/telegen/loader-${process.pid}.sock`;
  fs.mkdirSync(path.dirname(sockPath), { recursive: true, mode: 0o755 });
  try { fs.unlinkSync(sockPath); } catch { /* not there */ }

  let workerPid = -1;
  let worker: ChildProcess | undefined;
  // Registered now: a worker that dies while we load must not go unnoticed.
  let early: [number | null, NodeJS.Signals | null] | undefined;
  let onWorkerExit = (code: number | null, signal: NodeJS.Signals | null) => { early = [code, signal]; };
  if (!pod) {
    // no_new_privs and an empty bounding set on this thread are inherited by the fork and kept
    // across the worker's exec. Without CAP_SETPCAP the bounding set stays; with no_new_privs
    // and a non-root uid it could not be used anyway.
    try { native.setNoNewPrivs(true); } catch { native.setNoNewPrivs(false); }
    const cli = process.argv[1];
    worker = spawn(process.execPath, [...process.execArgv, cli, 'run'], {
      uid: user.uid, gid: user.gid, stdio: 'inherit',
      env: { ...process.env, TELEGEN_PRIVSEP_ROLE: 'worker', TELEGEN_LOADER_SOCKET: sockPath },
    });
    workerPid = worker.pid ?? -1;
    worker.on('exit', (code, signal) => onWorkerExit(code, signal));
    llog.info({ worker: workerPid, uid: user.uid, gid: user.gid, socket: sockPath }, 'worker started');
  }

  const protectedPids = new Set([process.pid]);
  if (workerPid > 0) protectedPids.add(workerPid);
  const view = hostView(protectedPids);
  let loaded: Loaded | undefined;
  let workerSock: net.Socket | undefined;
  let workerFd = -1;
  let arrived: () => void = () => undefined;
  const workerArrived = new Promise<void>((r) => { arrived = r; });
  const requested = new Set<string>();
  const sessions = new Set<net.Socket>();
  const sendHello = () => {
    if (!loaded || !workerSock) return;
    const hello: Hello = { v: PROTOCOL_VERSION, role: 'worker', config: cfg, socket: loaded.socketState, tracers: loaded.statuses, serves: loaded.tls ? ['tls', 'describe'] : ['describe'], tcp: loaded.tcp };
    try { native.sendFds(workerFd, loaded.fds, encodeFrame(hello)); } catch (e) {
      llog.error({ err: (e as Error).message }, 'could not hand the fds to the worker'); workerSock.destroy();
    }
  };
  const server = net.createServer();
  server.on('connection', (sock) => {
    sessions.add(sock);
    sock.on('close', () => sessions.delete(sock));
    sock.on('error', () => sock.destroy());
    const fd = (sock as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;
    let cred: { pid: number; uid: number; gid: number };
    try { cred = native.peerCred(fd); } catch { sock.destroy(); return; }
    // pod: the worker is whoever of the worker's uid connects first (the kubelet starts one
    // worker container per pod; the socket's emptyDir is shared with no other container).
    const isWorker = !workerSock && (pod ? cred.uid === user.uid : cred.pid === workerPid);
    if (isWorker) {
      workerSock = sock;
      workerFd = fd;
      if (pod) {
        workerPid = cred.pid;
        protectedPids.add(workerPid);
        llog.info({ worker: workerPid, uid: cred.uid }, 'worker connected');
        sock.on('close', () => onWorkerExit(null, null));
        arrived();
      }
      sendHello();
    } else if (cred.uid === 0) {
      // root may ask (operators, tests); root could do all of it anyway, but gets no fds
      sock.write(encodeFrame({ v: PROTOCOL_VERSION, role: 'admin' } satisfies Hello));
    } else {
      llog.warn({ peer: cred }, 'loader socket: connection refused');
      sock.end(encodeFrame({ ok: false, error: 'refused', reason: `uid ${cred.uid} (pid ${cred.pid}) may not use the loader` } satisfies Reply));
      return;
    }
    const peer = cred;
    const limit = new RateLimit();
    sock.on('data', frameReader(MAX_REQUEST_BYTES, (body) => {
      const reply = limit.take()
        ? handle(body, view, { tls: loaded?.tls, requested })
        : { ok: false, error: 'refused', reason: `rate limit: more than ${limit.perSecond} requests/s (burst ${limit.burst})` } satisfies Reply;
      if (!reply.ok) llog.warn({ peer, error: reply.error, reason: reply.reason }, 'loader request refused');
      else if (reply.attached) llog.info({ peer, file: reply.file, attached: reply.attached }, 'uprobes attached on request');
      sock.write(encodeFrame(reply));
    }, (len) => {
      llog.warn({ peer, len }, 'loader request refused: frame too large');
      sock.end(encodeFrame({ ok: false, error: 'malformed', reason: `frame of ${len} bytes exceeds ${MAX_REQUEST_BYTES}` } satisfies Reply));
    }));
  });
  const listen = async () => {
    await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(sockPath, () => resolve()); });
    // Anyone may connect; who they are is checked per connection with SO_PEERCRED.
    fs.chmodSync(sockPath, 0o666);
    llog.info({ socket: sockPath }, 'loader listening');
  };

  if (pod) {
    // The worker's pid must be known before loading (the programs never trace it).
    await listen();
    llog.info({ uid: user.uid }, 'waiting for the worker to connect');
    await workerArrived;
    loaded = await loadForWorker(cfg, workerPid);
    sendHello();
  } else {
    // Listening only once everything is loaded: loading blocks this thread for seconds, and the
    // worker retries its connect until the socket is there.
    loaded = await loadForWorker(cfg, workerPid);
    await listen();
  }

  // CAP_SETUID was only needed for the spawn: from here on only what attaching needs.
  if (process.env.TELEGEN_DROP_CAPABILITIES !== '0') {
    try {
      const r = dropToRuntimeCapabilities();
      llog.info({ kept: r.kept, threads: r.threads, unreachable: r.unreachable }, 'loader capabilities dropped to the run-time set');
    } catch (e) { llog.warn({ err: (e as Error).message }, 'loader: could not drop capabilities'); }
  }

  let stopping = false;
  const finish = async (code: number) => {
    for (const t of loaded?.running ?? []) {
      try { await t.stop(); } catch (e) { llog.error({ tracer: t.name, err: (e as Error).message }, 'tracer stop failed'); }
    }
    try { loaded?.tracer?.close(); } catch (e) { llog.error({ err: (e as Error).message }, 'socket tracer close failed'); }
    for (const s of sessions) s.destroy();
    server.close();
    try { fs.unlinkSync(sockPath); } catch { /* gone */ }
    llog.info({ code }, 'loader stopped');
    process.exit(code);
  };
  onWorkerExit = (code, signal) => {
    if (stopping) { void finish(code === 0 || (pod && code === null) ? 0 : 1); return; }
    llog.error({ code, signal }, pod ? 'worker disconnected; stopping (the kubelet restarts the pod\'s containers)' : 'worker exited; stopping');
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
  // SIGHUP: the loader reads the file (the worker may not be able to) and hands it, or why it was
  // refused, to the worker, which applies what can change live as `telegen run` does. What the
  // loader itself runs (tracers.*, security.*) needs a restart anyway; only its log level follows.
  onHup = () => {
    let msg: { op: 'reload'; config?: Config; error?: string };
    try {
      const next = reread ? reread() : cfg;
      setLogLevel(next.log_level);
      msg = { op: 'reload', config: next };
    } catch (e) { msg = { op: 'reload', error: (e as Error).message }; }
    if (workerSock && !workerSock.destroyed) workerSock.write(encodeFrame(msg));
    else llog.warn('SIGHUP before the worker runs: not applied; send it again once the worker logs "worker running on the loader\'s fds"');
  };
  if (heldHup) onHup();
}

/** What attach requests are served with: the loader's TLS tracer, and the files hooked so far. */
export interface Serving { tls?: RequestedTlsTracer; requested: Set<string> }

/** One request: shape, then policy, then (attach_uprobe) the attach itself. */
export function handle(body: Buffer, view: HostView, serving: Serving = { requested: new Set() }): Reply {
  const req = parseRequest(body);
  if ('ok' in req) return req;
  const why = policyRefusal(req, view);
  if (why) return { ok: false, id: req.id, error: 'refused', reason: why };
  if (req.op === 'ping') return { ok: true, id: req.id, pid: process.pid };
  if (req.op === 'describe_process') return { ok: true, id: req.id, ...describeProcess(req.pid) };
  if (req.op === 'list_targets') {
    // dev:inode beside each path: the worker asks once per file, whatever path or process names it.
    const files = uprobeTargets(req.tracer, req.pid, view)
      .map((p) => ({ path: p, key: fileKey(path.join(`/proc/${req.pid}/root`, p)) })).filter((f) => f.key);
    return { ok: true, id: req.id, files };
  }
  if (!serving.tls) return { ok: false, id: req.id, error: 'refused', reason: 'the TLS tracer is not running in the loader' };
  // The kernel refuses uprobes through /proc/PID/root magic links when the plain path is usable:
  // the host's path when it is the same inode, else the process's view of it.
  const inRoot = path.join(`/proc/${req.pid}/root`, req.library);
  const key = fileKey(inRoot);
  if (!key) return { ok: false, id: req.id, error: 'failed', reason: `${req.library} vanished` };
  const file = fileKey(req.library) === key ? req.library : inRoot;
  if (!serving.requested.has(key) && serving.requested.size >= MAX_REQUESTED_FILES)
    return { ok: false, id: req.id, error: 'refused', reason: `limit: ${MAX_REQUESTED_FILES} files hooked on request already` };
  serving.requested.add(key);
  try {
    const r = serving.tls.attach(file, key, new Set(req.symbols));
    return { ok: true, id: req.id, file, attached: r.attached, already: r.already };
  } catch (e) {
    return { ok: false, id: req.id, error: 'failed', reason: (e as Error).message };
  }
}
