// File I/O tracer against this kernel: a process the test starts does a known set of file
// operations (test/tracers/fixtures/file-ops.js, one syscall each) in a temp dir; the test reads
// what the agent exported (metrics.jsonl, logs.jsonl, /metrics) and expects exact counts, sizes
// and errors for that process and directory, one slow-operation log for a read that blocked on a
// FIFO, and the fd entry the process left open gone from the kernel map once it exited. Counting
// happens in the kernel (per process, directory, operation); once the process exited its series
// is exported with its final values and then neither in the kernel map nor in later exports.
// The test process's own write to a deep path shows the directory cut in the kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn } from 'child_process';
import { once } from 'events';
import { requireBpf, startAgent, waitFor } from '../helpers/agent';
import { latestMetrics, pointsWhere, readLogs, tracerConfig, sh, Point } from './helpers';
import { flattenMetrics } from '../helpers/otlp-receiver';

const FIXTURE = path.join(__dirname, '..', '..', '..', 'test', 'tracers', 'fixtures', 'file-ops.js');
const READ_NR = os.arch() === 'arm64' ? 63 : 0;
const SLOW_MS = 250;

const count = (pts: Point[]) => pts.reduce((s, p) => s + (p.count ?? 0), 0);
const sum = (pts: Point[]) => pts.reduce((s, p) => s + (p.sum ?? 0), 0);

