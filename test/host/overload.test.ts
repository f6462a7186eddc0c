// The overload gate's decisions (host/src/memory/overload.ts) apart from its timer; the real agent
// under a burst: test/faults/shed.test.ts.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { backlogShedding, Contention, CONTENDED_AT, CpuBudget, GateCadence, hostCpuReader, JUDGE_MS, MemoryBound, overloadSchema, parseCpuLine, PAUSE_AT, QUIET_TICKS, RESUME_AT, SETTLE_MS, startOverloadGate, UNCONTENDED_AT } from '../../host/src/memory/overload';
import { SelfMetrics } from '../../host/src/metrics/self';
import { parseConfig } from '../../host/src/config';

test('defaults: no CPU budget, 10% of a core while the host CPU is contended, a 128 MiB memory bound, the file trace queue sheds above 90% of its cap', () => {
  const cfg = parseConfig({}).agent;
  assert.deepEqual(cfg, { max_cpu_percent: 0, contended_cpu_percent: 10, max_rss_mb: 128, shed_export_backlog_percent: 90 });
  assert.throws(() => parseConfig({ agent: { max_cpu_pct: 5 } }), /agent: unknown key/);
  assert.throws(() => parseConfig({ agent: { max_rss_mb: -1 } }), /agent\.max_rss_mb/);
});

test('CPU budget: kept on average, the debt of a busy stretch paid back by pausing', () => {
  const b = new CpuBudget(25);
  // Under budget: never paused, and the credit a quiet agent banks is small (100 ms of budget).
  for (let i = 0; i < 100; i++) assert.equal(b.charge(5_000, 50), false);
  assert.equal(b.balance, 25_000);
  // A resumed reader drains the ring at a full core for a tick: paused until paid back.
  let pausedTicks = 0;
  assert.equal(b.charge(50_000, 50), true, 'the banked 25 ms do not cover 37.5 over budget');
  assert.equal(b.charge(50_000, 50), true);
  while (b.charge(2_000, 50)) pausedTicks++;
  // A debt of 50 ms of CPU at 10.5 ms of credit per paused tick: 4 more ticks paused.
  assert.equal(pausedTicks, 4);
  // Duty cycle at saturation: a full core while reading, 2% while paused: the average is the budget.
  const c = new CpuBudget(25);
  let used = 0;
  let paused = false;
  for (let i = 0; i < 2000; i++) { const u = paused ? 1_000 : 50_000; used += u; paused = c.charge(u, 50); }
  const share = used / (2000 * 50 * 1000);
  assert.ok(Math.abs(share - 0.25) < 0.01, `used ${(share * 100).toFixed(1)}% of a core for a 25% budget`);
  // The debt is bounded: work that goes on while paused (export) does not keep it paused for long after.
  const d = new CpuBudget(25);
  for (let i = 0; i < 200; i++) d.charge(50_000, 50);
  let ticks = 0;
  while (d.charge(0, 50)) ticks++;
  assert.ok(ticks <= 20, `resumed ${ticks} ticks after the load stopped`);
});

test('memory bound: pauses near the bound, collects once after the settle time, judges the collection a moment later (not its transient), resumes well under it', () => {
  const max = 100 * 2 ** 20;
  const m = new MemoryBound(max);
  assert.equal(m.step(max * PAUSE_AT - 1, 0), false);
  assert.equal(m.paused, false);
  assert.equal(m.step(max * PAUSE_AT + 1, 100), false, 'no collection the moment it pauses');
  assert.equal(m.paused, true);
  assert.equal(m.step(max, 100 + SETTLE_MS - 1), false);
  assert.equal(m.step(max, 100 + SETTLE_MS), true, 'a collection once the in-flight spans had time to leave');
  m.collected(100 + SETTLE_MS + 300);
  // Read as the collection returns, RSS still holds the pages it moved out of (V8 unmaps them in
  // the background): neither resumed nor judged yet, and no second collection.
  assert.equal(m.step(max * 1.2, 100 + SETTLE_MS + 300), false);
  assert.equal(m.step(max * 1.2, 100 + SETTLE_MS + 300 + JUDGE_MS - 1), false);
  assert.equal(m.paused, true);
  assert.equal(m.raised, 0, 'the transient right after the collection does not raise the mark');
  // A judge time later the collection got it under the pause mark: reading resumes, what is left is live.
  assert.equal(m.step(max * PAUSE_AT, 100 + SETTLE_MS + 300 + JUDGE_MS), false);
  assert.equal(m.paused, false);
  assert.equal(m.raised, 0);
  assert.equal(m.mark, max * PAUSE_AT);
  // Under the resume mark while paused (spans left on their own): resumes without a collection.
  m.step(max, 200_000);
  assert.equal(m.paused, true);
  assert.equal(m.step(max * RESUME_AT - 1, 200_001), false);
  assert.equal(m.paused, false);
});

