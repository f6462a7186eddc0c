// The overload gate's RSS reader (host/src/memory/rss.ts) against what Node reports, and its
// statm parser on the kernel's format.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { rssNow, rssReader, statmResidentPages } from '../../host/src/memory/rss';

test('statm: the second field is the resident page count', () => {
  const b = Buffer.from('123456 7890 456 12 0 3456 0\n');
  assert.equal(statmResidentPages(b, b.length), 7890);
  const bad = Buffer.from('123456\n');
  assert.equal(statmResidentPages(bad, bad.length), -1);
});

test('the RSS read from /proc/self/statm follows what process.memoryUsage.rss() reports, also as memory grows', () => {
  const read = rssReader();
  const near = (a: number, b: number) => Math.abs(a - b) <= Math.max(4 << 20, b * 0.05);
  const before = process.memoryUsage.rss();
  const mine = read();
  assert.ok(near(mine, before), `${mine} vs ${before}`);
  // 64 MiB touched: both readings must see it.
  const held = Buffer.alloc(64 << 20, 1);
  const after = read();
  assert.ok(after - mine > 48 << 20, `grew by ${after - mine}`);
  assert.ok(near(after, process.memoryUsage.rss()));
  assert.ok(near(rssNow(), process.memoryUsage.rss()));
  assert.equal(held[held.length - 1], 1);
});
