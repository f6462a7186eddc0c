// Overhead of each kernel tracer on syscall-heavy loops (bench/fixtures/syscall-loop.c): the same
// loop untraced and with the agent running only that tracer, alternating, several rounds in one
// run. Reports the loop's CPU time ratio (traced / untraced; BPF programs run in the loop's
// context, so their cost is in it) and its wall-time ratio (on a shared machine mostly waiting for a
// core), the kernel events each tracer produced per second of loop, the agent's own CPU, and ring
// drops (0 drops: the rate was sustained). BENCH_BASELINE=DIR (a built worktree of an earlier
// commit) also runs that tree's agent in every round, alternating with this tree's, on the same
// untraced reference: before/after in one run.
import { spawn, spawnSync, execFileSync, ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spread, writeResult, repoRoot, cpuSecondsOf, tracersOnlyConfig, untilReady } from './lib';

interface Workload { mode: 'write' | 'open' | 'connect' | 'exec'; n: number }
interface Case { tracer: string; config: Record<string, unknown>; workloads: Workload[]; events: RegExp; drops: RegExp }
const HANDLED = (tracer: string) => new RegExp(`^telegen_tracer_events_handled_total\\{tracer="${tracer}"\\} (\\d+)`, 'm');

const scale = Number(process.env.BENCH_SCALE || 1);
const W = (mode: Workload['mode'], n: number): Workload => ({ mode, n: Math.max(1, Math.round(n * scale)) });

const CASES: Case[] = [
  { tracer: 'tcp', config: { tcp: { enabled: true } }, workloads: [W('connect', 5000)],
    events: /^telegen_bpf_tcp_events_total\{tracer="tcp"\} (\d+)/m, drops: /^telegen_bpf_tcp_ring_full_total\{tracer="tcp"\} (\d+)/m },
  { tracer: 'fileio', config: { fileio: { enabled: true } }, workloads: [W('write', 200_000), W('open', 50_000)],
    events: /^telegen_bpf_fileio_events_total\{tracer="fileio"\} (\d+)/m, drops: /^telegen_bpf_fileio_ring_full_total\{tracer="fileio"\} (\d+)/m },
  { tracer: 'security', config: { security: { enabled: true } }, workloads: [W('exec', 100), W('open', 50_000), W('connect', 5000)],
    events: /^telegen_bpf_security_events_total\{tracer="security"\} (\d+)/m, drops: /^telegen_bpf_security_ring_full_total\{tracer="security"\} (\d+)/m },
  { tracer: 'xdp', config: { xdp: { enabled: true, interfaces: ['lo'] } }, workloads: [W('connect', 5000)],
    events: /^telegen_bpf_xdp_packets_total\{tracer="xdp"\} (\d+)/m, drops: /^telegen_bpf_xdp_ring_full_total\{tracer="xdp"\} (\d+)/m },
];

/** Only this tracer on (the socket tracer too is off), so the ratio is the tracer's own cost. */
const configFile = (dir: string, tracers: Record<string, unknown>) => tracersOnlyConfig(dir, tracers);

function startAgent(tree: string, dataDir: string, config: string, apiPort: number): Promise<ChildProcess> {
  const proc = spawn(process.execPath, [path.join(tree, 'bin', 'telegen'), 'run', '--data-dir', dataDir, '--api-listen', `127.0.0.1:${apiPort}`, '--config', config],
    // A metric collection every 2 s (default 15 s): it falls inside the measured loops, and the
    // counters read after them include what the last collection turned into points.
    { stdio: 'ignore', env: { TELEGEN_METRICS_INTERVAL_MS: '2000', ...process.env, TELEGEN_LOG_LEVEL: 'warn' } });
  return untilReady(proc, apiPort, 900);
}

interface Took { wall: number; cpu: number }
function loop(bin: string, w: Workload, dir: string): Took {
  const [wall, cpu] = execFileSync(bin, [w.mode, String(w.n), dir], { encoding: 'utf8', timeout: 600_000 }).trim().split(' ').map(Number);
  return { wall: wall / 1e9, cpu: cpu / 1e9 };
}

/** GET /metrics; a keep-alive socket the agent closes at that instant is retried once. */
async function scrape(agent: ChildProcess, apiPort: number): Promise<string> {
  for (let i = 0; ; i++) {
    try { return await (await fetch(`http://127.0.0.1:${apiPort}/metrics`)).text(); } catch (e) {
      if (agent.exitCode !== null) throw new Error(`agent exited ${agent.exitCode}`);
      if (i) throw e;
    }
  }
}

function metric(text: string, re: RegExp): number {
  const m = re.exec(text);
  if (!m) throw new Error(`${re} not on /metrics`);
  return Number(m[1]);
}

interface TracedRuns { took: Map<string, Took[]>; eventsPerSec: number[]; handledPerSec: number[]; drops: number[]; agentCpu: number[] }
const tracedRuns = (): TracedRuns => ({ took: new Map(), eventsPerSec: [], handledPerSec: [], drops: [], agentCpu: [] });

