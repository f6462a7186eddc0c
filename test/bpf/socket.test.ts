// The socket tracer against this kernel: real sockets, real curl, real events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile, execFileSync, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { once } from 'node:events';
import { openSocketTracer, nativeAddonPath, SocketTracer, SocketTracerOptions, BatchHandler } from '../../host/src/native/index';
import * as ev from '../../host/src/native/events';
import { tg_data_event, tg_conn_info, tg_event_type, tg_dir, tg_role, tg_socket_limits, tg_proto } from '../../host/src/generated/layout';

const EXPECTED_PROGRAMS = ['connect', 'accept', 'accept4', 'read', 'write', 'readv', 'writev', 'sendto', 'recvfrom', 'sendmsg', 'recvmsg', 'sendmmsg', 'recvmmsg', 'sendfile64', 'splice']
  .flatMap((s) => [`tg_in_${s}`, `tg_out_${s}`])
  .concat('tg_in_close', 'tg_proc_exit');

/** Why BPF cannot run here, or null when it can. */
function bpfUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'not root';
  if (!fs.existsSync('/sys/kernel/btf/vmlinux')) return 'no kernel BTF';
  if (!fs.existsSync(nativeAddonPath())) return `native addon not built (${nativeAddonPath()})`;
  return null;
}

/** Under CI a test that needs BPF fails when BPF is unavailable; elsewhere it is skipped. */
function requireBpf(t: { skip(msg?: string): void }): boolean {
  const why = bpfUnavailable();
  if (!why) return true;
  if (process.env.CI === 'true') assert.fail(`BPF unavailable under CI: ${why}`);
  t.skip(why);
  return false;
}

interface Ev {
  type: number;
  pid: number;
  tid: number;
  comm: string;
  role: number;
  connId: number;
  laddr: string;
  lport: number;
  raddr: string;
  rport: number;
  family: number;
  proto: number;
  dir: number;
  pos: number;
  len: number;
  origLen: number;
  truncated: boolean;
  payload: Buffer;
  bytesSent: number;
  bytesRecv: number;
  /** Where the record's payload starts in the ring view, and its length: past the ring's end
   *  when the record straddles it. */
  off: number;
  recLen: number;
}

function collect(ring: Uint8Array, index: Uint32Array, count: number, keep: (pid: number, comm: string) => boolean, out: Ev[]): void {
  for (let i = 0; i < count; i++) {
    const off = index[2 * i];
    const type = ev.eventType(ring, off);
    const c = ev.connOffset(ring, off);
    const pid = ev.pid(ring, c);
    const comm = ev.comm(ring, c);
    if (!keep(pid, comm)) continue;
    const data = type === tg_event_type.TG_EV_DATA;
    assert.ok(index[2 * i + 1] >= (data ? tg_data_event.size + ev.dataLen(ring, off) : tg_data_event.size));
    out.push({
      type,
      pid,
      tid: ev.tid(ring, c),
      comm,
      role: ev.role(ring, c),
      connId: ev.connId(ring, c),
      laddr: ev.localAddress(ring, c),
      lport: ev.localPort(ring, c),
      raddr: ev.remoteAddress(ring, c),
      rport: ev.remotePort(ring, c),
      family: ev.family(ring, c),
      proto: ring[c + tg_conn_info.proto],
      dir: data ? ev.dataDir(ring, off) : -1,
      pos: data ? ev.dataPos(ring, off) : -1,
      len: data ? ev.dataLen(ring, off) : 0,
      origLen: data ? ev.dataOrigLen(ring, off) : 0,
      truncated: data ? ev.dataTruncated(ring, off) : false,
      // Copied: the ring space is reused as soon as this batch returns.
      payload: data ? Buffer.from(ev.payload(ring, off)) : Buffer.alloc(0),
      bytesSent: data ? 0 : ev.connEventBytesSent(ring, off),
      bytesRecv: data ? 0 : ev.connEventBytesRecv(ring, off),
      off,
      recLen: index[2 * i + 1],
    });
  }
}

const SERVER = `
const http = require('http');
const big = Buffer.alloc(2 * 1024 * 1024, 'abcdefghijklmnopqrstuvwxyz');
const s = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    if (req.url === '/big') return res.end(big);
    res.setHeader('content-type', 'text/plain');
    res.end(req.url === '/echo' ? Buffer.concat(chunks) : 'hello world\\n');
  });
});
s.listen(0, '127.0.0.1', () => process.stdout.write(s.address().port + '\\n'));
`;

/** Runs a node script that prints its listening port; resolves once it listens. */
async function startNode(script: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  return { child, port: Number(line.toString().trim()) };
}

const startServer = () => startNode(SERVER);

function curl(args: string[]): Promise<{ pid: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const c = execFile('curl', ['-sS', '--max-time', '10', '-H', 'Connection: close', ...args], { maxBuffer: 8 << 20 }, (err, stdout) =>
      err ? reject(err) : resolve({ pid: c.pid!, stdout }),
    );
  });
}

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

function liveProgIds(): Set<number> {
  const out = execFileSync('bpftool', ['prog', 'show', '-j'], { maxBuffer: 64 << 20 }).toString();
  return new Set((JSON.parse(out) as { id: number }[]).map((p) => p.id));
}

/** Opens the tracer with TELEGEN_FAULT_INJECT set to `faults` (the native loader reads it at
 *  open()), and puts the variable back as it was. */
function openWithFaults(faults: string, opts: SocketTracerOptions, onBatch: BatchHandler): SocketTracer {
  const saved = process.env.TELEGEN_FAULT_INJECT;
  process.env.TELEGEN_FAULT_INJECT = faults;
  try {
    return openSocketTracer(opts, onBatch);
  } finally {
    if (saved === undefined) delete process.env.TELEGEN_FAULT_INJECT;
    else process.env.TELEGEN_FAULT_INJECT = saved;
  }
}

/** Closes the tracer and kills the server, then asserts none of the tracer's programs is left in the kernel. */
function closeLeavingNoPrograms(tracer: SocketTracer | undefined, server: ChildProcess): void {
  const ids = tracer?.report.progIds ?? [];
  tracer?.close();
  server.kill('SIGKILL');
  const live = liveProgIds();
  assert.ok(ids.every((id) => !live.has(id)));
}

