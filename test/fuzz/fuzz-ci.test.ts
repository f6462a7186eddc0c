// Short CI run of the decoder fuzzer (npm run fuzz runs it long): every built decoder gets a few
// seconds of mutated capture conversations through DecoderInstance. No trap, no CPU-budget
// overrun, no malformed record, no host exception, nothing held after close, Wasm memory within
// its declared maximum, and every rejection the fuzzer saw is in the instance's counters.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import { builtDecoders, loadSeeds, fuzzDecoder, Conversation, wasmFile } from './fuzzer';
import { instrumentCoverage, countersOf } from './coverage';
import { DecoderInstance } from '../../host/src/decoders/instance';
import { buildHostile } from '../helpers/hostile';

const TOTAL_MS = Number(process.env.TELEGEN_FUZZ_CI_MS || 20_000);
let seeds: Conversation[] = [];

test('fuzz seeds: every decoder with captures has conversations to mutate', async () => {
  seeds = await loadSeeds();
  const protos = new Set(seeds.map((s) => s.proto));
  for (const p of ['dns', 'http1', 'http2', 'kafka', 'pgsql']) assert.ok(protos.has(p), `no ${p} seed conversations`);
});

const decoders = builtDecoders();
test('decoders are built', () => { assert.ok(decoders.length >= 5, `built: ${decoders.join(',')}`); });

for (const d of decoders) {
  test(`fuzz ${d}: no crash, bounded memory, every rejection counted`, () => {
    const r = fuzzDecoder(d, seeds, TOTAL_MS / decoders.length, 0x5eed ^ d.length, false);
    assert.ok(r.tally.cases > 20, `only ${r.tally.cases} cases ran`);
    assert.deepEqual(r.crashes, [], `crashes: ${JSON.stringify(r.crashes)} (run npm run fuzz -- ${d} to save them)`);
    assert.ok(r.countersAgree, `fuzzer tally ${JSON.stringify(r.tally)} vs counters ${JSON.stringify(r.counters)}`);
    assert.ok(r.wasmMemoryBytes.end <= r.wasmMemoryBytes.declaredMax);
    // Coverage guidance works: mutated cases reach basic blocks the unmutated seeds never did
    // (error paths, limits), and those cases were kept to be mutated further.
    assert.ok(r.coverage.covered > r.coverage.seeds && r.coverage.kept > 0, JSON.stringify(r.coverage));
    // Mutated input must be rejected somewhere, or (decoders that resynchronise: http2, kafka)
    // flagged as where the decoder lost its place: a decoder accepting everything is not parsing.
    assert.ok(r.tally.invalid + r.tally.overflow + r.tally.ignored + r.tally.gapResets + r.tally.lostPlace > 0, JSON.stringify(r.tally));
  });
}

test('coverage counters do not change what a decoder does: same records and rejections on every seed', () => {
  for (const d of decoders) {
    const plain = fs.readFileSync(wasmFile(d));
    const cov = instrumentCoverage(plain);
    assert.ok(cov.sites > 100, `${d}: ${cov.sites} sites`);
    const out = (bytes: Uint8Array) => {
      const recs: string[] = [];
      const inst = DecoderInstance.fromBytes(bytes, { onRecord: (r) => recs.push(JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? String(v) : v))) });
      let s = 1;
      const results: string[] = [];
      for (const seed of seeds.filter((x) => x.proto === d).slice(0, 30)) {
        for (const p of seed.parts) results.push(inst.feed(s, p.dir, p.bytes, 1_000_000n));
        inst.closeStream(s++);
      }
      return { recs, results, counters: inst.counters };
    };
    const a = out(plain);
    const b = out(cov.bytes);
    assert.deepEqual(b.results, a.results, d);
    assert.deepEqual(b.recs, a.recs, d);
    const c = countersOf(DecoderInstance.fromBytes(cov.bytes, { onRecord: () => undefined }), cov.sites);
    assert.equal(c.length, cov.sites);
    assert.ok(c.every((g) => g instanceof WebAssembly.Global), d);
  }
});

test('the fuzzer reports a decoder that traps (hostile fixture), reproducible alone', () => {
  const r = fuzzDecoder(buildHostile('trap'), seeds.slice(0, 20), 300, 7, false);
  assert.ok(r.crashes.some((c) => c.kind === 'trap' && c.reproducible), JSON.stringify(r.crashes));
});

test('the fuzzer reports a decoder that loops (hostile fixture) as a CPU-budget overrun', () => {
  const r = fuzzDecoder(buildHostile('loop'), seeds.slice(0, 20), 300, 7, false);
  assert.ok(r.crashes.some((c) => c.kind === 'cpu-budget'), JSON.stringify(r.crashes));
});
