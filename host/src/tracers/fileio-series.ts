// The file I/O tracer's metrics, built from the histograms the kernel keeps (bpf/fileio.bpf.c,
// one cumulative tg_fileio_hist per process × directory × operation × comm) rather than through
// sdk-metrics instruments: the SDK has no weighted record(), so replaying kernel buckets would cost
// one call per operation and lose the exact sums. At each collection (a metric producer on the
// agent's reader) every kernel entry is read once; what it gained since the last read is added to
// its series, so the kernel never resets a value a CPU may be adding to. Names, units,
// attributes, boundaries and cumulative temporality are those the instruments had.
//
// Bounded: at most `limit` attribute sets per instrument, then one otel.metric.overflow=true
// series (metrics/series-limit.ts); operations the full kernel map could not hold arrive in the
// per-operation overflow slots and go to that series too. Processes that exited are exported
// once more with their final values, then forgotten here and deleted from the kernel map.
import { Attributes, HrTime, ValueType } from '@opentelemetry/api';
import { hrTime } from '@opentelemetry/core';
import { AggregationTemporality, DataPointType, InstrumentType, MetricData } from '@opentelemetry/sdk-metrics';
import * as os from 'os';
import { BpfObject, cString } from './bpf-object';
import { readStartTime } from '../profile/process';
import { SeriesLimit, OVERFLOW_ATTRIBUTES, OVERFLOW_KEY } from '../metrics/series-limit';
import {
  tg_fileio_hist as H, tg_fileio_hist_len as HL, tg_fileio_hist_key as K, tg_fileio_event as E,
  tg_fileio_op as OP, tg_fileio_limits as LIM, tg_fileio_lat_bound_us as LAT_US, tg_fileio_size_bound as SIZE_B,
} from '../generated/fileio-layout';

/** Exported boundaries: the kernel's bucket bounds from bpf/include/fileio.h. */
export const LATENCY_BUCKETS_S = Object.values(LAT_US).sort((a, b) => a - b).map((us) => us / 1e6);
export const SIZE_BUCKETS_BY = Object.values(SIZE_B).sort((a, b) => a - b);

export const OP_NAME: Record<number, string> = {
  [OP.TG_FILEIO_OPEN]: 'open', [OP.TG_FILEIO_READ]: 'read', [OP.TG_FILEIO_WRITE]: 'write', [OP.TG_FILEIO_PREAD]: 'pread',
  [OP.TG_FILEIO_PWRITE]: 'pwrite', [OP.TG_FILEIO_FSYNC]: 'fsync', [OP.TG_FILEIO_CLOSE]: 'close',
};

const ERRNO_NAME = new Map<number, string>(Object.entries(os.constants.errno).map(([k, v]) => [v, k]));
/** error.type: the errno's name (ENOENT), low-cardinality and what strace shows. */
export function errnoName(ret: number): string {
  return ERRNO_NAME.get(-ret) ?? String(-ret);
}

/** One kernel histogram as read: cumulative since its entry appeared. */
export interface HistSnapshot { lat: number[]; latSumNs: number; latMinNs: number; latMaxNs: number; size: number[]; sizeSum: number; sizeMin: number; sizeMax: number }

const u64 = (b: Buffer, off: number): number => Number(b.readBigUInt64LE(off));
const u64s = (b: Buffer, off: number, n: number): number[] => Array.from({ length: n }, (_, i) => u64(b, off + 8 * i));

export function readHist(b: Buffer): HistSnapshot {
  const sizeSums = u64s(b, H.size_sums, HL.size_sums);
  return {
    lat: u64s(b, H.lat_counts, HL.lat_counts), latSumNs: u64(b, H.lat_sum_ns), latMinNs: u64(b, H.lat_min_ns), latMaxNs: u64(b, H.lat_max_ns),
    size: u64s(b, H.size_counts, HL.size_counts), sizeSum: sizeSums.reduce((s, x) => s + x, 0), sizeMin: u64(b, H.size_min), sizeMax: u64(b, H.size_max),
  };
}

const EMPTY: HistSnapshot = { lat: new Array(HL.lat_counts).fill(0), latSumNs: 0, latMinNs: Infinity, latMaxNs: 0, size: new Array(HL.size_counts).fill(0), sizeSum: 0, sizeMin: Infinity, sizeMax: 0 };

/** A kernel overflow slot's minima start at ~0 (u64 max): what the kernel compares against. */
export function emptyHistValue(): Buffer {
  const b = Buffer.alloc(H.size);
  b.writeBigUInt64LE(0xffffffffffffffffn, H.lat_min_ns);
  b.writeBigUInt64LE(0xffffffffffffffffn, H.size_min);
  return b;
}

/** One attribute set: the duration histogram, the size histogram (read/write ops that moved
 *  bytes), or the error count, by what the series is of. */
interface Acc { attributes: Attributes; pid: number; start: HrTime; lat: number[]; latSumNs: number; latMinNs: number; latMaxNs: number; size: number[]; sizeSum: number; sizeMin: number; sizeMax: number; errors: number }