/** Per (conn, dir): ordered, contiguous from 0, and the stream bytes when nothing was cut. */
function streams(events: Ev[]): Map<string, { events: Ev[]; bytes: Buffer; complete: boolean; total: number }> {
  const m = new Map<string, Ev[]>();
  for (const e of events) {
    if (e.type !== tg_event_type.TG_EV_DATA) continue;
    const k = `${e.connId}/${e.dir}`;
    if (!m.has(k)) m.set(k, []);
    m.get(k)!.push(e);
  }
  const out = new Map<string, { events: Ev[]; bytes: Buffer; complete: boolean; total: number }>();
  for (const [k, list] of m) {
    list.sort((a, b) => a.pos - b.pos);
    let next = 0;
    for (const e of list) {
      assert.equal(e.pos, next, `stream ${k}: position ${e.pos} where ${next} was expected`);
      next += e.origLen;
    }
    out.set(k, {
      events: list,
      bytes: Buffer.concat(list.map((e) => e.payload)),
      complete: list.every((e) => !e.truncated && e.len === e.origLen),
      total: next,
    });
  }
  return out;
}

test('layout.ts is generated from the object BTF', () => {
  assert.equal(tg_data_event.size, 112);
  assert.equal(tg_conn_info.size, 80);
  assert.equal(tg_data_event.conn + tg_conn_info.size, tg_data_event.size);
  assert.equal(tg_event_type.TG_EV_DATA, 1);
  assert.equal(tg_socket_limits.TG_CAPTURE_LIMIT, 32768);
});

test('copyPayload copies a record payload into another memory without allocating views', () => {
  const ring = new Uint8Array(4096);
  const off = 64;
  new DataView(ring.buffer).setUint32(off + tg_data_event.type, tg_event_type.TG_EV_DATA, true);
  new DataView(ring.buffer).setUint32(off + tg_data_event.len, 5, true);
  ring.set(Buffer.from('hello'), off + tg_data_event.size);
  const mem = new Uint8Array(new ArrayBuffer(16));
  assert.equal(ev.copyPayload(ring, off, mem, 2), 5);
  assert.equal(Buffer.from(mem.subarray(2, 7)).toString(), 'hello');
  assert.equal(ev.copyPayload(ring, off, mem, 13), 3, 'bounded by the destination');
  assert.equal(ev.copyPayload(ring, off, mem, 0, 2), 2, 'bounded by max');
  assert.equal(ev.payloadOffset(off), off + tg_data_event.size);
});

test('formatAddr prints IPv4-mapped and IPv6 addresses', () => {
  const b = new Uint8Array(16);
  b[10] = 0xff;
  b[11] = 0xff;
  b.set([127, 0, 0, 1], 12);
  assert.equal(ev.formatAddr(b, 0), '127.0.0.1');
  const v6 = new Uint8Array(16);
  v6[15] = 1;
  assert.equal(ev.formatAddr(v6, 0), '::1');
  v6.set([0x20, 0x01, 0x0d, 0xb8], 0);
  assert.equal(ev.formatAddr(v6, 0), '2001:db8::1');
});

test('socket tracer: real HTTP over loopback, both roles, payloads, positions, truncation, close', { timeout: 60_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const { child: server, port } = await startServer();
  const serverPid = server.pid!;
  const events: Ev[] = [];
  let tracer: SocketTracer | undefined;
  try {
    tracer = openSocketTracer({ connMax: 65536 }, (ring, index, count) =>
      collect(ring, index, count, (pid, comm) => pid === serverPid || comm === 'curl', events),
    );
    const report = tracer.report;
    t.diagnostic(`attached ${report.attached.length}, failed ${JSON.stringify(report.failed)}`);
    assert.deepEqual(report.failed, []);
    assert.deepEqual([...report.attached].sort(), [...EXPECTED_PROGRAMS].sort());
    assert.equal(report.progIds.length, EXPECTED_PROGRAMS.length);
    assert.equal(report.selfPid, process.pid);

    const body = 'telegen-payload-' + 'x'.repeat(200) + '-end';
    const echo = await curl(['--data-binary', body, `http://127.0.0.1:${port}/echo`]);
    assert.equal(echo.stdout, body);
    const big = await curl(['-o', '/dev/null', '-w', '%{size_download}', `http://127.0.0.1:${port}/big`]);
    assert.equal(big.stdout, String(2 * 1024 * 1024));

    const closes = (): Ev[] => events.filter((e) => e.type === tg_event_type.TG_EV_CONN_CLOSE);
    const got = await waitFor(() => closes().filter((e) => e.pid === serverPid).length >= 2 && closes().filter((e) => e.comm === 'curl').length >= 2, 5000);
    assert.ok(got, `close events: ${JSON.stringify(closes().map((e) => [e.pid, e.comm, e.lport]))}`);

    // Connection opens: the client from connect() (non-blocking, EINPROGRESS), the server from accept4().
    const opens = events.filter((e) => e.type === tg_event_type.TG_EV_CONN_OPEN);
    for (const c of [echo, big]) {
      const cli = opens.find((e) => e.pid === c.pid && e.rport === port);
      assert.ok(cli, `client open for curl ${c.pid}`);
      assert.equal(cli.role, tg_role.TG_ROLE_CLIENT);
      assert.equal(cli.comm, 'curl');
      assert.equal(cli.laddr, '127.0.0.1');
      assert.equal(cli.raddr, '127.0.0.1');
      assert.equal(cli.family, 2);
      const srv = opens.find((e) => e.pid === serverPid && e.rport === cli.lport);
      assert.ok(srv, `server open for client port ${cli.lport}`);
      assert.equal(srv.role, tg_role.TG_ROLE_SERVER);
      assert.equal(srv.lport, port);
      assert.equal(srv.laddr, '127.0.0.1');
      assert.equal(srv.raddr, '127.0.0.1');
      assert.equal(srv.comm, 'node');

      const s = streams(events);
      const cliOut = s.get(`${cli.connId}/${tg_dir.TG_DIR_EGRESS}`)!;
      const cliIn = s.get(`${cli.connId}/${tg_dir.TG_DIR_INGRESS}`)!;
      const srvIn = s.get(`${srv.connId}/${tg_dir.TG_DIR_INGRESS}`)!;
      const srvOut = s.get(`${srv.connId}/${tg_dir.TG_DIR_EGRESS}`)!;
      assert.ok(cliOut && cliIn && srvIn && srvOut, 'four directions seen');
      // What curl sent is exactly what the server read, byte for byte.
      assert.ok(cliOut.complete && srvIn.complete);
      assert.deepEqual(srvIn.bytes, cliOut.bytes);
      assert.equal(srvOut.total, cliIn.total);
      for (const e of [...srvIn.events, ...srvOut.events]) {
        assert.equal(e.pid, serverPid);
        assert.equal(e.lport, port);
        assert.equal(e.rport, cli.lport);
        assert.equal(e.role, tg_role.TG_ROLE_SERVER);
      }
      for (const e of [...cliIn.events, ...cliOut.events]) {
        assert.equal(e.pid, c.pid);
        assert.equal(e.lport, cli.lport);
        assert.equal(e.rport, port);
      }
      // Close events carry the byte totals the positions add up to.
      const srvClose = closes().find((e) => e.connId === srv.connId)!;
      const cliClose = closes().find((e) => e.connId === cli.connId)!;
      assert.ok(srvClose && cliClose);
      assert.equal(srvClose.bytesRecv, srvIn.total);
      assert.equal(srvClose.bytesSent, srvOut.total);
      assert.equal(cliClose.bytesSent, cliOut.total);
      assert.equal(cliClose.bytesRecv, cliIn.total);

      if (c === echo) {
        const req = srvIn.bytes.toString();
        assert.match(req, new RegExp(`^POST /echo HTTP/1\\.1\\r\\nHost: 127\\.0\\.0\\.1:${port}\\r\\n`));
        assert.ok(req.endsWith('\r\n\r\n' + body));
        assert.ok(srvOut.complete);
        assert.deepEqual(cliIn.bytes, srvOut.bytes);
        assert.ok(srvOut.bytes.toString().startsWith('HTTP/1.1 200 OK\r\n'));
        assert.ok(srvOut.bytes.toString().endsWith('\r\n\r\n' + body));
      } else {
        // 2 MB response: the server's writes are cut to captureMax and say how much moved (with
        // the tail record after the head, the head stands for what precedes the tail: no more
        // than its own bytes when head and tail hold a write of up to 32 KiB whole).
        assert.ok(srvOut.total > 2 * 1024 * 1024);
        const cut = srvOut.events.filter((e) => e.truncated);
        assert.ok(cut.length > 0, 'a truncated write');
        for (const e of cut) {
          assert.equal(e.len, tg_socket_limits.TG_CAPTURE_DEFAULT);
          assert.ok(e.origLen >= e.len);
        }
        assert.ok(srvOut.bytes.subarray(0, 17).toString() === 'HTTP/1.1 200 OK\r\n');
        assert.ok(srvOut.bytes.includes(Buffer.from('abcdefghijklmnopqrstuvwxyzabcdef')));
      }
    }

    const st = tracer.stats();
    t.diagnostic(`stats ${JSON.stringify(st)}`);
    assert.ok(st.events > 0);
    assert.ok(st.conn_open >= 4);
    assert.ok(st.conn_close >= 4);
    assert.ok(st.truncated >= 1);
    assert.equal(st.ring_full, 0);
    assert.ok(st.batches > 0 && st.records > 0);
    assert.equal(st.handlerErrors, 0);
    const ms = tracer.mapStats();
    assert.equal(ms.connMax, 65536);
    assert.ok(ms.conns >= 0);
  } finally {
    const ids = tracer?.report.progIds ?? [];
    tracer?.close();
    server.kill('SIGKILL');
    if (ids.length) {
      const gone = await waitFor(() => {
        const live = liveProgIds();
        return ids.every((id) => !live.has(id));
      }, 5000);
      assert.ok(gone, 'no telegen programs remain after close()');
    }
  }
});

