// CPU per kernel event of the TCP tracer's metrics path: ring records (tg_tcp_event) of a busy
// service — a few hundred connection attribute sets (20 live processes × 20 peers × role), each connection an
// open and a close with bytes and RTT, 1 in 50 a retransmit — turned into metrics, then one
// collection (what the reader exports). CPU time of this process, not wall time.
// BENCH_BASELINE=DIR (a built worktree of an earlier commit, e.g. before the tracer aggregated
// itself: sdk-metrics instruments, 5–8 records per event) runs that tree's path on the same
// records, alternating with this tree's each round.
import * as fs from 'fs';
import * as path from 'path';
import { MeterProvider, MetricReader, AggregationTemporality } from '@opentelemetry/sdk-metrics';
import { TcpSeries } from '../host/src/tracers/tcp-series';
import { tg_tcp_event as L, tg_tcp_ev as EV, tg_tcp_role as ROLE } from '../host/src/generated/tcp-layout';
import { spread, writeResult, cpuSecondsIn } from './lib';

/** Live pids (their /proc start time is what the series check), 20 of them. */
function livePids(): number[] {
  return fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).slice(0, 20);
}

function workload(connections: number): { recs: Buffer[]; sets: number } {
  const pids = livePids();
  const ring = Buffer.alloc(connections * 2.02 * L.size + L.size);
  const out: Buffer[] = [];
  const sets = new Set<string>();
  let off = 0;
  const ev = (type: number, i: number): void => {
    const b = ring.subarray(off, off + L.size);
    off += L.size;
    const client = i % 3 !== 0;
    sets.add(`${i % pids.length} ${(i >> 3) % 20} ${client}`);
    b.writeUInt32LE(type, L.type);
    b.writeUInt32LE(pids[i % pids.length], L.pid);
    b.writeBigUInt64LE(BigInt(1_000_000 + (i % 997) * 1000), L.duration_ns);
    b.writeBigUInt64LE(BigInt(200 + (i % 13) * 100), L.bytes_sent);
    b.writeBigUInt64LE(BigInt(1500 + (i % 17) * 1000), L.bytes_recv);
    b.writeUInt32LE(30 + (i % 50), L.srtt_us);
    b.writeUInt32LE(10 + (i % 20), L.rttvar_us);
    b.writeUInt16LE(2, L.family);
    b[L.role] = client ? ROLE.TG_TCP_ROLE_CLIENT : ROLE.TG_TCP_ROLE_SERVER;
    b.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1], L.laddr);
    b.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, (i >> 3) % 20, 1], L.raddr);
    b.writeUInt16LE(client ? 30000 + (i % 20000) : 8080, L.lport);
    b.writeUInt16LE(client ? 443 : 30000 + (i % 20000), L.rport);
    b.write(`svc-${i % pids.length}`, L.comm, 15, 'latin1');
    out.push(b);
  };
  for (let i = 0; i < connections; i++) {
    ev(EV.TG_TCP_OPEN, i);
    if (i % 50 === 0) ev(EV.TG_TCP_RETRANS, i);
    ev(EV.TG_TCP_CLOSE, i);
  }
  return { recs: out, sets: sets.size };
}

class PullReader extends MetricReader {
  constructor() { super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE }); }
  protected async onForceFlush(): Promise<void> { /* pull only */ }
  protected async onShutdown(): Promise<void> { /* pull only */ }
}

interface Path { record(b: Buffer): void; collect(): Promise<number> }

function ours(): Path {
  const s = new TcpSeries(2000);
  return { record: (b) => s.record(b), collect: async () => s.collect().reduce((n, m) => n + m.dataPoints.length, 0) };
}

/** The baseline tree's path: parse each record, then its sdk-metrics instruments. */
function baseline(dir: string): Path {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const t = require(path.resolve(dir, 'dist', 'host', 'src', 'tracers', 'tcp.js'));
  const reader = new PullReader();
  const meter = new MeterProvider({ readers: [reader] }).getMeter('telegen');
  const m = new t.TcpMetrics({ signals: { meter } });
  return {
    record: (b) => t.recordTcpEvent(m, t.parseTcpEvent(b)),
    collect: async () => (await reader.collect()).resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).reduce((n, x) => n + x.dataPoints.length, 0),
  };
}

async function main(): Promise<void> {
  const { recs, sets } = workload(Number(process.env.BENCH_CONNECTIONS || 100_000));
  const rounds = Number(process.env.BENCH_ROUNDS || 7);
  const dir = process.env.BENCH_BASELINE;
  const sides: Array<{ name: string; p: Path; ns: number[]; collectMs: number[]; points: number }> = [{ name: 'telegen', p: ours(), ns: [], collectMs: [], points: 0 }];
  if (dir) sides.push({ name: 'baseline', p: baseline(dir), ns: [], collectMs: [], points: 0 });
  for (let r = 0; r < rounds + 1; r++) {
    // Alternate the order each round so neither side always runs on a warmer cache.
    for (const s of r % 2 ? [...sides].reverse() : sides) {
      const dt = cpuSecondsIn(() => { for (const b of recs) s.p.record(b); });
      const c0 = process.cpuUsage();
      s.points = await s.p.collect();
      const c = process.cpuUsage(c0);
      if (r === 0) continue;
      s.ns.push(dt / recs.length * 1e9);
      s.collectMs.push((c.user + c.system) / 1e3);
    }
  }
  const base = sides[1];
  const ratio = base ? base.ns.map((b, i) => b / sides[0].ns[i]) : [];
  writeResult('tcp-metrics', {
    workload: { events: recs.length, attributeSets: sets, mix: 'open + close (bytes, duration, srtt, rttvar) per connection, a retransmit every 50 connections' },
    telegen_ns_per_event: spread(sides[0].ns), telegen_collect_ms: spread(sides[0].collectMs), telegen_points: sides[0].points,
    ...(base ? { baseline: dir, baseline_ns_per_event: spread(base.ns), baseline_collect_ms: spread(base.collectMs), baseline_points: base.points, ratio_time_baseline_over_telegen: spread(ratio) } : {}),
    note: 'CPU time of this process (user + system); per-event cost of recording, and one cumulative collection after each round',
  });
}

main().catch((e) => { console.error(e); process.exit(1); });
