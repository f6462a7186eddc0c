// Soak: the real agent (default config, as root) under steady mixed HTTP traffic for N minutes
// (default 30). Checks what a user would: agent RSS flat within 10% after warm-up (first 20%),
// export queue not growing, and spans exported = requests made (server spans, by count, after a
// SIGTERM flush). Writes bench/results/soak.json; exit 1 when a check fails. Not part of npm test.
import * as path from 'path';
import * as http from 'http';
import * as fs from 'fs';
import * as os from 'os';
import { spawn } from 'child_process';
import { startServer, freePort, readSpansJsonl } from '../test/helpers/agent';
import { repoRoot, rssBytesOf, writeResult, spread } from './lib';

const minutes = (() => { const i = process.argv.indexOf('--minutes'); return i > 0 ? Number(process.argv[i + 1]) : 30; })();
const RATE = Number(process.env.SOAK_RATE || 40); // requests per second

async function queueBytes(port: number): Promise<number | undefined> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    let n = 0;
    for (const m of text.matchAll(/^telegen_export_queue_bytes\{[^}]*\}\s+(\S+)$/gm)) n += Number(m[1]);
    return n;
  } catch { return undefined; /* API busy: the sample is skipped, not invented */ }
}

/** The agent, waited for up to 5 minutes: on a loaded shared machine start-up takes longer than tests allow. */
async function startSoakAgent() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-soak-'));
  const apiPort = await freePort();
  const proc = spawn(process.execPath, [path.join(repoRoot, 'bin', 'telegen'), 'run', '--data-dir', dataDir, '--api-listen', `127.0.0.1:${apiPort}`], { stdio: ['ignore', 'ignore', 'pipe'] });
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
    spans: () => readSpansJsonl(path.join(dataDir, 'traces.jsonl')),
  };
}

async function main(): Promise<void> {
  if (!(minutes > 0)) throw new Error('--minutes must be > 0');
  const agent = await startSoakAgent();
  const srv = await startServer(process.execPath, [path.join(repoRoot, 'test', 'fixtures', 'http-server.js'), '0']);
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
    const r = http.request({ host: '127.0.0.1', port: srv.port, path: k.path, method: k.method, agent: i % 10 === 0 ? false : ka, headers: k.body ? { 'content-length': k.body.length } : {} }, (res) => { res.resume(); res.on('end', () => { answered++; }); });
    r.on('error', () => { failed++; });
    r.end(k.body);
  };
  const samples: Array<{ t: number; rss: number; queueBytes?: number }> = [];
  const t0 = Date.now();
  const end = t0 + minutes * 60_000;
  let i = 0;
  const tick = setInterval(() => { for (let k = 0; k < RATE / 10; k++) send(i++); }, 100);
  const every = Math.max(2000, Math.min(30_000, minutes * 60_000 / 60));
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, every));
    samples.push({ t: (Date.now() - t0) / 1000, rss: rssBytesOf(agent.proc.pid!), queueBytes: await queueBytes(agent.apiPort) });
    process.stdout.write(`soak ${Math.round((Date.now() - t0) / 1000)} s: ${made} requests, rss ${(samples[samples.length - 1].rss / 2 ** 20).toFixed(1)} MiB, queue ${samples[samples.length - 1].queueBytes ?? '?'} B\n`);
  }
  clearInterval(tick);
  for (let w = 0; w < 100 && answered + failed < made; w++) await new Promise((r) => setTimeout(r, 100));
  ka.destroy();
  await new Promise((r) => setTimeout(r, 3000)); // the last exchanges reach the ring and the decoders
  const code = await agent.stop();
  await srv.stop();
  const exported = agent.spans().filter((s) => s.kind === 2 && s.attributes['server.port'] === srv.port).length;
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
    spans_exported_equal_requests_answered: exported === answered,
    agent_exit_0: code === 0,
  };
  writeResult('soak', {
    minutes, rate_per_s: RATE, requests_made: made, requests_answered: answered, requests_failed: failed, server_spans_exported: exported,
    rss_after_warmup_MiB: spread(rss.map((x) => x / 2 ** 20)), rss_growth_after_warmup: Math.round(rssGrowth * 1000) / 1000,
    queue_bytes_after_warmup: q.length ? spread(q) : null, queue_samples_missed: warm.length - q.length,
    checks, samples,
  });
  const bad = Object.entries(checks).filter(([, ok]) => !ok).map(([k]) => k);
  process.stdout.write(bad.length ? `soak FAILED: ${bad.join(', ')}\n` : 'soak ok\n');
  process.exit(bad.length ? 1 : 0);
}

main().catch((e) => { console.error(e); process.exit(2); });
