// What a config reload (SIGHUP) may change in a running agent. A key applies live only where the
// component reading it can take a new value without re-attaching BPF or losing queued data;
// everything else is named as needing a restart, never half-applied.
import { Config } from './index';
import type { Agent } from '../agent';
import { log } from '../log';

/** Subtrees that apply live (Agent.reload), with why the others do not:
 *  - log_level: the loggers' level, read per call.
 *  - pipeline.filter / sampling / redaction: the span stages are rebuilt and swapped between two
 *    spans (the chain is one function reference); redaction is the union of the policy file's
 *    section (read at start) and pipeline.redaction, as at start-up.
 *  - discovery.service_rules: known processes are named again and resources rebuilt per pid.
 *  - agent.max_cpu_percent, agent.contended_cpu_percent, agent.shed_export_backlog_percent: the running overload gate takes
 *    them at its next tick (OverloadGate.update); with no gate running they need a restart.
 *  Restart: tracers.* (programs, maps and rings are sized and attached at start), api.* (the
 *  listening socket and its TLS), otlp.* and data_dir (the exporters own queues in flight; a swap
 *  that keeps them is not built yet), agent.max_rss_mb (the memory bound and the idle collection's
 *  compaction limit are set together at start), decoders.* (modules load at start; hot-swap has its own API), discovery.*
 *  (the rest: its scanners and watches start once), security.*, policy_file, service_name (the resource is
 *  built once). */
export const LIVE_KEYS = ['log_level', 'pipeline.filter', 'pipeline.sampling', 'pipeline.redaction', 'discovery.service_rules',
  'agent.max_cpu_percent', 'agent.contended_cpu_percent', 'agent.shed_export_backlog_percent'] as const;

/** The overload gate's keys that apply live: only when a gate runs (Agent.reload). */
export const isGateKey = (k: string): boolean => k.startsWith('agent.');

/** Leaf paths whose values differ, e.g. `pipeline.sampling.ratio`; arrays compare whole. */
export function changedKeys(a: unknown, b: unknown, prefix = ''): string[] {
  const obj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
  if (obj(a) && obj(b)) {
    const out: string[] = [];
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) out.push(...changedKeys(a[k], b[k], prefix ? `${prefix}.${k}` : k));
    return out;
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [prefix || '(root)'];
}

export function appliesLive(key: string): boolean {
  return LIVE_KEYS.some((p) => key === p || key.startsWith(`${p}.`));
}

export interface ReloadPlan {
  /** Changed keys the running agent takes now. */
  live: string[];
  /** Changed keys that take effect only after a restart. */
  restart: string[];
}

export function planReload(running: Config, next: Config): ReloadPlan {
  const changed = changedKeys(running, next);
  return { live: changed.filter(appliesLive), restart: changed.filter((k) => !appliesLive(k)) };
}

const RELOADS = 'telegen_config_reloads_total';
const RELOADS_HELP = 'Config reloads (SIGHUP) by result: applied (every changed key took effect), restart_needed (some changed keys take effect only after a restart; the others were applied), invalid (the file was refused; the running config stays)';

/** The reload counter's series, at 0 until the first SIGHUP. */
export function countReloads(agent: Agent): void {
  for (const result of ['applied', 'restart_needed', 'invalid']) agent.metrics.inc(RELOADS, RELOADS_HELP, { result }, 0);
}

/** SIGHUP in `telegen run` (cli/run.ts) and in the privilege-separated worker (its loader read the
 *  file): `load` gives the new config or throws why it is refused, in which case nothing changes. */
export function applyReload(agent: Agent, source: string, load: () => Config): void {
  let r;
  // agent.reload() throws before it changes anything (e.g. a service rule that is no regular expression).
  try { r = agent.reload(load()); } catch (e) {
    agent.metrics.inc(RELOADS, RELOADS_HELP, { result: 'invalid' });
    log.error({ config: source, error: (e as Error).message }, 'config reload failed: keeping the running config');
    return;
  }
  // Logged after the level changed: a reload to warn is quiet, as the user asked.
  log.info({ config: source, applied: r.live }, 'config reloaded');
  if (r.restart.length) log.warn({ config: source, restart_needed: r.restart }, 'config reload: these changed keys apply only after a restart');
  agent.metrics.inc(RELOADS, RELOADS_HELP, { result: r.restart.length ? 'restart_needed' : 'applied' });
}
