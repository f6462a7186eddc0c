// Shared benchmark helpers: machine facts, robust stats, result files. Benchmarks report what
// they measured (medians over rounds and the spread), never assert timings.
import { spawn, ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { bpfFdinfo } from '../host/src/native/fdinfo';

export const repoRoot = path.resolve(__dirname, '..', '..');

export function machine(): Record<string, unknown> {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
    loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

export interface Spread { median: number; min: number; max: number; rounds: number }

export function spread(values: number[]): Spread {
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  const median = v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return { median: r(median), min: r(v[0]), max: r(v[v.length - 1]), rounds: v.length };
}

export function writeResult(name: string, result: Record<string, unknown>): string {
  const dir = path.join(repoRoot, 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify({ name, date: new Date().toISOString(), machine: machine(), ...result }, null, 2) + '\n');
  process.stdout.write(`bench ${name}: ${file}\n`);
  return file;
}

export function cpuSecondsOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime
  return ticks / 100; // USER_HZ is 100 on Linux
}

export function rssBytesOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/**
 * Run time (ns) of the BPF programs a process holds open, summed once per program. BPF programs
 * run in the context of the process whose syscall or packet fired them, so this is CPU the agent
 * costs the traced services and the kernel, which is not in its own CPU. Counted only while
 * kernel.bpf_stats_enabled is 1 (enableBpfStats); 0 for a process that is gone.
 */
export function bpfRunNsOf(pid: number): number {
  return bpfFdinfo(pid, 'prog').reduce((a, p) => a + Number(p.run_time_ns ?? 0), 0);
}

/** Turns on the kernel's per-program run-time counters (two clock reads per program run while on);
 *  the returned function puts the previous setting back. */
export function enableBpfStats(): () => void {
  const file = '/proc/sys/kernel/bpf_stats_enabled';
  let before = '0';
  try { before = fs.readFileSync(file, 'utf8').trim(); fs.writeFileSync(file, '1'); } catch { return () => undefined; }
  return () => { try { fs.writeFileSync(file, before); } catch { /* best effort */ } };
}

/** CPU seconds (user + system, every thread of this process) spent running `fn`. On a shared,
 *  loaded machine wall time mostly measures the other tenants; CPU time is the cost. */
export function cpuSecondsIn(fn: () => void): number {
  const c0 = process.cpuUsage();
  fn();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6;
}

interface Feedable {
  feed(stream: number, dir: number, bytes: Uint8Array, ts: bigint): unknown;
  closeStream(stream: number): void;
}

/** A decoder through another tree's host and module (BENCH_BASELINE=DIR: a built worktree of an
 *  earlier commit), for before/after runs alternating in one process on the same bytes. */
export function loadDecoder(treeDir: string, name: string, onRecord: () => void): Feedable {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { DecoderInstance } = require(path.join(treeDir, 'dist', 'host', 'src', 'decoders', 'instance'));
  return DecoderInstance.fromBytes(fs.readFileSync(path.join(treeDir, 'build', 'decoders', `${name}.wasm`)), { onRecord });
}

/** CPU seconds of every thread of `pid` from /proc/PID/task/TID/stat (utime + stime): the main
 *  thread apart from the others (V8's helpers, libuv's pool). */
export function threadCpu(pid: number): { main: number; other: number } {
  let main = 0, other = 0;
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try { stat = fs.readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8'); } catch { continue; }
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const s = (Number(f[11]) + Number(f[12])) / 100;
    if (Number(t) === pid) main += s; else other += s;
  }
  return { main, other };
}

export interface AgentArm { name: string; root: string; env: Record<string, string> }

/** The arms of an A/B run: this tree; BENCH_BASELINE=DIR (a built worktree of an earlier
 *  commit); BENCH_VARIANT_ENV='K=V …' (this tree with that agent environment; several separated
 *  by ';;'). */
export function agentArms(): AgentArm[] {
  const arms: AgentArm[] = [{ name: 'this_tree', root: repoRoot, env: {} }];
  if (process.env.BENCH_BASELINE) arms.push({ name: 'baseline', root: path.resolve(process.env.BENCH_BASELINE), env: {} });
  for (const v of (process.env.BENCH_VARIANT_ENV ?? '').split(';;').map((s) => s.trim()).filter(Boolean)) {
    arms.push({ name: `this+${v}`, root: repoRoot, env: Object.fromEntries(v.split(/\s+/).map((kv) => kv.split('=', 2) as [string, string])) });
  }
  return arms;
}

/** Per arm, the spread of `arm's value / this tree's` over the rounds both ran. */
export function sameRoundRatios(rows: Array<Record<string, unknown>>, arms: AgentArm[], rounds: number, key: string): Record<string, Spread> {
  const ratios: Record<string, Spread> = {};
  for (const arm of arms.slice(1)) {
    const pairs: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const a = rows.find((x) => x.round === r && x.arm === arm.name), b = rows.find((x) => x.round === r && x.arm === 'this_tree');
      if (a && b) pairs.push(Number(a[key]) / Number(b[key]));
    }
    ratios[`${arm.name}_over_this_tree`] = spread(pairs);
  }
  return ratios;
}

/** A port nobody listens on now (a random one can be another agent's: the machine is shared). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); });
  });
}

/** A config file `name` in `dir` with every tracer off but `tracers` (the socket tracer too unless
 *  named), so a run measures only those. */
export function tracersOnlyConfig(dir: string, tracers: Record<string, unknown>, name = 'config.json'): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { configSchema } = require('../host/src/config') as typeof import('../host/src/config');
  const known = Object.keys((configSchema.shape.tracers as unknown as { _def: { innerType: { shape: Record<string, unknown> } } })._def.innerType.shape);
  const file = path.join(dir, name);
  fs.writeFileSync(file, JSON.stringify({ tracers: { ...Object.fromEntries(known.map((k) => [k, { enabled: false }])), ...tracers } }));
  return file;
}

