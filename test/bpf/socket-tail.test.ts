// The socket tracer's tail (captureTail): of a TCP call longer than captureMax, the last
// captureTail bytes as a second record whose position continues where the head record's orig_len
// stops, so the bytes between are the one gap. Real loopback sockets in one Python process
// (write, writev of 50 iovecs, sendmsg, reads of up to 256 KiB, a 30 KB UDP datagram); every
// record's payload is compared with the bytes the process sent at that stream position.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { once } from 'node:events';
import { openSocketTracer, nativeAddonPath, SocketTracer, SocketTracerOptions } from '../../host/src/native/index';
import * as ev from '../../host/src/native/events';
import { tg_event_type, tg_dir, tg_proto, tg_socket_limits, tg_conn_info } from '../../host/src/generated/layout';

function requireBpf(t: { skip(msg?: string): void }): boolean {
  const why = process.getuid?.() !== 0 ? 'not root' : !fs.existsSync(nativeAddonPath()) ? 'native addon not built' : null;
  if (!why) return true;
  if (process.env.CI === 'true') assert.fail(`BPF unavailable under CI: ${why}`);
  t.skip(why);
  return false;
}

// The client's egress stream: 100,000 bytes by write(), 100,000 by writev (50 iovecs of 2,000),
// 40,000 by sendmsg (2 iovecs), 100 by write(); the server reads it all with recv(262144) and
// echoes nothing. Byte i of the stream is (i * 7 + i // 251) % 256, so a shifted copy shows.
const PY = `
import os, socket, sys
ls = socket.socket(); ls.bind(('127.0.0.1', 0)); ls.listen(1)
cli = socket.create_connection(ls.getsockname()); srv, _ = ls.accept()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('127.0.0.1', 0))
print('ready', flush=True)
sys.stdin.readline()
total = 240100
data = bytes((i * 7 + i // 251) % 256 for i in range(total))
fd = cli.fileno()
sent = os.write(fd, data[:100000])
sent += os.writev(fd, [data[100000 + k * 2000:100000 + (k + 1) * 2000] for k in range(50)])
sent += cli.sendmsg([data[200000:220000], data[220000:240000]])
got = 0
while got < sent:
    got += len(srv.recv(262144))
sent += os.write(fd, data[240000:])
while got < sent:
    got += len(srv.recv(262144))
u.sendto(b'd' * 30000, u.getsockname())
u.recv(65536)
print('done', sent, flush=True)
`;

const TOTAL = 240_100;
const streamByte = (i: number) => (i * 7 + Math.floor(i / 251)) % 256;

interface Rec { dir: number; proto: number; pos: number; len: number; origLen: number; truncated: boolean; payload: Buffer; connId: number }

