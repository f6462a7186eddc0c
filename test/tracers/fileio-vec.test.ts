// File I/O tracer against strace, the independent oracle (-f -y names the file behind every fd):
// bytes moved with readv/writev/preadv/pwritev(2) and fdatasync are counted as read/write/pread/
// pwrite/fsync, and I/O through an fd made by dup, dup2, dup3 or fcntl(F_DUPFD*) counts for the
// file it names — which is how a shell's `cmd > file` (open, dup2 onto fd 1, exec) writes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { requireBpf, startAgent, waitFor } from '../helpers/agent';
import { latestMetrics, pointsWhere, tracerConfig } from './helpers';

const FIXTURE = path.join(__dirname, '..', '..', '..', 'test', 'tracers', 'fixtures', 'file-vec-dup.c');
const OP: Record<string, string> = {
  openat: 'open', openat2: 'open', read: 'read', readv: 'read', write: 'write', writev: 'write', pread64: 'pread', preadv: 'pread', preadv2: 'pread',
  pwrite64: 'pwrite', pwritev: 'pwrite', pwritev2: 'pwrite', fsync: 'fsync', fdatasync: 'fsync', close: 'close',
};
const TRACE = [...Object.keys(OP), 'dup', 'dup2', 'dup3', 'fcntl'].join(',');

/** pid → operation → [calls, bytes] of every call strace saw on a file under `dir`. */
function straceCounts(file: string, dir: string): Map<number, Record<string, [number, number]>> {
  const out = new Map<number, Record<string, [number, number]>>();
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    // "123 writev(3</tmp/x/vec.bin>, [...], 2) = 2000", "123 openat(AT_FDCWD</tmp>, "/tmp/x/f", ...) = 3</tmp/x/f>";
    // strace pads a pid below 10000 to 5 columns ("4197  write(...").
    const m = /^(\d+) +(\w+)\((\w+)<([^>]*)>.*\)\s+= (-?\d+)(?:<([^>]*)>)?/.exec(line);
    if (!m || !OP[m[2]]) continue;
    const [, pid, sys, , fdPath, ret, retPath] = m;
    const p = sys.startsWith('openat') ? retPath : fdPath;
    if (!p?.startsWith(`${dir}/`)) continue;
    const ops = out.get(Number(pid)) ?? {};
    const c = (ops[OP[sys]] ??= [0, 0]);
    c[0]++;
    if (!['open', 'close', 'fsync'].includes(OP[sys])) c[1] += Number(ret);
    out.set(Number(pid), ops);
  }
  return out;
}

/** operation → [calls, bytes] the agent exported for one process under `dir`. */
function agentCounts(dataDir: string, pid: number, dir: string): Record<string, [number, number]> {
  const m = latestMetrics(dataDir);
  const got: Record<string, [number, number]> = {};
  for (const p of pointsWhere(m, 'telegen.file.operation.duration', { 'process.pid': pid, 'file.directory': dir })) (got[String(p.attributes['telegen.file.operation'])] ??= [0, 0])[0] += p.count ?? 0;
  for (const p of pointsWhere(m, 'telegen.file.operation.size', { 'process.pid': pid, 'file.directory': dir })) got[String(p.attributes['telegen.file.operation'])][1] += p.sum ?? 0;
  return got;
}

