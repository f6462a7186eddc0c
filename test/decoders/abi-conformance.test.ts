// Issue 3: every decoder in the tree implements ABI v1 — checked on the built .wasm, the way the
// host will load it (verification, metering, meta, window, and no trap on any input).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { DecoderInstance, verifyModule, declaredMemory, DEFAULT_VERIFY_POLICY } from '../../host/src/decoders/instance';
import { ABI_VERSION } from '../../decoders/abi/abi';
import { repoRoot } from '../helpers/decoder';

const dir = path.join(repoRoot, 'build', 'decoders');
const sources = fs.readdirSync(path.join(repoRoot, 'decoders'), { withFileTypes: true })
  .filter((d) => d.isDirectory() && fs.existsSync(path.join(repoRoot, 'decoders', d.name, 'index.ts'))).map((d) => d.name);

test('every decoder folder was built', () => {
  assert.ok(sources.length >= 5);
  for (const s of sources) assert.ok(fs.existsSync(path.join(dir, `${s}.wasm`)), `${s}.wasm built`);
});

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; };
}

for (const name of sources) {
  test(`ABI v${ABI_VERSION} conformance: ${name}.wasm`, () => {
    const bytes = fs.readFileSync(path.join(dir, `${name}.wasm`));
    const mod = new WebAssembly.Module(bytes);
    assert.deepEqual(verifyModule(mod, bytes, DEFAULT_VERIFY_POLICY), [], 'imports, exports and memory pass verification');
    const imports = WebAssembly.Module.imports(mod).map((i) => `${i.module}.${i.name}`);
    for (const i of imports) assert.ok(['env.abort', 'telegen.emit', 'telegen.log'].includes(i), `import ${i}`);
    const mem = declaredMemory(bytes)!;
    assert.ok(mem.maximum !== undefined && mem.maximum <= DEFAULT_VERIFY_POLICY.maxMemoryPages);
    let records = 0;
    let bad = 0;
    const inst = DecoderInstance.fromBytes(bytes, { onRecord: () => { records++; }, onBadRecord: () => { bad++; } });
    assert.equal(inst.meta.name, name, 'meta().name is the folder name');
    assert.match(inst.meta.version, /^\d+\.\d+\.\d+/);
    assert.ok(inst.meta.protocols.length >= 1);
    assert.ok(['tcp', 'udp', 'both', undefined].includes(inst.meta.transport as string | undefined));
    for (const p of inst.meta.ports ?? []) assert.ok(Number.isInteger(p) && p > 0 && p < 65536);
    // detect() is a confidence and never traps, on anything
    const r = rng(name.length * 7919);
    for (let i = 0; i < 200; i++) {
      const junk = Uint8Array.from({ length: 1 + (r() % 600) }, () => r() & 0xff);
      const c = inst.detect(i & 1, junk);
      assert.ok(c >= 0 && c <= 100);
    }
    // parse() on random bytes, both directions, many streams: statuses only, no trap, bounded memory
    for (let s = 1; s <= 300; s++) {
      for (let k = 0; k < 4; k++) inst.feed(s, k & 1, Uint8Array.from({ length: 1 + (r() % 3000) }, () => r() & 0xff), BigInt(s * 10 + k));
      if (s % 3 === 0) inst.gap(s, 0, 100);
      inst.closeStream(s);
    }
    inst.tick(10_000_000_000_000n);
    assert.equal(inst.counters.traps, 0, `no trap (${inst.lastError ?? ''})`);
    assert.equal(inst.counters.budgetExceeded, 0);
    assert.equal(bad, 0, 'no malformed records');
    assert.equal(inst.pendingBytes(), 0, 'closed streams hold nothing');
    assert.ok(inst.memoryBytes() <= 64 << 20, `memory bounded (${inst.memoryBytes()})`);
    void records;
  });
}
