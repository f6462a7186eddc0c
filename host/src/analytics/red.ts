// RED series (semconv duration histograms per service, plus db.client.response.returned_rows and
// messaging.client.sent.messages / consumed.messages),
// aggregated here and turned into cumulative points at each collection (signals.addProducer).
//
// Per span: which instrument, a key built from the attribute values it keeps (no attribute object,
// no JSON, no sdk-metrics attribute hashing), a map lookup and a few additions. The attribute
// object of a series is built once, when the series is.
//
// Bounds: `perService` attribute sets per service and instrument, then that service's overflow
// series (service.name + otel.metric.overflow=true); `perInstrument` series per instrument over
// all services, then the instrument's overflow series (otel.metric.overflow=true alone), so a
// storm of services (short-lived processes, each its own service.name) costs one series. Series
// are forgotten after the collection that exported their final values when they saw no span for
// `idleMs`, or when every process that fed their service exited and none fed it since the last
// collection; a series that comes back starts a new cumulative stream (new start time).
import { Attributes, HrTime, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { hrTime } from '@opentelemetry/core';
import { MetricData } from '@opentelemetry/sdk-metrics';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { BucketExemplars } from './exemplars';
import { Hist, newHist, bucketOf, histAdd, histPoint } from './histogram';
import { normalizeStatement, ROWS_INSTRUMENT, ROWS_BUCKETS } from './db-statements';
import { cumulativeMetric, InstrumentInfo } from '../metrics/points';
import { readStartTime } from '../profile/process';
import type { MetricExemplar } from '../export/metrics-proto';

export const DURATION_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];
export const SLOT_MS = 5_000;
const SLOTS = 36;

export interface Slot { t: number; n: number; err: number; sumS: number }
export function slotAdd(ring: Slot[], tMs: number, err: boolean, s: number): void {
  const t = Math.floor(tMs / SLOT_MS) * SLOT_MS;
  let last = ring[ring.length - 1];
  if (!last || last.t !== t) {
    if (last && t < last.t) { last = ring.find((x) => x.t === t) ?? last; } else { last = { t, n: 0, err: 0, sumS: 0 }; ring.push(last); if (ring.length > SLOTS) ring.shift(); }
  }
  last.n++; if (err) last.err++; last.sumS += s;
}

interface RedInstrument {
  index: number;
  info: InstrumentInfo & { bounds: number[] };
  /** Semconv: rpc.*.duration are in milliseconds, the rest in seconds. */
  ms: boolean;
  /** Span attributes the series keeps, in this order. */
  keys: readonly string[];
  /** db.query.text (normalized) joins the keys. */
  statement: boolean;
}

const ERROR_SOURCES = ['error.type', 'rpc.grpc.status_code', 'db.response.status_code', 'dns.response_code'];
const MS_BUCKETS = DURATION_BUCKETS_S.map((x) => x * 1000);

function instrument(index: number, name: string, description: string, keys: string[], o: { ms?: boolean; statement?: boolean } = {}): RedInstrument {
  const ms = o.ms === true;
  return { index, info: { name, description, unit: ms ? 'ms' : 's', kind: 'histogram', bounds: ms ? MS_BUCKETS : DURATION_BUCKETS_S }, ms, keys, statement: o.statement === true };
}

