// What the agent's memory is made of, at idle, at a steady fixed request rate and after a burst (issue 12: aim
// ≤ 100 MB RSS on a traced service). The real agent (`telegen run`, default config) beside a Node
// HTTP server driven by wrk at BENCH_RATE (1000) req/s; every few seconds /proc/PID/smaps is
// grouped by what the mapping is (the BPF rings, node's code, the addon, libraries, malloc's
// [heap], other anonymous memory: V8's heap, malloc arenas, Wasm memories) with RSS and PSS, next
// to the agent's own /metrics (V8 heap used, decoder linear memory).
//
// BENCH_BASELINE=DIR (a built git worktree of an earlier commit) runs that tree's agent too, the
// two alternating within each round, so before/after share the machine's load.
// BENCH_VARIANT_ENV='K=V …' adds this tree once more with those environment variables (e.g.
// TELEGEN_OLD_GEN_GROWING_PERCENT=0 to see one setting's share), named `this+K=V …`; several
// variants are separated by ';'. BENCH_SCOPE=server
// (default) sets tracers.socket.target_pid to the bench's server: on a shared machine the other
// tenants' traffic would otherwise decide the heap; `machine` keeps the default config as is.
import { spawn, ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spread, writeResult, repoRoot, Spread, cpuSecondsOf, rssBytesOf } from './lib';

const ROUNDS = Number(process.env.BENCH_ROUNDS || 3);
const RATE = Number(process.env.BENCH_RATE || 1000);
const IDLE_S = Number(process.env.BENCH_IDLE_S || 40);
const WARM_S = Number(process.env.BENCH_WARM_S || 40);
const MEASURE_S = Number(process.env.BENCH_MEASURE_S || 40);
// After the fixed rate: wrk unpaced for BURST_S (saturation, as agent-overhead's cases), then the
// agent quiet for AFTER_S; 'after' is sampled over its second half (0 = no burst phase).
const BURST_S = Number(process.env.BENCH_BURST_S ?? 15);
const AFTER_S = Number(process.env.BENCH_AFTER_S || 60);
const SAMPLE_MS = 5000;
const SCOPE = process.env.BENCH_SCOPE === 'machine' ? 'machine' : 'server';

type Parts = Record<string, { rss: number; pss: number }>;

/** Which part of the agent a mapping is. */
function partOf(name: string, exe: string): string {
  if (name.includes('bpf-map')) return 'bpf_rings';
  if (name === exe) return 'node_code';
  if (name.endsWith('.node')) return 'addon';
  if (name === '[heap]') return 'malloc_heap';
  if (name.startsWith('/')) return 'libraries';
  return 'anonymous';  // V8 heap, malloc arenas, Wasm memories, stacks
}

/** /proc/PID/smaps grouped by part, MiB; plus the totals and the kernel's anon/file/shmem split. */
function breakdown(pid: number): Record<string, number> {
  const exe = fs.realpathSync(`/proc/${pid}/exe`);
  const parts: Parts = {};
  let cur: { rss: number; pss: number } | undefined;
  for (const line of fs.readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const m = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (m) { const p = partOf(m[1].trim(), exe); cur = parts[p] ??= { rss: 0, pss: 0 }; continue; }
    if (!cur) continue;
    if (line.startsWith('Rss:')) cur.rss += Number(/(\d+)/.exec(line)![1]);
    else if (line.startsWith('Pss:')) cur.pss += Number(/(\d+)/.exec(line)![1]);
  }
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
  const rollup = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const rk = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? 0);
  const out: Record<string, number> = { rss: kb('VmRSS'), pss: rk('Pss'), rss_anon: kb('RssAnon'), rss_file: kb('RssFile'), rss_shmem: kb('RssShmem') };
  for (const [p, v] of Object.entries(parts)) { out[`${p}_rss`] = v.rss; out[`${p}_pss`] = v.pss; }
  for (const k of Object.keys(out)) out[k] = Math.round((out[k] / 1024) * 10) / 10;
  return out;
}

