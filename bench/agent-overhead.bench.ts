// Overhead on a traced service: a Node HTTP server and nginx on loopback, each driven by wrk at a
// fixed rate and at saturation, with the agent off and on (the default config: every tracer it
// enables), alternating, several rounds, in one run. Reports throughput and p50/p99 latency ratios,
// agent CPU per 1k req/s, the run time of its BPF programs per request (kernel.bpf_stats_enabled is
// on while the bench runs: that CPU is spent in the traced processes, outside the agent's own),
// agent RSS, and how many requests became server spans. The CPU of the server process and of wrk
// is taken over every run too, so what tracing added in all (the agent plus their growth: BPF
// programs run in their syscalls) is reported beside the agent's own figure.
//
// The peer (BENCH_PEER=none leaves it out): what a Node user runs instead, the OpenTelemetry JS
// SDK's HTTP instrumentation in the server process (bench/fixtures/otel-sdk-preload.js, exporting
// OTLP/HTTP to bench/fixtures/otlp-sink.js, which counts spans). It runs on the Node cases of every
// round beside the untraced run, with no agent, and is reported under peer_otel_js_sdk with
// same-round ratios to this tree.
//
// Fixed rate: wrk has no rate option, but its Lua `delay()` hook pauses each connection between
// requests; with C connections and a pause of C/RATE seconds the offered load is about RATE
// (less the response time, so the achieved rate is what is reported).
//
// Each agent start first sits idle (BENCH_IDLE_SECONDS, default 10: discovery, /proc scans,
// timers, metrics collection, the machine's other traffic) so the per-request share of the CPU
// can be told from the background. Then it traces BENCH_WARM_SECONDS (default 5) of fixed-rate
// traffic to each server, unmeasured, and its backlog is consumed: a long-running agent's JIT and
// caches are warm, and without this the first measured case (Node) paid V8's compiles (15-20 µs
// per request on V8's threads in agent-server-scope). BENCH_WARM_SECONDS=0: as before (2026-11-27
// rows). BENCH_BASELINE=DIR (a built git worktree of an earlier commit:
// bpf, native, decoders, host) runs that tree's agent beside this tree's in every round, the order
// alternating per round, same servers, same wrk settings: before/after in one run. BENCH_CASES=rate
// leaves out the saturation cases. BENCH_VARIANT_ENV='K=V …' adds this tree once more with those
// environment variables for its agent (e.g. TELEGEN_MAX_CPU_PERCENT=50), named `this+K=V …`; in
// the result its figures are under `baseline` (with its `env`). BENCH_RESULT names the result file.
// BENCH_SERVERS=node or nginx: that server's cases only.
import { spawn, spawnSync, ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spread, writeResult, repoRoot, cpuSecondsOf, rssBytesOf, bpfRunNsOf, enableBpfStats, metricSum, metricsText, settle, countSpans, untilReady } from './lib';

interface Server { name: string; proc: ChildProcess; port: number; stop(): void }

function startNode(name = 'node', args: string[] = [], env: Record<string, string> = {}): Promise<Server> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [...args, path.join(repoRoot, 'test', 'fixtures', 'http-server.js'), '0'], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
    proc.stdout!.on('data', (d) => { const m = /listening (\d+)/.exec(String(d)); if (m) resolve({ name, proc, port: Number(m[1]), stop: () => proc.kill('SIGTERM') }); });
    proc.once('exit', (c) => reject(new Error(`${name} server exited ${c}`)));
  });
}

interface Sink { proc: ChildProcess; port: number; count(): Promise<{ spans: number; requests: number; rejected: number; cpu_seconds: number }> }

/** The OTLP/HTTP end of the in-process SDK peer (bench/fixtures/otlp-sink.js), a child process:
 *  the bench's own process blocks while wrk runs. */
