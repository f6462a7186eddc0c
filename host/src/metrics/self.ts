// The agent's own counters, served as Prometheus text on GET /metrics.
export type Labels = Record<string, string | number>;

interface Series { help: string; type: 'counter' | 'gauge'; values: Map<string, number> }

function labelKey(labels?: Labels): string {
  if (!labels) return '';
  const parts = Object.keys(labels).sort().map((k) => `${k}="${String(labels[k]).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

/** A label set's key by its names and values in the caller's order: name → value → … → key. */
class KeyNode { readonly next = new Map<unknown, KeyNode>(); key: string | undefined }
/** Nodes the cache may hold (label values can be unbounded, e.g. a pid): past it, keys are built
 *  per call as before. */
const MAX_KEY_NODES = 4096;

export class SelfMetrics {
  private readonly series = new Map<string, Series>();
  private readonly collectors: Array<(m: SelfMetrics) => void> = [];
  /** inc() with labels runs per record on some paths (HTTP/2 header hints, responses without a
   *  request, protocol events, each new connection's bind): sorting, escaping and joining the
   *  labels there was ~1.5% of a replay's CPU and most of its garbage under the router. */
  private readonly keys = new KeyNode();
  private keyNodes = 0;
  /** The series by name, in render()'s order (see there). */
  private sorted: Array<[string, Series]> = [];

  private get(name: string, help: string, type: 'counter' | 'gauge'): Series {
    let s = this.series.get(name);
    if (!s) { s = { help, type, values: new Map() }; this.series.set(name, s); }
    return s;
  }

  inc(name: string, help: string, labels?: Labels, by = 1): void {
    const s = this.get(name, help, 'counter');
    const k = labels ? this.cachedKey(labels) : '';
    s.values.set(k, (s.values.get(k) ?? 0) + by);
  }

  private cachedKey(labels: Labels): string {
    let n = this.keys;
    for (const name in labels) {
      n = this.child(n, name);
      n = this.child(n, labels[name]);
    }
    return (n.key ??= labelKey(labels));
  }

  private child(n: KeyNode, k: unknown): KeyNode {
    let c = n.next.get(k);
    if (c === undefined) {
      c = new KeyNode();
      // Full: a throwaway node (the key is built for this call and not kept).
      if (this.keyNodes < MAX_KEY_NODES) { n.next.set(k, c); this.keyNodes++; }
    }
    return c;
  }

  /** inc() for one fixed label set, its key built once: for counters bumped per span. */
  counter(name: string, help: string, labels?: Labels): (by?: number) => void {
    const k = labelKey(labels);
    let values: Map<string, number> | undefined; // the series appears on its first count, as with inc()
    return (by = 1) => { values ??= this.get(name, help, 'counter').values; values.set(k, (values.get(k) ?? 0) + by); };
  }

  set(name: string, help: string, value: number, labels?: Labels, type: 'counter' | 'gauge' = 'gauge'): void {
    this.get(name, help, type).values.set(labels ? this.cachedKey(labels) : '', value);
  }

  /** Forgets every labelled value of a gauge (e.g. a state that changed). */
  clear(name: string): void { this.series.get(name)?.values.clear(); }

  value(name: string, labels?: Labels): number {
    return this.series.get(name)?.values.get(labelKey(labels)) ?? 0;
  }

  /** Called before each scrape to copy counters owned elsewhere (native, decoders, queues). */
  addCollector(fn: (m: SelfMetrics) => void): void { this.collectors.push(fn); }

  render(): string {
    for (const c of this.collectors) { try { c(this); } catch { /* a broken collector must not break /metrics */ } }
    // Series are never removed, so the sorted order changes only when one is added: the page
    // renders twice every 2 s (/metrics and /api/status), and the locale sort of ~300 names
    // was redone each time.
    if (this.sorted.length !== this.series.size) this.sorted = [...this.series.entries()].sort(([a], [b]) => a.localeCompare(b));
    const out: string[] = [];
    for (const [name, s] of this.sorted) {
      out.push(`# HELP ${name} ${s.help}`, `# TYPE ${name} ${s.type}`);
      for (const [k, v] of s.values) out.push(`${name}${k} ${v}`);
    }
    return out.join('\n') + '\n';
  }
}
