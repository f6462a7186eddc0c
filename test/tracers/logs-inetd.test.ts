// Logs of an inetd-style service, whose connection is its stdin/stdout (systemd's Accept=yes,
// here systemd-socket-activate --inetd -a): what it writes to the TCP socket on fd 1 is its
// protocol, which the client receives, not a log; its stderr is. The same program with stdout
// connected to a Unix stream socket (as systemd hands services journald's stdout stream) is
// logged on both. The oracles: the bytes the TCP client and the Unix listener received and the
// stderr the processes wrote (each line carries its writer's pid).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { spawn } from 'child_process';
import { once } from 'events';
import { requireBpf, startAgent, waitFor } from '../helpers/agent';
import { readLogs, tracerConfig } from './helpers';

// Its name (comm) is the script's: the agent selects it by that.
const SERVICE = '#!/usr/bin/python3\nimport os, sys\nos.write(2, b"log line %d\\n" % os.getpid())\nline = sys.stdin.readline().strip()\nos.write(1, b"reply:%s\\n" % line.encode())\n';
const STDOUT_TO_UNIX = 'import os, socket, sys\ns = socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\nos.dup2(s.fileno(), 1)\nos.execv(sys.argv[2], [sys.argv[2]])\n';

async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as net.AddressInfo;
  s.close();
  await once(s, 'close');
  return port;
}

test('logs: an inetd-style service\'s TCP connection on fd 1 is not captured as its log (its stderr is); a Unix stream stdout (journald\'s) still is', { timeout: 90_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tglogs-inetd-'));
  const script = path.join(dir, 'tginetd');
  fs.writeFileSync(script, SERVICE, { mode: 0o755 });
  const agent = await startAgent({ config: tracerConfig({ logs: { enabled: true, services: false, comms: ['tginetd'], link_wait_ms: 100, poll_ms: 50 } }) });
  const port = await freePort();
  const activate = spawn('systemd-socket-activate', ['-l', `127.0.0.1:${port}`, '--inetd', '-a', script], { stdio: ['ignore', 'ignore', 'pipe'] });
  const journal = net.createServer();
  try {
    let err = '';
    activate.stderr!.on('data', (d) => { err += d; });
    await waitFor(() => err.includes('Listening on'), 15_000, 20);
    const c = net.connect(port, '127.0.0.1');
    c.write('hi\n');
    let reply = '';
    c.on('data', (d) => { reply += d; });
    await once(c, 'end');
    assert.equal(reply, 'reply:hi\n');
    await waitFor(() => /log line \d+/.test(err), 15_000, 20);
    const inetdPid = Number(/log line (\d+)/.exec(err)![1]);

    // journald's stdout stream: a Unix stream socket connected to a listener.
    let journaled = '';
    journal.on('connection', (s) => s.on('data', (d) => { journaled += d; }));
    journal.listen(path.join(dir, 'stdout.sock'));
    await once(journal, 'listening');
    const p = spawn('python3', ['-c', STDOUT_TO_UNIX, path.join(dir, 'stdout.sock'), script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let perr = '';
    p.stderr!.on('data', (d) => { perr += d; });
    const [code] = await once(p, 'exit');
    assert.equal(code, 0, perr);
    await waitFor(() => journaled === 'reply:\n', 15_000, 20);
    const unixPid = Number(/log line (\d+)/.exec(perr)![1]);
    assert.equal(unixPid, p.pid);

    const lines = (pid: number) => readLogs(agent.dataDir).filter((l) => l.attributes['process.pid'] === pid).map((l) => [l.attributes['log.iostream'], l.body]);
    await waitFor(() => lines(unixPid).length >= 2 && lines(inetdPid).length >= 1, 20_000).catch(() => { /* asserted below */ });
    await new Promise((r) => setTimeout(r, 1000));
    assert.deepEqual(lines(inetdPid), [['stderr', `log line ${inetdPid}`]]);
    assert.deepEqual(lines(unixPid).sort(), [['stderr', `log line ${unixPid}`], ['stdout', 'reply:']]);
  } finally {
    activate.kill('SIGTERM');
    journal.close();
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(await agent.stop(), 0);
  }
});