/** `cur - last` added to `a` (minima and maxima over both). */
export function addDelta(a: Acc, cur: HistSnapshot, last: HistSnapshot): void {
  for (let i = 0; i < cur.lat.length; i++) a.lat[i] += cur.lat[i] - last.lat[i];
  for (let i = 0; i < cur.size.length; i++) a.size[i] += cur.size[i] - last.size[i];
  a.latSumNs += cur.latSumNs - last.latSumNs;
  a.sizeSum += cur.sizeSum - last.sizeSum;
  if (cur.latMinNs < a.latMinNs) a.latMinNs = cur.latMinNs;
  if (cur.latMaxNs > a.latMaxNs) a.latMaxNs = cur.latMaxNs;
  if (cur.sizeMin < a.sizeMin) a.sizeMin = cur.sizeMin;
  if (cur.sizeMax > a.sizeMax) a.sizeMax = cur.sizeMax;
}

/** A kernel entry being followed: its key, its series and what was last read from it. */
interface Tracked { key: Buffer; pid: number; acc: Acc; last: HistSnapshot }

interface Who { pid: number; comm: string; dir: string; op: string }
const whoAttributes = (w: Who): Attributes => ({ 'telegen.file.operation': w.op, 'file.directory': w.dir, 'process.pid': w.pid, 'process.executable.name': w.comm });

const sum = (xs: number[]): number => xs.reduce((s, x) => s + x, 0);

export interface FileioSeriesStats { series: number; errorSeries: number; overflowed: number; forgotten: number; processes: number }

export class FileioSeries {
  private readonly hists: SeriesLimit<Acc, Who>;
  private readonly errs: SeriesLimit<Acc, Who & { error: string }>;
  /** Kernel key (as latin1) → the entry's series and last snapshot. */
  private readonly tracked = new Map<string, Tracked>();
  /** The kernel's per-operation overflow slots, read like any entry (never deleted). */
  private readonly slots = new Map<number, HistSnapshot>();
  /** dir_id (8 key bytes as latin1) → file.directory. */
  private readonly dirs = new Map<string, string>();
  /** pid → its start time when first seen ('' = already gone then): the liveness reference. */
  private readonly procs = new Map<number, string>();
  forgotten = 0;
  /** Kernel operations turned into series since start (the `events handled` of /metrics). */
  handled = 0;

  constructor(private readonly obj: BpfObject, limit: number, private readonly startTimeOf: (pid: number) => string = readStartTime, private readonly now: () => HrTime = () => hrTime()) {
    const make = (key: string, full: boolean, w: Who & { error?: string }): Acc => {
      const overflow = full || key === OVERFLOW_KEY; // the kernel's overflow slots ask for it by key
      return {
      attributes: overflow ? OVERFLOW_ATTRIBUTES : w.error ? { ...whoAttributes(w), 'error.type': w.error } : whoAttributes(w),
      pid: overflow ? 0 : w.pid, start: this.now(), lat: new Array(HL.lat_counts).fill(0), latSumNs: 0, latMinNs: Infinity, latMaxNs: 0,
      size: new Array(HL.size_counts).fill(0), sizeSum: 0, sizeMin: Infinity, sizeMax: 0, errors: 0,
      };
    };
    this.hists = new SeriesLimit<Acc, Who>(limit, make);
    this.errs = new SeriesLimit<Acc, Who & { error: string }>(limit, make);
    for (let op = 0; op < OP.TG_FILEIO_OP_MAX; op++) obj.update('tg_fileio_hist_over', opKey(op), emptyHistValue());
  }

  /** file.directory of a kernel dir_id: 'other' past max_directories. */
  dirName(id: Buffer): string {
    const k = id.toString('latin1');
    let d = this.dirs.get(k);
    if (d === undefined) {
      if (id.every((x) => x === LIM.TG_FILEIO_DIR_OTHER)) d = 'other';
      else {
        const v = this.obj.lookup('tg_fileio_dirs', id);
        if (!v) return '(unknown)'; // cannot happen: ids are never deleted
        d = cString(v, 0, v.length);
      }
      this.dirs.set(k, d);
    }
    return d;
  }

  private see(pid: number): void {
    if (!this.procs.has(pid)) this.procs.set(pid, this.startTimeOf(pid));
  }

  private track(key: Buffer): Tracked {
    const pid = key.readUInt32LE(K.pid);
    const who: Who = { pid, comm: cString(key, K.comm, 16), dir: this.dirName(key.subarray(K.dir_id, K.dir_id + 8)), op: OP_NAME[key.readUInt32LE(K.op)] ?? String(key.readUInt32LE(K.op)) };
    const acc = this.hists.get(seriesKey(who), who);
    this.see(pid);
    return { key: Buffer.from(key), pid, acc, last: EMPTY };
  }

