// Logs of a service's child processes: a process forked by a selected service (PostgreSQL's
// backends, forked by the postmaster that accepted the connection; a shell-out) writes to the
// stdout/stderr it inherited — the service's log — and those lines are the service's logs too;
// a child whose stdout was made a pipe to the service writes data, not logs. The oracle is what
// each process printed (the fixture's own output and its pid list).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'net';
import * as path from 'path';
import { spawn } from 'child_process';
import { once } from 'events';
import { requireBpf, startAgent, waitFor } from '../helpers/agent';
import { readLogs, tracerConfig } from './helpers';

const FIXTURE = path.join(__dirname, '..', '..', '..', 'test', 'tracers', 'fixtures', 'log-heirs.py');

test('logs: lines a selected service\'s forked children write to the stdout/stderr they inherited are captured; a child\'s piped stdout is not', { timeout: 90_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const agent = await startAgent({ config: tracerConfig({ logs: { enabled: true, services: true, link_wait_ms: 100, poll_ms: 50 } }) });
  const svc = spawn('python3', [FIXTURE], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let out = '', err = '';
    svc.stdout!.on('data', (d) => { out += d; });
    svc.stderr!.on('data', (d) => { err += d; });
    await waitFor(() => /^port \d+$/m.test(out), 15_000, 20);
    const port = Number(/^port (\d+)$/m.exec(out)![1]);
    const c = net.connect(port, '127.0.0.1');
    await once(c, 'connect');
    c.write('go');
    const [code] = await once(svc, 'exit');
    c.destroy();
    assert.equal(code, 0, err);
    // What the processes printed on the service's stdout and stderr (the oracle).
    const [service, forked, inherited, piped] = /^pids (\d+) (\d+) (\d+) (\d+)$/m.exec(out)!.slice(1).map(Number);
    assert.deepEqual(out.split('\n').filter((l) => l && !l.startsWith('port') && !l.startsWith('pids')), ['service line', 'inherited child line', 'got piped child line']);
    assert.equal(err, 'forked child line\n');
    const lines = () => readLogs(agent.dataDir).filter((l) => [service, forked, inherited, piped].includes(l.attributes['process.pid'] as number))
      .map((l) => [l.attributes['process.pid'], l.attributes['log.iostream'], l.body]);
    await waitFor(() => lines().some(([, , b]) => b === 'got piped child line'), 20_000).catch(() => { /* asserted below */ });
    await new Promise((r) => setTimeout(r, 1000));
    assert.deepEqual(lines().sort(), [
      [service, 'stdout', 'service line'],
      [service, 'stdout', 'got piped child line'],
      [service, 'stdout', `pids ${service} ${forked} ${inherited} ${piped}`],
      [forked, 'stderr', 'forked child line'],
      [inherited, 'stdout', 'inherited child line'],
    ].sort());
  } finally {
    if (svc.exitCode === null) svc.kill('SIGKILL');
    assert.equal(await agent.stop(), 0);
  }
});
