// /proc/PID/maps: which file (and which offset in it) backs each executable mapping.
import * as fs from 'fs';

export interface Mapping {
  start: number;
  end: number;
  /** File offset of `start`. */
  offset: number;
  path: string;
  /** The file was replaced or removed after mapping ("(deleted)"): read it via map_files. */
  deleted: boolean;
}

/** Executable mappings, sorted by start. Anonymous ones ([anon], JIT code) keep an empty path. */
export function parseMaps(text: string): Mapping[] {
  const out: Mapping[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    // 55d0c0a00000-55d0c0a01000 r-xp 00001000 08:01 1234    /usr/bin/foo (deleted)
    const sp1 = line.indexOf(' ');
    const perms = line.slice(sp1 + 1, sp1 + 5);
    if (perms[2] !== 'x') continue;
    const dash = line.indexOf('-');
    const rest = line.slice(sp1 + 6).split(/\s+/);
    const offset = parseInt(rest[0], 16);
    let p = rest.slice(3).join(' ');
    const deleted = p.endsWith(' (deleted)');
    if (deleted) p = p.slice(0, -' (deleted)'.length);
    out.push({ start: parseInt(line.slice(0, dash), 16), end: parseInt(line.slice(dash + 1, sp1), 16), offset, path: p, deleted });
  }
  return out.sort((a, b) => a.start - b.start);
}

export function readMaps(pid: number): Mapping[] | undefined {
  try { return parseMaps(fs.readFileSync(`/proc/${pid}/maps`, 'utf8')); } catch { return undefined; }
}

export function findMapping(maps: Mapping[], addr: number): Mapping | undefined {
  let lo = 0;
  let hi = maps.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const m = maps[mid];
    if (addr < m.start) hi = mid - 1;
    else if (addr >= m.end) lo = mid + 1;
    else return m;
  }
  return undefined;
}
