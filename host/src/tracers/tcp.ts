// TCP metrics tracer: bpf/tcp.bpf.c reports each connection's open, close (duration, bytes, srtt,
// rttvar, retransmits), failed connects, retransmitted segments and resets through a ring; this
// turns them into OTel metrics (aggregated in tcp-series.ts). Attributes: the peer address and the
// service port (never the ephemeral port), the role, and the owning process when the kernel saw
// it; series are bounded per instrument and forgotten when their process exits.
import { TracerContext, TracerFactory, RunningTracer } from '../agent';
import { log } from '../log';
import { BpfObject, AttachReport } from './bpf-object';
import { SelfMetrics } from '../metrics/self';
import { TcpTracerConfig } from './tcp-config';
import { TcpSeries, TCP_INSTRUMENTS } from './tcp-series';
import { tg_tcp_stat } from '../generated/tcp-layout';

const tlog = log.child({ component: 'tracer.tcp' });
const PROGRAMS = ['tg_tcp_state', 'tg_tcp_probe', 'tg_tcp_retransmit', 'tg_tcp_retransmit_synack', 'tg_tcp_reset_rx', 'tg_tcp_reset_tx', 'tg_tcp_accept4', 'tg_tcp_accept'];
const STAT_NAMES = Object.keys(tg_tcp_stat).filter((k) => k !== 'TG_TCP_STAT_MAX')
  .sort((a, b) => tg_tcp_stat[a as keyof typeof tg_tcp_stat] - tg_tcp_stat[b as keyof typeof tg_tcp_stat])
  .map((k) => `tcp_${k.slice('TG_TCP_STAT_'.length).toLowerCase()}`);

/** The tracer's series, produced at every metrics collection (`drain` first pulls what the ring
 *  holds, so a collection sees the events up to now); its bounds on /metrics. */
function startSeries(ctx: TracerContext, cfg: TcpTracerConfig, drain?: () => void): TcpSeries {
  const series = new TcpSeries(cfg.cardinality_limit, cfg.ports);
  ctx.signals.addProducer(() => { drain?.(); return series.collect(); });
  return series;
}

function publishSeries(m: SelfMetrics, s: TcpSeries): void {
  const st = s.stats();
  TCP_INSTRUMENTS.forEach((inst, i) => m.set('telegen_metric_series', 'Series an instrument the agent aggregates itself holds (bounded by its cardinality limit + 1 overflow series)', st.series[i], { instrument: inst.name }));
  m.set('telegen_metric_series_overflowed_total', 'Attribute sets sent to an overflow series (cardinality limit reached), once per collection interval they were seen in', st.overflowed, { tracer: 'tcp' }, 'counter');
  m.set('telegen_metric_series_forgotten_total', 'Series of exited processes dropped after their last export', st.forgotten, { tracer: 'tcp' }, 'counter');
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
  const series = startSeries(ctx, ctx.cfg.tracers.tcp);
  let handled = 0;
  let stopped = false;
  src.start((rec) => { series.record(rec); handled++; });
  ctx.metrics.addCollector((m) => {
    if (stopped) return;
    const v = src.stats();
    STAT_NAMES.forEach((name, i) => m.set(`telegen_bpf_${name}_total`, `Kernel-side tcp tracer counter ${name}`, v[i] ?? 0, { tracer: 'tcp' }, 'counter'));
    m.set('telegen_tracer_events_handled_total', 'Kernel events a tracer turned into signals', handled, { tracer: 'tcp' }, 'counter');
    publishRttHist(m, src.rttHist());
    publishSeries(m, series);
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
  let handled = 0;
  let stopped = false;
  const drain = () => {
    if (stopped) return;
    obj.drainRing((r) => { series.record(r); handled++; });
  };
  const series = startSeries(ctx, cfg, drain);
  // Read poll_ms after the first event instead of every poll_ms: no wake-up while no connection
  // opens or closes, the same batching and delay when they do.
  const watch = obj.watchRing(drain, cfg.poll_ms);
  ctx.metrics.addCollector((m) => {
    if (stopped) return;
    obj.collect(m, 'tcp', { map: 'tg_tcp_stats', names: STAT_NAMES });
    m.set('telegen_tracer_events_handled_total', 'Kernel events a tracer turned into signals', handled, { tracer: 'tcp' }, 'counter');
    publishRttHist(m, obj.perCpuU64('tg_tcp_rtt_hist'));
    publishSeries(m, series);
  });
  const r: RunningTracer = {
    name: 'tcp',
    detail: describe(rep),
    stop: () => {
      watch.stop();
      drain();
      stopped = true;
      obj.close();
    },
  };
  return r;
};
