import pino from 'pino';

// One root logger; components take log.child({ component }). Logs go to stderr so stdout stays
// clean for `telegen replay` output.
export const log = pino(
  { level: process.env.TELEGEN_LOG_LEVEL || 'info', base: { pid: process.pid } },
  pino.destination({ dest: 2, sync: true }),
);

export type Logger = pino.Logger;

/** Logs the first occurrence of a condition and then only counts it (DESIGN §Style 8). */
export class Once {
  private readonly seen = new Set<string>();
  first(key: string): boolean {
    if (this.seen.has(key)) return false;
    if (this.seen.size > 10000) this.seen.clear();
    this.seen.add(key);
    return true;
  }
}
