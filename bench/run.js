#!/usr/bin/env node
// npm run bench [-- name...]: compiles, then runs every dist/bench/*.bench.js; each writes
// bench/results/<name>.json. Benchmarks never fail on a timing; they fail only if broken.
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const root = path.resolve(__dirname, '..');
const tsc = spawnSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
if (tsc.status !== 0) process.exit(tsc.status || 1);
const dir = path.join(root, 'dist', 'bench');
const only = process.argv.slice(2);
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.bench.js')).filter((f) => !only.length || only.some((o) => f.includes(o))).sort();
let failed = 0;
for (const f of files) {
  process.stdout.write(`== ${f}\n`);
  const r = spawnSync(process.execPath, ['--expose-gc', path.join(dir, f)], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) { failed++; process.stdout.write(`!! ${f} failed (${r.status})\n`); }
}
process.exit(failed ? 1 : 0);