async function run(t: { skip(msg?: string): void }, opts: SocketTracerOptions): Promise<{ recs: Rec[]; tails: number } | undefined> {
  if (!requireBpf(t)) return undefined;
  const child = spawn('/usr/bin/python3', ['-c', PY], { stdio: ['pipe', 'pipe', 'inherit'] });
  const recs: Rec[] = [];
  let tracer: SocketTracer | undefined;
  try {
    const [ready] = (await once(child.stdout!, 'data')) as [Buffer];
    assert.equal(ready.toString().trim(), 'ready');
    tracer = openSocketTracer({ connMax: 4096, targetPid: child.pid!, ...opts }, (ring, index, count) => {
      for (let i = 0; i < count; i++) {
        const off = index[2 * i];
        if (ev.eventType(ring, off) !== tg_event_type.TG_EV_DATA) continue;
        const c = ev.connOffset(ring, off);
        recs.push({ dir: ev.dataDir(ring, off), proto: ring[c + tg_conn_info.proto], pos: ev.dataPos(ring, off), len: ev.dataLen(ring, off), origLen: ev.dataOrigLen(ring, off),
          truncated: ev.dataTruncated(ring, off), payload: Buffer.from(ev.payload(ring, off)), connId: ev.connId(ring, c) });
      }
    });
    child.stdin!.write('go\n');
    let out = '';
    child.stdout!.on('data', (d) => { out += String(d); });
    await once(child, 'exit');
    assert.equal(out.trim(), `done ${TOTAL}`);
    tracer.close();
    return { recs, tails: tracer.stats().tails };
  } finally {
    tracer?.close();
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

/** The TCP stream of one direction: records in position order, each payload the stream's bytes
 *  at its position, and positions that add up to every byte sent. */
function checkStream(recs: Rec[], dir: number): Rec[] {
  const mine = recs.filter((r) => r.proto === tg_proto.TG_PROTO_TCP && r.dir === dir && r.origLen > 0);
  const ids = new Set(mine.map((r) => r.connId));
  assert.equal(ids.size, 1, 'one TCP connection per direction of interest');
  mine.sort((a, b) => a.pos - b.pos);
  let next = 0;
  for (const r of mine) {
    assert.equal(r.pos, next, `record at ${r.pos} where ${next} was expected`);
    for (let i = 0; i < r.len; i++) if (r.payload[i] !== streamByte(r.pos + i)) assert.fail(`byte ${r.pos + i} of the stream differs`);
    next += r.origLen;
  }
  assert.equal(next, TOTAL);
  return mine;
}

const CAP = tg_socket_limits.TG_CAPTURE_DEFAULT;

test('socket tracer tail: write, writev and sendmsg longer than captureMax give a head and their last captureTail bytes, the bytes between one gap', { timeout: 60_000 }, async (t) => {
  const r = await run(t, {});
  if (!r) return;
  const out = checkStream(r.recs, tg_dir.TG_DIR_EGRESS);
  // write(100000): head 16384 standing for 83,616 bytes, tail at 83,616; writev: same; sendmsg(40000): head standing for 23,616, tail 16384; write(100)
  assert.deepEqual(out.map((x) => [x.pos, x.len, x.origLen, x.truncated]), [
    [0, CAP, 100_000 - CAP, true], [100_000 - CAP, CAP, CAP, false],
    [100_000, CAP, 100_000 - CAP, true], [200_000 - CAP, CAP, CAP, false],
    [200_000, CAP, 40_000 - CAP, true], [240_000 - CAP, CAP, CAP, false],
    [240_000, 100, 100, false],
  ]);
  // the reads: every read longer than the capture has its tail too, in the same stream
  const inb = checkStream(r.recs, tg_dir.TG_DIR_INGRESS);
  const longReads = inb.filter((x) => x.truncated).length;
  assert.ok(longReads >= 1, 'a read longer than the capture');
  assert.equal(r.tails, 3 + longReads);
  // a datagram is one record: no tail
  const udp = r.recs.filter((x) => x.proto === tg_proto.TG_PROTO_UDP && x.origLen === 30_000);
  assert.deepEqual(udp.map((x) => [x.len, x.truncated]), [[CAP, true], [CAP, true]]);
});

test('socket tracer tail: captureTail 0 keeps the head only; a tail shorter than the rest leaves the gap between', { timeout: 60_000 }, async (t) => {
  const off = await run(t, { captureTail: 0 });
  if (!off) return;
  const out = checkStream(off.recs, tg_dir.TG_DIR_EGRESS);
  assert.deepEqual(out.map((x) => [x.pos, x.len, x.origLen]), [[0, CAP, 100_000], [100_000, CAP, 100_000], [200_000, CAP, 40_000], [240_000, 100, 100]]);
  assert.equal(off.tails, 0);
  const small = await run(t, { captureMax: 4096, captureTail: 1000 });
  if (!small) return;
  const o2 = checkStream(small.recs, tg_dir.TG_DIR_EGRESS);
  assert.deepEqual(o2.slice(0, 2).map((x) => [x.pos, x.len, x.origLen]), [[0, 4096, 99_000], [99_000, 1000, 1000]]);
});

test('socket tracer tail: with the unrolled iovec walk, write() keeps its tail and writev/sendmsg the head only', { timeout: 60_000 }, async (t) => {
  const r = await run(t, { iovWalk: 'unrolled' });
  if (!r) return;
  const out = checkStream(r.recs, tg_dir.TG_DIR_EGRESS);
  assert.deepEqual(out.map((x) => [x.pos, x.origLen]), [[0, 100_000 - CAP], [100_000 - CAP, CAP], [100_000, 100_000], [200_000, 40_000], [240_000, 100]]);
});
