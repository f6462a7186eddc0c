import pino from 'pino';

// One root logger; components take log.child({ component }). Logs go to stderr so stdout stays
// clean for `telegen replay` output.
// A pino child copies its parent's level when made and keeps it: a level set later on the root
// (config reload) must be set on every child too. Children are made once per module.
const children = new Set<WeakRef<pino.Logger>>();
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
// An unknown TELEGEN_LOG_LEVEL made pino throw here, before any command ran (a stack trace);
// the CLI refuses it with the allowed values (cli/main.ts), this only keeps the import alive.
const envLevel = process.env.TELEGEN_LOG_LEVEL;
export const log = pino(
  { level: envLevel && (LOG_LEVELS as readonly string[]).includes(envLevel) ? envLevel : 'info', base: { pid: process.pid }, onChild: (c) => { children.add(new WeakRef(c)); } },
  pino.destination({ dest: 2, sync: true }),
);

/** Sets the level of the root logger and of every child made from it (log_level). */
export function setLogLevel(level: (typeof LOG_LEVELS)[number]): void {
  log.level = level;
  for (const r of children) {
    const c = r.deref();
    if (c) c.level = level; else children.delete(r);
  }
}

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
