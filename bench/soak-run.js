#!/usr/bin/env node
// npm run soak [-- --minutes N]: compiles, then runs dist/bench/soak.js (default 30 minutes).
'use strict';
const path = require('path');
const { spawnSync } = require('child_process');
const root = path.resolve(__dirname, '..');
const tsc = spawnSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
if (tsc.status !== 0) process.exit(tsc.status || 1);
const r = spawnSync(process.execPath, [path.join(root, 'dist', 'bench', 'soak.js'), ...process.argv.slice(2)], { cwd: root, stdio: 'inherit' });
process.exit(r.status === null ? 1 : r.status);
