// Per-process line budget: a process printing in a loop must not flood the export queue or
// crowd out the others. A fixed one-second window per pid, O(1) per line.
export class LineBudget {
  private readonly windows = new Map<number, { second: number; used: number }>();
  dropped = 0;

  constructor(private readonly perSecond: number, private readonly now: () => number = Date.now) {}

  take(pid: number): boolean {
    const second = Math.floor(this.now() / 1000);
    let w = this.windows.get(pid);
    if (!w || w.second !== second) {
      if (!w && this.windows.size > 65_536) this.windows.clear();
      w = { second, used: 0 };
      this.windows.set(pid, w);
    }
    if (w.used >= this.perSecond) { this.dropped++; return false; }
    w.used++;
    return true;
  }
}