  /** A failed operation from the ring (a tg_fileio_event record, read in place). */
  recordError(b: Buffer, ret: number): void {
    const pid = b.readUInt32LE(E.pid);
    const op = b.readUInt32LE(E.op);
    const who = { pid, comm: cString(b, E.comm, 16), dir: this.dirName(b.subarray(E.dir_id, E.dir_id + 8)), op: OP_NAME[op] ?? String(op), error: errnoName(ret) };
    this.errs.get(`${seriesKey(who)}\0${who.error}`, who).errors++;
    this.see(pid);
  }

  /** Cumulative data points of every series; then processes that exited are forgotten (this
   *  collection carried their final values) and their kernel entries deleted. */
  collect(): MetricData[] {
    // Liveness first: a process found gone now did its last operation before the reads below.
    const gone = new Set<number>();
    for (const [pid, start] of this.procs) if (!start || this.startTimeOf(pid) !== start) gone.add(pid);
    for (const [k, v] of this.obj.entries('tg_fileio_hists')) {
      const id = k.toString('latin1');
      let t = this.tracked.get(id);
      if (!t) this.tracked.set(id, (t = this.track(k)));
      const cur = readHist(v);
      this.handled += sum(cur.lat) - sum(t.last.lat);
      addDelta(t.acc, cur, t.last);
      t.last = cur;
    }
    for (let op = 0; op < OP.TG_FILEIO_OP_MAX; op++) {
      const v = this.obj.lookup('tg_fileio_hist_over', opKey(op));
      if (!v) continue;
      const cur = readHist(v), last = this.slots.get(op) ?? EMPTY;
      if (sum(cur.lat) === sum(last.lat)) continue;
      this.handled += sum(cur.lat) - sum(last.lat);
      addDelta(this.hists.get(OVERFLOW_KEY, { pid: 0, comm: '', dir: '', op: '' }), cur, last);
      this.slots.set(op, cur);
    }
    for (const [id, t] of this.tracked) {
      if (!gone.has(t.pid)) continue;
      this.obj.delete('tg_fileio_hists', t.key);
      this.tracked.delete(id);
    }
    const end = this.now();
    const duration: unknown[] = [], size: unknown[] = [], errors: unknown[] = [];
    for (const [key, a] of this.hists.series) {
      const n = sum(a.lat);
      if (!n) continue;
      duration.push({ attributes: a.attributes, startTime: a.start, endTime: end, value: { buckets: { boundaries: LATENCY_BUCKETS_S, counts: a.lat.slice() }, count: n, sum: a.latSumNs / 1e9, min: a.latMinNs / 1e9, max: a.latMaxNs / 1e9 } });
      const ns = sum(a.size);
      if (ns) size.push({ attributes: a.attributes, startTime: a.start, endTime: end, value: { buckets: { boundaries: SIZE_BUCKETS_BY, counts: a.size.slice() }, count: ns, sum: a.sizeSum, min: a.sizeMin, max: a.sizeMax } });
      if (a.pid && gone.has(a.pid)) { this.hists.delete(key); this.forgotten++; }
    }
    for (const [key, a] of this.errs.series) {
      errors.push({ attributes: a.attributes, startTime: a.start, endTime: end, value: a.errors });
      if (a.pid && gone.has(a.pid)) { this.errs.delete(key); this.forgotten++; }
    }
    for (const pid of gone) this.procs.delete(pid);
    const out: MetricData[] = [];
    if (duration.length) out.push(histogram('telegen.file.operation.duration', 's', 'File operation latency (syscall enter → exit)', LATENCY_BUCKETS_S, duration));
    if (size.length) out.push(histogram('telegen.file.operation.size', 'By', 'Bytes moved per read/write/pread/pwrite', SIZE_BUCKETS_BY, size));
    if (errors.length) {
      out.push({
        descriptor: { name: 'telegen.file.operation.errors', unit: '{operation}', description: 'File operations that returned an error', valueType: ValueType.DOUBLE, type: InstrumentType.COUNTER, advice: {} },
        aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.SUM, isMonotonic: true, dataPoints: errors,
      } as MetricData);
    }
    return out;
  }

  stats(): FileioSeriesStats {
    return { series: this.hists.size, errorSeries: this.errs.size, overflowed: this.hists.overflowed + this.errs.overflowed, forgotten: this.forgotten, processes: this.procs.size };
  }
}

const seriesKey = (w: Who): string => `${w.pid}\0${w.comm}\0${w.dir}\0${w.op}`;

function opKey(op: number): Buffer {
  const k = Buffer.alloc(4);
  k.writeUInt32LE(op);
  return k;
}

function histogram(name: string, unit: string, description: string, bounds: number[], dataPoints: unknown[]): MetricData {
  return {
    descriptor: { name, unit, description, valueType: ValueType.DOUBLE, type: InstrumentType.HISTOGRAM, advice: { explicitBucketBoundaries: bounds } },
    aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.HISTOGRAM, dataPoints,
  } as MetricData;
}
