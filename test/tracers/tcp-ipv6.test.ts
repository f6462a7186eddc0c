// TCP metrics over IPv6 and through a dual-stack listener (node listens on :: by default): an
// IPv6 connection is reported with its IPv6 peer and network.type=ipv6, and an IPv4 client of a
// :: listener (a v4-mapped socket on the server's side) as ipv4 with its dotted address on both
// sides. Bytes per direction are checked against what the sockets themselves counted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'net';
import { once } from 'events';
import { requireBpf, startAgent, waitFor } from '../helpers/agent';
import { latestMetrics, pointsWhere, sumWhere, tracerConfig } from './helpers';

async function listen(host: string): Promise<{ server: net.Server; port: number; got: () => number }> {
  let got = 0;
  const server = net.createServer((s) => {
    s.on('data', (d) => { got += d.length; if (got % 1000 === 0) s.end(Buffer.alloc(700, 0x62)); });
  });
  server.listen(0, host);
  await once(server, 'listening');
  return { server, port: (server.address() as net.AddressInfo).port, got: () => got };
}

async function exchange(host: string, port: number): Promise<void> {
  const c = net.connect(port, host);
  await once(c, 'connect');
  c.end(Buffer.alloc(1000, 0x61));
  let n = 0;
  c.on('data', (d: Buffer) => { n += d.length; });
  await once(c, 'close');
  assert.equal(n, 700);
}

test('tcp: IPv6 connections and IPv4 clients of a dual-stack (::) listener carry their own address family and peer', { timeout: 90_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const v6 = await listen('::1');
  const dual = await listen('::');
  const agent = await startAgent({ config: tracerConfig({ tcp: { enabled: true, poll_ms: 50, ports: [v6.port, dual.port] } }), env: { TELEGEN_METRICS_INTERVAL_MS: '1000' } });
  try {
    for (let i = 0; i < 2; i++) await exchange('::1', v6.port);
    for (let i = 0; i < 3; i++) await exchange('127.0.0.1', dual.port);
    assert.equal(v6.got(), 2000);
    assert.equal(dual.got(), 3000);
    await waitFor(() => {
      const m = latestMetrics(agent.dataDir);
      return sumWhere(m, 'telegen.tcp.connection.closes', { 'server.port': v6.port }) >= 4 && sumWhere(m, 'telegen.tcp.connection.closes', { 'server.port': dual.port }) >= 6;
    }, 30_000);
    await new Promise((r) => setTimeout(r, 2500));
    const m = latestMetrics(agent.dataDir);
    const shape = (port: number) => pointsWhere(m, 'telegen.tcp.connection.closes', { 'server.port': port })
      .map((p) => [p.attributes['telegen.tcp.role'], p.attributes['network.type'], p.attributes['network.peer.address'], p.attributes['process.pid'], p.value]).sort();
    assert.deepEqual(shape(v6.port), [['client', 'ipv6', '::1', process.pid, 2], ['server', 'ipv6', '::1', process.pid, 2]]);
    assert.deepEqual(shape(dual.port), [['client', 'ipv4', '127.0.0.1', process.pid, 3], ['server', 'ipv4', '127.0.0.1', process.pid, 3]]);
    for (const [port, n] of [[v6.port, 2], [dual.port, 3]]) {
      for (const [role, dir, bytes] of [['client', 'transmit', 1000], ['client', 'receive', 700], ['server', 'transmit', 700], ['server', 'receive', 1000]] as const) {
        assert.equal(sumWhere(m, 'telegen.tcp.io', { 'server.port': port, 'telegen.tcp.role': role, 'network.io.direction': dir }), n * bytes, `${port} ${role} ${dir}`);
      }
      assert.equal(sumWhere(m, 'telegen.tcp.connections.active', { 'server.port': port }), 0);
    }
  } finally {
    v6.server.close();
    dual.server.close();
    assert.equal(await agent.stop(), 0);
  }
});
