// The TCP tracer's own aggregation (host/src/tracers/tcp-series.ts) against sdk-metrics: the
// same kernel records (tg_tcp_event, laid out as the generated layout says) give the data points
// the SDK's instruments gave for the same attributes — names, units, types, temporality,
// boundaries, every value — and the series stay bounded: a cardinality limit per instrument
// with an overflow series that conserves every measurement, series of exited processes
// forgotten after one more export, a reused pid a new series. Live, with real processes:
// test/tracers/tcp.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Attributes } from '@opentelemetry/api';
import { MeterProvider, MetricReader, AggregationTemporality, MetricData, DataPointType } from '@opentelemetry/sdk-metrics';
import { TcpSeries, connAttributes, TCP_INSTRUMENTS } from '../../host/src/tracers/tcp-series';
import { tg_tcp_event as L, tg_tcp_ev as EV, tg_tcp_role as ROLE } from '../../host/src/generated/tcp-layout';

interface Ev {
  type: number; pid: number; comm: string; role: number; family: 2 | 10; raddr: string; lport: number; rport: number;
  durationNs?: number; sent?: number; recv?: number; srttUs?: number; rttvarUs?: number;
}

function addrBytes(a: string): Buffer {
  const b = Buffer.alloc(16);
  if (a.includes('.')) { b[10] = 0xff; b[11] = 0xff; a.split('.').forEach((x, i) => { b[12 + i] = Number(x); }); return b; }
  const [head, tail = ''] = a.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...new Array(8 - h.length - t.length).fill('0'), ...t];
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return b;
}

function record(e: Ev): Buffer {
  const b = Buffer.alloc(L.size);
  b.writeUInt32LE(e.type, L.type);
  b.writeUInt32LE(e.pid, L.pid);
  b.writeBigUInt64LE(BigInt(e.durationNs ?? 0), L.duration_ns);
  b.writeBigUInt64LE(BigInt(e.sent ?? 0), L.bytes_sent);
  b.writeBigUInt64LE(BigInt(e.recv ?? 0), L.bytes_recv);
  b.writeUInt32LE(e.srttUs ?? 0, L.srtt_us);
  b.writeUInt32LE(e.rttvarUs ?? 0, L.rttvar_us);
  b.writeUInt16LE(e.family, L.family);
  b[L.role] = e.role;
  addrBytes('127.0.0.1').copy(b, L.laddr);
  addrBytes(e.raddr).copy(b, L.raddr);
  b.writeUInt16LE(e.lport, L.lport);
  b.writeUInt16LE(e.rport, L.rport);
  b.write(e.comm, L.comm, 15, 'latin1');
  return b;
}

/** The oracle: what each event recorded through sdk-metrics instruments (the tracer's former path). */
async function viaSdk(events: Ev[]): Promise<MetricData[]> {
  class Reader extends MetricReader {
    constructor() { super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE }); }
    protected async onForceFlush(): Promise<void> { /* pull only */ }
    protected async onShutdown(): Promise<void> { /* pull only */ }
  }
  const reader = new Reader();
  const m = new MeterProvider({ readers: [reader] }).getMeter('telegen');
  const inst = Object.fromEntries(TCP_INSTRUMENTS.map((d) => {
    const opts = { unit: d.unit, description: d.description, advice: d.bounds ? { explicitBucketBoundaries: d.bounds } : undefined };
    return [d.name, d.kind === 'histogram' ? m.createHistogram(d.name, opts) : d.kind === 'updown' ? m.createUpDownCounter(d.name, opts) : m.createCounter(d.name, opts)];
  })) as Record<string, { add?: (v: number, a: Attributes) => void; record?: (v: number, a: Attributes) => void }>;
  const add = (n: string, v: number, a: Attributes) => inst[`telegen.tcp.${n}`].add!(v, a);
  const rec = (n: string, v: number, a: Attributes) => inst[`telegen.tcp.${n}`].record!(v, a);
  for (const e of events) {
    const full = connAttributes(e, true), noProc = connAttributes(e, false);
    const tx = { ...full, 'network.io.direction': 'transmit' }, rx = { ...full, 'network.io.direction': 'receive' };
    if (e.type === EV.TG_TCP_OPEN) { add('connection.opens', 1, full); add('connections.active', 1, noProc); }
    if (e.type === EV.TG_TCP_CLOSE) {
      add('connection.closes', 1, full); add('connections.active', -1, noProc);
      rec('connection.duration', (e.durationNs ?? 0) / 1e9, full);
      if (e.srttUs) { rec('srtt', e.srttUs / 1e6, full); rec('rttvar', (e.rttvarUs ?? 0) / 1e6, full); }
      add('io', e.sent ?? 0, tx); add('io', e.recv ?? 0, rx);
      rec('connection.io', e.sent ?? 0, tx); rec('connection.io', e.recv ?? 0, rx);
    }
    if (e.type === EV.TG_TCP_FAIL) add('connection.failures', 1, full);
    if (e.type === EV.TG_TCP_RETRANS) add('retransmits', 1, full);
    if (e.type === EV.TG_TCP_RESET_RX) add('resets', 1, { ...full, 'network.io.direction': 'receive' });
    if (e.type === EV.TG_TCP_RESET_TX) add('resets', 1, { ...full, 'network.io.direction': 'transmit' });
  }
  return (await reader.collect()).resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
}

