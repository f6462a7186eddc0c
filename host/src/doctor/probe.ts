// What this kernel and this process can do, found by looking (files, bpftool probes), never
// assumed. Shared by `telegen doctor`, the agent's start-up and /api/status.
import * as fs from 'fs';
import * as os from 'os';
import { execFileSync } from 'child_process';
import * as path from 'path';
import { installRoot } from '../paths';

export interface Check { name: string; ok: boolean; detail: string; fix?: string; /** Set when no tracer needs it: its absence is no fault. */ unused?: string }

export interface Features {
  kernel: string;
  arch: string;
  root: boolean;
  btf: boolean;
  bpffs: boolean;
  tracefs: string | null;
  lockdown: string;
  unprivilegedBpf: string;
  capabilities: string[];
  programTypes: Record<string, boolean>;
  mapTypes: Record<string, boolean>;
  attach: Record<string, { ok: boolean; detail: string }>;
}

const CAP_NAMES: Record<number, string> = {
  0: 'CHOWN', 1: 'DAC_OVERRIDE', 2: 'DAC_READ_SEARCH', 5: 'KILL', 6: 'SETGID', 7: 'SETUID', 12: 'NET_ADMIN', 13: 'NET_RAW',
  19: 'SYS_PTRACE', 21: 'SYS_ADMIN', 24: 'SYS_RESOURCE', 38: 'PERFMON', 39: 'BPF', 40: 'CHECKPOINT_RESTORE',
};

export function capabilities(pid: number | 'self' = 'self'): string[] {
  try {
    const m = /CapEff:\s*([0-9a-f]+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    if (!m) return [];
    const v = BigInt(`0x${m[1]}`);
    return Object.entries(CAP_NAMES).filter(([bit]) => (v >> BigInt(bit)) & 1n).map(([, n]) => n);
  } catch { return []; }
}

function mounts(): Array<{ dir: string; type: string }> {
  try {
    return fs.readFileSync('/proc/mounts', 'utf8').split('\n').filter(Boolean).map((l) => { const p = l.split(' '); return { dir: p[1], type: p[2] }; });
  } catch { return []; }
}

export function tracefsDir(): string | null {
  const m = mounts();
  const t = m.find((x) => x.type === 'tracefs' && (x.dir === '/sys/kernel/tracing' || x.dir === '/sys/kernel/debug/tracing'));
  return t ? t.dir : null;
}

function read(p: string): string | undefined { try { return fs.readFileSync(p, 'utf8').trim(); } catch { return undefined; } }

function bpftoolProbe(): { programTypes: Record<string, boolean>; mapTypes: Record<string, boolean>; tracepointHelpers?: string[] } {
  try {
    const out = execFileSync('bpftool', ['feature', 'probe', 'kernel', 'unprivileged', '-j'].filter((a) => a !== 'unprivileged'), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 20000 });
    const j = JSON.parse(out);
    const strip = (o: Record<string, boolean>, suffix: string) => Object.fromEntries(Object.entries(o ?? {}).map(([k, v]) => [k.replace(/^have_/, '').replace(suffix, ''), v]));
    return { programTypes: strip(j.program_types, '_prog_type'), mapTypes: strip(j.map_types, '_map_type'), tracepointHelpers: j.helpers?.tracepoint_available_helpers };
  } catch { return { programTypes: {}, mapTypes: {} }; }
}

/**
 * Loads one probe object (build/bpf/probe_KIND.bpf.o) with bpftool and unpins it: tp_btf and
 * fentry resolve their BTF attach target at load time, so a load is the real answer.
 */
function loadProbe(kind: string): { ok: boolean; detail: string } {
  const obj = path.join(installRoot(), 'build', 'bpf', `probe_${kind}.bpf.o`);
  if (!fs.existsSync(obj)) return { ok: false, detail: `probe object missing (${obj}); run npm run build` };
  const pin = `/sys/fs/bpf/telegen-probe-${kind}-${process.pid}`;
  try {
    execFileSync('bpftool', ['prog', 'load', obj, pin], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20000 });
    return { ok: true, detail: `${kind} program loads` };
  } catch (e) {
    const err = String((e as { stderr?: Buffer }).stderr ?? '').split('\n').find((l) => /rror|denied|not permitted|invalid/i.test(l)) ?? 'refused';
    return { ok: false, detail: `${kind} programs are refused by this kernel (${err.trim().slice(0, 120)})` };
  } finally {
    try { fs.unlinkSync(pin); } catch { /* not pinned */ }
  }
}

