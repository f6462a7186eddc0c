// Registers discovery with the agent as one of its "tracers": started on its own, reported in
// /api/status, and wired to the decoder registry (port hints) and span enrichment (setDiscovery).
import { TracerFactory, RunningTracer } from '../agent';
import { Discovery, setDiscovery, ProcessDescriber } from './index';
import { DiscoveryConfig } from './config';

export const discoveryTracer: TracerFactory = (ctx) => startDiscovery(ctx);

/** `describer`: the privilege-separated worker's way to the facts only root can read. */
export async function startDiscovery(ctx: Parameters<TracerFactory>[0], describer?: ProcessDescriber): Promise<RunningTracer | null> {
  const cfg = (ctx.cfg as unknown as { discovery?: DiscoveryConfig }).discovery;
  if (cfg && !cfg.enabled) return null;
  const d = new Discovery(cfg ?? {});
  d.describer = describer;
  d.onPortHints = (hints) => ctx.agent.registry.addPortHints(hints);
  setDiscovery(d);
  await d.start();
  if (cfg?.port_hints !== false && Object.keys(d.portHints).length) ctx.agent.registry.addPortHints(d.portHints);
  // Read at each /api/status: counted once at start, the page showed the start-up counts for good.
  const detail = () => {
    const where = [d.cloud.provider ? `cloud ${d.cloud.provider}` : 'no cloud', d.pods ? 'watching pods' : d.k8s.inCluster ? 'in cluster' : 'not in Kubernetes'];
    return `${d.procs.size} processes, ${d.services.length} listening sockets, ${where.join(', ')}`;
  };
  return {
    name: 'discovery',
    detail: detail(),
    state: () => ({ ok: true, detail: detail() }),
    stop: () => { d.stop(); setDiscovery(undefined); },
  };
}
