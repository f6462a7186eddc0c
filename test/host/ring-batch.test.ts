// tracers.socket.max_batch on the real agent: under a real burst (3000 unpaced keep-alive requests from a real client) no ring handler
// call gets more records than the setting, and what the calls hand over still becomes spans.
// With max_batch 1 every call holds exactly one record, so the agent's own counters must agree:
// telegen_bpf_records_total == telegen_bpf_batches_total. Without the setting wired, a burst's
// calls carry up to 4096 records each (many per call even at a few hundred requests a second).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { repoRoot } from '../helpers/decoder';
import { requireBpf, startAgent, startServer } from '../helpers/agent';
import { load, sum, waitMetric } from '../faults/helpers';

const fixture = path.join(repoRoot, 'test', 'fixtures', 'http-server.js');
const SERVER = 2;

test('max_batch 1: each ring handler call gets one record under a burst, and spans are still made', { timeout: 240_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-batch-'));
  const srv = await startServer(process.execPath, [fixture, '0']);
  const cfg = path.join(dir, 'telegen.yaml');
  // No contention budget: on a busy host it pauses the reader and sheds records
  // (telegen_ingest_shed_records_total{reason="cpu_contention"}), which is not what is tested here.
  fs.writeFileSync(cfg, `agent:\n  contended_cpu_percent: 0\ntracers:\n  profile:\n    enabled: false\n  socket:\n    target_pid: ${srv.proc.pid}\n    max_batch: 1\n`);
  const agent = await startAgent({ config: cfg });
  try {
    // Unpaced keep-alive requests, few enough (~1.5 MB of ring records) that the 16 MiB ring holds
    // them all even while the agent's CPU budget keeps the reader paused.
    const requests = 3000;
    const codes = await load(srv.port, requests, 16, { path: '/hello' });
    assert.equal(codes.filter((c) => c === 200).length, requests);
    const ms = await waitMetric(agent, (m) => sum(m, 'telegen_spans_total', { kind: 'server' }) >= requests, 120_000, 'a server span per request').catch(async (e) => {
      // CI17 (tests in parallel) timed out here once, without saying what was lost: say it
      const m = (await (await agent.api('/metrics')).text()).split('\n')
        .filter((l) => /^telegen_(spans_total|bpf_(records|batches|ring_full|events)_total|ingest_|connections_unparsed|ring_paused|overload)/.test(l));
      t.diagnostic(`${m.join('; ')}\nagent log: ${agent.logs.slice(-20).join('\n')}`);
      throw e;
    });
    const records = sum(ms, 'telegen_bpf_records_total', { tracer: 'socket' });
    const batches = sum(ms, 'telegen_bpf_batches_total', { tracer: 'socket' });
    t.diagnostic(`${requests} requests; ring records ${records} in ${batches} handler calls; ${sum(ms, 'telegen_spans_total', { kind: 'server' })} server spans; ring_full ${sum(ms, 'telegen_bpf_ring_full_total', { tracer: 'socket' })}`);
    assert.ok(records > 1000, `only ${records} ring records were read: the burst did not reach the reader`);
    assert.equal(records, batches, `${records} records in ${batches} handler calls: some call got more than max_batch (1)`);
    assert.equal(await agent.stop(), 0);
    // One record per call still decodes: the request and its response came in separate calls.
    const hello = agent.spans().filter((x) => x.kind === SERVER && x.attributes['url.path'] === '/hello' && x.attributes['http.response.status_code'] === 200);
    assert.equal(hello.length, requests, 'server spans of GET /hello with status 200');
  } finally {
    await agent.stop();
    await srv.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
