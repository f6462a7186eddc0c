// Shared by the kernel tracer tests: read what the agent exported to DATA_DIR/{metrics,logs}.jsonl
// (OTLP/JSON, one export request per line) and sum cumulative points by attributes.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync, spawn } from 'child_process';
import { once } from 'events';
import { flattenMetrics, flattenLogs, FlatLog } from '../helpers/otlp-receiver';

export interface Point { attributes: Record<string, unknown>; value: number; count?: number; sum?: number; start?: string }

/** Whole lines only: the agent may be writing the last one while a test polls the file. */
function completeLines(file: string): string[] {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  lines.pop();
  return lines;
}

function toPoint(dp: Record<string, unknown>): Point {
  return {
    attributes: dp.attributes as Record<string, unknown>,
    value: Number(dp.asInt ?? dp.asDouble ?? dp.count ?? 0),
    count: dp.count !== undefined ? Number(dp.count) : undefined,
    sum: dp.sum !== undefined ? Number(dp.sum) : undefined,
    start: dp.startTimeUnixNano !== undefined ? String(dp.startTimeUnixNano) : undefined,
  };
}

/** The latest cumulative point of every series (one export may be split over several lines, so
 *  series are keyed by name + attributes and the newest timeUnixNano wins). */
export function latestMetrics(dataDir: string): Map<string, Point[]> {
  const file = path.join(dataDir, 'metrics.jsonl');
  const series = new Map<string, { name: string; t: bigint; p: Point }>();
  if (fs.existsSync(file)) {
    for (const line of completeLines(file)) {
      if (!line.trim()) continue;
      for (const m of flattenMetrics(JSON.parse(line))) {
        for (const dp of m.dataPoints as Array<Record<string, unknown>>) {
          const attributes = dp.attributes as Record<string, unknown>;
          const key = `${m.name}\0${JSON.stringify(Object.entries(attributes).sort(([a], [b]) => a.localeCompare(b)))}`;
          const t = BigInt(String(dp.timeUnixNano ?? 0));
          const prev = series.get(key);
          if (prev && prev.t > t) continue;
          series.set(key, { name: m.name, t, p: toPoint(dp) });
        }
      }
    }
  }
  const out = new Map<string, Point[]>();
  for (const { name, p } of series.values()) {
    const l = out.get(name) ?? [];
    l.push(p);
    out.set(name, l);
  }
  return out;
}

/** Every collection's points of the metrics named `prefix…`, oldest first: one collection's
 *  points share their timeUnixNano (its end time), wherever the export split them into lines. */
export function collections(dataDir: string, prefix: string): Array<{ t: bigint; metrics: Map<string, Point[]> }> {
  const file = path.join(dataDir, 'metrics.jsonl');
  const byT = new Map<bigint, Map<string, Point[]>>();
  if (!fs.existsSync(file)) return [];
  for (const line of completeLines(file)) {
    if (!line.trim()) continue;
    for (const m of flattenMetrics(JSON.parse(line))) {
      if (!m.name.startsWith(prefix)) continue;
      for (const dp of m.dataPoints as Array<Record<string, unknown>>) {
        const t = BigInt(String(dp.timeUnixNano ?? 0));
        let c = byT.get(t);
        if (!c) { c = new Map(); byT.set(t, c); }
        const l = c.get(m.name) ?? [];
        l.push(toPoint(dp));
        c.set(m.name, l);
      }
    }
  }
  return [...byT.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([t, metrics]) => ({ t, metrics }));
}

export function sumWhere(metrics: Map<string, Point[]>, name: string, where: Record<string, unknown>): number {
  let s = 0;
  for (const p of metrics.get(name) ?? []) {
    if (Object.entries(where).every(([k, v]) => p.attributes[k] === v)) s += p.value;
  }
  return s;
}

export function pointsWhere(metrics: Map<string, Point[]>, name: string, where: Record<string, unknown>): Point[] {
  return (metrics.get(name) ?? []).filter((p) => Object.entries(where).every(([k, v]) => p.attributes[k] === v));
}

export function readLogs(dataDir: string): FlatLog[] {
  const file = path.join(dataDir, 'logs.jsonl');
  if (!fs.existsSync(file)) return [];
  return completeLines(file).filter((l) => l.trim()).flatMap((l) => flattenLogs(JSON.parse(l)));
}

/** A config file for startAgent: only the named tracers on (every other registered tracer off,
 *  so the test sees its own tracer's effect and the agent starts and stops quickly). */
export function tracerConfig(tracers: Record<string, unknown>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-tracer-cfg-'));
  const file = path.join(dir, 'config.json');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { configSchema } = require('../../host/src/config') as typeof import('../../host/src/config');
  const known = Object.keys((configSchema.shape.tracers as unknown as { _def: { innerType: { shape: Record<string, unknown> } } })._def.innerType.shape);
  const all: Record<string, unknown> = Object.fromEntries(known.map((k) => [k, { enabled: false }]));
  fs.writeFileSync(file, JSON.stringify({ tracers: { ...all, ...tracers } }));
  return file;
}

export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A kernel counter of network namespace `ns` as nstat reads it (absolute, zeros included). */
export function nstat(ns: string, name: string): number {
  return Number(new RegExp(`${name}\\s+(\\d+)`).exec(sh('ip', ['netns', 'exec', ns, 'nstat', '-asz', name]))?.[1]);
}