test('socket tracer: a record that does not fit is counted, never silently lost', { timeout: 60_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const { child: server, port } = await startServer();
  let tracer: SocketTracer | undefined;
  let seen = 0;
  try {
    // A one-page ring and a handler that sits on its first batch: the kernel must count
    // what it could not write.
    let blocked = false;
    tracer = openSocketTracer({ connMax: 1024, ringBytes: 4096, captureMax: 32768 }, (_ring, _index, count) => {
      seen += count;
      if (!blocked) {
        blocked = true;
        execFileSync('curl', ['-sS', '-o', '/dev/null', `http://127.0.0.1:${port}/big`]);
      }
    });
    await curl(['-o', '/dev/null', `http://127.0.0.1:${port}/`]);
    await waitFor(() => blocked, 5000);
    const st = tracer.stats();
    t.diagnostic(`stats ${JSON.stringify(st)}`);
    assert.ok(st.ring_full > 0, 'ring_full counted');
    assert.ok(seen > 0);
  } finally {
    closeLeavingNoPrograms(tracer, server);
  }
});

test('socket tracer: paused, the reader reads nothing and the kernel counts what does not fit; resumed, it reads again', { timeout: 60_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const { child: server, port } = await startServer();
  let tracer: SocketTracer | undefined;
  let seen = 0;
  try {
    // The agent's CPU budget pauses the reader (memory/overload.ts): the kernel's drops then
    // cost the agent nothing and are counted.
    tracer = openSocketTracer({ connMax: 1024, ringBytes: 65536, captureMax: 32768, targetPid: server.pid! }, (_ring, _index, count) => { seen += count; });
    await curl(['-o', '/dev/null', `http://127.0.0.1:${port}/`]);
    await waitFor(() => seen > 0, 5000);
    tracer.pause(true);
    const before = { seen, full: tracer.stats().ring_full };
    for (let i = 0; i < 20 && tracer.stats().ring_full === before.full; i++) await curl(['-o', '/dev/null', `http://127.0.0.1:${port}/big`]);
    await new Promise((r) => setTimeout(r, 200)); // several poll intervals
    const st = tracer.stats();
    t.diagnostic(`paused: seen ${before.seen} -> ${seen}, ring_full ${before.full} -> ${st.ring_full}, pending ${st.ringPendingBytes} bytes`);
    assert.equal(seen, before.seen, 'nothing read while paused');
    assert.ok(st.ring_full > before.full, 'the kernel counted the records that did not fit');
    assert.ok(st.ringPendingBytes > 0, 'the ring holds what was written before it filled');
    tracer.pause(false);
    await waitFor(() => seen > before.seen && tracer!.stats().ringPendingBytes === 0, 5000);
    assert.ok(seen > before.seen, 'resumed: the records the ring held are read');
  } finally {
    tracer?.close();
    server.kill('SIGKILL');
  }
});

test('close(): what the ring holds when capture stops is read to its end, paused or not (SIGTERM loses nothing captured)', { timeout: 60_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const { child: server, port } = await startServer();
  let tracer: SocketTracer | undefined;
  let seen = 0;
  try {
    tracer = openSocketTracer({ connMax: 1024, ringBytes: 1 << 20, captureMax: 4096, targetPid: server.pid! }, (_ring, _index, count) => { seen += count; });
    await curl(['-o', '/dev/null', `http://127.0.0.1:${port}/`]);
    await waitFor(() => seen > 0, 5000);
    // Paused (as the agent's CPU budget pauses it): five more exchanges wait in the ring.
    tracer.pause(true);
    const before = seen;
    for (let i = 0; i < 5; i++) await curl(['-o', '/dev/null', `http://127.0.0.1:${port}/`]);
    await new Promise((r) => setTimeout(r, 200));
    const pending = tracer.stats().ringPendingBytes;
    assert.equal(seen, before, 'nothing read while paused');
    assert.ok(pending > 0, 'the ring holds the five exchanges');
    assert.equal(tracer.stats().ring_full, 0);
    tracer.close();
    // Each exchange: at least the request and response records on the server's socket.
    assert.ok(seen - before >= 10, `records handed over by close(): ${seen - before} (${pending} bytes were pending)`);
    assert.equal(tracer.stats().records, seen, 'the kept totals count the final drain');
    assert.equal(tracer.stats().ringPendingBytes, 0);
  } finally {
    tracer?.close();
    server.kill('SIGKILL');
  }
});

