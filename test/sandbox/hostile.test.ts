// Issue 3: hostile decoders built from source are contained — each fails alone, is counted, ends
// quarantined, and the real decoders next to it keep decoding.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import { DecoderInstance, DecoderLoadError, DEFAULT_VERIFY_POLICY } from '../../host/src/decoders/instance';
import { DecoderRegistry } from '../../host/src/decoders/registry';
import { parsePolicy } from '../../host/src/decoders/policy';
import { DecodedRecord } from '../../host/src/decoders/records';
import { ChunkBatch } from '../../host/src/decoders/batch';
import { meterModule } from '../../host/src/decoders/meter';
import { buildHostile } from '../helpers/hostile';
import { wasmPath } from '../helpers/decoder';

const REQ = Buffer.from('GET /x HTTP/1.1\r\nHost: a\r\n\r\n');
const RESP = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');

function registryWith(hostile: string): { reg: DecoderRegistry; records: DecodedRecord[] } {
  const records: DecodedRecord[] = [];
  const reg = new DecoderRegistry({ onRecord: (r) => records.push(r) }, parsePolicy({ sandbox: { limits: { ...policyLimits(), fuel_per_call: 5_000_000 } } }));
  reg.loadFile(wasmPath('http1'));
  reg.loadFile(wasmPath('dns'));
  reg.add(fs.readFileSync(hostile), hostile, 'test');
  return { reg, records };
}

function policyLimits() {
  const p = DEFAULT_VERIFY_POLICY;
  return { max_memory_pages: p.maxMemoryPages, fuel_per_call: p.fuelPerCall, max_failures: p.maxFailures, failure_window_ms: p.failureWindowMs, max_record_bytes: p.maxRecordBytes };
}

for (const kind of ['loop', 'bomb', 'trap', 'badrecords'] as const) {
  test(`hostile "${kind}" fails alone, is counted and ends quarantined; http1 falls back, dns keeps decoding`, () => {
    const { reg, records } = registryWith(buildHostile(kind));
    const bad = reg.get('http1')!;
    assert.equal(bad.version, `hostile-${kind}`);
    const t0 = Date.now();
    for (let i = 0; i < 5; i++) bad.inst.feed(i + 1, 0, REQ, 1n);
    assert.ok(Date.now() - t0 < 30_000, 'five calls of a hostile module finish (CPU budget)');
    const c = bad.inst.counters;
    if (kind === 'loop') assert.equal(c.budgetExceeded, 5);
    if (kind === 'bomb' || kind === 'trap') assert.equal(c.traps, 5);
    if (kind === 'badrecords') { assert.equal(c.badRecords, 5); assert.equal(records.length, 0, 'no malformed record reaches the pipeline'); }
    assert.ok(bad.inst.lastError && bad.inst.lastError.length > 5, `reason recorded: ${bad.inst.lastError}`);
    assert.equal(bad.inst.quarantined, true);
    assert.ok(bad.inst.memoryBytes() <= 512 * 65536, 'memory stays within the declared maximum');
    reg.quarantine(bad, bad.inst.lastError!);
    assert.equal(bad.state, 'quarantined');
    const good = reg.get('http1')!;
    assert.notEqual(good, bad, 'traffic falls back to the previous http1');
    assert.equal(good.version, '1.0.0');
    good.inst.feed(100, 0, REQ, 10n);
    good.inst.feed(100, 1, RESP, 20n);
    assert.equal(records.filter((r) => r.attributes['url.path'] === '/x' && r.attributes['http.response.status_code'] === 200).length, 1);
    // another decoder in the same process is untouched
    const dns = reg.get('dns')!;
    const q = Buffer.from('abcd01000001000000000000076578616d706c6503636f6d0000010001', 'hex');
    const a = Buffer.from('abcd81800001000100000000076578616d706c6503636f6d0000010001c00c000100010000012c00045db8d822', 'hex');
    dns.inst.feed(200, 0, q, 1n);
    dns.inst.feed(200, 1, a, 2n);
    assert.deepEqual(records.filter((r) => r.attributes['dns.question.name'] === 'example.com').map((r) => r.attributes['dns.answers']), [['93.184.216.34']]);
  });
}

