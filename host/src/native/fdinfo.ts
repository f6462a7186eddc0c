// The kernel's view of the BPF objects a process holds open, from /proc/PID/fdinfo: each map or
// program once (several fds may name one id), its fields as written there (map_id, memlock,
// prog_id, run_time_ns, verified_insns, ...). No bpf() call, so no capability beyond reading /proc.
import * as fs from 'fs';

export function bpfFdinfo(pid: number | 'self', kind: 'map' | 'prog'): Array<Record<string, string>> {
  const link = `anon_inode:bpf-${kind}`;
  const idKey = `${kind}_id`;
  const out: Array<Record<string, string>> = [];
  const seen = new Set<string>();
  let fds: string[];
  try { fds = fs.readdirSync(`/proc/${pid}/fd`); } catch { return out; } // gone
  for (const fd of fds) {
    let text: string;
    try {
      if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) !== link) continue;
      text = fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    } catch { continue; } // closed meanwhile
    const fields: Record<string, string> = {};
    for (const line of text.split('\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 1).trim();
    }
    const id = fields[idKey];
    if (!id || seen.has(id)) continue;
    seen.add(id);
    out.push(fields);
  }
  return out;
}
