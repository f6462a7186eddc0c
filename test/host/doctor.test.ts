import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { repoRoot } from '../helpers/decoder';

const telegen = (args: string[]) => spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'telegen'), ...args], { encoding: 'utf8', timeout: 60_000 });

test('doctor --json reports kernel features and tracer verdicts found on this machine', (t) => {
  const r = telegen(['doctor', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.features.kernel, require('os').release());
  assert.equal(typeof j.features.btf, 'boolean');
  const names = j.tracers.map((x: { name: string }) => x.name);
  assert.deepEqual(names, ['socket', 'tcp', 'xdp', 'profile', 'fileio', 'logs', 'security', 'tls-uprobes', 'go']);
  for (const k of ['tracepoint', 'raw_tp', 'tp_btf', 'kprobe', 'fentry', 'uprobe', 'perf_event', 'xdp', 'tc']) assert.ok(k in j.features.attach, `attach type ${k} reported`);
  if (process.getuid?.() !== 0) { t.diagnostic('not root: verdicts say so'); assert.ok(j.tracers.every((x: { canRun: boolean }) => !x.canRun)); return; }
  // This kernel (checked by hand): no kprobe PMU, tracing programs refused, syscall tracepoints work.
  const kprobePmu = require('fs').existsSync('/sys/bus/event_source/devices/kprobe/type');
  assert.equal(j.features.attach.kprobe.ok, kprobePmu);
  assert.equal(j.features.attach.tracepoint.ok, true);
  // the brief's facts for this kernel, found by loading real probe programs
  assert.equal(j.features.attach.tp_btf.ok, true, j.features.attach.tp_btf.detail);
  assert.equal(j.features.attach.fentry.ok, false, 'fentry is refused here');
  assert.equal(j.tracers.find((x: { name: string }) => x.name === 'socket').canRun, true);
  for (const v of j.tracers) if (!v.canRun) assert.match(v.why, /\w+ \w+/, 'every tracer that cannot run says why in a sentence');
});

test('doctor prints readable lines with a fix for each missing piece', () => {
  const r = telegen(['doctor']);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^telegen doctor — kernel /);
  assert.match(r.stdout, /tracers:\n/);
  for (const line of r.stdout.split('\n').filter((l) => l.includes('MISS'))) assert.ok(line.length > 10);
  assert.doesNotMatch(r.stdout + r.stderr, /\n\s+at /, 'no stack trace');
});
