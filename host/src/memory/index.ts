// The agent's own memory (issue 12: RSS flat, aim ≤ 100 MB): the V8 young generation capped,
// the native heap returning what it frees. docs: bench/README.md §Soak.
import { startHeapTrim } from './native-heap';
import { capYoungGeneration, youngGenCapBytes } from './young-generation';

/** Starts both; the returned function stops them (agent shutdown). */
export function startMemoryTuning(): () => void {
  const cap = youngGenCapBytes();
  const uncap = cap ? capYoungGeneration(cap) : undefined;
  const trim = startHeapTrim();
  return () => { uncap?.(); if (trim) clearInterval(trim); };
}
