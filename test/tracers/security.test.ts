// Security monitor against this kernel: rules in a policy directory the test writes, each one
// triggered by a real process (a shell started by a "server", capset and setuid, strace attaching,
// bpftool creating a map, a mount in a private namespace, a write under a watched path, a connect
// out of an isolated network namespace), and benign twins that must produce nothing. Asserts the
// OTLP log records the agent exported (logs.jsonl), the counters on /metrics, a rule added and a
// broken file written while the agent runs (hot reload), and the rule this kernel cannot serve
// (module loading: no init_module tracepoints without module support) reported as inactive.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, execFileSync } from 'child_process';
import { once } from 'events';
import { requireBpf, startAgent, waitFor } from '../helpers/agent';
import { readLogs, tracerConfig } from './helpers';
import type { FlatLog } from '../helpers/otlp-receiver';

const FIXTURES = path.join(__dirname, '..', '..', '..', 'test', 'tracers', 'fixtures');

/** Runs a command to completion; returns its pid and stdout. */
async function run(cmd: string, args: string[], input?: string, cwd?: string): Promise<{ pid: number; out: string; code: number | null }> {
  // No stdin unless there is input: a child that exits before reading it would make the write
  // fail with EPIPE after the test moved on.
  const p = spawn(cmd, args, { cwd, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'inherit'] });
  let out = '';
  p.stdout!.on('data', (d) => { out += d; });
  if (input !== undefined) {
    p.stdin!.on('error', () => { /* the child's exit code tells */ });
    p.stdin!.end(input);
  }
  const [code] = await once(p, 'exit') as [number | null];
  return { pid: p.pid!, out, code };
}

function policy(dir: string, port: number): string {
  return `rules:
  - id: t-shell-from-server
    description: shell started by the test server
    event: exec
    severity: error
    match: { executable: [sh], parent_executable: [tgsec-server] }
  - id: t-limited
    description: /bin/true from the test server
    event: exec
    severity: info
    match: { executable: ["true"], parent_executable: [tgsec-server] }
    rate_limit: { per_second: 0.001, burst: 2 }
  - id: t-setuid
    description: setuid to nobody
    event: setuid
    match: { target_id: [65534], result: success }
  - id: t-capset
    description: capset by the helper
    event: capset
    severity: info
    match: { executable: [python3] }
  - id: t-ptrace
    description: strace attached
    event: ptrace
    match: { executable: [strace] }
  - id: t-bpf
    description: bpftool loaded into the kernel
    event: bpf
    match: { executable: [bpftool] }
    rate_limit: { per_second: 100, burst: 100 }
  - id: t-module
    description: module load attempted
    event: module
    severity: fatal
  - id: t-mount
    description: a mount under the test dir
    event: mount
    match: { path_prefix: ["${dir}/"] }
  - id: t-etc-write
    description: write under the test etc
    event: open
    match: { path_prefix: ["${dir}/etc/"], access: write }
  - id: t-connect
    description: connect outside 10/8
    event: connect
    match: { remote_port: [${port}], not_remote_cidr: [10.0.0.0/8] }
`;
}

