// The Go tracer's exec-time path reads only the processes the exec events name (an exec storm
// must not walk all of /proc per event batch), while the full scan still unhooks a file no process
// runs. A /proc stand-in (pid dirs with exe links to real files: a Go server built here and two
// system binaries) decides what each pass can see; the uprobe attach is counted, not made (the
// live attach is test/gotrace/https.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { GoAttacher, NativeUprobes } from '../../host/src/tracers/go';
import { buildGo, requireGo } from './helpers';

function fakeUprobes(): NativeUprobes & { live: Set<number> } {
  let next = 1;
  const live = new Set<number>();
  return {
    live,
    attachUprobe: () => { live.add(next); return next++; },
    detach: (h) => live.delete(h),
  };
}

const keyOf = (p: string) => { const st = fs.statSync(p); return `${st.dev}:${st.ino}`; };

test('exec events look at the named pids only; the full scan unhooks a file nobody runs', (t) => {
  if (!requireGo(t)) return;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-goscan-'));
  try {
    const go = buildGo('server', root).plain;
    const proc = path.join(root, 'proc');
    const run = (pid: number, exe: string) => { fs.mkdirSync(path.join(proc, String(pid)), { recursive: true }); fs.symlinkSync(exe, path.join(proc, String(pid), 'exe')); };
    const sh = fs.realpathSync('/bin/sh');
    const env = fs.realpathSync('/usr/bin/env');
    run(100, go);
    run(200, sh);
    run(300, env);
    const u = fakeUprobes();
    const a = new GoAttacher(u, 1);

    a.scanPids([100], proc);
    assert.deepEqual([...a.binaries.keys()], [keyOf(go)], 'only the exec\'d process\'s file is looked at');
    const hooked = a.binaries.get(keyOf(go))!;
    assert.ok(hooked?.status.instrumented, `the Go server is hooked (${hooked?.status.reason ?? ''})`);
    assert.deepEqual(hooked.status.pids, [100]);
    const probes = u.live.size;
    assert.ok(probes > 0);

    run(101, go);
    a.scanPids([101, 200, 999], proc); // 999: exited before it was read
    assert.equal(a.binaries.get(keyOf(sh)), null, 'a non-Go file is remembered as such');
    assert.ok(!a.binaries.has(keyOf(env)), 'a process no event named is left to the full scan');
    assert.deepEqual(hooked.status.pids, [100, 101], 'a second process of a hooked file joins it, no second set of probes');
    assert.equal(u.live.size, probes);

    a.scan(proc);
    assert.ok(a.binaries.has(keyOf(env)), 'the full scan sees every process');
    fs.rmSync(path.join(proc, '100'), { recursive: true });
    a.scan(proc);
    assert.deepEqual(a.binaries.get(keyOf(go))?.status.pids, [101]);
    assert.equal(u.live.size, probes, 'still run by one process: still hooked');
    fs.rmSync(path.join(proc, '101'), { recursive: true });
    a.scan(proc);
    assert.ok(!a.binaries.has(keyOf(go)), 'nobody runs it: forgotten');
    assert.equal(u.live.size, 0, 'and every probe detached');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
