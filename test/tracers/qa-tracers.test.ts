// Regression tests for what a user saw wrong in the kernel tracers' output (TCP metrics, file
// I/O, profiles), each with the real programs that showed it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'net';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, execFileSync } from 'child_process';
import { once } from 'events';
import { requireBpf, startAgent, waitFor } from '../helpers/agent';
import { latestMetrics, pointsWhere, readLogs, sumWhere, tracerConfig } from './helpers';
import { Profiler } from '../../host/src/profile/profiler';
import { profileSchema } from '../../host/src/profile/config';
import { ProfileSample } from '../../host/src/profile/model';

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

// Opens four files close-on-exec and writes nothing to them, then execs itself: the new image's
// socket pair and pipe get the fd numbers the files had. Then it writes 3 times to a file it opens.
const EXEC_FDS_C = `
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
int main(int argc, char **argv) {
  char buf[1000];
  memset(buf, 'x', sizeof buf);
  if (argc > 2) {
    int sv[2], p[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || pipe(p)) return 2;
    for (int i = 0; i < 10; i++) {
      if (write(sv[0], buf, 1000) != 1000 || read(sv[1], buf, 1000) != 1000) return 3;
      if (write(p[1], buf, 1000) != 1000 || read(p[0], buf, 1000) != 1000) return 4;
    }
    char n[512];
    snprintf(n, sizeof n, "%s/after", argv[1]);
    int fd = open(n, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    for (int i = 0; i < 3; i++) if (write(fd, buf, 100) != 100) return 5;
    close(fd);
    printf("%d %d %d %d %d\\n", getpid(), sv[0], sv[1], p[0], p[1]);
    return 0;
  }
  for (int i = 0; i < 4; i++) {
    char n[512];
    snprintf(n, sizeof n, "%s/cloexec-%d", argv[1], i);
    if (open(n, O_CREAT | O_WRONLY | O_CLOEXEC, 0644) < 0) return 6;
  }
  execl(argv[0], argv[0], argv[1], "child", (char *)0);
  return 7;
}
`;

