// Real traffic through the real agent: curl → Python frontend (thread per request, urllib, no
// trace headers forwarded) → Node backend (event loop) → PostgreSQL 15 + DNS over TCP (dnsmasq)
// + a gRPC inventory service. Asserts one trace per incoming request with the exact tree, the
// service graph, RED counts, the exported metrics, the services' log lines carrying their
// request's trace and span ids, and (when Debian chromium is installed) the page in headless Chromium.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawn, ChildProcess } from 'child_process';
import { requireBpf, startAgent, startServer, freePort, waitFor, curl, FlatSpan, RunningAgent, Served } from '../helpers/agent';
import { repoRoot } from '../helpers/decoder';
import { readLogs } from '../tracers/helpers';
import { initPostgres } from '../helpers/postgres';
import { flattenMetrics } from '../helpers/otlp-receiver';

const PASSWORD = 'telegen-three-tier';
const FIX = path.join(repoRoot, 'test', 'fixtures', 'three-tier');
const OUT = path.join(repoRoot, 'test', 'output');
const N = 3;

function exited(p: ChildProcess, ms: number): Promise<void> {
  return new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    const t = setTimeout(() => { try { p.kill('SIGKILL'); } catch { /* gone */ } resolve(); }, ms);
    p.once('exit', () => { clearTimeout(t); resolve(); });
  });
}

