// Kernel symbols from /proc/kallsyms (root sees real addresses). Loaded once; the kernel's
// text does not move while the agent runs (modules loaded later are picked up on reload()).
import * as fs from 'fs';

export class Kallsyms {
  // Addresses as two 32-bit halves: a BigInt per line made loading take seconds.
  private hi: Uint32Array = new Uint32Array(0);
  private lo: Uint32Array = new Uint32Array(0);
  private names: string[] = [];
  private loadedAt = 0;

  constructor(private readonly file = '/proc/kallsyms') {}

  get size(): number { return this.names.length; }

  load(): void {
    let text = '';
    try { text = fs.readFileSync(this.file, 'latin1'); } catch { /* no procfs: frames stay address-only */ }
    const hi: number[] = [];
    const lo: number[] = [];
    const names: string[] = [];
    let pos = 0;
    while (pos < text.length) {
      let eol = text.indexOf('\n', pos);
      if (eol < 0) eol = text.length;
      // "ffffffff81000000 T _stext\t[module]"
      const a = text.indexOf(' ', pos);
      if (a > pos && a < eol && a - pos <= 16) {
        const t = text.charCodeAt(a + 1);
        if (t === 0x74 || t === 0x54 || t === 0x77 || t === 0x57) { // t T w W
          const h = a - pos > 8 ? parseInt(text.slice(pos, a - 8), 16) : 0;
          const l = parseInt(text.slice(Math.max(pos, a - 8), a), 16);
          if (h || l) { // kptr_restrict shows zeros: useless
            const name = text.slice(a + 3, eol);
            const tab = name.indexOf('\t');
            hi.push(h); lo.push(l); names.push(tab < 0 ? name : name.slice(0, tab));
          }
        }
      }
      pos = eol + 1;
    }
    const order = Array.from({ length: names.length }, (_, i) => i);
    order.sort((x, y) => (hi[x] - hi[y]) || (lo[x] - lo[y]));
    this.hi = Uint32Array.from(order, (i) => hi[i]);
    this.lo = Uint32Array.from(order, (i) => lo[i]);
    this.names = order.map((i) => names[i]);
    this.loadedAt = Date.now();
  }

  /** Name of the function containing `addr` (no "+0x…" offset). */
  resolve(addr: bigint): string | undefined {
    if (!this.loadedAt) this.load();
    const h = Number(addr >> 32n);
    const l = Number(addr & 0xffffffffn);
    let lo = 0;
    let hi = this.names.length - 1;
    let best = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.hi[mid] < h || (this.hi[mid] === h && this.lo[mid] <= l)) { best = mid; lo = mid + 1; } else hi = mid - 1;
    }
    return best < 0 ? undefined : this.names[best];
  }
}
