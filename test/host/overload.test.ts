// The overload gate's decision (host/src/memory/overload.ts) apart from its timer; the real agent
// under a burst: test/faults/shed.test.ts.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { overloadSchema, shedDecision, SHED_REASONS } from '../../host/src/memory/overload';
import { parseConfig } from '../../host/src/config';

const CPU = SHED_REASONS.indexOf('cpu_budget');
const BACKLOG = SHED_REASONS.indexOf('export_backlog');

test('defaults: no CPU budget, the file trace queue sheds above 90% of its cap', () => {
  const cfg = parseConfig({}).agent;
  assert.deepEqual(cfg, { max_cpu_percent: 0, shed_export_backlog_percent: 90 });
  // With no budget, any CPU use is fine.
  assert.equal(shedDecision(cfg, 2_000_000, 1000, undefined, false), -1);
  assert.throws(() => parseConfig({ agent: { max_cpu_pct: 5 } }), /agent: unknown key/);
});

test('CPU budget: shed while the last window used more than max_cpu_percent of a core', () => {
  const cfg = overloadSchema.parse({ max_cpu_percent: 20 });
  assert.equal(shedDecision(cfg, 150_000, 1000, undefined, false), -1, '15% of a core over 1 s');
  assert.equal(shedDecision(cfg, 250_000, 1000, undefined, false), CPU, '25%');
  assert.equal(shedDecision(cfg, 250_000, 2000, undefined, false), -1, '12.5% over a longer window');
});

test('export backlog: on above the mark, off only under half of it', () => {
  const cfg = overloadSchema.parse({ shed_export_backlog_percent: 80 });
  const fill = (heldBytes: number) => ({ heldBytes, capBytes: 1000 });
  assert.equal(shedDecision(cfg, 0, 1000, fill(790), false), -1);
  assert.equal(shedDecision(cfg, 0, 1000, fill(810), false), BACKLOG);
  assert.equal(shedDecision(cfg, 0, 1000, fill(500), true), BACKLOG, 'still shedding between the marks');
  assert.equal(shedDecision(cfg, 0, 1000, fill(390), true), -1);
  assert.equal(shedDecision(overloadSchema.parse({ shed_export_backlog_percent: 0 }), 0, 1000, fill(1000), true), -1, '0 = never');
  // A backlog wins over the budget: it names the cause an operator can act on.
  assert.equal(shedDecision(overloadSchema.parse({ max_cpu_percent: 10, shed_export_backlog_percent: 80 }), 900_000, 1000, fill(900), false), BACKLOG);
});