async function agentMetrics(port: number): Promise<Record<string, number>> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    const sum = (name: string) => { let n = 0; for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) n += Number(m[1]); return n; };
    return {
      v8_heap_used: Math.round(sum('telegen_process_heap_used_bytes') / 2 ** 20 * 10) / 10,
      wasm_memory: Math.round(sum('telegen_decoder_memory_bytes') / 2 ** 20 * 10) / 10,
      export_queues: Math.round(sum('telegen_export_queue_bytes') / 2 ** 20 * 10) / 10,
      ring_records: sum('telegen_bpf_records_total'),
      // Handler calls of the ring readers: records / batches is the batch size (tracers.socket.max_batch caps it).
      ring_batches: sum('telegen_bpf_batches_total'),
      ring_full: sum('telegen_bpf_ring_full_total'),
      spans: sum('telegen_spans_total'),
      // Counted losses when the agent is overloaded (host/src/memory/overload.ts, export queues).
      shed_records: sum('telegen_ingest_shed_records_total'),
      export_dropped: sum('telegen_export_dropped_total'),
      // A round that made no spans is explained by these, not by memory.
      ring_malformed: sum('telegen_ring_malformed_total'),
      decoder_bad_records: sum('telegen_decoder_bad_records_total'),
      host_record_errors: sum('telegen_host_record_errors_total'),
    };
  } catch { return {}; }
}

function startServer(): Promise<{ proc: ChildProcess; port: number }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [path.join(repoRoot, 'test', 'fixtures', 'http-server.js'), '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    proc.stdout!.on('data', (d) => { const m = /listening (\d+)/.exec(String(d)); if (m) resolve({ proc, port: Number(m[1]) }); });
    proc.once('exit', (c) => reject(new Error(`server exited ${c}`)));
  });
}

