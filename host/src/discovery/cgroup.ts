// /proc/PID/cgroup → container id, runtime and pod uid. Pure string functions so fixtures cover
// every path shape (cgroup v1 and v2; docker, containerd, CRI-O, podman; cgroupfs and systemd drivers).
import * as fs from 'fs';

export interface CgroupFacts {
  containerId?: string;
  /** docker | containerd | cri-o | podman, from the path prefix when it says so. */
  runtime?: string;
  /** Kubernetes pod uid with dashes, from a kubepods path. */
  podUid?: string;
  /** The cgroup path the facts came from (v2 unified line, else the first v1 line with an id). */
  path?: string;
}

// A 64-hex container id ends the last path segment, optionally with a runtime prefix and .scope.
const SEGMENT = /^(?:(docker|cri-containerd|crio|libpod|containerd)[-:])?([0-9a-f]{64})(?:\.scope)?$/;
// cgroupfs driver: pod<uid-with-dashes>; systemd driver: ...-pod<uid_with_underscores>.slice
const POD = /pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})/;

const RUNTIME: Record<string, string> = { docker: 'docker', 'cri-containerd': 'containerd', containerd: 'containerd', crio: 'cri-o', libpod: 'podman' };

export function parseCgroupPath(p: string): CgroupFacts {
  const out: CgroupFacts = {};
  const segs = p.split('/').filter(Boolean);
  for (let i = segs.length - 1; i >= 0; i--) {
    const m = SEGMENT.exec(segs[i]);
    if (!m) continue;
    out.containerId = m[2];
    if (m[1]) out.runtime = RUNTIME[m[1]];
    else if (i > 0 && segs[i - 1] === 'docker') out.runtime = 'docker';
    break;
  }
  const pm = POD.exec(p);
  if (pm) out.podUid = pm[1].replace(/_/g, '-');
  if (out.containerId || out.podUid) out.path = p;
  return out;
}

/** Whole /proc/PID/cgroup text: lines "hierarchy-id:controllers:path". */
export function parseCgroupFile(text: string): CgroupFacts {
  let best: CgroupFacts = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    const j = line.indexOf(':', i + 1);
    if (i < 0 || j < 0) continue;
    const f = parseCgroupPath(line.slice(j + 1));
    // The v2 line (0::) wins when it names a container; v1 lines agree on the id anyway.
    if (f.containerId && (!best.containerId || line.startsWith('0::'))) best = f;
    else if (!best.containerId && f.podUid && !best.podUid) best = f;
  }
  return best;
}

export function readCgroup(pid: number, procRoot = '/proc'): CgroupFacts {
  try { return parseCgroupFile(fs.readFileSync(`${procRoot}/${pid}/cgroup`, 'utf8')); } catch { return {}; }
}
