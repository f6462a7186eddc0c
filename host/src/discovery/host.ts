// This machine: OS release, kernel, architecture, ids, CPU and memory → os.* and host.* attributes.
import * as fs from 'fs';
import * as os from 'os';

export interface HostInfo {
  hostName: string;
  machineId?: string;
  bootId?: string;
  kernel: string;
  arch: string;
  os: { id?: string; name?: string; version?: string; prettyName?: string };
  cpus: number;
  cpuModel?: string;
  memoryBytes: number;
}

function read(p: string): string | undefined { try { return fs.readFileSync(p, 'utf8').trim(); } catch { return undefined; } }

/** os-release(5): KEY=value lines, values optionally quoted. */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let v = m[2];
    if (/^(["']).*\1$/.test(v)) v = v.slice(1, -1).replace(/\\(["$`\\])/g, '$1');
    out[m[1]] = v;
  }
  return out;
}

// OTel host.arch values.
const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm32', ia32: 'x86', ppc64: 'ppc64', s390x: 's390x' };

export function readHost(root = ''): HostInfo {
  const rel = parseOsRelease(read(`${root}/etc/os-release`) ?? read(`${root}/usr/lib/os-release`) ?? '');
  const cpus = os.cpus();
  return {
    hostName: os.hostname(),
    machineId: read(`${root}/etc/machine-id`) || read(`${root}/var/lib/dbus/machine-id`) || undefined,
    bootId: read(`${root}/proc/sys/kernel/random/boot_id`),
    kernel: os.release(),
    arch: ARCH[os.arch()] ?? os.arch(),
    os: { id: rel.ID, name: rel.NAME, version: rel.VERSION_ID, prettyName: rel.PRETTY_NAME },
    cpus: cpus.length,
    cpuModel: cpus[0]?.model,
    memoryBytes: os.totalmem(),
  };
}

export function hostAttributes(h: HostInfo): Record<string, string | number> {
  const a: Record<string, string | number> = { 'host.name': h.hostName, 'host.arch': h.arch, 'os.type': 'linux' };
  if (h.machineId) a['host.id'] = h.machineId;
  if (h.os.name) a['os.name'] = h.os.name;
  if (h.os.version) a['os.version'] = h.os.version;
  a['os.description'] = `${h.os.prettyName ?? 'Linux'} (kernel ${h.kernel})`;
  a['os.build_id'] = h.kernel;
  return a;
}
