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
  assert.deepEqual(names, ['socket', 'tcp', 'xdp', 'profile', 'fileio', 'logs', 'security', 'tls', 'go']);
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

test('doctor names the security rules that cannot fire on this kernel, and why', () => {
  const fs = require('fs') as typeof import('fs');
  const os = require('os') as typeof import('os');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-doctor-rules-'));
  fs.writeFileSync(path.join(dir, 'rules.yaml'), [
    'rules:',
    '  - { id: any-exec, description: an exec, event: exec, severity: info }',
    '  - { id: module-load, description: a module load, event: module, severity: error }',
    '  - { id: any-mount, description: a mount, event: mount, severity: warn }',
  ].join('\n'));
  const env = { ...process.env, TELEGEN_SECURITY_POLICY_DIR: dir };
  const json = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'telegen'), 'doctor', '--json'], { encoding: 'utf8', timeout: 60_000, env });
  assert.equal(json.status, 0, json.stderr);
  const j = JSON.parse(json.stdout) as { securityRules: { policyDir: string; rules: Array<{ id: string; event: string; active: boolean; why?: string }> } };
  assert.equal(j.securityRules.policyDir, dir);
  // What the kernel offers decides, read here independently of the agent's code.
  const events = '/sys/kernel/tracing/events/syscalls';
  const has = (sys: string) => fs.existsSync(`${events}/sys_enter_${sys}`) && fs.existsSync(`${events}/sys_exit_${sys}`);
  const moduleActive = has('init_module') || has('finit_module');
  assert.deepEqual(j.securityRules.rules.map((r) => [r.id, r.active]), [['any-exec', true], ['module-load', moduleActive], ['any-mount', has('mount')]]);
  if (process.env.CI) assert.equal(moduleActive, false, 'this CI kernel has no module support (no init_module tracepoints)');
  const mod = j.securityRules.rules[1];
  if (!moduleActive) assert.match(mod.why!, /no tracepoint syscalls\/sys_enter_init_module/);
  const text = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'telegen'), 'doctor'], { encoding: 'utf8', timeout: 60_000, env });
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`security rules \\(${dir.replace(/[/.-]/g, '\\$&')}\\):\\n  ${moduleActive ? 3 : 2} of 3 can fire here`));
  if (!moduleActive) assert.match(text.stdout, /inactive module-load\s+\(module\) — no tracepoint/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('doctor: an attach type no tracer uses is not a MISS, tp_btf is named where tracers need it, and each tracer says whether the config turns it on', () => {
  const fs = require('fs') as typeof import('fs');
  const os = require('os') as typeof import('os');
  const r = telegen(['doctor']);
  assert.equal(r.status, 0, r.stderr);
  // kprobe and fentry are absent or refused on this kernel; the agent never uses either (README).
  for (const k of ['kprobe', 'fentry']) {
    assert.doesNotMatch(r.stdout, new RegExp(`MISS attach:${k} `), `${k} is no fault`);
    if (!JSON.parse(telegen(['doctor', '--json']).stdout).features.attach[k].ok) {
      assert.match(r.stdout, new RegExp(`none attach:${k} .*\\n\\s+→ not needed: no telegen tracer uses ${k === 'kprobe' ? 'kprobes' : 'fentry'}`));
    }
  }
  // The default config: fileio is off, socket on; "can run" alone read as running.
  assert.match(r.stdout, /^  can run  socket +on in the config$/m);
  assert.match(r.stdout, /^  \S.{7} fileio +off in the config \(tracers\.fileio\.enabled\)/m);
  assert.match(r.stdout, /^  \S.{7} xdp +on, but attached to no interface \(tracers\.xdp\.interfaces\)/m);
  const j = JSON.parse(telegen(['doctor', '--json']).stdout) as { tracers: Array<{ name: string; needs: string[]; config: { on: boolean } }> };
  assert.deepEqual(j.tracers.find((x) => x.name === 'tcp')!.needs, ['tracepoint', 'tp_btf'], 'tcp.bpf.c attaches tp_btf programs');
  assert.equal(j.tracers.find((x) => x.name === 'fileio')!.config.on, false);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-doctor-cfg-'));
  const cfg = path.join(dir, 'c.yaml');
  fs.writeFileSync(cfg, 'tracers:\n  fileio: { enabled: true }\n  tcp: { enabled: false }\n');
  const withCfg = telegen(['doctor', '--config', cfg]);
  fs.rmSync(dir, { recursive: true, force: true });
  assert.equal(withCfg.status, 0, withCfg.stderr);
  assert.match(withCfg.stdout, new RegExp(`\\(on/off as \`telegen run\` would start them with ${cfg.replace(/[/.-]/g, '\\$&')}\\)`));
  assert.match(withCfg.stdout, /^  \S.{7} fileio +on in the config/m);
  assert.match(withCfg.stdout, /^  \S.{7} tcp +off in the config \(tracers\.tcp\.enabled\)/m);
});
