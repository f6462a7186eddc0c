// Connects that are never answered: from a network namespace the test creates, to an address on
// a veth whose far end has no address (SYNs vanish, no reset comes back), until the kernel gives
// up (ETIMEDOUT). Each is a failure of the client's process and each SYN resent meanwhile
// a retransmit; the namespace's own TcpAttemptFails and TcpRetransSegs (nstat) are the oracle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'child_process';
import { once } from 'events';
import { requireBpf, startAgent, waitFor } from '../helpers/agent';
import { latestMetrics, pointsWhere, sumWhere, tracerConfig, sh, nstat, vethPair } from './helpers';

test('tcp: connects that time out unanswered are failures of the client process, their resent SYNs retransmits, as the kernel counts them', { timeout: 90_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const tag = `tgt${process.pid % 100000}`;
  // b's end has no address: the SYNs go out and nobody answers them.
  const pair = vethPair(tag, '10.231.11', { bAddress: false });
  const { nsA } = pair;
  const port = 7000 + (process.pid % 1000);
  const cleanup = () => pair.del();
  const agent = await startAgent({ config: tracerConfig({ tcp: { enabled: true, poll_ms: 50, ports: [port] } }), env: { TELEGEN_METRICS_INTERVAL_MS: '1000' } });
  try {
    pair.up();
    // A static neighbour: no ARP to wait for, the SYNs go out and nobody answers them.
    sh('ip', ['-n', nsA, 'neigh', 'add', pair.addrB, 'lladdr', '02:00:00:00:00:02', 'dev', pair.devA, 'nud', 'permanent']);
    // The kernel gives up after one resent SYN (tcp_syn_retries=1 in this namespace: ~3 s), and
    // the connects fail with ETIMEDOUT: three at once.
    sh('ip', ['netns', 'exec', nsA, 'sysctl', '-qw', 'net.ipv4.tcp_syn_retries=1']);
    const cli = spawn('ip', ['netns', 'exec', nsA, process.execPath, '-e', `
      Promise.all([0, 1, 2].map(() => new Promise((res) => {
        const c = require('net').connect(${port}, '10.231.11.2');
        c.on('connect', () => { console.log('connected?!'); process.exit(1); });
        c.on('error', (e) => res(e.code));
      }))).then((codes) => console.log(codes.join(' '), process.pid));`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    cli.stdout!.on('data', (d) => { out += d; });
    const [code] = await once(cli, 'exit');
    assert.equal(code, 0, out);
    const [c1, c2, c3, pidText] = out.trim().split(' ');
    assert.deepEqual([c1, c2, c3], ['ETIMEDOUT', 'ETIMEDOUT', 'ETIMEDOUT']);
    const pid = Number(pidText);
    const fails = nstat(nsA, 'TcpAttemptFails');
    const retrans = nstat(nsA, 'TcpRetransSegs');
    assert.equal(fails, 3);
    assert.ok(retrans >= 3, `TcpRetransSegs ${retrans}`);

    const client = { 'server.port': port, 'network.peer.address': '10.231.11.2', 'telegen.tcp.role': 'client' };
    await waitFor(() => sumWhere(latestMetrics(agent.dataDir), 'telegen.tcp.connection.failures', client) >= 3, 30_000);
    await new Promise((r) => setTimeout(r, 2500));
    const m = latestMetrics(agent.dataDir);
    assert.deepEqual(pointsWhere(m, 'telegen.tcp.connection.failures', { 'server.port': port }).map((p) => [p.attributes['telegen.tcp.role'], p.attributes['process.pid'], p.attributes['process.executable.name'], p.value]),
      [['client', pid, 'node', fails]]);
    assert.equal(sumWhere(m, 'telegen.tcp.retransmits', client), retrans);
    assert.equal(sumWhere(m, 'telegen.tcp.connection.opens', { 'server.port': port }), 0);
    assert.equal(sumWhere(m, 'telegen.tcp.connection.closes', { 'server.port': port }), 0);
  } finally {
    cleanup();
    assert.equal(await agent.stop(), 0);
  }
  assert.ok(!sh('ip', ['netns', 'list']).includes(tag), 'namespaces removed');
});
