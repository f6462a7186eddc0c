#!/usr/bin/env node
// npm run fuzz -- --minutes N [--seed S] [decoder...]: compiles, then runs the mutation fuzzer
// (test/fuzz/fuzzer.ts). Exit 1 when a crasher was found (saved under test/fuzz/crashers/).
'use strict';
const path = require('path');
const { spawnSync } = require('child_process');
const root = path.resolve(__dirname, '..');
const tsc = spawnSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
if (tsc.status !== 0) process.exit(tsc.status || 1);
const r = spawnSync(process.execPath, ['--max-old-space-size=512', path.join(root, 'dist', 'test', 'fuzz', 'main.js'), ...process.argv.slice(2)], { cwd: root, stdio: 'inherit' });
process.exit(r.status === null ? 1 : r.status);
