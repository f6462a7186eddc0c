// File I/O tracer: bpf/fileio.bpf.c times openat/read/write/pread64/pwrite64/fsync/close on files
// opened while tracing (fd → path kept in the kernel) and reports each operation; this records
// latency and size histograms per process and directory (directories capped by max_directories)
// and logs operations slower than slow_ms.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Attributes } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { TracerFactory, RunningTracer } from '../agent';
import { log } from '../log';
import { BpfObject, cString } from './bpf-object';
import { tg_fileio_event as L, tg_fileio_op as OP, tg_fileio_stat } from '../generated/fileio-layout';

const flog = log.child({ component: 'tracer.fileio' });
const STAT_NAMES = Object.keys(tg_fileio_stat).filter((k) => k !== 'TG_FILEIO_STAT_MAX')
  .sort((a, b) => tg_fileio_stat[a as keyof typeof tg_fileio_stat] - tg_fileio_stat[b as keyof typeof tg_fileio_stat])
  .map((k) => `fileio_${k.slice('TG_FILEIO_STAT_'.length).toLowerCase()}`);
export const OP_NAME: Record<number, string> = {
  [OP.TG_FILEIO_OPEN]: 'open', [OP.TG_FILEIO_READ]: 'read', [OP.TG_FILEIO_WRITE]: 'write', [OP.TG_FILEIO_PREAD]: 'pread',
  [OP.TG_FILEIO_PWRITE]: 'pwrite', [OP.TG_FILEIO_FSYNC]: 'fsync', [OP.TG_FILEIO_CLOSE]: 'close',
};
const SIZED = new Set<number>([OP.TG_FILEIO_READ, OP.TG_FILEIO_WRITE, OP.TG_FILEIO_PREAD, OP.TG_FILEIO_PWRITE]);

