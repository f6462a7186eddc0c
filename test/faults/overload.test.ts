// Overload faults: a ring buffer too small for the traffic (drops counted exactly, nothing lost
// without a count) and a full disk under the file exporter (agent stays up, failures counted,
// recovers when space returns).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { repoRoot } from '../helpers/decoder';
import { requireBpf, startAgent, startServer, readRotatedSpans } from '../helpers/agent';
import { load, metrics, sum, waitMetric, Metrics, faultConfig } from './helpers';

const fixture = path.join(repoRoot, 'test', 'fixtures', 'http-server.js');

test('ring buffer overload: drops are counted (ring_full), every committed record is consumed, spans = requests - lost', { timeout: 240_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-ring-'));
  const cfg = path.join(dir, 'telegen.yaml');
  fs.writeFileSync(cfg, 'tracers:\n  profile:\n    enabled: false\n  socket:\n    ring_bytes: 65536\n'); // the smallest ring the schema allows
  const agent = await startAgent({ config: cfg, env: { TELEGEN_OTLP_FLUSH_INTERVAL_MS: '200' } });
  const srv = await startServer(process.execPath, [fixture, '0']);
  try {
    // 16 KiB bodies both ways: ~4 records fill the ring, so concurrent requests overrun it.
    const body = Buffer.alloc(16 * 1024, 'a');
    const sent = 400;
    const codes = await load(srv.port, sent, 32, { path: '/echo', method: 'POST', body });
    assert.equal(codes.filter((c) => c === 201).length, sent, 'the load generator got every answer');
    // Every record the kernel committed by now is consumed: the reader's count (records handed
    // to JS) catches up with the kernel's count (events) as it stands after the load. The rest of
    // the machine keeps tracing meanwhile, so the two are never equal at one instant; the
    // reader only has to pass this mark. (TLS records share the ring but not this counter, so
    // records may run ahead of events, never behind.)
    const committed = sum(await metrics(agent), 'telegen_bpf_events_total', { tracer: 'socket' });
    const ms = await waitMetric(agent, (m: Metrics) => sum(m, 'telegen_bpf_records_total', { tracer: 'socket' }) >= committed, 60_000, `reader past the ${committed} committed records`);
    const ringFull = sum(ms, 'telegen_bpf_ring_full_total', { tracer: 'socket' });
    assert.equal(await agent.stop(), 0);
    const arrived = agent.spans().filter((s) => s.attributes['server.port'] === srv.port && s.kind === 2 && s.attributes['url.path'] === '/echo').length;
    t.diagnostic(`sent ${sent}, spans ${arrived}, ring_full ${ringFull}, events ${sum(ms, 'telegen_bpf_events_total', { tracer: 'socket' })}`);
    assert.ok(ringFull > 0, 'a 64 KiB ring under 400 x 16 KiB exchanges must overflow and count it');
    assert.ok(arrived <= sent, 'never more spans than requests');
    // Every missing span is explained by counted ring drops: a request whose records were all
    // consumed produces its span, so missing > 0 requires ring_full > 0 (and at most one lost
    // exchange per dropped record).
    assert.ok(sent - arrived <= ringFull, `missing ${sent - arrived} spans but only ${ringFull} ring drops counted`);
  } finally {
    await srv.stop();
    if (agent.proc.exitCode === null) agent.proc.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('disk full under the file exporter: agent stays up, failures counted, writes resume when space returns', { timeout: 240_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', mnt]);
  let agent: Awaited<ReturnType<typeof startAgent>> | undefined;
  const srv = await startServer(process.execPath, [fixture, '0']);
  try {
    // startAgent makes its data dir under os.tmpdir(): point that at the tiny tmpfs for the start.
    const tmp = process.env.TMPDIR;
    process.env.TMPDIR = mnt;
    try { agent = await startAgent({ config: faultConfig(os.tmpdir()) }); } finally { if (tmp === undefined) delete process.env.TMPDIR; else process.env.TMPDIR = tmp; }
    assert.ok(agent.dataDir.startsWith(mnt));
    const filler = path.join(mnt, 'filler');
    const fd = fs.openSync(filler, 'w');
    try { for (;;) fs.writeSync(fd, Buffer.alloc(4096)); } catch (e) { assert.equal((e as NodeJS.ErrnoException).code, 'ENOSPC'); }
    fs.closeSync(fd);
    await load(srv.port, 50, 4, { path: '/users/9' });
    const ms = await waitMetric(agent, (m) => sum(m, 'telegen_export_failures_total', { signal: 'traces' }) + sum(m, 'telegen_export_dropped_total', { signal: 'traces', reason: 'export_failed' }) > 0, 90_000, 'a failed trace write counted');
    assert.ok(ms.length > 0);
    assert.equal(agent.proc.exitCode, null, 'the agent survives ENOSPC');
    assert.ok((await agent.api('/readyz')).ok);
    fs.rmSync(filler);
    await load(srv.port, 10, 2, { path: '/users/10' });
    const file = path.join(agent!.dataDir, 'traces.jsonl');
    const got = () => readRotatedSpans(file).filter((s) => s.kind === 2 && s.attributes['server.port'] === srv.port && s.attributes['url.path'] === '/users/10').length;
    for (let i = 0; i < 120 && got() < 10; i++) await new Promise((r) => setTimeout(r, 500));
    assert.equal(got(), 10, 'spans written again once space returned');
  } finally {
    await srv.stop();
    if (agent && agent.proc.exitCode === null) await agent.stop();
    execFileSync('umount', [mnt]);
    fs.rmSync(mnt, { recursive: true, force: true });
  }
});
