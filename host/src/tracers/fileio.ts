// File I/O tracer: bpf/fileio.bpf.c times openat/read/write/pread64/pwrite64/fsync/close (and the
// vectored calls and fdatasync, as their plain operation) on files opened while tracing (fd → path
// and directory kept in the kernel, following dup/dup2/dup3/F_DUPFD) and counts every operation in
// kernel histograms per process, directory and operation, which fileio-series.ts turns into the
// latency and size histograms at each metric collection. The ring carries only operations slower
// than slow_ms (logged) and failed ones (counted by errno).
import * as fs from 'fs';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { MetricData } from '@opentelemetry/sdk-metrics';
import { TracerFactory, RunningTracer } from '../agent';
import { log } from '../log';
import { BpfObject, cString } from './bpf-object';
import { FileioSeries, OP_NAME } from './fileio-series';
import { tg_fileio_event as L, tg_fileio_stat } from '../generated/fileio-layout';

const flog = log.child({ component: 'tracer.fileio' });
const STAT_NAMES = Object.keys(tg_fileio_stat).filter((k) => k !== 'TG_FILEIO_STAT_MAX')
  .sort((a, b) => tg_fileio_stat[a as keyof typeof tg_fileio_stat] - tg_fileio_stat[b as keyof typeof tg_fileio_stat])
  .map((k) => `fileio_${k.slice('TG_FILEIO_STAT_'.length).toLowerCase()}`);

export interface FileEvent { op: number; pid: number; latencyNs: number; ret: number; fd: number; comm: string; path: string }

export function parseFileEvent(b: Buffer): FileEvent {
  return {
    op: b.readUInt32LE(L.op), pid: b.readUInt32LE(L.pid), latencyNs: Number(b.readBigUInt64LE(L.latency_ns)),
    ret: Number(b.readBigInt64LE(L.ret)), fd: b.readUInt32LE(L.fd), comm: cString(b, L.comm, 16), path: cString(b, L.path, 128),
  };
}

export const fileioTracer: TracerFactory = (ctx) => {
  const cfg = ctx.cfg.tracers.fileio;
  if (!cfg.enabled) return null;
  const obj = new BpfObject('fileio', {
    rodata: { self_pid: process.pid, slow_ns: Math.round(cfg.slow_ms * 1e6), dir_depth: cfg.directory_depth },
    maxEntries: { tg_fileio_files: cfg.files_max, tg_fileio_ring: cfg.ring_bytes, tg_fileio_dirs: cfg.max_directories, tg_fileio_hists: cfg.histograms_max },
  });
  // Before attaching: the overflow slots' minima must start at ~0.
  const series = new FileioSeries(obj, cfg.cardinality_limit);
  const rep = obj.attachAll();
  for (const f of rep.failed) flog.warn({ program: f.name, err: f.error }, 'program did not attach; the rest keep running');
  if (!rep.attached.length) { obj.close(); throw new Error(`no file I/O program attached: ${rep.failed.map((f) => `${f.name}: ${f.error}`).join('; ')}`); }
  obj.openRing('tg_fileio_ring');
  const slowNs = cfg.slow_ms * 1e6;
  const onRecord = (b: Buffer) => {
    const ret = Number(b.readBigInt64LE(L.ret));
    if (ret < 0) series.recordError(b, ret);
    const latencyNs = Number(b.readBigUInt64LE(L.latency_ns));
    if (latencyNs < slowNs) return;
    const e = parseFileEvent(b);
    const op = OP_NAME[e.op] ?? String(e.op);
    ctx.signals.logger.emit({
      severityNumber: SeverityNumber.WARN, severityText: 'WARN', body: `slow file ${op}: ${(e.latencyNs / 1e6).toFixed(3)} ms`,
      attributes: {
        'event.name': 'telegen.file.slow_operation', 'telegen.file.operation': op, 'file.path': e.path,
        'telegen.file.operation.duration_ns': e.latencyNs, 'telegen.file.operation.result': e.ret,
        'process.pid': e.pid, 'process.executable.name': e.comm,
      },
    });
  };
  const drain = () => obj.drainRing(onRecord, 8192);
  // poll_ms after the first record, not every poll_ms: nothing wakes the agent while no slow or
  // failed operation happens.
  const watch = obj.watchRing(drain, cfg.poll_ms);
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
  // Failed operations reach their series from the ring: drained first, so a collection sees them.
  // Tracers stop before the agent's last metric flush: stop() reads the maps one last time, and
  // that flush exports those points (once; then the producer removes itself).
  let final: MetricData[] | undefined;
  const removeProducer = ctx.signals.addProducer(() => {
    if (!final) { drain(); return series.collect(); }
    removeProducer();
    return final;
  });
  ctx.metrics.addCollector((m) => {
    if (stopped) return;
    obj.collect(m, 'fileio', { map: 'tg_fileio_stats', names: STAT_NAMES });
    m.set('telegen_tracer_events_handled_total', 'Kernel events a tracer turned into signals', series.handled, { tracer: 'fileio' }, 'counter');
    const st = series.stats();
    m.set('telegen_fileio_series', 'File I/O attribute sets held (duration/size histograms, error counts)', st.series, { tracer: 'fileio', instrument: 'histograms' });
    m.set('telegen_fileio_series', 'File I/O attribute sets held (duration/size histograms, error counts)', st.errorSeries, { tracer: 'fileio', instrument: 'errors' });
    m.set('telegen_fileio_series_overflowed_total', 'Kernel series that went to the otel.metric.overflow series (cardinality_limit reached)', st.overflowed, { tracer: 'fileio' }, 'counter');
    m.set('telegen_fileio_series_forgotten_total', 'Series of exited processes dropped after their last export', st.forgotten, { tracer: 'fileio' }, 'counter');
    m.set('telegen_fileio_swept_total', 'fd entries removed because their process exited without closing them', swept, { tracer: 'fileio' }, 'counter');
  });
  const r: RunningTracer = {
    name: 'fileio',
    detail: `${rep.attached.length} programs attached${rep.failed.length ? `, ${rep.failed.length} failed: ${rep.failed.map((f) => f.name).join(', ')}` : ''}`,
    stop: () => { watch.stop(); clearInterval(sweeper); drain(); final = series.collect(); stopped = true; obj.close(); },
  };
  return r;
};
