// A capture we record ourselves: tshark on lo while curl talks to a local Node HTTP server,
// then our reassembly vs tshark's and vs the bytes we know were sent. Needs root (packet
// capture); skipped otherwise, except under CI=true where not being able to run is a failure.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess, execFile, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import { AddressInfo } from 'net';
import { compareWithTshark } from './compare';
import { haveTshark } from './oracle';
import { tmpDir, tmpFile } from './build';

after(() => fs.rmSync(tmpDir, { recursive: true, force: true }));

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const haveCurl = spawnSync('curl', ['--version'], { stdio: 'ignore' }).status === 0;
const why = !isRoot ? 'needs root to capture on lo' : !haveTshark() ? 'tshark not installed' : !haveCurl ? 'curl not installed' : '';
const skip = why && process.env.CI !== 'true' ? why : false;

function bigBody(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >> 8)) & 0xff;
  return b;
}

function run(cmd: string, args: string[], input?: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const p = execFile(cmd, args, { encoding: 'buffer', maxBuffer: 64 << 20 }, (err, out) => (err ? reject(err) : resolve(out)));
    if (input) p.stdin!.end(input);
  });
}

function startCapture(file: string, port: number): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const p = spawn('tshark', ['-i', 'lo', '-w', file, '-f', `tcp port ${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`tshark did not start: ${err}`)); }, 60000);
    p.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (/Capturing on/.test(err)) { clearTimeout(timer); resolve(p); }
    });
    p.on('exit', (code) => { clearTimeout(timer); reject(new Error(`tshark exited ${code}: ${err}`)); });
  });
}

function stopCapture(p: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    p.removeAllListeners('exit');
    if (p.exitCode !== null) { resolve(); return; }
    p.on('exit', () => resolve());
    p.kill('SIGINT'); // tshark flushes and closes the file on SIGINT
  });
}

test('live capture on lo: curl ↔ Node http server, reassembled like tshark and like what was sent', { skip, timeout: 180000 }, async () => {
  assert.ok(!why, why);
  const big = bigBody(300_000);
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/big') { res.setHeader('content-length', big.length); res.end(big); }
      else if (req.url === '/echo') { res.end(Buffer.concat(chunks)); }
      else if (req.url === '/chunked') { res.write('part1;'); setTimeout(() => res.end('part2'), 20); }
      else res.end('hello');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const file = tmpFile('live.pcapng');
  const post = bigBody(100_000).reverse();
  let cap: ChildProcess | null = null;
  try {
    cap = await startCapture(file, port);
    const base = `http://127.0.0.1:${port}`;
    // "Capturing on" can precede the filter being live by a moment: a warm-up connection first,
    // so the connections under test are seen from their SYN.
    await new Promise((r) => setTimeout(r, 1000));
    await run('curl', ['-s', `${base}/warmup`]);
    await new Promise((r) => setTimeout(r, 300));
    // one keep-alive connection with three requests, then a POST on its own connection
    const out = await run('curl', ['-s', `${base}/small`, `${base}/big`, `${base}/chunked`]);
    assert.equal(out.length, 5 + big.length + 11);
    const echoed = await run('curl', ['-s', '--data-binary', '@-', '-H', 'content-type: application/octet-stream', `${base}/echo`], post);
    assert.ok(echoed.equals(post));
    await new Promise((r) => setTimeout(r, 1500)); // let the FIN/ACKs reach the capture
  } finally {
    if (cap) await stopCapture(cap);
    await new Promise((r) => server.close(r));
  }
  const r = await compareWithTshark(file);
  assert.deepEqual(r.problems, []);
  const tcp = r.sink.conns.filter((c) => c.conn.transport === 'tcp');
  const startsWith = (p: string) => tcp.filter((c) => r.sink.stream(c, true).toString('latin1').startsWith(p));
  const ka = startsWith('GET /small ')[0], echo = startsWith('POST /echo ')[0];
  assert.ok(ka && echo, `connections: ${tcp.map((c) => r.sink.stream(c, true).subarray(0, 20).toString('latin1'))}`);
  assert.ok(r.tcpCompared >= 2);
  const conns = [ka, echo];
  for (const c of conns) {
    assert.equal(c.conn.roleKnown, true);
    assert.deepEqual(c.conn.server, { addr: '127.0.0.1', port });
    assert.equal(c.conn.client.addr, '127.0.0.1');
    assert.equal(c.gaps.length, 0);
    assert.equal(c.closes, 1);
  }
  const req = r.sink.stream(ka, true).toString('latin1');
  assert.deepEqual(req.match(/^(GET \S+) HTTP\/1\.1\r$/gm), ['GET /small', 'GET /big', 'GET /chunked'].map((x) => `${x} HTTP/1.1\r`));
  const resp = r.sink.stream(ka, false);
  assert.ok(resp.includes(big), 'the 300 kB body arrives intact and in order');
  assert.ok(resp.toString('latin1').includes('part1;'));
  assert.ok(r.sink.stream(echo, true).includes(post), 'the POST body arrives intact');
  assert.ok(r.sink.stream(echo, false).includes(post), 'and comes back intact');
  assert.equal(r.stats.format, 'pcapng');
  assert.ok(fs.statSync(file).size > big.length);
});