/** Resolves with `agent` once its /readyz answers (polled every 100 ms, `tries` times); one that
 *  exits first is an error, one not ready by then is killed and an error. */
export async function untilReady(agent: ChildProcess, apiPort: number, tries: number): Promise<ChildProcess> {
  for (let i = 0; i < tries; i++) {
    if (agent.exitCode !== null) throw new Error(`agent exited ${agent.exitCode}`);
    try { if ((await fetch(`http://127.0.0.1:${apiPort}/readyz`)).ok) return agent; } catch { /* starting */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  agent.kill('SIGKILL');
  throw new Error('agent did not become ready');
}

export interface RunningTelegen { proc: ChildProcess; apiPort: number; dataDir: string; logFile: string; stop(): Promise<void> }

/** `telegen run` of an arm's tree in a fresh data dir with `config`, its output in DIR/agent.log;
 *  resolves once /readyz answers. `stop` ends it (SIGTERM, waited for) and removes the dir. */
export async function startTelegen(arm: AgentArm, config: object, nodeArgs: string[] = [], env: Record<string, string> = {}, dirPrefix = 'telegen-bench-'): Promise<RunningTelegen> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), dirPrefix));
  const cfg = path.join(dataDir, 'config.json');
  fs.writeFileSync(cfg, JSON.stringify(config));
  const apiPort = 19000 + Math.floor(Math.random() * 1000);
  const logFile = path.join(dataDir, 'agent.log');
  const out = fs.openSync(logFile, 'a');
  const proc = spawn(process.execPath, [...nodeArgs, path.join(arm.root, 'bin', 'telegen'), 'run', '--config', cfg, '--data-dir', dataDir, '--api-listen', `127.0.0.1:${apiPort}`],
    { stdio: ['ignore', out, out], env: { ...process.env, TELEGEN_LOG_LEVEL: 'warn', ...env, ...arm.env } });
  const orphan = () => { if (proc.exitCode === null) proc.kill('SIGKILL'); };
  process.once('exit', orphan);
  const stop = async () => {
    await new Promise<void>((resolve) => { if (proc.exitCode !== null) resolve(); else { proc.once('exit', () => resolve()); proc.kill('SIGTERM'); } });
    process.removeListener('exit', orphan);
    fs.closeSync(out);
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  let ready = false;
  for (let i = 0; i < 600 && !ready; i++) {
    try { ready = (await fetch(`http://127.0.0.1:${apiPort}/readyz`)).ok; } catch { /* starting */ }
    if (!ready) await new Promise((res) => setTimeout(res, 100));
  }
  if (!ready) {
    const tail = fs.readFileSync(logFile, 'utf8').slice(-2000);
    await stop();
    throw new Error(`agent ${arm.name} not ready: ${tail}`);
  }
  return { proc, apiPort, dataDir, logFile, stop };
}

/** Sum of every sample of a metric family on /metrics (0 when absent). */
export function metricSum(text: string, name: string): number {
  let n = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) n += Number(m[1]);
  return n;
}

/** The agent's /metrics text; asked again once when the agent closed the keep-alive socket at that instant. */
export async function metricsText(apiPort: number): Promise<string> {
  try {
    return await (await fetch(`http://127.0.0.1:${apiPort}/metrics`)).text();
  } catch {
    await new Promise((r) => setTimeout(r, 500));
    return (await fetch(`http://127.0.0.1:${apiPort}/metrics`)).text();
  }
}

/** Waits until the agent has consumed its backlog (records stop growing, trace queue empty), ≤120 s
 *  (BENCH_SETTLE_SECONDS: on a machine whose other tenants keep making traffic the records never
 *  stop growing, and a fixed-rate case leaves no backlog worth waiting for). */
export async function settle(apiPort: number, capMs = Number(process.env.BENCH_SETTLE_SECONDS || 120) * 1000): Promise<{ seconds: number; ringFull: number; exportDropped: number }> {
  const t0 = Date.now();
  let last = -1;
  let text = '';
  while (Date.now() - t0 < capMs) {
    text = await metricsText(apiPort);
    const records = metricSum(text, 'telegen_bpf_records_total');
    const queued = metricSum(text, 'telegen_export_queue_items');
    // The polls themselves are traced traffic (a few records each): settled is growth at that
    // level with nothing queued.
    if (last >= 0 && records - last <= 64 && queued === 0) break;
    last = records;
    await new Promise((r) => setTimeout(r, 2000));
  }
  return { seconds: (Date.now() - t0) / 1000, ringFull: metricSum(text, 'telegen_bpf_ring_full_total'), exportDropped: metricSum(text, 'telegen_export_dropped_total') };
}

/** Spans of one kind (default 2, SERVER) per server port in the agent's OTLP/JSON traces files (rotated ones included:
 *  a saturation case fills the 100 MB file several times). */
export function countSpans(dataDir: string, kind = 2): Map<number, number> {
  const n = new Map<number, number>();
  const files = fs.readdirSync(dataDir).filter((f) => /^traces\.jsonl(\.\d+)?$/.test(f)).map((f) => path.join(dataDir, f));
  for (const file of files) for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    for (const rs of JSON.parse(line).resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) for (const s of ss.spans ?? []) {
      if (s.kind !== kind) continue;
      const a = (s.attributes ?? []).find((x: { key: string }) => x.key === 'server.port');
      if (a) n.set(Number(a.value.intValue), (n.get(Number(a.value.intValue)) ?? 0) + 1);
    }
  }
  return n;
}
