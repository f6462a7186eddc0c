// The CPU profiler on real programs: a C program with known hot functions (symbols kept and
// stripped), a Node program with --perf-basic-prof, a Python busy loop, a syscall-heavy loop
// for kernel frames; pprof output decoded with pprof-format; the agent's API and OTLP file.
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { gunzipSync } from 'zlib';
import { spawn, execFileSync, ChildProcess } from 'child_process';
import { Profile } from 'pprof-format';
import { requireBpf, startAgent, waitFor } from '../helpers/agent';
import { Profiler } from '../../host/src/profile/profiler';
import { profileSchema } from '../../host/src/profile/config';
import { IntervalProfile, inclusiveShare, ProfileSample } from '../../host/src/profile/model';
import { readElfFile, fileOffsetToVaddr, lookupSymbol } from '../../host/src/profile/elf';

import { HOT_C, SYSCALL_C, dir, build, run, profileOf, profileRunning, total, leafShare } from './helpers';
test('C program: burn_hot (~80% of its CPU) leads the profile; only the target pid is sampled', async (t) => {
  if (!requireBpf(t)) return;
  const exe = build('hot', HOT_C);
  const { iv, pid } = await profileRunning(exe, 3000);
  const n = total(iv.samples);
  assert.ok(n >= 50, `expected samples of the busy child, got ${n}`);
  assert.deepEqual([...new Set(iv.samples.map((s) => s.pid))], [pid]);
  const hot = inclusiveShare(iv.samples, 'burn_hot');
  const cold = inclusiveShare(iv.samples, 'burn_cold');
  assert.ok(hot >= 0.6, `burn_hot share ${hot.toFixed(2)} of ${n} samples`);
  assert.ok(cold > 0.05 && cold < hot, `burn_cold share ${cold.toFixed(2)}`);
  // The caller is there too: main → burn_hot, with the executable as the module.
  const s = iv.samples.find((x) => x.stack.some((f) => f.name === 'burn_hot'))!;
  const names = s.stack.map((f) => f.name);
  assert.ok(names.indexOf('main') >= 0 && names.indexOf('main') < names.indexOf('burn_hot'), names.join(' > '));
  assert.equal(s.stack.find((f) => f.name === 'burn_hot')!.module, exe);
});

test('stripped C program: frames stay visible as module+offset, and the offset lies in burn_hot', async (t) => {
  if (!requireBpf(t)) return;
  const withSyms = build('hot2', HOT_C);
  const exe = path.join(dir(), 'hot2-stripped');
  fs.copyFileSync(withSyms, exe);
  execFileSync('strip', ['--strip-all', exe]);
  fs.chmodSync(exe, 0o755);
  const { iv } = await profileRunning(exe, 2500);
  const share = leafShare(iv.samples, /^hot2-stripped\+0x[0-9a-f]+$/);
  assert.ok(share >= 0.6, `module+offset leaf share ${share.toFixed(2)}`);
  // Map the leaf offsets back through the unstripped twin: most of them are in burn_hot.
  const elf = readElfFile(withSyms);
  let inHot = 0;
  let all = 0;
  for (const s of iv.samples) {
    const leaf = s.stack[s.stack.length - 1];
    const m = /\+0x([0-9a-f]+)$/.exec(leaf?.name ?? '');
    if (!m || !leaf.name.startsWith('hot2-stripped')) continue;
    all += s.count;
    const v = fileOffsetToVaddr(elf, parseInt(m[1], 16));
    if (v !== undefined && lookupSymbol(elf.symbols, v)?.name === 'burn_hot') inHot += s.count;
  }
  assert.ok(all > 0 && inHot / all >= 0.6, `${inHot}/${all} stripped leaf samples fall in burn_hot`);
});

test('syscall-heavy loop: kernel frames appear above the user stack', async (t) => {
  if (!requireBpf(t)) return;
  const exe = build('sys', SYSCALL_C);
  const { iv } = await profileRunning(exe, 2500);
  const kernelShare = iv.samples.filter((s) => s.stack.some((f) => f.kind === 'kernel')).reduce((a, s) => a + s.count, 0) / Math.max(1, total(iv.samples));
  assert.ok(kernelShare >= 0.3, `samples with kernel frames: ${kernelShare.toFixed(2)}`);
  const kernelNames = new Set(iv.samples.flatMap((s) => s.stack.filter((f) => f.kind === 'kernel').map((f) => f.name)));
  assert.ok([...kernelNames].some((n) => /write/.test(n)), `kernel frames: ${[...kernelNames].slice(0, 20).join(', ')}`);
  // The kernel part sits on top of (after) the user frames that made the call (libc's write
  // wrapper keeps no frame, so the frame-pointer walk may skip main itself).
  const s = iv.samples.find((x) => x.stack.length > 1 && x.stack[0].kind !== 'kernel' && x.stack.some((f) => f.kind === 'kernel'));
  assert.ok(s, 'a sample with user frames below kernel frames');
  const firstKernel = s.stack.findIndex((f) => f.kind === 'kernel');
  assert.ok(s.stack.slice(firstKernel).every((f) => f.kind === 'kernel'), s.stack.map((f) => f.name).join(' > '));
});