test('hostile "badbatch" (lies about its batches) fails alone: counted, bounded, quarantined; pgsql batches on beside it', () => {
  const { reg, records } = registryWith(buildHostile('badbatch'));
  const bad = reg.get('http1')!;
  assert.equal(bad.version, 'hostile-badbatch');
  assert.equal(bad.inst.batches, true);
  const b = new ChunkBatch();
  const results: string[] = [];
  const t0 = Date.now();
  // Batch calls of three reads, one lie each (test/fixtures/hostile/badbatch.ts), in order; the
  // sixth repeats the first: the fifth failure quarantines it.
  for (let call = 0; call < 6; call++) {
    b.clear();
    for (let i = 0; i < 3; i++) b.push(call * 10 + i + 1, 0, REQ, 1n, undefined);
    for (let i = 0; i < b.n;) {
      const j = bad.inst.feedBatch(b, i, b.n);
      if (j < b.n) results.push(`${call}:${j}:${bad.inst.batchResult}`);
      i = j + 1;
      if (bad.inst.quarantined) break;
    }
  }
  assert.ok(Date.now() - t0 < 30_000, 'the calls finish (CPU budget)');
  const c = bad.inst.counters;
  assert.equal(c.badRecords, 3, 'an area overrunning memory (twice) and a zero-length record: one bad record each');
  assert.equal(c.traps, 1);
  assert.equal(c.budgetExceeded, 1);
  // The trap hits the read the module said it was on (index 1), the overrun budget the first read
  // of its call; the reads after them went to the fresh instance (parse: consumed). The fifth
  // failure ends the batch early ('ok' for its last read) so the caller quarantines before more.
  assert.deepEqual(results, ['2:1:trap', '3:0:trap', '5:2:ok']);
  assert.equal(records.length, 0, 'nothing it wrote reached the pipeline');
  assert.equal(bad.inst.quarantined, true, `quarantined after ${c.badRecords + c.traps + c.budgetExceeded} failures`);
  assert.equal(c.bytes, 6 * 3 * REQ.length, 'every read was fed once');
  const pg = DecoderInstance.fromBytes(fs.readFileSync(wasmPath('pgsql')), { onRecord: (r) => records.push(r) });
  b.clear();
  const tag = (t: string) => { const s = Buffer.from(t + '\0'); const m = Buffer.alloc(5); m.write('C'); m.writeUInt32BE(4 + s.length, 1); return Buffer.concat([m, s, Buffer.from('Z\0\0\0\x05I', 'latin1')]); };
  for (let i = 0; i < 4; i++) b.push(500 + i, 1, tag(`SELECT ${i}`), BigInt(i + 1), undefined);
  assert.equal(pg.feedBatch(b, 0, b.n), b.n);
  assert.equal(pg.counters.calls, 1, 'four reads, one call');
  assert.deepEqual(records.map((r) => [r.stream, r.attributes['telegen.db.command_tag'], r.attributes['db.response.returned_rows']]), [[500, 'SELECT 0', 0], [501, 'SELECT 1', 1], [502, 'SELECT 2', 2], [503, 'SELECT 3', 3]]);
});

test('a module importing WASI is refused at load, naming the import', () => {
  assert.throws(() => DecoderInstance.fromBytes(fs.readFileSync(buildHostile('wasi')), { onRecord: () => undefined }),
    (e: Error) => e instanceof DecoderLoadError && /import wasi_snapshot_preview1\.fd_write is not allowed by policy/.test(e.message));
});

test('a memory maximum above the policy cap is refused; a module without a maximum is refused', () => {
  const bytes = fs.readFileSync(wasmPath('http1'));
  assert.throws(() => DecoderInstance.fromBytes(bytes, { onRecord: () => undefined }, { ...DEFAULT_VERIFY_POLICY, maxMemoryPages: 16 }), /memory maximum 512 pages exceeds policy cap 16/);
  // (module) with a memory of min 1 and no max
  const noMax = Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 5, 3, 1, 0, 1]);
  assert.throws(() => DecoderInstance.fromBytes(noMax, { onRecord: () => undefined }), /no declared maximum/);
});

test('the CPU budget is per call: a real decoder on large input stays well inside it', () => {
  const records: DecodedRecord[] = [];
  const inst = DecoderInstance.fromBytes(fs.readFileSync(wasmPath('http1')), { onRecord: (r) => records.push(r) }, { ...DEFAULT_VERIFY_POLICY, fuelPerCall: 2_000_000 });
  for (let b = 0; b < 40; b++) {
    // 50 pipelined requests per chunk, then their 50 responses: many messages per call
    inst.feed(1, 0, Buffer.concat(Array.from({ length: 50 }, (_, i) => Buffer.from(`GET /p${b * 50 + i} HTTP/1.1\r\nHost: a\r\n\r\n`))), BigInt(b * 2));
    inst.feed(1, 1, Buffer.concat(Array.from({ length: 50 }, () => RESP)), BigInt(b * 2 + 1));
  }
  assert.equal(inst.counters.budgetExceeded, 0);
  assert.equal(records.length, 2000);
});

test('the metered module restores the budget on every call from the host, never from inside', () => {
  // (func $f (export "f") (loop (call $g) (br 0)))  (func $g (export "g"))
  const mod = Uint8Array.from([
    0, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    1, 4, 1, 0x60, 0, 0,
    3, 3, 2, 0, 0,
    7, 9, 2, 1, 0x66, 0, 0, 1, 0x67, 0, 1,
    10, 14, 2, 9, 0, 0x03, 0x40, 0x10, 1, 0x0c, 0, 0x0b, 0x0b, 2, 0, 0x0b,
  ]);
  const ex = new WebAssembly.Instance(new WebAssembly.Module(meterModule(mod, 1000))).exports as { f(): void; g(): void; telegen_fuel: WebAssembly.Global };
  ex.telegen_fuel.value = 0; // spent by an earlier call
  ex.g();
  assert.equal(ex.telegen_fuel.value, 999, 'a call from the host starts with the whole budget');
  // f calls the exported g from inside: that call must not refuel, or f would never stop
  assert.throws(() => ex.f(), WebAssembly.RuntimeError);
  assert.equal(ex.telegen_fuel.value, 0);
  ex.g();
  assert.equal(ex.telegen_fuel.value, 999);
});

test('four hostile swaps in a row, each quarantined while a connection stays bound to it: http1 falls back to the good version every time', () => {
  const reg = new DecoderRegistry({ onRecord: () => undefined }, parsePolicy({ sandbox: { limits: { ...policyLimits(), fuel_per_call: 5_000_000 } } }));
  reg.loadFile(wasmPath('http1'));
  for (const kind of ['trap', 'loop', 'bomb', 'badrecords'] as const) {
    const f = buildHostile(kind);
    const bad = reg.add(fs.readFileSync(f), f, 'test');
    reg.bound(bad, 1); // an idle connection bound to it: it leaves only when it next sends or closes
    reg.quarantine(bad, 'test');
    assert.equal(reg.get('http1')?.version, '1.0.0', `after ${kind}: traffic falls back to the good http1`);
  }
});
