// Go tracer: TLS plaintext from Go programs (bpf/go_tls.bpf.c), whose crypto/tls never goes
// through OpenSSL. Every Go executable found in /proc is analyzed once (host/src/gotrace: build
// info, pclntab, RET instructions — no DWARF needed), then crypto/tls.(*Conn).Write/Read get an
// entry uprobe (the binary's struct offsets in its cookie), and Read a uprobe on each RET. A uprobe
// hooks the file, so one set covers every process running it; the set is removed when the last
// such process is gone. Records go into the socket tracer's ring as TG_DATA_TLS data events, so
// the same decoders make HTTPS and HTTP/2 spans of Go servers and clients.
import * as fs from 'fs';
import * as path from 'path';
import { TracerContext, TracerFactory, RunningTracer } from '../agent';
import { log } from '../log';
import { loadNative, nativeAddonPath } from '../native';
import { tg_tls_stat } from '../generated/tls-layout';
import { packOffsets } from '../gotrace/offsets';
import { GoBinaryStatus, setGoStatusSource } from '../gotrace/status';
import { GO_TLS_FUNCS, GO_TLS_RETURN_PROG, analyzeForTls, whyNot } from '../gotrace/probes';
import { GO_REQ_FUNCS, attachGoroutines } from '../gotrace/goroutines';
import { GoLinks } from '../gotrace/links';
import { GO_H2_FUNCS, attachH2 } from '../gotrace/http2';
import { openGoHttp2 } from './go-http2';
import { openGoExec } from './go-exec';
import { MapDesc, statNames, trackTracerObject } from './map-fill';

const glog = log.child({ component: 'tracer.go' });


export interface NativeUprobes {
  attachUprobe(prog: string, binary: string, func: string | number, retprobe: boolean, pid?: number, cookie?: number): number;
  detach(handle: number): boolean;
}

interface Hooked { status: GoBinaryStatus; handles: number[]; h2Handles: number[] }

function fileKey(p: string): string | null {
  try {
    const st = fs.statSync(p);
    return `${st.dev}:${st.ino}`;
  } catch {
    return null;
  }
}

