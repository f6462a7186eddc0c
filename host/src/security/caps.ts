// Least privilege after start-up (issue 11): every BPF object, tracepoint and XDP attachment is
// loaded by then, so the agent keeps only what its run-time work needs and drops the rest from
// every thread (effective, permitted, inheritable, ambient and — with CAP_SETPCAP — bounding),
// then sets no_new_privs so no exec can regain them.
import * as fs from 'fs';
import { loadNative } from '../native';

/** linux/capability.h bit numbers of the capabilities the agent can need at run time. */
export const CAP = { DAC_READ_SEARCH: 2, NET_ADMIN: 12, SYS_PTRACE: 19, SYS_ADMIN: 21, SYSLOG: 34, PERFMON: 38, BPF: 39 } as const;
export type CapName = keyof typeof CAP;

/** Why each kept capability is still needed after start-up (shown in logs and docs/security.md). */
export const RUNTIME_NEEDS: Record<Exclude<CapName, 'NET_ADMIN' | 'SYS_ADMIN'>, string> = {
  BPF: 'map reads under kernel.unprivileged_bpf_disabled, programs loaded later (profiler switched on, uprobes)',
  PERFMON: 'uprobes on processes that start later (TLS), perf events of the profiler',
  SYS_PTRACE: "/proc/PID/{exe,maps,root,environ} of other users' processes (process attributes, uprobe targets)",
  DAC_READ_SEARCH: 'container file systems and /proc entries owned by other users',
  SYSLOG: "/proc/kallsyms addresses (perf_event_paranoid > 1) for the profiler's kernel frames; kept only if held",
};

/**
 * The capabilities kept after start-up (the native drop keeps only those also held). NET_ADMIN
 * is not: XDP/tc attach only at start. SYS_ADMIN only stands in for BPF+PERFMON on kernels that
 * predate them (cap_last_cap < 39, before 5.8). SYSLOG is not in the seed's list; a plain-root
 * start holds it, and without it the profiler (switchable at run time) reads zero addresses.
 */
export function runtimeCapabilities(capLastCap: number): CapName[] {
  const keep: CapName[] = ['BPF', 'PERFMON', 'SYS_PTRACE', 'DAC_READ_SEARCH', 'SYSLOG'];
  if (capLastCap < CAP.BPF) return [...keep.filter((c) => CAP[c] <= capLastCap), 'SYS_ADMIN'];
  return keep;
}

export function capLastCap(): number {
  try {
    return Number(fs.readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim());
  } catch {
    return 40;
  }
}

/** Names of the capabilities set in a /proc/PID/status mask. */
export function capNames(mask: bigint): string[] {
  return (Object.keys(CAP) as CapName[]).filter((n) => (mask >> BigInt(CAP[n])) & 1n);
}

export interface DropResult {
  kept: CapName[];
  /** Threads of the process after the drop. */
  threads: number;
  /**
   * Threads that still hold more, because they block every signal and so never ran the drop:
   * Node's SIGUSR1 inspector watchdog (a thread that only waits on a semaphore) is one.
   */
  unreachable: number[];
  /** Threads that still hold more although they could have been signalled (should be none). */
  unchanged: number[];
}

interface NativeCaps {
  dropCapabilities(keep: number[]): { kept: string; threads: number; unchanged: number[]; failed: number; signal: number };
}

/** Whether thread `tid` of this process blocks signal `sig` (SigBlk in its /proc status). */
export function threadBlocks(tid: number, sig: number, pid: number | 'self' = 'self'): boolean {
  try {
    const m = /^SigBlk:\s*([0-9a-f]+)/m.exec(fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'));
    return !!m && ((BigInt(`0x${m[1]}`) >> BigInt(sig - 1)) & 1n) === 1n;
  } catch {
    return false;
  }
}

/** Drops every capability but `runtimeCapabilities()` from all threads of this process. */
export function dropToRuntimeCapabilities(): DropResult {
  const keep = runtimeCapabilities(capLastCap());
  const r = (loadNative() as unknown as NativeCaps).dropCapabilities(keep.map((c) => CAP[c]));
  const unreachable = r.unchanged.filter((tid) => threadBlocks(tid, r.signal));
  return { kept: capNames(BigInt(r.kept)) as CapName[], threads: r.threads, unreachable, unchanged: r.unchanged.filter((tid) => !unreachable.includes(tid)) };
}

/** CapEff of this process's main thread (0n when unreadable). */
export function effectiveCapabilities(pid: number | 'self' = 'self'): bigint {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? BigInt(`0x${m[1]}`) : 0n;
  } catch {
    return 0n;
  }
}

/** The seed's capabilities, what each enables, and whether `telegen run` keeps it after start-up. */
export const CAPABILITY_USES: ReadonlyArray<{ cap: CapName; enables: string }> = [
  { cap: 'BPF', enables: 'loading programs and creating maps (kernel >= 5.8)' },
  { cap: 'PERFMON', enables: 'tracepoints, uprobes, perf_event programs, bpf_probe_read (kernel >= 5.8)' },
  { cap: 'SYS_PTRACE', enables: "/proc/PID/{exe,maps,root} of other users' processes: process attributes, uprobes on their binaries" },
  { cap: 'NET_ADMIN', enables: 'XDP and tc attachments (tracers.xdp)' },
  { cap: 'DAC_READ_SEARCH', enables: 'reading /proc and container file systems owned by other users' },
  { cap: 'SYS_ADMIN', enables: 'all of BPF+PERFMON on kernels before 5.8; not needed otherwise' },
  { cap: 'SYSLOG', enables: "kernel symbol addresses in /proc/kallsyms for the profiler's kernel frames (optional, not in the seed list)" },
];

export interface CapabilityRow { name: CapName; held: boolean; enables: string; keptAfterStart: boolean }

/** One row per seed capability for `doctor`: held now (from a CapEff mask), what it enables, kept after start-up. */
export function capabilityReport(effective: bigint, lastCap = capLastCap()): CapabilityRow[] {
  const kept = runtimeCapabilities(lastCap);
  return CAPABILITY_USES.filter((u) => CAP[u.cap] <= lastCap).map((u) => ({
    name: u.cap, held: ((effective >> BigInt(CAP[u.cap])) & 1n) === 1n, enables: u.enables, keptAfterStart: kept.includes(u.cap),
  }));
}