/** A metric as comparable text: descriptor, type, temporality and its points by attributes. */
function shape(md: MetricData): unknown {
  const d = md.descriptor;
  const points = md.dataPoints.map((p) => [JSON.stringify(p.attributes), p.value] as const).sort(([a], [b]) => a.localeCompare(b));
  return {
    name: d.name, unit: d.unit, description: d.description, type: (d as { type?: unknown }).type, valueType: d.valueType,
    dataPointType: md.dataPointType, temporality: md.aggregationTemporality, monotonic: (md as { isMonotonic?: boolean }).isMonotonic, points,
  };
}

const client = (pid: number, comm: string, raddr: string, rport: number, family: 2 | 10 = 2) => ({ pid, comm, role: ROLE.TG_TCP_ROLE_CLIENT, family, raddr, lport: 40000 + pid, rport });

/** A connection's life: open, a close with bytes and RTT. */
function conn(c: Omit<Ev, 'type'>, sent: number, recv: number): Ev[] {
  return [{ ...c, type: EV.TG_TCP_OPEN }, { ...c, type: EV.TG_TCP_CLOSE, durationNs: 2_500_000 + sent, sent, recv, srttUs: 40 + recv % 7, rttvarUs: 20 }];
}

test('tcp series: the same points as sdk-metrics instruments for the same events', async () => {
  const events: Ev[] = [
    ...conn(client(100, 'curl', '10.0.0.1', 80), 1000, 5000),
    ...conn(client(100, 'curl', '10.0.0.1', 80), 0, 0),
    ...conn(client(101, 'node', '2001:db8::7', 443, 10), 1e6, 300),
    ...conn(client(101, 'node', '10.0.0.2', 443, 10), 12, 13),
    ...conn({ pid: 102, comm: 'nginx', role: ROLE.TG_TCP_ROLE_SERVER, family: 2, raddr: '10.0.0.9', lport: 8080, rport: 51515 }, 77, 1e9 + 1),
    { ...client(100, 'curl', '10.0.0.3', 81), type: EV.TG_TCP_FAIL },
    { ...client(100, 'curl', '10.0.0.3', 81), type: EV.TG_TCP_RESET_RX },
    { pid: 0, comm: 'swapper/1', role: ROLE.TG_TCP_ROLE_UNKNOWN, family: 2, raddr: '10.0.0.3', lport: 81, rport: 40100, type: EV.TG_TCP_RESET_TX },
    { ...client(101, 'node', '2001:db8::7', 443, 10), type: EV.TG_TCP_RETRANS },
    { ...client(101, 'node', '2001:db8::7', 443, 10), type: EV.TG_TCP_RETRANS },
    { ...client(103, 'psql', '10.0.0.4', 5432), type: EV.TG_TCP_OPEN },
  ];
  const ours = new TcpSeries(2000, [], () => 'alive');
  for (const e of events) ours.record(record(e));
  const mine = ours.collect();
  const sdk = await viaSdk(events);
  assert.deepEqual(mine.map(shape), sdk.map(shape));
  assert.ok(mine.every((m) => m.dataPoints.every((p) => p.startTime[0] > 0 && p.endTime[0] >= p.startTime[0])));
});