test('socket tracer: SIGKILL of the loading process leaves no programs behind', { timeout: 60_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const script = `
    const { openSocketTracer } = require(${JSON.stringify(require.resolve('../../host/src/native/index'))});
    const tr = openSocketTracer({ connMax: 1024, ringBytes: 65536 }, () => {});
    process.stdout.write(JSON.stringify(tr.report.progIds) + '\\n');
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  const ids = JSON.parse(line.toString()) as number[];
  assert.ok(ids.length > 0);
  const live = liveProgIds();
  assert.ok(ids.every((id) => live.has(id)), 'programs loaded while the process lives');
  child.kill('SIGKILL');
  await once(child, 'exit');
  const gone = await waitFor(() => {
    const l = liveProgIds();
    return ids.every((id) => !l.has(id));
  }, 5000);
  assert.ok(gone, 'programs freed after SIGKILL');
});

// A raw TCP client exercising every data syscall the tracer hooks, plus sockets it must ignore.
const PY_CLIENT = `
import os, socket, sys
port, mode = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(('127.0.0.1', port))
fd = s.fileno()
if mode == 'wait':
    print('ready', flush=True)
    sys.stdin.readline()
# UDP is reported (one datagram, one event); a unix socket pair and a regular file are ignored.
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.sendto(b'udp-noise', ('127.0.0.1', 9)); u.close()
a, b = socket.socketpair(); a.send(b'unix-noise'); b.recv(64); a.close(); b.close()
with open('/proc/self/status', 'rb') as f: f.read()
def read_back(n):
    got = b''
    s.recv(4, socket.MSG_PEEK)  # must not be reported: it would count bytes twice
    k = 0
    while len(got) < n:
        k += 1
        if k % 4 == 1:
            b1, b2 = bytearray(3), bytearray(4)
            r = os.readv(fd, [b1, b2]); got += (bytes(b1) + bytes(b2))[:r]
        elif k % 4 == 2:
            got += s.recvmsg(5)[0]
        elif k % 4 == 3:
            got += s.recv(6)
        else:
            got += os.read(fd, n - len(got))
    return got
if mode == 'exit':
    os.write(fd, b'bye')
    os._exit(0)  # the kernel closes the socket: no close() for the tracer to see
if mode == 'loop':
    for i in range(300):
        msg = (b'%04d' % i) * 250
        os.write(fd, msg)
        assert read_back(len(msg)) == msg
else:
    sent = b''
    parts = [b'alpha-', b'beta-', b'gamma-']; os.writev(fd, parts); sent += b''.join(parts)
    parts = [b'delta-', b'epsilon-']; s.sendmsg(parts); sent += b''.join(parts)
    s.send(b'zeta-'); sent += b'zeta-'
    os.write(fd, b'eta-' * 25); sent += b'eta-' * 25
    assert read_back(len(sent)) == sent
s.close()
print('done', flush=True)
`;

const ECHO_SERVER = `
const net = require('net');
const s = net.createServer((c) => c.pipe(c));
s.listen(0, '127.0.0.1', () => process.stdout.write(s.address().port + '\\n'));
`;

const startEcho = () => startNode(ECHO_SERVER);

function pyClient(port: number, mode: 'all' | 'wait' | 'loop' | 'exit'): { child: ChildProcess; lines: AsyncIterator<string> } {
  const child = spawn('/usr/bin/python3', ['-c', PY_CLIENT, String(port), mode], { stdio: ['pipe', 'pipe', 'inherit'] });
  const rl = require('node:readline').createInterface({ input: child.stdout! }) as AsyncIterable<string>;
  return { child, lines: rl[Symbol.asyncIterator]() };
}

async function expectLine(lines: AsyncIterator<string>, want: string): Promise<void> {
  const r = await lines.next();
  assert.equal(r.value, want);
}

const SENT = 'alpha-beta-gamma-delta-epsilon-zeta-' + 'eta-'.repeat(25);
/** What the client sends (and the echo server returns) in 'loop' mode. */
const LOOP_SENT = Buffer.from(Array.from({ length: 300 }, (_, i) => String(i).padStart(4, '0').repeat(250)).join(''));

/** The client prints 'done' before it closes: an empty ring at that moment does not mean the close
 *  was already traced, so wait for the close itself, of the TCP connection, not of the client's
 *  earlier UDP socket (it can only be missing when the ring was full and has drained, which the
 *  callers' assertions allow for). */
async function waitForTcpClose(events: Ev[], tracer: SocketTracer): Promise<void> {
  const tcpClosed = () => {
    const o = events.find((e) => e.type === tg_event_type.TG_EV_CONN_OPEN);
    return o !== undefined && events.some((e) => e.type === tg_event_type.TG_EV_CONN_CLOSE && e.connId === o.connId);
  };
  await waitFor(() => tcpClosed() || (tracer.stats().ring_full > 0 && tracer.stats().ringPendingBytes === 0), 20_000);
}

test('socket tracer: writev/sendmsg/sendto/write and readv/recvmsg/recvfrom/read; peeks, UDP, unix sockets and files ignored', { timeout: 60_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const { child: server, port } = await startEcho();
  const events: Ev[] = [];
  let tracer: SocketTracer | undefined;
  let pyPid = -1;
  try {
    tracer = openSocketTracer({ connMax: 4096 }, (ring, index, count) =>
      collect(ring, index, count, (pid) => pid === pyPid || pid === server.pid, events),
    );
    const py = pyClient(port, 'all');
    pyPid = py.child.pid!;
    await expectLine(py.lines, 'done');
    await waitFor(() => events.filter((e) => e.type === tg_event_type.TG_EV_CONN_CLOSE && e.proto === tg_proto.TG_PROTO_TCP).length >= 2, 5000);

    const udp = events.filter((e) => e.pid === pyPid && e.proto === tg_proto.TG_PROTO_UDP && e.type === tg_event_type.TG_EV_DATA);
    assert.deepEqual(udp.map((e) => [e.dir, e.raddr, e.rport, e.payload.toString(), e.origLen]), [[tg_dir.TG_DIR_EGRESS, '127.0.0.1', 9, 'udp-noise', 9]], 'the UDP datagram, with its peer from sendto');
    assert.ok(udp[0].lport > 0, 'the local port bound at the first send');
    const mine = events.filter((e) => e.pid === pyPid && e.type !== tg_event_type.TG_EV_PROC_EXIT && e.proto !== tg_proto.TG_PROTO_UDP);
    assert.ok(mine.length > 0);
    for (const e of mine) assert.equal(e.rport, port, 'only the TCP connection besides the datagram');
    const open = mine.find((e) => e.type === tg_event_type.TG_EV_CONN_OPEN)!;
    assert.ok(open, 'blocking connect() reported');
    assert.equal(open.role, tg_role.TG_ROLE_CLIENT);
    const srvOpen = events.find((e) => e.pid === server.pid && e.type === tg_event_type.TG_EV_CONN_OPEN && e.rport === open.lport)!;
    assert.ok(srvOpen);
    const s = streams(events);
    for (const [id, dir] of [
      [open.connId, tg_dir.TG_DIR_EGRESS],
      [open.connId, tg_dir.TG_DIR_INGRESS],
      [srvOpen.connId, tg_dir.TG_DIR_INGRESS],
      [srvOpen.connId, tg_dir.TG_DIR_EGRESS],
    ] as const) {
      const st = s.get(`${id}/${dir}`)!;
      assert.ok(st && st.complete, `stream ${id}/${dir}`);
      assert.equal(st.bytes.toString(), SENT, `stream ${id}/${dir} bytes`);
    }
    // Several syscall shapes appear on the client egress: 3 iovecs in one writev event.
    const out = s.get(`${open.connId}/${tg_dir.TG_DIR_EGRESS}`)!;
    assert.equal(out.events[0].payload.toString(), 'alpha-beta-gamma-');
    assert.equal(out.events[1].payload.toString(), 'delta-epsilon-');
    assert.equal(out.events[2].payload.toString(), 'zeta-');
  } finally {
    closeLeavingNoPrograms(tracer, server);
  }
});

// Many iovecs per call: writev of 300 and of 1024 (IOV_MAX) buffers, sendmsg of 64; read back
// with readv and recvmsg into 400 and 200 small buffers. Prints each call's byte count.
const PY_MANY_IOV = `
import os, socket, sys
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
fd = s.fileno()
sent = [os.writev(fd, [b'%04d' % i * 5 for i in range(300)]),
        os.writev(fd, [b'%03dx' % (i % 1000) * 2 for i in range(1024)]),
        s.sendmsg([b'm%02d' % i * 16 + b'!!' for i in range(64)])]
total, got = sum(sent), 0
while got < total:
    n = os.readv(fd, [bytearray(16) for _ in range(400)]) if got % 2 == 0 else s.recvmsg_into([bytearray(16) for _ in range(200)])[0]
    got += n
print(' '.join(map(str, sent)), flush=True)
s.close()
`;

for (const walk of ['auto', 'unrolled'] as const) {
  test(`socket tracer: writev/sendmsg/readv/recvmsg with hundreds of iovecs (iovWalk ${walk})`, { timeout: 60_000 }, async (t) => {
    if (!requireBpf(t)) return;
    const { child: server, port } = await startEcho();
    const events: Ev[] = [];
    let tracer: SocketTracer | undefined;
    let pyPid = -1;
    try {
      tracer = openSocketTracer({ connMax: 4096, iovWalk: walk }, (ring, index, count) => collect(ring, index, count, (pid) => pid === pyPid, events));
      // This kernel has bpf_loop (6.18): auto walks every iovec a call can take.
      assert.equal(tracer.report.iovMax, walk === 'auto' ? tg_socket_limits.TG_IOV_LOOP_MAX : tg_socket_limits.TG_IOV_MAX);
      assert.ok(tracer.report.attached.includes(walk === 'auto' ? 'tg_out_writev' : 'tg_out_writev_unrolled'));
      assert.ok(!tracer.report.attached.includes(walk === 'auto' ? 'tg_out_writev_unrolled' : 'tg_out_writev'));
      const child = spawn('/usr/bin/python3', ['-c', PY_MANY_IOV, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
      pyPid = child.pid!;
      const [line] = (await once(child.stdout!, 'data')) as [Buffer];
      assert.deepEqual(line.toString().trim().split(' ').map(Number), [6000, 8192, 3200]);
      const open = () => events.find((e) => e.type === tg_event_type.TG_EV_CONN_OPEN && e.proto === tg_proto.TG_PROTO_TCP);
      await waitFor(() => events.some((e) => e.type === tg_event_type.TG_EV_CONN_CLOSE && e.connId === open()?.connId), 10_000);
      const id = open()!.connId;
      const out = events.filter((e) => e.type === tg_event_type.TG_EV_DATA && e.connId === id && e.dir === tg_dir.TG_DIR_EGRESS);
      const want = [
        Buffer.from(Array.from({ length: 300 }, (_, i) => String(i).padStart(4, '0').repeat(5)).join('')),
        Buffer.from(Array.from({ length: 1024 }, (_, i) => `${String(i % 1000).padStart(3, '0')}x`.repeat(2)).join('')),
        Buffer.from(Array.from({ length: 64 }, (_, i) => `m${String(i).padStart(2, '0')}`.repeat(16) + '!!').join('')),
      ];
      assert.deepEqual(out.map((e) => e.origLen), want.map((b) => b.length));
      const inb = events.filter((e) => e.type === tg_event_type.TG_EV_DATA && e.connId === id && e.dir === tg_dir.TG_DIR_INGRESS);
      assert.equal(inb.reduce((a, e) => a + e.origLen, 0), 6000 + 8192 + 3200);
      if (walk === 'auto') {
        // Every byte of every call, in one record per call.
        for (let i = 0; i < 3; i++) assert.ok(out[i].payload.equals(want[i]) && !out[i].truncated, `egress call ${i} whole`);
        assert.ok(Buffer.concat(inb.map((e) => e.payload)).equals(Buffer.concat(want)), 'ingress whole');
        assert.ok(inb.every((e) => !e.truncated && e.len === e.origLen));
      } else {
        // The first TG_IOV_MAX buffers of each call, marked truncated; positions still exact.
        const n = tg_socket_limits.TG_IOV_MAX;
        assert.ok(out[0].payload.equals(want[0].subarray(0, n * 20)) && out[0].truncated);
        assert.ok(out[1].payload.equals(want[1].subarray(0, n * 8)) && out[1].truncated);
        assert.ok(out[2].payload.equals(want[2].subarray(0, n * 50)) && out[2].truncated);
        assert.deepEqual(out.map((e) => e.pos), [0, 6000, 14192]);
        assert.ok(inb.every((e) => e.len <= n * 16));
      }
    } finally {
      tracer?.close();
      server.kill('SIGKILL');
    }
  });
}

// One Python process, both ends of one loopback connection: the server thread sends N file bytes
// with sendfile, M more spliced from the file through a pipe, then "end" with send; the client
// reads K bytes with recv, splices the rest of the file's bytes into a pipe (to /dev/null), then
// reads "end". No file byte passes through user memory on the sending side.
const PY_SENDFILE = `
import os, socket, sys, threading
path, N, M, K = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ls = socket.socket()
ls.bind(('127.0.0.1', 0))
ls.listen(1)
cli = socket.create_connection(ls.getsockname())
srv, _ = ls.accept()
def serve():
    fd = os.open(path, os.O_RDONLY)
    off = 0
    while off < N:
        off += os.sendfile(srv.fileno(), fd, off, N - off)
    r, w = os.pipe()
    while off < N + M:
        k = os.splice(fd, w, N + M - off, offset_src=off)
        off += k
        while k:
            k -= os.splice(r, srv.fileno(), k)
    srv.sendall(b'end')
th = threading.Thread(target=serve)
th.start()
got = b''
while len(got) < K:
    got += cli.recv(K - len(got))
r, w = os.pipe()
null = os.open('/dev/null', os.O_WRONLY)
left = N + M - K
while left:
    k = os.splice(cli.fileno(), w, min(left, 65536))
    left -= k
    while k:
        k -= os.splice(r, null, k)
tail = b''
while len(tail) < 3:
    tail += cli.recv(3 - len(tail))
th.join()
print('done', got == open(path, 'rb').read(K), tail.decode(), flush=True)
`;

test('socket tracer: sendfile and splice move bytes without payload records: positions and totals stay exact, the bytes after them land where the wire has them', { timeout: 60_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-sendfile-'));
  const file = path.join(dir, 'f.bin');
  const [N, M, K] = [300_000, 100_000, 1000];
  fs.writeFileSync(file, Buffer.alloc(N + M, 'sendfile-bytes;'));
  const events: Ev[] = [];
  let tracer: SocketTracer | undefined;
  let pyPid = -1;
  try {
    tracer = openSocketTracer({ connMax: 4096 }, (ring, index, count) => collect(ring, index, count, (pid) => pid === pyPid, events));
    assert.ok(['tg_in_sendfile64', 'tg_out_sendfile64', 'tg_in_splice', 'tg_out_splice'].every((p) => tracer!.report.attached.includes(p)), 'sendfile64 and splice hooked');
    const py = spawn('python3', ['-c', PY_SENDFILE, file, String(N), String(M), String(K)], { stdio: ['ignore', 'pipe', 'inherit'] });
    pyPid = py.pid!;
    let out = '';
    py.stdout!.on('data', (d) => { out += String(d); });
    await once(py, 'exit');
    assert.equal(out.trim(), 'done True end');
    await waitFor(() => events.filter((e) => e.type === tg_event_type.TG_EV_CONN_CLOSE).length >= 2, 5000);

    const srv = events.find((e) => e.type === tg_event_type.TG_EV_CONN_OPEN && e.role === tg_role.TG_ROLE_SERVER)!;
    const cli = events.find((e) => e.type === tg_event_type.TG_EV_CONN_OPEN && e.role === tg_role.TG_ROLE_CLIENT)!;
    assert.ok(srv && cli);
    const s = streams(events); // asserts every stream contiguous from 0
    const out1 = s.get(`${srv.connId}/${tg_dir.TG_DIR_EGRESS}`)!;
    const in1 = s.get(`${cli.connId}/${tg_dir.TG_DIR_INGRESS}`)!;
    assert.equal(out1.total, N + M + 3, 'server egress: every byte the calls moved');
    assert.equal(in1.total, N + M + 3, 'client ingress: every byte the calls moved');
    // sendfile and splice: records with the count and no payload, marked truncated
    const noPayload = (list: Ev[]) => list.filter((e) => e.len === 0);
    for (const e of [...noPayload(out1.events), ...noPayload(in1.events)]) assert.ok(e.truncated && e.origLen > 0 && e.payload.length === 0);
    assert.equal(noPayload(out1.events).reduce((a, e) => a + e.origLen, 0), N + M, 'the file bytes: sendfile then splice out');
    assert.equal(noPayload(in1.events).reduce((a, e) => a + e.origLen, 0), N + M - K, 'spliced in from the socket');
    const last = out1.events[out1.events.length - 1];
    assert.deepEqual([last.pos, last.payload.toString()], [N + M, 'end'], 'the send after them at its wire position');
    const lastIn = in1.events[in1.events.length - 1];
    assert.equal(lastIn.pos + lastIn.origLen, N + M + 3);
    assert.ok(lastIn.payload.toString().endsWith('end'));
    assert.deepEqual(Buffer.concat(in1.events.filter((e) => e.pos < K).map((e) => e.payload)).subarray(0, K), Buffer.alloc(N + M, 'sendfile-bytes;').subarray(0, K), 'the bytes read by recv');
    const close = events.find((e) => e.type === tg_event_type.TG_EV_CONN_CLOSE && e.connId === srv.connId)!;
    assert.deepEqual([close.bytesSent, close.bytesRecv], [N + M + 3, 0], 'the totals at close count them');
  } finally {
    tracer?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('socket tracer: a connection older than the tracer is picked up lazily; targetPid filters', { timeout: 60_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const { child: server, port } = await startEcho();
  const py = pyClient(port, 'wait');
  const events: Ev[] = [];
  let tracer: SocketTracer | undefined;
  try {
    await expectLine(py.lines, 'ready');
    const pyPid = py.child.pid!;
    tracer = openSocketTracer({ connMax: 4096, targetPid: pyPid }, (ring, index, count) => collect(ring, index, count, () => true, events));
    py.child.stdin!.write('go\n');
    await expectLine(py.lines, 'done');
    // The UDP datagram's socket closes first: wait for the TCP connection's close.
    await waitFor(() => events.some((e) => e.type === tg_event_type.TG_EV_CONN_CLOSE && e.proto === tg_proto.TG_PROTO_TCP), 5000);
    assert.ok(events.length > 0);
    for (const e of events) assert.equal(e.pid, pyPid, 'targetPid excludes every other process');
    assert.equal(events.filter((e) => e.type === tg_event_type.TG_EV_CONN_OPEN).length, 0, 'no open for an old connection');
    const first = events.find((e) => e.proto === tg_proto.TG_PROTO_TCP)!;
    assert.equal(first.role, tg_role.TG_ROLE_UNKNOWN);
    assert.equal(first.rport, port);
    assert.equal(first.raddr, '127.0.0.1');
    const s = streams(events);
    assert.equal(s.get(`${first.connId}/${tg_dir.TG_DIR_EGRESS}`)!.bytes.toString(), SENT);
    assert.equal(s.get(`${first.connId}/${tg_dir.TG_DIR_INGRESS}`)!.bytes.toString(), SENT);
    const close = events.find((e) => e.type === tg_event_type.TG_EV_CONN_CLOSE && e.proto === tg_proto.TG_PROTO_TCP)!;
    assert.equal(close.connId, first.connId);
    assert.equal(close.bytesSent, SENT.length);
    assert.equal(close.bytesRecv, SENT.length);
  } finally {
    tracer?.close();
    py.child.kill('SIGKILL');
    server.kill('SIGKILL');
  }
});

test('socket tracer: records wrapping around a small ring arrive intact and in order', { timeout: 60_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const { child: server, port } = await startEcho();
  const events: Ev[] = [];
  let tracer: SocketTracer | undefined;
  let pyPid = -1;
  let ringTraffic = 0;
  try {
    const ringBytes = 256 * 1024;
    tracer = openSocketTracer({ connMax: 4096, ringBytes, captureMax: 2048 }, (ring, index, count) => {
      for (let i = 0; i < count; i++) ringTraffic += (index[2 * i + 1] + 8 + 7) & ~7;
      collect(ring, index, count, (pid) => pid === pyPid, events);
    });
    const py = pyClient(port, 'loop');
    pyPid = py.child.pid!;
    await expectLine(py.lines, 'done');
    await waitForTcpClose(events, tracer);
    const st = tracer.stats();
    t.diagnostic(`stats ${JSON.stringify(st)}; ${ringTraffic} bytes through a ${ringBytes}-byte ring`);
    assert.ok(ringTraffic > ringBytes, 'the ring wrapped');
    // On 2 shared cores the reader can be descheduled long enough for this ring to fill:
    // such records are counted (ring_full). Every record that did arrive must be exact.
    const open = events.find((e) => e.type === tg_event_type.TG_EV_CONN_OPEN)!;
    assert.ok(open);
    const want = LOOP_SENT;
    let checked = 0;
    for (const dir of [tg_dir.TG_DIR_EGRESS, tg_dir.TG_DIR_INGRESS]) {
      let last = -1;
      for (const e of events) {
        if (e.type !== tg_event_type.TG_EV_DATA || e.connId !== open.connId || e.dir !== dir) continue;
        assert.ok(e.pos > last, 'ring order is stream order');
        last = e.pos;
        assert.equal(e.len, Math.min(e.origLen, 2048));
        assert.deepEqual(e.payload, want.subarray(e.pos, e.pos + e.len), `payload at ${e.pos}`);
        checked++;
      }
    }
    assert.ok(checked > 50, `${checked} records checked`);
    const close = events.find((e) => e.type === tg_event_type.TG_EV_CONN_CLOSE && e.connId === open.connId);
    if (close || st.ring_full === 0) {
      assert.ok(close, 'close event');
      assert.equal(close.bytesSent, want.length);
      assert.equal(close.bytesRecv, want.length);
    }
    if (st.ring_full === 0) {
      const s = streams(events);
      assert.deepEqual(s.get(`${open.connId}/${tg_dir.TG_DIR_EGRESS}`)!.bytes, want);
      assert.deepEqual(s.get(`${open.connId}/${tg_dir.TG_DIR_INGRESS}`)!.bytes, want);
    }
  } finally {
    tracer?.close();
    server.kill('SIGKILL');
  }
});

/** The process's mappings of BPF maps: [length, resident bytes] per mapping. */
function bpfMapMappings(): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let cur: [number, number] | undefined;
  for (const line of fs.readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (m) {
      cur = m[3].includes('bpf-map') ? [parseInt(m[2], 16) - parseInt(m[1], 16), 0] : undefined;
      if (cur) out.push(cur);
    } else if (cur && line.startsWith('Rss:')) cur[1] = Number(/(\d+)/.exec(line)![1]) * 1024;
  }
  return out;
}

test('socket tracer: only a window of the ring is resident; records straddling its end arrive whole', { timeout: 60_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const { child: server, port } = await startEcho();
  const events: Ev[] = [];
  let tracer: SocketTracer | undefined;
  let laps = 0;
  try {
    // Only the echo server's records: each lap of this small ring ends inside one of them
    // unless a record happens to end exactly on the boundary.
    const ringBytes = 128 * 1024;
    const resident = () => bpfMapMappings().reduce((n, [, rss]) => n + rss, 0);
    const before = resident();
    tracer = openSocketTracer({ connMax: 4096, ringBytes, captureMax: 2048, targetPid: server.pid! }, (ring, index, count) => {
      for (let i = 0; i < count; i++) laps += ((index[2 * i + 1] + 8 + 7) & ~7) / ringBytes;
      collect(ring, index, count, () => true, events);
    });
    const py = pyClient(port, 'loop');
    await expectLine(py.lines, 'done');
    await waitForTcpClose(events, tracer);
    const st = tracer.stats();
    // The mapping is 2 x 128 KiB of address space; what the reader keeps resident between
    // batches is its two position pages and the chunk it reads next.
    const kept = resident() - before;
    t.diagnostic(`ring pages resident after the traffic: ${kept} bytes`);
    assert.ok(kept > 0 && kept < ringBytes / 2, `${kept} bytes of the ring resident`);
    const straddlers = events.filter((e) => e.off + e.recLen > ringBytes);
    t.diagnostic(`${events.length} records, ${laps.toFixed(1)} laps, ${straddlers.length} straddling the end, ring_full ${st.ring_full}`);
    assert.ok(laps > 1, 'the ring wrapped');
    assert.ok(straddlers.some((e) => e.type === tg_event_type.TG_EV_DATA), 'a data record straddled the end of the ring');
    const want = LOOP_SENT;
    for (const e of events) {
      if (e.type !== tg_event_type.TG_EV_DATA) continue;
      assert.deepEqual(e.payload, want.subarray(e.pos, e.pos + e.len), `payload at ${e.pos}${e.off + e.recLen > ringBytes ? ' (straddling)' : ''}`);
    }
    if (st.ring_full === 0) {
      // Nothing dropped: every byte the server read and wrote came through exactly once.
      const s = streams(events);
      const conn = events.find((e) => e.type === tg_event_type.TG_EV_DATA)!.connId;
      assert.deepEqual(s.get(`${conn}/${tg_dir.TG_DIR_EGRESS}`)!.bytes, want);
      assert.deepEqual(s.get(`${conn}/${tg_dir.TG_DIR_INGRESS}`)!.bytes, want);
    }
  } finally {
    tracer?.close();
    server.kill('SIGKILL');
  }
});

test('socket tracer: a program that fails to load or attach is reported, the others keep tracing', { timeout: 60_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const { child: server, port } = await startServer();
  const events: Ev[] = [];
  let tracer: SocketTracer | undefined;
  try {
    // A real verifier rejection and a failed attach.
    tracer = openWithFaults('load:tg_in_close,attach:tg_out_accept4', { connMax: 4096 }, (ring, index, count) => collect(ring, index, count, (_pid, comm) => comm === 'curl', events));
    const r = tracer.report;
    t.diagnostic(`failed: ${r.failed.map((f) => `${f.name}: ${f.error.split('\n')[0]}`).join('; ')}`);
    assert.deepEqual(r.failed.map((f) => f.name).sort(), ['tg_in_close', 'tg_out_accept4']);
    assert.match(r.failed.find((f) => f.name === 'tg_in_close')!.error, /^load: /);
    assert.match(r.failed.find((f) => f.name === 'tg_out_accept4')!.error, /^attach: /);
    assert.equal(r.attached.length, EXPECTED_PROGRAMS.length - 2);
    assert.ok(!r.attached.includes('tg_in_close'));
    const res = await curl([`http://127.0.0.1:${port}/hello`]);
    assert.equal(res.stdout, 'hello world\n');
    await waitFor(() => events.filter((e) => e.type === tg_event_type.TG_EV_DATA).length >= 2, 5000);
    assert.ok(events.some((e) => e.type === tg_event_type.TG_EV_CONN_OPEN && e.role === tg_role.TG_ROLE_CLIENT));
    assert.ok(events.some((e) => e.type === tg_event_type.TG_EV_DATA && e.dir === tg_dir.TG_DIR_EGRESS && e.payload.toString().startsWith('GET /hello ')));
    assert.equal(events.filter((e) => e.type === tg_event_type.TG_EV_CONN_CLOSE).length, 0, 'close is the program that did not load');
  } finally {
    closeLeavingNoPrograms(tracer, server);
  }
});

