// The unprivileged half of `telegen run` under security.privilege_separation: started by the
// loader as an unprivileged uid with no capabilities and no_new_privs, it receives the socket
// tracer's map fds over the loader's socket and runs ingest → decoders → pipeline → export → API
// exactly as the single process does, draining the ring buffer itself (a ring buffer fd can be
// mmapped and polled by whoever holds it; map lookups by fd need no capability since 6.5).
import * as net from 'net';
import { parseConfig, ConfigError } from '../../config';
import { resolveExportConfig } from '../../export';
import { Agent, RunningTracer } from '../../agent';
import { tcpFromFds, TcpFdSource } from '../../tracers/tcp';
import { log, setLogLevel } from '../../log';
import { applyReload, countReloads } from '../../config/reload';
import { BatchHandler, SocketTracer, SocketTracerOptions, SocketTracerStats, KernelStatName } from '../../native';
import { tg_stat } from '../../generated/layout';
import { privsepNative, PrivsepNative } from './native';
import { HANDED_FDS, Hello } from './loader';
import { frameReader, MAX_REQUEST_BYTES } from './protocol';
import { LoaderClient, TlsRequester } from './requests';
import { startDiscovery } from '../../discovery/tracer';
import type { PrivilegedFacts } from '../../discovery';

const wlog = log.child({ component: 'worker' });

const statNames = (Object.keys(tg_stat) as (keyof typeof tg_stat)[]).filter((k) => k !== 'TG_STAT_MAX')
  .map((k) => ({ name: k.slice('TG_STAT_'.length).toLowerCase() as KernelStatName, index: tg_stat[k] }));

/** The SocketTracer interface over fds the loader handed over: same stats, same batches. */
export function adoptSocketTracer(native: PrivsepNative, hello: Hello, fds: number[], onBatch: BatchHandler, opts: SocketTracerOptions = {}): SocketTracer {
  const s = hello.socket;
  if (!s?.ok) throw new Error(`loader: ${s?.error ?? 'no socket tracer'}`);
  const fd = (name: (typeof HANDED_FDS)[number]) => {
    const i = s.fds.indexOf(name);
    if (i < 0 || fds[i] === undefined) throw new Error(`loader handed no ${name} fd`);
    return fds[i];
  };
  const ringFd = fd('ring'), statsFd = fd('stats'), connsFd = fd('conns');
  let ring: Uint8Array = new Uint8Array(0);
  let index: Uint32Array = new Uint32Array(0);
  let handlerErrors = 0;
  const consumer = new native.RingConsumer(ringFd, s.report.ringBytes, (count) => {
    try { onBatch(ring, index, count); } catch (err) {
      handlerErrors++;
      if (opts.onError) opts.onError(err);
      else if (handlerErrors === 1) process.emitWarning(`telegen: socket tracer batch handler threw: ${String(err)}`);
    }
  });
  ring = consumer.ring ?? ring;
  index = consumer.index ?? index;
  if (opts.maxBatch !== undefined) consumer.setMaxBatch(opts.maxBatch);
  let final: SocketTracerStats | undefined;
  return {
    report: s.report,
    stats(): SocketTracerStats {
      if (final) return final;
      const c = consumer.stats();
      const kernel = native.mapSumPerCpu(statsFd, tg_stat.TG_STAT_MAX);
      const out = { batches: c.batches, records: c.records, ringPendingBytes: c.ringPendingBytes, handlerErrors } as SocketTracerStats;
      for (const { name, index: i } of statNames) out[name] = kernel[i] ?? 0;
      return out;
    },
    mapStats: () => ({ conns: native.mapCountKeys(connsFd), connMax: s.report.connMax, ringBytes: s.report.ringBytes }),
    pause: (paused) => { if (!final) consumer.setPaused(paused); },
    close(): void {
      if (final) return;
      final = this.stats();
      consumer.close();
      for (const f of fds) native.closeFd(f);
    },
  };
}

/** The TCP tracer's metrics from the ring and counter maps the loader handed over; its status
 *  replaces the "single-process mode only" placeholder. */