const RPC = ['rpc.system', 'rpc.service', 'rpc.method', 'rpc.grpc.status_code', 'server.address', 'server.port'];
const I = {
  rpcServer: instrument(0, 'rpc.server.duration', 'Duration of inbound RPCs.', RPC, { ms: true }),
  rpcClient: instrument(1, 'rpc.client.duration', 'Duration of outbound RPCs.', RPC, { ms: true }),
  httpServer: instrument(2, 'http.server.request.duration', 'Duration of HTTP server requests.', ['http.request.method', 'http.response.status_code', 'http.route', 'network.protocol.version', 'url.scheme']),
  httpClient: instrument(3, 'http.client.request.duration', 'Duration of HTTP client requests.', ['http.request.method', 'http.response.status_code', 'server.address', 'server.port', 'network.protocol.version']),
  db: instrument(4, 'db.client.operation.duration', 'Duration of database client operations.', ['db.system.name', 'db.operation.name', 'db.collection.name', 'db.namespace', 'server.address', 'server.port'], { statement: true }),
  messaging: instrument(5, 'messaging.client.operation.duration', 'Duration of messaging operations initiated by a producer or consumer client.', ['messaging.system', 'messaging.operation.name', 'messaging.destination.name', 'server.address', 'server.port']),
  dns: instrument(6, 'dns.lookup.duration', 'Measures the time taken to perform a DNS lookup.', ['dns.question.name', 'server.address']),
};
const INSTRUMENT_COUNT = 7;
const ROWS: InstrumentInfo & { bounds: number[] } = { name: ROWS_INSTRUMENT, unit: '{row}', description: 'Actual number of records returned by the database operation.', kind: 'histogram', bounds: ROWS_BUCKETS };
/** Semconv messaging counters, fed by messaging.batch.message_count of the client's operations:
 *  a Produce request's records (send), a Fetch response's (receive). They keep the duration
 *  series' attributes (and its error.type: semconv counts the messages of failed sends too). */
const SENT: InstrumentInfo = { name: 'messaging.client.sent.messages', unit: '{message}', description: 'Number of messages producer attempted to send to the broker.', kind: 'counter' };
const CONSUMED: InstrumentInfo = { name: 'messaging.client.consumed.messages', unit: '{message}', description: 'Number of messages that were delivered to the application.', kind: 'counter' };

/** Which semconv instrument a span feeds. The database, messaging and DNS instruments measure
 *  clients (`db.client.*`, `messaging.client.*`, a lookup): the other side's spans (the database
 *  backend, the broker, the DNS server answering) feed none — they counted every query twice
 *  when both ends run here, and under the server's own service.name as if it were the client. */
function instrumentOf(a: Attributes, server: boolean): RedInstrument | undefined {
  if (a['rpc.system']) return server ? I.rpcServer : I.rpcClient;
  if (a['http.request.method']) return server ? I.httpServer : I.httpClient;
  if (server) return undefined;
  if (a['db.system.name']) return I.db;
  if (a['messaging.system']) return I.messaging;
  if (a['dns.question.name'] !== undefined) return I.dns;
  return undefined;
}

function errorType(a: Attributes): string {
  for (const k of ERROR_SOURCES) if (a[k] !== undefined && a[k] !== null) return String(a[k]);
  return '_OTHER';
}

/** Distinct attribute sets give distinct keys: strings are length-prefixed, other values typed. */
function keyOf(a: Attributes, keys: readonly string[]): string {
  let k = '';
  for (let i = 0; i < keys.length; i++) {
    const v = a[keys[i]];
    if (v === undefined) k += '-';
    else if (typeof v === 'string') k += `s${v.length}:${v}`;
    else if (typeof v === 'number' || typeof v === 'boolean') k += `${typeof v === 'number' ? 'n' : 'b'}${v};`;
    else { const j = JSON.stringify(v); k += `j${j.length}:${j}`; }
  }
  return k;
}

/** The statement a database span adds, or undefined. */
function statementOf(a: Attributes): string | undefined {
  const text = a['db.query.text'];
  return typeof text === 'string' && text.length > 0 ? normalizeStatement(text) : undefined;
}

export interface RedSeries {
  instrument: string;
  service: string;
  attributes: Attributes;
  overflow: 'service' | 'instrument' | undefined;
  start: HrTime;
  /** now() of the last span. */
  lastAt: number;
  count: number;
  errors: number;
  sumS: number;
  hist: Hist;
  exemplars: BucketExemplars;
  rows?: Hist;
  /** Messages sent / consumed (messaging series only, once a span carried a count). */
  sent?: number;
  consumed?: number;
}

interface ServiceRed {
  name: string;
  /** Per instrument: attribute key → series (the service's overflow series under OVERFLOW). */
  byInst: Array<Map<string, RedSeries> | undefined>;
  /** pid → its start time when first seen ('' = already gone then). */
  pids: Map<number, string>;
  lastPid: number;
  /** The collection count at its last span; SERVER spans' 5-second slots for the topology timeline. */
  epoch: number;
  slots: Slot[];
  /** Per instrument: the last attribute sets seen and their series (RedStore.recent). */
  recent: Array<Recent[] | undefined>;
  recentAt: number;
}