function samePids(a: number[], b: number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class GoAttacher {
  /** dev:inode of every executable looked at (Go or not) → what was done. */
  readonly binaries = new Map<string, Hooked | null>();
  /** Bumped whenever `binaries` or a binary's pids change: the exec watcher hands them to the
   *  kernel only then, not by walking them every second. */
  version = 0;
  /** An open fd on each file of `binaries` found through a process: it keeps the inode in use
   *  while it is a key here and in the kernel's go_exec_known. Without it, a file deleted after
   *  it was looked at (a short-lived tool, a replaced binary) freed its inode number, ext4 gave
   *  it to the next new file at once, and a Go server exec'd from that file matched the old
   *  "not Go" entry: no exec event, no hold, no probes until the next full scan (30 s), so its
   *  first requests were untraced. Closed when the entry goes (scan: no process runs it). */
  private readonly pins = new Map<string, number>();

  /** `h2`: the go_http2 object (HTTP/2 header fields, gotrace/http2.ts), when loaded. */
  constructor(private readonly t: NativeUprobes, private readonly selfPid = process.pid, private readonly h2?: NativeUprobes) {}

  /** Analyzes and hooks one executable; returns its status (null: not Go). */
  attachFile(file: string, key: string): Hooked | null {
    const t0 = process.hrtime.bigint();
    const g = analyzeForTls(file, [...GO_REQ_FUNCS, ...(this.h2 ? GO_H2_FUNCS : [])]);
    this.version++;
    if (!g) {
      this.binaries.set(key, null);
      return null;
    }
    const status: GoBinaryStatus = { path: file, goVersion: g.buildInfo.goVersion, symbols: g.symbols, instrumented: false, probes: 0, pids: [] };
    const h: Hooked = { status, handles: [], h2Handles: [] };
    this.binaries.set(key, h);
    status.reason = whyNot(g);
    if (status.reason) {
      glog.info({ file, go: g.buildInfo.goVersion, reason: status.reason }, 'Go binary not instrumented');
      return h;
    }
    const cookie = packOffsets(g.offsets!);
    try {
      for (const [name, prog, returns] of GO_TLS_FUNCS) {
        const f = g.funcs.get(name)!;
        h.handles.push(this.attach(prog, file, f.entryOffset, cookie));
        if (returns) for (const r of f.returnOffsets) h.handles.push(this.attach(GO_TLS_RETURN_PROG, file, r, 0));
      }
    } catch (e) {
      // Half a set would open calls that never close: all or nothing.
      for (const x of h.handles) this.t.detach(x);
      h.handles = [];
      status.reason = `uprobe attach failed: ${(e as Error).message}`;
      glog.warn({ file, err: status.reason }, 'Go binary not instrumented');
      return h;
    }
    if (this.h2) {
      const h2 = this.h2;
      const r = attachH2(g, (a) => this.attach(a.prog, file, a.offset, a.cookie, h2), (x) => h2.detach(x));
      h.h2Handles = r.handles;
      status.http2 = r.status;
    }
    const gr = attachGoroutines(g, (p) => this.attach(p.prog, file, p.offset, p.cookie), (x) => this.t.detach(x));
    h.handles.push(...gr.handles);
    status.goroutines = gr.status;
    status.instrumented = true;
    status.probes = h.handles.length;
    status.attachMs = Number(process.hrtime.bigint() - t0) / 1e6;
    glog.info({ file, go: g.buildInfo.goVersion, symbols: g.symbols, probes: status.probes, ms: status.attachMs }, 'Go binary instrumented');
    return h;
  }

  /** The program's uprobe_multi twin where the kernel has them (6.6+), else a perf-event uprobe.
   *  A perf-event uprobe's close holds the kernel's global event_mutex through a tasks-trace RCU
   *  grace period (perf_uprobe_destroy): every agent on the host detaches them one at a time,
   *  and with four agents stopping at once none had exited 60 s after SIGTERM (all their
   *  threads in perf_uprobe_destroy). A uprobe_multi link's release waits without that lock, so
   *  concurrent releases share grace periods. Perf-event uprobes also need CAP_SYS_ADMIN after
   *  the capability drop, where the twin is the only way. */
  private attach(prog: string, file: string, offset: number, cookie: number, t = this.t): number {
    let multiErr: Error | undefined;
    if (!this.noMulti) {
      try {
        return t.attachUprobe(`${prog}_multi`, file, offset, false, -1, cookie);
      } catch (e) {
        // Loaded without its twins (a kernel without uprobe_multi): perf-event uprobes from now on.
        if (/^no program /.test((e as Error).message)) this.noMulti = true; else multiErr = e as Error;
      }
    }
    try {
      return t.attachUprobe(prog, file, offset, false, -1, cookie);
    } catch (e) {
      throw multiErr ?? e;
    }
  }

  private pin(exeLink: string, key: string): void {
    if (this.pins.has(key)) return;
    try {
      const fd = fs.openSync(exeLink, fs.constants.O_RDONLY);
      const st = fs.fstatSync(fd);
      // The process may have exec'd again since its key was read: pin only the file named.
      if (`${st.dev}:${st.ino}` === key) this.pins.set(key, fd); else fs.closeSync(fd);
    } catch {
      // Exited, or not openable: unpinned, as before (the next full scan corrects a stale key).
    }
  }

  private unpin(key: string): void {
    const fd = this.pins.get(key);
    if (fd === undefined) return;
    this.pins.delete(key);
    try { fs.closeSync(fd); } catch { /* already closed */ }
  }

  private release(h: Hooked | null): void {
    if (!h) return;
    for (const x of h.handles) this.t.detach(x);
    for (const x of h.h2Handles) this.h2?.detach(x);
  }

  /** The object was loaded without the uprobe_multi twins (kernel < 6.6). */
  private noMulti = false;

  /** The executables of `pids` (just exec'd): new ones are analyzed and hooked, and the pids are
   *  added to their binaries. Only these pids are read: an exec storm (a build starting tens of
   *  processes a second) must not cost a walk of all of /proc per event batch. Unhooking stays with
   *  scan(), which sees every process. */
  scanPids(pids: Iterable<number>, procRoot = '/proc'): void {
    for (const pid of pids) {
      if (pid === this.selfPid) continue;
      const exeLink = `${procRoot}/${pid}/exe`;
      let exe: string;
      try {
        exe = fs.readlinkSync(exeLink);
      } catch {
        continue; // exited already
      }
      const key = fileKey(exeLink);
      if (!key) continue;
      let h = this.binaries.get(key);
      if (h === undefined) h = this.analyze(exe, exeLink, key);
      if (h && !h.status.pids.includes(pid)) { h.status.pids.push(pid); this.version++; }
    }
  }

  /** attachFile for a file found through a process's exe link; a failure is remembered as "not Go". */
  private analyze(exe: string, exeLink: string, key: string): Hooked | null {
    // A process in another mount namespace names its file from its own root: use the link.
    const direct = !exe.endsWith(' (deleted)') && fileKey(exe) === key;
    this.pin(exeLink, key);
    try {
      return this.attachFile(direct ? exe : exeLink, key);
    } catch (e) {
      glog.warn({ exe, err: (e as Error).message }, 'analysis failed');
      this.binaries.set(key, null);
      this.version++;
      return null;
    }
  }

  /** One pass over /proc: new executables are analyzed, ones no process runs any more unhooked. */
  scan(procRoot = '/proc'): void {
    const live = new Map<string, number[]>();
    let pids: string[];
    try {
      pids = fs.readdirSync(procRoot).filter((d) => /^\d+$/.test(d));
    } catch {
      return;
    }
    for (const pid of pids) {
      if (Number(pid) === this.selfPid) continue;
      const exeLink = `${procRoot}/${pid}/exe`;
      let exe: string;
      try {
        exe = fs.readlinkSync(exeLink);
      } catch {
        continue; // kernel threads; processes that exited while we looked
      }
      const key = fileKey(exeLink);
      if (!key) continue;
      const l = live.get(key);
      if (l) l.push(Number(pid)); else live.set(key, [Number(pid)]);
      if (!this.binaries.has(key)) this.analyze(exe, exeLink, key);
    }
    for (const [key, h] of this.binaries) {
      const p = live.get(key);
      if (p) {
        if (h && !samePids(h.status.pids, p)) { h.status.pids = p; this.version++; }
        continue;
      }
      // Nobody runs it any more: remove its probes and forget it (a new exec re-analyzes).
      this.release(h);
      this.binaries.delete(key);
      this.unpin(key);
      this.version++;
    }
  }

  status(): GoBinaryStatus[] {
    return [...this.binaries.values()].filter((h): h is Hooked => !!h).map((h) => ({ ...h.status, pids: [...h.status.pids] }));
  }

  detachAll(): void {
    for (const h of this.binaries.values()) this.release(h);
    this.binaries.clear();
    for (const key of [...this.pins.keys()]) this.unpin(key);
    this.version++;
  }
}

function objectPath(): string {
  return path.join(path.dirname(nativeAddonPath()), '..', '..', '..', 'build', 'bpf', 'go_tls.bpf.o');
}

// The counters go_tls.bpf.c writes (the HTTP/2 ones are go_http2's, in its own map).
const STAT_NAMES = statNames(tg_tls_stat, 'TG_TLS_STAT_', ['EVENTS', 'RING_FULL', 'NO_CONN', 'READ_FAULT', 'TRUNCATED', 'LINKS']);

interface NativeGoTracer extends NativeUprobes {
  open(obj: string, opts: object): { attached: string[]; failed: Array<{ name: string; error: string }>; uprobes: string[] };
  stats(map: string): number[];
  maps(): MapDesc[];
  close(): void;
}

export const goTracer: TracerFactory = (ctx: TracerContext): RunningTracer | null => {
  const cfg = ctx.cfg.tracers.go;
  if (!cfg.enabled || process.env.TELEGEN_GO === '0') return null;
  if (!ctx.cfg.tracers.socket.enabled) throw new Error('the Go tracer writes into the socket tracer\'s ring: enable tracers.socket');
  const Native = (loadNative() as unknown as { UprobeTracer: new () => NativeGoTracer }).UprobeTracer;
  const t = new Native();
  t.open(objectPath(), {
    rodata: { self_pid: process.pid, target_pid: ctx.cfg.tracers.socket.target_pid ?? 0, capture_max: cfg.capture_max },
    shareMaps: ['tg_conns', 'tg_ring'],
  });
  const h2 = openGoHttp2(ctx);
  // Goroutine links (TG_EV_GO_LINK) wait for their client spans; times through the span clock.
  const links = new GoLinks((ts) => ctx.agent.clock.toEpochNs(ts));
  ctx.agent.kernel.goLinks = links;
  const correlator = ctx.agent.correlate?.correlator;
  if (correlator) correlator.goParent = (connId, startNs) => links.take(connId, startNs);
  const attacher = new GoAttacher(t, process.pid, h2?.probes);
  attacher.scan();
  const exec = openGoExec(ctx, attacher);
  const timer = setInterval(() => {
    try {
      attacher.scan();
      exec?.sync();
    } catch (e) {
      glog.error({ err: (e as Error).message }, 'scan failed');
    }
  }, exec ? cfg.safety_rescan_ms : cfg.rescan_ms);
  timer.unref();
  setGoStatusSource(() => attacher.status());

  const counter = ctx.signals.meter.createObservableCounter('telegen.go.tls.records', { description: 'Go TLS tracer kernel counters (plaintext records, ring full, no connection, faults, truncated, goroutine links)', unit: '{record}' });
  counter.addCallback((r) => {
    const v = t.stats('go_tls_stats');
    for (const { name, index } of STAT_NAMES) r.observe(v[index] ?? 0, { 'telegen.counter': name });
  });
  const untrack = trackTracerObject(ctx.metrics, 'go', t, 'go_tls_stats', STAT_NAMES);
  const st = attacher.status();
  return {
    name: 'go',
    detail: `${st.filter((s) => s.instrumented).length} Go binaries instrumented, ${st.filter((s) => !s.instrumented).length} not (see /api/discovery)`,
    stop(): void {
      clearInterval(timer);
      exec?.stop();
      setGoStatusSource(undefined);
      ctx.agent.kernel.goLinks = undefined;
      if (correlator) correlator.goParent = undefined;
      attacher.detachAll();
      untrack();
      t.close();
      h2?.close();
    },
  };
};
