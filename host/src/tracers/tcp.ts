// TCP metrics tracer: bpf/tcp.bpf.c reports each connection's open, close (duration, bytes, srtt,
// rttvar, retransmits), failed connects, retransmitted segments and resets through a ring; this
// turns them into OTel metrics. Attributes stay bounded: the peer address and the service port
// (never the ephemeral port), the role, and the owning process when the kernel saw it.
import { Attributes, Counter, Histogram, UpDownCounter } from '@opentelemetry/api';
import { TracerContext, TracerFactory, RunningTracer } from '../agent';
import { log } from '../log';
import { BpfObject, AttachReport, addrText, cString } from './bpf-object';
import { SelfMetrics } from '../metrics/self';
import { TcpTracerConfig } from './tcp-config';
import { tg_tcp_event as L, tg_tcp_ev as EV, tg_tcp_role as ROLE, tg_tcp_stat } from '../generated/tcp-layout';

const tlog = log.child({ component: 'tracer.tcp' });
const PROGRAMS = ['tg_tcp_state', 'tg_tcp_probe', 'tg_tcp_retransmit', 'tg_tcp_reset_rx', 'tg_tcp_reset_tx'];
const STAT_NAMES = Object.keys(tg_tcp_stat).filter((k) => k !== 'TG_TCP_STAT_MAX')
  .sort((a, b) => tg_tcp_stat[a as keyof typeof tg_tcp_stat] - tg_tcp_stat[b as keyof typeof tg_tcp_stat])
  .map((k) => `tcp_${k.slice('TG_TCP_STAT_'.length).toLowerCase()}`);

export interface TcpEvent {
  type: number; pid: number; durationNs: number; bytesSent: number; bytesRecv: number;
  srttUs: number; rttvarUs: number; retrans: number; family: number; role: number; state: number;
  laddr: string; raddr: string; lport: number; rport: number; comm: string;
}

export function parseTcpEvent(b: Buffer): TcpEvent {
  return {
    type: b.readUInt32LE(L.type), pid: b.readUInt32LE(L.pid),
    durationNs: Number(b.readBigUInt64LE(L.duration_ns)),
    bytesSent: Number(b.readBigUInt64LE(L.bytes_sent)), bytesRecv: Number(b.readBigUInt64LE(L.bytes_recv)),
    srttUs: b.readUInt32LE(L.srtt_us), rttvarUs: b.readUInt32LE(L.rttvar_us), retrans: b.readUInt32LE(L.retrans),
    family: b.readUInt16LE(L.family), role: b[L.role], state: b[L.state],
    laddr: addrText(b, L.laddr), raddr: addrText(b, L.raddr), lport: b.readUInt16LE(L.lport), rport: b.readUInt16LE(L.rport),
    comm: cString(b, L.comm, 16),
  };
}

/** The service port of a connection: the remote one for a client, the local one for a server.
 *  A reset we send for no tracked socket answers a segment addressed to our port (a closed port
 *  is the common case): the local one. Otherwise, with no role, the lower of the two. */
export function servicePort(e: Pick<TcpEvent, 'type' | 'role' | 'lport' | 'rport'>): number {
  if (e.role === ROLE.TG_TCP_ROLE_CLIENT) return e.rport;
  if (e.role === ROLE.TG_TCP_ROLE_SERVER) return e.lport;
  if (e.type === EV.TG_TCP_RESET_TX) return e.lport;
  return Math.min(e.lport, e.rport);
}

const ROLE_NAME: Record<number, string> = { [ROLE.TG_TCP_ROLE_CLIENT]: 'client', [ROLE.TG_TCP_ROLE_SERVER]: 'server' };

export function connAttributes(e: TcpEvent, withProcess: boolean): Attributes {
  const a: Attributes = {
    'network.transport': 'tcp',
    'network.type': e.family === 10 && !e.raddr.includes('.') ? 'ipv6' : 'ipv4',
    'network.peer.address': e.raddr,
    'server.port': servicePort(e),
  };
  const role = ROLE_NAME[e.role];
  if (role) a['telegen.tcp.role'] = role;
  if (withProcess && e.pid) { a['process.pid'] = e.pid; a['process.executable.name'] = e.comm; }
  return a;
}

