// Install layout: works from host/src (ts-node style) and dist/host/src (compiled) alike.
import * as fs from 'fs';
import * as path from 'path';

let root: string | undefined;

export function installRoot(): string {
  if (root) return root;
  if (process.env.TELEGEN_ROOT) return (root = process.env.TELEGEN_ROOT);
  let dir = __dirname;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try { if (JSON.parse(fs.readFileSync(pkg, 'utf8')).name === 'telegen') return (root = dir); } catch { /* keep looking */ }
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find the telegen install root (set TELEGEN_ROOT)');
    dir = up;
  }
}

export function agentVersion(): string {
  return JSON.parse(fs.readFileSync(path.join(installRoot(), 'package.json'), 'utf8')).version;
}
