// XDP flow tracer on lo (generic mode): exact packet/byte counts of one UDP flow, header samples,
// map fill on /metrics, and nothing left attached after the agent is SIGKILLed (bpf links).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as dgram from 'dgram';
import { once } from 'events';
import { requireBpf, startAgent, waitFor } from '../helpers/agent';
import { latestMetrics, pointsWhere, readLogs, tracerConfig, sh } from './helpers';

function loXdp(): unknown {
  const [lo] = JSON.parse(sh('ip', ['-j', '-d', 'link', 'show', 'dev', 'lo'])) as Array<Record<string, unknown>>;
  return lo.xdp;
}

function xdpLinkCount(): number {
  const links = JSON.parse(sh('bpftool', ['-j', 'link', 'show']) || '[]') as Array<{ type: string; ifindex?: number }>;
  return links.filter((l) => l.type === 'xdp').length;
}

test('xdp on lo: one UDP flow counted exactly, headers sampled, detached after SIGKILL', { timeout: 120_000 }, async (t) => {
  if (!requireBpf(t)) return;
  assert.equal(xdpLinkCount(), 0, 'no XDP link on lo before the test');
  const agent = await startAgent({
    config: tracerConfig({ xdp: { enabled: true, interfaces: ['lo'], flow_max: 4096, sample_every: 1, poll_ms: 50 } }),
    env: { TELEGEN_METRICS_INTERVAL_MS: '1000' },
  });
  let killed = false;
  const sockets: dgram.Socket[] = [];
  try {
    const st = await (await agent.api('/api/status')).json() as { tracers: Array<{ name: string; ok: boolean; detail: string }> };
    assert.deepEqual(st.tracers.find((x) => x.name === 'xdp'), { name: 'xdp', ok: true, detail: 'attached on lo' });
    assert.equal(xdpLinkCount(), 1, 'one XDP bpf link while running');
    assert.equal((loXdp() as { mode: number }).mode, 2, 'generic XDP on lo');

    const rx = dgram.createSocket('udp4');
    sockets.push(rx);
    rx.bind(0, '127.0.0.1');
    await once(rx, 'listening');
    const tx = dgram.createSocket('udp4');
    sockets.push(tx);
    tx.bind(0, '127.0.0.1');
    await once(tx, 'listening');
    let got = 0;
    rx.on('message', () => { got++; });
    for (let i = 0; i < 7; i++) await new Promise<void>((res, rej) => tx.send(Buffer.alloc(100, i), rx.address().port, '127.0.0.1', (e) => (e ? rej(e) : res())));
    await waitFor(() => got === 7, 10_000);
    const flow = {
      'source.address': '127.0.0.1', 'source.port': tx.address().port,
      'destination.address': '127.0.0.1', 'destination.port': rx.address().port,
      'network.transport': 'udp', 'network.type': 'ipv4', 'network.interface.name': 'lo',
    };
    await waitFor(() => pointsWhere(latestMetrics(agent.dataDir), 'telegen.network.flow.packets', flow).some((p) => p.value >= 7), 30_000);
    const m = latestMetrics(agent.dataDir);
    assert.deepEqual(pointsWhere(m, 'telegen.network.flow.packets', flow).map((p) => p.value), [7]);
    // Frame bytes: 14 link + 20 IPv4 + 8 UDP + 100 payload.
    assert.deepEqual(pointsWhere(m, 'telegen.network.flow.io', flow).map((p) => p.value), [7 * 142]);
    // Every packet sampled: our 7 datagrams' headers are there, payload start included.
    const samples = await waitFor(() => {
      const s = readLogs(agent.dataDir).filter((l) => l.attributes['event.name'] === 'telegen.xdp.sample' && l.attributes['telegen.packet.length'] === 142
        && String(l.attributes['telegen.packet.header']).includes((tx.address().port * 65536 + rx.address().port).toString(16).padStart(8, '0')));
      return s.length >= 7 ? s : undefined;
    }, 30_000);
    assert.equal(samples.length, 7);
    assert.equal(samples[0].attributes['network.interface.name'], 'lo');
    // Map fill is sampled every 5 s, not at scrape time: wait for the sample after the flow.
    const fill = /telegen_bpf_map_entries\{map="tg_xdp_flows",tracer="xdp"\} [1-9]\d*/;
    const prom = await waitFor(async () => { const t = await (await agent.api('/metrics')).text(); return fill.test(t) ? t : undefined; }, 20_000);
    assert.match(prom, /telegen_bpf_map_capacity\{map="tg_xdp_flows",tracer="xdp"\} 4096/);
    assert.match(prom, fill);
    assert.match(prom, /telegen_bpf_xdp_ring_full_total\{tracer="xdp"\} \d+/);

    agent.proc.kill('SIGKILL');
    await once(agent.proc, 'exit');
    killed = true;
    // Link fds die with the process; the kernel detaches on the last close.
    await waitFor(() => xdpLinkCount() === 0 && loXdp() === undefined, 10_000);
  } finally {
    // An open socket would keep this file's process alive after a failed assertion (CI hangs).
    for (const so of sockets) so.close();
    if (!killed) await agent.stop();
  }
  assert.equal(xdpLinkCount(), 0);
  assert.equal(loXdp(), undefined);
});
