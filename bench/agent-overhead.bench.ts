// Overhead on a traced service: a Node HTTP server on loopback driven by wrk at saturation, with
// the agent off and on, alternating, several rounds, in one run. Reports throughput and latency
// ratios, agent CPU per 1k req/s, agent RSS, and how many requests became spans.
import { spawn, spawnSync, ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spread, writeResult, repoRoot, cpuSecondsOf, rssBytesOf } from './lib';

function startNode(): Promise<{ proc: ChildProcess; port: number }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [path.join(repoRoot, 'test', 'fixtures', 'http-server.js'), '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    proc.stdout!.on('data', (d) => { const m = /listening (\d+)/.exec(String(d)); if (m) resolve({ proc, port: Number(m[1]) }); });
    proc.once('exit', (c) => reject(new Error(`server exited ${c}`)));
  });
}

async function startAgent(dataDir: string, apiPort: number): Promise<ChildProcess> {
  const proc = spawn(process.execPath, [path.join(repoRoot, 'bin', 'telegen'), 'run', '--data-dir', dataDir, '--api-listen', `127.0.0.1:${apiPort}`], { stdio: 'ignore', env: { ...process.env, TELEGEN_LOG_LEVEL: 'warn' } });
  for (let i = 0; i < 300; i++) {
    try { if ((await fetch(`http://127.0.0.1:${apiPort}/readyz`)).ok) return proc; } catch { /* starting */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  proc.kill('SIGKILL');
  throw new Error('agent did not become ready');
}

function wrk(url: string, seconds: number, conns: number): { rps: number; p50ms: number; p99ms: number; requests: number } {
  const r = spawnSync('wrk', ['-t1', `-c${conns}`, `-d${seconds}s`, '--latency', url], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`wrk failed: ${r.stderr}`);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)![1]);
  const requests = Number(/(\d+) requests in/.exec(r.stdout)![1]);
  const lat = (p: string) => {
    const m = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`).exec(r.stdout)!;
    return Number(m[1]) * (m[2] === 'us' ? 1e-3 : m[2] === 's' ? 1e3 : 1);
  };
  return { rps, p50ms: lat('50'), p99ms: lat('99'), requests };
}

function countSpans(file: string, port: number): number {
  if (!fs.existsSync(file)) return 0;
  let n = 0;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    for (const rs of JSON.parse(line).resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) for (const s of ss.spans ?? []) {
      if (s.kind === 2 && (s.attributes ?? []).some((a: { key: string; value: { intValue?: string } }) => a.key === 'server.port' && Number(a.value.intValue) === port)) n++;
    }
  }
  return n;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) { console.error('agent-overhead needs root (BPF)'); process.exit(1); }
  const rounds = Number(process.env.BENCH_ROUNDS || 3);
  const seconds = Number(process.env.BENCH_SECONDS || 8);
  const conns = 16;
  const server = await startNode();
  const url = `http://127.0.0.1:${server.port}/hello`;
  const off: ReturnType<typeof wrk>[] = [];
  const on: ReturnType<typeof wrk>[] = [];
  const cpuPer1k: number[] = [];
  const rss: number[] = [];
  const spanShare: number[] = [];
  wrk(url, 2, conns); // warm the server's JIT
  for (let r = 0; r < rounds; r++) {
    off.push(wrk(url, seconds, conns));
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-bench-'));
    const apiPort = 19000 + Math.floor(Math.random() * 1000);
    const agent = await startAgent(dataDir, apiPort);
    await new Promise((res) => setTimeout(res, 1000));
    const cpu0 = cpuSecondsOf(agent.pid!);
    const res = wrk(url, seconds, conns);
    const cpu1 = cpuSecondsOf(agent.pid!);
    rss.push(rssBytesOf(agent.pid!) / 2 ** 20);
    on.push(res);
    cpuPer1k.push(((cpu1 - cpu0) / seconds) * 100 / (res.rps / 1000));
    await new Promise<void>((resolve) => { agent.once('exit', () => resolve()); agent.kill('SIGTERM'); });
    spanShare.push(countSpans(path.join(dataDir, 'traces.jsonl'), server.port) / res.requests);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  server.proc.kill('SIGTERM');
  writeResult('agent-overhead', {
    workload: { tool: 'wrk', threads: 1, connections: conns, seconds, rounds, target: 'Node http server, GET /hello (keep-alive)' },
    untraced_rps: spread(off.map((x) => x.rps)),
    traced_rps: spread(on.map((x) => x.rps)),
    throughput_ratio_traced_over_untraced: spread(on.map((x, i) => x.rps / off[i].rps)),
    p50_latency_ratio: spread(on.map((x, i) => x.p50ms / off[i].p50ms)),
    p99_latency_ratio: spread(on.map((x, i) => x.p99ms / off[i].p99ms)),
    agent_cpu_percent_of_a_core_per_1k_rps: spread(cpuPer1k),
    agent_rss_MiB: spread(rss),
    spans_exported_per_request: spread(spanShare),
    note: 'wrk, the server and the agent share the same 2 cores; spans_exported_per_request < 1 means the agent fell behind (ring drops are counted in /metrics)',
  });
}

main().catch((e) => { console.error(e); process.exit(1); });