test('fileio: after exec, the socket and pipe that reuse the fds of close-on-exec files are not counted as file I/O of their directory', { timeout: 90_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tgqa-exec-'));
  const bin = path.join(dir, 'exec-fds');
  execFileSync('gcc', ['-O1', '-o', bin, '-x', 'c', '-'], { input: EXEC_FDS_C });
  const data = path.join(dir, 'data');
  fs.mkdirSync(data);
  const agent = await startAgent({ config: tracerConfig({ fileio: { enabled: true, max_directories: 100_000, poll_ms: 50 } }), env: ENV });
  try {
    const [pid, ...fds] = execFileSync(bin, [data], { encoding: 'utf8' }).trim().split(' ').map(Number);
    // The fds the socket pair and pipe got are among the ones the four files had.
    assert.ok(fds.some((fd) => fd >= 3 && fd <= 6), `fds ${fds}`);
    const where = (op: string) => ({ 'process.pid': pid, 'file.directory': data, 'telegen.file.operation': op });
    const count = (m: Map<string, unknown>, op: string) => pointsWhere(m as ReturnType<typeof latestMetrics>, 'telegen.file.operation.duration', where(op)).reduce((n, p) => n + (p.count ?? 0), 0);
    await waitFor(() => count(latestMetrics(agent.dataDir), 'write') >= 3, 30_000);
    await new Promise((res) => setTimeout(res, 2500));
    const m = latestMetrics(agent.dataDir);
    assert.equal(count(m, 'open'), 5);
    assert.equal(count(m, 'write'), 3, 'only the writes to the file opened after exec');
    assert.equal(count(m, 'read'), 0, 'the socket and pipe reads are no file reads');
    assert.equal(count(m, 'close'), 1);
    const size = pointsWhere(m, 'telegen.file.operation.size', where('write'));
    assert.equal(size.reduce((n, p) => n + (p.sum ?? 0), 0), 300);
  } finally {
    assert.equal(await agent.stop(), 0);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

const HOT_LOOP_C = `
volatile unsigned long sink;
__attribute__((noinline)) void qa_burn(void) { for (unsigned long i = 0; i < 4000000; i++) sink += i * 7; }
int main(void) { for (;;) qa_burn(); }
`;

test('profile: a stripped copy of a binary profiled first does not hide the symbols of the unstripped binary (same build-id) profiled later', { timeout: 60_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tgqa-prof-'));
  const full = path.join(dir, 'qa-hot');
  const stripped = path.join(dir, 'qa-hot-stripped');
  execFileSync('gcc', ['-O0', '-fno-omit-frame-pointer', '-o', full, '-x', 'c', '-'], { input: HOT_LOOP_C });
  fs.copyFileSync(full, stripped);
  execFileSync('strip', ['--strip-all', stripped]);
  // The unstripped one waits stopped (as a shell that execs it once continued): no sample of it
  // may reach the symbolizer before the stripped copy's.
  const a = spawn(stripped, [], { stdio: 'ignore' });
  const b = spawn('sh', ['-c', `kill -STOP $$; exec ${full}`], { stdio: 'ignore' });
  await waitFor(() => /^State:\s+T/m.test(fs.readFileSync(`/proc/${b.pid}/status`, 'utf8')), 10_000, 20);
  const cfg = profileSchema.parse({ enabled: true, frequency_hz: 499, interval_ms: 600_000, pids: [a.pid!, b.pid!], pprof: { enabled: false } });
  const p = new Profiler({ cfg, dataDir: dir, keepSamples: true });
  const leaves = (ss: ProfileSample[], pid: number) => {
    const out = new Map<string, number>();
    for (const s of ss) if (s.pid === pid && s.stack.length) { const n = s.stack[s.stack.length - 1].name; out.set(n, (out.get(n) ?? 0) + s.count); }
    return [...out.entries()].sort((x, y) => y[1] - x[1]);
  };
  try {
    await p.drainNow(true);
    await new Promise((r) => setTimeout(r, 1500));
    const first = await p.drainNow(true);
    const strippedLeaves = leaves(first!.samples, a.pid!);
    assert.match(strippedLeaves[0]?.[0] ?? '', /^qa-hot-stripped\+0x[0-9a-f]+$/, JSON.stringify(strippedLeaves));
    a.kill('SIGSTOP');
    b.kill('SIGCONT');
    await waitFor(() => fs.readlinkSync(`/proc/${b.pid}/exe`) === full, 10_000, 20);
    await new Promise((r) => setTimeout(r, 1500));
    const second = await p.drainNow(true);
    const fullLeaves = leaves(second!.samples, b.pid!);
    assert.equal(fullLeaves[0]?.[0], 'qa_burn', JSON.stringify(fullLeaves));
  } finally {
    await p.close();
    a.kill('SIGKILL');
    b.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** Runs a command to completion in `cwd`; its pid and exit code. */
async function runIn(cwd: string, cmd: string, args: string[]): Promise<{ pid: number; code: number | null }> {
  const p = spawn(cmd, args, { cwd, stdio: 'ignore' });
  const [code] = await once(p, 'exit') as [number | null];
  return { pid: p.pid!, code };
}

test('security: a watched file opened by a relative name, through "//", "." or "..", through a symlink, or with open(2) raises the alert, with the path it resolved to', { timeout: 90_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tgqa-sec-'));
  const policyDir = path.join(dir, 'policy');
  for (const d of [policyDir, path.join(dir, 'vault'), path.join(dir, 'other')]) fs.mkdirSync(d);
  const secret = path.join(dir, 'vault', 'secret');
  fs.writeFileSync(secret, 'token\n');
  fs.writeFileSync(path.join(dir, 'other', 'plain'), 'nothing\n');
  fs.symlinkSync(secret, path.join(dir, 'file-link'));
  fs.symlinkSync(path.join(dir, 'vault'), path.join(dir, 'dir-link'));
  fs.writeFileSync(path.join(policyDir, 'rules.yaml'), `rules:
  - { id: qa-vault-read, description: vault read, event: open, severity: warn, match: { path_prefix: ["${dir}/vault/"], access: read } }
`);
  const agent = await startAgent({ config: tracerConfig({ security: { enabled: true, policy_dir: policyDir, poll_ms: 50 } }) });
  try {
    const reads = [
      await runIn(dir, 'cat', [secret]), // the name the rule names: fired before too
      await runIn(dir, 'cat', ['vault/secret']),
      await runIn(path.join(dir, 'vault'), 'cat', ['secret']),
      await runIn(path.join(dir, 'other'), 'cat', ['../vault/secret']),
      await runIn(dir, 'cat', [`${dir}//vault/secret`]),
      await runIn(dir, 'cat', [`${dir}/vault/./secret`]),
      await runIn(dir, 'cat', [`${dir}/other/../vault/secret`]),
      await runIn(dir, 'cat', [path.join(dir, 'file-link')]),
      await runIn(dir, 'cat', [path.join(dir, 'dir-link', 'secret')]),
    ];
    // open(2), as musl's open() issues it on x86-64 (Alpine images): read, and a failed one.
    const legacy = process.arch === 'x64' ? [
      await runIn(dir, '/usr/bin/python3', ['-c', 'import ctypes, sys; sys.exit(0 if ctypes.CDLL(None).syscall(2, b"vault/secret", 0) >= 0 else 1)']),
    ] : [];
    reads.push(...legacy);
    const benign = await runIn(path.join(dir, 'vault'), 'cat', ['../other/plain']);
    for (const r of [...reads, benign]) assert.equal(r.code, 0);
    const alerts = () => readLogs(agent.dataDir).filter((l) => l.attributes['telegen.security.rule.id'] === 'qa-vault-read');
    await waitFor(() => reads.every((r) => alerts().some((l) => l.attributes['process.pid'] === r.pid)), 30_000).catch(() => {
      throw new Error(`alerts for ${alerts().map((l) => `${l.attributes['process.pid']} ${l.attributes['file.path']}`).join(', ')} of ${reads.map((r) => r.pid).join(', ')}`);
    });
    await new Promise((res) => setTimeout(res, 1000));
    const all = alerts();
    for (const r of reads) {
      const mine = all.filter((l) => l.attributes['process.pid'] === r.pid);
      assert.deepEqual(mine.map((l) => [l.attributes['file.path'], l.attributes['process.executable.name']]), [[secret, legacy.includes(r) ? 'python3' : 'cat']], `pid ${r.pid}`);
    }
    for (const r of legacy) assert.equal(all.find((l) => l.attributes['process.pid'] === r.pid)!.attributes['telegen.security.syscall'], 'open');
    assert.equal(all.filter((l) => l.attributes['process.pid'] === benign.pid).length, 0);
  } finally {
    assert.equal(await agent.stop(), 0);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('fileio: files opened with open(2) (musl\'s open() on x86-64) are traced like openat ones', { timeout: 90_000 }, async (t) => {
  if (!requireBpf(t)) return;
  if (process.arch !== 'x64') { t.skip('open(2) is an x86-64 syscall'); return; }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tgqa-open-'));
  const agent = await startAgent({ config: tracerConfig({ fileio: { enabled: true, max_directories: 100_000, poll_ms: 50 } }), env: ENV });
  try {
    const script = `import ctypes, os, sys
fd = ctypes.CDLL(None, use_errno=True).syscall(2, sys.argv[1].encode(), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
assert fd >= 0
for _ in range(3): os.write(fd, b'x' * 100)
os.close(fd)
print(os.getpid())`;
    const pid = Number(execFileSync('/usr/bin/python3', ['-c', script, path.join(dir, 'legacy.bin')], { encoding: 'utf8' }).trim());
    const where = (op: string) => ({ 'process.pid': pid, 'file.directory': dir, 'telegen.file.operation': op });
    const count = (m: ReturnType<typeof latestMetrics>, op: string) => pointsWhere(m, 'telegen.file.operation.duration', where(op)).reduce((n, p) => n + (p.count ?? 0), 0);
    await waitFor(() => count(latestMetrics(agent.dataDir), 'close') >= 1, 30_000);
    await new Promise((res) => setTimeout(res, 2500));
    const m = latestMetrics(agent.dataDir);
    assert.deepEqual(['open', 'write', 'close'].map((op) => count(m, op)), [1, 3, 1]);
    assert.equal(pointsWhere(m, 'telegen.file.operation.size', where('write')).reduce((n, p) => n + (p.sum ?? 0), 0), 300);
  } finally {
    assert.equal(await agent.stop(), 0);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('fileio: a file opened by a relative name (as PostgreSQL opens its data files) is counted under its real directory', { timeout: 90_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tgqa-rel-'));
  fs.mkdirSync(path.join(dir, 'base', 'db'), { recursive: true });
  const agent = await startAgent({ config: tracerConfig({ fileio: { enabled: true, max_directories: 100_000, poll_ms: 50, directory_depth: 4 } }), env: ENV });
  try {
    // cwd = dir; "base/db/1259" is a relative name, "missing" a relative name that fails.
    const script = `import os
fd = os.open('base/db/1259', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
for _ in range(2): os.write(fd, b'y' * 8192)
os.close(fd)
try: os.open('missing', os.O_RDONLY)
except FileNotFoundError: pass
print(os.getpid())`;
    const pid = Number(execFileSync('/usr/bin/python3', ['-c', script], { cwd: dir, encoding: 'utf8' }).trim());
    const real = path.join(dir, 'base', 'db');
    const at = (d: string, op: string) => ({ 'process.pid': pid, 'file.directory': d, 'telegen.file.operation': op });
    const count = (m: ReturnType<typeof latestMetrics>, d: string, op: string) => pointsWhere(m, 'telegen.file.operation.duration', at(d, op)).reduce((n, p) => n + (p.count ?? 0), 0);
    await waitFor(() => count(latestMetrics(agent.dataDir), real, 'close') >= 1, 30_000).catch(() => {
      const dirs = new Set(pointsWhere(latestMetrics(agent.dataDir), 'telegen.file.operation.duration', { 'process.pid': pid }).map((p) => p.attributes['file.directory']));
      throw new Error(`directories of ${pid}: ${[...dirs].join(', ')}`);
    });
    await new Promise((res) => setTimeout(res, 2500));
    const m = latestMetrics(agent.dataDir);
    assert.deepEqual(['open', 'write', 'close'].map((op) => count(m, real, op)), [1, 2, 1]);
    assert.equal(count(m, '(relative)', 'write'), 0);
    // A relative name that opened nothing has no file to resolve: it stays "(relative)".
    const failed = pointsWhere(m, 'telegen.file.operation.errors', at('(relative)', 'open'));
    assert.deepEqual(failed.map((p) => [p.attributes['error.type'], p.value]), [['ENOENT', 1]]);
  } finally {
    assert.equal(await agent.stop(), 0);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// A server that accepts and keeps each connection (never closing it itself), and prints its pid.
const HOLD_SERVER = `
import os, socket, sys
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(16)
print(os.getpid(), s.getsockname()[1], flush=True)
held = []
while True:
    c, _ = s.accept()
    held.append(c)
`;

test('tcp: a server connection\'s open (and, when the client resets it, its close) carry the process that accepted it', { timeout: 90_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const server = spawn('/usr/bin/python3', ['-c', HOLD_SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    let out = '';
    server.stdout!.on('data', (d) => { out += d; });
    await waitFor(() => out.includes('\n'), 10_000, 20);
    const [serverPid, port] = out.trim().split(' ').map(Number);
    assert.ok(serverPid > 0 && port > 0, `server said ${JSON.stringify(out)}`);
    const agent = await startAgent({ config: tracerConfig({ tcp: { enabled: true, poll_ms: 50, ports: [port] } }), env: ENV });
    try {
      for (let i = 0; i < 3; i++) {
        const c = net.connect(port, '127.0.0.1');
        await once(c, 'connect');
        await new Promise((res) => setTimeout(res, 100)); // accepted meanwhile
        c.resetAndDestroy();
        await once(c, 'close');
      }
      const srv = { 'server.port': port, 'telegen.tcp.role': 'server' };
      await waitFor(() => sumWhere(latestMetrics(agent.dataDir), 'telegen.tcp.connection.closes', srv) >= 3, 30_000);
      await new Promise((res) => setTimeout(res, 2500));
      const m = latestMetrics(agent.dataDir);
      const who = (name: string) => pointsWhere(m, name, srv).map((p) => [p.attributes['process.pid'], p.attributes['process.executable.name'], p.value]);
      assert.deepEqual(who('telegen.tcp.connection.opens'), [[serverPid, 'python3', 3]]);
      // The reset closed each connection in softirq, with no process to see: the accept named it.
      assert.deepEqual(who('telegen.tcp.connection.closes'), [[serverPid, 'python3', 3]]);
      assert.equal(sumWhere(m, 'telegen.tcp.connections.active', srv), 0);
    } finally {
      assert.equal(await agent.stop(), 0);
    }
  } finally {
    server.kill('SIGKILL');
  }
});