function startTcp(native: PrivsepNative, t: NonNullable<Hello['tcp']>, fds: number[], agent: Agent): RunningTracer | undefined {
  let consumer: InstanceType<PrivsepNative['RingConsumer']> | undefined;
  const src: TcpFdSource = {
    report: t.report,
    start(onRecord) {
      let ring: Uint8Array = new Uint8Array(0);
      let index: Uint32Array = new Uint32Array(0);
      consumer = new native.RingConsumer(fds[t.fds.ring], t.ringBytes, (count) => {
        for (let i = 0; i < count; i++) onRecord(Buffer.from(ring.buffer, ring.byteOffset + index[2 * i], index[2 * i + 1]));
      });
      ring = consumer.ring ?? ring;
      index = consumer.index ?? index;
    },
    stats: () => native.mapSumPerCpu(fds[t.fds.stats], t.statsKeys),
    rttHist: () => native.mapSumPerCpu(fds[t.fds.hist], t.histKeys),
    close: () => { consumer?.close(); for (const k of ['ring', 'stats', 'hist'] as const) native.closeFd(fds[t.fds[k]]); },
  };
  const status = (ok: boolean, detail: string) => {
    const i = agent.tracers.findIndex((x) => x.name === 'tcp');
    if (i >= 0) agent.tracers[i] = { name: 'tcp', ok, detail }; else agent.tracers.push({ name: 'tcp', ok, detail });
  };
  try {
    const r = tcpFromFds({ cfg: agent.cfg, signals: agent.signals, metrics: agent.metrics, agent }, src);
    status(true, r.detail);
    return r;
  } catch (e) {
    status(false, (e as Error).message);
    wlog.error({ tracer: 'tcp', err: (e as Error).message }, 'TCP tracer could not start from the loader\'s fds');
    return undefined;
  }
}

/** Discovery runs here (its /proc reads, pod watch and API lookups need no privilege); what
 *  only root may read — exe link, OTEL_* environment, runtime — comes from describe_process. */
async function startWorkerDiscovery(agent: Agent, client: LoaderClient | undefined): Promise<RunningTracer | undefined> {
  const status = (ok: boolean, detail: string) => {
    const i = agent.tracers.findIndex((x) => x.name === 'discovery');
    if (i >= 0) agent.tracers[i] = { name: 'discovery', ok, detail }; else agent.tracers.push({ name: 'discovery', ok, detail });
  };
  // The loader rate-limits the session (16/s, shared with TLS attach requests) and the first
  // scan sees every process on the node: describe at most 8/s, one at a time, newest first (a
  // process just started is the one about to send spans), retrying a rate-limit refusal, so
  // attach requests keep half the budget.
  const waiting: Array<{ pid: number; done: (f: PrivilegedFacts | undefined) => void }> = [];
  let pumping = false;
  const ask = async (pid: number): Promise<PrivilegedFacts | undefined> => {
    for (let tries = 0; tries < 5; tries++) {
      const r = await client!.request({ op: 'describe_process', pid }, 10_000);
      if (r.ok) return r as unknown as PrivilegedFacts;
      if (!/^rate limit/.test(r.reason)) return undefined;
      await new Promise((res) => setTimeout(res, 1000));
    }
    return undefined;
  };
  const pump = async () => {
    pumping = true;
    for (let w = waiting.pop(); w; w = waiting.pop()) {
      w.done(await ask(w.pid).catch(() => undefined));
      await new Promise((res) => setTimeout(res, 125));
    }
    pumping = false;
  };
  const describer = client && ((pid: number) => new Promise<PrivilegedFacts | undefined>((done) => {
    waiting.push({ pid, done });
    if (!pumping) void pump();
  }));
  try {
    const r = await startDiscovery({ cfg: agent.cfg, signals: agent.signals, metrics: agent.metrics, agent }, describer);
    if (!r) { status(false, 'disabled in config'); return undefined; }
    status(true, `${r.detail}${describer ? '' : ' (no describe_process: executable and OTEL_* environment unknown)'}`);
    return r;
  } catch (e) {
    status(false, (e as Error).message);
    wlog.error({ tracer: 'discovery', err: (e as Error).message }, 'discovery could not start');
    return undefined;
  }
}

/** The loader listens once its programs are loaded (spawned) or loads once we connected (pod),
 *  either of which takes seconds to minutes on a busy host: retry the connect until then, and,
 *  spawned, give up when the loader (our parent) is gone. */
