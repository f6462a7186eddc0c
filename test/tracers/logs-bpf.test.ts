// bpf/logs.bpf.c on its own (no agent): a process selected by name has what it writes to fd 1
// and 2 reported — write and writev, cut at capture_max, only bytes the kernel accepted — while
// its writes to other fds, and an unselected process's stdout, are not. With select_servers, a
// process that accepts a TCP connection is selected from then on (a Unix socket does not count).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { requireBpf } from '../helpers/agent';
import { BpfObject } from '../../host/src/tracers/bpf-object';
import { parseLogWrite, attachLogPrograms } from '../../host/src/tracers/logs';

// Writes: fd 1 with write(), fd 2 with writev(), 3000 bytes to fd 1 (over capture_max), a file
// on fd 3, then a non-blocking pipe on fd 1 filled until EAGAIN (failed writes must not appear).
const SCRIPT = `
import os, fcntl, sys
os.write(1, b"plain line\\n")
os.writev(2, [b"ERROR two ", b"iovecs\\n"])
os.writev(1, [b"%02d " % i for i in range(20)] + [b"many\\n"])
os.write(1, b"x" * 3000 + b"\\n")
f = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT)
os.dup2(f, 3)
os.write(3, b"not stdout\\n")
r, w = os.pipe()
os.dup2(w, 1)
fcntl.fcntl(1, fcntl.F_SETFL, os.O_NONBLOCK)
n = 0
try:
    while True:
        n += os.write(1, b"y" * 4096)
except BlockingIOError:
    pass
os.write(2, ("filled %d\\n" % n).encode())
`;

// Accepts one connection (TCP, or Unix with "unix"), then prints.
const SERVE = `
import os, socket, sys, tempfile
os.write(1, b"before accept\\n")
if sys.argv[1] == "unix":
    path = os.path.join(tempfile.mkdtemp(), "s")
    l = socket.socket(socket.AF_UNIX); l.bind(path); l.listen(1)
    c = socket.socket(socket.AF_UNIX); c.connect(path)
else:
    l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(1)
    c = socket.create_connection(l.getsockname())
s, _ = l.accept()
os.write(1, b"after accept\\n")
`;

test('logs.bpf.c: stdout/stderr writes of a selected process, nothing else', { timeout: 120_000 }, (t) => {
  if (!requireBpf(t)) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-logs-bpf-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  // comm is the name the program was executed as: a link gives the selected process its own name.
  const selected = path.join(dir, 'tglogsel');
  const other = path.join(dir, 'tglogother');
  fs.symlinkSync('/usr/bin/python3', selected);
  fs.symlinkSync('/usr/bin/python3', other);
  fs.writeFileSync(path.join(dir, 'w.py'), SCRIPT);
  fs.writeFileSync(path.join(dir, 'serve.py'), SERVE);

  const obj = new BpfObject('logs', { rodata: { self_pid: process.pid, capture_max: 1024, select_servers: 1 } });
  t.after(() => obj.close());
  const key = Buffer.alloc(16); key.write('tglogsel');
  obj.update('tg_logs_comms', key, Buffer.from([1]));
  assert.ok(obj.programs.includes('tg_logs_out_writev_unrolled'), 'the twin for kernels without bpf_loop loads');
  const rep = attachLogPrograms(obj);
  assert.deepEqual(rep.failed, []);
  assert.equal(rep.attached.filter((p) => p.startsWith('tg_logs_out_writev')).length, 1, 'one writev exit attached');
  obj.openRing('tg_logs_ring');

  const a = spawnSync(selected, [path.join(dir, 'w.py'), path.join(dir, 'out-a')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  assert.equal(a.status, 0, a.stderr);
  const b = spawnSync(other, [path.join(dir, 'w.py'), path.join(dir, 'out-b')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  assert.equal(b.status, 0, b.stderr);
  const tcp = spawnSync(other, [path.join(dir, 'serve.py'), 'tcp'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  assert.equal(tcp.status, 0, tcp.stderr);
  const unix = spawnSync(other, [path.join(dir, 'serve.py'), 'unix'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  assert.equal(unix.status, 0, unix.stderr);
  const filled = Number(/filled (\d+)/.exec(a.stderr)![1]);

  const writes = obj.pollRing(100_000).map(parseLogWrite);
  const mine = writes.filter((w) => w.pid === a.pid);
  assert.deepEqual(writes.filter((w) => w.pid === tcp.pid).map((w) => w.bytes.toString()), ['after accept\n'], 'selected by its TCP accept, from then on');
  assert.equal(writes.filter((w) => w.pid === unix.pid).length, 0, 'a Unix socket accept does not select');
  assert.equal(writes.filter((w) => w.pid === b.pid).length, 0, 'an unselected process is not captured');
  assert.ok(mine.every((w) => w.comm === 'tglogsel' && (w.fd === 1 || w.fd === 2)));
  assert.ok(mine.every((w) => w.tid === a.pid), 'single-threaded: the thread is the process');
  const text = mine.map((w) => w.bytes.toString('latin1'));
  assert.equal(text[0], 'plain line\n');
  assert.equal(mine[0].fd, 1);
  assert.equal(text[1], 'ERROR two iovecs\n', 'writev iovecs joined');
  assert.equal(mine[1].fd, 2);
  // 21 iovecs (as node's stdout writes what piled up in a full pipe): all of them, once.
  assert.equal(text[2], `${Array.from({ length: 20 }, (_, i) => `${String(i).padStart(2, '0')} `).join('')}many\n`, 'every iovec of a writev');
  assert.equal(mine[2].truncated, false);
  assert.equal(text[3], 'x'.repeat(1024), 'cut at capture_max');
  assert.equal(mine[3].truncated, true);
  assert.ok(!text.some((s) => s.includes('not stdout')), 'fd 3 is not captured');
  // The non-blocking fill: only the writes that moved bytes, and exactly the bytes they moved.
  const fill = mine.slice(4, -1);
  assert.ok(fill.length >= 1);
  assert.ok(fill.every((w) => w.fd === 1 && /^y+$/.test(w.bytes.toString('latin1'))));
  // Pipe writes of 4096 bytes are all-or-nothing: every reported one moved 4096 (cut to 1024).
  assert.ok(fill.every((w) => w.bytes.length === 1024 && w.truncated));
  assert.equal(fill.length * 4096, filled, 'one event per successful write, none for EAGAIN');
  assert.equal(text[text.length - 1], `filled ${filled}\n`);
});