/** Mounts bpffs and tracefs when missing and we may (the agent does this at start). */
export function ensureMounts(): string[] {
  const done: string[] = [];
  if (process.getuid?.() !== 0) return done;
  const m = mounts();
  if (!m.some((x) => x.type === 'tracefs')) {
    try { execFileSync('mount', ['-t', 'tracefs', 'tracefs', '/sys/kernel/tracing'], { stdio: 'ignore' }); done.push('tracefs on /sys/kernel/tracing'); } catch { /* reported by doctor */ }
  }
  if (!m.some((x) => x.type === 'bpf')) {
    try { execFileSync('mount', ['-t', 'bpf', 'bpf', '/sys/fs/bpf'], { stdio: 'ignore' }); done.push('bpffs on /sys/fs/bpf'); } catch { /* reported by doctor */ }
  }
  return done;
}

export function probeFeatures(): Features {
  const tfs = tracefsDir();
  const { programTypes, mapTypes, tracepointHelpers } = process.getuid?.() === 0 ? bpftoolProbe() : { programTypes: {}, mapTypes: {}, tracepointHelpers: undefined };
  const lockRaw = read('/sys/kernel/security/lockdown');
  const lockdown = lockRaw ? (/\[(\w+)\]/.exec(lockRaw)?.[1] ?? lockRaw) : 'none (no lockdown LSM)';
  const attach: Features['attach'] = {};
  const pmu = (n: string) => fs.existsSync(`/sys/bus/event_source/devices/${n}/type`);
  attach.tracepoint = { ok: !!programTypes.tracepoint && !!tfs && fs.existsSync(`${tfs}/events/syscalls`), detail: tfs ? `${tfs}/events/syscalls` : 'tracefs not mounted' };
  attach.raw_tp = { ok: !!programTypes.raw_tracepoint, detail: 'raw_tracepoint program type' };
  const root = process.getuid?.() === 0;
  attach.tp_btf = root ? loadProbe('tp_btf') : { ok: false, detail: 'needs root to probe' };
  attach.kprobe = { ok: !!programTypes.kprobe && pmu('kprobe'), detail: pmu('kprobe') ? 'kprobe PMU present' : 'kprobes are not built into this kernel (no kprobe PMU)' };
  attach.fentry = root ? loadProbe('fentry') : { ok: false, detail: 'needs root to probe' };
  attach.uprobe = { ok: pmu('uprobe'), detail: pmu('uprobe') ? 'uprobe PMU present' : 'no uprobe PMU' };
  attach.perf_event = { ok: !!programTypes.perf_event && pmu('software'), detail: pmu('cpu') ? 'hardware and software clocks' : 'software clock only (no hardware counters)' };
  attach.xdp = { ok: !!programTypes.xdp, detail: 'XDP program type (generic mode always available)' };
  attach.tc = { ok: !!programTypes.sched_cls, detail: 'tc/clsact classifier' };
  attach.cgroup_skb = { ok: !!programTypes.cgroup_skb, detail: 'cgroup_skb program type' };
  attach.sockops = { ok: !!programTypes.sock_ops, detail: 'sock_ops program type' };
  // An upgrade, not a need: without it the socket tracer walks the first 10 iovecs of a call.
  const loop = tracepointHelpers?.includes('bpf_loop');
  attach.bpf_loop = { ok: !!loop, detail: loop ? 'bpf_loop helper: the socket tracer walks every iovec of readv/writev/sendmsg/recvmsg (1024)' : tracepointHelpers ? 'no bpf_loop helper (kernel < 5.17): the socket tracer walks the first 10 iovecs of a call' : 'needs root to probe' };
  return {
    kernel: os.release(),
    arch: os.arch(),
    root: process.getuid?.() === 0,
    btf: fs.existsSync('/sys/kernel/btf/vmlinux'),
    bpffs: mounts().some((x) => x.type === 'bpf'),
    tracefs: tfs,
    lockdown,
    unprivilegedBpf: read('/proc/sys/kernel/unprivileged_bpf_disabled') ?? 'unknown',
    capabilities: capabilities(),
    programTypes,
    mapTypes,
    attach,
  };
}

export interface TracerVerdict { name: string; canRun: boolean; needs: string[]; why?: string; /** Runs, but without what `partly` says. */ partly?: string }

/** Attach types no tracer uses: missing here costs nothing, and a bare MISS read as a fault (the
 *  README's promise is that the agent runs on kernels without kprobes or fentry). */
export const UNUSED_ATTACH: Record<string, string> = {
  kprobe: 'not needed: no telegen tracer uses kprobes (syscall tracepoints, tp_btf and uprobes only)',
  fentry: 'not needed: no telegen tracer uses fentry/fexit',
  raw_tp: 'not needed: no telegen tracer uses raw tracepoints',
  tc: 'not needed: no telegen tracer uses tc classifiers',
  cgroup_skb: 'not needed: no telegen tracer uses cgroup_skb programs',
  sockops: 'not needed: no telegen tracer uses sock_ops programs',
};

