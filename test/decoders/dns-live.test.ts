// Real peers: dnsmasq (authoritative for example.test, no upstream servers) on 127.0.0.1 queried
// by dig and by Node's resolver (c-ares), captured by tshark on lo. The capture is decoded by
// tshark and by the dns decoder (through the replay reader) and the two must agree; the records
// of each lookup are also asserted exactly. Needs root (capture), dnsmasq, dig and tshark.
// TELEGEN_DNS_KEEP_CAPTURE=FILE keeps the capture (how decoders/dns/testdata/ was recorded).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as dgram from 'dgram';
import * as net from 'net';
import { spawn, spawnSync, ChildProcess, execFile } from 'child_process';
import { promises as dnsPromises } from 'dns';
import { tsharkTsv, parseTsv, replayDns, assertAgrees, checkLookups, checkGetaddrinfo, BIG } from './dns-oracle';

const have = (bin: string, arg = '--version'): boolean => spawnSync(bin, [arg], { stdio: 'ignore' }).status === 0;
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const missing = !isRoot ? 'needs root to capture on lo'
  : !have('dnsmasq') ? 'dnsmasq not installed'
    : !have('dig', '-v') ? 'dig not installed'
      : !have('tshark', '-v') ? 'tshark not installed' : false;

async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = dgram.createSocket('udp4');
      s.on('error', reject);
      s.bind(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
    });
    const tcpFree = await new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (tcpFree && port !== 5353) return port;
  }
}

