// A Map in insertion order used as an LRU: get() moves the entry to the back; set() evicts
// from the front past `max` entries (or past `maxWeight` when entries are weighed).
export class Lru<K, V> {
  private m = new Map<K, V>();
  private w = new Map<K, number>();
  private total = 0;
  evictions = 0;
  constructor(private readonly max: number, private readonly maxWeight = Infinity) {}
  get size(): number { return this.m.size; }
  get weight(): number { return this.total; }
  get(k: K): V | undefined {
    const v = this.m.get(k);
    if (v === undefined) return undefined;
    this.m.delete(k);
    this.m.set(k, v);
    return v;
  }
  has(k: K): boolean { return this.m.has(k); }
  set(k: K, v: V, weight = 1): void {
    this.delete(k);
    this.m.set(k, v);
    this.w.set(k, weight);
    this.total += weight;
    while (this.m.size > this.max || (this.total > this.maxWeight && this.m.size > 1)) {
      const first = this.m.keys().next().value as K;
      this.delete(first);
      this.evictions++;
    }
  }
  delete(k: K): void {
    if (!this.m.has(k)) return;
    this.m.delete(k);
    this.total -= this.w.get(k) ?? 0;
    this.w.delete(k);
  }
  values(): IterableIterator<V> { return this.m.values(); }
  clear(): void { this.m.clear(); this.w.clear(); this.total = 0; }
}

/**
 * A cache for hot lookups (one per stack frame): two generations instead of an exact LRU, so
 * a hit is one or two Map lookups and never a delete+insert (Map deletes leave holes that make
 * V8 rehash; the exact Lru spent most of symbolization doing that). Entries used in the last
 * generation survive; at most 2×`perGeneration` are held.
 */
export class GenCache<K, V> {
  private young = new Map<K, V>();
  private old = new Map<K, V>();
  constructor(private readonly perGeneration: number) {}
  get size(): number { return this.young.size + this.old.size; }
  get(k: K): V | undefined {
    const v = this.young.get(k);
    if (v !== undefined) return v;
    const o = this.old.get(k);
    if (o !== undefined) this.set(k, o);
    return o;
  }
  set(k: K, v: V): void {
    if (this.young.size >= this.perGeneration) { this.old = this.young; this.young = new Map(); }
    this.young.set(k, v);
  }
  delete(k: K): void { this.young.delete(k); this.old.delete(k); }
  clear(): void { this.young.clear(); this.old.clear(); }
}
