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

interface Ring {
  obj: BpfObject;
  dir: string;
  /** What each drain read, in order. */
  batches: Ev[][];
  /** Resolves once `ok` holds, looking again after each drain (no clock involved). */
  until(ok: () => boolean): Promise<void>;
}

/** The real go_exec object watched with `delayMs` and an hour's fallback poll, torn down after. */
async function withExecRing(delayMs: number, body: (r: Ring) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-execwatch-'));
  const obj = openExecRing();
  const batches: Ev[][] = [];
  let wake: (() => void) | undefined;
  const alive = keepAlive();
  const watch = obj.watchRing(() => { batches.push(read(obj)); wake?.(); }, delayMs, HOUR);
  const until = async (ok: () => boolean) => { while (!ok()) await new Promise<void>((res) => { wake = res; }); };
  try {
    await body({ obj, dir, batches, until });
  } finally {
    alive.stop();
    watch.stop();
    obj.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const seen = (r: Ring, pid: number, kind: number) => r.batches.some((b) => b.some((e) => e.pid === pid && e.kind === kind));

test('go_exec ring: an exec and a watched exit wake the reader with no poll', { timeout: 60_000 }, async (t) => {
  if (!requireBpf(t)) return;
  await withExecRing(0, async (r) => {
    const child = spawn(freshExecutable(r.dir, 'fresh-a'), ['30'], { stdio: 'ignore' });
    await r.until(() => seen(r, child.pid!, tg_go_exec_kind.TG_GO_EXEC_EXEC));
    const pid = Buffer.alloc(4);
    pid.writeUInt32LE(child.pid!);
    r.obj.update('go_exec_watch', pid, Buffer.from([1]));
    child.kill('SIGKILL');
    await r.until(() => seen(r, child.pid!, tg_go_exec_kind.TG_GO_EXEC_EXIT));
  });
});

test('go_exec ring: with a delay, events that come before it ends are read in the same drain', { timeout: 60_000 }, async (t) => {
  if (!requireBpf(t)) return;
  // Long enough that both execs (synchronous, one after the other) land inside it.
  await withExecRing(3_000, async (r) => {
    const pids = [freshExecutable(r.dir, 'fresh-b'), freshExecutable(r.dir, 'fresh-c')].map((f) => spawnSync(f, ['0']).pid);
    await r.until(() => pids.every((p) => seen(r, p, tg_go_exec_kind.TG_GO_EXEC_EXEC)));
    const batch = r.batches.find((x) => x.some((e) => e.pid === pids[0]))!;
    assert.ok(batch.some((e) => e.pid === pids[1]), `both execs read in one drain: ${JSON.stringify(r.batches)}`);
  });
});

test('go_exec ring: a looked-at file is silent, a hooked one reports each exec as a pid joining it', { timeout: 60_000 }, async (t) => {
  if (!requireBpf(t)) return;
  await withExecRing(0, async (r) => {
    const quiet = freshExecutable(r.dir, 'fresh-silent');
    const hooked = freshExecutable(r.dir, 'fresh-hooked');
    const mark = (f: string, v: number) => { const st = fs.statSync(f); r.obj.update('go_exec_known', kernelFileKey(`${st.dev}:${st.ino}`)!, Buffer.from([v])); };
    mark(quiet, tg_go_exec_known_value.TG_GO_EXEC_KNOWN_SILENT);
    mark(hooked, tg_go_exec_known_value.TG_GO_EXEC_KNOWN_HOOKED);
    const q = spawnSync(quiet, ['0']).pid;
    const h = [spawnSync(hooked, ['0']).pid, spawnSync(hooked, ['0']).pid];
    // A fresh file after both: once its exec is read, everything before it was too (one ring, in order).
    const last = spawnSync(freshExecutable(r.dir, 'fresh-last'), ['0']).pid;
    await r.until(() => seen(r, last, tg_go_exec_kind.TG_GO_EXEC_EXEC));
    assert.ok(!r.batches.some((b) => b.some((e) => e.pid === q)), 'the exec of a looked-at file is not reported');
    for (const p of h) assert.ok(seen(r, p, tg_go_exec_kind.TG_GO_EXEC_HOOKED), `each exec of the hooked file is reported: ${JSON.stringify(r.batches)}`);
  });
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