/** Which tracers this kernel can run, and one sentence for each one that cannot. */
export function tracerVerdicts(f: Features): TracerVerdict[] {
  const capOk = f.root || f.capabilities.includes('SYS_ADMIN') || (f.capabilities.includes('BPF') && f.capabilities.includes('PERFMON'));
  const v = (name: string, needs: string[], ok: boolean, why: string): TracerVerdict => ({ name, needs, canRun: capOk && ok, why: !capOk ? 'run as root or grant CAP_BPF + CAP_PERFMON (+ CAP_SYS_ADMIN on kernels before 5.8)' : ok ? undefined : why });
  // tcp.bpf.c's connection state, RTT and reset programs and logs.bpf.c's fork follow-up are
  // tp_btf; each program attaches on its own, so without tp_btf those tracers run with less.
  const partly = (t: TracerVerdict, missing: string): TracerVerdict => (t.canRun && !f.attach.tp_btf?.ok ? { ...t, partly: missing } : t);
  return [
    v('socket', ['tracepoint', 'ringbuf', 'btf'], f.attach.tracepoint.ok && !!f.mapTypes.ringbuf && f.btf, f.btf ? (f.tracefs ? 'syscall tracepoints are unavailable' : 'mount tracefs: mount -t tracefs tracefs /sys/kernel/tracing') : 'the kernel has no BTF (/sys/kernel/btf/vmlinux): use a kernel built with CONFIG_DEBUG_INFO_BTF=y'),
    partly(v('tcp', ['tracepoint', 'tp_btf'], f.attach.tracepoint.ok, 'classic tracepoints are unavailable'), 'without tp_btf only retransmits and sent resets are counted: no connection opens, closes, durations, RTT or received resets'),
    v('xdp', ['xdp'], f.attach.xdp.ok, 'XDP programs do not load here'),
    v('profile', ['perf_event'], f.attach.perf_event.ok, 'perf_event programs do not load here'),
    v('fileio', ['tracepoint'], f.attach.tracepoint.ok, 'syscall tracepoints are unavailable'),
    partly(v('logs', ['tracepoint', 'ringbuf', 'tp_btf'], f.attach.tracepoint.ok && !!f.mapTypes.ringbuf, 'syscall tracepoints or ring buffers are unavailable'), 'without tp_btf the children a traced process forks are not followed'),
    v('security', ['tracepoint'], f.attach.tracepoint.ok, 'syscall tracepoints are unavailable'),
    v('tls', ['uprobe'], f.attach.uprobe.ok, 'uprobes are unavailable'),
    v('go', ['uprobe'], f.attach.uprobe.ok, 'uprobes are unavailable'),
  ];
}

export function doctorChecks(f: Features): Check[] {
  const c: Check[] = [];
  c.push({ name: 'kernel', ok: true, detail: `${f.kernel} (${f.arch})` });
  c.push({ name: 'privileges', ok: f.root || f.capabilities.includes('BPF'), detail: f.root ? 'root' : `capabilities: ${f.capabilities.join(', ') || 'none'}`, fix: 'run as root, or grant CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE, CAP_NET_ADMIN, CAP_DAC_READ_SEARCH' });
  c.push({ name: 'btf', ok: f.btf, detail: f.btf ? '/sys/kernel/btf/vmlinux present' : 'no kernel BTF', fix: 'use a kernel built with CONFIG_DEBUG_INFO_BTF=y (CO-RE programs need it)' });
  c.push({ name: 'tracefs', ok: !!f.tracefs, detail: f.tracefs ?? 'not mounted', fix: 'mount -t tracefs tracefs /sys/kernel/tracing (telegen run does this itself as root)' });
  c.push({ name: 'bpffs', ok: f.bpffs, detail: f.bpffs ? 'mounted' : 'not mounted', fix: 'mount -t bpf bpf /sys/fs/bpf (telegen run does this itself as root)' });
  c.push({ name: 'lockdown', ok: f.lockdown !== 'confidentiality', detail: f.lockdown, fix: 'lockdown=confidentiality forbids reading kernel memory from BPF: boot with lockdown=integrity or none' });
  for (const [k, a] of Object.entries(f.attach)) c.push({ name: `attach:${k}`, ok: a.ok, detail: a.detail, ...(UNUSED_ATTACH[k] ? { unused: UNUSED_ATTACH[k] } : {}) });
  return c;
}
