// Which security rules could fire on this kernel, without loading anything: a rule's event kind
// needs one complete set of its programs' tracepoints (enter and exit) in tracefs. A kernel built
// without module support has no init_module/finit_module tracepoints, so module-loading rules are
// inactive there; the running agent reports the same from the programs that actually attached.
import * as fs from 'fs';
import * as path from 'path';
import { KIND_PROGRAMS, programTracepoint } from '../secmon/event';
import { loadPolicy, EventKind } from '../secmon/policy';

export interface RuleVerdict { id: string; event: EventKind; active: boolean; why?: string }

/** The tracepoints of `kind` missing under `eventsDir` for its most complete program set ([] = active). */
export function missingTracepoints(kind: EventKind, eventsDir: string): string[] {
  let best: string[] | undefined;
  for (const set of KIND_PROGRAMS[kind]) {
    const missing = set.map(programTracepoint).filter((tp) => !fs.existsSync(path.join(eventsDir, tp)));
    if (!best || missing.length < best.length) best = missing;
  }
  return best ?? [];
}

/** One verdict per rule of `policyDir`; a rule is inactive when its event cannot be traced here. */
export function securityRuleVerdicts(policyDir: string, tracefs: string | null): RuleVerdict[] {
  const events = tracefs ? path.join(tracefs, 'events') : null;
  return loadPolicy(policyDir).rules.map((r) => {
    if (!events) return { id: r.id, event: r.event, active: false, why: 'tracefs is not mounted' };
    const missing = missingTracepoints(r.event, events);
    if (!missing.length) return { id: r.id, event: r.event, active: true };
    const noModules = r.event === 'module' && !fs.existsSync('/proc/modules');
    return {
      id: r.id, event: r.event, active: false,
      why: `no tracepoint ${missing.join(', ')} on this kernel${noModules ? ' (built without loadable module support: modules cannot be loaded at all)' : ''}`,
    };
  });
}
