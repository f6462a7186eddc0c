// End-to-end helpers: run the real agent (bin/telegen run) as root and read what it exported.
import { spawn, ChildProcess, execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as net from 'net';
import { repoRoot } from './decoder';

export interface FlatSpan {
  name: string;
  kind: number; // OTLP: 1 internal, 2 server, 3 client
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  start: bigint;
  end: bigint;
  status: { code?: number; message?: string };
  attributes: Record<string, unknown>;
  resource: Record<string, unknown>;
}

/** BPF needs root; under CI a test that needs BPF fails instead of skipping. */
export function bpfUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root for BPF';
  if (!fs.existsSync(path.join(repoRoot, 'native', 'build', 'Release', 'telegen_native.node'))) return 'native addon not built (npm run build)';
  return undefined;
}

export function requireBpf(t: { skip(msg?: string): void }): boolean {
  const why = bpfUnavailable();
  if (!why) return true;
  if (process.env.CI === 'true') throw new Error(`BPF test cannot run under CI: ${why}`);
  t.skip(why);
  return false;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); });
  });
}

export function otlpValue(v: Record<string, unknown> | undefined): unknown {
  if (!v) return undefined;
  if ('stringValue' in v) return v.stringValue;
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return v.doubleValue;
  if ('boolValue' in v) return v.boolValue;
  if ('arrayValue' in v) return ((v.arrayValue as { values?: Array<Record<string, unknown>> }).values ?? []).map(otlpValue);
  return undefined;
}

export function attrsToObject(list: Array<{ key: string; value: Record<string, unknown> }> | undefined): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const a of list ?? []) o[a.key] = otlpValue(a.value);
  return o;
}

/** Flattens OTLP/JSON ExportTraceServiceRequest lines (the Collector file-exporter format). */
export function readSpansJsonl(file: string): FlatSpan[] {
  if (!fs.existsSync(file)) return [];
  const out: FlatSpan[] = [];
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  // The agent may be writing the last line right now: only newline-terminated lines are whole.
  lines.pop();
  for (const line of lines) {
    if (!line.trim()) continue;
    const req = JSON.parse(line);
    for (const rs of req.resourceSpans ?? []) {
      const resource = attrsToObject(rs.resource?.attributes);
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          out.push({
            name: s.name, kind: s.kind, traceId: s.traceId, spanId: s.spanId, parentSpanId: s.parentSpanId || undefined,
            start: BigInt(s.startTimeUnixNano), end: BigInt(s.endTimeUnixNano), status: s.status ?? {},
            attributes: attrsToObject(s.attributes), resource,
          });
        }
      }
    }
  }
  return out;
}

/**
 * The spans of a file exporter's file and of its rotated predecessors (file.N … file.1, oldest
 * first): on a busy machine the agent traces everyone's traffic, and a test's spans can be
 * rotated out of the newest file before the test reads it.
 */
export function readRotatedSpans(file: string): FlatSpan[] {
  const dir = path.dirname(file);
  const base = path.basename(file);
  const rotated = fs.existsSync(dir)
    ? fs.readdirSync(dir).map((f) => (f.startsWith(`${base}.`) ? Number(f.slice(base.length + 1)) : NaN)).filter((n) => Number.isInteger(n) && n > 0)
    : [];
  rotated.sort((a, b) => b - a);
  return [...rotated.map((n) => `${file}.${n}`), file].flatMap(readSpansJsonl);
}

export interface RunningAgent {
  proc: ChildProcess;
  dataDir: string;
  apiPort: number;
  logs: string[];
  api(p: string): Promise<Response>;
  stop(): Promise<number | null>;
  spans(): FlatSpan[];
}

/** Agent data directories of this test file: tests read them after the agent stopped, so they go
 *  when the file's process exits, and only if it passed (a failure's spans and logs stay to read). */
const dataDirs: string[] = [];
process.once('exit', (code) => {
  if (code !== 0 || process.env.TELEGEN_KEEP_DATA === '1') return;
  for (const d of dataDirs) fs.rmSync(d, { recursive: true, force: true });
});

export async function startAgent(opts: { env?: Record<string, string>; config?: string; cgroupProcs?: string } = {}): Promise<RunningAgent> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-e2e-'));
  dataDirs.push(dataDir);
  const apiPort = await freePort();
  const args = [path.join(repoRoot, 'bin', 'telegen'), 'run', '--data-dir', dataDir, '--api-listen', `127.0.0.1:${apiPort}`];
  if (opts.config) args.push('--config', opts.config);
  const logs: string[] = [];
  // cgroupProcs: the agent joins that cgroup (its cgroup.procs file) before node starts, so
  // everything it allocates, BPF maps included, is charged there.
  const [cmd, argv] = opts.cgroupProcs
    ? ['/bin/sh', ['-c', 'echo $$ > "$0" && exec "$@"', opts.cgroupProcs, process.execPath, ...args]]
    : [process.execPath, args];
  const proc = spawn(cmd, argv, {
    env: { ...process.env, TELEGEN_OTLP_FLUSH_INTERVAL_MS: '200', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout!.on('data', (d) => logs.push(String(d)));
  proc.stderr!.on('data', (d) => logs.push(String(d)));
  // A GET that meets a keep-alive socket the agent is closing at that instant ("other side
  // closed", ECONNRESET) is retried once, as any HTTP client does for an idempotent request; a dead agent
  // still fails (the retry is refused, and its exit code and logs are in the error).
  const api = async (p: string) => {
    try { return await fetch(`http://127.0.0.1:${apiPort}${p}`); } catch (e) {
      if (!['UND_ERR_SOCKET', 'ECONNRESET'].includes(String((e as { cause?: { code?: string } }).cause?.code))) throw e;
      if (proc.exitCode !== null) throw new Error(`agent exited ${proc.exitCode}: ${logs.join('').slice(-4000)}`);
      return fetch(`http://127.0.0.1:${apiPort}${p}`);
    }
  };
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`agent exited ${proc.exitCode}: ${logs.join('')}`);
    try { if ((await api('/readyz')).ok) break; } catch { /* not yet */ }
    if (Date.now() > deadline) { proc.kill('SIGKILL'); throw new Error(`agent not ready in 90 s: ${logs.join('')}`); }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    proc, dataDir, apiPort, logs, api,
    stop: () => new Promise((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return resolve(proc.exitCode); // killed by a signal: exitCode stays null and "exit" never fires again
      // A guard against a hung agent: what it logged last goes with the failure (the assertion
      // alone says only "null !== 0").
      const t = setTimeout(() => {
        process.stderr.write(`agent pid ${proc.pid} still stopping 20 s after SIGTERM: killed; its last log lines:\n${logs.join('').slice(-4000)}\n`);
        proc.kill('SIGKILL');
      }, 20_000);
      proc.once('exit', (code) => { clearTimeout(t); resolve(code); });
      proc.kill('SIGTERM');
    }),
    spans: () => readRotatedSpans(path.join(dataDir, 'traces.jsonl')),
  };
}

