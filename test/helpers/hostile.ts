// Builds the hostile test decoders (test/fixtures/hostile/*.ts) from source with asc.
import * as fs from 'fs';
import * as path from 'path';
import { repoRoot } from './decoder';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { buildEntry } = require(path.join(repoRoot, 'decoders', 'build.js')) as { buildEntry(entry: string, out: string, extra?: string[]): string };

// Built once per checkout (build/ is ignored by git); rebuilt when the source is newer.
const outDir = path.join(repoRoot, 'build', 'test-fixtures', 'hostile');

export const HOSTILE = ['loop', 'bomb', 'wasi', 'trap', 'badrecords', 'badbatch'] as const;
export type Hostile = (typeof HOSTILE)[number];

export function buildHostile(kind: Hostile): string {
  const out = path.join(outDir, `${kind}.wasm`);
  const src = path.join(repoRoot, 'test', 'fixtures', 'hostile', `${kind}.ts`);
  const common = path.join(repoRoot, 'test', 'fixtures', 'hostile', 'common.ts');
  const stale = !fs.existsSync(out) || fs.statSync(out).mtimeMs < Math.max(fs.statSync(src).mtimeMs, fs.statSync(common).mtimeMs);
  if (stale) buildEntry(path.join('test', 'fixtures', 'hostile', `${kind}.ts`), out);
  return out;
}