function startSink(): Promise<Sink> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [path.join(repoRoot, 'bench', 'fixtures', 'otlp-sink.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
    proc.stdout!.on('data', (d) => {
      const m = /listening (\d+)/.exec(String(d));
      // Asked again once when the sink closed an idle keep-alive socket at that instant.
      const once = async () => (await fetch(`http://127.0.0.1:${m![1]}/count`)).json();
      if (m) resolve({ proc, port: Number(m[1]), count: () => once().catch(async () => { await new Promise((r) => setTimeout(r, 200)); return once(); }) });
    });
    proc.once('exit', (c) => reject(new Error(`otlp sink exited ${c}`)));
  });
}

/** A Node server instrumented in-process by the OpenTelemetry JS SDK (the peer a Node user would
 *  run instead): the same http-server.js with bench/fixtures/otel-sdk-preload.js required first. */
function startNodeWithSdk(sink: Sink): Promise<Server> {
  return startNode('node_otel_sdk', ['--require', path.join(repoRoot, 'bench', 'fixtures', 'otel-sdk-preload.js')], {
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `http://127.0.0.1:${sink.port}/v1/traces`,
    OTEL_SERVICE_NAME: 'bench-node',
  });
}

/** nginx from Debian, one worker, its own prefix in a temp dir, 127.0.0.1 only. */
async function startNginx(port: number): Promise<Server> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-nginx-'));
  fs.writeFileSync(path.join(dir, 'nginx.conf'), `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:${port};
    location / { default_type text/plain; return 200 "hello world\\n"; }
  }
}
`);
  const proc = spawn('nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'inherit'] });
  for (let i = 0; i < 100; i++) {
    try { if ((await fetch(`http://127.0.0.1:${port}/hello`)).ok) break; } catch { /* starting */ }
    if (proc.exitCode !== null) throw new Error(`nginx exited ${proc.exitCode}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { name: 'nginx', proc, port, stop: () => { proc.kill('SIGQUIT'); fs.rmSync(dir, { recursive: true, force: true }); } };
}

function startAgent(root: string, dataDir: string, apiPort: number, extraEnv: Record<string, string> = {}): Promise<ChildProcess> {
  const proc = spawn(process.execPath, [path.join(root, 'bin', 'telegen'), 'run', '--data-dir', dataDir, '--api-listen', `127.0.0.1:${apiPort}`], { stdio: ['ignore', fs.openSync(path.join(dataDir, 'agent.log'), 'a'), fs.openSync(path.join(dataDir, 'agent.log'), 'a')], env: { ...process.env, TELEGEN_LOG_LEVEL: 'warn', TELEGEN_OTLP_FILE_KEEP: '1000', ...extraEnv } });
  return untilReady(proc, apiPort, 600);
}

/** CPU seconds of a server: its process and its children (nginx's worker). */
function serverCpuOf(server: Server): number {
  const pid = server.proc.pid!;
  let n = cpuSecondsOf(pid);
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
    let kids = '';
    try { kids = fs.readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8'); } catch { continue; }
    for (const k of kids.split(' ').filter(Boolean)) { try { n += cpuSecondsOf(Number(k)); } catch { /* exited */ } }
  }
  return n;
}

interface WrkResult {
  rps: number; p50ms: number; p99ms: number; requests: number;
  /** CPU seconds of wrk itself (the shell's `times` of its children) and of the server process
   *  over the run: with telegen on, its BPF programs run in both (their syscalls' system time). */
  clientCpu: number; serverCpu: number;
}

function wrk(url: string, seconds: number, conns: number, rate: number, server?: Server): WrkResult {
  const args = ['-t1', `-c${conns}`, `-d${seconds}s`, '--latency'];
  let script: string | undefined;
  if (rate > 0) {
    script = path.join(os.tmpdir(), `telegen-wrk-${process.pid}-${rate}.lua`);
    fs.writeFileSync(script, `function delay() return ${Math.max(1, Math.round((conns * 1000) / rate))} end\n`);
    args.push('-s', script);
  }
  const s0 = server ? serverCpuOf(server) : 0;
  // `times` after wrk prints the shell's children's user and system time: wrk's own CPU.
  const r = spawnSync('sh', ['-c', 'wrk "$@" && times', 'sh', ...args, url], { encoding: 'utf8' });
  const s1 = server ? serverCpuOf(server) : 0;
  if (script) fs.rmSync(script, { force: true });
  if (r.status !== 0) throw new Error(`wrk failed: ${r.stderr}`);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)![1]);
  const requests = Number(/(\d+) requests in/.exec(r.stdout)![1]);
  const lat = (p: string) => {
    const m = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`).exec(r.stdout)!;
    return Number(m[1]) * (m[2] === 'us' ? 1e-3 : m[2] === 's' ? 1e3 : 1);
  };
  const t = [...r.stdout.matchAll(/(\d+)m([\d.]+)s (\d+)m([\d.]+)s/g)];
  const clientCpu = t.length >= 2 ? Number(t[1][1]) * 60 + Number(t[1][2]) + Number(t[1][3]) * 60 + Number(t[1][4]) : NaN;
  return { rps, p50ms: lat('50'), p99ms: lat('99'), requests, clientCpu, serverCpu: s1 - s0 };
}

