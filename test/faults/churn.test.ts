// Short-lived processes exec'ing and connecting once each: the per-connection (tg_conns) and
// per-process (tg_pids) kernel maps drain back as those processes exit, the host keeps no
// per-process state, and the agent's memory stays bounded. Each client exits without close(), so
// the kernel closes its socket at exit (no close syscall to see): the exit handler must forget it.
// CI size: 1000 processes (about a minute on the shared 2-core machine); TELEGEN_CHURN_PROCS=10000
// runs the long variant (issue 12). The default tracers run, the TCP metrics tracer included: its
// series carry process.pid, and the series of an exited process must be exported once more and
// then forgotten (tracers/tcp-series.ts), or every short-lived process would stay a series.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { execFileSync, spawn } from 'child_process';
import { repoRoot } from '../helpers/decoder';
import { requireBpf, startAgent, waitFor } from '../helpers/agent';
import { ownedBy, metrics, sum, faultConfig, BpfObj } from './helpers';

const N = Number(process.env.TELEGEN_CHURN_PROCS || 1000);
const WARMUP = 200;

/** Pids that own entries of a hash map keyed by pid (tg_pids) or by {pid, fd} (tg_conns). */
function mapPids(map: BpfObj): number[] {
  const out = execFileSync('bpftool', ['map', 'dump', 'id', String(map.id), '-j'], { encoding: 'utf8', maxBuffer: 256 << 20 });
  const rows = (out.trim() ? JSON.parse(out) : []) as Array<{ key?: unknown; formatted?: { key?: unknown } }>;
  return rows.map((r) => {
    const k = r.formatted?.key ?? r.key;
    if (typeof k === 'number') return k;
    if (k && typeof k === 'object' && 'pid' in k) return Number((k as { pid: number }).pid);
    // Raw bytes ("0x2a", …): the pid is the first little-endian u32 of the key.
    const b = (k as string[]).slice(0, 4).map((x) => parseInt(x, 16));
    return b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24);
  });
}

function rssKb(pid: number): number {
  return Number(/^VmRSS:\s*(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
}

/** Runs `n` clients, 4 at a time, each its own exec'd process; resolves to the pids that ran. */
function churn(client: string, port: number, n: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    // xargs execs the client directly (it ignores the sequence number xargs appends).
    const p = spawn('sh', ['-c', `seq ${n} | xargs -P 4 -n 1 ${client} ${port}`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout!.on('data', (d) => { out += d; });
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve(out.split('\n').filter(Boolean).map(Number)) : reject(new Error(`churn exited ${code}`))));
  });
}

test(`${N} short-lived processes exec'ing and connecting: tg_conns and tg_pids drain, agent memory bounded`, { timeout: Math.max(300_000, N * 150) }, async (t) => {
  if (!requireBpf(t)) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-churn-'));
  const client = path.join(dir, 'client');
  execFileSync('cc', ['-O2', '-static', '-o', client, path.join(repoRoot, 'test', 'fixtures', 'churn', 'client.c')]);
  // Metrics collected every 2 s: the TCP tracer forgets an exited process's series at the collection
  // after its exit.
  const agent = await startAgent({ config: faultConfig(dir), env: { TELEGEN_METRICS_INTERVAL_MS: '2000' } });
  let accepted = 0;
  // The server side closes with close(): only the clients take the exit path.
  const server = net.createServer((s) => { accepted++; s.on('error', () => undefined); s.end(); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  try {
    const maps = ownedBy(agent.proc.pid!).maps;
    const conns = maps.find((m) => m.name === 'tg_conns');
    const pids = maps.find((m) => m.name === 'tg_pids');
    assert.ok(conns && pids, `the agent holds tg_conns and tg_pids (found ${maps.map((m) => m.name).join(', ')})`);
    // Warm-up: lazily built host state (decoders, caches) exists before memory is measured.
    await churn(client, port, WARMUP);
    const rss0 = rssKb(agent.proc.pid!);
    const opens0 = sum(await metrics(agent), 'telegen_bpf_conn_open_total', { tracer: 'socket' });

    const ran = new Set(await churn(client, port, N));
    assert.equal(ran.size, N, 'every client connected, read to EOF and exited 0');
    assert.ok(accepted >= N + WARMUP, `listener accepted ${accepted}`);

    // Entries the churn processes left behind: none once the exit events are processed. Other
    // processes on the machine own the rest of the map and are not counted.
    const leftIn = (m: BpfObj) => mapPids(m).filter((p) => ran.has(p)).length;
    const left = await waitFor(() => { const l = { conns: leftIn(conns), pids: leftIn(pids) }; return l.conns + l.pids === 0 ? l : false; }, 30_000, 1000)
      .catch(() => ({ conns: leftIn(conns), pids: leftIn(pids) }));
    const opens = sum(await metrics(agent), 'telegen_bpf_conn_open_total', { tracer: 'socket' }) - opens0;
    // The TCP tracer's per-process series of the exited clients are forgotten, not kept forever.
    const tcpSeries = async () => { const m = await metrics(agent); return { series: sum(m, 'telegen_metric_series', {}), forgotten: sum(m, 'telegen_metric_series_forgotten_total', { tracer: 'tcp' }) }; };
    const series = await waitFor(async () => { const s = await tcpSeries(); return s.series < N / 4 && s.forgotten >= N ? s : false; }, 30_000, 1000)
      .catch(async () => tcpSeries());
    const rss1 = rssKb(agent.proc.pid!);
    t.diagnostic(`${N} processes; tg_conns entries left ${left.conns}, tg_pids entries left ${left.pids}; conn opens seen ${opens}; TCP metric series ${series.series}, forgotten ${series.forgotten}; agent RSS ${rss0} → ${rss1} kB`);
    assert.ok(opens >= N, `the tracer saw ${opens} connection opens for ${N} processes`);
    assert.deepEqual(left, { conns: 0, pids: 0 }, 'map entries of exited processes');
    assert.ok(series.forgotten >= N, `TCP metric series of exited processes forgotten: ${series.forgotten} for ${N} processes`);
    assert.ok(series.series < N / 4, `TCP metric series held after the churn: ${series.series}`);
    // Nothing per process survives in the host either: growth far below what N processes' worth
    // of state would cost, whatever the garbage collector's timing.
    assert.ok(rss1 - rss0 < 64 * 1024, `agent RSS grew by ${rss1 - rss0} kB over ${N} processes`);
    assert.ok((await agent.api('/readyz')).ok);
    assert.equal(await agent.stop(), 0);
  } finally {
    server.close();
    if (agent.proc.exitCode === null && agent.proc.signalCode === null) agent.proc.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
