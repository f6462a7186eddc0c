// Recent intervals kept for the API as folded counts per service, bounded by time.
import { FlameNode, foldedLine, foldedToTree, IntervalProfile } from './model';
import { ProcessInfo } from './process';

interface Entry { endMs: number; byService: Map<string, Map<string, number>>; samples: number }

/** service.name → folded stack line → samples, for one interval. */
export function foldByService(iv: IntervalProfile, proc: (pid: number, comm: string) => ProcessInfo): Map<string, Map<string, number>> {
  const byService = new Map<string, Map<string, number>>();
  for (const s of iv.samples) {
    const svc = proc(s.pid, s.comm).serviceName;
    let m = byService.get(svc);
    if (!m) { m = new Map(); byService.set(svc, m); }
    const line = foldedLine(s);
    m.set(line, (m.get(line) ?? 0) + s.count);
  }
  return byService;
}

export class ProfileStore {
  private entries: Entry[] = [];
  constructor(private windowMs: number) {}

  /** One interval, already folded per service (by the worker: foldByService). */
  addFolded(endMs: number, byService: Map<string, Map<string, number>>): void {
    let samples = 0;
    for (const m of byService.values()) for (const c of m.values()) samples += c;
    this.entries.push({ endMs, byService, samples });
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
}