/** Attribute sets remembered per service and instrument. */
const RECENT = 8;
interface Recent { epoch: number; errType: string | undefined; text: unknown; values: unknown[]; ser: RedSeries }

const OVERFLOW = '\u0000overflow';

export interface RedLimits {
  perService: number;
  perInstrument: number;
  idleMs: number;
}

export class RedStore {
  readonly services = new Map<string, ServiceRed>();
  /** Per instrument: series count (all services) and the overflow series past perInstrument. */
  private readonly instCount = new Array<number>(INSTRUMENT_COUNT).fill(0);
  private readonly instOverflow = new Array<RedSeries | undefined>(INSTRUMENT_COUNT);
  /** Instruments in the order they were first used (the order of the exported metrics). */
  private readonly used: RedInstrument[] = [];
  /** A point's attribute object → its series: how the exporter's exemplar lookup finds it. */
  private readonly byAttributes = new WeakMap<Attributes, RedSeries>();
  overflowed = 0;
  forgotten = 0;
  /** Collections so far. */
  private epoch = 0;
  /** Where spans of services past the limit go: straight to the instruments' overflow series. */
  private readonly unknown: ServiceRed = { name: '', byInst: [], pids: new Map(), lastPid: 0, epoch: 0, slots: [], recent: [], recentAt: 0 };

  constructor(private readonly limits: RedLimits, private readonly now: () => number, private readonly startTimeOf: (pid: number) => string = readStartTime) {}

  /** Records a span (nothing when no RED instrument applies); `exemplar`: it may be one. */
  observe(s: ReadableSpan, exemplar: boolean): void {
    const a = s.attributes;
    const server = s.kind === SpanKind.SERVER;
    const inst = instrumentOf(a, server);
    if (!inst) {
      // A database or broker SERVER span still counts in its service's topology timeline.
      if (server && (a['db.system.name'] || a['messaging.system'] || a['dns.question.name'] !== undefined)) {
        const svc = this.service(String(s.resource.attributes['service.name'] ?? 'unknown'), a['process.pid']);
        slotAdd(svc.slots, this.now(), s.status.code === SpanStatusCode.ERROR, s.duration[0] + s.duration[1] / 1e9);
      }
      return;
    }
    const err = s.status.code === SpanStatusCode.ERROR;
    const errType = err ? errorType(a) : undefined;
    const t = this.now();
    const svc = this.service(String(s.resource.attributes['service.name'] ?? 'unknown'), a['process.pid']);
    let ser = this.recent(svc, inst, a, errType);
    if (ser === undefined) {
      const statement = inst.statement ? statementOf(a) : undefined;
      let key = keyOf(a, inst.keys);
      if (statement !== undefined) key += `q${statement.length}:${statement}`;
      if (errType !== undefined) key += `e${errType}`;
      let byKey = svc.byInst[inst.index];
      if (!byKey) { byKey = new Map(); svc.byInst[inst.index] = byKey; }
      ser = byKey.get(key) ?? this.newSeries(svc, byKey, inst, key, a, statement, errType);
      if (ser.overflow === undefined) this.remember(svc, inst, a, errType, ser);
    }
    const sec = s.duration[0] + s.duration[1] / 1e9;
    const v = inst.ms ? sec * 1000 : sec;
    const b = bucketOf(inst.info.bounds, v);
    ser.lastAt = t;
    ser.count++;
    if (err) ser.errors++;
    ser.sumS += sec;
    histAdd(ser.hist, b, v);
    if (exemplar) ser.exemplars.offer(b, s, v, err);
    if (inst === I.db) {
      const n = a['db.response.returned_rows'];
      if (typeof n === 'number' && n >= 0) histAdd(ser.rows ??= newHist(ROWS_BUCKETS), bucketOf(ROWS_BUCKETS, n), n);
    } else if (inst === I.messaging) {
      const n = a['messaging.batch.message_count'];
      if (typeof n === 'number' && n >= 0) {
        const op = a['messaging.operation.type'];
        if (op === 'send') ser.sent = (ser.sent ?? 0) + n;
        else if (op === 'receive') ser.consumed = (ser.consumed ?? 0) + n;
      }
    }
    if (server) slotAdd(svc.slots, t, err, sec);
  }