for (const walk of ['auto', 'unrolled'] as const) {
  test(`socket tracer: sendmmsg/recvmmsg of 20 datagrams (iovWalk ${walk})`, { timeout: 60_000 }, async (t) => {
    if (!requireBpf(t)) return;
    const bin = path.join(os.tmpdir(), `telegen-udp-mmsg-${process.pid}`);
    execFileSync('gcc', ['-O1', '-Wall', '-o', bin, path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'mmsg', 'udp-mmsg.c')]);
    const events: Ev[] = [];
    let tracer: SocketTracer | undefined;
    let cpid = -1;
    try {
      tracer = openSocketTracer({ connMax: 4096, iovWalk: walk }, (ring, index, count) => collect(ring, index, count, (pid) => pid === cpid, events));
      const child = spawn(bin, [], { stdio: ['ignore', 'pipe', 'inherit'] });
      cpid = child.pid!;
      const [out] = (await once(child.stdout!, 'data')) as [Buffer];
      assert.equal(out.toString().trim(), 'sent 20 received 20');
      const data = (dir: number) => events.filter((e) => e.type === tg_event_type.TG_EV_DATA && e.proto === tg_proto.TG_PROTO_UDP && e.dir === dir);
      const reported = walk === 'auto' ? 20 : 4;
      await waitFor(() => data(tg_dir.TG_DIR_EGRESS).length >= reported && data(tg_dir.TG_DIR_INGRESS).length >= reported, 5000);
      await new Promise((r) => setTimeout(r, 200));
      const want = Array.from({ length: reported }, (_, i) => `dgram-${String(i).padStart(2, '0')}:payload-${String(i).padStart(2, '0')}`);
      // One record per datagram, both iovecs of each joined, in order; the unrolled exits report 4.
      assert.deepEqual(data(tg_dir.TG_DIR_EGRESS).map((e) => e.payload.toString()), want);
      assert.deepEqual(data(tg_dir.TG_DIR_INGRESS).map((e) => e.payload.toString()), want);
      const rx = data(tg_dir.TG_DIR_INGRESS)[0], tx = data(tg_dir.TG_DIR_EGRESS)[0];
      assert.equal(rx.lport, tx.rport, 'the receiver\'s port is the sender\'s peer');
    } finally {
      tracer?.close();
      fs.rmSync(bin, { force: true });
    }
  });
}