test('security: each rule fires once for the real action, never for its benign twin; hot reload; inactive rule reported', { timeout: 120_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tgsec-'));
  const policyDir = path.join(dir, 'policy');
  for (const d of [policyDir, path.join(dir, 'etc'), path.join(dir, 'mnt')]) fs.mkdirSync(d);
  fs.writeFileSync(path.join(dir, 'etc', 'conf'), 'old\n');
  fs.writeFileSync(path.join(dir, 'secret'), 'token\n');
  const port = 20000 + (process.pid % 20000);
  fs.writeFileSync(path.join(policyDir, 'rules.yaml'), policy(dir, port));
  const agent = await startAgent({ config: tracerConfig({ security: { enabled: true, policy_dir: policyDir, reload_ms: 200, poll_ms: 50 } }) });
  const pin = `/sys/fs/bpf/tgsec_${process.pid}`;
  try {
    const st = await (await agent.api('/api/status')).json() as { tracers: Array<{ name: string; ok: boolean; detail: string }> };
    const sec = st.tracers.find((x) => x.name === 'security')!;
    assert.ok(sec.ok, JSON.stringify(sec));
    const moduleTracepoints = fs.existsSync('/sys/kernel/tracing/events/syscalls/sys_enter_finit_module');
    if (!moduleTracepoints) {
      // This kernel has no module support, so the module programs cannot attach: said once, the rest run.
      assert.match(sec.detail, /^77 programs attached, 4 failed: tg_sec_in_init_module, tg_sec_out_init_module, tg_sec_in_finit_module, tg_sec_out_finit_module; 10 rules, inactive here: t-module$/);
      assert.ok(agent.logs.join('').includes('rule inactive'), 'one log line for the inactive rule');
    }

    // exec: the "server" runs a shell (a record) and /bin/true five times (rate-limited to 2);
    // the test runner (not a server) runs the same shell (nothing).
    const server = await run(process.execPath, ['-e', `process.title = 'tgsec-server';
      const cp = require('child_process');
      process.stdout.write(cp.execSync('echo $$'));
      for (let i = 0; i < 5; i++) cp.execFileSync('/bin/true');`]);
    assert.equal(server.code, 0);
    const shellPid = Number(server.out.trim());
    const benignShell = Number(execFileSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).trim());

    const ids = await run('/usr/bin/python3', [path.join(FIXTURES, 'secmon-ids.py')]);
    assert.equal(ids.code, 0);

    const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
    const strace = spawn('strace', ['-o', '/dev/null', '-p', String(sleeper.pid)], { stdio: 'ignore' });
    await waitFor(() => /TracerPid:\s+[1-9]/.test(fs.readFileSync(`/proc/${sleeper.pid}/status`, 'utf8')), 20_000, 50);
    const straceExit = once(strace, 'exit');
    sleeper.kill('SIGKILL');
    await straceExit;

    const bpftool = await run('bpftool', ['map', 'create', pin, 'type', 'array', 'key', '4', 'value', '4', 'entries', '1', 'name', 'tgsec']);
    assert.equal(bpftool.code, 0);
    fs.rmSync(pin, { force: true });

    const mount = await run('unshare', ['-m', 'mount', '-t', 'tmpfs', 'tgsec', path.join(dir, 'mnt')]);
    assert.equal(mount.code, 0);

    const write = await run('sh', ['-c', `echo new > ${dir}/etc/conf`]);
    const read = await run('cat', [path.join(dir, 'etc', 'conf')]);
    assert.equal(read.out, 'new\n');

    // Out of a network namespace with no routes: both connects fail at once, only 192.0.2.1 is outside 10/8.
    const connect = await run('unshare', ['-n', process.execPath, '-e', `
      const net = require('net');
      let n = 0;
      for (const h of ['192.0.2.1', '10.9.9.9']) net.connect(${port}, h).on('error', (e) => { console.log(h, e.code); if (++n === 2) process.exit(0); });`]);
    assert.equal(connect.code, 0);
    assert.match(connect.out, /192\.0\.2\.1 ENETUNREACH/);

    const module = moduleTracepoints ? await run('/usr/bin/python3', ['-c', 'import ctypes, os; ctypes.CDLL(None).syscall(313, -1, b"", 0); print(os.getpid())']) : undefined;

    // Hot reload: reading the secret is not watched yet; a new rule file makes it so; a broken
    // file afterwards is refused and the rules in force stay.
    const secretBefore = await run('cat', [path.join(dir, 'secret')]);
    const reloads = async (result: string) => Number((await (await agent.api('/metrics')).text())
      .match(new RegExp(`telegen_security_policy_reloads_total\\{result="${result}"\\} (\\d+)`))?.[1] ?? 0);
    fs.writeFileSync(path.join(policyDir, 'secret.yaml'), `rules:\n  - { id: t-secret-read, description: secret read, event: open, match: { path_prefix: ["${dir}/secret"], access: read } }\n`);
    const t0 = Date.now();
    for (;;) { if ((await reloads('ok')) >= 1) break; assert.ok(Date.now() - t0 < 20_000, 'reloaded'); await new Promise((r) => setTimeout(r, 100)); }
    const secretAfter = await run('cat', [path.join(dir, 'secret')]);
    fs.writeFileSync(path.join(policyDir, 'broken.yaml'), 'rules:\n  - { id: t-bad, description: x, event: exec, match: { colour: red } }\n');
    const t1 = Date.now();
    for (;;) { if ((await reloads('error')) >= 1) break; assert.ok(Date.now() - t1 < 20_000, 'broken file seen'); await new Promise((r) => setTimeout(r, 100)); }
    const secretStill = await run('cat', [path.join(dir, 'secret')]);

    const expected: Array<[number, string]> = [
      [shellPid, 't-shell-from-server'], [ids.pid, 't-capset'], [ids.pid, 't-setuid'], [strace.pid!, 't-ptrace'],
      [bpftool.pid, 't-bpf'], [mount.pid, 't-mount'], [write.pid, 't-etc-write'], [connect.pid, 't-connect'],
      [secretAfter.pid, 't-secret-read'], [secretStill.pid, 't-secret-read'],
      ...(module ? [[module.pid, 't-module'] as [number, string]] : []),
    ];
    const mine = () => readLogs(agent.dataDir).filter((l) => String(l.attributes['telegen.security.rule.id'] ?? '').startsWith('t-'));
    await waitFor(() => expected.every(([pid, rule]) => mine().some((l) => l.attributes['process.pid'] === pid && l.attributes['telegen.security.rule.id'] === rule)), 30_000);
    await new Promise((r) => setTimeout(r, 1500));
    const logs = mine();
    const of = (pid: number) => logs.filter((l) => l.attributes['process.pid'] === pid);
    const one = (pid: number, rule: string): FlatLog => {
      const l = of(pid).filter((x) => x.attributes['telegen.security.rule.id'] === rule);
      assert.equal(l.length, 1, `${rule} for pid ${pid}: ${JSON.stringify(of(pid))}`);
      return l[0];
    };

    const sh = one(shellPid, 't-shell-from-server');
    assert.equal(sh.severityText, 'ERROR');
    assert.equal(sh.eventName, 'telegen.security.alert');
    assert.equal(sh.attributes['process.executable.name'], 'sh');
    assert.equal(sh.attributes['telegen.process.parent.executable.name'], 'tgsec-server');
    assert.equal(sh.attributes['process.parent_pid'], server.pid);
    assert.equal(sh.attributes['process.command_line'], '/bin/sh -c echo $$');
    assert.deepEqual((sh.attributes['telegen.process.ancestors'] as string[]).slice(0, 2), [`${server.pid} tgsec-server`, `${process.pid} node`]);
    assert.equal(logs.filter((l) => l.attributes['telegen.security.rule.id'] === 't-shell-from-server').length, 1);
    assert.equal(logs.filter((l) => l.attributes['telegen.security.rule.id'] === 't-limited').length, 2, 'rate limit: 2 of 5');

    const capset = one(ids.pid, 't-capset');
    assert.equal(capset.attributes['telegen.security.result'], 'success');
    const setuid = one(ids.pid, 't-setuid');
    assert.equal(setuid.severityText, 'WARN');
    assert.deepEqual(setuid.attributes['telegen.security.target_ids'], [65534]);
    assert.equal(setuid.attributes['telegen.security.syscall'], 'setuid');
    assert.equal(setuid.attributes['process.user.id'], 65534, 'effective uid after the call');
    assert.equal(of(ids.pid).length, 2);

    // strace also seizes a child of its own at start-up to probe the kernel: the target's is the one.
    const pts = of(strace.pid!).filter((l) => l.attributes['telegen.ptrace.target.pid'] === sleeper.pid);
    assert.equal(pts.length, 1, JSON.stringify(of(strace.pid!)));
    const pt = pts[0];
    assert.equal(pt.attributes['telegen.security.rule.id'], 't-ptrace');
    assert.match(String(pt.attributes['telegen.ptrace.request']), /^(seize|attach)$/);
    assert.equal(pt.attributes['telegen.security.result'], 'success');

    const bpf = of(bpftool.pid).filter((l) => l.attributes['telegen.security.rule.id'] === 't-bpf');
    assert.ok(bpf.some((l) => l.attributes['telegen.bpf.command'] === 'BPF_MAP_CREATE' && l.attributes['telegen.security.result'] === 'success'), JSON.stringify(bpf));

    const mnt = one(mount.pid, 't-mount');
    assert.deepEqual([mnt.attributes['file.path'], mnt.attributes['telegen.mount.source'], mnt.attributes['telegen.mount.fstype'], mnt.attributes['telegen.security.result']],
      [path.join(dir, 'mnt'), 'tgsec', 'tmpfs', 'success']);

    const w = one(write.pid, 't-etc-write');
    assert.deepEqual([w.attributes['file.path'], w.attributes['telegen.file.access']], [path.join(dir, 'etc', 'conf'), 'write']);

    const c = one(connect.pid, 't-connect');
    assert.deepEqual([c.attributes['server.address'], c.attributes['server.port'], c.attributes['telegen.security.result'], c.attributes['error.type']],
      ['192.0.2.1', port, 'failure', 'ENETUNREACH']);
    assert.equal(of(connect.pid).length, 1, 'the connect inside 10/8 is not reported');

    assert.equal(one(secretAfter.pid, 't-secret-read').attributes['telegen.file.access'], 'read');
    one(secretStill.pid, 't-secret-read');
    if (module) assert.equal(one(module.pid, 't-module').severityText, 'FATAL');

    // Benign twins: nothing at all.
    for (const pid of [benignShell, read.pid, secretBefore.pid]) assert.deepEqual(of(pid), [], `no record for benign pid ${pid}`);

    const prom = await (await agent.api('/metrics')).text();
    assert.match(prom, /telegen_security_alerts_total\{rule="t-shell-from-server",severity="error"\} 1\n/);
    assert.match(prom, /telegen_security_alerts_total\{rule="t-limited",severity="info"\} 2\n/);
    assert.match(prom, /telegen_security_alerts_suppressed_total\{rule="t-limited"\} 3\n/);
    assert.match(prom, /telegen_security_rule_active\{event="exec",rule="t-shell-from-server"\} 1/);
    assert.match(prom, new RegExp(`telegen_security_rule_active\\{event="module",rule="t-module"\\} ${moduleTracepoints ? 1 : 0}`));
    assert.match(prom, /telegen_security_events_total\{event="exec"\} [1-9]/);
    assert.match(prom, /telegen_bpf_security_ring_full_total\{tracer="security"\} 0/);
    assert.match(prom, /telegen_tracer_up\{tracer="security"\} 1/);
  } finally {
    fs.rmSync(pin, { force: true });
    assert.equal(await agent.stop(), 0);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// Putting a file into a watched place without opening it there: mv, ln, ln -s, and rm, chmod,
// chown, truncate(2) of a watched file. Each gives one record naming the path the kernel changed —
// also when the name is relative, holds "..", "//" or "." or goes through a symlinked directory —
// and the source for mv/ln (a file moved out of the watched place too); the same operations
// outside it give none.
test('security: file changes without open (rename, link, symlink, unlink, mkdir, mknod, chmod, chown, truncate, and fchmod/fchown/ftruncate on an open file) alert on the path they changed', { timeout: 120_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tgsec-'));
  const policyDir = path.join(dir, 'policy');
  const etc = path.join(dir, 'etc');
  const out = path.join(dir, 'out');
  for (const d of [policyDir, etc, path.join(etc, 'cron.d'), out]) fs.mkdirSync(d);
  for (const f of ['x1', 'x2', 'x4', 'out/x3', 'out/b1', 'out/b2', 'out/b3', 'etc/rm-me', 'etc/mode', 'etc/owner', 'etc/trunc', 'etc/leave', 'etc/fmode', 'etc/fowner', 'etc/ftrunc', 'out/b4']) fs.writeFileSync(path.join(dir, f), 'data\n');
  fs.symlinkSync(etc, path.join(dir, 'lnk')); // /tmp/…/lnk → /tmp/…/etc, made before the agent runs
  fs.writeFileSync(path.join(policyDir, 'rules.yaml'), `rules:
  - id: t-etc-change
    description: change under the test etc
    event: file_change
    match: { path_prefix: ["${etc}/"] }
    rate_limit: { per_second: 100, burst: 100 }
  - id: t-etc-chmod
    description: chmod under the test etc
    event: file_change
    severity: error
    match: { path_prefix: ["${etc}/"], operation: [chmod] }
`);
  const agent = await startAgent({ config: tracerConfig({ security: { enabled: true, policy_dir: policyDir, reload_ms: 200, poll_ms: 50 } }) });
  try {
    const ok = async (r: Promise<{ pid: number; code: number | null }>) => { const x = await r; assert.equal(x.code, 0); return x.pid; };
    const mv = await ok(run('mv', [path.join(dir, 'x1'), path.join(etc, 'cron.d', 'x1')]));
    const ln = await ok(run('ln', [path.join(dir, 'x2'), path.join(etc, 'x2')]));
    const sym = await ok(run('ln', ['-s', '/nowhere', path.join(etc, 's1')]));
    const rm = await ok(run('rm', [path.join(etc, 'rm-me')]));
    const chmod = await ok(run('chmod', ['600', path.join(etc, 'mode')]));
    const chown = await ok(run('chown', ['65534:65534', path.join(etc, 'owner')]));
    const trunc = await ok(run('/usr/bin/python3', ['-c', `import os; os.truncate(${JSON.stringify(path.join(etc, 'trunc'))}, 0)`]));
    const py = (code: string) => ok(run('/usr/bin/python3', ['-c', `import os, stat\n${code}`]));
    const mkd = await ok(run('mkdir', [path.join(etc, 'newdir')]));
    const mkdAt = await py(`fd = os.open(${JSON.stringify(etc)}, os.O_RDONLY | os.O_DIRECTORY); os.mkdir('subdir', 0o700, dir_fd=fd)`);
    const fifo = await ok(run('mkfifo', [path.join(etc, 'fifo')]));
    const chr = await py(`os.mknod(${JSON.stringify(path.join(etc, 'null2'))}, 0o600 | stat.S_IFCHR, os.makedev(1, 3))`);
    // On a file opened read-only (no write open to alert on), then written through an fd.
    const fchmod = await py(`fd = os.open(${JSON.stringify(path.join(etc, 'fmode'))}, os.O_RDONLY); os.fchmod(fd, 0o640)`);
    const fchown = await py(`fd = os.open(${JSON.stringify(path.join(etc, 'fowner'))}, os.O_RDONLY); os.fchown(fd, 65534, -1)`);
    const ftrunc = await py(`fd = os.open(${JSON.stringify(path.join(etc, 'ftrunc'))}, os.O_WRONLY); os.ftruncate(fd, 3)`);
    // Named relative to the cwd, with "..", "//" and "."; through a symlinked directory.
    const rel = await ok(run('mv', ['x3', '..//etc/./cron.d/../x3'], undefined, out));
    const viaLink = await ok(run('mv', [path.join(dir, 'x4'), path.join(dir, 'lnk', 'x4')]));
    const relChmod = await ok(run('chmod', ['640', '../lnk/mode'], undefined, out));
    // Out of the watched place: the source is watched.
    const moveOut = await ok(run('mv', [path.join(etc, 'leave'), path.join(out, 'leave')]));
    // Benign twins: the same operations outside the prefix.
    const benign = [
      await ok(run('mv', [path.join(out, 'b1'), path.join(out, 'b1.moved')])),
      await ok(run('ln', [path.join(out, 'b2'), path.join(out, 'b2.link')])),
      await ok(run('ln', ['-s', etc, path.join(out, 'b.sym')])),
      await ok(run('rm', [path.join(out, 'b3')])),
      await ok(run('chmod', ['600', path.join(out, 'b2')])),
      await ok(run('chown', ['65534:65534', path.join(out, 'b2')])),
      await ok(run('mv', ['b1.moved', '../out/./b1.back'], undefined, out)),
      await ok(run('mkdir', [path.join(out, 'd1')])),
      await py(`fd = os.open(${JSON.stringify(path.join(out, 'b4'))}, os.O_RDWR); os.fchmod(fd, 0o600); os.fchown(fd, 65534, -1); os.ftruncate(fd, 1)`),
    ];

    const mine = () => readLogs(agent.dataDir).filter((l) => String(l.attributes['telegen.security.rule.id'] ?? '').startsWith('t-'));
    const expected = [mv, ln, sym, rm, chmod, chown, trunc, rel, viaLink, relChmod, moveOut, mkd, mkdAt, fifo, chr, fchmod, fchown, ftrunc];
    await waitFor(() => expected.every((pid) => mine().some((l) => l.attributes['process.pid'] === pid)), 30_000);
    await new Promise((r) => setTimeout(r, 1500));
    const logs = mine();
    const of = (pid: number, rule = 't-etc-change') => logs.filter((l) => l.attributes['process.pid'] === pid && l.attributes['telegen.security.rule.id'] === rule);
    const one = (pid: number, op: string, file: string, more: Record<string, unknown> = {}) => {
      const l = of(pid);
      assert.equal(l.length, 1, `${op} pid ${pid}: ${JSON.stringify(logs.filter((x) => x.attributes['process.pid'] === pid))}`);
      const a = l[0].attributes;
      assert.deepEqual([a['telegen.security.event'], a['telegen.file.operation'], a['file.path'], a['telegen.security.result']], ['file_change', op, file, 'success']);
      for (const [k, v] of Object.entries(more)) assert.equal(a[k], v, `${op}: ${k}`);
      assert.equal(a['telegen.file.path_unresolved'], undefined);
      return l[0];
    };
    one(mv, 'rename', path.join(etc, 'cron.d', 'x1'), { 'telegen.file.source.path': path.join(dir, 'x1') });
    one(ln, 'link', path.join(etc, 'x2'), { 'telegen.file.source.path': path.join(dir, 'x2') });
    one(sym, 'symlink', path.join(etc, 's1'), { 'file.symbolic_link.target_path': '/nowhere' });
    one(rm, 'unlink', path.join(etc, 'rm-me'));
    one(chmod, 'chmod', path.join(etc, 'mode'), { 'file.mode': '0600' });
    one(chown, 'chown', path.join(etc, 'owner'), { 'file.owner.id': '65534', 'file.group.id': '65534' });
    one(trunc, 'truncate', path.join(etc, 'trunc'), { 'file.size': 0 });
    one(rel, 'rename', path.join(etc, 'x3'), { 'telegen.file.source.path': path.join(out, 'x3') });
    one(viaLink, 'rename', path.join(etc, 'x4'), { 'telegen.file.source.path': path.join(dir, 'x4') });
    one(relChmod, 'chmod', path.join(etc, 'mode'), { 'file.mode': '0640' });
    one(moveOut, 'rename', path.join(out, 'leave'), { 'telegen.file.source.path': path.join(etc, 'leave') });
    one(mkd, 'mkdir', path.join(etc, 'newdir'), { 'file.mode': '0777' });
    one(mkdAt, 'mkdir', path.join(etc, 'subdir'), { 'file.mode': '0700' });
    one(fifo, 'mknod', path.join(etc, 'fifo'), { 'telegen.file.type': 'fifo', 'file.mode': '0666' });
    one(chr, 'mknod', path.join(etc, 'null2'), { 'telegen.file.type': 'character_device', 'telegen.file.device': '1:3', 'file.mode': '0600' });
    one(fchmod, 'chmod', path.join(etc, 'fmode'), { 'file.mode': '0640', 'telegen.security.syscall': 'fchmod' });
    one(fchown, 'chown', path.join(etc, 'fowner'), { 'file.owner.id': '65534', 'file.group.id': undefined });
    one(ftrunc, 'truncate', path.join(etc, 'ftrunc'), { 'file.size': 3 });
    // operation: [chmod] selects only the chmods
    assert.deepEqual(logs.filter((l) => l.attributes['telegen.security.rule.id'] === 't-etc-chmod').map((l) => l.attributes['process.pid']).sort(), [chmod, relChmod, fchmod].sort());
    assert.equal(of(chmod, 't-etc-chmod')[0].severityText, 'ERROR');
    assert.match(String(of(mv)[0].body), new RegExp(`rename ${path.join(dir, 'x1')} to ${path.join(etc, 'cron.d', 'x1')}$`));
    for (const pid of benign) assert.deepEqual(logs.filter((l) => l.attributes['process.pid'] === pid), [], `no record for benign pid ${pid}`);
    assert.equal(logs.length, expected.length + 3, 'nothing else');
  } finally {
    assert.equal(await agent.stop(), 0);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