/** One of the agent's maps, found through the map fds it holds (other agents may run on this machine). */
function mapId(agentPid: number, name: string): number {
  const ids = new Set<number>();
  for (const fd of fs.readdirSync(`/proc/${agentPid}/fdinfo`)) {
    try {
      const id = /^map_id:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${agentPid}/fdinfo/${fd}`, 'utf8'));
      if (id) ids.add(Number(id[1]));
    } catch { /* closed meanwhile */ }
  }
  const maps = JSON.parse(sh('bpftool', ['-j', 'map', 'show'])) as Array<{ id: number; name: string }>;
  const m = maps.find((x) => x.name === name && ids.has(x.id));
  assert.ok(m, `the agent holds ${name}`);
  return m.id;
}

/** The process's kernel histogram of one operation in one directory: the key is (pid, op,
 *  directory id = 64-bit FNV-1a of the directory name, comm). */
function histEntry(id: number, pid: number, op: number, dir: string, comm: string): boolean {
  let h = 0xcbf29ce484222325n;
  for (const b of Buffer.from(dir)) h = ((h ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn;
  const key = Buffer.alloc(32);
  key.writeUInt32LE(pid, 0);
  key.writeUInt32LE(op, 4);
  key.writeBigUInt64LE(h, 8);
  key.write(comm, 16);
  try {
    sh('bpftool', ['-j', 'map', 'lookup', 'id', String(id), 'key', 'hex', ...[...key].map((b) => b.toString(16).padStart(2, '0'))]);
    return true;
  } catch { return false; }
}

function fdEntry(mapId: number, pid: number, fd: number): string | undefined {
  const key = Buffer.alloc(8);
  key.writeUInt32LE(pid, 0);
  key.writeUInt32LE(fd, 4);
  try {
    const v = JSON.parse(sh('bpftool', ['-j', 'map', 'lookup', 'id', String(mapId), 'key', 'hex', ...[...key].map((b) => b.toString(16).padStart(2, '0'))])) as { value: string[] };
    const bytes = Buffer.from(v.value.map((x) => parseInt(x, 16)));
    return bytes.toString('utf8', 0, bytes.indexOf(0));
  } catch { return undefined; }
}

test('fileio: exact operations, sizes and errors per process and directory; slow read logged; leftover fd swept', { timeout: 90_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const agent = await startAgent({
    config: tracerConfig({ fileio: { enabled: true, slow_ms: SLOW_MS, max_directories: 100_000, poll_ms: 50, sweep_ms: 500 } }),
    env: { TELEGEN_METRICS_INTERVAL_MS: '1000' },
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-fileio-'));
  try {
    const st = await (await agent.api('/api/status')).json() as { tracers: Array<{ name: string; ok: boolean; detail: string }> };
    const fio = st.tracers.find((x) => x.name === 'fileio');
    assert.ok(fio?.ok, JSON.stringify(fio));
    assert.equal(fio!.detail, '40 programs attached');
    fs.mkdirSync(path.join(dir, 'sub'));
    sh('mkfifo', [path.join(dir, 'fifo')]);

    const child = spawn(process.execPath, [FIXTURE, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = once(child, 'exit');
    const [line] = await once(child.stdout!, 'data') as [Buffer];
    const [, fifoFd, leftFd] = /^blocking (\d+) (\d+)/.exec(String(line))!.map(Number);
    const pid = child.pid!;
    // Write only once the child sits in read(fifo): the read's latency is then at least the pause.
    await waitFor(() => {
      const f = fs.readFileSync(`/proc/${pid}/syscall`, 'utf8').split(' ');
      return Number(f[0]) === READ_NR && Number(f[1]) === fifoFd;
    }, 30_000, 20);
    const filesMap = mapId(agent.proc.pid!, 'tg_fileio_files');
    const histMap = mapId(agent.proc.pid!, 'tg_fileio_hists');
    assert.equal(fdEntry(filesMap, pid, leftFd), path.join(dir, 'left-open'), 'an open file is tracked by pid and fd');
    assert.ok(histEntry(histMap, pid, 3 /* write */, dir, 'node'), 'the process\'s writes are counted in the kernel under its directory');
    // This process, at a path deeper than directory_depth (3) with a doubled slash: counted under
    // its first three directory components.
    fs.mkdirSync(path.join(dir, 'a', 'b', 'c'), { recursive: true });
    fs.writeFileSync(`${dir}//a/b/c/deep.txt`, 'deep');
    await new Promise((r) => setTimeout(r, 2 * SLOW_MS));
    fs.writeFileSync(path.join(dir, 'fifo'), 'x');
    const [code] = await exited;
    assert.equal(code, 0);

    const mine = { 'process.pid': pid, 'file.directory': dir };
    const op = (o: string) => ({ ...mine, 'telegen.file.operation': o });
    await waitFor(() => count(pointsWhere(latestMetrics(agent.dataDir), 'telegen.file.operation.duration', op('close'))) >= 4
      && readLogs(agent.dataDir).some((l) => l.attributes['process.pid'] === pid), 30_000);
    await new Promise((r) => setTimeout(r, 2500));
    const m = latestMetrics(agent.dataDir);
    const dur = (o: string) => count(pointsWhere(m, 'telegen.file.operation.duration', op(o)));
    // Every operation timed once: 6 openat (one ENOENT), 7 read (one EISDIR, one on the FIFO).
    assert.deepEqual(['open', 'write', 'pwrite', 'fsync', 'read', 'pread', 'close'].map((o) => [o, dur(o)]),
      [['open', 6], ['write', 10], ['pwrite', 3], ['fsync', 2], ['read', 7], ['pread', 2], ['close', 4]]);
    const size = (o: string) => { const p = pointsWhere(m, 'telegen.file.operation.size', op(o)); return [count(p), sum(p)]; };
    assert.deepEqual(size('write'), [10, 40960]);
    assert.deepEqual(size('pwrite'), [3, 3000]);
    assert.deepEqual(size('read'), [6, 5 * 4096 + 1]);
    assert.deepEqual(size('pread'), [2, 1024]);
    const errs = pointsWhere(m, 'telegen.file.operation.errors', mine).map((p) => [p.attributes['telegen.file.operation'], p.attributes['error.type'], p.value]);
    assert.deepEqual(errs.sort(), [['open', 'ENOENT', 1], ['read', 'EISDIR', 1]]);
    assert.ok(pointsWhere(m, 'telegen.file.operation.duration', op('write')).every((p) => p.attributes['process.executable.name'] === 'node'));

    // Slow operations: the FIFO read, logged with its path and duration; nothing faster than slow_ms.
    const logs = readLogs(agent.dataDir).filter((l) => l.attributes['process.pid'] === pid);
    const fifoLogs = logs.filter((l) => l.attributes['file.path'] === path.join(dir, 'fifo'));
    assert.equal(fifoLogs.length, 1, JSON.stringify(logs));
    assert.equal(fifoLogs[0].severityText, 'WARN');
    assert.equal(fifoLogs[0].attributes['telegen.file.operation'], 'read');
    assert.equal(fifoLogs[0].attributes['telegen.file.operation.result'], 1);
    assert.ok(Number(fifoLogs[0].attributes['telegen.file.operation.duration_ns']) >= 2 * SLOW_MS * 1e6, JSON.stringify(fifoLogs[0]));
    for (const l of logs) assert.ok(Number(l.attributes['telegen.file.operation.duration_ns']) >= SLOW_MS * 1e6, JSON.stringify(l));

    // The child exited with left-open still open: the sweep removes its entry.
    await waitFor(() => fdEntry(filesMap, pid, leftFd) === undefined, 15_000);

    // The deep write: directory cut to three components (dir is /tmp/telegen-fileio-XXXXXX).
    const deep = pointsWhere(latestMetrics(agent.dataDir), 'telegen.file.operation.size', { 'process.pid': process.pid, 'telegen.file.operation': 'write' })
      .filter((p) => String(p.attributes['file.directory']).startsWith(`${dir}/`));
    assert.deepEqual(deep.map((p) => [p.attributes['file.directory'], p.count, p.sum]), [[path.join(dir, 'a'), 1, 4]]);

    // Exited: its kernel entries deleted after the export that carried the final values, and no
    // later export has its series (this process's own series keep being exported meanwhile).
    await waitFor(() => !histEntry(histMap, pid, 3, dir, 'node'), 15_000);
    const metricsFile = path.join(agent.dataDir, 'metrics.jsonl');
    const from = fs.statSync(metricsFile).size;
    const pidsAfter = () => {
      const lines = fs.readFileSync(metricsFile).subarray(from).toString().split('\n').slice(0, -1).filter((l) => l.trim());
      const pids = new Set<unknown>();
      for (const l of lines) for (const m of flattenMetrics(JSON.parse(l))) {
        if (m.name.startsWith('telegen.file.')) for (const dp of m.dataPoints as Array<{ attributes: Record<string, unknown> }>) pids.add(dp.attributes['process.pid']);
      }
      return pids;
    };
    await waitFor(() => pidsAfter().has(process.pid), 15_000);
    assert.ok(!pidsAfter().has(pid), 'no series of the exited process after its last export');
    const prom = await (await agent.api('/metrics')).text();
    assert.match(prom, /telegen_bpf_map_capacity\{map="tg_fileio_files",tracer="fileio"\} 65536/);
    assert.match(prom, /telegen_fileio_swept_total\{tracer="fileio"\} [1-9]/);
    assert.match(prom, /telegen_tracer_up\{tracer="fileio"\} 1/);

    // A write just before SIGTERM is in the last export: the tracer reads its maps as it stops.
    const mineHere = { 'process.pid': process.pid, 'telegen.file.operation': 'write', 'file.directory': dir };
    const before = pointsWhere(latestMetrics(agent.dataDir), 'telegen.file.operation.size', mineHere);
    fs.writeFileSync(path.join(dir, 'last.txt'), 'last');
    assert.equal(await agent.stop(), 0);
    const after = pointsWhere(latestMetrics(agent.dataDir), 'telegen.file.operation.size', mineHere);
    assert.deepEqual([count(after), sum(after)], [count(before) + 1, sum(before) + 4]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(await agent.stop(), 0);
  }
});