async function connectLoader(native: PrivsepNative, sockPath: string, pod: boolean): Promise<ReturnType<PrivsepNative['connectReceive']>> {
  const parent = process.ppid;
  let tries = 0;
  for (;;) {
    try { return native.connectReceive(sockPath, pod ? 600_000 : 60_000); } catch (e) {
      if (!/^connect: /.test((e as Error).message)) throw e;
      if (pod && ++tries % 150 === 1) wlog.info({ socket: sockPath, err: (e as Error).message }, 'waiting for the loader');
    }
    if (!pod && process.ppid !== parent) throw new Error('worker: the loader exited before it listened');
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Refuses to parse untrusted bytes as root: `telegen worker` is the unprivileged half. */
function assertUnprivileged(): void {
  if (process.getuid?.() === 0 || process.geteuid?.() === 0)
    throw new ConfigError('telegen worker must not run as root: start it as an unprivileged uid with no capabilities (runAsUser: 65534, capabilities drop ALL)');
}

/** `spawned`: started by `telegen run`'s loader (socket from the environment). `pod`: `telegen
 *  worker --socket PATH`, started by the container runtime as its own process. */
export async function runWorker(opts: { socket?: string } = {}): Promise<void> {
  const pod = opts.socket !== undefined;
  const sockPath = opts.socket ?? process.env.TELEGEN_LOADER_SOCKET;
  if (!sockPath) throw new Error('worker: TELEGEN_LOADER_SOCKET not set (started by the loader only)');
  assertUnprivileged();
  const native = privsepNative();
  const got = await connectLoader(native, sockPath, pod);
  const hello = JSON.parse(got.frame.toString('utf8')) as Hello;
  if (hello.role !== 'worker' || !hello.config) throw new Error(`worker: loader answered as ${hello.role}`);
  const cfg = parseConfig(hello.config, '(from the loader)');
  setLogLevel(cfg.log_level);
  const resolved = resolveExportConfig(cfg.otlp ?? {}, process.env);
  // Kept open: attach requests go over it, and its end means the loader is gone.
  const loader = new net.Socket({ fd: got.fd, readable: true, writable: true });
  const client = new LoaderClient(loader);
  const tls = hello.serves?.includes('tls') ? new TlsRequester(client) : undefined;
  const agent = new Agent(cfg, resolved);
  try {
    await agent.start({
      openSocketTracer: (opts, onBatch) => adoptSocketTracer(native, hello, got.fds, tls
        ? (ring, index, count) => { tls.observe(ring, index, count); onBatch(ring, index, count); }
        : onBatch, opts),
      onlySocketTracer: 'single-process mode only (security.privilege_separation)',
    });
  } catch (e) {
    // e.g. the API port is taken: the ring reader thread would keep this process alive with no
    // API; exit instead, and the loader (seeing the exit) detaches everything.
    wlog.error({ err: (e as Error).message }, 'start-up failed: exiting');
    process.stderr.write(`telegen: worker start-up failed: ${(e as Error).message}\n`);
    await Promise.race([agent.stop().catch(() => undefined), new Promise((r) => setTimeout(r, 10_000).unref())]);
    process.exit(1);
  }
  // Tracers the loader runs for us (TLS) replace the "single-process mode only" placeholders.
  for (const t of hello.tracers ?? []) {
    const i = agent.tracers.findIndex((x) => x.name === t.name);
    if (i >= 0) agent.tracers[i] = t; else agent.tracers.push(t);
  }
  const tcp = hello.tcp ? startTcp(native, hello.tcp, got.fds, agent) : undefined;
  const disc = await startWorkerDiscovery(agent, hello.serves?.includes('describe') ? client : undefined);
  countReloads(agent);
  wlog.info({ uid: process.getuid?.(), fds: got.fds.length, requests: hello.serves ?? [] }, 'worker running on the loader\'s fds');

  let stopping = false;
  const stop = (why: string, code: number) => {
    if (stopping) return;
    stopping = true;
    wlog.info({ why }, 'stopping: flushing queues');
    try { tcp?.stop(); } catch (e) { wlog.error({ err: (e as Error).message }, 'tcp consumer stop failed'); }
    try { disc?.stop(); } catch (e) { wlog.error({ err: (e as Error).message }, 'discovery stop failed'); }
    agent.stop().then(() => process.exit(code), (e) => { wlog.error({ err: e }, 'shutdown failed'); process.exit(1); });
  };
  loader.on('error', () => undefined);
  loader.on('data', frameReader(MAX_REQUEST_BYTES, (body) => {
    let msg: { op?: string; id?: unknown; ok?: unknown } = {};
    try { msg = JSON.parse(body.toString('utf8')); } catch { /* the loader is trusted; ignore garbage */ }
    if (client.reply(msg)) return;
    if (msg.op === 'stop') stop('loader asked', 0);
    // SIGHUP at the loader, which read the file: applied as `telegen run` does (cli/run.ts).
    else if (msg.op === 'reload') {
      const r = msg as { config?: unknown; error?: string };
      applyReload(agent, '(from the loader)', () => { if (r.error !== undefined) throw new Error(r.error); return parseConfig(r.config, '(from the loader)'); });
    }
  }, () => stop('loader sent an oversized frame', 1)));
  loader.on('close', () => stop('loader socket closed', 1));
  process.on('SIGTERM', () => stop('SIGTERM', 0));
  process.on('SIGINT', () => stop('SIGINT', 0));
  // The loader reads the file and sends a reload; a SIGHUP here (pod mode) is not told which file.
  process.on('SIGHUP', () => wlog.info('SIGHUP: config reloads go to the loader (it reads the file and tells the worker)'));
}
