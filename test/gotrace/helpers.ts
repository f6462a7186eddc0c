// Builds the Go test programs (test/fixtures/go/*.go) with the installed toolchain, stripped
// (-ldflags=-s -w: no symbol table, no DWARF) and not, into a temporary directory.
import { execFileSync, spawn } from 'child_process';
import * as https from 'https';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { requireBpf } from '../helpers/agent';
import { makePki, Pki } from '../tls/tls-helpers';

export const FIXTURES = path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'go');

export function goVersion(): string {
  return execFileSync('go', ['env', 'GOVERSION'], { encoding: 'utf8' }).trim();
}

export function goAvailable(): boolean {
  try { goVersion(); return true; } catch { return false; }
}

export interface Built { dir: string; plain: string; stripped: string }

/**
 * Builds fixture `name` (server, client) twice. Module downloads are off: stdlib only. Linking
 * takes seconds on a busy machine, so each build is kept per source and toolchain in the OS
 * temp dir and copied (a copy is a new file, as a fresh build would be: tests that need a file
 * no process ran before get one).
 */
export function buildGo(name: string, dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-go-'))): Built {
  const src = path.join(FIXTURES, `${name}.go`);
  const env = { ...process.env, GOFLAGS: '-mod=mod', GOPROXY: 'off', CGO_ENABLED: '0' };
  const plain = path.join(dir, name);
  const stripped = path.join(dir, `${name}.stripped`);
  const key = crypto.createHash('sha256').update(fs.readFileSync(src)).update(goVersion()).digest('hex').slice(0, 16);
  const cache = path.join(os.tmpdir(), 'telegen-go-builds', `${name}-${key}`);
  const build = (out: string, ldflags: string[]) => {
    const kept = path.join(cache, path.basename(out));
    if (!fs.existsSync(kept)) {
      fs.mkdirSync(cache, { recursive: true });
      const tmp = `${kept}.${process.pid}`;
      execFileSync('go', ['build', ...ldflags, '-o', tmp, src], { env, stdio: ['ignore', 'ignore', 'pipe'], timeout: 300_000 });
      fs.renameSync(tmp, kept); // whole or absent, when two test files build at once
    }
    fs.copyFileSync(kept, out);
    fs.chmodSync(out, 0o755);
  };
  build(plain, []);
  build(stripped, ['-ldflags=-s -w']);
  return { dir, plain, stripped };
}

/** Whether a Go toolchain is here; without one the test is skipped, or fails under CI. */
export function requireGo(t: { skip(msg?: string): void }): boolean {
  if (goAvailable()) return true;
  if (process.env.CI === 'true') throw new Error('go is not installed (scripts/setup.sh installs golang-go)');
  t.skip('no Go toolchain');
  return false;
}

/**
 * What a live Go TLS test starts from: BPF and Go checked, a test CA (its dir is the test's
 * scratch dir: remove it at the end), the server and client fixtures built stripped and not into
 * it. Undefined when the test is skipped.
 */
export function goTlsFixtures(t: { skip(msg?: string): void }): { pki: Pki; srv: Built; cli: Built } | undefined {
  if (!requireBpf(t) || !requireGo(t)) return undefined;
  const pki = makePki();
  return { pki, srv: buildGo('server', pki.dir), cli: buildGo('client', pki.dir) };
}

/** The Go tracer's kernel counters on the agent's /metrics (telegen_bpf_<name>_total of the
 *  go, go_http2 and go_exec objects), by name: go_events, go_http2_fields, go_exec_held … */
export async function goKernelCounters(apiPort: number): Promise<Record<string, number>> {
  const r = await fetch(`http://127.0.0.1:${apiPort}/metrics`, { signal: AbortSignal.timeout(15_000) });
  const out: Record<string, number> = {};
  for (const m of (await r.text()).matchAll(/^telegen_bpf_(go\w*)_total\{tracer="go(?:_http2|_exec)?"\} (\d+)$/gm)) out[m[1]] = Number(m[2]);
  return out;
}

/** The agent's Go instrumentation list (GET /api/discovery → goInstrumentation). */
export async function agentGoStatus(apiPort: number): Promise<import('../../host/src/gotrace/status').GoBinaryStatus[]> {
  const r = await fetch(`http://127.0.0.1:${apiPort}/api/discovery`, { signal: AbortSignal.timeout(15_000) });
  return ((await r.json()) as { goInstrumentation: import('../../host/src/gotrace/status').GoBinaryStatus[] | null }).goInstrumentation ?? [];
}

/** Starts the Go TLS server fixture at `exe` (it prints `listening PORT`); the port once it listens. */
export function startGoTlsServer(exe: string, pki: Pki): { proc: import('child_process').ChildProcess; port: Promise<number> } {
  const proc = spawn(exe, [pki.cert, pki.key], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const port = new Promise<number>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d) => { out += String(d); const m = /listening (\d+)/.exec(out); if (m) resolve(Number(m[1])); });
    proc.once('exit', (c) => reject(new Error(`server ${path.basename(exe)} exited ${c}: ${out}`)));
  });
  return { proc, port };
}

/** GET `p` over TLS from the Go server on `port` (certificate for localhost, our CA); the body. */
export function httpsGetBody(port: number, p: string, pki: Pki): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    https.get({ host: '127.0.0.1', port, path: p, servername: 'localhost', ca: fs.readFileSync(pki.ca), agent: false }, (r) => {
      let b = '';
      r.on('data', (d) => { b += String(d); });
      r.on('end', () => resolve(b));
    }).on('error', reject);
  });
}
