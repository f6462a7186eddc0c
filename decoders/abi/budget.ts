// AssemblyScript-only: a decoder-wide byte budget. Limits per connection do not bound a module
// that decodes every connection within its fixed memory: enough connections each at their own
// limit trap it, and a trap resets every connection it decodes. What connections hold beyond a
// small base is taken from one budget and given back when it goes; past the budget the decoder
// degrades the one connection asking (skips, flags) instead of the module. Logged once.
import { warn } from "./emit";

export class Budget {
  limit: i64;
  warning: string;
  /** Bytes taken and not given back. */
  used: i64 = 0;
  /** Takes refused (the first one logged). */
  refused: i64 = 0;

  constructor(limit: i64, warning: string) {
    this.limit = limit;
    this.warning = warning;
  }

  /** Whether `grow` more bytes fit; if so they are counted. A shrink (grow ≤ 0) always fits. */
  take(grow: i64): bool {
    if (grow > 0 && this.used + grow > this.limit) {
      if (this.refused++ == 0) warn(this.warning);
      return false;
    }
    this.used += grow;
    return true;
  }

  give(n: i64): void { this.used -= n; }
}
