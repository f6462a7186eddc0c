// Agent CPU per request with the agent tracing only the server (issue 12): the real agent
// (`telegen run`, default config plus `tracers.socket.target_pid` = test/fixtures/http-server.js),
// wrk -t1 -c16 paced to ~900 req/s as agent-overhead paces it (Lua `delay()`), CPU of every agent
// thread from /proc/PID/task/*/stat over the wrk run, in µs per request. Server scope keeps the
// shared machine's other traffic out: 2 ring records and 1 SERVER span per request, nothing else.
//
// Arms, one agent at a time, the order reversed every other round: this tree; BENCH_BASELINE=DIR
// (a built worktree of an earlier commit); BENCH_VARIANT_ENV='K=V …' (this tree with that agent
// environment; several variants separated by ';;'). BENCH_GC=1 runs every agent with
// --trace-gc-nvp and reports the bytes promoted per request over the wrk run (from its log).
// BENCH_PROFILE=1 adds a V8 CPU profile (BENCH_PROFILE=heap: a sampling heap profile of what no scavenge collected; =alloc: of every allocation) of this tree's agent, started over the inspector once the
// agent is ready (--cpu-prof from the start breaks BPF verification), to bench/results/tmp/;
// BENCH_PERF=FILE a `perf record -g` of every agent thread (node --perf-basic-prof) instead.
import { spawn, spawnSync, ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { agentArms, sameRoundRatios, spread, startTelegen, threadCpu, writeResult, repoRoot } from './lib';

function startServer(): Promise<{ proc: ChildProcess; port: number }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [path.join(repoRoot, 'test', 'fixtures', 'http-server.js'), '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    proc.stdout!.on('data', (d) => { const m = /listening (\d+)/.exec(String(d)); if (m) resolve({ proc, port: Number(m[1]) }); });
    proc.once('exit', (c) => reject(new Error(`server exited ${c}`)));
  });
}

function metricSum(text: string, name: string): number {
  let n = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) n += Number(m[1]);
  return n;
}

async function metrics(apiPort: number): Promise<{ records: number; server: number; exported: number }> {
  const text = await (await fetch(`http://127.0.0.1:${apiPort}/metrics`)).text();
  const server = /^telegen_spans_total\{kind="server"\} (\S+)$/m.exec(text);
  return {
    records: metricSum(text, 'telegen_bpf_records_total'),
    server: server ? Number(server[1]) : 0,
    exported: metricSum(text, 'telegen_export_items_total\\{signal="traces",result="exported"\\}'),
  };
}

/** Bytes promoted by scavenges in a --trace-gc-nvp log slice. */
function promoted(log: string): { bytes: number; scavenges: number; marks: number } {
  let bytes = 0, scavenges = 0, marks = 0;
  for (const m of log.matchAll(/gc=(s|ms|mc|mmc)\b[^\n]*?promoted=(\d+)/g)) { bytes += Number(m[2]); if (m[1] === 's') scavenges++; else marks++; }
  return { bytes, scavenges, marks };
}

/** A CPU profile of the running agent over `seconds`, through the inspector SIGUSR1 opens. */
async function profile(pid: number, seconds: number, file: string, heap: '' | 'heap' | 'alloc'): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const WebSocket = require('ws');
  process.kill(pid, 'SIGUSR1');
  let url = '';
  for (let i = 0; i < 50 && !url; i++) {
    await new Promise((r) => setTimeout(r, 100));
    try { url = ((await (await fetch('http://127.0.0.1:9229/json/list')).json()) as Array<{ webSocketDebuggerUrl: string }>)[0].webSocketDebuggerUrl; } catch { /* opening */ }
  }
  const ws = new WebSocket(url);
  await new Promise((r) => ws.once('open', r));
  let id = 0;
  const pending = new Map<number, (v: unknown) => void>();
  ws.on('message', (d: Buffer) => { const m = JSON.parse(String(d)); if (m.id && pending.has(m.id)) { pending.get(m.id)!(m.result); pending.delete(m.id); } });
  const call = (method: string, params: unknown = {}) => new Promise<any>((r) => { pending.set(++id, r); ws.send(JSON.stringify({ id, method, params })); });
  let p: unknown;
  if (heap) {
    // Objects no scavenge collected (alive at the end, or promoted and collected by a major GC): where what outlives the young generation is made.
    await call('HeapProfiler.enable');
    await call('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: heap === 'alloc' });
    await new Promise((r) => setTimeout(r, seconds * 1000));
    p = (await call('HeapProfiler.stopSampling')).profile;
  } else {
    await call('Profiler.enable');
    await call('Profiler.setSamplingInterval', { interval: 1000 });
    await call('Profiler.start');
    await new Promise((r) => setTimeout(r, seconds * 1000));
    p = (await call('Profiler.stop')).profile;
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(p));
  ws.close();
}

