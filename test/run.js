#!/usr/bin/env node
// Runs every compiled test (dist/test/**/*.test.js) with node's test runner.
// `npm test` = build what is missing, then this. Extra args filter by substring: npm test -- http1
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const dist = path.join(root, 'dist', 'test');

function walk(dir, out) {
  if (!fs.existsSync(dir)) return out;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const tsc = spawnSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
if (tsc.status !== 0) process.exit(tsc.status || 1);
const filters = process.argv.slice(2);
// Tests that exist but do not pass yet are listed, with the reason, in test/not-yet-passing.json.
// They are not run by `npm test` (printed below, never silently); TELEGEN_TEST_ALL=1 runs them too.
const pending = JSON.parse(fs.readFileSync(path.join(__dirname, 'not-yet-passing.json'), 'utf8'));
const isPending = (f) => Object.keys(pending).some((k) => f.endsWith(k.replace(/\.ts$/, '.js')));
let files = walk(dist, []).sort().filter((f) => !filters.length || filters.some((x) => f.includes(x)));
if (process.env.TELEGEN_TEST_ALL !== '1') {
  for (const [k, why] of Object.entries(pending)) process.stdout.write(`not run (not yet passing): ${k} — ${why}\n`);
  files = files.filter((f) => !isPending(f));
}
if (!files.length) { console.error('no test files found'); process.exit(1); }
const args = ['--test', '--test-concurrency=1', '--test-reporter=spec', ...files];
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env: { ...process.env, TELEGEN_ROOT: root } });
process.exit(r.status === null ? 1 : r.status);
