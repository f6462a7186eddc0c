// Go HTTPS through the running agent: uprobes on crypto/tls.(*Conn).Write/Read (entry + every
// RET) in real Go servers and clients, stripped and not, deliver plaintext that decodes into the
// same HTTP/1.1 and HTTP/2 spans as cleartext. The test CA is made by openssl at test time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import { spawn, ChildProcess } from 'child_process';
import * as http from 'http';
import * as https from 'https';
import { startAgent, startServer, waitFor, FlatSpan, RunningAgent } from '../helpers/agent';
import { goKernelCounters, goTlsFixtures } from './helpers';
import type { GoBinaryStatus } from '../../host/src/gotrace/status';

const SERVER = 2;
const step = (m: string) => { if (process.env.TELEGEN_TEST_VERBOSE) console.error(new Date().toISOString(), m); };
const CLIENT = 3;

function summary(s: FlatSpan): string {
  return `${s.attributes['http.request.method']} ${s.attributes['url.path']} ${s.attributes['http.response.status_code']}`;
}

async function goStatus(agent: RunningAgent): Promise<GoBinaryStatus[]> {
  if (agent.proc.exitCode !== null) throw new Error(`agent exited ${agent.proc.exitCode}: ${agent.logs.join('').slice(-3000)}`);
  const r = await fetch(`http://127.0.0.1:${agent.apiPort}/api/discovery`, { signal: AbortSignal.timeout(10_000) });
  return ((await r.json()) as { goInstrumentation: GoBinaryStatus[] | null }).goInstrumentation ?? [];
}

/** `p`, or an error naming `what` after `ms` (a hung step fails the test instead of stalling it). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms); });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** Polls the agent's Go status until `pick` finds something. */
async function untilStatus<T>(agent: RunningAgent, what: string, pick: (s: GoBinaryStatus[]) => T | undefined, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  let last: GoBinaryStatus[] = [];
  for (;;) {
    last = await within(goStatus(agent), 15_000, 'GET /api/discovery');
    step(`status: ${JSON.stringify(last.map((x) => [x.path, x.pids]))}`);
    const v = pick(last);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`${what}: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function instrumented(agent: RunningAgent, pid: number): Promise<GoBinaryStatus> {
  return untilStatus(agent, `pid ${pid} not instrumented`, (l) => l.find((s) => s.pids.includes(pid) && s.instrumented));
}

/** Starts the client, waits until the agent has hooked it, lets it run, returns its output. */
async function runClient(agent: RunningAgent, bin: string, args: string[]): Promise<{ pid: number; out: string }> {
  const p: ChildProcess = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  p.stdout!.on('data', (d) => { out += String(d); });
  p.stderr!.on('data', (d) => { out += String(d); });
  const done = new Promise<number | null>((r) => p.once('exit', r));
  try {
    await waitFor(() => out.includes('waiting'), 15_000);
    await instrumented(agent, p.pid!);
    p.stdin!.write('go\n');
    const code = await Promise.race([done, new Promise<string>((r) => setTimeout(() => r('timeout'), 30_000))]);
    assert.equal(code, 0, out);
  } finally {
    if (p.exitCode === null) p.kill('SIGKILL');
  }
  return { pid: p.pid!, out };
}

/** GET `url` (a fresh connection each), the body. */
function get(url: string, ca?: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith('https:') ? https : http;
    const req = mod.get(url, { agent: false, ca, timeout: 30_000 }, (res) => {
      let b = '';
      res.on('data', (d) => { b += String(d); });
      res.on('end', () => resolve(b));
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: timeout`)));
    req.on('error', reject);
  });
}

/**
 * Requests that overlap in one Go server, each making its own outgoing call — from a goroutine
 * two spawns below the handler's (/fanout/ID) or on the handler's own (/direct/ID): every call to
 * /leaf/ID must be the child of the request with that ID, which the time rule cannot tell apart.
 */
