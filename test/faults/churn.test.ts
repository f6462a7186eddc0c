// 10k short-lived processes, each exec'ing and opening one TCP connection to a local listener:
// the socket tracer's per-connection LRU hash drains back (closes remove entries), so churn does
// not leak kernel map entries.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'net';
import { spawn } from 'child_process';
import { requireBpf, startAgent } from '../helpers/agent';
import { ownedBy, mapEntries, metrics, sum, faultConfig } from './helpers';
import * as os from 'os';

const N = Number(process.env.TELEGEN_CHURN_PROCS || 10_000);

test(`${N} short-lived processes exec'ing and connecting: tg_conns drains, agent stays up`, { timeout: 900_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const agent = await startAgent({ config: faultConfig(os.tmpdir()) });
  let accepted = 0;
  const server = net.createServer((s) => { accepted++; s.on('error', () => undefined); s.end(); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  try {
    const conns = ownedBy(agent.proc.pid!).maps.find((m) => m.name === 'tg_conns');
    assert.ok(conns, 'the agent holds tg_conns');
    const base = mapEntries(conns.id);
    const opens0 = sum(await metrics(agent), 'telegen_bpf_conn_open_total', { tracer: 'socket' });
    // xargs -P4 runs N bash processes; each execs, connects with /dev/tcp, reads the close, exits.
    const code = await new Promise<number | null>((resolve) => {
      const p = spawn('sh', ['-c', `seq ${N} | xargs -P 4 -I{} bash -c 'exec 3<>/dev/tcp/127.0.0.1/${port}; cat <&3 >/dev/null'`], { stdio: 'ignore' });
      p.on('exit', resolve);
    });
    assert.equal(code, 0);
    assert.ok(accepted >= N, `listener accepted ${accepted}`);
    let after = mapEntries(conns.id);
    for (let i = 0; i < 30 && after > base + 50; i++) { await new Promise((r) => setTimeout(r, 1000)); after = mapEntries(conns.id); }
    const opens = sum(await metrics(agent), 'telegen_bpf_conn_open_total', { tracer: 'socket' }) - opens0;
    t.diagnostic(`tg_conns entries before ${base}, after ${after}; conn opens seen ${opens}`);
    assert.ok(opens >= N, `the tracer saw ${opens} connection opens for ${N} processes`);
    // Unrelated processes may hold a few connections open meanwhile: allow a small slack, far below N.
    assert.ok(after <= base + 50, `tg_conns grew from ${base} to ${after} entries`);
    assert.ok((await agent.api('/readyz')).ok);
    assert.equal(await agent.stop(), 0);
  } finally {
    server.close();
    if (agent.proc.exitCode === null) agent.proc.kill('SIGKILL');
  }
});