/** CPU seconds of the process's main thread (JS, the event loop) and of all its other threads
 *  (V8's GC helpers, the native ring drain thread, libuv's pool), from /proc/PID/task. */
function threadCpu(pid: number): { main: number; other: number } {
  let main = 0, other = 0;
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try { stat = fs.readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8'); } catch { continue; } // exited meanwhile
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const s = (Number(f[11]) + Number(f[12])) / 100;
    if (Number(t) === pid) main += s; else other += s;
  }
  return { main, other };
}

interface Case { server: Server; mode: 'rate' | 'saturation' }
interface On {
  res: WrkResult; cpuPer1k: number; cpuPer1kWithBacklog: number;
  /** The same, less what the agent used idle over the same seconds (its background). */
  cpuPer1kLessIdle: number;
  mainThreadPer1k: number; otherThreadsPer1k: number;
  /** Run time of the agent's BPF programs over the case (kernel.bpf_stats_enabled): CPU the
   *  traced processes and the kernel spent in them, outside the agent's own. */
  kernelBpfPer1k: number; kernelBpfUsPerRequest: number;
  /** Saturation only: the same run with the agent stopped (SIGSTOP): its BPF programs still run
   *  in every traced syscall, the ring fills and drops (counted), but the agent takes no CPU. */
  frozen?: WrkResult;
  /** Ring records, spans by kind, exported trace items: per request of the case. */
  perRequest: Record<string, number>;
}
/** The in-process OpenTelemetry JS SDK on the Node server (no agent running): its cost is in the
 *  server's own CPU, plus what it sends after wrk stops (flushCpu: the last batches). */