export interface VethPair { nsA: string; nsB: string; devA: string; devB: string; addrA: string; addrB: string; up(): void; del(): void }

/** Namespaces `${tag}a` and `${tag}b` joined by veth `${tag}x` (in a, `${net}.1`) and `${tag}y`
 *  (in b, `${net}.2`, unaddressed with `bAddress: false`). Nothing exists before up() (which
 *  first removes what a crashed run left); del() removes both namespaces, and with them the pair. */
export function vethPair(tag: string, net: string, opts: { bAddress?: boolean } = {}): VethPair {
  const v: VethPair = {
    nsA: `${tag}a`, nsB: `${tag}b`, devA: `${tag}x`, devB: `${tag}y`, addrA: `${net}.1`, addrB: `${net}.2`,
    up() {
      v.del();
      sh('ip', ['netns', 'add', v.nsA]);
      sh('ip', ['netns', 'add', v.nsB]);
      sh('ip', ['link', 'add', v.devA, 'netns', v.nsA, 'type', 'veth', 'peer', 'name', v.devB, 'netns', v.nsB]);
      sh('ip', ['-n', v.nsA, 'addr', 'add', `${v.addrA}/24`, 'dev', v.devA]);
      if (opts.bAddress !== false) sh('ip', ['-n', v.nsB, 'addr', 'add', `${v.addrB}/24`, 'dev', v.devB]);
      for (const [ns, dev] of [[v.nsA, v.devA], [v.nsB, v.devB]]) {
        sh('ip', ['-n', ns, 'link', 'set', dev, 'up']);
        sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      }
    },
    del() { for (const ns of [v.nsA, v.nsB]) { try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }); } catch { /* gone */ } } },
  };
  return v;
}

/** Compiles fixtures/drop-first-n.bpf.c with `defines` (DROP_PORT, DROP_COUNT…) into `dir` and
 *  attaches it, direct-action, on `dev`'s ingress in `ns` (tc clsact). */
export function attachDropFilter(ns: string, dev: string, dir: string, defines: string[]): void {
  const obj = path.join(dir, 'drop.o');
  sh('clang', ['-O2', '-g', '-target', 'bpf', `-I/usr/include/${os.arch() === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`,
    ...defines.map((d) => `-D${d}`), '-c', path.join(__dirname, '..', '..', '..', 'test', 'tracers', 'fixtures', 'drop-first-n.bpf.c'), '-o', obj]);
  sh('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', dev, 'clsact']);
  sh('ip', ['netns', 'exec', ns, 'tc', 'filter', 'add', 'dev', dev, 'ingress', 'bpf', 'direct-action', 'obj', obj, 'sec', 'tc']);
}

/** One exchange between namespaces: a node server in `srvNs` on `listenHost`:`port` answers 'ok'
 *  and ends each connection once data came; a node client in `cliNs` connects to `connectHost`,
 *  writes 100 bytes and must read 'ok' and exit 0 (asserted by the caller from the result). */
export async function nsExchange(cliNs: string, srvNs: string, port: number, listenHost: string, connectHost: string): Promise<{ code: number | null; out: string }> {
  const srv = spawn('ip', ['netns', 'exec', srvNs, process.execPath, '-e', `
    require('net').createServer((s) => { s.on('data', () => s.end('ok')); }).listen(${port}, '${listenHost}', () => console.log('listening'));`], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await once(srv.stdout!, 'data');
    const cli = spawn('ip', ['netns', 'exec', cliNs, process.execPath, '-e', `
      const c = require('net').connect(${port}, '${connectHost}', () => c.write('x'.repeat(100)));
      c.on('data', (d) => process.stdout.write(d)); c.on('end', () => c.end());`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    cli.stdout!.on('data', (d) => { out += d; });
    const [code] = await once(cli, 'exit') as [number | null];
    return { code, out };
  } finally {
    srv.kill('SIGKILL');
  }
}

/** The maps a compiled BPF object declares (name and BPF_MAP_TYPE_* number), read from its BTF
 *  (.maps section: each variable's `type` member is a pointer to an array of `type` elements). */
export function objectMaps(stem: string): Array<{ name: string; type: number }> {
  const file = path.join(__dirname, '..', '..', '..', 'build', 'bpf', `${stem}.bpf.o`);
  type T = { id: number; kind: string; name: string; type_id?: number; nr_elems?: number; vars?: Array<{ type_id: number }>; members?: Array<{ name: string; type_id: number }> };
  const types = (JSON.parse(sh('bpftool', ['-j', 'btf', 'dump', 'file', file])) as { types: T[] }).types;
  const byId = new Map(types.map((t) => [t.id, t]));
  const sec = types.find((t) => t.kind === 'DATASEC' && t.name === '.maps');
  return (sec?.vars ?? []).map((v) => {
    const variable = byId.get(v.type_id)!;
    const def = byId.get(variable.type_id!)!;
    const typeMember = def.members!.find((m) => m.name === 'type')!;
    const arr = byId.get(byId.get(typeMember.type_id)!.type_id!)!;
    return { name: variable.name, type: arr.nr_elems! };
  });
}
