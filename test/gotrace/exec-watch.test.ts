// The Go tracer's exec ring is read when the ring's fd says it holds events (BpfObject.watchRing),
// not by a timer: the real go_exec object, attached, with the fallback poll set to an hour, must
// still hand over the exec of a file it never saw, and its exit once the pid is watched; with a
// delay, events that come meanwhile are read in one drain. A file marked hooked in go_exec_known
// reports every exec (a pid joining it: the attacher needs no /proc walk for it), one marked
// looked-at none. Nothing here depends on how fast.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { BpfObject } from '../../host/src/tracers/bpf-object';
import { tg_go_exec_event, tg_go_exec_kind, tg_go_exec_known_value } from '../../host/src/generated/go_exec-layout';
import { kernelFileKey } from '../../host/src/tracers/go-exec';
import { requireBpf } from '../helpers/agent';

const HOUR = 3_600_000;

interface Ev { kind: number; pid: number }

/** The watch does not hold the event loop open (as the agent's unref'd timers did not): while a
 *  test awaits an event, this does, and it reads nothing. */
function keepAlive(): { stop(): void } {
  const t = setInterval(() => {}, HOUR);
  return { stop: () => clearInterval(t) };
}

function openExecRing(): BpfObject {
  const obj = new BpfObject('go_exec', { rodata: { self_pid: process.pid, hold: 0 } });
  const rep = obj.attachAll();
  assert.deepEqual(rep.failed, [], 'go_exec programs attach');
  obj.openRing('go_exec_ring');
  return obj;
}

function read(obj: BpfObject): Ev[] {
  return obj.pollRing(1024).map((r) => ({ kind: r[tg_go_exec_event.kind], pid: r.readUInt32LE(tg_go_exec_event.pid) }));
}

/** A copy of /bin/sleep: a file the kernel's known-set has never held, so its exec is reported. */
function freshExecutable(dir: string, name: string): string {
  const f = path.join(dir, name);
  fs.copyFileSync(fs.realpathSync('/bin/sleep'), f);
  fs.chmodSync(f, 0o755);
  return f;
}

test('go_exec ring: an exec and a watched exit wake the reader with no poll', { timeout: 60_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-execwatch-'));
  const obj = openExecRing();
  const seen: Ev[] = [];
  let drains = 0;
  let wake: (() => void) | undefined;
  const alive = keepAlive();
  const watch = obj.watchRing(() => { drains++; seen.push(...read(obj)); wake?.(); }, 0, HOUR);
  const until = async (what: string, ok: () => boolean) => {
    while (!ok()) await new Promise<void>((res) => { wake = res; });
    wake = undefined;
    assert.ok(ok(), what);
  };
  try {
    const child = spawn(freshExecutable(dir, 'fresh-a'), ['30'], { stdio: 'ignore' });
    await until('the exec event arrives', () => seen.some((e) => e.kind === tg_go_exec_kind.TG_GO_EXEC_EXEC && e.pid === child.pid));
    const pid = Buffer.alloc(4);
    pid.writeUInt32LE(child.pid!);
    obj.update('go_exec_watch', pid, Buffer.from([1]));
    child.kill('SIGKILL');
    await until('the watched pid\'s exit arrives', () => seen.some((e) => e.kind === tg_go_exec_kind.TG_GO_EXEC_EXIT && e.pid === child.pid));
    assert.ok(drains >= 1);
  } finally {
    alive.stop();
    watch.stop();
    obj.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('go_exec ring: with a delay, events that come before it ends are read in the same drain', { timeout: 60_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-execwatch-'));
  const obj = openExecRing();
  const batches: Ev[][] = [];
  let wake: (() => void) | undefined;
  // Long enough that both execs (synchronous, one after the other) land inside it.
  const alive = keepAlive();
  const watch = obj.watchRing(() => { batches.push(read(obj)); wake?.(); }, 3_000, HOUR);
  try {
    const a = freshExecutable(dir, 'fresh-b');
    const b = freshExecutable(dir, 'fresh-c');
    const pids = [a, b].map((f) => spawnSync(f, ['0']).pid);
    const has = (p: number) => batches.some((x) => x.some((e) => e.pid === p));
    while (!pids.every(has)) await new Promise<void>((res) => { wake = res; });
    const batch = batches.find((x) => x.some((e) => e.pid === pids[0]))!;
    assert.ok(batch.some((e) => e.pid === pids[1]), `both execs read in one drain: ${JSON.stringify(batches)}`);
  } finally {
    alive.stop();
    watch.stop();
    obj.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('go_exec ring: a looked-at file is silent, a hooked one reports each exec as a pid joining it', { timeout: 60_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-execwatch-'));
  const obj = openExecRing();
  const seen: Ev[] = [];
  let wake: (() => void) | undefined;
  const alive = keepAlive();
  const watch = obj.watchRing(() => { seen.push(...read(obj)); wake?.(); }, 0, HOUR);
  try {
    const quiet = freshExecutable(dir, 'fresh-silent');
    const hooked = freshExecutable(dir, 'fresh-hooked');
    const mark = (f: string, v: number) => { const st = fs.statSync(f); obj.update('go_exec_known', kernelFileKey(`${st.dev}:${st.ino}`)!, Buffer.from([v])); };
    mark(quiet, tg_go_exec_known_value.TG_GO_EXEC_KNOWN_SILENT);
    mark(hooked, tg_go_exec_known_value.TG_GO_EXEC_KNOWN_HOOKED);
    const q = spawnSync(quiet, ['0']).pid;
    const h = [spawnSync(hooked, ['0']).pid, spawnSync(hooked, ['0']).pid];
    // A fresh file after both: once its exec is read, everything before it was too (one ring, in order).
    const last = spawnSync(freshExecutable(dir, 'fresh-last'), ['0']).pid;
    while (!seen.some((e) => e.pid === last)) await new Promise<void>((res) => { wake = res; });
    assert.ok(!seen.some((e) => e.pid === q), 'the exec of a looked-at file is not reported');
    for (const p of h) assert.ok(seen.some((e) => e.pid === p && e.kind === tg_go_exec_kind.TG_GO_EXEC_HOOKED), `each exec of the hooked file is reported: ${JSON.stringify(seen)}`);
    assert.ok(seen.some((e) => e.pid === last && e.kind === tg_go_exec_kind.TG_GO_EXEC_EXEC));
  } finally {
    alive.stop();
    watch.stop();
    obj.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('go_exec ring: the watch does not keep the process alive', { timeout: 60_000 }, (t) => {
  if (!requireBpf(t)) return;
  // A child that opens the watch and returns: it must exit on its own.
  const script = `
    const { BpfObject } = require(${JSON.stringify(path.join(__dirname, '..', '..', 'host', 'src', 'tracers', 'bpf-object'))});
    const obj = new BpfObject('go_exec', { rodata: { self_pid: process.pid, hold: 0 } });
    obj.attachAll();
    obj.openRing('go_exec_ring');
    obj.watchRing(() => obj.pollRing(1024), 0, ${HOUR});
  `;
  const r = spawnSync(process.execPath, ['-e', script], { timeout: 30_000, encoding: 'utf8' });
  assert.equal(r.signal, null, `the child did not exit by itself: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
});
