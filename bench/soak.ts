// Soak: the real agent (default config, as root) under steady mixed HTTP traffic for N minutes
// (default 30). Checks what a user would: agent RSS flat within 10% after warm-up (first 20%),
// export queue not growing, and spans exported = requests made (server spans, by count, after the
// queue drained and a SIGTERM flush; every rotated traces.jsonl.N counted). Writes
// bench/results/soak.json with where requests can be lost (agent-wide counters, as the agent
// traces every process); exit 1 when a check fails. Not part of npm test.
//
// SOAK_SCOPE=machine (default) traces the whole machine, as the default config does: on a shared
// machine other tenants' load (a wrk benchmark at 20k req/s) fills the same ring. SOAK_SCOPE=server
// sets tracers.socket.target_pid to the soak's server, so the ring carries only its traffic.
// SOAK_RESULT=NAME writes bench/results/NAME.json instead (two soaks side by side, e.g. one with
// TELEGEN_YOUNG_GEN_MB=0 TELEGEN_HEAP_TRIM_MS=0: the agent's memory tuning off).
import * as path from 'path';
import * as http from 'http';
import * as fs from 'fs';
import * as os from 'os';
import { spawn } from 'child_process';
import { startServer, freePort, readSpansJsonl } from '../test/helpers/agent';
import { repoRoot, rssBytesOf, writeResult, spread } from './lib';

const minutes = (() => { const i = process.argv.indexOf('--minutes'); return i > 0 ? Number(process.argv[i + 1]) : 30; })();
const RATE = Number(process.env.SOAK_RATE || 40); // requests per second
const SCOPE = process.env.SOAK_SCOPE === 'server' ? 'server' : 'machine';

async function scrape(port: number): Promise<Record<string, number> | undefined> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
    const out: Record<string, number> = {};
    for (const m of text.matchAll(/^(telegen_[a-z0-9_]+(?:\{[^}]*\})?)\s+(\S+)$/gm)) out[m[1]] = Number(m[2]);
    return out;
  } catch { return undefined; /* API busy: the sample is skipped, not invented */ }
}

const sum = (m: Record<string, number>, prefix: string) => Object.entries(m).reduce((n, [k, v]) => n + (k.startsWith(prefix) ? v : 0), 0);

/** One sample's view of the agent: its export backlog, and the ring's records and drops so far
 *  (a burst of other tenants' traffic shows up here). */
async function sampleAgent(port: number): Promise<{ queueBytes?: number; ringEvents?: number; ringFull?: number; spans?: number }> {
  const m = await scrape(port);
  if (!m) return {};
  return {
    queueBytes: sum(m, 'telegen_export_queue_bytes'), ringEvents: sum(m, 'telegen_bpf_events_total'),
    ringFull: sum(m, 'telegen_bpf_ring_full_total'), spans: sum(m, 'telegen_spans_total'),
  };
}

/** The agent's RSS split as the kernel counts it: anonymous (V8 heap, malloc) and file/shared
 *  (the node binary's code and the mmapped BPF ring buffers, which fill as the kernel writes them). */
function rssParts(pid: number): { rssAnon?: number; rssFile?: number } {
  try {
    const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(st)?.[1] ?? NaN) * 1024;
    return { rssAnon: kb('RssAnon'), rssFile: kb('RssFile') + kb('RssShmem') };
  } catch { return {}; }
}

/** Waits until the trace queue is empty (nothing queued or in flight), up to `ms`: a user stops an
 *  agent after its backlog drained, not in the middle of another tenant's burst. */
async function drained(port: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const m = await scrape(port);
    if (m && m['telegen_export_queue_items{signal="traces"}'] === 0 && m['telegen_export_in_flight_items{signal="traces"}'] === 0) return true;
    await new Promise((r) => setTimeout(r, 1000));
  }
  return false;
}

/** The agent's own shutdown report ("telegen stopped"): what each queue exported or dropped at the end. */
function shutdownReport(stderr: string): unknown {
  for (const line of stderr.split('\n').reverse()) {
    try { const j = JSON.parse(line); if (j.msg === 'telegen stopped') return j.reports; } catch { /* not a log line */ }
  }
  return undefined;
}

/** Every counter where a request can be lost on its way to an exported span (agent-wide: the
 *  agent traces the whole machine, so these include other processes' traffic). */
const LOSS = /^telegen_(bpf_(events|ring_full|truncated|read_fault|records|handlerErrors)|ring_malformed|stream_gap_bytes|connections_(unparsed|bound)|decoder_(stream_resets|orphan_records|bad_records|overflows|budget_exceeded|traps|gap_resets|gaps_absorbed|records)|exchanges_without_request|host_record_errors|spans_|correlat|export_(dropped|items|unconfirmed_resent|failures))/;

