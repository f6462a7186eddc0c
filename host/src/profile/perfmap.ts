// JIT symbols from /tmp/perf-PID.map (Node --perf-basic-prof, JVM perf-map-agent):
// lines "START SIZE name" in hex, appended as code is compiled.
import * as fs from 'fs';

export interface PerfMap { starts: Float64Array; ends: Float64Array; names: string[]; bytesRead: number }

export function parsePerfMap(text: string): PerfMap {
  const rows: Array<[number, number, string]> = [];
  for (const line of text.split('\n')) {
    const a = line.indexOf(' ');
    const b = line.indexOf(' ', a + 1);
    if (a <= 0 || b <= 0) continue;
    const start = parseInt(line.slice(0, a), 16);
    const size = parseInt(line.slice(a + 1, b), 16);
    if (!Number.isFinite(start) || !Number.isFinite(size)) continue;
    rows.push([start, start + size, line.slice(b + 1)]);
  }
  // Later entries win on overlap (code was recompiled at the same address): stable sort
  // keeps file order, the search below takes the last match.
  rows.sort((x, y) => x[0] - y[0]);
  return { starts: Float64Array.from(rows.map((r) => r[0])), ends: Float64Array.from(rows.map((r) => r[1])), names: rows.map((r) => r[2]), bytesRead: text.length };
}

export function readPerfMap(pid: number, dir = '/tmp'): PerfMap | undefined {
  try { return parsePerfMap(fs.readFileSync(`${dir}/perf-${pid}.map`, 'utf8')); } catch { return undefined; }
}

export function lookupPerfMap(m: PerfMap, addr: number): string | undefined {
  let lo = 0;
  let hi = m.starts.length - 1;
  let best = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (m.starts[mid] <= addr) { best = mid; lo = mid + 1; } else hi = mid - 1;
  }
  // Walk back over entries starting at or before addr: a short earlier one may not cover it.
  for (let i = best; i >= 0 && i > best - 8; i--) if (addr < m.ends[i]) return m.names[i];
  return undefined;
}
