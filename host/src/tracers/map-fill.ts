// Map fill on /metrics for every loaded tracer object: telegen_bpf_map_entries and
// telegen_bpf_map_capacity{tracer,map} for each hash/LRU map, sampled on a timer (never at
// scrape time). One read of a bpf_map iterator (bpf/mapfill.bpf.c) returns every map's element
// count from the kernel's own counter, whatever the map's size; where that kfunc is missing, keys
// are walked with a per-tick time budget so a 1M-entry LRU never stalls the event loop.
import { loadNative } from '../native';
import { bpfFdinfo } from '../native/fdinfo';
import { SelfMetrics } from '../metrics/self';
import { log } from '../log';

export interface MapDesc { name: string; id: number; type: number; maxEntries: number }

interface FillNative {
  mapFill(): Float64Array;
  mapWalkKeys(id: number, cursor: Buffer | null, budgetUs: number): { count: number; cursor: Buffer | null };
  ownMaps(prefix: string): MapDesc[];
}

// BPF_MAP_TYPE_*: the types that keep an element count (and have a meaningful fill).
const HASH_TYPES = new Set([1 /* HASH */, 5 /* PERCPU_HASH */, 9 /* LRU_HASH */, 10 /* LRU_PERCPU_HASH */, 13 /* HASH_OF_MAPS */]);
const SAMPLE_MS = 5000;
const WALK_BUDGET_US = 2000;

/** Whether a map of this type has a fill worth reporting (hash and LRU maps). */
export function isFillMap(type: number): boolean { return HASH_TYPES.has(type); }

interface Source { tracer: string; describe: () => MapDesc[] }
interface Sample { tracer: string; map: string; entries: number; capacity: number }

const sources = new Set<Source>();
let timer: NodeJS.Timeout | undefined;
let samples: Sample[] = [];
let iteratorError: string | undefined;
// Paced walks in progress (fallback only): map id → partial count and where to resume.
const walks = new Map<number, { count: number; cursor: Buffer | null; last?: number }>();

function native(): FillNative { return loadNative() as unknown as FillNative; }

/** Entries per map id: the iterator's counts, or the last finished paced walk. */
function counts(ids: number[]): Map<number, number> {
  const out = new Map<number, number>();
  if (!iteratorError) {
    try {
      const f = native().mapFill();
      for (let i = 0; i + 1 < f.length; i += 2) out.set(f[i], f[i + 1]);
      return out;
    } catch (e) {
      iteratorError = (e as Error).message;
      log.child({ component: 'map-fill' }).warn({ err: iteratorError }, 'map fill falls back to paced key walks');
    }
  }
  for (const id of ids) {
    const w = walks.get(id) ?? { count: 0, cursor: null };
    try {
      const r = native().mapWalkKeys(id, w.cursor, WALK_BUDGET_US);
      w.count += r.count;
      w.cursor = r.cursor;
      if (!r.cursor) { w.last = w.count; w.count = 0; }
      walks.set(id, w);
    } catch { walks.delete(id); }
    if (w.last !== undefined) out.set(id, w.last);
  }
  return out;
}

let mapMemory: { bytes: number; maps: number } | undefined;

/**
 * Kernel memory of the BPF maps this process holds open (each map once, by its fdinfo `memlock`):
 * since Linux 5.11 it is charged to the process's memory cgroup, so a container limit must hold
 * it beside the RSS (the 1 Mi-entry connection LRU alone is ~176 MiB). Not in RSS.
 */
export function bpfMapMemory(pid: number | 'self' = 'self'): { bytes: number; maps: number } {
  const maps = bpfFdinfo(pid, 'map');
  return { bytes: maps.reduce((a, m) => a + Number(m.memlock ?? 0), 0), maps: maps.length };
}

