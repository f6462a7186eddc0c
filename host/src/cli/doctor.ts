// `telegen doctor [--json]`: what this machine offers and which tracers can run, in sentences.
import { Args } from './main';
import { probeFeatures, doctorChecks, tracerVerdicts } from '../doctor/probe';
import { Discovery } from '../discovery';
import { discoverySummary } from '../discovery/summary';
import { capabilityReport, effectiveCapabilities } from '../security/caps';
import { inspectGoProcesses } from '../gotrace/probes';
import { securityRuleVerdicts, RuleVerdict } from '../doctor/security-rules';
import { loadConfig, Config } from '../config';
import { installRoot } from '../paths';
import * as path from 'path';

/** The security monitor's rule directory as `telegen run` would resolve it (config, env, install default). */
function policyDir(cfg: Config, fromFile: boolean): string {
  return (fromFile ? cfg.tracers.security.policy_dir : undefined) ?? process.env.TELEGEN_SECURITY_POLICY_DIR ?? path.join(installRoot(), 'policies', 'security');
}

/** Whether `telegen run` on this config starts the tracer: "can run" alone read as "runs", for
 *  fileio, security and logs too, which are off unless switched on. */
export function configState(cfg: Config, tracer: string): { on: boolean; note: string } {
  const t = (cfg.tracers as Record<string, { enabled?: boolean; interfaces?: string[] } | undefined>)[tracer];
  if (!t) return { on: false, note: 'not in the config' };
  if (!t.enabled) return { on: false, note: `off in the config (tracers.${tracer}.enabled)` };
  if (tracer === 'xdp' && !t.interfaces?.length) return { on: false, note: 'on, but attached to no interface (tracers.xdp.interfaces)' };
  return { on: true, note: 'on in the config' };
}

export async function doctorCommand(args: Args): Promise<number> {
  const fromFile = typeof args.flags.config === 'string';
  const cfg = loadConfig(fromFile ? args.flags.config as string : undefined);
  const f = probeFeatures();
  const checks = doctorChecks(f);
  const tracers = tracerVerdicts(f).map((t) => ({ ...t, config: configState(cfg, t.name) }));
  const caps = capabilityReport(effectiveCapabilities());
  // Discovery without timers or network: one /proc and socket scan.
  const d = new Discovery({});
  d.scanProcs();
  d.scanSockets();
  const go = inspectGoProcesses();
  const dir = policyDir(cfg, fromFile);
  let rules: RuleVerdict[] | { error: string };
  try { rules = securityRuleVerdicts(dir, f.tracefs); } catch (e) { rules = { error: (e as Error).message }; }
  if (args.flags.json) {
    process.stdout.write(JSON.stringify({ features: f, checks, tracers, capabilities: caps, discovery: d.snapshot(), goProcesses: go, securityRules: { policyDir: dir, rules } }, null, 2) + '\n');
    return 0;
  }
  const w = (s: string) => process.stdout.write(s + '\n');
  w(`telegen doctor — kernel ${f.kernel}, ${f.root ? 'root' : 'not root'}`);
  for (const c of checks) {
    const mark = c.ok ? 'ok  ' : c.unused ? 'none' : 'MISS';
    const next = c.ok ? undefined : c.unused ?? c.fix;
    w(`  ${mark} ${c.name.padEnd(18)} ${c.detail}${next ? `\n         → ${next}` : ''}`);
  }
  w('tracers:');
  for (const t of tracers) w(`  ${t.canRun ? (t.partly ? 'partly  ' : 'can run ') : 'cannot  '} ${t.name.padEnd(9)} ${t.config.note}${t.why ? ` — ${t.why}` : t.partly ? ` — ${t.partly}` : ''}`);
  w(`  (on/off as \`telegen run\` would start them with ${fromFile ? args.flags.config : 'the default config (no --config)'})`);
  w(`security rules (${dir}):`);
  if (!Array.isArray(rules)) w(`  cannot read: ${rules.error}`);
  else {
    const off = rules.filter((x) => !x.active);
    w(`  ${rules.length - off.length} of ${rules.length} can fire here`);
    for (const x of off) w(`  inactive ${x.id.padEnd(24)} (${x.event}) — ${x.why}`);
  }
  w('capabilities (held now; kept by `telegen run` after start-up):');
  for (const c of caps) w(`  ${c.held ? 'held' : 'no  '} ${c.name.padEnd(16)} ${c.keptAfterStart ? 'kept   ' : 'dropped'} ${c.enables}`);
  w('discovery:');
  for (const l of discoverySummary(d)) w(l);
  w('go processes (crypto/tls probes):');
  if (!go.length) w('  none running');
  for (const g of go) w(`  ${g.reason ? 'cannot  ' : 'can     '} ${g.path} (${g.goVersion}, ${g.symbols === 'pclntab' ? 'stripped' : 'symbols'}; pids ${g.pids.join(', ')})${g.reason ? ` — ${g.reason}` : ''}`);
  for (const g of go) if (!g.reason && g.http2) w(`     http2 header fields: ${g.http2.reason ? `cannot — ${g.http2.reason}` : `can (${g.http2.probes} probes)`}`);
  for (const g of go) if (!g.reason && g.goroutines) w(`     goroutine-aware requests (${g.path}): ${g.goroutines.reason ? `cannot — ${g.goroutines.reason}` : `can (${g.goroutines.probes} probes)`}`);
  w(`  exec-time attach (sched_process_exec/exit, tp_btf): ${f.attach.tp_btf?.ok ? 'can' : `cannot — ${f.attach.tp_btf?.detail ?? 'unknown'}; new Go processes are found by the /proc scan`}`);
  return 0;
}