test('socket tracer: a bpf_loop exit the kernel refuses is replaced by its unrolled twin, not reported lost', { timeout: 60_000 }, async (t) => {
  if (!requireBpf(t)) return;
  let tracer: SocketTracer | undefined;
  try {
    tracer = openWithFaults('load:tg_out_writev', { connMax: 4096 }, () => undefined);
    const r = tracer.report;
    assert.deepEqual(r.failed, []);
    assert.ok(r.attached.includes('tg_out_writev_unrolled') && !r.attached.includes('tg_out_writev'));
    assert.ok(r.attached.includes('tg_out_sendmsg') && !r.attached.includes('tg_out_sendmsg_unrolled'), 'the other exits keep bpf_loop');
    assert.equal(r.attached.length, EXPECTED_PROGRAMS.length);
    assert.equal(r.iovMax, tg_socket_limits.TG_IOV_MAX, 'one call walks only 10 iovecs now');
  } finally {
    tracer?.close();
  }
});

test('socket tracer: a process exiting with open sockets is announced once', { timeout: 60_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const { child: server, port } = await startEcho();
  const events: Ev[] = [];
  let tracer: SocketTracer | undefined;
  let pyPid = -1;
  try {
    tracer = openSocketTracer({ connMax: 4096 }, (ring, index, count) => collect(ring, index, count, (pid) => pid === pyPid, events));
    const py = pyClient(port, 'exit');
    pyPid = py.child.pid!;
    await once(py.child, 'exit');
    await waitFor(() => events.some((e) => e.type === tg_event_type.TG_EV_PROC_EXIT), 5000);
    const exits = events.filter((e) => e.type === tg_event_type.TG_EV_PROC_EXIT);
    assert.equal(exits.length, 1);
    assert.equal(exits[0].pid, pyPid);
    assert.equal(exits[0].comm, 'python3');
    assert.equal(exits[0].connId, 0);
    assert.ok(events.some((e) => e.type === tg_event_type.TG_EV_DATA && e.payload.toString() === 'bye'));
    // The UDP socket was close()d before; the TCP one only went with the process.
    assert.equal(events.filter((e) => e.type === tg_event_type.TG_EV_CONN_CLOSE && e.proto === tg_proto.TG_PROTO_TCP).length, 0);
  } finally {
    tracer?.close();
    server.kill('SIGKILL');
  }
});
