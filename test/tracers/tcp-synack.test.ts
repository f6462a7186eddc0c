// A server's SYN-ACK retransmissions: the first SYN-ACKs are dropped (a tc filter on the client's
// ingress, between two network namespaces the test creates), so the server resends them from its
// listener's queue (tcp_rtx_synack), which the kernel counts in TcpRetransSegs like any resent
// segment. Oracles: the server namespace's own TcpRetransSegs / TcpExtTCPSynRetrans (nstat) and
// the SYN-ACKs a capture on the server's side of the pair holds (tshark). The server listens on ::
// (dual-stack, as node does by default) and the client connects over IPv4.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn } from 'child_process';
import { once } from 'events';
import { requireBpf, startAgent, waitFor } from '../helpers/agent';
import { latestMetrics, pointsWhere, sumWhere, tracerConfig, sh, nstat, vethPair, attachDropFilter, nsExchange } from './helpers';

test('tcp: SYN-ACKs a server resends (its first ones lost) are counted as its retransmits, as the kernel and a capture count them', { timeout: 120_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const tag = `tgs${process.pid % 100000}`;
  const pair = vethPair(tag, '10.231.9');
  const { nsA, nsB } = pair;
  const port = 6000 + (process.pid % 1000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-tcp-synack-'));
  let dumpcap: ReturnType<typeof spawn> | undefined;
  const cleanup = () => {
    if (dumpcap?.exitCode === null) dumpcap.kill('SIGKILL');
    pair.del();
  };
  const agent = await startAgent({ config: tracerConfig({ tcp: { enabled: true, poll_ms: 50, ports: [port] } }), env: { TELEGEN_METRICS_INTERVAL_MS: '1000' } });
  try {
    pair.up();
    attachDropFilter(nsA, pair.devA, tmp, [`DROP_PORT=${port}`, 'DROP_COUNT=2', 'DROP_SYNACK']);
    // dumpcap writes to a pipe, flushed per packet: connects to a closed port until one is in it say
    // the capture is live
    // ("Capturing on" comes before it reliably holds the next packets: test/helpers/capture.ts).
    const pcap = path.join(tmp, 'server.pcapng');
    const file = fs.createWriteStream(pcap);
    dumpcap = spawn('ip', ['netns', 'exec', nsB, 'dumpcap', '-q', '-i', pair.devB, '-f', `tcp port ${port} or tcp port ${port + 1}`, '-w', '-'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let capErr = '', capBytes = 0;
    dumpcap.stdout!.on('data', (d: Buffer) => { capBytes += d.length; });
    dumpcap.stdout!.pipe(file);
    const written = new Promise<void>((r) => file.on('close', () => r()));
    dumpcap.stderr!.on('data', (d) => { capErr += d; });
    await waitFor(() => (capErr.includes('Capturing on') && capBytes > 0) || (dumpcap!.exitCode !== null && Promise.reject(new Error(capErr))), 15_000, 50);
    await new Promise((r) => setTimeout(r, 100));
    const header = capBytes;
    const knock = () => sh('ip', ['netns', 'exec', nsA, 'python3', '-c', `import socket; socket.socket().connect_ex(('10.231.9.2', ${port + 1}))`]);
    await waitFor(() => { knock(); return capBytes > header; }, 15_000, 50);
    /** Frames in the capture so far that match `filter` (the file may end in a partial block). */
    const frames = (filter: string): number => {
      let out: string;
      try { out = sh('tshark', ['-r', pcap, '-Y', filter, '-T', 'fields', '-e', 'frame.number']); } catch (e) { out = String((e as { stdout?: string }).stdout ?? ''); }
      return out.trim().split('\n').filter(Boolean).length;
    };
    const knocks = () => frames(`tcp.dstport == ${port + 1}`);

    const { code, out } = await nsExchange(nsA, nsB, port, '::', pair.addrB);
    assert.equal(code, 0);
    assert.equal(out, 'ok');
    // The capture delivers packets in order but in blocks: once a knock made after the connection
    // is in the file, so is everything the connection put on the wire.
    const before = knocks();
    await waitFor(() => { knock(); return knocks() > before; }, 15_000, 100);
    dumpcap.kill('SIGINT');
    await once(dumpcap, 'exit');
    await written;
    const synAcks = frames(`tcp.flags.syn == 1 && tcp.flags.ack == 1 && tcp.srcport == ${port}`);
    const serverRetrans = nstat(nsB, 'TcpRetransSegs');
    // The oracles agree with each other: every SYN-ACK after the first was a retransmission, and
    // the server's namespace resent nothing else.
    assert.ok(synAcks >= 3, `SYN-ACKs on the wire: ${synAcks}; server TcpRetransSegs ${nstat(nsB, "TcpRetransSegs")}; ${sh("tshark", ["-r", pcap])}`);
    assert.equal(serverRetrans, synAcks - 1);
    assert.equal(nstat(nsB, 'TcpExtTCPSynRetrans'), synAcks - 1);
    const clientRetrans = nstat(nsA, 'TcpRetransSegs');

    const peer = { 'server.port': port };
    const server = { ...peer, 'telegen.tcp.role': 'server', 'network.peer.address': '10.231.9.1' };
    const client = { ...peer, 'telegen.tcp.role': 'client', 'network.peer.address': '10.231.9.2' };
    await waitFor(() => sumWhere(latestMetrics(agent.dataDir), 'telegen.tcp.connection.closes', client) >= 1
      && sumWhere(latestMetrics(agent.dataDir), 'telegen.tcp.connection.closes', server) >= 1, 30_000);
    await new Promise((r) => setTimeout(r, 2500));
    const m = latestMetrics(agent.dataDir);
    assert.equal(sumWhere(m, 'telegen.tcp.retransmits', server), serverRetrans, JSON.stringify(pointsWhere(m, 'telegen.tcp.retransmits', peer)));
    // The client's SYNs it resent meanwhile, through tcp_retransmit_skb as before.
    assert.equal(sumWhere(m, 'telegen.tcp.retransmits', client), clientRetrans);
    assert.equal(sumWhere(m, 'telegen.tcp.retransmits', peer), serverRetrans + clientRetrans);
  } finally {
    cleanup();
    fs.rmSync(tmp, { recursive: true, force: true });
    assert.equal(await agent.stop(), 0);
  }
  assert.ok(!sh('ip', ['netns', 'list']).includes(tag), 'namespaces removed');
});