async function startAgent(tree: string, targetPid: number | undefined, extraEnv: Record<string, string>): Promise<{ proc: ChildProcess; port: number; dataDir: string }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-rss-'));
  const port = 19000 + Math.floor(Math.random() * 1000);
  const args = [path.join(tree, 'bin', 'telegen'), 'run', '--data-dir', dataDir, '--api-listen', `127.0.0.1:${port}`];
  if (targetPid) {
    fs.writeFileSync(path.join(dataDir, 'rss.yaml'), `tracers:\n  socket: { target_pid: ${targetPid} }\n`);
    args.push('--config', path.join(dataDir, 'rss.yaml'));
  }
  const log = fs.openSync(path.join(dataDir, 'agent.log'), 'a');
  const proc = spawn(process.execPath, args, { stdio: ['ignore', log, log], env: { ...process.env, TELEGEN_LOG_LEVEL: 'warn', ...extraEnv } });
  for (let i = 0; i < 1200; i++) {
    try { if ((await fetch(`http://127.0.0.1:${port}/readyz`)).ok) return { proc, port, dataDir }; } catch { /* starting */ }
    if (proc.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  proc.kill('SIGKILL');
  throw new Error(`agent of ${tree} did not become ready: ${fs.readFileSync(path.join(dataDir, 'agent.log'), 'utf8').slice(-1500)}`);
}

/** wrk at a fixed rate (each of C connections pauses C/RATE s between requests), in the background. */
function wrkFixedRate(port: number, seconds: number, paced = true): ChildProcess {
  const conns = 16;
  const script = path.join(os.tmpdir(), `telegen-rss-wrk-${process.pid}.lua`);
  fs.writeFileSync(script, `function delay() return ${Math.max(1, Math.round((conns * 1000) / RATE))} end\n`);
  return spawn('wrk', ['-t1', `-c${conns}`, `-d${seconds}s`, ...(paced ? ['-s', script] : []), `http://127.0.0.1:${port}/hello`], { stdio: ['ignore', 'pipe', 'inherit'] });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The kernel's high-water mark of the agent's RSS (VmHWM), MiB: every page it held at once, also
 *  between samples (a compacting collection's copy lasts 0.1-0.2 s, which 1 s samples miss). */
function hwmMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : 0;
}
/** Starts a new high-water mark at the current RSS (clear_refs 5, Linux 4.0+). */
function resetHwm(pid: number): void {
  try { fs.writeFileSync(`/proc/${pid}/clear_refs`, '5'); } catch { /* an older kernel: the mark since start */ }
}

/** Medians of the samples taken over `seconds`, one every SAMPLE_MS. */
async function sampleFor(pid: number, port: number, seconds: number): Promise<Record<string, number>> {
  const samples: Array<Record<string, number>> = [];
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    samples.push({ ...breakdown(pid), ...await agentMetrics(port) });
    await sleep(SAMPLE_MS);
  }
  const keys = new Set(samples.flatMap((s) => Object.keys(s)));
  const out: Record<string, number> = {};
  for (const k of keys) out[k] = spread(samples.map((s) => s[k] ?? 0)).median;
  return out;
}

type Phase = 'idle' | 'load' | 'burst_end' | 'after';
type Run = Partial<Record<Phase, Record<string, number>>> & { rps: number; burst_rps?: number };

async function measure(tree: string, extraEnv: Record<string, string>, server: { proc: ChildProcess; port: number }): Promise<Run> {
  const agent = await startAgent(tree, SCOPE === 'server' ? server.proc.pid : undefined, extraEnv);
  const orphan = () => { if (agent.proc.exitCode === null) agent.proc.kill('SIGKILL'); };
  process.once('exit', orphan);
  try {
    // Idle: the last half of IDLE_S after start-up (discovery, decoder loads settle first).
    await sleep((IDLE_S / 2) * 1000);
    const idle = await sampleFor(agent.proc.pid!, agent.port, IDLE_S / 2);
    // Spans per request (server scope: one server span each): what a setting costs in spans.
    const m0 = await agentMetrics(agent.port);
    const spans0 = m0.spans ?? 0;
    resetHwm(agent.proc.pid!);
    const w = wrkFixedRate(server.port, WARM_S + MEASURE_S + 5);
    let out = '';
    w.stdout!.on('data', (d) => { out += d; });
    await sleep(WARM_S * 1000);
    const cpu0 = cpuSecondsOf(agent.proc.pid!), t0 = Date.now();
    const load = await sampleFor(agent.proc.pid!, agent.port, MEASURE_S);
    load.agent_cpu_percent_of_a_core = Math.round(((cpuSecondsOf(agent.proc.pid!) - cpu0) / ((Date.now() - t0) / 1000)) * 1000) / 10;
    await new Promise((r) => w.once('exit', r));
    const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
    // CPU a request at the fixed rate (wrk's achieved rate over warm-up and the window).
    load.agent_cpu_us_per_request = rps ? Math.round((load.agent_cpu_percent_of_a_core * 10_000) / rps * 10) / 10 : 0;
    await sleep(3000); // the correlator's hold and the file exporter's batch
    const m1 = await agentMetrics(agent.port);
    const spans1 = m1.spans ?? 0;
    load.records_per_batch = Math.round((((m1.ring_records ?? 0) - (m0.ring_records ?? 0)) / Math.max(1, (m1.ring_batches ?? 0) - (m0.ring_batches ?? 0))) * 10) / 10;
    load.spans_per_request = Math.round(((spans1 - spans0) / (Number(/(\d+) requests in/.exec(out)?.[1]) || 1)) * 1000) / 1000;
    // Over warm-up, the fixed rate and the 3 s after it.
    load.hwm = hwmMiB(agent.proc.pid!);
    if (!BURST_S) return { idle, load, rps };
    resetHwm(agent.proc.pid!);
    const bcpu0 = cpuSecondsOf(agent.proc.pid!), bt0 = Date.now();
    const b = wrkFixedRate(server.port, BURST_S, false);
    let bout = '';
    b.stdout!.on('data', (d) => { bout += d; });
    // The burst's peak, not only its end: RSS and the export queues every second.
    let peakRss = 0, peakQueues = 0;
    let burstOver = false;
    const exited = new Promise((r) => b.once('exit', r)).then(() => { burstOver = true; });
    while (!burstOver) {
      peakRss = Math.max(peakRss, rssBytesOf(agent.proc.pid!) / 2 ** 20);
      peakQueues = Math.max(peakQueues, (await agentMetrics(agent.port)).export_queues ?? 0);
      await Promise.race([exited, sleep(1000)]);
    }
    const burstEnd = { ...breakdown(agent.proc.pid!), ...await agentMetrics(agent.port) };
    burstEnd.peak_rss = Math.round(Math.max(peakRss, burstEnd.rss) * 10) / 10;
    burstEnd.peak_export_queues = Math.max(peakQueues, burstEnd.export_queues ?? 0);
    burstEnd.agent_cpu_percent_of_a_core = Math.round(((cpuSecondsOf(agent.proc.pid!) - bcpu0) / ((Date.now() - bt0) / 1000)) * 1000) / 10;
    // CPU over the whole quiet window: what a collection after the burst costs is charged here.
    const qcpu0 = cpuSecondsOf(agent.proc.pid!), qt0 = Date.now();
    // 5 s into the quiet: the ring's backlog is decoded by then, the burst's garbage may not be.
    await sleep(5000);
    burstEnd.rss_5s_after = breakdown(agent.proc.pid!).rss;
    // Over the burst and the first 5 s after it, where the ring's backlog is decoded.
    burstEnd.hwm = hwmMiB(agent.proc.pid!);
    await sleep(Math.max(0, (AFTER_S / 2) * 1000 - 5000));
    const after = await sampleFor(agent.proc.pid!, agent.port, AFTER_S / 2);
    after.hwm = hwmMiB(agent.proc.pid!);
    const burstRequests = Number(/(\d+) requests in/.exec(bout)?.[1]) || 1;
    burstEnd.spans_per_request = Math.round((((after.spans ?? 0) - spans1) / burstRequests) * 1000) / 1000;
    after.agent_cpu_percent_of_a_core = Math.round(((cpuSecondsOf(agent.proc.pid!) - qcpu0) / ((Date.now() - qt0) / 1000)) * 1000) / 10;
    // Burst and quiet together, where the ring's backlog is read: CPU a ring record (what smaller
    // batches cost per call shows here) and the records a handler call got on average.
    const readRecords = (after.ring_records ?? 0) - (m1.ring_records ?? 0);
    burstEnd.cpu_ns_per_ring_record = readRecords > 0 ? Math.round(((cpuSecondsOf(agent.proc.pid!) - bcpu0) * 1e9) / readRecords) : 0;
    burstEnd.records_per_batch = Math.round((readRecords / Math.max(1, (after.ring_batches ?? 0) - (m1.ring_batches ?? 0))) * 10) / 10;
    // What the kernel dropped and how many records each span took: a batch size that reads the
    // ring differently shows up as records lost inside exchanges, not as CPU.
    burstEnd.ring_full = (after.ring_full ?? 0) - (m1.ring_full ?? 0);
    burstEnd.records_per_span = Math.round((readRecords / Math.max(1, (after.spans ?? 0) - spans1)) * 100) / 100;
    return { idle, load, burst_end: burstEnd, after, rps, burst_rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(bout)?.[1] ?? 0) };
  } finally {
    await new Promise<void>((resolve) => { agent.proc.once('exit', () => resolve()); agent.proc.kill('SIGTERM'); setTimeout(() => agent.proc.kill('SIGKILL'), 30_000).unref(); });
    process.removeListener('exit', orphan);
    fs.rmSync(agent.dataDir, { recursive: true, force: true });
  }
}

