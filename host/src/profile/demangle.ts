// C++ (Itanium _Z…) and Rust (legacy _ZN…17h…E and v0 _R…) names. No maintained npm
// demangler runs in plain Node 20 (the Firefox profiler's one is a bundler-only wasm build),
// so binutils' c++filt is used when installed: one process per batch of new names, results
// cached. Without c++filt names stay mangled (still unique and searchable).
import { execFileSync } from 'child_process';
import * as fs from 'fs';

const CXXFILT = ['/usr/bin/c++filt', '/bin/c++filt'].find((f) => fs.existsSync(f));

export const isMangled = (name: string): boolean => name.startsWith('_Z') || name.startsWith('_R');

/** Rust legacy names end in "::h<16 hex>": a hash that only makes flame graphs noisier. */
const RUST_HASH = /::h[0-9a-f]{16}$/;

export function demangleBatch(names: string[]): Map<string, string> {
  const out = new Map<string, string>();
  const todo = names.filter(isMangled);
  if (!todo.length) return out;
  if (CXXFILT) {
    try {
      const res = execFileSync(CXXFILT, [], { input: todo.join('\n') + '\n', encoding: 'utf8', maxBuffer: 64 << 20, timeout: 10_000 }).split('\n');
      todo.forEach((n, i) => out.set(n, (res[i] || n).replace(RUST_HASH, '')));
      return out;
    } catch { /* fall through: keep mangled names */ }
  }
  for (const n of todo) out.set(n, n);
  return out;
}

export const demanglerAvailable = (): boolean => CXXFILT !== undefined;
