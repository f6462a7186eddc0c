// Exec-time attach for the Go tracer (bpf/go_exec.bpf.c): an executable the attacher has not
// looked at is analyzed the moment it is exec'd (the periodic /proc scan stays as a safety net
// for missed events), and a hooked process's exit removes its probes at once. With
// `tracers.go.exec_hold`, a possibly-Go process is held stopped until its probes are in, so
// even its first request is traced.
import { TracerContext } from '../agent';
import { log } from '../log';
import { BpfObject } from './bpf-object';
import { tg_go_exec_event, tg_go_exec_kind, tg_go_exec_file, tg_go_exec_known_value, tg_go_exec_stat } from '../generated/go_exec-layout';
import { statNames } from './map-fill';
import type { GoAttacher } from './go';

const elog = log.child({ component: 'tracer.go.exec' });
// telegen_bpf_go_exec_{events,ring_full,held}_total on /metrics (BpfObject.collect: by index).
const STAT_NAMES = statNames(tg_go_exec_stat, 'TG_GO_EXEC_STAT_').map((s) => `go_exec_${s.name}`);

/** "st_dev:st_ino" (user-space dev encoding) → the kernel's key (dev as MAJOR << 20 | MINOR). */
export function kernelFileKey(key: string): Buffer | undefined {
  const [d, i] = key.split(':').map(Number);
  if (!Number.isFinite(d) || !Number.isFinite(i)) return undefined;
  const major = Math.floor(d / 256) & 0xfff;
  const minor = (d & 0xff) | (Math.floor(d / 4096) & 0xfff00);
  const b = Buffer.alloc(tg_go_exec_file.size);
  b.writeBigUInt64LE(BigInt(i), tg_go_exec_file.ino);
  b.writeUInt32LE(((major << 20) | minor) >>> 0, tg_go_exec_file.dev);
  return b;
}

export interface GoExecWatch {
  /** Hands the files and pids the periodic scan found to the kernel (a no-op when the attacher
   *  did not change): the exec watcher itself only runs when the ring has events. */
  sync(): void;
  stop(): void;
}

/** Who else wants the exec events (the TLS tracer: a new executable may map libssl). `exec` gets
 *  the pid of an executable the kernel saw for the first time; `missed` says the ring dropped
 *  events, so only a full /proc scan is sure to find everything. */
export interface ExecListener { exec(pid: number): void; missed(): void; }
const listeners = new Set<ExecListener>();
let watching = 0;

/** Subscribes (before or after the Go tracer starts: events flow while it runs). */
export function onGoExec(l: ExecListener): void { listeners.add(l); }
/** Whether exec events are being delivered (else a listener must scan /proc itself). */
export function goExecActive(): boolean { return watching > 0; }
export function offGoExec(l: ExecListener): void { listeners.delete(l); }