export interface Served { proc: ChildProcess; port: number; stop(): Promise<void> }

/** Starts a server process that prints its port, or listens on the given one. */
export async function startServer(cmd: string, args: string[], opts: { port?: number; readyPattern?: RegExp; cwd?: string } = {}): Promise<Served> {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: opts.cwd });
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${cmd} did not start in 30 s: ${out}`)), 30_000);
    const on = (d: Buffer) => {
      out += String(d);
      const m = (opts.readyPattern ?? /listening (\d+)/).exec(out);
      if (m) { clearTimeout(t); resolve(opts.port ?? Number(m[1])); }
    };
    proc.stdout!.on('data', on);
    proc.stderr!.on('data', on);
    proc.once('exit', (c) => { clearTimeout(t); reject(new Error(`${cmd} exited ${c}: ${out}`)); });
  });
  return {
    proc, port,
    stop: () => new Promise((resolve) => { if (proc.exitCode !== null || proc.signalCode !== null) return resolve(); proc.once('exit', () => resolve()); proc.kill('SIGTERM'); setTimeout(() => proc.kill('SIGKILL'), 3000).unref(); }),
  };
}

export function curl(args: string[]): string {
  return execFileSync('curl', ['-sS', '--max-time', '20', ...args], { encoding: 'latin1', maxBuffer: 64 << 20 });
}

/** Everything a child writes to stdout and stderr so far (a script's progress lines). */
export function outputOf(proc: ChildProcess): () => string {
  let out = '';
  proc.stdout?.on('data', (d) => { out += String(d); });
  proc.stderr?.on('data', (d) => { out += String(d); });
  return () => out;
}

/** A client script with an exchange held by its server (it prints "slow sent", the server "held"):
 *  the agent starts while it is in flight, the server is told to "release" (the first bytes the
 *  agent sees are its answer), then the client runs `n` more exchanges ("go n" → "batch done").
 *  For connections and flows older than the agent (test/e2e/late-*). */
export async function startAgentMidExchange(server: ChildProcess, srvOut: () => string, client: ChildProcess, config: string, n: number): Promise<{ agent: RunningAgent; cliOut: () => string }> {
  const cliOut = outputOf(client);
  const clientDone = (s: string) => waitFor(() => cliOut().includes(s) || (client.exitCode !== null && Promise.reject(new Error(`client: ${cliOut()}`))), 60_000, 50);
  await clientDone('slow sent');
  await waitFor(() => srvOut().includes('held'), 15_000, 50);
  const agent = await startAgent({ config });
  server.stdin!.write('release\n');
  await clientDone('slow done');
  client.stdin!.write(`go ${n}\n`);
  await clientDone('batch done');
  return { agent, cliOut };
}

export async function waitFor<T>(fn: () => T | undefined | false | Promise<T | undefined | false>, ms = 15_000, every = 200): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, every));
  }
}

/** A two-peer script under the live agent: `node SCRIPT server PORT` until it prints
 *  "listening", then `node SCRIPT MODE PORT` to its exit; the agent is stopped (exit 0 asserted)
 *  once `minSpans` of the spans on PORT that `keep` accepts are out, and `check` gets them with
 *  the client's output. Every process and the script's directory are gone after. */
export async function withPeers(opts: { script: string; mode: string; minSpans: number; keep?: (s: FlatSpan) => boolean },
  check: (r: { port: number; clientOutput: string; spans: FlatSpan[] }) => void | Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-peers-'));
  const script = path.join(dir, 'peers.js');
  fs.writeFileSync(script, opts.script);
  const agent = await startAgent();
  const port = await freePort();
  const server = spawn(process.execPath, [script, 'server', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const srvOut = outputOf(server);
  try {
    await waitFor(() => srvOut().includes('listening'), 15_000);
    const client = spawn(process.execPath, [script, opts.mode, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const cliOut = outputOf(client);
    await waitFor(() => client.exitCode !== null, 30_000);
    const mine = () => agent.spans().filter((s) => s.attributes['server.port'] === port && (!opts.keep || opts.keep(s)));
    await waitFor(() => mine().length >= opts.minSpans, 30_000).catch(() => undefined);
    if (await agent.stop() !== 0) throw new Error('the agent did not exit 0');
    await check({ port, clientOutput: cliOut(), spans: mine() });
  } finally {
    server.kill('SIGTERM');
    if (agent.proc.exitCode === null) agent.proc.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