function summarize(runs: Run[]): Record<string, unknown> {
  const phase = (p: Phase) => {
    const keys = new Set(runs.flatMap((r) => Object.keys(r[p] ?? {})));
    const o: Record<string, Spread> = {};
    for (const k of keys) o[k] = spread(runs.map((r) => r[p]?.[k] ?? 0));
    return o;
  };
  return {
    idle_MiB: phase('idle'), load_MiB: phase('load'), achieved_rps: spread(runs.map((r) => r.rps)),
    ...(BURST_S ? { burst_end_MiB: phase('burst_end'), after_burst_MiB: phase('after'), burst_rps: spread(runs.map((r) => r.burst_rps ?? 0)) } : {}),
  };
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) { console.error('agent-rss needs root (BPF)'); process.exit(1); }
  const baseline = process.env.BENCH_BASELINE;
  const variants = (process.env.BENCH_VARIANT_ENV ?? '').split(';').map((v) => v.trim()).filter(Boolean);
  const trees: Array<[string, string, Record<string, string>]> = [
    ['this', repoRoot, {}],
    ...variants.map((v) => [`this+${v}`, repoRoot, Object.fromEntries(v.split(/\s+/).map((kv) => kv.split('=', 2) as [string, string]))] as [string, string, Record<string, string>]),
    ...(baseline ? [['baseline', path.resolve(baseline), {}] as [string, string, Record<string, string>]] : []),
  ];
  const server = await startServer();
  const load0 = os.loadavg();
  const runs = new Map<string, Run[]>(trees.map(([n]) => [n, []]));
  try {
    for (let r = 0; r < ROUNDS; r++) {
      // Alternate which tree goes first, so neither always follows the other's leftovers.
      const order = r % 2 ? [...trees].reverse() : trees;
      for (const [name, dir, env] of order) {
        const m = await measure(dir, env, server);
        runs.get(name)!.push(m);
        const { idle, load } = m as Required<Run>;
        process.stdout.write(`round ${r + 1}/${ROUNDS} ${name}: idle rss ${idle.rss} pss ${idle.pss}, ${RATE} req/s (${m.rps}) rss ${load.rss} pss ${load.pss} MiB; cpu ${load.agent_cpu_percent_of_a_core}%, rings ${load.bpf_rings_rss}, anon ${load.rss_anon}, V8 heap used ${load.v8_heap_used}, queues ${load.export_queues}`
          + `, spans/request ${load.spans_per_request}`
          + `, hwm ${load.hwm}, ${load.agent_cpu_us_per_request} µs/request, ${load.records_per_batch} records/batch`
          + (m.after ? `; burst (${m.burst_rps} req/s) peak rss ${m.burst_end!.peak_rss}, hwm ${m.burst_end!.hwm} (to the end ${m.after.hwm}), 5 s after ${m.burst_end!.rss_5s_after}, spans/request ${m.burst_end!.spans_per_request}, queues ${m.burst_end!.peak_export_queues}, cpu ${m.burst_end!.agent_cpu_percent_of_a_core}%, ${m.burst_end!.cpu_ns_per_ring_record} ns/record, ${m.burst_end!.records_per_batch} records/batch, ${m.burst_end!.records_per_span} records/span, ring_full ${m.burst_end!.ring_full}, shed ${m.burst_end!.shed_records}, export dropped ${m.burst_end!.export_dropped}, end rss ${m.burst_end!.rss}, after rss ${m.after.rss} anon ${m.after.rss_anon} V8 heap used ${m.after.v8_heap_used}` : '') + '\n');
      }
    }
  } finally {
    server.proc.kill('SIGTERM');
  }
  writeResult(process.env.BENCH_RESULT || 'agent-rss', {
    workload: { tool: 'wrk', threads: 1, connections: 16, fixed_rate_rps: RATE, idle_s: IDLE_S, warm_s: WARM_S, measure_s: MEASURE_S, burst_s: BURST_S, after_s: AFTER_S, sample_ms: SAMPLE_MS, rounds: ROUNDS, scope: SCOPE, target: 'test/fixtures/http-server.js GET /hello, keep-alive', agent: `telegen run, default config${SCOPE === 'server' ? ' + tracers.socket.target_pid = the server' : ''}` },
    loadavg_at_start: load0.map((x) => Math.round(x * 100) / 100),
    trees: Object.fromEntries(trees.map(([n, d, env]) => [n, { dir: d, env, ...summarize(runs.get(n)!) }])),
    note: 'MiB; per tree and phase, the median over rounds of each round\'s median sample (min/max over rounds). idle = the second half of BENCH_IDLE_S after the agent is ready; load = BENCH_MEASURE_S after BENCH_WARM_S of wrk; burst_end = one sample right after BENCH_BURST_S of unpaced wrk (saturation), with peak_rss / peak_export_queues (sampled every second during the burst), hwm (the high-water mark of RSS the kernel keeps, VmHWM, reset right before the burst, read 5 s after it), rss_5s_after (one sample 5 s into the quiet), spans_per_request (spans made from the start of the burst to the after window over the burst requests; load.spans_per_request: over the fixed-rate requests, 3 s after it; load.hwm: VmHWM reset when wrk starts, read 3 s after it ends; after_burst.hwm: VmHWM from right before the burst to the end of the quiet) and the agent CPU over the burst; after_burst = the second half of BENCH_AFTER_S of quiet after it. load.agent_cpu_us_per_request = agent CPU over the window / the achieved rate of wrk; records_per_batch = ring records per handler call (load: over warm-up and the window; burst_end: over the burst and the quiet, with cpu_ns_per_ring_record, records_per_span and ring_full, the drops of the kernel, over the same span); export_queues = bytes queued for export, every signal; agent_cpu_percent_of_a_core = its CPU time over the measured window (not a MiB). Parts are /proc/PID/smaps mappings: bpf_rings (anon_inode:bpf-map), node_code (the node executable), addon (*.node), libraries (other files), malloc_heap ([heap]), anonymous (V8 heap, malloc arenas, Wasm memories, stacks).',
  });
}

main().catch((e) => { console.error(e); process.exit(1); });