// RTTs run from tens of microseconds (loopback, same rack) to seconds; connections from a
// millisecond to hours; the SDK's default boundaries (0 … 10000) fit none of them.
const RTT_BUCKETS_S = [1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1, 2.5, 5];
const DURATION_BUCKETS_S = [1e-3, 1e-2, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600];
const BYTES_BUCKETS = [0, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

export class TcpMetrics {
  readonly opens: Counter; readonly closes: Counter; readonly failures: Counter;
  readonly duration: Histogram; readonly srtt: Histogram; readonly rttvar: Histogram;
  readonly retransmits: Counter; readonly resets: Counter; readonly bytes: Counter; readonly connBytes: Histogram;
  readonly active: UpDownCounter;
  constructor(ctx: TracerContext) {
    const m = ctx.signals.meter;
    this.opens = m.createCounter('telegen.tcp.connection.opens', { unit: '{connection}', description: 'TCP connections established' });
    this.closes = m.createCounter('telegen.tcp.connection.closes', { unit: '{connection}', description: 'Established TCP connections closed' });
    this.failures = m.createCounter('telegen.tcp.connection.failures', { unit: '{connection}', description: 'TCP connects that never got established (refused, reset, timed out)' });
    this.duration = m.createHistogram('telegen.tcp.connection.duration', { unit: 's', description: 'Established → closed', advice: { explicitBucketBoundaries: DURATION_BUCKETS_S } });
    this.srtt = m.createHistogram('telegen.tcp.srtt', { unit: 's', description: 'Smoothed RTT of a connection when it closed', advice: { explicitBucketBoundaries: RTT_BUCKETS_S } });
    this.rttvar = m.createHistogram('telegen.tcp.rttvar', { unit: 's', description: 'RTT mean deviation of a connection when it closed', advice: { explicitBucketBoundaries: RTT_BUCKETS_S } });
    this.retransmits = m.createCounter('telegen.tcp.retransmits', { unit: '{segment}', description: 'TCP segments retransmitted' });
    this.resets = m.createCounter('telegen.tcp.resets', { unit: '{segment}', description: 'TCP resets sent (network.io.direction=transmit) or received (receive)' });
    this.bytes = m.createCounter('telegen.tcp.io', { unit: 'By', description: 'Bytes over closed TCP connections (sent = acknowledged by the peer)' });
    this.connBytes = m.createHistogram('telegen.tcp.connection.io', { unit: 'By', description: 'Bytes per closed TCP connection and direction', advice: { explicitBucketBoundaries: BYTES_BUCKETS } });
    this.active = m.createUpDownCounter('telegen.tcp.connections.active', { unit: '{connection}', description: 'TCP connections established and not yet closed' });
  }
}

/** Applies one kernel event to the instruments (pure apart from the instruments). */
export function recordTcpEvent(m: TcpMetrics, e: TcpEvent): void {
  const full = connAttributes(e, true);
  const noProc = connAttributes(e, false);
  switch (e.type) {
    case EV.TG_TCP_OPEN:
      m.opens.add(1, full);
      m.active.add(1, noProc);
      break;
    case EV.TG_TCP_CLOSE: {
      m.closes.add(1, full);
      m.active.add(-1, noProc);
      m.duration.record(e.durationNs / 1e9, full);
      if (e.srttUs) { m.srtt.record(e.srttUs / 1e6, full); m.rttvar.record(e.rttvarUs / 1e6, full); }
      m.bytes.add(e.bytesSent, { ...full, 'network.io.direction': 'transmit' });
      m.bytes.add(e.bytesRecv, { ...full, 'network.io.direction': 'receive' });
      m.connBytes.record(e.bytesSent, { ...full, 'network.io.direction': 'transmit' });
      m.connBytes.record(e.bytesRecv, { ...full, 'network.io.direction': 'receive' });
      break;
    }
    case EV.TG_TCP_FAIL:
      m.failures.add(1, full);
      break;
    case EV.TG_TCP_RETRANS:
      m.retransmits.add(1, full);
      break;
    case EV.TG_TCP_RESET_RX:
      m.resets.add(1, { ...full, 'network.io.direction': 'receive' });
      break;
    case EV.TG_TCP_RESET_TX:
      m.resets.add(1, { ...full, 'network.io.direction': 'transmit' });
      break;
  }
}

/** Loads and attaches bpf/tcp.bpf.c; `selfPid` is the process never counted (the agent, or under
 *  privilege separation its worker). Throws when no program attached. */
export function loadTcp(cfg: TcpTracerConfig, selfPid: number): BpfObject {
  const obj = new BpfObject('tcp', {
    rodata: { self_pid: selfPid },
    maxEntries: { tg_tcp_conns: cfg.conn_max, tg_tcp_ring: cfg.ring_bytes },
  });
  const rep = obj.attachAll(PROGRAMS);
  for (const f of rep.failed) tlog.warn({ program: f.name, err: f.error }, 'program did not attach; the rest keep running');
  if (!rep.attached.length) { obj.close(); throw new Error(`no TCP program attached: ${rep.failed.map((f) => `${f.name}: ${f.error}`).join('; ')}`); }
  return obj;
}

/** Kernel RTT samples from tcp_probe (every ACK), aggregated as log2 buckets of microseconds:
 *  `h` is the per-CPU-summed tg_tcp_rtt_hist (srtt slots, then rttvar slots). */
export function publishRttHist(m: SelfMetrics, h: number[]): void {
  const slots = h.length / 2;
  for (const [name, base] of [['srtt', 0], ['rttvar', slots]] as const) {
    let cum = 0;
    for (let i = 0; i < slots; i++) {
      cum += h[base + i];
      if (h[base + i] || i === slots - 1) m.set(`telegen_tcp_probe_${name}_us_bucket`, `tcp_probe ${name} samples, cumulative by upper bound (µs)`, cum, { le: String(2 ** (i + 1)) }, 'counter');
    }
  }
}

const describe = (rep: AttachReport) => `${rep.attached.length} programs attached${rep.failed.length ? `, ${rep.failed.length} failed: ${rep.failed.map((f) => f.name).join(', ')}` : ''}`;

/** What the worker holds of a TCP tracer the privilege-separated loader runs: its ring (records
 *  pushed to `onRecord` in order) and its two counter maps, read by fd. */
export interface TcpFdSource {
  report: AttachReport;
  start(onRecord: (rec: Buffer) => void): void;
  stats(): number[];
  rttHist(): number[];
  close(): void;
}

/** The same metrics as tcpTracer, from a ring and maps the loader handed over. */
export function tcpFromFds(ctx: TracerContext, src: TcpFdSource): RunningTracer {
  const metrics = new TcpMetrics(ctx);
  let handled = 0;
  let stopped = false;
  src.start((rec) => { recordTcpEvent(metrics, parseTcpEvent(rec)); handled++; });
  ctx.metrics.addCollector((m) => {
    if (stopped) return;
    const v = src.stats();
    STAT_NAMES.forEach((name, i) => m.set(`telegen_bpf_${name}_total`, `Kernel-side tcp tracer counter ${name}`, v[i] ?? 0, { tracer: 'tcp' }, 'counter'));
    m.set('telegen_tracer_events_handled_total', 'Kernel events a tracer turned into signals', handled, { tracer: 'tcp' }, 'counter');
    publishRttHist(m, src.rttHist());
  });
  return {
    name: 'tcp',
    detail: `in the loader: ${describe(src.report)}; drained by the worker`,
    stop: () => { stopped = true; src.close(); },
  };
}

export const tcpTracer: TracerFactory = (ctx) => {
  const cfg = ctx.cfg.tracers.tcp;
  if (!cfg.enabled) return null;
  const obj = loadTcp(cfg, process.pid);
  const rep = obj.report;
  obj.openRing('tg_tcp_ring');
  const metrics = new TcpMetrics(ctx);
  let handled = 0;
  const drain = () => {
    for (;;) {
      const recs = obj.pollRing(4096);
      for (const r of recs) { recordTcpEvent(metrics, parseTcpEvent(r)); handled++; }
      if (recs.length < 4096) break;
    }
  };
  const timer = setInterval(drain, cfg.poll_ms);
  timer.unref();
  let stopped = false;
  ctx.metrics.addCollector((m) => {
    if (stopped) return;
    obj.collect(m, 'tcp', { map: 'tg_tcp_stats', names: STAT_NAMES });
    m.set('telegen_tracer_events_handled_total', 'Kernel events a tracer turned into signals', handled, { tracer: 'tcp' }, 'counter');
    publishRttHist(m, obj.perCpuU64('tg_tcp_rtt_hist'));
  });
  const r: RunningTracer = {
    name: 'tcp',
    detail: describe(rep),
    stop: () => {
      clearInterval(timer);
      drain();
      stopped = true;
      obj.close();
    },
  };
  return r;
};