async function main(): Promise<void> {
  // Interrupted: 'exit' handlers (which stop a running agent and the server) run only on a normal exit.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));
  if (process.getuid?.() !== 0) { console.error('agent-server-scope needs root (BPF)'); process.exit(1); }
  const rounds = Number(process.env.BENCH_ROUNDS || 3);
  const seconds = Number(process.env.BENCH_SECONDS || 20);
  const idleSeconds = Number(process.env.BENCH_IDLE_SECONDS || 8);
  const rate = Number(process.env.BENCH_RATE || 1000);
  const warmSeconds = Number(process.env.BENCH_WARM_SECONDS ?? 10);
  const conns = 16;
  const gc = process.env.BENCH_GC === '1';
  const arms = agentArms();
  const server = await startServer();
  process.once('exit', () => { if (server.proc.exitCode === null) server.proc.kill('SIGTERM'); });
  const script = path.join(os.tmpdir(), `telegen-wrk-scope-${process.pid}.lua`);
  fs.writeFileSync(script, `function delay() return ${Math.max(1, Math.round((conns * 1000) / rate))} end\n`);
  const url = `http://127.0.0.1:${server.port}/hello`;
  const wrk = (s: number) => {
    const r = spawnSync('wrk', ['-t1', `-c${conns}`, `-d${s}s`, '-s', script, url], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`wrk failed: ${r.stderr}`);
    return { requests: Number(/(\d+) requests in/.exec(r.stdout)![1]), rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)![1]) };
  };
  const rows: Array<Record<string, unknown>> = [];
  try {
    wrk(2);
    for (let r = 0; r < rounds; r++) {
      for (const arm of r % 2 ? [...arms].reverse() : arms) {
        const agent = await startTelegen(arm, { tracers: { socket: { target_pid: server.proc.pid } } }, [...(gc ? ['--trace-gc-nvp'] : []), ...(process.env.BENCH_PERF ? ['--perf-basic-prof'] : [])], { TELEGEN_OTLP_FILE_KEEP: '1000' }, 'telegen-scope-');
        const { apiPort, logFile } = agent;
        try {
          await new Promise((res) => setTimeout(res, 2000));
          const i0 = threadCpu(agent.proc.pid!);
          const idleLog0 = fs.statSync(logFile).size;
          await new Promise((res) => setTimeout(res, idleSeconds * 1000));
          const i1 = threadCpu(agent.proc.pid!);
          const idleLog1 = fs.statSync(logFile).size;
          // Traffic before the measured run: without it the first seconds' JIT compiles of the
          // per-request path (TurboFan on V8's threads) are charged to the requests.
          if (warmSeconds > 0) { wrk(warmSeconds); await new Promise((res) => setTimeout(res, 2000)); }
          const m0 = await metrics(apiPort);
          const log0 = fs.statSync(logFile).size;
          const t0 = threadCpu(agent.proc.pid!);
          const prof = process.env.BENCH_PROFILE && arm.name === 'this_tree' && r === 0
            ? profile(agent.proc.pid!, seconds - 2, path.join(repoRoot, 'bench', 'results', 'tmp', `agent-server-scope-${Date.now()}.${process.env.BENCH_PROFILE === '1' ? 'cpuprofile' : 'heapprofile'}`), process.env.BENCH_PROFILE === '1' ? '' : process.env.BENCH_PROFILE as 'heap' | 'alloc') : undefined;
          // BENCH_PERF=FILE: perf record of every agent thread over the first round's wrk run of this tree.
          const perf = process.env.BENCH_PERF && arm.name === 'this_tree' && r === 0
            ? spawn('perf', ['record', '-g', '-F', '2999', '-o', process.env.BENCH_PERF, '-p', String(agent.proc.pid), '--', 'sleep', String(seconds - 2)], { stdio: 'ignore' }) : undefined;
          const w = wrk(seconds);
          if (perf && perf.exitCode === null) await new Promise((res) => perf.once('exit', res));
          const t1 = threadCpu(agent.proc.pid!);
          const log1 = fs.statSync(logFile).size;
          await prof;
          await new Promise((res) => setTimeout(res, 1500)); // the last batches and the 1.5 s window
          const m1 = await metrics(apiPort);
          const per = (x: number) => Math.round((x * 1e6 / w.requests) * 10) / 10;
          const row: Record<string, unknown> = {
            round: r, arm: arm.name, load: os.loadavg()[0].toFixed(2), requests: w.requests, rps: w.rps,
            us_per_request: per(t1.main + t1.other - t0.main - t0.other), main_us_per_request: per(t1.main - t0.main), other_us_per_request: per(t1.other - t0.other),
            idle_percent_of_a_core: Math.round((i1.main + i1.other - i0.main - i0.other) / idleSeconds * 1000) / 10,
            // The request's own cost: the idle background (scans, timers) over the same seconds taken out.
            less_idle_us_per_request: per(t1.main + t1.other - t0.main - t0.other - (i1.main + i1.other - i0.main - i0.other) * seconds / idleSeconds),
            ring_records_per_request: Math.round((m1.records - m0.records) / w.requests * 1000) / 1000,
            server_spans_per_request: Math.round((m1.server - m0.server) / w.requests * 1000) / 1000,
            exported_per_request: Math.round((m1.exported - m0.exported) / w.requests * 1000) / 1000,
          };
          if (gc) {
            const slice = (from: number, to: number) => {
              const fd = fs.openSync(logFile, 'r');
              const buf = Buffer.alloc(to - from);
              fs.readSync(fd, buf, 0, buf.length, from);
              fs.closeSync(fd);
              return promoted(buf.toString('utf8'));
            };
            const p = slice(log0, log1), idleP = slice(idleLog0, idleLog1);
            row.promoted_bytes_per_request = Math.round(p.bytes / w.requests);
            row.scavenges = p.scavenges;
            row.major_gcs = p.marks;
            // What the background promotes anyway (scans, timers), per second of the idle window.
            row.idle_promoted_bytes_per_s = Math.round(idleP.bytes / idleSeconds);
            row.promoted_bytes_per_request_less_idle = Math.round((p.bytes - idleP.bytes * seconds / idleSeconds) / w.requests);
          }
          rows.push(row);
          process.stdout.write(JSON.stringify(row) + '\n');
        } finally {
          await agent.stop();
        }
      }
    }
  } finally {
    server.proc.kill('SIGTERM');
    fs.rmSync(script, { force: true });
  }
  const summary: Record<string, unknown> = {};
  for (const arm of arms) {
    const mine = rows.filter((x) => x.arm === arm.name);
    const keys = ['us_per_request', 'less_idle_us_per_request', 'idle_percent_of_a_core', 'main_us_per_request', 'other_us_per_request', 'rps', 'ring_records_per_request', 'server_spans_per_request', ...(gc ? ['promoted_bytes_per_request', 'promoted_bytes_per_request_less_idle', 'idle_promoted_bytes_per_s'] : [])];
    summary[arm.name] = { root: arm.root, env: arm.env, ...Object.fromEntries(keys.map((k) => [k, spread(mine.map((x) => Number(x[k])))])) };
  }
  writeResult(process.env.BENCH_RESULT || 'agent-server-scope', {
    how: `wrk -t1 -c${conns} -d${seconds}s paced to ${rate} req/s against test/fixtures/http-server.js; agent config tracers.socket.target_pid = the server; ${idleSeconds} s idle after ready, then ${warmSeconds} s of the same traffic unmeasured (JIT warm-up); CPU of every agent thread over the wrk run; arms one at a time, order reversed every other round`,
    summary, same_round_ratios: sameRoundRatios(rows, arms, rounds, 'us_per_request'), rows,
  });
}

main().catch((e) => { console.error(e); process.exit(1); });