async function startDnsmasq(): Promise<{ port: number; stop(): Promise<void> }> {
  const port = await freePort();
  const p = spawn('dnsmasq', ['--keep-in-foreground', '--log-facility=-', '--conf-file=/dev/null', '--no-resolv', '--no-hosts',
    `--port=${port}`, '--listen-address=127.0.0.1', '--bind-interfaces', '--user=root', '--pid-file=', '--address=/three-tier.test/10.9.8.7'],
  { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  p.stderr!.on('data', (d) => { err += String(d); });
  await waitFor(() => /started, version/.test(err) || p.exitCode !== null, 15_000);
  if (p.exitCode !== null) throw new Error(`dnsmasq: ${err}`);
  return { port, stop: async () => { p.kill('SIGTERM'); await exited(p, 5000); } };
}

const kids = (all: FlatSpan[], parent: FlatSpan) => all.filter((s) => s.parentSpanId === parent.spanId && s.traceId === parent.traceId);

test('three tiers on loopback: one trace per request, service graph, RED, page', { timeout: 300_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const cleanups: Array<() => Promise<void> | void> = [];
  t.after(async () => { for (const c of cleanups.reverse()) await c(); });

  const pg = await initPostgres('telegen-3t-pg-', { password: PASSWORD });
  await pg.start();
  cleanups.push(() => pg.stop());
  const dns = await startDnsmasq();
  cleanups.push(() => dns.stop());
  const agent: RunningAgent = await startAgent({ env: { TELEGEN_METRICS_INTERVAL_MS: '1000', TELEGEN_LOGS: '1' } });
  cleanups.push(async () => { await agent.stop(); fs.rmSync(agent.dataDir, { recursive: true, force: true }); });
  // Started after the agent so that every connection is seen from its first byte.
  const inventory: Served = await startServer('env', ['OTEL_SERVICE_NAME=inventory', process.execPath, path.join(FIX, 'inventory.js')], { cwd: repoRoot });
  cleanups.push(() => inventory.stop());
  const backend: Served = await startServer('env', ['OTEL_SERVICE_NAME=backend', process.execPath, path.join(FIX, 'backend.js'), String(pg.port), String(dns.port), PASSWORD, String(inventory.port)], { cwd: repoRoot });
  cleanups.push(() => backend.stop());
  const frontend: Served = await startServer('env', ['OTEL_SERVICE_NAME=frontend', 'python3', path.join(FIX, 'frontend.py'), String(backend.port)]);
  cleanups.push(() => frontend.stop());

  for (let i = 1; i <= N; i++) {
    const body = JSON.parse(curl([`http://127.0.0.1:${frontend.port}/order/${100 + i}`]));
    assert.equal(body.id, 100 + i);
  }

  const fpid = frontend.proc.pid!;
  const bpid = backend.proc.pid!;
  const fromPid = (all: FlatSpan[], pid: number) => all.filter((s) => s.resource['process.pid'] === pid || s.attributes['process.pid'] === pid);
  // `env` execs the program, so the pid we spawned is the service's pid.
  const all = await waitFor(() => {
    const s = agent.spans();
    const roots = fromPid(s, fpid).filter((x) => x.kind === 2);
    const pgs = fromPid(s, bpid).filter((x) => x.attributes['db.system.name'] === 'postgresql' && String(x.attributes['db.query.text'] ?? x.name).length > 0);
    const rpcs = fromPid(s, bpid).filter((x) => x.kind === 3 && x.attributes['rpc.system'] === 'grpc');
    return roots.length >= N && pgs.length >= N && rpcs.length >= N ? s : undefined;
  }, 60_000).catch((e) => {
    const s = agent.spans();
    const counts: Record<string, number> = {};
    for (const x of s) counts[String(x.resource['process.pid'])] = (counts[String(x.resource['process.pid'])] ?? 0) + 1;
    const summary = JSON.stringify(counts) + '\n' + s.filter((x) => counts[String(x.resource['process.pid'])] < 40).map((x) => `${x.resource['process.pid']}/${x.resource['service.name']} k=${x.kind} ${x.name} ${x.attributes['telegen.correlation']}`).join('\n');
    throw new Error(`${(e as Error).message}; frontend ${fpid} backend ${bpid}; spans:\n${summary}\n${agent.logs.join('').slice(-3000)}`);
  });

  const fServers = fromPid(all, fpid).filter((s) => s.kind === 2).sort((a, b) => Number(a.start - b.start));
  assert.equal(fServers.length, N, 'one frontend server span per request');
  for (let i = 0; i < N; i++) {
    const root = fServers[i];
    assert.equal(root.attributes['url.path'], `/order/${101 + i}`);
    assert.equal(root.resource['service.name'], 'frontend');
    const trace = all.filter((s) => s.traceId === root.traceId);
    // frontend SERVER → frontend CLIENT (urllib) → backend SERVER (linked by the socket) → pg + DNS
    const fClient = kids(all, root);
    assert.equal(fClient.length, 1, `frontend calls the backend once in request ${i}`);
    assert.equal(fClient[0].kind, 3);
    // Python: the accepted socket's first syscall (accept) ran on the main thread, so this is 'time' unless the handler thread touched it first.
    assert.ok(['thread', 'time'].includes(String(fClient[0].attributes['telegen.correlation'])));
    const bServer = kids(all, fClient[0]);
    assert.equal(bServer.length, 1);
    assert.equal(bServer[0].resource['service.name'], 'backend');
    assert.equal(bServer[0].attributes['url.path'], `/users/${101 + i}`);
    assert.equal(bServer[0].attributes['http.route'], '/users/{id}');
    assert.equal(bServer[0].attributes['telegen.correlation'], 'socket');
    const bKids = kids(all, bServer[0]);
    const pgKids = bKids.filter((s) => s.attributes['db.system.name'] === 'postgresql');
    const dnsKids = bKids.filter((s) => s.attributes['dns.question.name'] !== undefined);
    assert.equal(pgKids.length, 1, `one query in request ${i}: ${bKids.map((s) => s.name).join(', ')}`);
    assert.equal(dnsKids.length, 1, `one DNS lookup in request ${i}`);
    assert.equal(dnsKids[0].attributes['dns.question.name'], 'db.three-tier.test');
    const rpcKids = bKids.filter((s) => s.attributes['rpc.system'] === 'grpc');
    assert.equal(rpcKids.length, 1, `one gRPC call in request ${i}`);
    assert.equal(rpcKids[0].attributes['rpc.method'], 'Check');
    const invServer = kids(all, rpcKids[0]);
    assert.equal(invServer.length, 1, 'the inventory server span is the gRPC call\'s child');
    assert.equal(invServer[0].resource['service.name'], 'inventory');
    assert.equal(invServer[0].attributes['telegen.correlation'], 'socket');
    // Node: everything runs on the main thread, so the one request in flight is also the one on the call's thread.
    for (const k of [...pgKids, ...dnsKids, ...rpcKids]) assert.ok(['thread', 'time'].includes(String(k.attributes['telegen.correlation'])));
    // Nothing of this request escaped into another trace, and the trace holds nothing else from our services.
    const ours = trace.filter((s) => [fpid, bpid].includes(Number(s.resource['process.pid'])));
    assert.equal(ours.length, 6);
    // The frontend's caller (curl, traced too) may be the trace root: the root server span's parent, if any, is curl's client span.
    if (root.parentSpanId) assert.equal(all.find((s) => s.spanId === root.parentSpanId)?.kind, 3);
  }
  // Every span belongs to exactly one trace: no span id appears twice.
  const spanIds = fromPid(all, bpid).map((s) => s.spanId);
  assert.equal(new Set(spanIds).size, spanIds.length);

  // Service graph and RED through the API.
  type Topo = {
    edges: Array<{ id: string; client: string; server: string; total: number; failed: number; connectionType: string; lastTraceId: string }>;
    services: Array<{ service: string; series: Array<{ instrument: string; attributes: Record<string, unknown>; count: number; exemplars: Record<string, string> }> }>;
  };
  // Every pg / DNS client span of the backend (the connection handshake too) is one call on its edge.
  const bSpans = fromPid(agent.spans(), bpid);
  const pgCalls = bSpans.filter((s) => s.kind === 3 && s.attributes['db.system.name'] === 'postgresql').length;
  const dnsCalls = bSpans.filter((s) => s.kind === 3 && s.attributes['dns.question.name'] !== undefined).length;
  const rpcCalls = bSpans.filter((s) => s.kind === 3 && s.attributes['rpc.system'] === 'grpc').length;
  assert.equal(rpcCalls, N);
  let topo: Topo;
  // Client spans nobody answered become virtual-node edges after a short wait: poll until they are in.
  for (let tries = 0; ; tries++) {
    topo = await (await agent.api('/api/topology')).json() as Topo;
    if (topo.edges.filter((e) => e.client === 'backend').reduce((a, e) => a + e.total, 0) >= pgCalls + dnsCalls + rpcCalls || tries > 100) break;
    await new Promise((r) => setTimeout(r, 300));
  }
  const edge = (id: string) => topo.edges.find((e) => e.id === id);
  assert.equal(edge('frontend->backend')?.total, N);
  assert.equal(edge('frontend->backend')?.failed, 0);
  const ids = topo.edges.map((e) => `${e.id}=${e.total}`).join(', ');
  // PostgreSQL and dnsmasq run on this node and are traced too: their server spans link to the
  // backend's client spans over the socket, so the edges go to those services; untraced they
  // would be virtual nodes ("postgresql ADDR:PORT", "dns ADDR").
  const toward = (names: string[]) => topo.edges.filter((e) => e.client === 'backend' && names.includes(e.server)).reduce((a, e) => a + e.total, 0);
  assert.ok(pgCalls >= N);
  assert.equal(toward(['postgres', `postgresql 127.0.0.1:${pg.port}`]), pgCalls, ids);
  assert.equal(toward(['dnsmasq', 'dns 127.0.0.1']), dnsCalls, ids);
  assert.equal(dnsCalls, N);
  assert.equal(edge('backend->inventory')?.total, N, ids);
  const be = topo.services.find((s) => s.service === 'backend')!;
  const srv = be.series.filter((s) => s.instrument === 'http.server.request.duration' && s.attributes['http.route'] === '/users/{id}');
  assert.equal(srv.reduce((a, s) => a + s.count, 0), N);
  assert.ok(Object.values(srv[0].exemplars).every((tid) => fServers.some((r) => r.traceId === tid)), 'exemplar trace ids are our traces');
  const fe = topo.services.find((s) => s.service === 'frontend')!;
  assert.equal(fe.series.filter((s) => s.instrument === 'http.client.request.duration').reduce((a, s) => a + s.count, 0), N);

  const byEdge = await (await agent.api('/api/traces?edge=frontend-%3Ebackend&limit=10')).json() as { traces: Array<{ traceId: string; spans: unknown[] }> };
  assert.deepEqual(new Set(byEdge.traces.map((x) => x.traceId)), new Set(fServers.map((s) => s.traceId)));

  // Log lines (tracers.logs): each service's line of a request carries that request's trace and
  // the span of the request it was printed in.
  const bServers = fServers.map((root) => kids(all, kids(all, root)[0])[0]);
  const logs = await waitFor(() => {
    const l = readLogs(agent.dataDir);
    return fServers.every((_, i) => l.some((x) => String(x.body).includes(`order ${101 + i} served`)) && l.some((x) => String(x.body).includes(`order ${101 + i} requested`))) ? l : undefined;
  }, 30_000).catch(() => { throw new Error(`log lines missing: ${JSON.stringify(readLogs(agent.dataDir).map((x) => x.body))}`); });
  for (let i = 0; i < N; i++) {
    const one = (text: string) => { const f = logs.filter((x) => String(x.body).includes(text)); assert.equal(f.length, 1, text); return f[0]; };
    const fl = one(`order ${101 + i} requested`);
    assert.equal(fl.traceId, fServers[i].traceId);
    assert.equal(fl.spanId, fServers[i].spanId);
    assert.equal(fl.severityText, 'WARN');
    assert.equal(fl.resource['service.name'], 'frontend');
    const bl = one(`order ${101 + i} served`);
    assert.equal(bl.traceId, fServers[i].traceId);
    assert.equal(bl.spanId, bServers[i].spanId);
    assert.equal(bl.severityText, 'INFO');
    assert.equal(bl.resource['service.name'], 'backend');
  }

  // Exported metrics (file mode): semconv RED and servicegraph names.
  const metricsFile = path.join(agent.dataDir, 'metrics.jsonl');
  const text = await waitFor(() => {
    const m = fs.existsSync(metricsFile) ? fs.readFileSync(metricsFile, 'utf8') : '';
    return m.includes('traces_service_graph_request_total') && m.includes('http.server.request.duration') ? m : undefined;
  }, 30_000);
  for (const name of ['http.client.request.duration', 'db.client.operation.duration', 'dns.lookup.duration', 'traces_service_graph_request_server_seconds', 'traces_service_graph_request_client_seconds']) {
    assert.ok(text.includes(name), `${name} exported`);
  }
  // The backend's RED point for /users/{id} carries exemplars (OTLP/JSON, ids hex): each names one
  // of the exported backend server spans, with its duration, in the bucket it fell into.
  type Ex = { traceId: string; spanId: string; asDouble: number };
  const redPoint = () => {
    const lines = fs.readFileSync(metricsFile, 'utf8').split('\n').filter(Boolean).map((l) => flattenMetrics(JSON.parse(l)));
    const pts = lines.flat().filter((m) => m.name === 'http.server.request.duration').flatMap((m) => m.dataPoints)
      .filter((p) => p.attributes['service.name'] === 'backend' && p.attributes['http.route'] === '/users/{id}');
    const last = pts.at(-1) as { bucketCounts: number[]; explicitBounds: number[]; exemplars?: Ex[] } | undefined;
    return last && Number(last.bucketCounts.reduce((x, c) => x + Number(c), 0)) === N ? last : undefined;
  };
  const red = await waitFor(redPoint, 30_000);
  const nonEmpty = red.bucketCounts.map((c, i) => (Number(c) > 0 ? i : -1)).filter((i) => i >= 0);
  assert.equal(red.exemplars?.length, nonEmpty.length, 'one exemplar per non-empty bucket');
  red.exemplars!.forEach((e, k) => {
    const i = fServers.findIndex((f) => f.traceId === e.traceId);
    assert.ok(i >= 0, `exemplar trace ${e.traceId} is one of the requests`);
    const span = bServers[i];
    assert.equal(e.spanId, span.spanId, 'the backend server span of that request');
    assert.ok(Math.abs(e.asDouble - Number(span.end - span.start) / 1e9) < 1e-6, `exemplar ${e.asDouble} s is the span duration`);
    const b = nonEmpty[k];
    assert.ok(e.asDouble > (b ? red.explicitBounds[b - 1] : 0) && e.asDouble <= (red.explicitBounds[b] ?? Infinity), `exemplar ${e.asDouble} in bucket ${b}`);
  });

  // The page, in headless Debian chromium.
  if (!fs.existsSync('/usr/bin/chromium')) {
    if (process.env.CI === 'true') throw new Error('chromium not installed (scripts/setup.sh)');
    t.diagnostic('chromium not installed: page check skipped');
    return;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { chromium } = require('playwright-core') as typeof import('playwright-core');
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
  cleanups.push(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  await page.goto(`http://127.0.0.1:${agent.apiPort}/`);
  await page.locator('svg#graph g.node[data-id="frontend"]').waitFor({ timeout: 20_000 });
  await page.locator('svg#graph g.node[data-id="backend"]').waitFor();
  await page.locator('svg#graph [data-edge="frontend->backend"]').first().click();
  // The list is marked with its edge once the edge's traces replaced the latest ones.
  await page.locator('#traces[data-edge="frontend->backend"] .trace').first().waitFor({ timeout: 20_000 });
  const listed = await page.locator('#traces[data-edge="frontend->backend"] .trace').evaluateAll((els) => els.map((e) => e.getAttribute('data-trace')));
  assert.deepEqual(new Set(listed), new Set(fServers.map((s) => s.traceId)));
  assert.equal(await page.locator('#traces-title').textContent(), 'Traces through frontend → backend');
  await page.locator('#red .chart[data-service="backend"]').waitFor();
  fs.mkdirSync(OUT, { recursive: true });
  await page.screenshot({ path: path.join(OUT, 'correlate-page.png'), fullPage: true });
});
