// The idle agent's CPU (issue 12: the seed promises "CPU < 1% typical"). The real agent
// (`telegen run`, embedded default config) with no traffic of its own to trace: its socket, TLS
// and Go programs filter on `tracers.socket.target_pid` = a sleeping child, so the other tenants'
// traffic on this shared machine stays in the kernel and what is left is the agent's own
// background (its /proc scans, timers, ring polls, discovery). CPU is utime + stime of every
// agent thread from /proc/PID/task/*/stat over BENCH_SECONDS (60) after BENCH_SETTLE_SECONDS
// (20) past /readyz; and the main thread's wake-ups a second (voluntary context switches: each
// timer or fd that fires while nothing else is due is one), which the load of the machine's
// other tenants does not blur as it does CPU time.
//
// Arms, one agent at a time, the order reversed every other round: this tree; BENCH_BASELINE=DIR
// (a built worktree of an earlier commit); BENCH_VARIANT_ENV='K=V …' (this tree with that agent
// environment; several separated by ';;'). BENCH_TRAFFIC=1 leaves target_pid out (the machine's
// own traffic is traced too). BENCH_PERF=FILE: `perf record -g -F 999` of this tree's agent over
// the first round's window.
import { spawn, ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { agentArms, sameRoundRatios, spread, startTelegen, threadCpu, writeResult } from './lib';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The main thread's voluntary context switches so far: it blocked in epoll and was woken. */
function mainWakeups(pid: number): number {
  const m = /^voluntary_ctxt_switches:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

async function main(): Promise<void> {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));
  if (process.getuid?.() !== 0) { console.error('agent-idle needs root (BPF)'); process.exit(1); }
  const rounds = Number(process.env.BENCH_ROUNDS || 3);
  const seconds = Number(process.env.BENCH_SECONDS || 60);
  const settle = Number(process.env.BENCH_SETTLE_SECONDS || 20);
  const traffic = process.env.BENCH_TRAFFIC === '1';
  const arms = agentArms();
  // A process that makes no syscalls: the agent traces "it" and so nothing.
  const quiet: ChildProcess = spawn('sleep', ['100000'], { stdio: 'ignore' });
  process.once('exit', () => { if (quiet.exitCode === null) quiet.kill('SIGTERM'); });
  const rows: Array<Record<string, unknown>> = [];
  try {
    for (let r = 0; r < rounds; r++) {
      for (const arm of r % 2 ? [...arms].reverse() : arms) {
        const agent = await startTelegen(arm, traffic ? {} : { tracers: { socket: { target_pid: quiet.pid } } }, process.env.BENCH_PERF ? ['--perf-basic-prof'] : [], {}, 'telegen-idle-');
        try {
          await sleep(settle * 1000);
          const load0 = os.loadavg()[0];
          const perf = process.env.BENCH_PERF && arm.name === 'this_tree' && r === 0
            ? spawn('perf', ['record', '-g', '-F', '999', '-o', process.env.BENCH_PERF, '-p', String(agent.proc.pid), '--', 'sleep', String(seconds)], { stdio: 'ignore' }) : undefined;
          const t0 = threadCpu(agent.proc.pid!);
          const v0 = mainWakeups(agent.proc.pid!);
          const w0 = process.hrtime.bigint();
          await sleep(seconds * 1000);
          const t1 = threadCpu(agent.proc.pid!);
          const v1 = mainWakeups(agent.proc.pid!);
          const wall = Number(process.hrtime.bigint() - w0) / 1e9;
          if (perf && perf.exitCode === null) await new Promise((res) => perf.once('exit', res));
          const pct = (x: number) => Math.round((x / wall) * 10000) / 100;
          const row: Record<string, unknown> = {
            round: r, arm: arm.name, load: `${load0.toFixed(2)}-${os.loadavg()[0].toFixed(2)}`,
            percent_of_a_core: pct(t1.main + t1.other - t0.main - t0.other),
            main_percent: pct(t1.main - t0.main), other_percent: pct(t1.other - t0.other),
            main_wakeups_per_s: Math.round(((v1 - v0) / wall) * 10) / 10,
          };
          rows.push(row);
          process.stdout.write(JSON.stringify(row) + '\n');
        } finally {
          await agent.stop();
        }
      }
    }
  } finally {
    quiet.kill('SIGTERM');
  }
  const summary: Record<string, unknown> = {};
  for (const arm of arms) {
    const mine = rows.filter((x) => x.arm === arm.name);
    summary[arm.name] = { root: arm.root, env: arm.env, ...Object.fromEntries(['percent_of_a_core', 'main_percent', 'other_percent', 'main_wakeups_per_s'].map((k) => [k, spread(mine.map((x) => Number(x[k])))])) };
  }
  writeResult(process.env.BENCH_RESULT || 'agent-idle', {
    how: `telegen run, embedded default config${traffic ? '' : ' + tracers.socket.target_pid = a sleeping child (no traffic traced)'}; ${settle} s after /readyz, then utime+stime of every agent thread over ${seconds} s; arms one at a time, order reversed every other round`,
    summary, same_round_ratios: sameRoundRatios(rows, arms, rounds, 'percent_of_a_core'), same_round_wakeup_ratios: sameRoundRatios(rows, arms, rounds, 'main_wakeups_per_s'), rows,
  });
}

main().catch((e) => { console.error(e); process.exit(1); });