/** null when exec events cannot be had here (the /proc scan then does it all). */
export function openGoExec(ctx: TracerContext, attacher: GoAttacher): GoExecWatch | null {
  const cfg = ctx.cfg.tracers.go;
  let obj: BpfObject;
  try {
    obj = new BpfObject('go_exec', { rodata: { self_pid: process.pid, hold: cfg.exec_hold ? 1 : 0 } });
  } catch (e) {
    elog.warn({ err: (e as Error).message }, 'exec events unavailable; new Go processes are found by the /proc scan');
    return null;
  }
  const rep = obj.attachAll();
  if (rep.failed.length) {
    elog.warn({ failed: rep.failed }, 'exec events unavailable; new Go processes are found by the /proc scan');
    obj.close();
    return null;
  }
  obj.openRing('go_exec_ring');
  const one = Buffer.from([1]);
  const silent = Buffer.from([tg_go_exec_known_value.TG_GO_EXEC_KNOWN_SILENT]);
  const reported = Buffer.from([tg_go_exec_known_value.TG_GO_EXEC_KNOWN_HOOKED]);
  const known = new Map<string, { k: Buffer; hooked: boolean }>();
  const watched = new Set<number>();
  const pidKey = (p: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(p); return b; };

  // The kernel learns what the attacher knows: files looked at (no event on their next exec, but
  // for hooked files: that pid joins the binary) and the pids running hooked files (their exit
  // is reported). So the attacher knows every process of a hooked file without a /proc walk.
  let synced = -1;
  const sync = () => {
    if (synced === attacher.version) return;
    synced = attacher.version;
    const now = new Set<string>();
    const pids = new Set<number>();
    for (const [key, h] of attacher.binaries) {
      now.add(key);
      const hooked = !!h?.status.instrumented;
      const was = known.get(key);
      if (was?.hooked !== hooked) {
        const k = was?.k ?? kernelFileKey(key);
        if (k) { obj.update('go_exec_known', k, hooked ? reported : silent); known.set(key, { k, hooked }); }
      }
      if (h?.status.instrumented) for (const p of h.status.pids) pids.add(p);
    }
    for (const [key, { k }] of known) if (!now.has(key)) { obj.delete('go_exec_known', k); known.delete(key); }
    for (const p of pids) if (!watched.has(p)) { obj.update('go_exec_watch', pidKey(p), one); watched.add(p); }
    for (const p of watched) if (!pids.has(p)) { obj.delete('go_exec_watch', pidKey(p)); watched.delete(p); }
  };

  let ringFull = 0;
  const fullKey = Buffer.alloc(4);
  fullKey.writeUInt32LE(tg_go_exec_stat.TG_GO_EXEC_STAT_RING_FULL);
  // One per-CPU slot read: drops fill the ring first, so a drain follows every drop and this
  // look at each drain sees it.
  const ringFullCount = () => {
    const v = obj.lookup('go_exec_stats', fullKey);
    let sum = 0;
    if (v) for (let c = 0; c + 8 <= v.length; c += 8) sum += Number(v.readBigUInt64LE(c));
    return sum;
  };
  // Runs when the ring holds events (watchRing: the ring's fd wakes the event loop), not on a
  // timer: an idle host wakes nothing here, an exec is read on the next loop turn.
  const drain = () => {
    const held: number[] = [];
    const execd: number[] = [];
    // Processes that exec'd a hooked file: only their pid is new (the TLS tracer's listeners
    // looked at the file when it was first exec'd).
    const joined: number[] = [];
    // A hooked process exited: only a walk of every process can tell whether another one (exec'd
    // from a file already looked at, so with no event) still runs the file before it is unhooked.
    let rescan = false;
    obj.drainRing((r) => {
      const kind = r[tg_go_exec_event.kind];
      const pid = r.readUInt32LE(tg_go_exec_event.pid);
      if (kind === tg_go_exec_kind.TG_GO_EXEC_EXIT) { watched.delete(pid); rescan = true; } else if (kind === tg_go_exec_kind.TG_GO_EXEC_HOOKED) joined.push(pid); else {
        execd.push(pid);
        for (const l of listeners) l.exec(pid);
      }
      if (r[tg_go_exec_event.held]) held.push(pid);
    }, 1024);
    const full = ringFullCount();
    if (full !== ringFull) {
      ringFull = full;
      rescan = true;
      for (const l of listeners) l.missed();
    }
    if (!rescan && !execd.length && !joined.length) return;
    try {
      if (rescan) attacher.scan(); else attacher.scanPids(joined.length ? [...execd, ...joined] : execd);
      sync();
    } catch (e) {
      elog.error({ err: (e as Error).message }, 'exec-time scan failed');
    } finally {
      // Never leave a process stopped: hooked or not, it goes on now.
      for (const p of held) {
        try { process.kill(p, 'SIGCONT'); } catch { /* exited */ }
        // Rare (the first exec of a new static executable): each one is worth a line.
        elog.info({ pid: p, hooked: attacher.status().some((x) => x.instrumented && x.pids.includes(p)) }, 'held at exec until analyzed; continued');
      }
    }
  };
  sync();
  ringFull = ringFullCount();
  watching++;
  // exec_poll_ms only where the fd cannot be watched (an addon without ringWatch).
  const watch = obj.watchRing(drain, 0, cfg.exec_poll_ms);
  ctx.metrics.addCollector((m) => obj.collect(m, 'go_exec', { map: 'go_exec_stats', names: STAT_NAMES }));
  elog.info({ hold: cfg.exec_hold }, 'exec-time attach on');
  return {
    sync,
    stop(): void {
      watch.stop();
      drain();
      watching--;
      obj.close();
    },
  };
}