/** One traced round: the agent of `tree` with only this tracer, the workloads, its counters. */
async function tracedRound(tree: string, c: Case, bin: string, tmp: string, out: TracedRuns): Promise<void> {
  const dataDir = fs.mkdtempSync(path.join(tmp, 'data-'));
  const apiPort = 19000 + Math.floor(Math.random() * 1000);
  const agent = await startAgent(tree, dataDir, configFile(dataDir, c.config), apiPort);
  try {
    await new Promise((res) => setTimeout(res, 2000)); // start-up work (JIT, first scrape) is not the tracer's cost
    const before = await scrape(agent, apiPort);
    let secs = 0;
    const cpu0 = cpuSecondsOf(agent.pid!);
    for (const w of c.workloads) { const s = loop(bin, w, tmp); secs += s.wall; out.took.set(w.mode, [...(out.took.get(w.mode) ?? []), s]); }
    out.agentCpu.push((cpuSecondsOf(agent.pid!) - cpu0) / secs);
    await new Promise((res) => setTimeout(res, 2500)); // the last poll of the ring and a metric collection
    const after = await scrape(agent, apiPort);
    out.eventsPerSec.push((metric(after, c.events) - metric(before, c.events)) / secs);
    // Handled = turned into signals; read after a metric collection at most one interval later.
    const handled = HANDLED(c.tracer);
    if (handled.test(after)) out.handledPerSec.push((metric(after, handled) - metric(before, handled)) / secs);
    out.drops.push(metric(after, c.drops) - metric(before, c.drops));
  } finally {
    await new Promise<void>((resolve) => { agent.once('exit', () => resolve()); agent.kill('SIGTERM'); });
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) { console.error('tracer-overhead needs root (BPF)'); process.exit(1); }
  const rounds = Number(process.env.BENCH_ROUNDS || 3);
  const only = (process.env.BENCH_TRACERS || '').split(',').filter(Boolean);
  const baseline = process.env.BENCH_BASELINE ? path.resolve(process.env.BENCH_BASELINE) : undefined;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-tracer-bench-'));
  const bin = path.join(tmp, 'syscall-loop');
  const cc = spawnSync('cc', ['-O2', '-o', bin, path.join(repoRoot, 'bench', 'fixtures', 'syscall-loop.c')], { stdio: 'inherit' });
  if (cc.status !== 0) throw new Error('cc failed');
  const results: Record<string, unknown> = {};
  try {
    for (const c of CASES.filter((x) => !only.length || only.includes(x.tracer))) {
      const untraced = new Map<string, Took[]>();
      const trees: Array<[string, string]> = [['traced', repoRoot], ...(baseline ? [['baseline', baseline] as [string, string]] : [])];
      const runs = new Map(trees.map(([label]) => [label, tracedRuns()]));
      for (let r = 0; r < rounds; r++) {
        for (const w of c.workloads) untraced.set(w.mode, [...(untraced.get(w.mode) ?? []), loop(bin, w, tmp)]);
        // Alternate which tree goes first, so neither always runs right after the untraced loop.
        for (const [label, tree] of r % 2 ? [...trees].reverse() : trees) await tracedRound(tree, c, bin, tmp, runs.get(label)!);
      }
      const summary = (t: TracedRuns) => {
        const perWorkload: Record<string, unknown> = {};
        for (const w of c.workloads) {
          const u = untraced.get(w.mode)!;
          const tr = t.took.get(w.mode)!;
          const us = (x: Took[], k: keyof Took) => Math.round((spread(x.map((y) => y[k])).median / w.n) * 1e7) / 10;
          perWorkload[w.mode] = {
            n: w.n,
            cpu_ratio_traced_over_untraced: spread(tr.map((x, i) => x.cpu / u[i].cpu)),
            wall_ratio_traced_over_untraced: spread(tr.map((x, i) => x.wall / u[i].wall)),
            untraced_cpu_us_per_op: us(u, 'cpu'), traced_cpu_us_per_op: us(tr, 'cpu'),
            untraced_wall_us_per_op: us(u, 'wall'), traced_wall_us_per_op: us(tr, 'wall'),
          };
        }
        return {
          workloads: perWorkload, kernel_events_per_loop_second: spread(t.eventsPerSec),
          ...(t.handledPerSec.length ? { events_handled_per_loop_second: spread(t.handledPerSec) } : {}),
          ring_drops: spread(t.drops), agent_cpu_seconds_per_loop_second: spread(t.agentCpu),
        };
      };
      results[c.tracer] = {
        ...(baseline ? { baseline: { tree: baseline, ...summary(runs.get('baseline')!) } } : {}), config: c.config, ...summary(runs.get('traced')!) };
      process.stdout.write(`${c.tracer}: ${JSON.stringify(results[c.tracer])}\n`);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  writeResult('tracer-overhead', {
    rounds, scale,
    tracers: results,
    note: 'each tracer alone (socket tracer off); times measured inside the loop process (CLOCK_MONOTONIC, getrusage self + children); the machine is shared (other agents attached to the same syscall tracepoints slow the untraced runs too), so compare ratios, not absolute times',
  });
}

main().catch((e) => { console.error(e); process.exit(1); });