test('memory bound under what the agent holds: the pause ends after one collection and the mark rises, never paused for good', () => {
  const max = 100 * 2 ** 20;
  const m = new MemoryBound(max);
  const live = max * 0.95; // more than the pause mark survives a full collection
  m.step(live, 0);
  assert.equal(m.paused, true);
  assert.equal(m.step(live, SETTLE_MS), true);
  m.collected(SETTLE_MS);
  assert.equal(m.step(live, SETTLE_MS + JUDGE_MS), false, 'one collection only');
  assert.equal(m.paused, false, 'reading resumes although the collection could not get under the mark');
  assert.equal(m.raised, live);
  assert.equal(m.mark, live + max * (PAUSE_AT - RESUME_AT));
  // Staying at the live size, or growing less than the gap between the marks, does not pause again.
  for (let t = SETTLE_MS + 50; t < 60_000; t += 50) assert.equal(m.step(live + max * 0.05, t), false);
  assert.equal(m.paused, false);
  // Growth beyond it pauses again, for one settle time and one collection.
  m.step(m.mark + 1, 60_000);
  assert.equal(m.paused, true);
  assert.equal(m.step(max * 1.1, 60_000 + SETTLE_MS), true);
  m.collected(60_000 + SETTLE_MS);
  m.step(max * 1.1, 60_000 + SETTLE_MS + JUDGE_MS);
  assert.equal(m.paused, false);
  assert.equal(m.raised, max * 1.1);
  // Once the agent is back under the resume mark, the configured marks apply again.
  m.step(max * RESUME_AT - 1, 70_000);
  assert.equal(m.raised, 0);
  assert.equal(m.mark, max * PAUSE_AT);
  m.step(max * PAUSE_AT + 1, 70_050);
  assert.equal(m.paused, true);
});

test('export backlog: on above the mark, off only under half of it', () => {
  const cfg = overloadSchema.parse({ shed_export_backlog_percent: 80 });
  const fill = (heldBytes: number) => ({ heldBytes, capBytes: 1000 });
  assert.equal(backlogShedding(cfg, fill(790), false), false);
  assert.equal(backlogShedding(cfg, fill(810), false), true);
  assert.equal(backlogShedding(cfg, fill(500), true), true, 'still shedding between the marks');
  assert.equal(backlogShedding(cfg, fill(390), true), false);
  assert.equal(backlogShedding(overloadSchema.parse({ shed_export_backlog_percent: 0 }), fill(1000), true), false, '0 = never');
  assert.equal(backlogShedding(cfg, undefined, true), false, 'OTLP export: never');
});

test('gate cadence: fast ticks while records are read or the ring is held, slow after QUIET_TICKS quiet ones, fast again at the next batch; always fast with a CPU budget', () => {
  const c = new GateCadence(false);
  assert.equal(c.fast, true, 'starts fast');
  for (let i = 0; i < 100; i++) { assert.equal(c.onRead(), false, 'already fast'); assert.equal(c.afterFastTick(false), true); }
  for (let i = 1; i < QUIET_TICKS; i++) assert.equal(c.afterFastTick(false), true, `quiet tick ${i}`);
  assert.equal(c.afterFastTick(false), false, 'slow after QUIET_TICKS ticks with nothing read');
  assert.equal(c.fast, false);
  assert.equal(c.onRead(), true, 'the first batch brings the fast ticks back');
  assert.equal(c.onRead(), false);
  // Paused or shedding with nothing read (the ring is not read while paused): stays fast.
  for (let i = 0; i < 3 * QUIET_TICKS; i++) assert.equal(c.afterFastTick(true), true);
  const b = new CpuBudget(25);
  const withBudget = new GateCadence(b.percent > 0);
  for (let i = 0; i < 3 * QUIET_TICKS; i++) assert.equal(withBudget.afterFastTick(false), true, 'a budget is charged every fast tick');
});

