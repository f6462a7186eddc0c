// The agent overloaded (issue 12: memory near 100 MB while overloaded, the service keeps its
// cores, nothing lost silently): over its CPU budget or its memory bound the real agent stops
// reading the ring (the kernel counts what does not fit), and with the file exporter's trace queue near its cap it skips
// ring data records before decoding them (counted by reason). Every request without a span is
// explained by a counted drop, and the agent's RSS stays bounded through the burst.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn } from 'child_process';
import { repoRoot } from '../helpers/decoder';
import { requireBpf, startAgent, startServer } from '../helpers/agent';
import { load, metrics, sum, waitMetric, Metrics } from './helpers';

const fixture = path.join(repoRoot, 'test', 'fixtures', 'http-server.js');
const MiB = 2 ** 20;
// Measured without shedding (bench/README.md "Agent memory", a 15 s burst): 128-186 MiB at its end.
const RSS_BURST_MAX = 140 * MiB;

async function burst(t: { diagnostic(s: string): void }, agentYaml: string, env: Record<string, string>, sent = 20_000, query = '') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-shed-'));
  const srv = await startServer(process.execPath, [fixture, '0']);
  const cfg = path.join(dir, 'telegen.yaml');
  // The contention budget off unless the test is about it: a burst makes the host contended, and
  // these tests are about the other reasons.
  const contention = agentYaml.includes('contended_cpu_percent') ? '' : '  contended_cpu_percent: 0\n';
  fs.writeFileSync(cfg, `tracers:\n  profile:\n    enabled: false\n  socket:\n    target_pid: ${srv.proc.pid}\nagent:\n${agentYaml}${contention}`);
  const agent = await startAgent({ config: cfg, env });
  try {
    let maxRss = 0;
    let maxQueue = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        // The agent may be gone when a failed assertion ends the test early.
        const m = await metrics(agent).catch(() => undefined);
        if (!m) break;
        maxRss = Math.max(maxRss, sum(m, 'telegen_process_rss_bytes'));
        maxQueue = Math.max(maxQueue, sum(m, 'telegen_export_queue_bytes', { signal: 'traces' }));
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    const codes = await load(srv.port, sent, 32, { path: `/hello${query}` });
    assert.equal(codes.filter((c) => c === 200).length, sent, 'the load generator got every answer');
    // Every record the kernel committed is consumed (decoded or skipped) before the count.
    const committed = sum(await metrics(agent), 'telegen_bpf_events_total', { tracer: 'socket' });
    const ms: Metrics = await waitMetric(agent, (m) => sum(m, 'telegen_bpf_records_total', { tracer: 'socket' }) >= committed, 120_000, `reader past the ${committed} committed records`);
    sampling = false;
    await sampler;
    assert.equal(await agent.stop(), 0);
    const spans = agent.spans().filter((s) => s.kind === 2 && s.attributes['server.port'] === srv.port && s.attributes['url.path'] === '/hello').length;
    const c = {
      sent,
      spans,
      cpu_budget: sum(ms, 'telegen_ingest_shed_records_total', { reason: 'cpu_budget' }),
      paused_s: sum(ms, 'telegen_ingest_ring_paused_seconds_total', { reason: 'cpu_budget' }),
      memory_paused_s: sum(ms, 'telegen_ingest_ring_paused_seconds_total', { reason: 'memory' }),
      memory_skipped: sum(ms, 'telegen_ingest_shed_records_total', { reason: 'memory' }),
      collections: sum(ms, 'telegen_agent_memory_bound_collections_total'),
      export_backlog: sum(ms, 'telegen_ingest_shed_records_total', { reason: 'export_backlog' }),
      ring_full: sum(ms, 'telegen_bpf_ring_full_total', { tracer: 'socket' }),
      queue_dropped: sum(ms, 'telegen_export_dropped_total', { signal: 'traces' }),
      max_rss_mib: Math.round(maxRss / MiB),
      // Between scrapes too (the kernel's high-water mark), start-up included.
      peak_rss_mib: Math.round(sum(ms, 'telegen_process_max_rss_bytes') / MiB),
      max_trace_queue: maxQueue,
    };
    t.diagnostic(JSON.stringify(c));
    const log = agent.logs.join('');
    return { c, log };
  } finally {
    await srv.stop();
    if (agent.proc.exitCode === null) agent.proc.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A skipped record is one syscall's data: it costs at most the one exchange it belonged to, so
 *  every request without a span must be covered by a counted skip, ring drop or queue drop. */
function explained(c: { sent: number; spans: number; cpu_budget: number; export_backlog: number; memory_skipped: number; ring_full: number; queue_dropped: number }) {
  assert.ok(c.spans <= c.sent, 'never more spans than requests');
  const counted = c.cpu_budget + c.export_backlog + c.memory_skipped + c.ring_full + c.queue_dropped;
  assert.ok(c.sent - c.spans <= counted, `${c.sent - c.spans} requests without a span, only ${counted} drops counted`);
}

test('CPU budget: over agent.max_cpu_percent the agent pauses reading the ring (counted), every missing span is explained, RSS bounded', { timeout: 300_000 }, async (t) => {
  if (!requireBpf(t)) return;
  // 20% of a core: the idle agent uses ~2.5%, at 1k req/s 10-20%; this burst takes far more.
  const { c, log } = await burst(t, '  max_cpu_percent: 20\n', {});
  assert.ok(c.paused_s > 0, 'a burst over a 20% budget must pause the ring reader, and the time is counted');
  assert.equal(c.cpu_budget, 0, 'with a reader that can pause, nothing is skipped in user space');
  assert.ok(c.spans > 0, 'between pauses the agent still decodes');
  explained(c);
  assert.ok(c.max_rss_mib * MiB <= RSS_BURST_MAX, `RSS reached ${c.max_rss_mib} MiB during the burst`);
  assert.match(log, /agent overloaded: ring reading paused/, 'the first pause is logged');
  assert.match(log, /"ring_paused_s":\{[^}]*"cpu_budget":\d/, 'the paused time is in the overload report (at the latest when the agent stops)');
  assert.match(log, /"reason":"cpu_budget"/);
});

test('file exporter backlog: with the trace queue near its cap the agent skips records before building spans (counted), the queue stays under its cap', { timeout: 300_000 }, async (t) => {
  if (!requireBpf(t)) return;
  // A cap small enough that a burst fills it between two file writes.
  const cap = 256 * 1024;
  const { c } = await burst(t, '  shed_export_backlog_percent: 50\n', { TELEGEN_OTLP_TRACES_QUEUE_BYTES: String(cap) });
  assert.ok(c.export_backlog > 0, 'the queue passed half its cap: records must be skipped and counted');
  assert.equal(c.cpu_budget, 0, 'no CPU budget was set');
  assert.ok(c.max_trace_queue <= cap, `trace queue held ${c.max_trace_queue} bytes, over its cap of ${cap}`);
  explained(c);
});

test('memory bound: over agent.max_rss_mb the agent pauses reading the ring and collects (counted, logged), RSS stays under the bound, every missing span is explained', { timeout: 300_000 }, async (t) => {
  if (!requireBpf(t)) return;
  // The agent at rest uses 75-80 MiB, a burst of /hello without pausing peaked at 101 MiB here
  // (120-190 before the start-up and queue cuts: bench/README.md "Agent memory"); 800-byte queries
  // make every span (and the trace queue behind the file exporter) bigger, so this burst passes
  // 88% of the bound (96.8 MiB) surely. That stays above where a collection leaves the agent
  // after a burst (~95; a bound under that is raised: the next test), so the configured bound holds.
  const bound = 110;
  const { c, log } = await burst(t, `  max_rss_mb: ${bound}\n`, {}, 40_000, `?pad=${'x'.repeat(800)}`);
  assert.ok(c.memory_paused_s > 0, 'a burst past the bound must pause the ring reader, and the time is counted');
  assert.equal(c.memory_skipped, 0, 'with a reader that can pause, nothing is skipped in user space');
  assert.ok(c.collections > 0, 'paused for memory, the heap is collected');
  assert.ok(c.spans > 0, 'between pauses the agent still decodes');
  explained(c);
  // Traces go to the file exporter here, whose queue counts toward the bound (only OTLP queues do not).
  // The kernel's high-water mark, not only the scrapes: the bound's own collection once copied
  // the heap's survivors, RSS 127-132 MiB for ~0.1 s, which a 250 ms scrape caught one run in three.
  assert.ok(c.peak_rss_mib <= bound, `RSS reached ${c.peak_rss_mib} MiB (scraped max ${c.max_rss_mib}), over the ${bound} MiB bound`);
  assert.match(log, /"reason":"memory"/, 'the first pause for memory is logged');
  assert.match(log, /"ring_paused_s":\{[^}]*"memory":\d/, 'the paused time is in the overload report (at the latest when the agent stops)');
});

test('memory bound under what the agent needs: reading resumes after one collection, the raised mark is logged, tracing never stops', { timeout: 300_000 }, async (t) => {
  if (!requireBpf(t)) return;
  // 48 MiB: 88% of it is under node's own code and the agent's state at rest (75-90 MiB), so no
  // collection can get there. Before, the reader stayed paused for good (bench/README.md
  // "Memory bound": a 110 MiB bound did once after a burst).
  const bound = 48;
  const { c, log } = await burst(t, `  max_rss_mb: ${bound}\n`, {}, 5_000);
  assert.match(log, /memory bound under what the agent holds after a full collection/, 'the raised mark is logged');
  assert.ok(c.collections > 0, 'the pause ended with a collection');
  assert.ok(c.spans > 0, 'tracing went on after the pause');
  explained(c);
});

test('host CPU contended: the agent keeps agent.contended_cpu_percent (ring paused, counted, logged), the ring holds the burst, and once the budget is lifted (SIGHUP) every span arrives', { timeout: 300_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-contended-'));
  const srv = await startServer(process.execPath, [fixture, '0']);
  const cfg = path.join(dir, 'telegen.yaml');
  // 3% of a core: about what the agent's own background takes, so it barely reads while the host
  // is contended, whatever this machine's speed.
  const yaml = (percent: number) => `tracers:\n  profile:\n    enabled: false\n  socket:\n    target_pid: ${srv.proc.pid}\nagent:\n  contended_cpu_percent: ${percent}\n  max_rss_mb: 0\n`;
  fs.writeFileSync(cfg, yaml(3));
  const agent = await startAgent({ config: cfg });
  // A busy loop per CPU: the host is contended whatever its size.
  const hogs = os.cpus().map(() => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
  const stopHogs = () => { for (const h of hogs) if (h.exitCode === null && h.signalCode === null) h.kill('SIGKILL'); };
  try {
    await waitMetric(agent, (m) => sum(m, 'telegen_host_cpu_contended') === 1, 30_000, 'the host seen contended');
    const sent = 3000;
    const codes = await load(srv.port, sent, 32, { path: '/hello' });
    assert.equal(codes.filter((c) => c === 200).length, sent, 'the load generator got every answer');
    const during = await metrics(agent);
    const paused = sum(during, 'telegen_ingest_ring_paused_seconds_total', { reason: 'cpu_contention' });
    t.diagnostic(`during the burst: paused ${paused} s, records ${sum(during, 'telegen_bpf_records_total', { tracer: 'socket' })} of ${sum(during, 'telegen_bpf_events_total', { tracer: 'socket' })} committed`);
    assert.ok(paused > 0, 'over its contention budget the agent pauses the ring reader, and the time is counted');
    assert.equal(sum(during, 'telegen_ingest_shed_records_total', { reason: 'cpu_contention' }), 0, 'a reader that can pause skips nothing');
    stopHogs();
    // The host stays contended as long as anything else keeps it busy (a shared CI machine): the
    // operator's way out is to lift the budget live. That a free host ends it by itself is in
    // test/host/overload.test.ts, with the host's CPU given.
    fs.writeFileSync(cfg, yaml(0));
    agent.proc.kill('SIGHUP');
    await waitMetric(agent, (m) => sum(m, 'telegen_config_reloads_total', { result: 'applied' }) >= 1, 30_000, 'the reload applied');
    const committed = sum(await metrics(agent), 'telegen_bpf_events_total', { tracer: 'socket' });
    const ms = await waitMetric(agent, (m) => sum(m, 'telegen_bpf_records_total', { tracer: 'socket' }) >= committed, 120_000, `reader past the ${committed} committed records`);
    assert.equal(sum(ms, 'telegen_bpf_ring_full_total', { tracer: 'socket' }), 0, 'the 16 MB ring held the burst');
    assert.equal(await agent.stop(), 0);
    const spans = agent.spans().filter((s) => s.kind === 2 && s.attributes['server.port'] === srv.port && s.attributes['url.path'] === '/hello').length;
    assert.equal(spans, sent, 'every request has its span, late by the contention');
    const log = agent.logs.join('');
    assert.match(log, /"reason":"cpu_contention","contended_cpu_percent":3/, 'the first pause is logged with the budget');
  } finally {
    stopHogs();
    await srv.stop();
    if (agent.proc.exitCode === null) agent.proc.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
