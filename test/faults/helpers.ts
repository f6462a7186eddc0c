// Helpers for the fault-injection tests: Prometheus text from the agent's /metrics, a small
// keep-alive HTTP load generator, and BPF object ownership read from bpftool (pids per prog/map).
import * as http from 'http';
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { RunningAgent, waitFor } from '../helpers/agent';

export type Metrics = Array<{ name: string; labels: Record<string, string>; value: number }>;

export async function metrics(agent: RunningAgent): Promise<Metrics> {
  // A bounded wait: an agent whose event loop is blocked must fail the test, not hang it.
  const text = await (await fetch(`http://127.0.0.1:${agent.apiPort}/metrics`, { signal: AbortSignal.timeout(20_000) })).text();
  const out: Metrics = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** Sum of a metric over the series whose labels include `match`. */
export function sum(ms: Metrics, name: string, match: Record<string, string> = {}): number {
  return ms.filter((m) => m.name === name && Object.entries(match).every(([k, v]) => m.labels[k] === v)).reduce((a, m) => a + m.value, 0);
}

/** `n` requests with at most `concurrency` in flight on keep-alive sockets; resolves to status codes. */
export async function load(port: number, n: number, concurrency: number, req: { path: string; method?: string; body?: Buffer }): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const codes: number[] = [];
  let next = 0;
  const one = () => new Promise<void>((resolve, reject) => {
    const r = http.request({ host: '127.0.0.1', port, path: req.path, method: req.method ?? 'GET', agent, headers: req.body ? { 'content-length': req.body.length } : {} }, (res) => {
      res.resume();
      res.on('end', () => { codes.push(res.statusCode ?? 0); resolve(); });
    });
    r.on('error', reject);
    r.end(req.body);
  });
  const worker = async () => { while (next < n) { next++; await one(); } };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  agent.destroy();
  return codes;
}

export interface BpfObj { id: number; name?: string; type?: string; pids?: Array<{ pid: number; comm: string }> }

function bpftoolJson(args: string[]): BpfObj[] {
  const out = execFileSync('bpftool', [...args, '-j'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return out.trim() ? JSON.parse(out) : [];
}

/**
 * BPF programs, links and maps held open by `pid`, from /proc/PID/fdinfo (each bpf fd names its
 * prog_id/map_id/link_id there). bpftool's own `pids` column needs a bpftool built with its
 * BPF skeletons, which Debian's is not, so it is empty here.
 */
export function ownedBy(pid: number): { progs: number[]; links: number[]; maps: BpfObj[] } {
  const progs = new Set<number>();
  const links = new Set<number>();
  const mapIds = new Set<number>();
  const dir = `/proc/${pid}/fdinfo`;
  for (const fd of fs.readdirSync(dir)) {
    let info: string;
    try { info = fs.readFileSync(path.join(dir, fd), 'utf8'); } catch { continue; } // closed meanwhile
    const field = (k: string) => { const m = new RegExp(`^${k}:\\s*(\\d+)`, 'm').exec(info); return m ? Number(m[1]) : undefined; };
    const link = field('link_id');
    const prog = field('prog_id');
    const map = field('map_id');
    if (link !== undefined) links.add(link);
    if (prog !== undefined) progs.add(prog); // a link's fdinfo names its program too
    if (map !== undefined && link === undefined && prog === undefined) mapIds.add(map);
  }
  const maps = bpftoolJson(['map', 'show']).filter((m) => mapIds.has(m.id));
  return { progs: [...progs], links: [...links], maps };
}

export function liveIds(kind: 'prog' | 'link'): Set<number> {
  return new Set(bpftoolJson([kind, 'show']).map((o) => o.id));
}

/** Entries in a hash/LRU map (bpftool dump walks it). */
export function mapEntries(id: number): number {
  return bpftoolJson(['map', 'dump', 'id', String(id)]).length;
}

export async function waitMetric(agent: RunningAgent, pred: (ms: Metrics) => boolean, ms = 60_000, what = 'metric condition'): Promise<Metrics> {
  let last: Metrics = [];
  const end = Date.now() + ms;
  for (;;) {
    last = await metrics(agent);
    if (pred(last)) return last;
    if (Date.now() > end) throw new Error(`${what} not met in ${ms} ms`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

/**
 * A config file for the fault tests: the CPU profiler is off because on this shared 2-core machine
 * its symbolization (profile/profiler.ts symbolizeDrain) can hold the JS thread for tens of
 * seconds, starving the API the tests read; the faults under test are elsewhere.
 */
export function faultConfig(dir: string, extraYaml = ''): string {
  const file = path.join(dir, `telegen-${process.pid}-${Math.random().toString(36).slice(2)}.yaml`);
  fs.writeFileSync(file, `tracers:\n  profile:\n    enabled: false\n${extraYaml}`);
  return file;
}

export { waitFor };