test('host CPU line: busy and total jiffies from /proc/stat\'s first line (idle and iowait are not busy)', () => {
  const out = new Float64Array(2);
  const line = Buffer.from('cpu  3636834 21634 1591881 8357400 12559 0 96000 7 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n');
  assert.equal(parseCpuLine(line, line.length, out), true);
  const total = 3636834 + 21634 + 1591881 + 8357400 + 12559 + 0 + 96000 + 7;
  assert.deepEqual([...out], [total - 8357400 - 12559, total]);
  assert.equal(parseCpuLine(Buffer.from('intr 1 2 3'), 10, out), false);
  assert.equal(parseCpuLine(line, 12, out), false, 'a cut line is no reading');
  // The real file, read twice through one descriptor: counts only grow.
  const read = hostCpuReader();
  assert.ok(read, '/proc/stat is readable');
  const a = new Float64Array(2);
  const b = new Float64Array(2);
  assert.equal(read(a), true);
  for (let x = 0, i = 0; i < 3e6; i++) x += i; // some CPU between the reads
  assert.equal(read(b), true);
  assert.ok(a[1] > 0 && a[0] <= a[1] && b[1] >= a[1] && b[0] >= a[0], `${a} then ${b}`);
  assert.equal(hostCpuReader('/nonexistent/stat'), undefined);
});

test('host CPU contention: what everything but the agent uses, with hysteresis', () => {
  const c = new Contention();
  // 2 CPUs, 1 s = 200 jiffies a step. The first step only sets the baseline.
  let busy = 0, total = 0, agent = 0;
  const step = (busyShare: number, agentCores: number) => {
    total += 200;
    busy += Math.round(busyShare * 200);
    agent += agentCores * 1e6;
    return c.step(busy, total, agent);
  };
  assert.equal(step(0.1, 0), false);
  // Busy 70% of the machine, but the agent itself is 0.6 of a core of it: others 40%.
  assert.equal(step(0.7, 0.6), false);
  assert.equal(c.othersShare.toFixed(2), '0.40');
  // A saturated service: others at 85%.
  assert.equal(step(0.95, 0.2), true);
  assert.ok(c.othersShare >= CONTENDED_AT);
  // Once contended, it stays so until others are under UNCONTENDED_AT (the agent's pauses move it).
  assert.equal(step(0.6, 0.1), true, '55% of others: still contended');
  assert.equal(step(0.5, 0.1), false, `45%: under ${UNCONTENDED_AT}`);
  assert.equal(step(0.58, 0), false, `58%: not yet ${CONTENDED_AT} again`);
  // A step with no time passed changes nothing.
  assert.equal(c.step(busy, total, agent), false);
});

