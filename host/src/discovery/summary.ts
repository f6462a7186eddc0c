// One-screen discovery summary for `telegen doctor`.
import { Discovery } from './index';

export function discoverySummary(d: Discovery): string[] {
  const h = d.host;
  const out: string[] = [];
  out.push(`  host      ${h.hostName} — ${h.os.prettyName ?? 'Linux'}, kernel ${h.kernel}, ${h.arch}, ${h.cpus} CPUs, ${(h.memoryBytes / 2 ** 30).toFixed(1)} GiB${h.machineId ? `, machine-id ${h.machineId}` : ''}`);
  const c = d.cloud;
  out.push(`  cloud     ${c.provider ? `${c.provider} (${c.platform}${c.hostType ? `, ${c.hostType}` : ''}; from ${c.source})` : `none recognised from DMI${c.dmi?.sys_vendor ? ` (sys_vendor "${c.dmi.sys_vendor}")` : ''}`}`);
  out.push(`  k8s       ${d.k8s.inCluster ? 'in cluster' : 'not in a cluster'} — ${d.k8s.reason}`);
  const svc = d.services.filter((s) => s.service);
  out.push(`  services  ${svc.length ? svc.map((s) => `${s.service}@${s.transport}/${s.port}${s.pid !== undefined ? ` (pid ${s.pid})` : ''}`).join(', ') : 'none recognised'} of ${d.services.length} listening sockets`);
  const rt = new Map<string, number>();
  for (const p of d.procs.values()) { const k = p.runtime.name + (p.runtime.version ? ` ${p.runtime.version}` : ''); rt.set(k, (rt.get(k) ?? 0) + 1); }
  out.push(`  runtimes  ${[...rt.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ×${n}`).join(', ')}`);
  const named = [...d.procs.values()].filter((p) => p.serviceNameSource === 'env' || p.serviceNameSource === 'rule' || p.serviceNameSource === 'k8s');
  if (named.length) out.push(`  named     ${named.map((p) => `${p.serviceName} (pid ${p.pid}, ${p.serviceNameSource})`).join(', ')}`);
  return out;
}