/** One sampling pass over every registered object: each map id reported once, by its first owner. */
export function sampleMapFill(): void {
  try { mapMemory = bpfMapMemory(); } catch { /* next tick */ }
  const maps: Array<{ tracer: string; d: MapDesc }> = [];
  const seen = new Set<number>();
  for (const s of sources) {
    let ds: MapDesc[] = [];
    try { ds = s.describe(); } catch { continue; }
    for (const d of ds) {
      if (!isFillMap(d.type) || seen.has(d.id)) continue;
      seen.add(d.id);
      maps.push({ tracer: s.tracer, d });
    }
  }
  const c = counts(maps.map((m) => m.d.id));
  samples = maps.filter((m) => c.has(m.d.id)).map((m) => ({ tracer: m.tracer, map: m.d.name, entries: c.get(m.d.id)!, capacity: m.d.maxEntries }));
}

/**
 * Reports this tracer's maps from now on (sampled at once, then every 5 s). `describe` lists the
 * object's maps (native maps()). Returns the unregister function: call it before closing the object.
 */
export function registerMaps(tracer: string, describe: () => MapDesc[]): () => void {
  const s: Source = { tracer, describe };
  sources.add(s);
  if (!timer) {
    timer = setInterval(() => { try { sampleMapFill(); } catch { /* next tick */ } }, SAMPLE_MS);
    timer.unref();
  }
  try { sampleMapFill(); } catch { /* next tick */ }
  return () => {
    if (!sources.delete(s)) return;
    samples = samples.filter((x) => x.tracer !== tracer);
    if (!sources.size && timer) { clearInterval(timer); timer = undefined; }
  };
}

/** A tracer whose maps belong to another addon object: its maps found by name prefix in this process. */
export function ownMapsByPrefix(prefix: string): () => MapDesc[] {
  return () => native().ownMaps(prefix);
}

/** Publishes the last sample (scrape time: no syscalls). */
export function collectMapFill(m: SelfMetrics): void {
  m.clear('telegen_bpf_map_entries');
  m.clear('telegen_bpf_map_capacity');
  for (const s of samples) {
    m.set('telegen_bpf_map_entries', 'Entries in a tracer BPF map (sampled every 5 s)', s.entries, { tracer: s.tracer, map: s.map });
    m.set('telegen_bpf_map_capacity', 'max_entries of a tracer BPF map', s.capacity, { tracer: s.tracer, map: s.map });
  }
  if (mapMemory) {
    m.set('telegen_bpf_map_memory_bytes', 'Kernel memory of the BPF maps this process holds (fdinfo memlock; charged to its memory cgroup, not in RSS)', mapMemory.bytes);
    m.set('telegen_bpf_maps', 'BPF maps this process holds', mapMemory.maps);
  }
  if (iteratorError) m.set('telegen_bpf_map_fill_walked', 'Map fill comes from paced key walks (1) instead of the kernel element counters (0)', 1);
}

/**
 * The counters of a stat enum from a generated layout ({TG_X_STAT_Y: index}) as /metrics names
 * (`prefix` dropped, lower case), in index order; `only` (suffixes) keeps the ones an object
 * writes where several objects share one enum.
 */
export function statNames(e: Readonly<Record<string, number>>, prefix: string, only?: readonly string[]): Array<{ name: string; index: number }> {
  return Object.entries(e)
    .filter(([k]) => k.startsWith(prefix) && k !== `${prefix}MAX` && (!only || only.includes(k.slice(prefix.length))))
    .sort(([, a], [, b]) => a - b)
    .map(([k, index]) => ({ name: k.slice(prefix.length).toLowerCase(), index }));
}

/**
 * A tracer object outside BpfObject (tls, go, go_http2): its maps' fill and its kernel counters (ring drops
 * included) on /metrics as telegen_bpf_<tracer>_<counter>_total{tracer}. Returns the stop function: call
 * it before closing the object.
 */
export function trackTracerObject(
  metrics: SelfMetrics, tracer: string, t: { maps(): MapDesc[]; stats(map: string): number[] },
  statsMap: string, names: Array<{ name: string; index: number }>,
): () => void {
  let closed = false;
  const untrack = registerMaps(tracer, () => (closed ? [] : t.maps()));
  metrics.addCollector((m) => {
    if (closed) return;
    const v = t.stats(statsMap);
    for (const { name, index } of names) m.set(`telegen_bpf_${tracer}_${name}_total`, `Kernel-side ${tracer} tracer counter ${name}`, v[index] ?? 0, { tracer }, 'counter');
  });
  return () => { closed = true; untrack(); };
}
