// The agent's resident set size, read often: the overload gate looks at it after every ring batch
// (at most every MEMORY_CHECK_MS), ~200 times a second at 1k req/s. process.memoryUsage.rss()
// opens, reads and closes /proc/self/stat each time (12 µs here, ~2.5% of the agent's CPU at
// 1k req/s in perf); one pread of /proc/self/statm on a kept descriptor is a single syscall (4 µs).
import * as fs from 'fs';

/** Resident pages (statm's second field) from its text; -1 if it does not parse. */
export function statmResidentPages(buf: Buffer, len: number): number {
  let i = 0;
  while (i < len && buf[i] !== 0x20) i++;
  i++;
  let v = 0;
  const start = i;
  for (; i < len; i++) {
    const c = buf[i];
    if (c < 0x30 || c > 0x39) break;
    v = v * 10 + (c - 0x30);
  }
  return i > start ? v : -1;
}

let shared: (() => number) | undefined;

/** This process's RSS in bytes (one reader, one descriptor per process). */
export function rssNow(): number {
  return (shared ??= rssReader())();
}

/** A reader of this process's RSS in bytes, falling back to process.memoryUsage.rss() where
 *  /proc/self/statm cannot be read. */
export function rssReader(): () => number {
  let fd = -1;
  try { fd = fs.openSync('/proc/self/statm', 'r'); } catch { return () => process.memoryUsage.rss(); }
  const buf = Buffer.alloc(128);
  const read = (): number => {
    try { return statmResidentPages(buf, fs.readSync(fd, buf, 0, buf.length, 0)); } catch { return -1; }
  };
  // The page size, without a syscall Node does not offer: what the two readings agree on.
  const pages = read();
  const pageBytes = pages > 0 ? 2 ** Math.round(Math.log2(process.memoryUsage.rss() / pages)) : 0;
  if (pageBytes < 4096) { fs.closeSync(fd); return () => process.memoryUsage.rss(); }
  return () => {
    const p = read();
    return p >= 0 ? p * pageBytes : process.memoryUsage.rss();
  };
}
