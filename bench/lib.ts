// Shared benchmark helpers: machine facts, robust stats, result files. Benchmarks report what
// they measured (medians over rounds and the spread), never assert timings.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

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