// Page-cache hits take microseconds and a disk flush milliseconds: the defaults (from 5 ms up)
// would put nearly every operation in the first bucket.
const LATENCY_BUCKETS_S = [1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const SIZE_BUCKETS_BY = [0, 512, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216];

export interface FileEvent { op: number; pid: number; latencyNs: number; ret: number; fd: number; comm: string; path: string }

export function parseFileEvent(b: Buffer): FileEvent {
  return {
    op: b.readUInt32LE(L.op), pid: b.readUInt32LE(L.pid), latencyNs: Number(b.readBigUInt64LE(L.latency_ns)),
    ret: Number(b.readBigInt64LE(L.ret)), fd: b.readUInt32LE(L.fd), comm: cString(b, L.comm, 16), path: cString(b, L.path, 128),
  };
}

/** The directory of an absolute path, cut to its first `depth` components. */
export function directoryOf(file: string, depth: number): string {
  if (!file) return '(unknown)';
  if (!path.isAbsolute(file)) return '(relative)';
  const parts = path.dirname(file).split('/').filter(Boolean);
  return `/${parts.slice(0, depth).join('/')}`;
}

const ERRNO_NAME = new Map<number, string>(Object.entries(os.constants.errno).map(([k, v]) => [v, k]));
/** error.type: the errno's name (ENOENT), low-cardinality and what strace shows. */
export function errnoName(ret: number): string {
  return ERRNO_NAME.get(-ret) ?? String(-ret);
}

/** Keeps the set of directory attribute values bounded: the first `max` seen, then "other". */
export class DirectoryCap {
  private readonly seen = new Set<string>();
  constructor(private readonly max: number, private readonly depth = 64) {}
  of(file: string): string {
    const d = directoryOf(file, this.depth);
    if (this.seen.has(d)) return d;
    if (this.seen.size >= this.max) return 'other';
    this.seen.add(d);
    return d;
  }
}

export const fileioTracer: TracerFactory = (ctx) => {
  const cfg = ctx.cfg.tracers.fileio;
  if (!cfg.enabled) return null;
  const obj = new BpfObject('fileio', {
    rodata: { self_pid: process.pid },
    maxEntries: { tg_fileio_files: cfg.files_max, tg_fileio_ring: cfg.ring_bytes },
  });
  const rep = obj.attachAll();
  for (const f of rep.failed) flog.warn({ program: f.name, err: f.error }, 'program did not attach; the rest keep running');
  if (!rep.attached.length) { obj.close(); throw new Error(`no file I/O program attached: ${rep.failed.map((f) => `${f.name}: ${f.error}`).join('; ')}`); }
  obj.openRing('tg_fileio_ring');
  const meter = ctx.signals.meter;
  const duration = meter.createHistogram('telegen.file.operation.duration', { unit: 's', description: 'File operation latency (syscall enter → exit)', advice: { explicitBucketBoundaries: LATENCY_BUCKETS_S } });
  const size = meter.createHistogram('telegen.file.operation.size', { unit: 'By', description: 'Bytes moved per read/write/pread/pwrite', advice: { explicitBucketBoundaries: SIZE_BUCKETS_BY } });
  const errors = meter.createCounter('telegen.file.operation.errors', { unit: '{operation}', description: 'File operations that returned an error' });
  const dirs = new DirectoryCap(cfg.max_directories, cfg.directory_depth);
  const slowNs = cfg.slow_ms * 1e6;
  let handled = 0;
  const onEvent = (e: FileEvent) => {
    const op = OP_NAME[e.op] ?? String(e.op);
    const attrs: Attributes = { 'telegen.file.operation': op, 'file.directory': dirs.of(e.path), 'process.pid': e.pid, 'process.executable.name': e.comm };
    duration.record(e.latencyNs / 1e9, attrs);
    if (e.ret < 0) errors.add(1, { ...attrs, 'error.type': errnoName(e.ret) });
    else if (SIZED.has(e.op)) size.record(e.ret, attrs);
    if (e.latencyNs >= slowNs) {
      ctx.signals.logger.emit({
        severityNumber: SeverityNumber.WARN, severityText: 'WARN', body: `slow file ${op}: ${(e.latencyNs / 1e6).toFixed(3)} ms`,
        attributes: {
          'event.name': 'telegen.file.slow_operation', 'telegen.file.operation': op, 'file.path': e.path,
          'telegen.file.operation.duration_ns': e.latencyNs, 'telegen.file.operation.result': e.ret,
          'process.pid': e.pid, 'process.executable.name': e.comm,
        },
      });
    }
  };
  const drain = () => {
    for (;;) {
      const recs = obj.pollRing(8192);
      for (const r of recs) { onEvent(parseFileEvent(r)); handled++; }
      if (recs.length < 8192) break;
    }
  };
  const timer = setInterval(drain, cfg.poll_ms);
  timer.unref();
  // A process that exits (or execs) with files open never calls close: its fd entries would stay
  // until the map is full. Dead pids are found from user space; the kernel side stays one lookup.
  let swept = 0;
  const sweep = () => {
    const alive = new Map<number, boolean>();
    const dead: Buffer[] = [];
    for (const [k] of obj.entries('tg_fileio_files')) {
      const pid = k.readUInt32LE(0);
      let a = alive.get(pid);
      if (a === undefined) { a = fs.existsSync(`/proc/${pid}`); alive.set(pid, a); }
      if (!a) dead.push(k);
    }
    for (const k of dead) if (obj.delete('tg_fileio_files', k)) swept++;
  };
  const sweeper = setInterval(() => { try { sweep(); } catch (e) { flog.error({ err: (e as Error).message }, 'fd map sweep failed'); } }, cfg.sweep_ms);
  sweeper.unref();
  let stopped = false;
  ctx.metrics.addCollector((m) => {
    if (stopped) return;
    obj.collect(m, 'fileio', { map: 'tg_fileio_stats', names: STAT_NAMES });
    m.set('telegen_tracer_events_handled_total', 'Kernel events a tracer turned into signals', handled, { tracer: 'fileio' }, 'counter');
    m.set('telegen_fileio_swept_total', 'fd entries removed because their process exited without closing them', swept, { tracer: 'fileio' }, 'counter');
  });
  const r: RunningTracer = {
    name: 'fileio',
    detail: `${rep.attached.length} programs attached${rep.failed.length ? `, ${rep.failed.length} failed: ${rep.failed.map((f) => f.name).join(', ')}` : ''}`,
    stop: () => { clearInterval(timer); clearInterval(sweeper); drain(); stopped = true; obj.close(); },
  };
  return r;
};
