// Regression tests for what a user saw wrong in the kernel tracers' output (TCP metrics, file
// I/O, profiles), each with the real programs that showed it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'net';
import { spawn } from 'child_process';
import { once } from 'events';
import { requireBpf, startAgent, waitFor } from '../helpers/agent';
import { latestMetrics, pointsWhere, sumWhere, tracerConfig } from './helpers';

const ENV = { TELEGEN_METRICS_INTERVAL_MS: '1000' };

// A client that closes a connection with data it never read (the kernel answers with a reset
// instead of a FIN), then one that aborts with SO_LINGER 0: both resets are sent after the
// socket's CLOSE transition, when the kernel program has already dropped the connection.
const RESET_CLIENT = `
import os, select, socket, struct, sys
port = int(sys.argv[1])
for abort in (False, False, False, True, True, True):
    s = socket.create_connection(('127.0.0.1', port))
    select.select([s], [], [], 10)  # the server's bytes are in the receive queue, unread
    if abort:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    s.close()
print(os.getpid())
`;

test('tcp: resets a client sends while closing (unread data, SO_LINGER 0) carry its role, process and the service port', { timeout: 90_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const server = net.createServer((s) => { s.on('error', () => {}); s.write(Buffer.alloc(20_000, 0x61)); });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  // Only this port: before the fix these resets were counted under the client's ephemeral port
  // (so a filter on the service port dropped them, and without one each made a series).
  const agent = await startAgent({ config: tracerConfig({ tcp: { enabled: true, poll_ms: 50, ports: [port] } }), env: ENV });
  try {
    // Not spawnSync: the server runs on this process's event loop.
    const client = spawn('python3', ['-c', RESET_CLIENT, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    client.stdout!.on('data', (d) => { out += d; });
    const [code] = await once(client, 'exit');
    assert.equal(code, 0);
    const clientPid = Number(out.trim());
    const received = { 'server.port': port, 'telegen.tcp.role': 'server', 'network.io.direction': 'receive' };
    await waitFor(() => sumWhere(latestMetrics(agent.dataDir), 'telegen.tcp.resets', received) >= 6, 30_000);
    await new Promise((res) => setTimeout(res, 2500));
    const m = latestMetrics(agent.dataDir);
    // The server's kernel saw six resets arrive; the client's sent the same six.
    assert.equal(sumWhere(m, 'telegen.tcp.resets', received), 6);
    const sent = pointsWhere(m, 'telegen.tcp.resets', { 'network.io.direction': 'transmit' });
    assert.deepEqual(sent.map((p) => [p.attributes['server.port'], p.attributes['telegen.tcp.role'], p.attributes['process.pid'], p.value]),
      [[port, 'client', clientPid, 6]]);
    assert.equal(sumWhere(m, 'telegen.tcp.connection.closes', { 'server.port': port, 'telegen.tcp.role': 'client', 'process.pid': clientPid }), 6);
  } finally {
    server.close();
    assert.equal(await agent.stop(), 0);
  }
});
