// Coverage feedback for the decoder fuzzer, measured inside the Wasm module itself: JS coverage
// tools cannot see into Wasm, and jazzer.js needs a prebuilt native addon from outside npm.
//
// The module is rewritten (with the same body rewriter as the CPU-budget metering) so that every
// basic-block start bumps its own mutable i32 global: function entry, the body of a `loop`, the
// `then` and `else` arms of an `if`, the join point after each `end`, and the fall-through of a
// `br_if`. The counters are exported as telegen_cov_<n>; after a case the fuzzer reads them,
// buckets each count the way AFL does (1, 2, 3, 4–7, 8–15, 16–31, 32–127, 128+) and keeps the
// case when some site reached a bucket no earlier case reached.
import { Bytes, Reader, leb, rewriteModule, skipInstr } from '../../host/src/decoders/meter';

export const COV_PREFIX = 'telegen_cov_';

/** global.get g; i32.const 1; i32.add; global.set g (stack-neutral, valid anywhere). */
function bump(g: number): number[] {
  const gi = leb(g);
  return [0x23, ...gi, 0x41, 0x01, 0x6a, 0x24, ...gi];
}

const OP_LOOP = 0x03, OP_IF = 0x04, OP_ELSE = 0x05, OP_END = 0x0b, OP_BR_IF = 0x0d;

/** Site offsets (after which instruction a counter goes) of one body, without rewriting it. */
function sitesOf(body: Uint8Array): number[] {
  const r = new Reader(body);
  const n = r.u32();
  for (let i = 0; i < n; i++) { r.u32(); r.byte(); }
  const sites = [r.p];
  while (r.p < body.length) {
    const op = r.byte();
    skipInstr(r, op, () => undefined);
    if (op === OP_LOOP || op === OP_IF || op === OP_ELSE || op === OP_BR_IF || (op === OP_END && r.p < body.length)) sites.push(r.p);
  }
  return sites;
}

export interface Instrumented { bytes: Uint8Array; sites: number }

/** The module with a counter per basic-block start; `sites` counters named telegen_cov_0.. */
export function instrumentCoverage(bytes: Uint8Array): Instrumented {
  // Two passes: the number of sites decides how many globals there are, which the rewrite needs up front.
  let total = 0;
  rewriteModule(bytes, { globals: [], exports: [], body: (b) => { total += sitesOf(b).length; return b; } });
  let next = 0;
  const out = rewriteModule(bytes, {
    globals: Array.from({ length: total }, () => [0x7f, 0x01, 0x41, 0x00, 0x0b]),
    exports: Array.from({ length: total }, (_, i) => ({ name: `${COV_PREFIX}${i}`, global: i })),
    body: (body, first) => {
      const out = new Bytes();
      let last = 0;
      for (const at of sitesOf(body)) {
        out.append(body.subarray(last, at));
        out.append(bump(first + next++));
        last = at;
      }
      out.append(body.subarray(last));
      return out.bytes();
    },
  });
  return { bytes: out, sites: total };
}

/** AFL's hit-count buckets as bits: a site counts as new when it reaches a bit it never had. */
export function bucket(n: number): number {
  if (n === 0) return 0;
  if (n <= 3) return 1 << (n - 1);
  if (n <= 7) return 8;
  if (n <= 15) return 16;
  if (n <= 31) return 32;
  if (n <= 127) return 64;
  return 128;
}

/** Reads, buckets and clears the counters of one instance; merges them into `virgin`. */
export class CoverageMap {
  readonly seen: Uint8Array;
  constructor(readonly sites: number) { this.seen = new Uint8Array(sites); }

  /** Counters of the last case → true when any site reached a new bucket. Clears the counters. */
  merge(counters: WebAssembly.Global[]): boolean {
    let fresh = false;
    for (let i = 0; i < counters.length; i++) {
      const n = counters[i].value as number;
      if (n === 0) continue;
      counters[i].value = 0;
      const b = bucket(n);
      if ((this.seen[i] & b) === 0) { this.seen[i] |= b; fresh = true; }
    }
    return fresh;
  }

  /** Sites reached at least once. */
  covered(): number {
    let n = 0;
    for (let i = 0; i < this.sites; i++) if (this.seen[i]) n++;
    return n;
  }
}

/** The coverage counters of a running instance (a trap re-instantiates: read them per case). */
export function countersOf(inst: object, sites: number): WebAssembly.Global[] {
  // DecoderInstance keeps the module's exports private to the host; the fuzzer is its only other reader.
  const ex = (inst as unknown as { ex: Record<string, WebAssembly.Global> }).ex;
  // Looking up thousands of export names costs milliseconds: once per instantiation, not per case.
  let out = byExports.get(ex);
  if (!out) {
    out = new Array(sites);
    for (let i = 0; i < sites; i++) out[i] = ex[`${COV_PREFIX}${i}`];
    byExports.set(ex, out);
  }
  return out;
}

const byExports = new WeakMap<object, WebAssembly.Global[]>();
