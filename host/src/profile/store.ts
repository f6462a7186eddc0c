// Recent intervals kept for the API as folded counts per service (and per linked trace), bounded by time.
import { FlameNode, foldedLine, foldedToTree, IntervalProfile, ProfileSample } from './model';
import { ProcessInfo } from './process';

interface Entry { endMs: number; byService: Map<string, Map<string, number>>; byTrace?: Map<string, Map<string, number>>; samples: number }

/** Group key (none: skipped) → folded stack line → samples, for one interval. */
function foldBy(iv: IntervalProfile, keyOf: (s: ProfileSample) => string | undefined): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>();
  for (const s of iv.samples) {
    const k = keyOf(s);
    if (k === undefined) continue;
    let m = out.get(k);
    if (!m) { m = new Map(); out.set(k, m); }
    const line = foldedLine(s);
    m.set(line, (m.get(line) ?? 0) + s.count);
  }
  return out;
}

/** service.name → folded stack line → samples, for one interval. */
export const foldByService = (iv: IntervalProfile, proc: (pid: number, comm: string) => ProcessInfo) => foldBy(iv, (s) => proc(s.pid, s.comm).serviceName);

/** trace_id → folded stack line → samples, for the samples of one interval linked to a trace. */
export const foldByTrace = (iv: IntervalProfile) => foldBy(iv, (s) => s.link?.traceId);

export class ProfileStore {
  private entries: Entry[] = [];
  constructor(private windowMs: number) {}

  /** One interval, already folded per service (by the worker: foldByService). */
  addFolded(endMs: number, byService: Map<string, Map<string, number>>, byTrace?: Map<string, Map<string, number>>): void {
    let samples = 0;
    for (const m of byService.values()) for (const c of m.values()) samples += c;
    this.entries.push({ endMs, byService, byTrace: byTrace?.size ? byTrace : undefined, samples });
    const cut = endMs - this.windowMs;
    while (this.entries.length && this.entries[0].endMs < cut) this.entries.shift();
  }

  services(sinceMs: number): Array<{ service: string; samples: number }> {
    const t = new Map<string, number>();
    for (const e of this.entries) if (e.endMs >= sinceMs) for (const [svc, m] of e.byService) { let n = 0; for (const c of m.values()) n += c; t.set(svc, (t.get(svc) ?? 0) + n); }
    return [...t].map(([service, samples]) => ({ service, samples })).sort((a, b) => b.samples - a.samples);
  }

  folded(service: string | undefined, sinceMs: number): Map<string, number> {
    const out = new Map<string, number>();
    for (const e of this.entries) {
      if (e.endMs < sinceMs) continue;
      for (const [svc, m] of e.byService) {
        if (service && svc !== service) continue;
        for (const [line, c] of m) out.set(line, (out.get(line) ?? 0) + c);
      }
    }
    return out;
  }

  tree(service: string | undefined, sinceMs: number): FlameNode {
    return foldedToTree(this.folded(service, sinceMs), service ?? 'all');
  }

  /** The samples linked to one trace (the CPU its requests burned on their threads). */
  traceTree(traceId: string, sinceMs: number): FlameNode {
    const out = new Map<string, number>();
    for (const e of this.entries) {
      const m = e.endMs >= sinceMs ? e.byTrace?.get(traceId) : undefined;
      if (m) for (const [line, c] of m) out.set(line, (out.get(line) ?? 0) + c);
    }
    return foldedToTree(out, traceId);
  }
}
