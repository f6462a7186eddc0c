// Processes that start, exec and exit are picked up by the engine's /proc rescans (1 s) without
// anyone asking for them; exec (same pid, new executable) is re-read.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'child_process';
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
