// The file I/O tracer's collection path against the real kernel maps of bpf/fileio.bpf.o (loaded,
// not attached, so no other process's I/O lands in them): entries written as the kernel writes
// them (cumulative tg_fileio_hist values, interned directories, the per-operation overflow slots)
// become histogram points with exact counts, sums and the kernel's boundaries; a second read adds
// only what changed; a process that exited is exported once more, then forgotten and its kernel
// entries deleted; past the cardinality limit, and from the kernel's overflow slots, operations go
// to one otel.metric.overflow=true series.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'child_process';
import { once } from 'events';
import { requireBpf } from '../helpers/agent';
import { BpfObject } from '../../host/src/tracers/bpf-object';
import { FileioSeries, LATENCY_BUCKETS_S, SIZE_BUCKETS_BY, emptyHistValue } from '../../host/src/tracers/fileio-series';
import { tg_fileio_hist as H, tg_fileio_hist_key as K, tg_fileio_op as OP } from '../../host/src/generated/fileio-layout';

interface Pt { attributes: Record<string, unknown>; value: { count: number; sum: number; min: number; max: number; buckets: { boundaries: number[]; counts: number[] } } }

function histKey(pid: number, op: number, dirId: bigint, comm: string): Buffer {
  const k = Buffer.alloc(K.size);
  k.writeUInt32LE(pid, K.pid);
  k.writeUInt32LE(op, K.op);
  k.writeBigUInt64LE(dirId, K.dir_id);
  k.write(comm, K.comm, 'latin1');
  return k;
}

/** A tg_fileio_hist as the kernel leaves it after these operations (latency ns, bytes or -1). */
function histValue(ops: Array<[number, number]>): Buffer {
  const b = emptyHistValue();
  const add = (off: number, v: number) => b.writeBigUInt64LE(b.readBigUInt64LE(off) + BigInt(v), off);
  for (const [ns, bytes] of ops) {
    const i = LATENCY_BUCKETS_S.findIndex((s) => ns <= s * 1e9);
    add(H.lat_counts + 8 * (i < 0 ? LATENCY_BUCKETS_S.length : i), 1);
    add(H.lat_sum_ns, ns);
    if (BigInt(ns) < b.readBigUInt64LE(H.lat_min_ns)) b.writeBigUInt64LE(BigInt(ns), H.lat_min_ns);
    if (BigInt(ns) > b.readBigUInt64LE(H.lat_max_ns)) b.writeBigUInt64LE(BigInt(ns), H.lat_max_ns);
    if (bytes < 0) continue;
    const j = SIZE_BUCKETS_BY.findIndex((x) => bytes <= x);
    const bk = j < 0 ? SIZE_BUCKETS_BY.length : j;
    add(H.size_counts + 8 * bk, 1);
    add(H.size_sums + 8 * bk, bytes);
    if (BigInt(bytes) < b.readBigUInt64LE(H.size_min)) b.writeBigUInt64LE(BigInt(bytes), H.size_min);
    if (BigInt(bytes) > b.readBigUInt64LE(H.size_max)) b.writeBigUInt64LE(BigInt(bytes), H.size_max);
  }
  return b;
}

function dirValue(name: string): Buffer {
  const v = Buffer.alloc(128);
  v.write(name, 0, 'latin1');
  return v;
}

const points = (ms: ReturnType<FileioSeries['collect']>, name: string): Pt[] => (ms.find((m) => m.descriptor.name === name)?.dataPoints ?? []) as unknown as Pt[];
const u64Key = (n: bigint) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(n); return b; };

