// Short CI run of the decoder fuzzer (npm run fuzz runs it long): every built decoder gets a few
// seconds of mutated capture conversations through DecoderInstance. No trap, no CPU-budget
// overrun, no malformed record, no host exception, nothing held after close, Wasm memory within
// its declared maximum, and every rejection the fuzzer saw is in the instance's counters.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { builtDecoders, loadSeeds, fuzzDecoder, Conversation } from './fuzzer';
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
    // Mutated input must be rejected somewhere: a decoder accepting everything is not parsing.
    assert.ok(r.tally.invalid + r.tally.overflow + r.tally.ignored + r.tally.gapResets > 0, JSON.stringify(r.tally));
  });
}

test('the fuzzer reports a decoder that traps (hostile fixture), reproducible alone', () => {
  const r = fuzzDecoder(buildHostile('trap'), seeds.slice(0, 20), 300, 7, false);
  assert.ok(r.crashes.some((c) => c.kind === 'trap' && c.reproducible), JSON.stringify(r.crashes));
});

test('the fuzzer reports a decoder that loops (hostile fixture) as a CPU-budget overrun', () => {
  const r = fuzzDecoder(buildHostile('loop'), seeds.slice(0, 20), 300, 7, false);
  assert.ok(r.crashes.some((c) => c.kind === 'cpu-budget'), JSON.stringify(r.crashes));
});
