// What a user sees of the agent's losses: /api/status `drops` and the page's header. Before, the
// ring-full, shed and export-drop counters were only in /metrics (one row among ~300 on the page).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as net from 'net';
import { SelfMetrics } from '../../host/src/metrics/self';
import { dropSummary } from '../../host/src/api/drops';
import { requireBpf, startAgent, waitFor } from '../helpers/agent';

test('drops: the loss counters of /metrics with a value, by metric and labels; other counters and zeros are not losses', () => {
  const m = new SelfMetrics();
  m.inc('telegen_bpf_ring_full_total', 'ring full', { tracer: 'socket' }, 7);
  m.inc('telegen_bpf_tls_ring_full_total', 'ring full', { tracer: 'tls' }, 0);
  m.inc('telegen_export_dropped_total', 'dropped', { signal: 'traces', reason: 'queue_full' }, 2);
  m.inc('telegen_ingest_shed_records_total', 'shed', { reason: 'cpu_budget' }, 5);
  m.inc('telegen_spans_total', 'spans', { kind: 'server' }, 1000);
  const d = dropSummary(m.render());
  assert.equal(d.total, 14);
  assert.deepEqual(d.nonzero.map((x) => [x.metric, x.labels, x.value]).sort(), [
    ['telegen_bpf_ring_full_total', { tracer: 'socket' }, 7],
    ['telegen_export_dropped_total', { reason: 'queue_full', signal: 'traces' }, 2],
    ['telegen_ingest_shed_records_total', { reason: 'cpu_budget' }, 5],
  ].sort());
});

test('a running agent: /api/status says what was lost, and the page header says it too', { timeout: 180_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const agent = await startAgent();
  try {
    const st = await (await agent.api('/api/status')).json() as { drops?: { total: number; nonzero: unknown[] } };
    assert.ok(st.drops, 'status has drops');
    assert.equal(typeof st.drops.total, 'number');
    assert.ok(Array.isArray(st.drops.nonzero));
    // A typo in /api/traces' parameters is a 400 naming it (it answered as if there were no traffic).
    for (const [q, re] of [['limit=abc', /^limit must be a whole number from 1/], ['limit=0', /^limit must be/], ['edge=curl', /^edge must be CLIENT->SERVER/]] as const) {
      const r = await agent.api(`/api/traces?${q}`);
      assert.equal(r.status, 400, q);
      assert.match(((await r.json()) as { error: string }).error, re, q);
    }
    assert.equal((await agent.api('/api/traces?limit=3&edge=a->b')).status, 200);
    if (!fs.existsSync('/usr/bin/chromium')) {
      if (process.env.CI === 'true') throw new Error('chromium not installed (scripts/setup.sh)');
      t.diagnostic('chromium not installed: page check skipped');
      return;
    }
    const { chromium } = require('playwright-core') as typeof import('playwright-core');
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
    try {
      const page = await browser.newPage();
      // The page loads with no failed request in its console (the browser's /favicon.ico was a 404).
      const consoleErrors: string[] = [];
      page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
      await page.goto(`http://127.0.0.1:${agent.apiPort}/`);
      const drops = page.locator('#drops');
      await drops.filter({ hasText: /nothing lost|lost: / }).waitFor({ timeout: 30_000 });
      const text = (await drops.textContent()) ?? '';
      // What the page says matches the status it read: nothing, or every lost counter by name.
      const now = await (await agent.api('/api/status')).json() as { drops: { total: number } };
      if (now.drops.total === 0 && /nothing lost/.test(text)) assert.equal(await drops.getAttribute('class'), 'ok');
      else assert.match(text, /^lost: \w+/);
      assert.deepEqual(consoleErrors, []);
      assert.equal((await agent.api('/favicon.ico')).status, 204);
    } finally { await browser.close(); }
  } finally {
    assert.equal(await agent.stop(), 0);
  }
});

test('a running agent: the discovery row of /api/status counts listening sockets as they are now, not at start', { timeout: 180_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const agent = await startAgent();
  const servers: net.Server[] = [];
  try {
    const sockets = async () => {
      const st = await (await agent.api('/api/status')).json() as { tracers: Array<{ name: string; detail: string }> };
      return Number(/(\d+) listening sockets/.exec(st.tracers.find((x) => x.name === 'discovery')!.detail)![1]);
    };
    const before = await sockets();
    // Five new listeners: other tests' servers may close meanwhile, but not five of them at once.
    for (let i = 0; i < 5; i++) {
      const s = net.createServer();
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
      servers.push(s);
    }
    const after = await waitFor(async () => ((await sockets()) >= before + 5 ? sockets() : undefined), 60_000).catch(() => sockets());
    assert.ok(after >= before + 5, `listening sockets ${before} at first, ${after} after 5 more listeners`);
  } finally {
    for (const s of servers) s.close();
    assert.equal(await agent.stop(), 0);
  }
});