test('fileio: vectored reads/writes, fdatasync, and I/O through dup/dup2/dup3/F_DUPFD fds (shell redirection) equal strace\'s', { timeout: 90_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tgfio-vec-'));
  const bin = path.join(tmp, 'vec');
  execFileSync('gcc', ['-O1', '-o', bin, FIXTURE]);
  const dir = path.join(tmp, 'data');
  fs.mkdirSync(dir);
  const agent = await startAgent({ config: tracerConfig({ fileio: { enabled: true, max_directories: 100_000, poll_ms: 50 } }), env: { TELEGEN_METRICS_INTERVAL_MS: '1000' } });
  try {
    const trace = path.join(tmp, 'strace.txt');
    const strace = (args: string[]) => execFileSync('strace', ['-f', '-y', '-qq', '-o', trace, '-e', `trace=${TRACE}`, ...args], { encoding: 'utf8' });
    strace([bin, dir]);
    const vec = straceCounts(trace, dir);
    // bash: a loop's output redirected (open, fcntl F_DUPFD to save fd 1, dup2 onto 1, writes,
    // dup2 back), then `exec > file` and exec of /bin/echo, whose write goes to fd 1.
    strace(['bash', '-c', 'for i in 1 2 3; do echo line$i; done > "$1"; echo not-a-file; exec > "$2"; exec /bin/echo done', '_', path.join(dir, 'loop'), path.join(dir, 'ex')]);
    const sh = straceCounts(trace, dir);
    assert.equal(vec.size, 1);
    assert.equal(sh.size, 1);
    // What strace saw, so the oracle itself is as planned.
    assert.deepEqual([...vec.values()][0], { open: [1, 0], write: [10, 8237], pwrite: [6, 8005], fsync: [2, 0], read: [3, 1500], pread: [3, 1100], close: [5, 0] });
    assert.deepEqual([...sh.values()][0], { open: [2, 0], write: [4, 23], close: [3, 0] });
    const expect = new Map([...vec, ...sh]);

    const total = (r: Record<string, [number, number]>) => Object.values(r).reduce((n, [c]) => n + c, 0);
    await waitFor(() => [...expect].every(([pid, ops]) => total(agentCounts(agent.dataDir, pid, dir)) >= total(ops)), 30_000).catch(() => { /* compared below */ });
    await new Promise((r) => setTimeout(r, 2500));
    for (const [pid, ops] of expect) assert.deepEqual(agentCounts(agent.dataDir, pid, dir), ops, `pid ${pid}`);
    // The exec'd echo's write and close are its own (same pid, new comm).
    const [shPid] = sh.keys();
    const echo = pointsWhere(latestMetrics(agent.dataDir), 'telegen.file.operation.size', { 'process.pid': shPid, 'file.directory': dir, 'process.executable.name': 'echo' });
    assert.deepEqual(echo.map((p) => [p.attributes['telegen.file.operation'], p.count, p.sum]), [['write', 1, 5]]);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
    assert.equal(await agent.stop(), 0);
  }
});

