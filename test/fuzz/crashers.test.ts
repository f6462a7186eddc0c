// Regression tests: every crasher the fuzzer saved (test/fuzz/crashers/*.json, minimised) replayed
// on a fresh decoder instance must now decode or be rejected cleanly.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { crashDir, reproduce, Crasher, builtDecoders } from './fuzzer';

const files = fs.existsSync(crashDir) ? fs.readdirSync(crashDir).filter((f) => f.endsWith('.json')).sort() : [];
const built = new Set(builtDecoders());

test('fuzz crashers directory holds regression inputs', { skip: files.length === 0 && 'no crasher saved yet' }, () => {
  assert.ok(files.length > 0);
});

for (const f of files) {
  const c = JSON.parse(fs.readFileSync(path.join(crashDir, f), 'utf8')) as Crasher;
  test(`fuzz regression ${f}: ${c.kind} (${c.message.slice(0, 80)}) no longer happens`, { skip: !built.has(c.decoder) && `${c.decoder} not built` }, () => {
    assert.equal(reproduce(c), null);
  });
}
