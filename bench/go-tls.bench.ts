// Overhead of the Go tracer's crypto/tls uprobes on a Go HTTPS server under load: the same
// load (bench/fixtures/go-load.go, keep-alive HTTP/1.1) against test/fixtures/go/server.go
// untraced, with the agent running only the socket tracer, and with the socket + Go tracers —
// alternating, several rounds. Both ends are Go binaries, so with the Go tracer on, every
// request crosses 8 probed calls (server Read/Write, client Write/Read: entry + RET each).
// Also: the time from a new Go binary's exec to its probes being attached (analysis + attach),
// as the agent reports it per binary (attachMs in /api/discovery).
import { spawn, execFileSync, ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spread, writeResult, repoRoot, cpuSecondsOf, freePort, tracersOnlyConfig, untilReady } from './lib';

const scale = Number(process.env.BENCH_SCALE || 1);
const N = Math.max(100, Math.round(4000 * scale));
const CONC = 4;

function goBuild(src: string, out: string, stripped: boolean): void {
  execFileSync('go', ['build', ...(stripped ? ['-ldflags=-s -w'] : []), '-o', out, src],
    { env: { ...process.env, GOPROXY: 'off', CGO_ENABLED: '0' }, stdio: 'inherit', timeout: 600_000 });
}

function pki(dir: string): { ca: string; cert: string; key: string } {
  const p = (f: string) => path.join(dir, f);
  const ossl = (args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  ossl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '2', '-subj', '/CN=bench CA']);
  ossl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', '/CN=localhost']);
  fs.writeFileSync(p('ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  ossl(['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('server.pem'), '-days', '2', '-extfile', p('ext.cnf')]);
  return { ca: p('ca.pem'), cert: p('server.pem'), key: p('server.key') };
}

function configFile(dir: string, goOn: boolean): string {
  return tracersOnlyConfig(dir, { socket: { enabled: true }, go: { enabled: goOn, rescan_ms: 200 } }, `config-${goOn ? 'go' : 'socket'}.json`);
}

function startAgent(dataDir: string, config: string, apiPort: number): Promise<ChildProcess> {
  const proc = spawn(process.execPath, [path.join(repoRoot, 'bin', 'telegen'), 'run', '--data-dir', dataDir, '--api-listen', `127.0.0.1:${apiPort}`, '--config', config],
    { stdio: 'ignore', env: { ...process.env, TELEGEN_LOG_LEVEL: 'warn', TELEGEN_DROP_CAPABILITIES: '0' } });
  return untilReady(proc, apiPort, 1200);
}

async function startServer(bin: string, k: { cert: string; key: string }): Promise<{ proc: ChildProcess; port: number }> {
  const proc = spawn(bin, [k.cert, k.key], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d) => { out += String(d); const m = /listening (\d+)/.exec(out); if (m) resolve(Number(m[1])); });
    proc.once('exit', (c) => reject(new Error(`server exited ${c}`)));
  });
  return { proc, port };
}

function stop(p: ChildProcess): Promise<void> {
  return new Promise((resolve) => { if (p.exitCode !== null || p.signalCode !== null) return resolve(); p.once('exit', () => resolve()); p.kill('SIGTERM'); });
}

function load(bin: string, ca: string, port: number): number {
  return Number(execFileSync(bin, [ca, `https://localhost:${port}/hello`, String(N), String(CONC)], { encoding: 'utf8', timeout: 600_000 }).trim()) / 1e9;
}

async function goStatus(apiPort: number): Promise<Array<{ path: string; instrumented: boolean; attachMs?: number; pids: number[] }>> {
  const j = await (await fetch(`http://127.0.0.1:${apiPort}/api/discovery`)).json() as { goInstrumentation: Array<{ path: string; instrumented: boolean; attachMs?: number; pids: number[] }> | null };
  return j.goInstrumentation ?? [];
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) { console.error('go-tls bench needs root (BPF)'); process.exit(1); }
  const rounds = Number(process.env.BENCH_ROUNDS || 3);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-go-bench-'));
  const keys = pki(tmp);
  const server = path.join(tmp, 'server');
  const loader = path.join(tmp, 'go-load');
  goBuild(path.join(repoRoot, 'test', 'fixtures', 'go', 'server.go'), server, true);
  goBuild(path.join(repoRoot, 'bench', 'fixtures', 'go-load.go'), loader, true);
  const secs: Record<'untraced' | 'socket' | 'socket_go', number[]> = { untraced: [], socket: [], socket_go: [] };
  const attachMs: number[] = [];
  const agentCpu: Record<'socket' | 'socket_go', number[]> = { socket: [], socket_go: [] };
  try {
    for (let r = 0; r < rounds; r++) {
      for (const mode of ['untraced', 'socket', 'socket_go'] as const) {
        const dataDir = fs.mkdtempSync(path.join(tmp, 'data-'));
        const apiPort = await freePort();
        const agent = mode === 'untraced' ? undefined : await startAgent(dataDir, configFile(dataDir, mode === 'socket_go'), apiPort);
        const srv = await startServer(server, keys);
        // An idle loader process keeps the loader's file running, so it stays hooked between runs.
        const holder = spawn(loader, [keys.ca, 'https://localhost/', '0', '1'], { stdio: ['pipe', 'ignore', 'inherit'] });
        try {
          if (agent && mode === 'socket_go') {
            // Both binaries hooked before the load starts.
            let ok = false;
            for (let i = 0; i < 600 && !ok; i++) {
              const st = await goStatus(apiPort);
              const s = st.find((x) => x.path === server && x.instrumented);
              ok = !!s && st.some((x) => x.path === loader && x.instrumented);
              if (ok) attachMs.push(s!.attachMs ?? NaN);
              else await new Promise((res) => setTimeout(res, 100));
            }
            if (!ok) throw new Error(`Go binaries not instrumented: ${JSON.stringify(await goStatus(apiPort))}`);
          }
          load(loader, keys.ca, srv.port); // warm-up (and, traced, the connection set-up)
          const cpu0 = agent ? cpuSecondsOf(agent.pid!) : 0;
          secs[mode].push(load(loader, keys.ca, srv.port));
          // The agent decodes what the probes deliver (a span per request on each side): its
          // CPU competes with the load for this machine's two cores.
          if (agent && mode !== 'untraced') agentCpu[mode].push(cpuSecondsOf(agent.pid!) - cpu0);
        } finally {
          holder.stdin!.end();
          await stop(srv.proc);
          if (agent) await stop(agent);
          fs.rmSync(dataDir, { recursive: true, force: true });
        }
        process.stdout.write(`round ${r} ${mode}: ${secs[mode][secs[mode].length - 1].toFixed(3)} s for ${N} requests\n`);
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const ratio = (a: number[], b: number[]) => spread(a.map((x, i) => x / b[i]));
  const result = {
    rounds, requests: N, connections: CONC,
    seconds: { untraced: spread(secs.untraced), socket_tracer: spread(secs.socket), socket_and_go_tracer: spread(secs.socket_go) },
    ratio_go_over_untraced: ratio(secs.socket_go, secs.untraced),
    ratio_go_over_socket_only: ratio(secs.socket_go, secs.socket),
    attach_ms_per_binary: spread(attachMs),
    agent_cpu_seconds_during_load: { socket_tracer: spread(agentCpu.socket), socket_and_go_tracer: spread(agentCpu.socket_go) },
    note: 'Go HTTPS server (stripped) and Go load generator, both traced when the Go tracer is on; the machine is shared and loaded, compare ratios within a run',
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  writeResult('go-tls', result);
}

main().catch((e) => { console.error(e); process.exit(1); });
