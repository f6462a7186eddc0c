// Application logs: bpf/logs.bpf.c reports what selected processes write to stdout/stderr; here
// writes become lines (logs/lines), are budgeted per process (logs/limit), held until the request
// they were printed in is known and linked to it (logs/link, through the correlation layer's
// logContext), and queued as OTLP log records with the process's resource (logs/record).
// Selection: pids from config, process names (kernel-side), and — with `services` — every process
// that accepts a TCP connection (kernel-side) or was seen serving requests (docs/correlation.md);
// the processes those fork are selected in the kernel for what they write to the stdout/stderr
// they inherited.
import * as fs from 'fs';
import { TracerFactory, RunningTracer } from '../agent';
import { log } from '../log';
import { BpfObject, AttachReport, cString } from './bpf-object';
import { tg_logs_event as L, tg_logs_stat } from '../generated/logs-layout';
import { LineAssembler, LogWrite } from '../logs/lines';
import { LineBudget } from '../logs/limit';
import { LinkQueue, LinkedLine, TraceLink } from '../logs/link';
import { toLogRecord } from '../logs/record';
import { processInfo } from '../pipeline/process';
import { monotonicClock, SpanClock } from '../pipeline/spans';

const llog = log.child({ component: 'tracer.logs' });
const STAT_NAMES = Object.keys(tg_logs_stat).filter((k) => k !== 'TG_LOGS_STAT_MAX')
  .sort((a, b) => tg_logs_stat[a as keyof typeof tg_logs_stat] - tg_logs_stat[b as keyof typeof tg_logs_stat])
  .map((k) => `logs_${k.slice('TG_LOGS_STAT_'.length).toLowerCase()}`);

export function parseLogWrite(b: Buffer): LogWrite {
  const len = Math.min(b.readUInt32LE(L.len), b.length - L.size);
  return {
    ts: b.readBigUInt64LE(L.ts_ns), pid: b.readUInt32LE(L.pid), tid: b.readUInt32LE(L.tid), fd: b.readUInt32LE(L.fd),
    comm: cString(b, L.comm, 16), bytes: b.subarray(L.size, L.size + len), truncated: Number(b.readBigUInt64LE(L.orig_len)) > len,
  };
}

function u32(n: number): Buffer { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; }
function commKey(name: string): Buffer { const b = Buffer.alloc(16); b.write(name.slice(0, 15), 'latin1'); return b; }
const ONE = Buffer.from([1]);
const WRITEV_LOOP = 'tg_logs_out_writev', WRITEV_UNROLLED = 'tg_logs_out_writev_unrolled';

interface Hooks {
  correlate?: { logLink(pid: number, tid: number | undefined, ts: bigint): TraceLink | 'pending' | undefined; correlator?: { serverPids?(): Iterable<number> } };
  clock?: SpanClock;
}

/** Attaches logs.bpf.c's programs. writev's exit comes twice: walking every iovec with bpf_loop,
 *  or the first 8 unrolled where the kernel has no bpf_loop (5.17+) and the loop twin did not
 *  load, which is then no failure. */
export function attachLogPrograms(obj: BpfObject): AttachReport {
  const loop = obj.programs.includes(WRITEV_LOOP);
  if (!loop) {
    const i = obj.report.failed.findIndex((f) => f.name === WRITEV_LOOP);
    if (i >= 0) { llog.info({ err: obj.report.failed[i].error }, 'writev: first 8 iovecs only (no bpf_loop)'); obj.report.failed.splice(i, 1); }
  }
  return obj.attachAll(obj.programs.filter((p) => p !== (loop ? WRITEV_UNROLLED : WRITEV_LOOP)));
}