test('gate: a contended host gives the agent its contention budget (ring paused over it, counted), a free host takes it away', async () => {
  // A host that reports 95% busy from the first window on, then 10%; the agent's own CPU is
  // this process's (burnt below, far over 5% of a core).
  let busyShare = 0.95;
  let busy = 0, total = 0;
  const hostCpu = (out: Float64Array) => { total += 200; busy += busyShare * 200; out[0] = busy; out[1] = total; return true; };
  const pauses: boolean[] = [];
  const target = { shedReason: -1, shedRecords: new Float64Array(4) };
  const metrics = new SelfMetrics();
  const logs: string[] = [];
  const gate = startOverloadGate(overloadSchema.parse({ contended_cpu_percent: 5, max_rss_mb: 0 }), target, metrics,
    { warn: (o, msg) => logs.push(JSON.stringify(o) + msg) }, { pauseRing: (p) => pauses.push(p), hostCpu });
  assert.ok(gate);
  const burn = (ms: number) => { const end = performance.now() + ms; while (performance.now() < end); };
  const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
  try {
    // First read sets the baseline, the next (≥ CONTENTION_ENTER_WINDOW_MS later) finds the host
    // contended. Each turn takes at least 100 ms, so a host read once a second could not be seen
    // contended in under 10 turns.
    let turns = 0;
    for (; turns < 30 && !pauses.includes(true); turns++) { burn(40); await wait(60); }
    assert.ok(pauses.includes(true), 'over 5% of a core on a contended host: the ring is paused');
    assert.ok(turns < 10, `contention seen within a second of reading (${turns} turns of ≥100 ms)`);
    let text = metrics.render();
    assert.match(text, /^telegen_host_cpu_contended 1$/m);
    assert.match(text, /^telegen_ingest_shedding\{reason="cpu_contention"\} 1$/m);
    assert.match(logs.join('\n'), /"reason":"cpu_contention","contended_cpu_percent":5,"host_cpu_other_utilization":0\.\d+/);
    assert.equal(target.shedReason, -1, 'a reader that pauses skips nothing');
    // The host frees up: the budget goes at the next window and reading resumes.
    busyShare = 0.1;
    for (let i = 0; i < 40 && /^telegen_host_cpu_contended 1$/m.test(metrics.render()); i++) { burn(40); await wait(60); }
    text = metrics.render();
    assert.match(text, /^telegen_host_cpu_contended 0$/m);
    // Burning on: no budget now, so the ring is not paused again.
    const n = pauses.length;
    for (let i = 0; i < 5; i++) { burn(40); await wait(60); }
    assert.equal(pauses[pauses.length - 1], false, 'a free host: reading resumes');
    assert.equal(pauses.length, n, 'and stays on');
    const paused = Number(/^telegen_ingest_ring_paused_seconds_total\{reason="cpu_contention"\} (\S+)$/m.exec(text)?.[1]);
    assert.ok(paused > 0, `paused time counted: ${paused}`);
    assert.ok(Number(/^telegen_host_cpu_contended_seconds_total (\S+)$/m.exec(text)?.[1]) >= 0.9);
  } finally {
    gate!.stop();
  }
});

test('a CPU budget pauses a resumed reader only after it took resumeMinRecords records: what the kernel writes between pauses stays whole exchanges', async () => {
  let read = 0;
  const pauses: Array<{ paused: boolean; read: number }> = [];
  const target: { shedReason: number; shedRecords: Float64Array; onRead?: (records: number) => void } = { shedReason: -1, shedRecords: new Float64Array(4) };
  const gate = startOverloadGate(overloadSchema.parse({ max_cpu_percent: 50, contended_cpu_percent: 0, max_rss_mb: 0 }), target, new SelfMetrics(),
    { warn: () => undefined }, { pauseRing: (p) => pauses.push({ paused: p, read }), hostCpu: null, resumeMinRecords: 500 });
  assert.ok(gate);
  const burn = (ms: number) => { const end = performance.now() + ms; while (performance.now() < end); };
  const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const paused = () => pauses.length > 0 && pauses[pauses.length - 1].paused;
  try {
    // A reader at a full core, 10 records a 10 ms batch, until it was paused, resumed and paused again twice.
    for (let i = 0; i < 3000 && pauses.filter((p) => p.paused).length < 3; i++) {
      if (!paused()) { burn(10); read += 10; target.onRead!(10); assert.equal(target.shedReason, -1, 'nothing skipped while the pause waits'); }
      await wait(2);
    }
    assert.equal(pauses.filter((p) => p.paused).length, 3, `paused ${pauses.filter((p) => p.paused).length} times`);
    const runs = pauses.flatMap((p, i) => (p.paused && i > 0 && !pauses[i - 1].paused ? [p.read - pauses[i - 1].read] : []));
    assert.equal(runs.length, 2);
    for (const r of runs) assert.ok(r >= 500, `paused again after ${r} records read since the resume`);
  } finally {
    gate!.stop();
  }
});
