// Processes that start, exec and exit are picked up by the engine's /proc rescans (1 s) without
// anyone asking for them; exec (same pid, new executable) is re-read.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Discovery } from '../../host/src/discovery';
import { waitFor } from '../helpers/agent';

test('start, exec and exit of a real process are reflected within a few scans', async () => {
  const d = new Discovery({ port_hints: false, kubernetes: { enabled: 'false', labels: [], annotations: [] } });
  await d.start();
  const child = spawn('/bin/sh', ['-c', 'read line; exec sleep 60'], { stdio: ['pipe', 'ignore', 'ignore'], env: { ...process.env, OTEL_SERVICE_NAME: 'lifecycle-probe' } });
  const pid = child.pid!;
  try {
    const first = await waitFor(() => d.procs.get(pid));
    assert.equal(first.executableName, 'dash');
    assert.equal(first.serviceName, 'lifecycle-probe');
    child.stdin!.write('go\n');
    const after = await waitFor(() => { const p = d.procs.get(pid); return p && p.executableName === 'sleep' ? p : undefined; });
    assert.equal(after.executablePath, '/usr/bin/sleep');
    assert.equal(after.serviceName, 'lifecycle-probe', 'exec keeps the environment');
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await gone;
    await waitFor(() => !d.procs.has(pid));
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    d.stop();
  }
});

test('a process caught inside execve (new executable, no arguments or environment yet) is read again', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-proc-exec-'));
  const d0 = path.join(root, '5151');
  fs.mkdirSync(d0);
  fs.symlinkSync(process.execPath, path.join(d0, 'exe'));
  fs.writeFileSync(path.join(d0, 'cmdline'), '');
  fs.writeFileSync(path.join(d0, 'environ'), '');
  fs.writeFileSync(path.join(d0, 'status'), 'Name:\tnode\nPPid:\t1\nUid:\t0\t0\t0\t0\n');
  fs.writeFileSync(path.join(d0, 'cgroup'), '0::/\n');
  const d = new Discovery({ proc_root: root, port_hints: false, kubernetes: { enabled: 'false', labels: [], annotations: [] } });
  try {
    assert.equal(d.resource(5151)['service.name'], 'node', 'nothing but the executable to go on yet');
    // execve finishes: the new image's stack now holds its arguments and environment.
    fs.writeFileSync(path.join(d0, 'cmdline'), 'node\0backend.js\0');
    fs.writeFileSync(path.join(d0, 'environ'), 'PATH=/bin\0OTEL_SERVICE_NAME=backend\0');
    const named = await waitFor(() => d.resource(5151)['service.name'] === 'backend' ? d.resource(5151) : undefined, 2000);
    assert.equal(named['process.command_line'], 'node backend.js');
    assert.equal(d.procs.get(5151)!.unsettledUntil, undefined, 'settled: no more re-reads');
    // A process that really has no arguments stops being re-read after a bounded time.
    const d1 = path.join(root, '5252');
    fs.mkdirSync(d1);
    fs.symlinkSync(process.execPath, path.join(d1, 'exe'));
    for (const f of ['cmdline', 'environ']) fs.writeFileSync(path.join(d1, f), '');
    fs.writeFileSync(path.join(d1, 'status'), 'Name:\tnode\nPPid:\t1\nUid:\t0\t0\t0\t0\n');
    const p = d.process(5252);
    assert.ok(p.unsettledUntil! - p.firstSeen <= 3000);
  } finally {
    d.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
});
