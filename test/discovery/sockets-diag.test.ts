// Listening sockets come from the kernel's socket diag (NETLINK_SOCK_DIAG, LISTEN / unconnected
// only: /proc/net/tcp walks every established-hash bucket to list them). Real sockets of every
// shape discovery reports — TCP on IPv4, IPv6, dual-stack :: and v4-mapped, UDP bound and unconnected, a
// connected UDP socket that is no service — must read exactly as /proc/net/{tcp,tcp6,udp,udp6}
// reads them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as dgram from 'dgram';
import * as net from 'net';
import { readListening, readNetFiles, ListenSocket } from '../../host/src/discovery/sockets';

const key = (s: ListenSocket) => `${s.transport} ${s.address} ${s.port} ${s.inode}`;

test('socket diag lists the same listening sockets as /proc/net', async () => {
  const tcp: net.Server[] = [];
  const listen = (host: string) => new Promise<net.Server>((res, rej) => { const s = net.createServer(); s.once('error', rej); s.listen(0, host, () => { tcp.push(s); res(s); }); });
  const udp: dgram.Socket[] = [];
  const bind = (type: 'udp4' | 'udp6', host: string) => new Promise<dgram.Socket>((res, rej) => { const s = dgram.createSocket(type); s.once('error', rej); s.bind(0, host, () => { udp.push(s); res(s); }); });
  try {
    const ports = [await listen('127.0.0.1'), await listen('::1'), await listen('::'), await listen('::ffff:127.0.0.1')].map((s) => (s.address() as net.AddressInfo).port);
    const u4 = await bind('udp4', '127.0.0.1');
    const u6 = await bind('udp6', '::');
    const connected = await bind('udp4', '127.0.0.1');
    await new Promise<void>((res) => connected.connect(u4.address().port, '127.0.0.1', () => res()));
    // Sockets on this machine come and go (other tests): compare two reads of each kind taken
    // back to back, on the sockets made here and on what both reads agree on.
    const diag = readListening();
    const files = [...readNetFiles('tcp'), ...readNetFiles('udp')];
    const mine = new Set([...ports, u4.address().port, u6.address().port, connected.address().port]);
    const ofMine = (l: ListenSocket[]) => l.filter((s) => mine.has(s.port)).map(key).sort();
    assert.deepEqual(ofMine(diag), ofMine(files), 'the sockets made here, read both ways');
    assert.deepEqual(ofMine(diag).map((k) => k.split(' ').slice(0, 2).join(' ')).sort(),
      ['tcp 127.0.0.1', 'tcp ::', 'tcp ::1', 'tcp ::ffff:127.0.0.1', 'udp 127.0.0.1', 'udp ::'].sort(), 'every shape listed, the connected UDP socket not');
    const inFiles = new Set(files.map(key));
    const common = diag.filter((s) => inFiles.has(key(s)));
    assert.ok(common.length >= diag.length - 2, `the rest agrees too: ${JSON.stringify(diag)} vs ${JSON.stringify(files)}`);
  } finally {
    for (const s of tcp) s.close();
    for (const s of udp) s.close();
  }
});