  /** The series of one of the service's last attribute sets that `a` repeats, value for value
   *  (the key string and its lookup were the most of observe's CPU and garbage); only series
   *  that are not overflow ones (those count every span), and only until the next collection
   *  (which may forget series). */
  private recent(svc: ServiceRed, inst: RedInstrument, a: Attributes, errType: string | undefined): RedSeries | undefined {
    const list = svc.recent[inst.index];
    if (list === undefined) return undefined;
    const keys = inst.keys;
    const text = inst.statement ? a['db.query.text'] : undefined;
    for (let j = 0; j < list.length; j++) {
      const m = list[j];
      if (m.epoch !== this.epoch || m.errType !== errType || m.text !== text) continue;
      let i = 0;
      while (i < keys.length && a[keys[i]] === m.values[i]) i++;
      if (i === keys.length) return m.ser;
    }
    return undefined;
  }

  private remember(svc: ServiceRed, inst: RedInstrument, a: Attributes, errType: string | undefined, ser: RedSeries): void {
    let list = svc.recent[inst.index];
    if (list === undefined) { list = []; svc.recent[inst.index] = list; }
    const values = new Array<unknown>(inst.keys.length);
    for (let i = 0; i < values.length; i++) values[i] = a[inst.keys[i]];
    const m: Recent = { epoch: this.epoch, errType, text: inst.statement ? a['db.query.text'] : undefined, values, ser };
    if (list.length < RECENT) list.push(m); else { list[svc.recentAt] = m; svc.recentAt = (svc.recentAt + 1) % RECENT; }
  }

  private service(name: string, pid: unknown): ServiceRed {
    let svc = this.services.get(name);
    if (!svc) {
      // As many services as one instrument may have series: the rest can only reach overflow
      // series, and are not remembered (collections forget services without series; with no
      // metrics reader nothing collects).
      if (this.services.size >= this.limits.perInstrument) return this.unknown;
      svc = { name, byInst: new Array(INSTRUMENT_COUNT), pids: new Map(), lastPid: 0, epoch: this.epoch, slots: [], recent: new Array(INSTRUMENT_COUNT), recentAt: 0 };
      this.services.set(name, svc);
    }
    svc.epoch = this.epoch;
    if (typeof pid === 'number' && pid !== svc.lastPid) {
      svc.lastPid = pid;
      if (!svc.pids.has(pid)) svc.pids.set(pid, this.startTimeOf(pid));
    }
    return svc;
  }

  private newSeries(svc: ServiceRed, byKey: Map<string, RedSeries>, inst: RedInstrument, key: string, a: Attributes, statement: string | undefined, errType: string | undefined): RedSeries {
    const room = this.instCount[inst.index] < this.limits.perInstrument && svc !== this.unknown;
    const own = byKey.size - (byKey.has(OVERFLOW) ? 1 : 0);
    if (room && own < this.limits.perService) {
      const attributes: Attributes = { 'service.name': svc.name };
      for (const k of inst.keys) if (a[k] !== undefined) attributes[k] = a[k];
      if (statement !== undefined) attributes['db.query.text'] = statement;
      if (errType !== undefined) attributes['error.type'] = errType;
      return this.add(byKey, key, inst, this.make(inst, svc.name, attributes, undefined));
    }
    // Past a limit: every new attribute set shares an overflow series.
    this.overflowed++;
    const so = svc === this.unknown ? undefined : byKey.get(OVERFLOW);
    if (so) return so;
    if (room) return this.add(byKey, OVERFLOW, inst, this.make(inst, svc.name, { 'service.name': svc.name, 'otel.metric.overflow': true }, 'service'));
    return this.instOverflow[inst.index] ??= this.make(inst, '', { 'otel.metric.overflow': true }, 'instrument');
  }

  private add(byKey: Map<string, RedSeries>, key: string, inst: RedInstrument, ser: RedSeries): RedSeries {
    byKey.set(key, ser);
    this.instCount[inst.index]++;
    return ser;
  }