test('fileio: dd with O_DIRECT (oflag/iflag=direct) and conv=fdatasync, its files dup2()ed onto fd 0/1, equals strace', { timeout: 90_000 }, async (t) => {
  if (!requireBpf(t)) return;
  // /var/tmp is not tmpfs on most hosts: O_DIRECT goes to the block device. Its files sit right
  // in dir, which has the 3 components file.directory keeps (directory_depth).
  const dir = fs.mkdtempSync(path.join(fs.existsSync('/var/tmp') ? '/var/tmp' : os.tmpdir(), 'tgfio-dd-'));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tgfio-dd-strace-'));
  const out = path.join(dir, 'out');
  const agent = await startAgent({ config: tracerConfig({ fileio: { enabled: true, max_directories: 100_000, poll_ms: 50 } }), env: { TELEGEN_METRICS_INTERVAL_MS: '1000' } });
  try {
    const trace = path.join(tmp, 'strace.txt');
    const strace = (args: string[]) => execFileSync('strace', ['-f', '-y', '-qq', '-o', trace, '-e', `trace=${TRACE}`, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    strace(['dd', 'if=/dev/zero', `of=${out}`, 'bs=4096', 'count=8', 'oflag=direct', 'conv=fdatasync']);
    const w = straceCounts(trace, dir);
    strace(['dd', `if=${out}`, 'of=/dev/null', 'bs=8192', 'iflag=direct']);
    const r = straceCounts(trace, dir);
    assert.deepEqual([...w.values()], [{ open: [1, 0], write: [8, 32768], fsync: [1, 0], close: [2, 0] }]);
    assert.deepEqual([...r.values()], [{ open: [1, 0], read: [5, 32768], close: [2, 0] }]);
    const expect = new Map([...w, ...r]);
    await waitFor(() => [...expect.keys()].every((pid) => (agentCounts(agent.dataDir, pid, dir).close?.[0] ?? 0) >= 2), 30_000).catch(() => { /* compared below */ });
    await new Promise((res) => setTimeout(res, 2500));
    for (const [pid, ops] of expect) assert.deepEqual(agentCounts(agent.dataDir, pid, dir), ops, `dd pid ${pid}`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(await agent.stop(), 0);
  }
});

// openat2(2) (no libc wrapper in glibc 2.36: the raw syscall), then 3 writes and a close.
const OPENAT2_PY = `
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
how = struct.pack('QQQ', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644, 0)
fd = libc.syscall(437 if os.uname().machine == 'x86_64' else 437, -100, sys.argv[1].encode(), how, len(how))
if fd < 0: sys.exit('openat2: ' + os.strerror(ctypes.get_errno()))
for i in range(3): os.write(fd, b'z' * 100)
os.close(fd)
`;

test('fileio: a file opened with openat2 is traced like an openat one, as strace counts it', { timeout: 90_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tgfio-oa2-'));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tgfio-oa2-strace-'));
  const agent = await startAgent({ config: tracerConfig({ fileio: { enabled: true, max_directories: 100_000, poll_ms: 50 } }), env: { TELEGEN_METRICS_INTERVAL_MS: '1000' } });
  try {
    const trace = path.join(tmp, 'strace.txt');
    execFileSync('strace', ['-f', '-y', '-qq', '-o', trace, '-e', `trace=${TRACE}`, 'python3', '-c', OPENAT2_PY, path.join(dir, 'f')]);
    const seen = straceCounts(trace, dir);
    assert.deepEqual([...seen.values()], [{ open: [1, 0], write: [3, 300], close: [1, 0] }]);
    const [[pid, ops]] = [...seen];
    await waitFor(() => (agentCounts(agent.dataDir, pid, dir).close?.[0] ?? 0) >= 1, 30_000).catch(() => { /* compared below */ });
    await new Promise((res) => setTimeout(res, 2500));
    assert.deepEqual(agentCounts(agent.dataDir, pid, dir), ops);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(await agent.stop(), 0);
  }
});

test('fileio: I/O on fds a shell\'s children inherit (`exec >>log; date; date`, `exec <in; cat`) counts for each child and its file, as strace counts it', { timeout: 90_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tgfio-inh-'));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tgfio-inh-strace-'));
  fs.writeFileSync(path.join(dir, 'in'), 'x'.repeat(3000));
  const agent = await startAgent({ config: tracerConfig({ fileio: { enabled: true, max_directories: 100_000, poll_ms: 50 } }), env: { TELEGEN_METRICS_INTERVAL_MS: '1000' } });
  try {
    const trace = path.join(tmp, 'strace.txt');
    // The children open nothing: date writes to fd 1, cat reads fd 0 and writes fd 1, all opened
    // by the shell before the fork.
    execFileSync('strace', ['-f', '-y', '-qq', '-o', trace, '-e', `trace=${TRACE}`, 'sh', '-c', 'exec >>"$1"; date; date; exec <"$2"; cat', '_', path.join(dir, 'log'), path.join(dir, 'in')]);
    const seen = straceCounts(trace, dir);
    // What strace saw, so the oracle itself is as planned: the shell only opens, the 3 children
    // only move bytes and close what they inherited.
    const children = [...seen].filter(([, ops]) => !ops.open);
    assert.equal(children.length, 3, JSON.stringify([...seen]));
    assert.deepEqual(children.map(([, ops]) => Object.keys(ops).sort()), [['close', 'write'], ['close', 'write'], ['close', 'read', 'write']]);
    assert.equal(children[2][1].read[1], 3000);
    await waitFor(() => children.every(([pid]) => (agentCounts(agent.dataDir, pid, dir).close?.[0] ?? 0) >= 1), 30_000).catch(() => { /* compared below */ });
    await new Promise((res) => setTimeout(res, 2500));
    for (const [pid, ops] of seen) assert.deepEqual(agentCounts(agent.dataDir, pid, dir), ops, `pid ${pid}`);
    // Each child under its own name.
    const [datePid] = children[0];
    const w = pointsWhere(latestMetrics(agent.dataDir), 'telegen.file.operation.size', { 'process.pid': datePid, 'file.directory': dir });
    assert.deepEqual(w.map((p) => [p.attributes['telegen.file.operation'], p.attributes['process.executable.name']]), [['write', 'date']]);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(await agent.stop(), 0);
  }
});