async function goroutineTree(agent: RunningAgent, front: { pid: number; base: string; ca?: Buffer }, ids: number[]): Promise<void> {
  const paths = ids.map((id, i) => `/${i % 2 ? 'direct' : 'fanout'}/${id}`);
  const bodies = await Promise.all(paths.map((p) => get(front.base + p, front.ca)));
  for (let i = 0; i < ids.length; i++) assert.match(bodies[i], new RegExp(`^\\w+: leaf ${ids[i]}$`), paths[i]);
  // One read of the agent's output per poll: on a busy node it holds every process's spans.
  const pairs = () => {
    const mine = agent.spans().filter((s) => s.attributes['process.pid'] === front.pid);
    const list = ids.map((id, i) => ({
      id,
      server: mine.find((s) => s.kind === SERVER && s.attributes['url.path'] === paths[i]),
      client: mine.find((s) => s.kind === CLIENT && s.attributes['url.path'] === `/leaf/${id}`),
    }));
    const seen = mine.map((s) => `${s.kind === SERVER ? 'server' : 'client'} ${s.attributes['url.path']} ${s.spanId}<-${s.parentSpanId} ${s.attributes['telegen.correlation']}`).join('; ');
    return { list, seen };
  };
  const done = await waitFor(() => { const p = pairs(); return p.list.every((x) => x.server && x.client) && p; }, 45_000, 1000).catch(() => pairs());
  for (const { id, server, client } of done.list) {
    assert.ok(server && client, `id ${id}: server and client span (${done.seen})`);
    assert.equal(client.traceId, server.traceId, `id ${id}: one trace (${done.seen})`);
    assert.equal(client.parentSpanId, server.spanId, `id ${id}: the call is the child of its own request (${done.seen})`);
    assert.equal(client.attributes['telegen.correlation'], 'goroutine');
  }
}