test('Node with --perf-basic-prof: the JIT frame names the hot JS function', async (t) => {
  if (!requireBpf(t)) return;
  const js = path.join(dir(), 'hot.js');
  fs.writeFileSync(js, 'let x = 0;\nfunction spinHotLoop() { for (let i = 0; i < 1e6; i++) x = (x + i * 31) % 1000003; }\nfunction idleCaller() { spinHotLoop(); }\nsetInterval(() => {}, 1000);\nfor (;;) idleCaller();\n');
  const child = run(process.execPath, ['--perf-basic-prof', js]);
  await new Promise((r) => setTimeout(r, 1000));
  try {
    const { iv } = await profileOf(child.pid!, 3000);
    const share = inclusiveShare(iv.samples, /spinHotLoop/);
    assert.ok(share >= 0.6, `spinHotLoop share ${share.toFixed(2)}; top leaves: ${topLeaves(iv.samples)}`);
    assert.ok(iv.samples.some((s) => s.stack.some((f) => f.kind === 'jit' && /spinHotLoop/.test(f.name))));
  } finally {
    child.kill('SIGKILL');
    fs.rmSync(`/tmp/perf-${child.pid}.map`, { force: true });
  }
});

test('Python busy loop: the interpreter loop is the hot leaf, named from the executable symbols', async (t) => {
  if (!requireBpf(t)) return;
  const py = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  const child = run(py, ['-c', 'x = 0\nwhile True:\n    x = (x + 1) % 1000003\n']);
  await new Promise((r) => setTimeout(r, 300));
  const { iv } = await profileOf(child.pid!, 2500);
  child.kill('SIGKILL');
  // Debian's interpreter is built without frame pointers, so the kernel's frame-pointer walk
  // gets the leaf right and little above it: assert on leaves.
  const leaves = new Map<string, number>();
  let inPython = 0;
  for (const s of iv.samples) {
    const leaf = s.stack[s.stack.length - 1];
    if (!leaf) continue;
    leaves.set(leaf.name, (leaves.get(leaf.name) ?? 0) + s.count);
    if (/python3|libpython/.test(path.basename(leaf.module))) inPython += s.count;
  }
  const top = [...leaves].sort((a, b) => b[1] - a[1])[0];
  assert.equal(top[0], '_PyEval_EvalFrameDefault', `top leaves: ${topLeaves(iv.samples)}`);
  assert.ok(inPython / total(iv.samples) >= 0.6, `leaves in the interpreter ${inPython}/${total(iv.samples)}`);
});

function topLeaves(ss: ProfileSample[]): string {
  const m = new Map<string, number>();
  for (const s of ss) { const l = s.stack[s.stack.length - 1]?.name ?? '(none)'; m.set(l, (m.get(l) ?? 0) + s.count); }
  return [...m].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([n, c]) => `${n}=${c}`).join(', ');
}

test('pprof files decode with pprof-format and name burn_hot', async (t) => {
  if (!requireBpf(t)) return;
  const exe = build('hot3', HOT_C);
  const out = fs.mkdtempSync(path.join(dir(), 'data-'));
  const { pid } = await profileRunning(exe, 2000, out);
  const files = fs.readdirSync(path.join(out, 'pprof')).filter((f) => f.endsWith('.pb.gz'));
  assert.ok(files.length >= 1, 'a pprof file was written');
  const prof = Profile.decode(gunzipSync(fs.readFileSync(path.join(out, 'pprof', files[files.length - 1]))));
  const str = prof.stringTable.strings;
  assert.deepEqual(prof.sampleType.map((v) => [str[Number(v.type)], str[Number(v.unit)]]), [['samples', 'count'], ['cpu', 'nanoseconds']]);
  const fnName = new Map(prof.function.map((f) => [Number(f.id), str[Number(f.name)]]));
  const locFn = new Map(prof.location.map((l) => [Number(l.id), fnName.get(Number(l.line[0].functionId))]));
  let hot = 0;
  let all = 0;
  for (const s of prof.sample) {
    all += Number(s.value[0]);
    if (s.locationId.some((id) => locFn.get(Number(id)) === 'burn_hot')) hot += Number(s.value[0]);
    assert.equal(Number(s.value[1]), Number(s.value[0]) * Math.round(1e9 / 499));
  }
  assert.ok(all > 0 && hot / all >= 0.6, `pprof burn_hot ${hot}/${all}`);
  assert.ok(prof.sample[0].label.some((l) => str[Number(l.key)] === 'pid' && Number(l.num) === pid));
});

