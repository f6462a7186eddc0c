// Security monitor, exec rules by path: a file in a watched directory is executed by every name
// that is not its absolute path — relative to the cwd, through a symlink elsewhere, with
// execveat(dirfd, name), fexecve(fd), as a shebang script run by a relative name — and a memfd
// copy of it is executed (fileless); each must raise the rule, with the path it resolved to. The
// oracle is what the test ran (pid of each exec, file it executed); benign execs outside the
// directory raise nothing. A script given to its interpreter (sh x.sh) is executed as surely: it
// matches by its path too, while code given inline (sh -c, python3 -c) names no script.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn } from 'child_process';
import { once } from 'events';
import { requireBpf, startAgent, waitFor } from '../helpers/agent';
import { readLogs, tracerConfig } from './helpers';

const VIA = path.join(__dirname, '..', '..', '..', 'test', 'tracers', 'fixtures', 'exec-via.py');

async function run(cmd: string, args: string[], cwd?: string): Promise<number> {
  const p = spawn(cmd, args, { cwd, stdio: ['ignore', 'ignore', 'inherit'] });
  const [code] = await once(p, 'exit');
  assert.equal(code, 0, `${cmd} ${args.join(' ')}`);
  return p.pid!;
}

test('security: exec rules match the file executed however it was named (relative, symlink, execveat, fexecve, script) and a memfd exec is named as one', { timeout: 90_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'tgsec-exec-')));
  const watched = path.join(tmp, 'watched');
  const other = path.join(tmp, 'other');
  const policyDir = path.join(tmp, 'policy');
  for (const d of [watched, other, policyDir]) fs.mkdirSync(d);
  const payload = path.join(watched, 'payload');
  fs.copyFileSync('/usr/bin/true', payload);
  fs.chmodSync(payload, 0o755);
  fs.symlinkSync(payload, path.join(other, 'alias'));
  fs.writeFileSync(path.join(watched, 'job.sh'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  fs.copyFileSync('/usr/bin/true', path.join(other, 'benign'));
  fs.chmodSync(path.join(other, 'benign'), 0o755);
  fs.writeFileSync(path.join(policyDir, 'rules.yaml'), `rules:
  - id: t-exec-watched
    description: a file of the watched directory executed
    event: exec
    match: { path_prefix: ["${watched}/"] }
    rate_limit: { per_second: 100, burst: 100 }
  - id: t-exec-memfd
    description: fileless exec
    event: exec
    match: { path_prefix: ["/memfd:"] }
`);
  const agent = await startAgent({ config: tracerConfig({ security: { enabled: true, policy_dir: policyDir, reload_ms: 200, poll_ms: 50 } }) });
  try {
    const ran: Array<[string, number]> = [];
    ran.push(['absolute', await run(payload, [])]);
    ran.push(['relative', await run('./payload', [], watched)]);
    ran.push(['symlink', await run(path.join(other, 'alias'), [])]);
    ran.push(['execveat', await run('python3', [VIA, 'execveat', payload])]);
    ran.push(['fexecve', await run('python3', [VIA, 'fexecve', payload])]);
    ran.push(['script', await run('./job.sh', [], watched)]);
    const memfd = await run('python3', [VIA, 'memfd', payload]);
    // Benign twins: the same kind of file outside the watched directory, by relative name too.
    const benign = [await run(path.join(other, 'benign'), []), await run('./benign', [], other), await run('/usr/bin/true', [])];

    const alerts = () => readLogs(agent.dataDir).filter((l) => String(l.attributes['telegen.security.rule.id'] ?? '').startsWith('t-exec-'));
    const forPid = (pid: number) => alerts().filter((l) => l.attributes['process.pid'] === pid);
    await waitFor(() => [...ran.map(([, pid]) => pid), memfd].every((pid) => forPid(pid).length > 0), 20_000).catch(() => { /* asserted below */ });
    // The benign execs ran before the last watched one was reported: nothing more is coming for them.
    const missing = ran.filter(([, pid]) => !forPid(pid).some((l) => l.attributes['telegen.security.rule.id'] === 't-exec-watched')).map(([how]) => how);
    assert.deepEqual(missing, [], `execs not reported: ${missing.join(', ')}; all: ${JSON.stringify(alerts().map((l) => l.attributes))}`);
    for (const [how, pid] of ran) {
      const l = forPid(pid);
      assert.equal(l.length, 1, how);
      const a = l[0].attributes;
      // The file that ran (for the script, the script; its interpreter runs it).
      assert.equal(a['telegen.exec.resolved_path'], how === 'script' ? fs.realpathSync('/bin/sh') : payload, `${how}: ${JSON.stringify(a)}`);
    }
    const script = forPid(ran.find(([how]) => how === 'script')![1])[0].attributes;
    assert.equal(script['process.executable.path'], path.join(watched, 'job.sh'), 'a relative name is made absolute from the cwd');
    const rel = forPid(ran.find(([how]) => how === 'relative')![1])[0].attributes;
    assert.equal(rel['process.executable.path'], payload);
    const m = forPid(memfd);
    assert.deepEqual(m.map((l) => [l.attributes['telegen.security.rule.id'], l.attributes['telegen.exec.resolved_path']]), [['t-exec-memfd', '/memfd:tg-fileless']], JSON.stringify(readLogs(agent.dataDir).filter((l) => l.attributes['process.pid'] === memfd).map((l) => l.attributes)));
    for (const pid of benign) assert.deepEqual(forPid(pid), [], `benign exec ${pid}`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
    assert.equal(await agent.stop(), 0);
  }
});

test('security: a script run through its interpreter (sh x.sh, bash -e -- /abs/x.sh, python3 -u x.py, perl -w x.pl) matches exec rules on the script\'s path, named as telegen.exec.script_path; an interpreter given code inline does not', { timeout: 90_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'tgsec-script-')));
  const watched = path.join(tmp, 'watched');
  const other = path.join(tmp, 'other');
  const policyDir = path.join(tmp, 'policy');
  for (const d of [watched, other, policyDir]) fs.mkdirSync(d);
  // Not executable: an interpreter reads them, nothing execs them.
  fs.writeFileSync(path.join(watched, 'job.sh'), 'exit 0\n');
  fs.writeFileSync(path.join(watched, 'tool.py'), 'import sys\nsys.exit(0)\n');
  fs.writeFileSync(path.join(watched, 'x.pl'), 'exit 0;\n');
  fs.writeFileSync(path.join(other, 'job.sh'), 'exit 0\n');
  fs.writeFileSync(path.join(policyDir, 'rules.yaml'), `rules:
  - id: t-script-watched
    description: a script of the watched directory run
    event: exec
    match: { path_prefix: ["${watched}/"] }
    rate_limit: { per_second: 100, burst: 100 }
  - id: t-script-by-name
    description: tool.py run by any means
    event: exec
    match: { executable: ["tool.py"] }
`);
  const agent = await startAgent({ config: tracerConfig({ security: { enabled: true, policy_dir: policyDir, reload_ms: 200, poll_ms: 50 } }) });
  try {
    // Benign first: the watched runs are reported after them, so nothing more comes for these.
    const benign = [
      await run('sh', ['-c', 'exit 0', path.join(watched, 'job.sh')]), // the file is only $0
      await run('python3', ['-c', 'pass', path.join(watched, 'tool.py')]), // sys.argv[1]
      await run('sh', ['job.sh'], other),
    ];
    const ran: Array<[string, number, string]> = [
      ['sh relative', await run('sh', ['job.sh'], watched), path.join(watched, 'job.sh')],
      ['bash -e --', await run('bash', ['-e', '--', path.join(watched, 'job.sh')]), path.join(watched, 'job.sh')],
      ['python3 -u', await run('python3', ['-u', 'watched/tool.py'], tmp), path.join(watched, 'tool.py')],
      ['perl -w', await run('perl', ['-w', path.join(watched, 'x.pl')]), path.join(watched, 'x.pl')],
    ];
    const alerts = () => readLogs(agent.dataDir).filter((l) => String(l.attributes['telegen.security.rule.id'] ?? '').startsWith('t-script-'));
    const forPid = (pid: number) => alerts().filter((l) => l.attributes['process.pid'] === pid);
    await waitFor(() => ran.every(([, pid]) => forPid(pid).length > 0) && forPid(ran[2][1]).length === 2, 20_000).catch(() => { /* asserted below */ });
    for (const [how, pid, script] of ran) {
      const l = forPid(pid);
      const want = how.startsWith('python3') ? ['t-script-by-name', 't-script-watched'] : ['t-script-watched'];
      assert.deepEqual(l.map((x) => x.attributes['telegen.security.rule.id']).sort(), want, `${how}: ${JSON.stringify(alerts().map((x) => x.attributes))}`);
      assert.equal(l[0].attributes['telegen.exec.script_path'], script, how);
      // The exec itself is the interpreter's.
      assert.ok(!String(l[0].attributes['process.executable.path']).startsWith(watched), how);
    }
    for (const pid of benign) assert.deepEqual(forPid(pid), [], `benign exec ${pid}`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
    assert.equal(await agent.stop(), 0);
  }
});