  private make(inst: RedInstrument, service: string, attributes: Attributes, overflow: RedSeries['overflow']): RedSeries {
    if (!this.used.includes(inst)) this.used.push(inst);
    const ser: RedSeries = {
      instrument: inst.info.name, service, attributes, overflow, start: hrTime(), lastAt: this.now(),
      count: 0, errors: 0, sumS: 0, hist: newHist(inst.info.bounds), exemplars: new BucketExemplars(inst.info.bounds.length + 1),
    };
    this.byAttributes.set(attributes, ser);
    return ser;
  }

  /** ExemplarSource: a RED histogram point's exemplars, one per bucket (collected: a new epoch). */
  exemplarsFor(metricName: string, attributes: Attributes): MetricExemplar[] | undefined {
    const ser = this.byAttributes.get(attributes);
    return ser && ser.instrument === metricName ? ser.exemplars.collect(attributes) : undefined;
  }

  /** Every series of a service. */
  *seriesOf(svc: ServiceRed): Iterable<RedSeries> {
    for (const m of svc.byInst) if (m) yield* m.values();
  }

  /** Cumulative points of every series (duration, then returned rows, messages sent and
   *  consumed); then forgets the series whose final values these points carry. */
  collect(): MetricData[] {
    const t = this.now();
    const end = hrTime();
    const idleBefore = t - this.limits.idleMs;
    const exited = new Set<ServiceRed>();
    for (const svc of this.services.values()) if (this.allExited(svc) && svc.epoch < this.epoch) exited.add(svc);
    this.epoch++;
    const out: MetricData[] = [];
    const rows: object[] = [];
    const sent: object[] = [];
    const consumed: object[] = [];
    for (const inst of this.used) {
      const points: object[] = [];
      const visit = (ser: RedSeries, gone: boolean): boolean => {
        points.push(histPoint(ser.hist, inst.info.bounds, ser.attributes, ser.start, end));
        if (ser.rows) rows.push(histPoint(ser.rows, ROWS.bounds, ser.attributes, ser.start, end));
        if (ser.sent !== undefined) sent.push({ attributes: ser.attributes, startTime: ser.start, endTime: end, value: ser.sent });
        if (ser.consumed !== undefined) consumed.push({ attributes: ser.attributes, startTime: ser.start, endTime: end, value: ser.consumed });
        if (!gone && ser.lastAt >= idleBefore) return false;
        this.forgotten++;
        return true;
      };
      for (const svc of this.services.values()) {
        const byKey = svc.byInst[inst.index];
        if (!byKey) continue;
        for (const [key, ser] of byKey) if (visit(ser, exited.has(svc))) { byKey.delete(key); this.instCount[inst.index]--; }
        if (!byKey.size) svc.byInst[inst.index] = undefined;
      }
      const io = this.instOverflow[inst.index];
      if (io && visit(io, false)) this.instOverflow[inst.index] = undefined;
      if (points.length) out.push(cumulativeMetric(inst.info, points));
    }
    if (rows.length) out.push(cumulativeMetric(ROWS, rows));
    if (sent.length) out.push(cumulativeMetric(SENT, sent));
    if (consumed.length) out.push(cumulativeMetric(CONSUMED, consumed));
    // A service without series stays while its timeline has recent slots (a database or broker
    // whose SERVER spans feed no client instrument).
    const slotsFrom = t - SLOTS * SLOT_MS;
    for (const svc of this.services.values()) {
      if (svc.byInst.some((m) => m)) continue;
      const last = svc.slots[svc.slots.length - 1];
      if (!last || last.t < slotsFrom || exited.has(svc)) this.services.delete(svc.name);
    }
    return out;
  }

  /** Drops the service's exited pids (a reused pid has another start time); true when it had
   *  processes and none is left. */
  private allExited(svc: ServiceRed): boolean {
    if (!svc.pids.size) return false;
    for (const [pid, start] of svc.pids) if (!start || this.startTimeOf(pid) !== start) svc.pids.delete(pid);
    svc.lastPid = 0;
    return svc.pids.size === 0;
  }
}