export const logsTracer: TracerFactory = (ctx) => {
  const cfg = ctx.cfg.tracers.logs;
  if (!(cfg.enabled || process.env.TELEGEN_LOGS === '1') || process.env.TELEGEN_LOGS === '0') return null;
  const logsQ = ctx.agent.queues?.logs;
  const obj = new BpfObject('logs', {
    rodata: { self_pid: process.pid, capture_max: cfg.capture_max, select_servers: cfg.services ? 1 : 0 },
    maxEntries: { tg_logs_pids: cfg.processes_max, tg_logs_heirs: cfg.processes_max, tg_logs_ring: cfg.ring_bytes },
  });
  const hooks = ctx.agent as unknown as Hooks;
  // The agent's clock: spans and lines must map kernel time to epoch with the same offset, or a
  // line printed right after a request started could fall before that request's span.
  const clock = hooks.clock ?? monotonicClock();
  const captured = new Set<number>();
  let full = 0;
  const capture = (pid: number) => {
    if (captured.has(pid)) return;
    if (captured.size >= cfg.processes_max) { full++; return; }
    try { obj.update('tg_logs_pids', u32(pid), ONE); captured.add(pid); } catch (e) { full++; llog.warn({ pid, err: (e as Error).message }, 'cannot select process'); }
  };
  for (const pid of cfg.pids) capture(pid);
  for (const c of cfg.comms) obj.update('tg_logs_comms', commKey(c), ONE);

  const rep = attachLogPrograms(obj);
  for (const f of rep.failed) llog.warn({ program: f.name, err: f.error }, 'program did not attach; the rest keep running');
  if (!rep.attached.length) { obj.close(); throw new Error(`no log capture program attached: ${rep.failed.map((f) => `${f.name}: ${f.error}`).join('; ')}`); }
  obj.openRing('tg_logs_ring');

  let exported = 0;
  const budget = new LineBudget(cfg.lines_per_second);
  const onLinked = (l: LinkedLine) => {
    const res = processInfo(l.pid, l.comm).resource;
    logsQ?.enqueue(toLogRecord(l, res, clock.toEpochNs(process.hrtime.bigint())));
    exported++;
  };
  const lookup = (pid: number, tid: number, ts: bigint) => hooks.correlate?.logLink(pid, tid, ts);
  // A request whose trace is still being decided (waiting for its caller's span) is asked again
  // for up to 10 s more.
  const waitNs = BigInt(cfg.link_wait_ms) * 1_000_000n;
  const link = new LinkQueue({ waitNs, maxWaitNs: waitNs + 10_000_000_000n, maxPending: cfg.max_pending_lines }, lookup, onLinked);
  const lines = new LineAssembler({ maxLineBytes: cfg.max_line_bytes, idleNs: 1_000_000_000n, maxStreams: cfg.processes_max * 2 }, (l) => {
    if (budget.take(l.pid)) link.add(l, clock.toEpochNs(l.ts));
  });

  let writes = 0;
  const drain = () => {
    obj.drainRing((r) => { if (r.length >= L.size) { lines.push(parseLogWrite(r)); writes++; } });
    const now = process.hrtime.bigint();
    lines.tick(now);
    link.tick(clock.toEpochNs(now));
  };
  const timer = setInterval(drain, cfg.poll_ms);
  timer.unref();

  // Services: the kernel selects a process when it accepts a TCP connection; processes serving
  // connections accepted before the agent started are picked up from their server spans.
  const corr = hooks.correlate?.correlator;
  const select = setInterval(() => {
    if (cfg.services && corr?.serverPids) for (const pid of corr.serverPids()) capture(pid);
  }, 250);
  select.unref();
  const prune = setInterval(() => {
    for (const [k] of obj.entries('tg_logs_pids')) {
      const pid = k.readUInt32LE(0);
      if (fs.existsSync(`/proc/${pid}`)) continue;
      captured.delete(pid);
      obj.delete('tg_logs_pids', k);
    }
    // Children of selected processes (selected in the kernel at fork) that exited.
    for (const [k] of obj.entries('tg_logs_heirs')) if (!fs.existsSync(`/proc/${k.readUInt32LE(0)}`)) obj.delete('tg_logs_heirs', k);
  }, 10_000);
  prune.unref();

  let stopped = false;
  ctx.metrics.addCollector((m) => {
    if (stopped) return;
    obj.collect(m, 'logs', { map: 'tg_logs_stats', names: STAT_NAMES });
    m.set('telegen_logs_writes_total', 'stdout/stderr writes captured from selected processes', writes, {}, 'counter');
    m.set('telegen_logs_records_total', 'Log records exported from captured lines', exported, {}, 'counter');
    m.set('telegen_logs_linked_total', 'Log records linked to the trace of the request in flight on their thread', link.linked, {}, 'counter');
    m.set('telegen_logs_rate_limited_total', 'Lines dropped by the per-process lines_per_second budget', budget.dropped, {}, 'counter');
    m.set('telegen_logs_forced_total', 'Lines released before link_wait_ms because max_pending_lines was reached', link.forced, {}, 'counter');
    m.set('telegen_logs_processes_not_selected_total', 'Processes not captured: processes_max reached', full, {}, 'counter');
  });
  const r: RunningTracer = {
    name: 'logs',
    detail: `${rep.attached.length} programs attached${rep.failed.length ? `, ${rep.failed.length} failed: ${rep.failed.map((f) => f.name).join(', ')}` : ''}`,
    stop: () => {
      clearInterval(timer); clearInterval(select); clearInterval(prune);
      drain();
      lines.flush();
      link.flush();
      stopped = true;
      obj.close();
    },
  };
  llog.info({ services: cfg.services, comms: cfg.comms, pids: cfg.pids }, 'capturing stdout/stderr');
  return r;
};
