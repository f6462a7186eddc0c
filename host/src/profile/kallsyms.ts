// Kernel symbols from /proc/kallsyms (root sees real addresses). Loaded once; the kernel's
// text does not move while the agent runs (modules loaded later are picked up on reload()).
import * as fs from 'fs';

export class Kallsyms {
  private starts: BigUint64Array = new BigUint64Array(0);
  private names: string[] = [];
  private loadedAt = 0;

  constructor(private readonly file = '/proc/kallsyms') {}

  get size(): number { return this.names.length; }

  load(): void {
    let text = '';
    try { text = fs.readFileSync(this.file, 'latin1'); } catch { /* no procfs: frames stay address-only */ }
    const entries: Array<[bigint, string]> = [];
    for (const line of text.split('\n')) {
      // "ffffffff81000000 T _stext [module]"
      const a = line.indexOf(' ');
      if (a <= 0) continue;
      const t = line[a + 1];
      if (t !== 't' && t !== 'T' && t !== 'w' && t !== 'W') continue;
      const addr = BigInt('0x' + line.slice(0, a));
      if (addr === 0n) continue; // kptr_restrict hides addresses: useless
      let name = line.slice(a + 3);
      const tab = name.indexOf('\t');
      if (tab >= 0) name = name.slice(0, tab);
      entries.push([addr, name]);
    }
    entries.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    this.starts = BigUint64Array.from(entries.map((e) => e[0]));
    this.names = entries.map((e) => e[1]);
    this.loadedAt = Date.now();
  }

  /** "function" or "function+0x1a"-free name of the function containing `addr`. */
  resolve(addr: bigint): string | undefined {
    if (!this.loadedAt) this.load();
    const s = this.starts;
    let lo = 0;
    let hi = s.length - 1;
    let best = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (s[mid] <= addr) { best = mid; lo = mid + 1; } else hi = mid - 1;
    }
    return best < 0 ? undefined : this.names[best];
  }
}