function lossCounters(m: Record<string, number> | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  // Decoder counters carry a generation label: sum them per decoder.
  for (const [k, v] of Object.entries(m ?? {})) if (LOSS.test(k) && v) { const key = k.replace(/,?generation="[^"]*"/, ''); out[key] = (out[key] ?? 0) + v; }
  return out;
}

/** The agent, waited for up to 5 minutes: on a loaded shared machine start-up takes longer than tests allow. */
async function startSoakAgent(targetPid?: number) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-soak-'));
  const apiPort = await freePort();
  const args = ['run', '--data-dir', dataDir, '--api-listen', `127.0.0.1:${apiPort}`];
  if (targetPid) {
    fs.writeFileSync(path.join(dataDir, 'soak.yaml'), `tracers:\n  socket: { target_pid: ${targetPid} }\n`);
    args.push('--config', path.join(dataDir, 'soak.yaml'));
  }
  // Rotated files are all kept: a soak counts every span the agent wrote (the default keeps 5 of
  // 100 MB, and a 20-minute soak beside other tenants' benchmarks rotated past what it read).
  const proc = spawn(process.execPath, [path.join(repoRoot, 'bin', 'telegen'), ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, TELEGEN_OTLP_FILE_KEEP: '1000' } });
  let err = '';
  proc.stderr!.on('data', (d) => { err = (err + String(d)).slice(-4000); });
  const deadline = Date.now() + 300_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`agent exited ${proc.exitCode}: ${err}`);
    try { if ((await fetch(`http://127.0.0.1:${apiPort}/readyz`, { signal: AbortSignal.timeout(5000) })).ok) break; } catch { /* not yet */ }
    if (Date.now() > deadline) { proc.kill('SIGKILL'); throw new Error(`agent not ready in 5 min: ${err}`); }
    await new Promise((r) => setTimeout(r, 500));
  }
  return {
    proc, apiPort, dataDir,
    stop: () => new Promise<number | null>((resolve) => { proc.once('exit', (c) => resolve(c)); proc.kill('SIGTERM'); setTimeout(() => proc.kill('SIGKILL'), 60_000).unref(); }),
    spans: () => {
      const base = path.join(dataDir, 'traces.jsonl');
      const rotated = fs.readdirSync(dataDir).filter((f) => /^traces\.jsonl\.\d+$/.test(f)).map((f) => path.join(dataDir, f));
      return [...rotated, base].flatMap((f) => readSpansJsonl(f));
    },
    rotatedFiles: () => fs.readdirSync(dataDir).filter((f) => /^traces\.jsonl\.\d+$/.test(f)).length,
    stderrTail: () => err,
  };
}

