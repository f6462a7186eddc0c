// Joining drained CPU samples to server spans by thread and time, and the process table's
// pid-reuse check: host logic on its own (the agent test drives both with real programs).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ThreadSpans, joinSamples } from '../../host/src/profile/links';
import { RawDrain } from '../../host/src/profile/model';
import { ProcessTable } from '../../host/src/profile/process';

/** A drain of keys [pid, tid] with counts, and sample-time records (key index, time). */
function drain(keys: Array<[number, number, number]>, recs: Array<[number, bigint]>): RawDrain {
  const k = new Int32Array(keys.length * 4);
  keys.forEach(([pid, tid], i) => { k[i * 4] = pid; k[i * 4 + 1] = tid; k[i * 4 + 2] = -14; k[i * 4 + 3] = -14; });
  return {
    n: keys.length, keys: k, counts: Float64Array.from(keys.map((x) => x[2])), comms: keys.map(() => 'app'),
    stackIds: new Int32Array(0), stackOffsets: Uint32Array.of(0), frames: new BigUint64Array(0),
    recKeys: Uint32Array.from(recs.map((r) => r[0])), recTimes: BigUint64Array.from(recs.map((r) => r[1])),
  };
}

test('samples link to the one server span of their pid and thread covering their time', () => {
  const spans = new ThreadSpans();
  const a = { traceId: 'a'.repeat(32), spanId: 'a'.repeat(16) };
  const b = { traceId: 'b'.repeat(32), spanId: 'b'.repeat(16) };
  spans.add(10, 11, 100n, 200n, a);
  spans.add(10, 12, 150n, 300n, b);
  // Clock offset: kernel time - 1000 = epoch.
  const toEpoch = (t: bigint) => t - 1000n;
  const d = drain([[10, 11, 3], [10, 12, 2], [10, 13, 1], [20, 11, 1]], [
    [0, 1100n], [0, 1150n], [0, 1300n], // thread 11: two inside a, one after it
    [1, 1100n], [1, 1200n],            // thread 12: one before b, one inside
    [2, 1150n],                        // thread 13: no span of its own, though a and b are in flight in the pid
    [3, 1150n],                        // another pid, same tid number
  ]);
  const { links, counts } = joinSamples(d, spans, toEpoch);
  assert.deepEqual(links[0], [[a, 2]]);
  assert.deepEqual(links[1], [[b, 1]]);
  assert.equal(links[2], undefined);
  assert.equal(links[3], undefined);
  assert.deepEqual(counts, { linked: 3, ambiguous: 0, unlinked: 4 });
});

test('two spans of one thread covering a sample (an event loop with requests interleaved) leave it unlinked', () => {
  const spans = new ThreadSpans();
  spans.add(10, 10, 100n, 400n, { traceId: '1'.repeat(32), spanId: '1'.repeat(16) });
  spans.add(10, 10, 200n, 300n, { traceId: '2'.repeat(32), spanId: '2'.repeat(16) });
  const { links, counts } = joinSamples(drain([[10, 10, 2]], [[0, 250n], [0, 350n]]), spans, (t) => t);
  assert.deepEqual(links[0]!.map(([l, n]) => [l.spanId[0], n]), [['1', 1]]);
  assert.deepEqual(counts, { linked: 1, ambiguous: 1, unlinked: 1 });
  // Never more linked than the kernel counted for the key.
  const over = joinSamples(drain([[10, 10, 1]], [[0, 350n], [0, 360n]]), spans, (t) => t);
  assert.deepEqual(over.counts, { linked: 1, ambiguous: 0, unlinked: 0 });
  // Pruned spans no longer match.
  spans.prune(450n);
  assert.equal(spans.size, 0);
  assert.equal(spans.find(10, 10, 350n), undefined);
});

test('process table: a reused pid (another start time) is read again, an exited one keeps its name', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-proc-'));
  const proc = (pid: number, start: number, service: string) => {
    const d = path.join(root, String(pid));
    fs.mkdirSync(d, { recursive: true });
    // Field 2 may hold spaces and parentheses; field 22 is the start time.
    const after = ['S', ...Array.from({ length: 18 }, (_, i) => String(i + 1)), String(start), '0', '0'];
    fs.writeFileSync(path.join(d, 'stat'), `${pid} (we (ird) name) ${after.join(' ')}\n`);
    fs.writeFileSync(path.join(d, 'environ'), `PATH=/bin\0OTEL_SERVICE_NAME=${service}\0`);
    fs.writeFileSync(path.join(d, 'cmdline'), `${service}\0`);
    fs.writeFileSync(path.join(d, 'cgroup'), '0::/system.slice/x.service\n');
  };
  try {
    let now = 0;
    const t = new ProcessTable(16, root, () => now);
    proc(4242, 1000, 'first');
    assert.equal(t.get(4242).serviceName, 'first');
    assert.equal(t.get(4242).startTime, '1000');
    // The pid is taken by another process: within the recheck period the cache answers…
    proc(4242, 2000, 'second');
    assert.equal(t.get(4242).serviceName, 'first');
    // …after it, the start time differs and the new process is read.
    now += 1500;
    assert.equal(t.get(4242).serviceName, 'second');
    // Gone from /proc (exited before its samples were drained): the last name stays.
    fs.rmSync(path.join(root, '4242'), { recursive: true });
    now += 1500;
    assert.equal(t.get(4242).serviceName, 'second');
  } finally { fs.rmSync(root, { recursive: true, force: true }); }
});
