// Exec-time attach when the new executable's inode number is one the agent already looked at.
// The Go tracer keys files by dev:inode (in user space and in the kernel's go_exec_known). A
// non-Go program the agent saw exec'd, then deleted, freed its inode, and ext4 hands a freed inode
// to the next new file in that directory: a Go server copied there matched the old "not Go" entry,
// so its exec raised no event, it was not held and not hooked, and its first request was
// untraced (http2-late's exec-time attach test failed so once on a busy host).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'child_process';
import * as fs from 'fs';
import { startAgent, waitFor } from '../helpers/agent';
import { goTlsFixtures, agentGoStatus, startGoTlsServer, httpsGetBody } from './helpers';

const SERVER = 2;

test('exec-time attach: a Go server in a new file where a deleted non-Go executable was has its first request traced', { timeout: 180_000 }, async (t) => {
  const fx = goTlsFixtures(t);
  if (!fx) return;
  const { pki, srv } = fx;
  const cfg = `${pki.dir}/agent.yaml`;
  // No rescan during the test: only exec events can find the server.
  fs.writeFileSync(cfg, 'tracers:\n  profile: { enabled: false }\n  go: { rescan_ms: 600000, safety_rescan_ms: 3600000, exec_hold: true }\n');
  const agent = await startAgent({ config: cfg });
  let server: ReturnType<typeof spawn> | undefined;
  try {
    // A non-Go program, run long enough for the agent to look at it, then deleted.
    const tool = `${pki.dir}/tool`;
    fs.copyFileSync('/bin/sleep', tool);
    fs.chmodSync(tool, 0o755);
    const toolIno = fs.statSync(tool).ino;
    // It runs 1.5 s: its exec event is read and its file looked at while it runs.
    execFileSync(tool, ['1.5']);
    fs.rmSync(tool);

    const fresh = `${pki.dir}/server-fresh`;
    fs.copyFileSync(srv.stripped, fresh);
    fs.chmodSync(fresh, 0o755);
    t.diagnostic(`deleted tool inode ${toolIno}, new server inode ${fs.statSync(fresh).ino}`);
    const started = startGoTlsServer(fresh, pki);
    const proc = started.proc;
    server = proc;
    const port = await started.port;
    const body = await httpsGetBody(port, '/hello', pki);
    assert.match(body, /hello from go HTTP\/1\.1 \/hello/);
    await waitFor(() => agent.spans().some((x) => x.kind === SERVER && x.attributes['process.pid'] === proc.pid && x.attributes['url.path'] === '/hello'), 30_000)
      .catch(() => assert.fail(`the first request to the new server is not traced: ${JSON.stringify(agent.spans().filter((x) => x.attributes['server.port'] === port))}`));
    const hooked = (await agentGoStatus(agent.apiPort)).find((x) => x.pids.includes(proc.pid!));
    assert.ok(hooked?.instrumented, JSON.stringify(hooked));
  } finally {
    if (server && server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
    assert.equal(await agent.stop(), 0);
    fs.rmSync(pki.dir, { recursive: true, force: true });
  }
});