test('tcp series: at most `limit` series per instrument plus one overflow series, every measurement kept', () => {
  const limit = 3;
  const s = new TcpSeries(limit, [], () => 'alive');
  let bytes = 0;
  for (let pid = 1; pid <= 20; pid++) {
    for (const e of conn(client(pid, 'curl', '10.0.0.1', 80), pid * 10, pid)) s.record(record(e));
    bytes += pid * 11;
  }
  const out = s.collect();
  for (const m of out) assert.ok(m.dataPoints.length <= limit + 1, `${m.descriptor.name}: ${m.dataPoints.length}`);
  const io = out.find((m) => m.descriptor.name === 'telegen.tcp.io')!;
  assert.equal(io.dataPoints.reduce((n, p) => n + (p.value as number), 0), bytes);
  const opens = out.find((m) => m.descriptor.name === 'telegen.tcp.connection.opens')!;
  assert.deepEqual(opens.dataPoints.map((p) => p.attributes['process.pid'] ?? p.attributes['otel.metric.overflow']), [1, 2, 3, true]);
  assert.equal(opens.dataPoints[3].value, 17);
  assert.deepEqual(opens.dataPoints[3].attributes, { 'otel.metric.overflow': true });
  // io: 3 series are one connection attribute set in one direction each: pid 1 tx, rx, pid 2 tx.
  assert.equal(io.dataPoints.length, 4);
  const dur = out.find((m) => m.descriptor.name === 'telegen.tcp.connection.duration')!;
  assert.equal(dur.dataPointType, DataPointType.HISTOGRAM);
  assert.equal(dur.dataPoints.reduce((n, p) => n + (p.value as { count: number }).count, 0), 20);
});

test('tcp series: exited processes are exported once more, then forgotten; a reused pid is a new series; ports filter', () => {
  const start = new Map<number, string>([[1, 't1'], [2, 't2'], [3, 't3']]);
  const s = new TcpSeries(2, [80], (pid) => start.get(pid) ?? '');
  const pidsOf = (out: MetricData[]) => out.find((m) => m.descriptor.name === 'telegen.tcp.connection.opens')?.dataPoints.map((p) => p.attributes['process.pid'] ?? 'overflow') ?? [];
  for (const pid of [1, 2, 3]) s.record(record({ ...client(pid, 'curl', '10.0.0.1', 80), type: EV.TG_TCP_OPEN }));
  s.record(record({ ...client(1, 'curl', '10.0.0.1', 9999), type: EV.TG_TCP_OPEN }));
  assert.deepEqual(pidsOf(s.collect()), [1, 2, 'overflow']);
  start.delete(1);
  // Still there: the collection that learns of the exit carries the final values.
  assert.deepEqual(pidsOf(s.collect()), [1, 2, 'overflow']);
  assert.deepEqual(pidsOf(s.collect()), [2, 'overflow']);
  // The room pid 1 left goes to the next new attribute set.
  s.record(record({ ...client(3, 'curl', '10.0.0.1', 80), type: EV.TG_TCP_OPEN }));
  assert.deepEqual(pidsOf(s.collect()), [2, 'overflow', 3]);
  // Pid 2 reused by another process under the same comm: the old series goes after one export.
  const before = s.collect().find((m) => m.descriptor.name === 'telegen.tcp.connection.opens')!.dataPoints.find((p) => p.attributes['process.pid'] === 2)!;
  start.set(2, 't2-new');
  assert.deepEqual(pidsOf(s.collect()), [2, 'overflow', 3]);
  s.record(record({ ...client(2, 'curl', '10.0.0.1', 80), type: EV.TG_TCP_OPEN }));
  const after = s.collect().find((m) => m.descriptor.name === 'telegen.tcp.connection.opens')!.dataPoints.find((p) => p.attributes['process.pid'] === 2)!;
  assert.equal(after.value, 1);
  assert.notDeepEqual(after.startTime, before.startTime);
  assert.equal(s.stats().forgotten > 0, true);
});
