// The TCP tracer's metrics, aggregated here rather than through sdk-metrics instruments: a
// kernel event costs one key built from its raw fields and one Map lookup (the connection's
// attribute set, cached until the next collection), then plain additions. Data points are built
// at collection time (a metric producer on the agent's reader) with the names, units,
// attributes, boundaries and cumulative temporality the instruments had.
//
// Bounded: every instrument holds at most `cardinality_limit` series, then one overflow series
// (otel.metric.overflow=true; metrics/series-limit.ts, shared with analytics). Series of a
// process that exited are exported once more with their final values and then forgotten: the
// next collection no longer has them. Liveness is checked per pid at collection time against
// the start time /proc/PID/stat gave when the pid was first seen, so a reused pid is a new
// process; a pid reused within one interval under the same comm still merges into one series
// for that interval (the kernel event carries no start time).
import { Attributes, HrTime } from '@opentelemetry/api';
import { hrTime } from '@opentelemetry/core';
import { MetricData } from '@opentelemetry/sdk-metrics';
import { addrText, cString } from './bpf-object';
import { readStartTime } from '../profile/process';
import { SeriesLimit, OVERFLOW_ATTRIBUTES } from '../metrics/series-limit';
import { cumulativeMetric, InstrumentInfo } from '../metrics/points';
import { tg_tcp_event as L, tg_tcp_ev as EV, tg_tcp_role as ROLE } from '../generated/tcp-layout';