interface PeerRun { res: WrkResult; flushCpu: number; spansPerRequest: number; sinkCpu: number; rejected: number }
interface Sample { off: WrkResult; on: Record<string, On>; peer?: PeerRun }
interface Tree { name: string; root: string; env?: Record<string, string> }
const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** Counters whose growth per request tells what each request cost the pipeline. */
function perRequestCounters(text: string): Record<string, number> {
  const out: Record<string, number> = { ring_records: metricSum(text, 'telegen_bpf_records_total') };
  for (const m of text.matchAll(/^telegen_spans_total\{kind="(\w+)"\} (\S+)$/gm)) out[`spans_${m[1]}`] = Number(m[2]);
  out.exported_spans = metricSum(text, 'telegen_export_items_total\\{signal="traces",result="exported"\\}');
  return out;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) { console.error('agent-overhead needs root (BPF)'); process.exit(1); }
  const rounds = Number(process.env.BENCH_ROUNDS || 3);
  const seconds = Number(process.env.BENCH_SECONDS || 8);
  const idleSeconds = Number(process.env.BENCH_IDLE_SECONDS || 10);
  const warmSeconds = Number(process.env.BENCH_WARM_SECONDS ?? 5);
  const rate = Number(process.env.BENCH_RATE || 1000);
  const modes = (process.env.BENCH_CASES || 'rate,saturation').split(',') as Array<'rate' | 'saturation'>;
  const conns = 16;
  const trees: Tree[] = [{ name: 'this_tree', root: repoRoot }];
  if (process.env.BENCH_BASELINE) trees.push({ name: 'baseline', root: path.resolve(process.env.BENCH_BASELINE) });
  const variant = (process.env.BENCH_VARIANT_ENV ?? '').trim();
  if (variant) trees.push({ name: `this+${variant}`, root: repoRoot, env: Object.fromEntries(variant.split(/\s+/).map((kv) => kv.split('=', 2) as [string, string])) });
  // BENCH_SERVERS=node (or nginx): one server's cases only (an A/B of the agent's per-request path
  // in half the time); default both.
  const serverNames = (process.env.BENCH_SERVERS || 'node,nginx').split(',');
  const servers = [
    ...(serverNames.includes('node') ? [await startNode()] : []),
    ...(serverNames.includes('nginx') ? [await startNginx(18000 + (process.pid % 1000))] : []),
  ];
  // BENCH_PEER=none leaves out the in-process SDK arm (Node cases only: the peer a Node user has).
  const withPeer = (process.env.BENCH_PEER ?? 'otel-sdk') !== 'none';
  const sink = withPeer ? await startSink() : undefined;
  const sdkServer = sink ? await startNodeWithSdk(sink) : undefined;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const runPeer = async (c: Case): Promise<PeerRun> => {
    const before = await sink!.count();
    const res = run(c, sdkServer);
    const cpuAtEnd = serverCpuOf(sdkServer!);
    // The batch span processor sends every 512 spans or 5 s: wait for the last batch (the count
    // stops moving once it has reached the requests wrk completed, or after 8 s without change).
    const t0 = Date.now();
    let last = -1;
    for (;;) {
      await sleep(1000);
      const n = (await sink!.count()).spans - before.spans;
      if (n === last && (n >= res.requests || Date.now() - t0 > 8000)) break;
      if (Date.now() - t0 > 30000) break;
      last = n;
    }
    const after = await sink!.count();
    return {
      res, flushCpu: serverCpuOf(sdkServer!) - cpuAtEnd, spansPerRequest: (after.spans - before.spans) / (res.requests || 1),
      sinkCpu: after.cpu_seconds - before.cpu_seconds, rejected: after.rejected - before.rejected,
    };
  };
  // Fixed-rate cases first, then saturation, with the agent's backlog consumed between cases: the
  // CPU a case is charged is the CPU its own traffic cost.
  const cases: Case[] = (['rate', 'saturation'] as const).filter((m) => modes.includes(m)).flatMap((mode) => servers.map((server) => ({ server, mode })));
  const samples = new Map<Case, Sample[]>(cases.map((c) => [c, []]));
  const rss = new Map<string, number[]>(trees.map((t) => [t.name, []]));
  const idle = new Map<string, Array<{ total: number; main: number; other: number }>>(trees.map((t) => [t.name, []]));
  const backlog: Array<{ tree: string; case: string; seconds: number; ringFull: number; exportDropped: number }> = [];
  const spanShare = new Map<string, number[]>(trees.flatMap((t) => cases.map((c) => [`${t.name}:${c.server.name}_${c.mode}`, []] as [string, number[]])));
  const run = (c: Case, server = c.server) => wrk(`http://127.0.0.1:${server.port}/hello`, seconds, conns, c.mode === 'rate' ? rate : 0, server);
  for (const s of sdkServer ? [...servers, sdkServer] : servers) wrk(`http://127.0.0.1:${s.port}/hello`, 2, conns, 0); // warm up (JIT, caches)
  // The BPF side of the agent's cost runs in the traced processes: its programs' run time is
  // counted while the bench runs (the untraced runs have no programs to count).
  const restoreBpfStats = enableBpfStats();
  try {
    for (let r = 0; r < rounds; r++) {
      for (const c of cases) {
        // Untraced and in-process SDK runs back to back, which first alternating per round.
        const peerHere = sdkServer && c.server.name === 'node';
        const peerFirst = peerHere && r % 2 === 1 ? await runPeer(c) : undefined;
        const off = run(c);
        const peer = peerHere ? peerFirst ?? await runPeer(c) : undefined;
        samples.get(c)!.push({ off, on: {}, peer });
      }
      // Alternate which tree goes first: neither always meets the machine's state after the other.
      for (const tree of r % 2 ? [...trees].reverse() : trees) {
        const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-bench-'));
        const apiPort = 19000 + Math.floor(Math.random() * 1000);
        const agent = await startAgent(tree.root, dataDir, apiPort, tree.env);
        // A failed measurement must not leave a running agent behind (it keeps tracing the machine).
        const orphan = () => { if (agent.exitCode === null) agent.kill('SIGKILL'); };
        process.once('exit', orphan);
        await new Promise((res) => setTimeout(res, 1000));
        const i0 = threadCpu(agent.pid!);
        await new Promise((res) => setTimeout(res, idleSeconds * 1000));
        const i1 = threadCpu(agent.pid!);
        const idleRate = { main: (i1.main - i0.main) / idleSeconds, other: (i1.other - i0.other) / idleSeconds };
        idle.get(tree.name)!.push({ total: (idleRate.main + idleRate.other) * 100, main: idleRate.main * 100, other: idleRate.other * 100 });
        if (warmSeconds > 0) {
          for (const s of servers) wrk(`http://127.0.0.1:${s.port}/hello`, warmSeconds, conns, rate);
          await settle(apiPort);
        }
        // Spans of the warm-up traffic are not the first case's.
        let counted = countSpans(dataDir);
        for (const c of cases) {
          const m0 = perRequestCounters(await metricsText(apiPort));
          const t0 = threadCpu(agent.pid!);
          const cpu0 = cpuSecondsOf(agent.pid!);
          const bpf0 = bpfRunNsOf(agent.pid!);
          const res = run(c);
          const bpf1 = bpfRunNsOf(agent.pid!);
          const cpu1 = cpuSecondsOf(agent.pid!);
          const t1 = threadCpu(agent.pid!);
          const per1k = (cpuSeconds: number) => (cpuSeconds / seconds) * 100 / (res.rps / 1000);
          if (c === cases[cases.length - 1]) rss.get(tree.name)!.push(rssBytesOf(agent.pid!) / 2 ** 20);
          // The backlog is consumed before the next case (so each case is charged its own CPU);
          // this case's spans are what the files gained for its port meanwhile.
          backlog.push({ tree: tree.name, case: `${c.server.name}_${c.mode}`, ...await settle(apiPort) });
          const m1 = perRequestCounters(await metricsText(apiPort));
          const perRequest: Record<string, number> = {};
          for (const k of Object.keys(m1)) perRequest[k] = (m1[k] - (m0[k] ?? 0)) / (res.requests || 1);
          samples.get(c)![r].on[tree.name] = {
            res,
            cpuPer1k: per1k(cpu1 - cpu0),
            // Everything this case's traffic cost the agent, the backlog after wrk stopped included:
            // CPU seconds per 1000 requests = % of a core at 1k req/s.
            cpuPer1kWithBacklog: (cpuSecondsOf(agent.pid!) - cpu0) * 100 * 1000 / (res.requests || 1),
            cpuPer1kLessIdle: per1k(cpu1 - cpu0 - (idleRate.main + idleRate.other) * seconds),
            mainThreadPer1k: per1k(t1.main - t0.main),
            otherThreadsPer1k: per1k(t1.other - t0.other),
            kernelBpfPer1k: per1k((bpf1 - bpf0) / 1e9),
            kernelBpfUsPerRequest: (bpf1 - bpf0) / 1000 / (res.requests || 1),
            perRequest,
          };
          const now = countSpans(dataDir);
          spanShare.get(`${tree.name}:${c.server.name}_${c.mode}`)!.push(((now.get(c.server.port) ?? 0) - (counted.get(c.server.port) ?? 0)) / (res.requests || 1));
          counted = now;
          if (c.mode === 'saturation') {
            // What is left when the agent takes no CPU: the kernel side alone (tracepoints, BPF
            // programs, ring reserve failing once full). Separates that from competition for the cores.
            agent.kill('SIGSTOP');
            try { samples.get(c)![r].on[tree.name].frozen = run(c); } finally { agent.kill('SIGCONT'); }
            backlog.push({ tree: tree.name, case: `${c.server.name}_${c.mode}_agent_stopped`, ...await settle(apiPort) });
            counted = countSpans(dataDir);
          }
        }
        await new Promise<void>((resolve) => { agent.once('exit', () => resolve()); agent.kill('SIGTERM'); });
        process.removeListener('exit', orphan);
        if (agent.exitCode !== 0) process.stdout.write(`agent exit ${agent.exitCode} ${agent.signalCode}: ${fs.readFileSync(path.join(dataDir, 'agent.log'), 'utf8').slice(-2000)}\n`);
        fs.rmSync(dataDir, { recursive: true, force: true });
      }
      process.stdout.write(`round ${r + 1}/${rounds} done (load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')})\n`);
    }
  } finally {
    restoreBpfStats();
    for (const s of servers) s.stop();
    sdkServer?.stop();
    sink?.proc.kill('SIGTERM');
  }
  // CPU seconds over a run as % of a core per 1k req/s of that run.
  const per1kOf = (cpu: number, res: WrkResult) => (cpu / seconds) * 100 / (res.rps / 1000);
  // Server + wrk, per 1k req/s: with telegen on this holds its BPF programs' run time, with the
  // SDK the instrumentation and its exporter.
  const serviceCpu = (res: WrkResult) => per1kOf(res.serverCpu + res.clientCpu, res);
  const perTree = (tree: string) => {
    const report: Record<string, unknown> = {};
    for (const c of cases) {
      const v = samples.get(c)!.filter((x) => x.on[tree]);
      const on = v.map((x) => x.on[tree]);
      const counters = Object.keys(on[0]?.perRequest ?? {});
      report[`${c.server.name}_${c.mode}`] = {
        untraced_rps: spread(v.map((x) => x.off.rps)),
        traced_rps: spread(on.map((x) => x.res.rps)),
        throughput_ratio_traced_over_untraced: spread(v.map((x) => x.on[tree].res.rps / x.off.rps)),
        ...(c.mode === 'saturation' ? { throughput_ratio_agent_stopped_over_untraced: spread(v.filter((x) => x.on[tree].frozen).map((x) => x.on[tree].frozen!.rps / x.off.rps)) } : {}),
        p50_latency_ratio: spread(v.map((x) => x.on[tree].res.p50ms / x.off.p50ms)),
        p99_latency_ratio: spread(v.map((x) => x.on[tree].res.p99ms / x.off.p99ms)),
        untraced_p50_ms: spread(v.map((x) => x.off.p50ms)),
        untraced_p99_ms: spread(v.map((x) => x.off.p99ms)),
        agent_cpu_percent_of_a_core_per_1k_rps: spread(on.map((x) => x.cpuPer1k)),
        agent_cpu_percent_of_a_core_per_1k_rps_backlog_included: spread(on.map((x) => x.cpuPer1kWithBacklog)),
        agent_cpu_percent_of_a_core_per_1k_rps_less_idle: spread(on.map((x) => x.cpuPer1kLessIdle)),
        main_thread_percent_per_1k_rps: spread(on.map((x) => x.mainThreadPer1k)),
        other_threads_percent_per_1k_rps: spread(on.map((x) => x.otherThreadsPer1k)),
        // The agent's BPF programs, run in the traced processes' syscalls (and the machine's other
        // traffic meanwhile), and the agent plus them: the whole CPU cost of tracing.
        kernel_bpf_percent_of_a_core_per_1k_rps: spread(on.map((x) => x.kernelBpfPer1k)),
        kernel_bpf_us_per_request: spread(on.map((x) => x.kernelBpfUsPerRequest)),
        agent_plus_kernel_bpf_percent_of_a_core_per_1k_rps: spread(on.map((x) => x.cpuPer1k + x.kernelBpfPer1k)),
        // What the service and its client (wrk) used per 1k req/s, untraced and traced, and what
        // tracing added in all: their growth (BPF programs, cache effects) plus the agent.
        untraced_server_cpu_percent_per_1k_rps: spread(v.map((x) => per1kOf(x.off.serverCpu, x.off))),
        untraced_client_cpu_percent_per_1k_rps: spread(v.map((x) => per1kOf(x.off.clientCpu, x.off))),
        traced_server_cpu_percent_per_1k_rps: spread(on.map((x) => per1kOf(x.res.serverCpu, x.res))),
        traced_client_cpu_percent_per_1k_rps: spread(on.map((x) => per1kOf(x.res.clientCpu, x.res))),
        added_cpu_percent_of_a_core_per_1k_rps: spread(v.map((x) => serviceCpu(x.on[tree].res) - serviceCpu(x.off) + x.on[tree].cpuPer1k)),
        per_request: Object.fromEntries(counters.map((k) => [k, spread(on.map((x) => x.perRequest[k]))])),
        // Per round, to tell rounds where other tenants' traffic reached the agent (more than ~5
        // ring records and 1 client span per request) from clean ones.
        per_round: on.map((x) => ({ cpu_per_1k: round3(x.cpuPer1k), main: round3(x.mainThreadPer1k), other: round3(x.otherThreadsPer1k), ring_records_per_request: round3(x.perRequest.ring_records), client_spans_per_request: round3(x.perRequest.spans_client ?? 0) })),
      };
    }
    const idleOf = idle.get(tree)!;
    return {
      cases: report,
      idle_agent_cpu_percent_of_a_core: { total: spread(idleOf.map((x) => x.total)), main_thread: spread(idleOf.map((x) => x.main)), other_threads: spread(idleOf.map((x) => x.other)) },
      agent_rss_MiB: spread(rss.get(tree)!),
      server_spans_exported_per_request: Object.fromEntries(cases.map((c) => [`${c.server.name}_${c.mode}`, spread(spanShare.get(`${tree}:${c.server.name}_${c.mode}`)!)])),
    };
  };
  const here = perTree('this_tree');
  // The in-process SDK beside the untraced server and this tree, same rounds (Node cases).
  const peerReport: Record<string, unknown> = {};
  for (const c of cases) {
    const v = samples.get(c)!.filter((x) => x.peer);
    if (!v.length) continue;
    const added = (x: Sample) => serviceCpu(x.peer!.res) - serviceCpu(x.off);
    const ours = v.filter((x) => x.on.this_tree);
    const oursAdded = (x: Sample) => serviceCpu(x.on.this_tree.res) - serviceCpu(x.off) + x.on.this_tree.cpuPer1k;
    peerReport[`${c.server.name}_${c.mode}`] = {
      rps: spread(v.map((x) => x.peer!.res.rps)),
      throughput_ratio_sdk_over_untraced: spread(v.map((x) => x.peer!.res.rps / x.off.rps)),
      p50_latency_ratio: spread(v.map((x) => x.peer!.res.p50ms / x.off.p50ms)),
      p99_latency_ratio: spread(v.map((x) => x.peer!.res.p99ms / x.off.p99ms)),
      server_cpu_percent_per_1k_rps: spread(v.map((x) => per1kOf(x.peer!.res.serverCpu, x.peer!.res))),
      client_cpu_percent_per_1k_rps: spread(v.map((x) => per1kOf(x.peer!.res.clientCpu, x.peer!.res))),
      added_cpu_percent_of_a_core_per_1k_rps: spread(v.map(added)),
      added_cpu_percent_of_a_core_per_1k_rps_last_batches_included: spread(v.map((x) => added(x) + per1kOf(x.peer!.flushCpu, x.peer!.res))),
      server_spans_exported_per_request: spread(v.map((x) => x.peer!.spansPerRequest)),
      export_requests_rejected: v.reduce((n, x) => n + x.peer!.rejected, 0),
      sink_cpu_percent_per_1k_rps: spread(v.map((x) => per1kOf(x.peer!.sinkCpu, x.peer!.res))),
      // Same-round ratios: > 1 means telegen costs the service less / keeps more throughput.
      throughput_this_tree_over_sdk: spread(ours.map((x) => x.on.this_tree.res.rps / x.peer!.res.rps)),
      added_cpu_sdk_over_this_tree: spread(ours.map((x) => added(x) / oursAdded(x))),
    };
  }
  const result: Record<string, unknown> = {
    workload: { tool: 'wrk', threads: 1, connections: conns, seconds, rounds, idle_seconds: idleSeconds, warm_seconds: warmSeconds, fixed_rate_rps: rate, targets: 'Node http server and nginx, GET /hello (keep-alive)', agent: 'telegen run, default config' },
    ...here,
    ...(Object.keys(peerReport).length ? {
      peer_otel_js_sdk: {
        what: 'the Node server instrumented in-process: @opentelemetry/sdk-trace-node + instrumentation-http 0.215 (SDK 2.7), default batch span processor, OTLP/HTTP protobuf to a span-counting sink on 127.0.0.1 (bench/fixtures/otel-sdk-preload.js, otlp-sink.js); traces only (no meter provider); server spans only (wrk is not Node): telegen also makes client spans, RED metrics and service-graph edges',
        cases: peerReport,
      },
    } : {}),
    after_each_case: backlog,
    note: 'fixed-rate cases first, then saturation; each agent start first idles idle_seconds (its background CPU, subtracted in *_less_idle); after each case the agent is given up to 120 s to consume its backlog (after_each_case: how long, ring records dropped so far, export items dropped so far) before the next case, so each case is charged the CPU of its own traffic; server spans per request are counted per case over every rotated traces file; wrk, the servers and the agent share the same 2 cores; at saturation every CPU second the agent uses is taken from the server or wrk. spans per request < 1 means the agent fell behind (ring drops are counted in /metrics)',
  };
  if (trees.length > 1) {
    // The second tree: the BENCH_BASELINE worktree, or this tree with BENCH_VARIANT_ENV (the
    // baseline_* names then mean the variant).
    const other = trees[1].name;
    const base = perTree(other);
    const ratio: Record<string, unknown> = {};
    for (const c of cases) {
      const k = `${c.server.name}_${c.mode}`;
      const pairs = samples.get(c)!.filter((x) => x.on.this_tree && x.on[other]);
      ratio[k] = {
        cpu_per_1k_baseline_over_this_tree: spread(pairs.map((x) => x.on[other].cpuPer1k / x.on.this_tree.cpuPer1k)),
        cpu_per_1k_less_idle_baseline_over_this_tree: spread(pairs.map((x) => x.on[other].cpuPer1kLessIdle / x.on.this_tree.cpuPer1kLessIdle)),
        kernel_bpf_per_request_baseline_over_this_tree: spread(pairs.map((x) => x.on[other].kernelBpfUsPerRequest / x.on.this_tree.kernelBpfUsPerRequest)),
      };
    }
    result.baseline = { tree: trees[1].root, name: other, env: trees[1].env, ...base, same_round_ratios: ratio };
  }
  writeResult(process.env.BENCH_RESULT || (trees.length > 1 ? 'agent-overhead-vs-baseline' : 'agent-overhead'), result);
}

main().catch((e) => { console.error(e); process.exit(1); });