test('Go HTTPS: HTTP/1.1 and HTTP/2 spans from stripped and unstripped Go servers and clients', { timeout: 300_000 }, async (t) => {
  const fx = goTlsFixtures(t);
  if (!fx) return;
  const { pki, srv, cli } = fx;
  const cfg = `${pki.dir}/agent.yaml`;
  fs.writeFileSync(cfg, 'tracers:\n  profile: { enabled: false }\n  go: { rescan_ms: 300 }\n');
  step('built');
  // The agent drops to its run-time capabilities: every Go process here starts after that, so
  // its probes are uprobe_multi links (perf-event uprobes need CAP_SYS_ADMIN on this kernel).
  const agent = await startAgent({ config: cfg });
  const plain = await startServer(srv.plain, [pki.cert, pki.key]);
  const stripped = await startServer(srv.stripped, [pki.cert, pki.key]);
  try {
    step('agent and servers up');
    const a = await instrumented(agent, plain.proc.pid!);
    const b = await instrumented(agent, stripped.proc.pid!);
    assert.equal(a.symbols, 'symtab');
    assert.equal(b.symbols, 'pclntab', 'the stripped server was resolved from pclntab');
    assert.ok(a.probes >= 3 && b.probes >= 3, 'two entries and at least one RET of Read');

    // stripped client → unstripped server over HTTP/1.1; unstripped client → stripped server over HTTP/2
    const h1 = await runClient(agent, cli.stripped, [pki.ca, 'h1', 'stdin', `https://localhost:${plain.port}/hello`, `https://localhost:${plain.port}/status/404`]);
    assert.match(h1.out, /200 HTTP\/1\.1\n404 HTTP\/1\.1/);
    step('h1 client done');
    const h2 = await runClient(agent, cli.plain, [pki.ca, 'h2', 'stdin', `https://localhost:${stripped.port}/hello`, `https://localhost:${stripped.port}/status/503`]);
    assert.match(h2.out, /200 HTTP\/2\.0\n503 HTTP\/2\.0/);
    step('h2 client done');

    const onPort = (port: number) => agent.spans().filter((s) => s.attributes['server.port'] === port);
    await waitFor(() => onPort(plain.port).length >= 4 && onPort(stripped.port).length >= 4, 30_000).catch(() => undefined);

    const check = (port: number, serverPid: number, clientPid: number, version: string, want: string[]) => {
      const spans = onPort(port);
      const s = spans.filter((x) => x.kind === SERVER);
      const c = spans.filter((x) => x.kind === CLIENT);
      const all = spans.map((x) => `${x.kind === SERVER ? 'server' : 'client'} pid ${x.attributes['process.pid']}: ${summary(x)}`).join('; ');
      assert.deepEqual(s.map(summary).sort(), want, `server spans on ${port} (${all})`);
      assert.deepEqual(c.map(summary).sort(), want, `client spans on ${port} (${all})`);
      for (const x of s) assert.equal(x.attributes['process.pid'], serverPid);
      for (const x of c) assert.equal(x.attributes['process.pid'], clientPid);
      for (const x of spans) assert.equal(x.attributes['network.protocol.version'], version);
      // Nothing decoded from ciphertext: every span on the port is one of these requests.
      assert.equal(spans.length, s.length + c.length);
    };
    check(plain.port, plain.proc.pid!, h1.pid, '1.1', ['GET /hello 200', 'GET /status/404 404']);
    check(stripped.port, stripped.proc.pid!, h2.pid, '2', ['GET /hello 200', 'GET /status/503 503']);

    step('spans checked');

    await t.test('goroutine-aware requests: outgoing calls are children of the request their goroutine serves', async () => {
      // Over TLS: the stripped binary calls the unstripped server. In clear: the unstripped binary calls itself.
      const tlsFront = await startServer(srv.stripped, [pki.cert, pki.key, `https://localhost:${plain.port}`, pki.ca]);
      const clearFront = await startServer(srv.plain, ['-', '-', 'self', '-']);
      try {
        for (const f of [tlsFront, clearFront]) {
          const s = await instrumented(agent, f.proc.pid!);
          assert.deepEqual(s.goroutines && { on: s.goroutines.instrumented, reason: s.goroutines.reason }, { on: true, reason: undefined });
        }
        await goroutineTree(agent, { pid: tlsFront.proc.pid!, base: `https://127.0.0.1:${tlsFront.port}`, ca: fs.readFileSync(pki.ca) }, [1, 2, 3, 4, 5, 6]);
        step('goroutine tree over TLS checked');
        await goroutineTree(agent, { pid: clearFront.proc.pid!, base: `http://127.0.0.1:${clearFront.port}` }, [11, 12, 13, 14, 15, 16]);
        step('goroutine tree in clear checked');
        // Every link the trees above were built from was a record the kernel counted.
        const k = await goKernelCounters(agent.apiPort);
        assert.ok(k.go_links >= 12, `go_links on /metrics: ${JSON.stringify(k)}`);
      } finally {
        await tlsFront.stop();
        await clearFront.stop();
      }
    });
    // A binary no process runs any more is unhooked and forgotten.
    await plain.stop();
    step('server stopped');
    await untilStatus(agent, 'the stopped server is still hooked', (l) => (l.some((s) => s.path === srv.plain) ? undefined : true), 15_000);
    assert.ok((await within(goStatus(agent), 15_000, 'GET /api/discovery')).some((s) => s.path === srv.stripped && s.instrumented), 'the other server stays hooked');
    step('stopping the agent');
    assert.equal(await within(agent.stop(), 40_000, 'agent stop'), 0);
    step('agent stopped');
  } finally {
    // Served.stop() waits for an 'exit' that a process killed by a signal already emitted: once each.
    if (plain.proc.exitCode === null && plain.proc.signalCode === null) await plain.stop();
    await stripped.stop();
    if (agent.proc.exitCode === null && agent.proc.signalCode === null) await within(agent.stop(), 40_000, 'agent stop').catch(() => agent.proc.kill('SIGKILL'));
    fs.rmSync(pki.dir, { recursive: true, force: true });
  }
});