function waitFor(child: ChildProcess, stream: 'stdout' | 'stderr', re: RegExp, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${re} (got: ${seen.slice(-500)})`)), ms);
    child[stream]!.on('data', (d: Buffer) => {
      seen += d.toString();
      if (re.test(seen)) { clearTimeout(timer); resolve(); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`exited ${code} before ${re}: ${seen.slice(-500)}`)); });
  });
}

async function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
  await done;
  clearTimeout(timer);
}

function dig(port: number, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('dig', ['@127.0.0.1', '-p', String(port), '+time=3', '+tries=1', ...args], { encoding: 'utf8' }, (err, out) => (err ? reject(err) : resolve(out)));
  });
}

const hex = (b: Buffer) => b.toString('hex');
const dnsName = (n: string) => Buffer.concat([...n.split('.').filter(Boolean).map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0])]);
function svcParam(key: number, value: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt16BE(key, 0);
  h.writeUInt16BE(value.length, 2);
  return Buffer.concat([h, value]);
}
const HTTPS_RDATA = Buffer.concat([Buffer.from([0, 1]), dnsName('.'),
  svcParam(1, Buffer.from([2, 0x68, 0x32, 2, 0x68, 0x33])), svcParam(3, Buffer.from([0x20, 0xfb])),
  svcParam(4, Buffer.from([10, 1, 2, 5])), svcParam(6, Buffer.from('20010db8000000000000000000000005', 'hex'))]);
const CAA_RDATA = Buffer.concat([Buffer.from([0, 5]), Buffer.from('issue'), Buffer.from('ca.example.net')]);

test('live: dig and Node resolver against dnsmasq on 127.0.0.1, captured on lo, agree with tshark', { skip: missing, timeout: 120000 }, async (t) => {
  const port = await freePort();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-dns-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const pcap = path.join(tmp, 'dns.pcap');
  const dnsmasq = spawn('dnsmasq', [
    '--keep-in-foreground', '--log-facility=-', '--log-queries', '--conf-file=/dev/null', '--no-resolv', '--no-hosts',
    `--port=${port}`, '--listen-address=127.0.0.1', '--bind-interfaces', '--user=root', '--pid-file=',
    '--address=/example.test/10.1.2.3', '--address=/nx.test/',
    '--host-record=www.example.test,10.1.2.4,2001:db8::4',
    '--cname=alias.example.test,www.example.test', '--cname=alias2.example.test,alias.example.test',
    '--txt-record=txt.example.test,v=spf1 -all', '--txt-record=two.example.test,part one; ,part two',
    ...[1, 2, 3, 4, 5, 6, 7, 8].map((i) => `--txt-record=big.example.test,${i}${BIG}`),
    '--mx-host=example.test,mail.example.test,10', '--mx-host=node-mx.example.test,mail2.example.test,20', '--srv-host=_sip._udp.example.test,sip.example.test,5060,0,5',
    '--ptr-record=4.2.1.10.in-addr.arpa,www.example.test',
    `--dns-rr=svc.example.test,65,${hex(HTTPS_RDATA)}`, `--dns-rr=example.test,257,${hex(CAA_RDATA)}`,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let tshark: ChildProcess | undefined;
  try {
    await waitFor(dnsmasq, 'stderr', /started, version/, 15000);
    tshark = spawn('tshark', ['-i', 'lo', '-w', pcap, '-f', `port ${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    await waitFor(tshark, 'stderr', /Capturing on/, 60000);
    // let the capture settle before the first packet
    await new Promise((r) => setTimeout(r, 500));

    await dig(port, ['www.example.test', 'A']);
    await dig(port, ['www.example.test', 'AAAA']);
    await dig(port, ['alias2.example.test', 'A']);
    await dig(port, ['txt.example.test', 'TXT']);
    await dig(port, ['two.example.test', 'TXT']);
    await dig(port, ['foo.nx.test', 'A']);
    await dig(port, ['outside.invalid', 'A']);
    await dig(port, ['example.test', 'MX']);
    await dig(port, ['_sip._udp.example.test', 'SRV']);
    await dig(port, ['-x', '10.1.2.4']);
    await dig(port, ['svc.example.test', 'TYPE65']);
    await dig(port, ['example.test', 'CAA']);
    const big = await dig(port, ['big.example.test', 'TXT']);
    assert.match(big, /Truncated, retrying in TCP mode/);
    await dig(port, ['+tcp', 'tcp.example.test', 'A']);
    await dig(port, ['+tcp', '+keepopen', 'a.example.test', 'A', 'b.example.test', 'A']);
    await dig(port, ['+dnssec', 'other.example.test', 'A']);
    await dig(port, ['+noedns', 'noedns.example.test', 'A']);
    const resolver = new dnsPromises.Resolver({ timeout: 3000, tries: 1 });
    resolver.setServers([`127.0.0.1:${port}`]);
    assert.deepEqual(await resolver.resolve4('node.example.test'), ['10.1.2.3']);
    assert.deepEqual(await resolver.resolveMx('node-mx.example.test'), [{ exchange: 'mail2.example.test', priority: 20 }]);
    assert.deepEqual(await resolver.resolveTxt('two.example.test'), [['part one; ', 'part two']]);
    await new Promise((r) => setTimeout(r, 1000));
  } finally {
    if (tshark) await stop(tshark, 'SIGINT');
    await stop(dnsmasq, 'SIGTERM');
  }
  if (process.env.TELEGEN_DNS_KEEP_CAPTURE) fs.copyFileSync(pcap, process.env.TELEGEN_DNS_KEEP_CAPTURE);

  const tsv = tsharkTsv(pcap, [`udp.port==${port},dns`, `tcp.port==${port},dns`]);
  if (process.env.TELEGEN_DNS_KEEP_CAPTURE) fs.writeFileSync(process.env.TELEGEN_DNS_KEEP_CAPTURE.replace(/\.pcap$/, '.expected.tsv'), tsv);
  const res = await replayDns(pcap);
  const n = assertAgrees(parseTsv(tsv), res, 'live dnsmasq');
  assert.ok(n.queries >= 20 && n.responses === n.queries, `every query answered: ${JSON.stringify(n)}`);
  checkLookups(res.exchanges);
});


