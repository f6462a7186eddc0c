// The DaemonSet's loader creates every BPF map, and since Linux 5.11 their kernel memory is charged
// to its memory cgroup (not in its RSS). This runs the agent (`telegen run`: the loader's maps and
// the whole pipeline besides) inside a memory cgroup with the loader container's limit from
// deploy/kustomize/base/daemonset.yaml: every tracer must load, and the charge is reported on
// /metrics. The limit this replaced (256Mi) was below the maps alone plus Node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../helpers/decoder';
import { requireBpf, startAgent, waitFor } from '../helpers/agent';

function quantity(q: string): number {
  const m = /^(\d+)(Ki|Mi|Gi)?$/.exec(q);
  assert.ok(m, `memory quantity ${q}`);
  return Number(m[1]) * ({ Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30 } as Record<string, number>)[m[2] ?? ''] || Number(m[1]);
}

/** A fresh memory cgroup limited to `bytes` (v1 memory controller, or cgroup v2 where it is enabled). */
function memoryCgroup(bytes: number): { procs: string; usage: () => number; remove: () => void } | undefined {
  const name = `telegen-test-${process.pid}`;
  if (fs.existsSync('/sys/fs/cgroup/memory/memory.limit_in_bytes')) {
    const dir = `/sys/fs/cgroup/memory/${name}`;
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'memory.limit_in_bytes'), String(bytes));
    return {
      procs: path.join(dir, 'cgroup.procs'),
      usage: () => Number(fs.readFileSync(path.join(dir, 'memory.max_usage_in_bytes'), 'utf8')),
      remove: () => { try { fs.rmdirSync(dir); } catch { /* still populated */ } },
    };
  }
  const root = '/sys/fs/cgroup';
  if (fs.existsSync(`${root}/cgroup.subtree_control`) && fs.readFileSync(`${root}/cgroup.subtree_control`, 'utf8').includes('memory')) {
    const dir = `${root}/${name}`;
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'memory.max'), String(bytes));
    return {
      procs: path.join(dir, 'cgroup.procs'),
      usage: () => Number(fs.readFileSync(path.join(dir, 'memory.peak'), 'utf8')),
      remove: () => { try { fs.rmdirSync(dir); } catch { /* still populated */ } },
    };
  }
  return undefined;
}

test('the loader container\'s memory limit holds the agent\'s BPF maps: every tracer loads inside it, the charge is on /metrics', { timeout: 120_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const ds = parseAllDocuments(fs.readFileSync(path.join(repoRoot, 'deploy', 'kustomize', 'base', 'daemonset.yaml'), 'utf8')).map((d) => d.toJS())
    .find((o) => o?.kind === 'DaemonSet');
  const loader = ds.spec.template.spec.containers.find((c: { name: string }) => c.name === 'loader');
  const limit = quantity(loader.resources.limits.memory);
  const cg = memoryCgroup(limit);
  if (!cg) {
    if (process.env.CI === 'true') throw new Error('no memory cgroup controller to test in');
    t.skip('no memory cgroup controller');
    return;
  }
  let agent: Awaited<ReturnType<typeof startAgent>> | undefined;
  try {
    agent = await startAgent({ cgroupProcs: cg.procs });
    // The profiler is off in the config until asked for (PUT /api/profile/enabled); switched on,
    // its maps are charged here too and must fit beside the others.
    const token = fs.readFileSync(path.join(agent.dataDir, 'api-token'), 'utf8').trim();
    const on = await fetch(`http://127.0.0.1:${agent.apiPort}/api/profile/enabled`, {
      method: 'PUT', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ enabled: true }),
    });
    assert.equal(on.status, 200, await on.clone().text());
    const st = await (await agent.api('/api/status')).json() as { tracers: Array<{ name: string; ok: boolean; detail: string }> };
    for (const name of ['socket', 'tls', 'tcp', 'go', 'profile']) {
      const tr = st.tracers.find((x) => x.name === name);
      assert.ok(tr?.ok, `${name} up inside ${loader.resources.limits.memory}: ${JSON.stringify(tr)}`);
    }
    assert.doesNotMatch(agent.logs.join(''), /Cannot allocate memory/);
    let maps = 0;
    await waitFor(async () => {
      maps = Number(/^telegen_bpf_map_memory_bytes (\d+)$/m.exec(await (await agent!.api('/metrics')).text())?.[1] ?? 0);
      return maps > 0;
    }, 15_000);
    const used = cg.usage();
    t.diagnostic(`BPF maps ${(maps / 2 ** 20).toFixed(1)} MiB; cgroup peak ${(used / 2 ** 20).toFixed(1)} MiB of ${loader.resources.limits.memory}`);
    // The maps are in the cgroup's charge, and they alone are most of it.
    assert.ok(used > maps, 'the cgroup was charged the BPF maps');
    assert.ok(maps > 128 * 2 ** 20, 'the default connection LRU and ring are there');
    assert.ok(used > 256 * 2 ** 20, 'more than the 256Mi the loader was once given');
    assert.ok(quantity(loader.resources.requests.memory) >= maps, 'the request covers the maps');
  } finally {
    await agent?.stop();
    cg.remove();
  }
});