test('fileio series: kernel histograms become exact points; exited processes forgotten; overflow past the limit and from the kernel slots', { timeout: 60_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const obj = new BpfObject('fileio', { rodata: { self_pid: process.pid } });
  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  try {
    const me = process.pid, other = sleeper.pid!;
    obj.update('tg_fileio_dirs', u64Key(42n), dirValue('/srv/data'));
    const a = histKey(me, OP.TG_FILEIO_READ, 42n, 'node');
    const b = histKey(other, OP.TG_FILEIO_WRITE, 0n, 'sleep');
    obj.update('tg_fileio_hists', a, histValue([[4000, 4096], [30_000, 100], [2_000_000, -1]]));
    obj.update('tg_fileio_hists', b, histValue([[20_000, 0]]));
    const series = new FileioSeries(obj, 2);

    let ms = series.collect();
    const dur = points(ms, 'telegen.file.operation.duration');
    const pa = dur.find((p) => p.attributes['process.pid'] === me)!;
    assert.deepEqual(pa.attributes, { 'telegen.file.operation': 'read', 'file.directory': '/srv/data', 'process.pid': me, 'process.executable.name': 'node' });
    assert.deepEqual(pa.value.buckets.boundaries, [1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);
    assert.deepEqual([pa.value.count, pa.value.sum, pa.value.min, pa.value.max], [3, 2_034_000 / 1e9, 4000 / 1e9, 2_000_000 / 1e9]);
    assert.deepEqual(pa.value.buckets.counts, [1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const sa = points(ms, 'telegen.file.operation.size').find((p) => p.attributes['process.pid'] === me)!;
    assert.deepEqual(sa.value.buckets.boundaries, [0, 512, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216]);
    assert.deepEqual([sa.value.count, sa.value.sum, sa.value.min, sa.value.max], [2, 4196, 100, 4096]);
    assert.equal(dur.find((p) => p.attributes['process.pid'] === other)!.attributes['file.directory'], 'other');

    // Read again after more operations: only the difference is added.
    obj.update('tg_fileio_hists', a, histValue([[4000, 4096], [30_000, 100], [2_000_000, -1], [1000, 7]]));
    ms = series.collect();
    const pa2 = points(ms, 'telegen.file.operation.duration').find((p) => p.attributes['process.pid'] === me)!;
    assert.deepEqual([pa2.value.count, pa2.value.min], [4, 1000 / 1e9]);
    assert.deepEqual(pa2.value.buckets.counts.slice(0, 3), [2, 0, 1]);
    assert.equal(points(ms, 'telegen.file.operation.size').find((p) => p.attributes['process.pid'] === me)!.value.sum, 4203);

    // The sleeper exits: exported once more (final values), then gone here and in the kernel.
    obj.update('tg_fileio_hists', b, histValue([[20_000, 0], [20_000, 5]]));
    sleeper.kill('SIGKILL');
    await once(sleeper, 'exit');
    ms = series.collect();
    const last = points(ms, 'telegen.file.operation.duration').find((p) => p.attributes['process.pid'] === other)!;
    assert.equal(last.value.count, 2);
    assert.equal(obj.lookup('tg_fileio_hists', b), null, 'kernel entry of the exited process deleted');
    ms = series.collect();
    assert.equal(points(ms, 'telegen.file.operation.duration').filter((p) => p.attributes['process.pid'] === other).length, 0);
    assert.equal(series.stats().forgotten, 1);

    // Limit 2: the freed room takes one new series; the next goes to the overflow series, and so
    // do the kernel's overflow slots.
    obj.update('tg_fileio_hists', histKey(me, OP.TG_FILEIO_WRITE, 42n, 'node'), histValue([[100, 10]]));
    series.collect();
    obj.update('tg_fileio_hists', histKey(me, OP.TG_FILEIO_FSYNC, 42n, 'node'), histValue([[3_000_000, -1]]));
    const slot = Buffer.alloc(4);
    slot.writeUInt32LE(OP.TG_FILEIO_OPEN);
    obj.update('tg_fileio_hist_over', slot, histValue([[50, -1], [60, -1]]));
    ms = series.collect();
    const d = points(ms, 'telegen.file.operation.duration');
    assert.deepEqual(d.map((p) => p.attributes['telegen.file.operation'] ?? 'overflow').sort(), ['overflow', 'read', 'write']);
    const over = d.find((p) => p.attributes['otel.metric.overflow'] === true)!;
    assert.deepEqual(over.attributes, { 'otel.metric.overflow': true });
    assert.deepEqual([over.value.count, over.value.min, over.value.max], [3, 50 / 1e9, 3_000_000 / 1e9]);
    assert.equal(series.stats().overflowed, 1);
  } finally {
    if (sleeper.exitCode === null && sleeper.signalCode === null) sleeper.kill('SIGKILL');
    obj.close();
  }
});