// getaddrinfo (glibc, from Python and Node) reads /etc/resolv.conf and asks port 53: run it in a
// private mount + network namespace whose resolv.conf names 127.0.0.1 and whose own loopback
// carries dnsmasq on port 53 and the capture, so nothing leaves or touches the host's resolver.
function canUnshare(): boolean {
  return !missing && spawnSync('unshare', ['--mount', '--net', 'true'], { stdio: 'ignore' }).status === 0;
}

const GAI_SCRIPT = `set -e
D=$1
ip link set lo up
mount --bind "$D/resolv.conf" /etc/resolv.conf
dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --port=53 --listen-address=127.0.0.1 \\
  --bind-interfaces --user=root --pid-file= --address=/example.test/10.1.2.3 --address=/nx.test/ \\
  --host-record=gai.example.test,10.1.2.7,2001:db8::7 2>"$D/dnsmasq.log" &
DM=$!
dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --port=5353 --listen-address=127.0.0.1 \\
  --bind-interfaces --user=root --pid-file= --host-record=printer.local,10.1.2.8 2>"$D/dnsmasq5353.log" &
DM2=$!
tshark -i lo -w "$D/gai.pcap" -f "port 53 or port 5353" 2>"$D/tshark.log" &
TS=$!
for i in $(seq 1 240); do grep -q "Capturing on" "$D/tshark.log" && break; sleep 0.5; done
sleep 0.5
python3 -c "import socket; print('py', sorted(set(a[4][0] for a in socket.getaddrinfo('gai.example.test', 80))))"
python3 -c "
import socket
try: socket.getaddrinfo('nope.nx.test', 80)
except socket.gaierror as e: print('py nx', e.errno)"
node -e "require('dns').lookup('gai.example.test', {all:true}, (e,a)=>console.log('node', JSON.stringify(a.map(x=>x.address).sort())))"
dig @127.0.0.1 -p 5353 +time=3 +tries=1 +short printer.local A
sleep 1
kill -INT $TS; wait $TS || true
kill $DM $DM2; wait $DM || true; wait $DM2 || true
`;

test('live: getaddrinfo from Python and Node (port 53) and dig on port 5353, via dnsmasq in a private netns, agree with tshark',
  { skip: missing || (!canUnshare() ? 'cannot make a mount + network namespace here' : !have('python3') ? 'python3 not installed' : false), timeout: 180000 }, async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-dns-gai-'));
    fs.writeFileSync(path.join(tmp, 'resolv.conf'), 'nameserver 127.0.0.1\n');
    fs.writeFileSync(path.join(tmp, 'run.sh'), GAI_SCRIPT);
    try {
      const run = spawnSync('unshare', ['--mount', '--net', 'sh', path.join(tmp, 'run.sh'), tmp], { encoding: 'utf8', timeout: 170000 });
      assert.equal(run.status, 0, `${run.stderr}`);
      assert.match(run.stdout, /py \['10\.1\.2\.7', '2001:db8::7'\]/);
      assert.match(run.stdout, /node \["10\.1\.2\.7","2001:db8::7"\]/);
      assert.match(run.stdout, /^10\.1\.2\.8$/m, 'dig +short to port 5353');
      const pcap = path.join(tmp, 'gai.pcap');
      if (process.env.TELEGEN_DNS_KEEP_GAI_CAPTURE) fs.copyFileSync(pcap, process.env.TELEGEN_DNS_KEEP_GAI_CAPTURE);
      const tsv = tsharkTsv(pcap, ['udp.port==5353,dns']); // tshark reads 5353 as mDNS otherwise
      if (process.env.TELEGEN_DNS_KEEP_GAI_CAPTURE) fs.writeFileSync(process.env.TELEGEN_DNS_KEEP_GAI_CAPTURE.replace(/\.pcap$/, '.expected.tsv'), tsv);
      const res = await replayDns(pcap);
      assertAgrees(parseTsv(tsv), res, 'live getaddrinfo');
      checkGetaddrinfo(res.exchanges);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