// RTTs run from tens of microseconds (loopback, same rack) to seconds; connections from a
// millisecond to hours; the SDK's default boundaries (0 … 10000) fit none of them.
const RTT_BUCKETS_S = [1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1, 2.5, 5];
const DURATION_BUCKETS_S = [1e-3, 1e-2, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600];
const BYTES_BUCKETS = [0, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/** In the order the instruments were created before (the order of the exported metrics). */
export const TCP_INSTRUMENTS: InstrumentInfo[] = [
  { name: 'telegen.tcp.connection.opens', unit: '{connection}', description: 'TCP connections established', kind: 'counter' },
  { name: 'telegen.tcp.connection.closes', unit: '{connection}', description: 'Established TCP connections closed', kind: 'counter' },
  { name: 'telegen.tcp.connection.failures', unit: '{connection}', description: 'TCP connects that never got established (refused, reset, timed out)', kind: 'counter' },
  { name: 'telegen.tcp.connection.duration', unit: 's', description: 'Established → closed', kind: 'histogram', bounds: DURATION_BUCKETS_S },
  { name: 'telegen.tcp.srtt', unit: 's', description: 'Smoothed RTT of a connection when it closed', kind: 'histogram', bounds: RTT_BUCKETS_S },
  { name: 'telegen.tcp.rttvar', unit: 's', description: 'RTT mean deviation of a connection when it closed', kind: 'histogram', bounds: RTT_BUCKETS_S },
  { name: 'telegen.tcp.retransmits', unit: '{segment}', description: 'TCP segments retransmitted', kind: 'counter' },
  { name: 'telegen.tcp.resets', unit: '{segment}', description: 'TCP resets sent (network.io.direction=transmit) or received (receive)', kind: 'counter' },
  { name: 'telegen.tcp.io', unit: 'By', description: 'Bytes over closed TCP connections (sent = acknowledged by the peer)', kind: 'counter' },
  { name: 'telegen.tcp.connection.io', unit: 'By', description: 'Bytes per closed TCP connection and direction', kind: 'histogram', bounds: BYTES_BUCKETS },
  { name: 'telegen.tcp.connections.active', unit: '{connection}', description: 'TCP connections established and not yet closed', kind: 'updown' },
];
const [I_OPENS, I_CLOSES, I_FAILURES, I_DURATION, I_SRTT, I_RTTVAR, I_RETRANS, I_RESETS, I_IO, I_CONN_IO, I_ACTIVE] = TCP_INSTRUMENTS.map((_, i) => i);

/** One series of one instrument: a sum, or a histogram when `counts` is set. */
interface Acc { attributes: Attributes; pid: number; start: HrTime; value: number; counts?: number[]; sum: number; min: number; max: number }

type Dir = '' | 'transmit' | 'receive';
/** A (instrument, direction) pair a connection's events feed. */
interface Slot { instrument: number; dir: Dir; withProcess: boolean }
const slot = (instrument: number, dir: Dir = '', withProcess = true): Slot => ({ instrument, dir, withProcess });
const SLOTS: Slot[] = [
  slot(I_OPENS), slot(I_CLOSES), slot(I_FAILURES), slot(I_DURATION), slot(I_SRTT), slot(I_RTTVAR), slot(I_RETRANS),
  slot(I_RESETS, 'receive'), slot(I_RESETS, 'transmit'), slot(I_IO, 'transmit'), slot(I_IO, 'receive'),
  slot(I_CONN_IO, 'transmit'), slot(I_CONN_IO, 'receive'), slot(I_ACTIVE, '', false),
];
const [S_OPENS, S_CLOSES, S_FAILURES, S_DURATION, S_SRTT, S_RTTVAR, S_RETRANS, S_RESET_RX, S_RESET_TX, S_IO_TX, S_IO_RX, S_CONN_IO_TX, S_CONN_IO_RX, S_ACTIVE] = SLOTS.map((_, i) => i);

/** One attribute set of a connection (process × peer × service port × role), with the series
 *  each slot resolved to (its own or an instrument's overflow series). */
interface Conn { pid: number; attributes: Attributes; noProcess: Attributes; key: string; noProcessKey: string; accs: Array<Acc | undefined> }

/** The service port of a connection: the remote one for a client, the local one for a server.
 *  A reset we send for no tracked socket answers a segment addressed to our port (a closed port
 *  is the common case): the local one. Otherwise, with no role, the lower of the two. */
export function servicePort(e: { type: number; role: number; lport: number; rport: number }): number {
  if (e.role === ROLE.TG_TCP_ROLE_CLIENT) return e.rport;
  if (e.role === ROLE.TG_TCP_ROLE_SERVER) return e.lport;
  if (e.type === EV.TG_TCP_RESET_TX) return e.lport;
  return Math.min(e.lport, e.rport);
}

const ROLE_NAME: Record<number, string> = { [ROLE.TG_TCP_ROLE_CLIENT]: 'client', [ROLE.TG_TCP_ROLE_SERVER]: 'server' };

/** The attributes of a connection's series (without network.io.direction). */
export function connAttributes(e: { family: number; raddr: string; role: number; pid: number; comm: string; type: number; lport: number; rport: number }, withProcess: boolean): Attributes {
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

const eventPort = (b: Buffer, type: number): number => servicePort({ type, role: b[L.role], lport: b.readUInt16LE(L.lport), rport: b.readUInt16LE(L.rport) });

const u16 = (b: Buffer, o: number): number => b[o] | (b[o + 1] << 8);
const u64 = (b: Buffer, o: number): number => b.readUInt32LE(o) + b.readUInt32LE(o + 4) * 0x1_0000_0000;

/** The cache key of an event's connection attribute set, from the raw fields, as one flat
 *  string of 16-bit units (no slices, no concatenation): family, role, service port, the pid,
 *  the peer's 16 address bytes and, with a pid, the comm's 16 bytes. */
export function rawKey(b: Buffer, type: number, pid: number): string {
  const a = L.raddr, c = L.comm;
  const head0 = b[L.family] | (b[L.role] << 8), port = eventPort(b, type);
  if (!pid) return String.fromCharCode(head0, port, u16(b, a), u16(b, a + 2), u16(b, a + 4), u16(b, a + 6), u16(b, a + 8), u16(b, a + 10), u16(b, a + 12), u16(b, a + 14));
  return String.fromCharCode(head0, port, pid & 0xffff, pid >>> 16, u16(b, a), u16(b, a + 2), u16(b, a + 4), u16(b, a + 6), u16(b, a + 8), u16(b, a + 10), u16(b, a + 12), u16(b, a + 14),
    u16(b, c), u16(b, c + 2), u16(b, c + 4), u16(b, c + 6), u16(b, c + 8), u16(b, c + 10), u16(b, c + 12), u16(b, c + 14));
}

const attrKey = (a: Attributes): string => JSON.stringify(a);

/** Closed sockets remembered for the reset that may follow each one at once (same CPU, next
 *  record); a bound, not a window: concurrent closes on other CPUs interleave only a few. */
const RECENT_CLOSES = 1024;

/** Both ends of a socket as one string of 16-bit units: ports, then local and remote address. */
function tupleKey(b: Buffer): string {
  const l = L.laddr, r = L.raddr;
  return String.fromCharCode(b.readUInt16LE(L.lport), b.readUInt16LE(L.rport),
    u16(b, l), u16(b, l + 2), u16(b, l + 4), u16(b, l + 6), u16(b, l + 8), u16(b, l + 10), u16(b, l + 12), u16(b, l + 14),
    u16(b, r), u16(b, r + 2), u16(b, r + 4), u16(b, r + 6), u16(b, r + 8), u16(b, r + 10), u16(b, r + 12), u16(b, r + 14));
}

function bucketOf(bounds: number[], v: number): number {
  let i = 0;
  while (i < bounds.length && bounds[i] < v) i++;
  return i;
}

export interface TcpSeriesStats { series: number[]; overflowed: number; forgotten: number; processes: number }

export class TcpSeries {
  /** Per instrument: series by attribute key, bounded. */
  private readonly limits: Array<SeriesLimit<Acc, { slot: Slot; conn: Conn }>>;
  /** Raw event key → connection; emptied at every collection (it only saves the parsing). */
  private conns = new Map<string, Conn>();
  /** pid → its start time when first seen ('' = already gone then): the liveness reference. */
  private readonly procs = new Map<number, string>();
  forgotten = 0;
  private readonly ports: Set<number> | undefined;
  /** 4-tuple → owner of the sockets closed last (see rememberClose), oldest first. */
  private readonly recentCloses = new Map<string, { role: number; pid: number; comm: Buffer }>();

  constructor(limit: number, ports: number[] = [], private readonly startTimeOf: (pid: number) => string = readStartTime, private readonly now: () => HrTime = () => hrTime()) {
    this.limits = TCP_INSTRUMENTS.map((inst) => new SeriesLimit<Acc, { slot: Slot; conn: Conn }>(limit, (_key, overflow, { slot: s, conn }) => {
      const base = s.withProcess ? conn.attributes : conn.noProcess;
      const attributes = overflow ? OVERFLOW_ATTRIBUTES : s.dir ? { ...base, 'network.io.direction': s.dir } : base;
      const counts = inst.bounds ? new Array<number>(inst.bounds.length + 1).fill(0) : undefined;
      return { attributes, pid: overflow || !s.withProcess ? 0 : conn.pid, start: this.now(), value: 0, counts, sum: 0, min: Infinity, max: -Infinity };
    }));
    this.ports = ports.length ? new Set(ports) : undefined;
  }

  /** One kernel event (a tg_tcp_event record, read in place). */
  record(b: Buffer): void {
    const type = b.readUInt32LE(L.type);
    if (type === EV.TG_TCP_CLOSE) this.rememberClose(b);
    else if (type === EV.TG_TCP_RESET_TX && !b[L.role]) b = this.ownerOfReset(b);
    if (this.ports && !this.ports.has(eventPort(b, type))) return;
    const pid = b.readUInt32LE(L.pid);
    const raw = rawKey(b, type, pid);
    const c = this.conns.get(raw) ?? this.newConn(raw, b, type, pid);
    switch (type) {
      case EV.TG_TCP_OPEN:
        this.add(c, S_OPENS, 1);
        this.add(c, S_ACTIVE, 1);
        break;
      case EV.TG_TCP_CLOSE: {
        const sent = u64(b, L.bytes_sent), recv = u64(b, L.bytes_recv);
        this.add(c, S_CLOSES, 1);
        this.add(c, S_ACTIVE, -1);
        this.observe(c, S_DURATION, u64(b, L.duration_ns) / 1e9);
        const srtt = b.readUInt32LE(L.srtt_us);
        if (srtt) { this.observe(c, S_SRTT, srtt / 1e6); this.observe(c, S_RTTVAR, b.readUInt32LE(L.rttvar_us) / 1e6); }
        this.add(c, S_IO_TX, sent);
        this.add(c, S_IO_RX, recv);
        this.observe(c, S_CONN_IO_TX, sent);
        this.observe(c, S_CONN_IO_RX, recv);
        break;
      }
      case EV.TG_TCP_FAIL: this.add(c, S_FAILURES, 1); break;
      case EV.TG_TCP_RETRANS: this.add(c, S_RETRANS, 1); break;
      case EV.TG_TCP_RESET_RX: this.add(c, S_RESET_RX, 1); break;
      case EV.TG_TCP_RESET_TX: this.add(c, S_RESET_TX, 1); break;
    }
  }

  /** A reset sent while a socket is closed (close() with unread data, SO_LINGER 0, abort) goes
   *  out after its CLOSE transition, when the kernel program no longer holds the connection: the
   *  record has no role and no process, and its local port, which a reset to a closed port names,
   *  is here a client's ephemeral one. The socket's close is the record just before it in the
   *  ring, so recent closes are kept by 4-tuple to name the reset's owner. */
  private rememberClose(b: Buffer): void {
    const k = tupleKey(b);
    this.recentCloses.delete(k);
    this.recentCloses.set(k, { role: b[L.role], pid: b.readUInt32LE(L.pid), comm: Buffer.from(b.subarray(L.comm, L.comm + 16)) });
    if (this.recentCloses.size > RECENT_CLOSES) this.recentCloses.delete(this.recentCloses.keys().next().value!);
  }

  private ownerOfReset(b: Buffer): Buffer {
    const k = tupleKey(b);
    const c = this.recentCloses.get(k);
    if (!c) return b;
    this.recentCloses.delete(k);
    const own = Buffer.from(b);
    own[L.role] = c.role;
    own.writeUInt32LE(c.pid, L.pid);
    c.comm.copy(own, L.comm);
    return own;
  }

  private newConn(raw: string, b: Buffer, type: number, pid: number): Conn {
    const e = { type, pid, family: b.readUInt16LE(L.family), role: b[L.role], lport: b.readUInt16LE(L.lport), rport: b.readUInt16LE(L.rport), raddr: addrText(b, L.raddr), comm: pid ? cString(b, L.comm, 16) : '' };
    const attributes = connAttributes(e, true);
    const noProcess = connAttributes(e, false);
    const c: Conn = { pid, attributes, noProcess, key: attrKey(attributes), noProcessKey: attrKey(noProcess), accs: new Array(SLOTS.length) };
    this.conns.set(raw, c);
    if (pid && !this.procs.has(pid)) this.procs.set(pid, this.startTimeOf(pid));
    return c;
  }

  private acc(c: Conn, s: number): Acc {
    const sl = SLOTS[s];
    const key = (sl.withProcess ? c.key : c.noProcessKey) + sl.dir;
    return (c.accs[s] = this.limits[sl.instrument].get(key, { slot: sl, conn: c }));
  }

  private add(c: Conn, s: number, v: number): void {
    (c.accs[s] ?? this.acc(c, s)).value += v;
  }

  private observe(c: Conn, s: number, v: number): void {
    const a = c.accs[s] ?? this.acc(c, s);
    a.counts![bucketOf(TCP_INSTRUMENTS[SLOTS[s].instrument].bounds!, v)]++;
    a.value++;
    a.sum += v;
    if (v < a.min) a.min = v;
    if (v > a.max) a.max = v;
  }

  /** Cumulative data points of every series; then the series of processes that exited are
   *  forgotten (this collection carried their final values). */
  collect(): MetricData[] {
    const gone = new Set<number>();
    for (const [pid, start] of this.procs) if (!start || this.startTimeOf(pid) !== start) gone.add(pid);
    const end = this.now();
    const out: MetricData[] = [];
    TCP_INSTRUMENTS.forEach((inst, i) => {
      const series = this.limits[i].series;
      if (!series.size) return;
      const dataPoints = [];
      for (const [key, a] of series) {
        dataPoints.push(inst.kind !== 'histogram'
          ? { attributes: a.attributes, startTime: a.start, endTime: end, value: a.value }
          : { attributes: a.attributes, startTime: a.start, endTime: end, value: { min: a.value ? a.min : undefined, max: a.value ? a.max : undefined, sum: a.sum, buckets: { boundaries: inst.bounds!, counts: a.counts!.slice() }, count: a.value } });
        if (a.pid && gone.has(a.pid)) { series.delete(key); this.forgotten++; }
      }
      out.push(cumulativeMetric(inst, dataPoints));
    });
    for (const pid of gone) this.procs.delete(pid);
    // Connections re-resolve their series after a collection: forgotten ones are gone, and
    // connections that went to an overflow series get room freed by exited processes.
    this.conns = new Map();
    return out;
  }

  stats(): TcpSeriesStats {
    return { series: this.limits.map((l) => l.series.size), overflowed: this.limits.reduce((n, l) => n + l.overflowed, 0), forgotten: this.forgotten, processes: this.procs.size };
  }
}
