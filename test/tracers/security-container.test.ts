// Security alerts name the container and pod of the process, also for a process that exited at
// once: the test makes a cgroup v2 tree shaped as containerd under Kubernetes makes it
// (kubepods-besteffort-pod<uid>.slice/cri-containerd-<id>.scope), starts processes in it that
// exec a watched file and call setuid, and expects container.id, container.runtime and
// k8s.pod.uid on their alerts — the oracle is the cgroup each process reported for itself;
// the same actions outside it carry no container.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn } from 'child_process';
import { once } from 'events';
import { requireBpf, startAgent, waitFor } from '../helpers/agent';
import { readLogs, tracerConfig } from './helpers';

const V2 = fs.existsSync('/sys/fs/cgroup/cgroup.procs') && !fs.existsSync('/sys/fs/cgroup/unified') ? '/sys/fs/cgroup' : '/sys/fs/cgroup/unified';

async function run(cmd: string, args: string[]): Promise<{ pid: number; out: string }> {
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  p.stdout!.on('data', (d) => { out += d; });
  const [code] = await once(p, 'exit');
  assert.equal(code, 0, `${cmd} ${args.join(' ')}`);
  return { pid: p.pid!, out };
}

test('security: alerts of a process in a container cgroup carry container.id, runtime and pod uid, though it exited at once', { timeout: 90_000 }, async (t) => {
  if (!requireBpf(t)) return;
  if (!fs.existsSync(path.join(V2, 'cgroup.procs'))) { t.skip('no cgroup v2 hierarchy'); return; }
  const tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'tgsec-ctr-')));
  const watched = path.join(tmp, 'watched');
  const policyDir = path.join(tmp, 'policy');
  for (const d of [watched, policyDir]) fs.mkdirSync(d);
  const payload = path.join(watched, 'payload');
  fs.copyFileSync('/usr/bin/true', payload);
  fs.chmodSync(payload, 0o755);
  const containerId = crypto.randomBytes(32).toString('hex');
  const podUid = crypto.randomUUID();
  const top = path.join(V2, `tgsec-${process.pid}`);
  const pod = path.join(top, `kubepods-besteffort-pod${podUid.replace(/-/g, '_')}.slice`);
  const ctr = path.join(pod, `cri-containerd-${containerId}.scope`);
  fs.mkdirSync(ctr, { recursive: true });
  fs.writeFileSync(path.join(policyDir, 'rules.yaml'), `rules:
  - id: t-ctr-exec
    description: watched file executed
    event: exec
    match: { path_prefix: ["${watched}/"] }
  - id: t-ctr-setuid
    description: setuid to nobody
    event: setuid
    match: { target_id: [65534], result: success }
`);
  const agent = await startAgent({ config: tracerConfig({ security: { enabled: true, policy_dir: policyDir, reload_ms: 200, poll_ms: 50 } }) });
  try {
    const procs = path.join(ctr, 'cgroup.procs');
    // Each joins the container's cgroup, says where it is, then does the watched thing and exits.
    const exec = await run('sh', ['-c', 'echo $$ > "$0" && grep "^0::" /proc/self/cgroup && exec "$1"', procs, payload]);
    const setuid = await run('sh', ['-c', 'echo $$ > "$0" && grep "^0::" /proc/self/cgroup && exec python3 -c "import os; os.setuid(65534)"', procs]);
    const expectedCgroup = `0::${ctr.slice(V2.length)}`;
    assert.equal(exec.out.trim(), expectedCgroup);
    assert.equal(setuid.out.trim(), expectedCgroup);
    const outside = await run(payload, []);

    const alerts = (pid: number) => readLogs(agent.dataDir).filter((l) => l.attributes['process.pid'] === pid && String(l.attributes['telegen.security.rule.id']).startsWith('t-ctr-'));
    await waitFor(() => alerts(exec.pid).length && alerts(setuid.pid).length && alerts(outside.pid).length, 20_000);
    const fields = (pid: number) => alerts(pid).map((l) => [l.attributes['telegen.security.rule.id'], l.attributes['container.id'], l.attributes['container.runtime'], l.attributes['k8s.pod.uid']]);
    assert.deepEqual(fields(exec.pid), [['t-ctr-exec', containerId, 'containerd', podUid]]);
    assert.deepEqual(fields(setuid.pid), [['t-ctr-setuid', containerId, 'containerd', podUid]]);
    assert.deepEqual(fields(outside.pid), [['t-ctr-exec', undefined, undefined, undefined]]);
  } finally {
    for (const d of [ctr, pod, top]) { try { fs.rmdirSync(d); } catch { /* a process still in it */ } }
    fs.rmSync(tmp, { recursive: true, force: true });
    assert.equal(await agent.stop(), 0);
  }
  assert.ok(!fs.existsSync(top), 'cgroups removed');
});
