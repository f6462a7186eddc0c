// Which Go functions the Go tracer probes, and whether a binary can take those probes — shared
// by the tracer (which attaches them) and `telegen doctor` (which only says whether it could).
import * as fs from 'fs';
import { analyzeGoBinary, GoBinary } from './analyze';
import { GoBinaryStatus } from './status';
import { GO_H2_FUNCS, planH2 } from './http2';
import { GO_REQ_FUNCS, planGoroutines } from './goroutines';

/** Whether a probe set could go in (doctor: nothing is attached). */
function verdict(p: { attach: unknown[] } | { reason: string }): GoBinaryStatus['http2'] {
  return 'reason' in p ? { instrumented: false, probes: 0, reason: p.reason } : { instrumented: false, probes: p.attach.length };
}

/**
 * [function, its entry program in bpf/go_tls.bpf.c, whether its RETs get GO_TLS_RETURN_PROG]:
 * Write is emitted whole at its entry, Read only knows what it read when it returns.
 */
export const GO_TLS_FUNCS: ReadonlyArray<[string, string, boolean]> = [
  ['crypto/tls.(*Conn).Write', 'go_tls_write_enter', false],
  ['crypto/tls.(*Conn).Read', 'go_tls_read_enter', true],
];
export const GO_TLS_RETURN_PROG = 'go_tls_return';

/** `extra`: functions other probe sets want from the same analysis (one pclntab walk). */
export function analyzeForTls(file: string, extra: readonly string[] = []): GoBinary | undefined {
  return analyzeGoBinary(file, [...GO_TLS_FUNCS.map(([f]) => f), ...extra]);
}

/** Why a Go binary cannot get the TLS probes, or undefined when it can. */
export function whyNot(g: GoBinary): string | undefined {
  if (g.unsupported) return g.unsupported;
  const missing = GO_TLS_FUNCS.map(([f]) => f).filter((f) => !g.funcs.has(f));
  if (missing.length === GO_TLS_FUNCS.length) return 'does not use crypto/tls';
  if (missing.length) return `could not place probes on ${missing.join(', ')}`;
  return undefined;
}

/**
 * Every Go executable running now, analyzed but not hooked (doctor runs without the agent):
 * `reason` says why one could not be instrumented; none means the agent would instrument it.
 */
export function inspectGoProcesses(procRoot = '/proc'): GoBinaryStatus[] {
  const byFile = new Map<string, GoBinaryStatus | null>();
  let pids: string[] = [];
  try { pids = fs.readdirSync(procRoot).filter((d) => /^\d+$/.test(d)); } catch { /* no /proc */ }
  for (const pid of pids) {
    const link = `${procRoot}/${pid}/exe`;
    let key: string;
    try { const st = fs.statSync(link); key = `${st.dev}:${st.ino}`; } catch { continue; }
    if (!byFile.has(key)) {
      let g: GoBinary | undefined;
      try { g = analyzeForTls(link, [...GO_H2_FUNCS, ...GO_REQ_FUNCS]); } catch { g = undefined; }
      let shown = link;
      try { shown = fs.readlinkSync(link); } catch { /* gone */ }
      byFile.set(key, g ? { path: shown, goVersion: g.buildInfo.goVersion, symbols: g.symbols, instrumented: false, reason: whyNot(g), probes: 0, pids: [], http2: verdict(planH2(g)), goroutines: verdict(planGoroutines(g)) } : null);
    }
    byFile.get(key)?.pids.push(Number(pid));
  }
  return [...byFile.values()].filter((s): s is GoBinaryStatus => !!s);
}
