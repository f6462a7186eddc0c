// Security monitor: bpf/security.bpf.c reports execs and the calls rules look at; the rules of
// policy_dir (host/src/secmon) decide which become OTLP log records. Rules reload when their files
// change; a rule whose event's programs could not attach here is reported inactive (status,
// /metrics, one log line) and the others run.
import * as path from 'path';
import { TracerFactory, RunningTracer } from '../agent';
import { log } from '../log';
import { installRoot } from '../paths';
import { BpfObject } from './bpf-object';
import { tg_security_stat, tg_security_limits as LIM, tg_security_prefix as P } from '../generated/security-layout';
import { loadPolicy, policySignature, Policy, Rule, EventKind, EVENT_KINDS } from '../secmon/policy';
import { parseSecurityEvent, KIND_PROGRAMS } from '../secmon/event';
import { matches } from '../secmon/match';
import { RuleLimiter } from '../secmon/limit';
import { securityLogRecord } from '../secmon/record';

const slog = log.child({ component: 'tracer.security' });
const STAT_NAMES = Object.keys(tg_security_stat).filter((k) => k !== 'TG_SECURITY_STAT_MAX')
  .sort((a, b) => tg_security_stat[a as keyof typeof tg_security_stat] - tg_security_stat[b as keyof typeof tg_security_stat])
  .map((k) => `security_${k.slice('TG_SECURITY_STAT_'.length).toLowerCase()}`);

/** Event kinds with at least one complete (enter and exit) set of programs attached. */
export function activeKinds(attached: string[]): Set<EventKind> {
  const have = new Set(attached);
  return new Set(EVENT_KINDS.filter((k) => KIND_PROGRAMS[k].some((set) => set.every((p) => have.has(p)))));
}

function prefixEntry(prefix: string): Buffer {
  const b = Buffer.alloc(P.size);
  const s = Buffer.from(prefix, 'utf8');
  b.writeUInt32LE(s.length, P.len);
  s.copy(b, P.prefix);
  return b;
}

export const securityTracer: TracerFactory = (ctx) => {
  const cfg = ctx.cfg.tracers.security;
  if (!cfg.enabled) return null;
  const dir = cfg.policy_dir ?? process.env.TELEGEN_SECURITY_POLICY_DIR ?? path.join(installRoot(), 'policies', 'security');
  // Rules first: a policy that does not validate stops the tracer before anything is loaded.
  let policy: Policy = loadPolicy(dir);
  let signature = policySignature(dir);
  const obj = new BpfObject('security', { rodata: { self_pid: process.pid }, maxEntries: { tg_sec_ring: cfg.ring_bytes } });
  const rep = obj.attachAll();
  const active = activeKinds(rep.attached);
  for (const f of rep.failed) slog.warn({ program: f.name, err: f.error }, 'program did not attach; the rest keep running');
  if (!active.size) { obj.close(); throw new Error(`no security program attached: ${rep.failed.map((f) => `${f.name}: ${f.error}`).join('; ')}`); }
  obj.openRing('tg_sec_ring');

  let limiters = new Map<string, RuleLimiter>();
  const inactive = (rules: Rule[]) => rules.filter((r) => !active.has(r.event));
  const apply = (p: Policy) => {
    const key = Buffer.alloc(4);
    for (let i = 0; i < LIM.TG_SECURITY_PREFIXES; i++) {
      key.writeUInt32LE(i);
      obj.update('tg_sec_prefixes', key, i < p.prefixes.length ? prefixEntry(p.prefixes[i]) : Buffer.alloc(P.size));
    }
    const next = new Map<string, RuleLimiter>();
    for (const r of p.rules) next.set(r.id, limiters.get(r.id) ?? new RuleLimiter(r.rate_limit.per_second, r.rate_limit.burst));
    limiters = next;
    policy = p;
    for (const r of inactive(p.rules)) slog.warn({ rule: r.id, event: r.event }, `rule inactive: the ${r.event} programs could not attach on this kernel (see telegen doctor)`);
    slog.info({ rules: p.rules.length, files: p.files.length, prefixes: p.prefixes }, 'security rules loaded');
  };
  apply(policy);

  const m = ctx.metrics;
  let reloadFailed = '';
  const reload = () => {
    const sig = policySignature(dir);
    if (sig === signature) return;
    signature = sig;
    try {
      apply(loadPolicy(dir));
      reloadFailed = '';
      m.inc('telegen_security_policy_reloads_total', 'Security policy reloads by result', { result: 'ok' });
    } catch (e) {
      const msg = (e as Error).message;
      if (msg !== reloadFailed) slog.error({ err: msg }, 'security policy change not applied; the previous rules stay');
      reloadFailed = msg;
      m.inc('telegen_security_policy_reloads_total', 'Security policy reloads by result', { result: 'error' });
    }
  };

  const onEvent = (buf: Buffer) => {
    const ev = parseSecurityEvent(buf);
    if (!ev) return;
    m.inc('telegen_security_events_total', 'Kernel events the security monitor checked against the rules', { event: ev.kind });
    for (const rule of policy.rules) {
      if (!matches(rule, ev)) continue;
      const lim = limiters.get(rule.id)!;
      const suppressed = lim.take();
      if (suppressed === undefined) {
        m.inc('telegen_security_alerts_suppressed_total', 'Matches not exported because their rule was over its rate limit', { rule: rule.id });
        continue;
      }
      m.inc('telegen_security_alerts_total', 'Security rule matches exported as log records', { rule: rule.id, severity: rule.severity });
      ctx.signals.logger.emit(securityLogRecord(rule, ev, suppressed));
    }
  };
  const drain = () => obj.drainRing(onEvent);
  // poll_ms after the first event, not every poll_ms: idle, nothing wakes the agent.
  const watch = obj.watchRing(drain, cfg.poll_ms);
  const reloader = setInterval(reload, cfg.reload_ms);
  reloader.unref();

  let stopped = false;
  m.addCollector((mm) => {
    if (stopped) return;
    obj.collect(mm, 'security', { map: 'tg_sec_stats', names: STAT_NAMES });
    mm.clear('telegen_security_rule_active');
    for (const r of policy.rules) mm.set('telegen_security_rule_active', 'Whether a security rule can fire on this kernel (its programs attached)', active.has(r.event) ? 1 : 0, { rule: r.id, event: r.event });
  });
  const off = inactive(policy.rules);
  const r: RunningTracer = {
    name: 'security',
    detail: `${rep.attached.length} programs attached${rep.failed.length ? `, ${rep.failed.length} failed: ${rep.failed.map((f) => f.name).join(', ')}` : ''}; `
      + `${policy.rules.length} rules${off.length ? `, inactive here: ${off.map((x) => x.id).join(', ')}` : ''}`,
    stop: () => { watch.stop(); clearInterval(reloader); drain(); stopped = true; obj.close(); },
  };
  return r;
};
