// Agent start-up: `telegen run` on its embedded default config, from spawn to /readyz answering.
// Per start: wall time to ready, the agent's CPU to ready (utime + stime; the kernel's verifier
// runs in the agent's bpf() calls, so it is in there), the instructions the verifier processed
// for the programs the agent holds (`verified_insns` in each program fd's fdinfo, kernel 5.16+),
// the peak RSS since start (telegen_process_max_rss_bytes) and which tracers came up.
//
// Arms, one agent at a time, the order reversed every other round (bench/lib agentArms): this
// tree; BENCH_BASELINE=DIR (a built worktree of an earlier commit); BENCH_VARIANT_ENV='K=V …'.
// BENCH_CONFIG='{"tracers":{"socket":{"iov_walk":"unrolled"}}}' adds this tree with that config as
// one more arm. BENCH_ROUNDS (default 5).
import { bpfFdinfo } from '../host/src/native/fdinfo';
import { AgentArm, agentArms, cpuSecondsOf, metricsText, metricSum, sameRoundRatios, spread, startTelegen, writeResult } from './lib';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sum of `verified_insns` over the distinct BPF programs a process holds open. */
function verifiedInsnsOf(pid: number): { programs: number; insns: number } {
  const progs = bpfFdinfo(pid, 'prog');
  return { programs: progs.length, insns: progs.reduce((a, p) => a + Number(p.verified_insns ?? 0), 0) };
}

async function main(): Promise<void> {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));
  if (process.getuid?.() !== 0) { console.error('agent-startup needs root (BPF)'); process.exit(1); }
  const rounds = Number(process.env.BENCH_ROUNDS || 5);
  const arms: Array<AgentArm & { config?: object }> = agentArms();
  if (process.env.BENCH_CONFIG) arms.push({ name: `this+config`, root: arms[0].root, env: {}, config: JSON.parse(process.env.BENCH_CONFIG) });
  const rows: Array<Record<string, unknown>> = [];
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? arms : [...arms].reverse();
    for (const arm of order) {
      const t0 = process.hrtime.bigint();
      const agent = await startTelegen(arm, arm.config ?? {}, [], {}, 'telegen-startup-');
      const readyS = Number(process.hrtime.bigint() - t0) / 1e9;
      const cpuS = cpuSecondsOf(agent.proc.pid!);
      const verified = verifiedInsnsOf(agent.proc.pid!);
      await sleep(1000);
      const m = await metricsText(agent.apiPort);
      const up = [...m.matchAll(/^telegen_tracer_up\{tracer="([^"]+)"\} 1$/gm)].map((x) => x[1]).sort();
      const row = {
        round: r, arm: arm.name, ready_s: readyS, cpu_to_ready_s: cpuS,
        bpf_programs: verified.programs, verified_insns: verified.insns,
        peak_rss_mib: metricSum(m, 'telegen_process_max_rss_bytes') / 2 ** 20, tracers_up: up,
      };
      rows.push(row);
      console.log(JSON.stringify(row));
      await agent.stop();
      await sleep(1000);
    }
  }
  const summary: Record<string, unknown> = {};
  for (const arm of arms) {
    const mine = rows.filter((x) => x.arm === arm.name);
    summary[arm.name] = Object.fromEntries(['ready_s', 'cpu_to_ready_s', 'verified_insns', 'peak_rss_mib'].map((k) => [k, spread(mine.map((x) => Number(x[k])))]));
  }
  const file = writeResult(process.env.BENCH_RESULT || 'agent-startup', {
    bench: 'agent-startup', rounds, arms: arms.map((a) => ({ name: a.name, root: a.root, config: a.config })), summary,
    ratios: { ready_s: sameRoundRatios(rows, arms, rounds, 'ready_s'), cpu_to_ready_s: sameRoundRatios(rows, arms, rounds, 'cpu_to_ready_s') },
    rows,
  });
  console.log(JSON.stringify(summary, null, 1));
  console.log(`written ${file}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