async function main(): Promise<void> {
  if (!(minutes > 0)) throw new Error('--minutes must be > 0');
  // The server first when the agent traces only it; its connections all start after the agent.
  let srv = SCOPE === 'server' ? await startServer(process.execPath, [path.join(repoRoot, 'test', 'fixtures', 'http-server.js'), '0']) : undefined;
  const agent = await startSoakAgent(srv?.proc.pid);
  srv ??= await startServer(process.execPath, [path.join(repoRoot, 'test', 'fixtures', 'http-server.js'), '0']);
  const server = srv;
  const ka = new http.Agent({ keepAlive: true, maxSockets: 8 });
  // Mixed: keep-alive GETs, POST with a body, an error status, a new connection every 10th.
  const kinds = [
    { path: '/users/1', method: 'GET' }, { path: '/echo', method: 'POST', body: Buffer.alloc(2048, 'p') },
    { path: '/status/503', method: 'GET' }, { path: '/hello', method: 'GET' },
  ];
  let made = 0, answered = 0, failed = 0;
  const send = (i: number) => {
    const k = kinds[i % kinds.length];
    made++;
    const r = http.request({ host: '127.0.0.1', port: server.port, path: k.path, method: k.method, agent: i % 10 === 0 ? false : ka, headers: k.body ? { 'content-length': k.body.length } : {} }, (res) => { res.resume(); res.on('end', () => { answered++; }); });
    r.on('error', () => { failed++; });
    r.end(k.body);
  };
  const samples: Array<{ t: number; rss: number; rssAnon?: number; rssFile?: number; queueBytes?: number; ringEvents?: number; ringFull?: number; spans?: number }> = [];
  const t0 = Date.now();
  const end = t0 + minutes * 60_000;
  let i = 0;
  const tick = setInterval(() => { for (let k = 0; k < RATE / 10; k++) send(i++); }, 100);
  const every = Math.max(2000, Math.min(30_000, minutes * 60_000 / 60));
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, every));
    const rssNow = rssBytesOf(agent.proc.pid!);
    const s = { t: (Date.now() - t0) / 1000, rss: rssNow, ...rssParts(agent.proc.pid!), ...await sampleAgent(agent.apiPort) };
    samples.push(s);
    process.stdout.write(`soak ${Math.round(s.t)} s: ${made} requests, rss ${(s.rss / 2 ** 20).toFixed(1)} MiB (anon ${((s.rssAnon ?? 0) / 2 ** 20).toFixed(1)}), queue ${s.queueBytes ?? '?'} B, ring ${s.ringEvents ?? '?'} records / ${s.ringFull ?? '?'} dropped, ${s.spans ?? '?'} spans\n`);
  }
  clearInterval(tick);
  for (let w = 0; w < 100 && answered + failed < made; w++) await new Promise((r) => setTimeout(r, 100));
  ka.destroy();
  await new Promise((r) => setTimeout(r, 3000)); // the last exchanges reach the ring and the decoders
  const queueDrained = await drained(agent.apiPort, 120_000);
  const before = lossCounters(await scrape(agent.apiPort));
  const code = await agent.stop();
  await server.stop();
  const ours = agent.spans().filter((s) => s.attributes['server.port'] === server.port);
  const serverSpans = ours.filter((s) => s.kind === 2);
  const exported = serverSpans.length;
  // A batch written twice (at-least-once export) would hide a loss in the count.
  const duplicated = exported - new Set(serverSpans.map((s) => s.spanId)).size;
  // The soak's own client spans (this process is traced too) and how the spans were joined.
  const byMode: Record<string, number> = {};
  for (const s of ours) { const k = `${s.kind === 2 ? 'server' : 'client'}:${s.attributes['telegen.correlation']}`; byMode[k] = (byMode[k] ?? 0) + 1; }
  const warm = samples.filter((s) => s.t >= minutes * 60 * 0.2);
  const rss = warm.map((s) => s.rss);
  const rssGrowth = rss.length ? (Math.max(...rss) - Math.min(...rss)) / Math.min(...rss) : 0;
  const q = warm.map((s) => s.queueBytes).filter((x): x is number => x !== undefined);
  const half = q.length >> 1;
  const qFirst = q.slice(0, half), qLast = q.slice(half);
  const qGrowing = q.length >= 4 && Math.min(...qLast) > Math.max(...qFirst);
  const checks = {
    rss_flat_within_10pct: rssGrowth <= 0.10,
    queue_not_growing: !qGrowing,
    spans_exported_equal_requests_answered: exported === answered && duplicated === 0,
    agent_exit_0: code === 0,
  };
  writeResult(process.env.SOAK_RESULT || 'soak', {
    minutes, scope: SCOPE, rate_per_s: RATE, requests_made: made, requests_answered: answered, requests_failed: failed, server_spans_exported: exported, server_spans_duplicated: duplicated,
    rss_after_warmup_MiB: spread(rss.map((x) => x / 2 ** 20)),
    rss_anon_after_warmup_MiB: spread(warm.map((s) => (s.rssAnon ?? 0) / 2 ** 20)), rss_file_after_warmup_MiB: spread(warm.map((s) => (s.rssFile ?? 0) / 2 ** 20)), rss_growth_after_warmup: Math.round(rssGrowth * 1000) / 1000,
    queue_bytes_after_warmup: q.length ? spread(q) : null, queue_samples_missed: warm.length - q.length,
    client_spans_exported: ours.filter((s) => s.kind === 3).length, spans_by_correlation: byMode,
    // Where a request can be lost, agent-wide (with SOAK_SCOPE=machine they include other
    // processes' traffic): ring drops and gaps → decoder resets → responses without request →
    // filter/sampling → export queue (queue_full, export_failed) → shutdown (report below).
    queue_drained_before_stop: queueDrained, rotated_trace_files: agent.rotatedFiles(),
    agent_counters_before_stop: before, agent_shutdown_report: shutdownReport(agent.stderrTail()),
    checks, samples,
  });
  const bad = Object.entries(checks).filter(([, ok]) => !ok).map(([k]) => k);
  process.stdout.write(bad.length ? `soak FAILED: ${bad.join(', ')}\n` : 'soak ok\n');
  process.exit(bad.length ? 1 : 0);
}

main().catch((e) => { console.error(e); process.exit(2); });
