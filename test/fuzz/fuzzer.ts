// Mutation fuzzer for the Wasm decoders, driven through the host's DecoderInstance exactly as the
// agent drives them (window copy, pending bytes, fuel metering, record decoding).
//
// Coverage-guided, with the coverage measured inside the Wasm module (test/fuzz/coverage.ts: a
// counter per basic block, AFL-style hit buckets): a JS fuzzer such as jazzer.js needs a native
// addon fetched as a prebuilt binary from outside npm, and JS coverage would not see inside the
// Wasm modules anyway. Cases that reach new blocks are kept and mutated further. The seeds are real conversations (the decoders' testdata captures and the shared corpus,
// reassembled by host/src/replay) mutated at the byte level and re-split at random points, with
// gaps, early closes and ticks interleaved — the shapes the socket tracer really produces.
//
// A "crash" is anything a user would see as a failure of the sandbox contract: an exception out
// of DecoderInstance (host crash), a Wasm trap, a fuel (CPU budget) overrun, a malformed record,
// or state left behind after a close. Rejections (invalid, overflow, ignored, gap reset) are the
// expected outcome on garbage and are counted; the fuzzer checks that its own tally of rejections
// equals the instance's counters, so none goes unaccounted.
import * as fs from 'fs';
import * as path from 'path';
import * as crypto from 'crypto';
import { DecoderInstance, declaredMemory } from '../../host/src/decoders/instance';
import { replayFile } from '../../host/src/replay';
import { instrumentCoverage, countersOf, CoverageMap } from './coverage';

export const repoRoot = path.resolve(__dirname, '..', '..', '..');
export const crashDir = path.join(repoRoot, 'test', 'fuzz', 'crashers');
const corpusRoot = process.env.TELEGEN_CORPUS || path.resolve(repoRoot, '..', 'shared', 'corpus');

export type Op =
  | { op: 'feed'; dir: number; hex: string }
  | { op: 'gap'; dir: number; n: number }
  | { op: 'close' }
  | { op: 'tick'; ts: string };

export interface Crasher { decoder: string; kind: string; message: string; ops: Op[] }

export interface Conversation { proto: string; parts: Array<{ dir: number; bytes: Buffer }> }

/** The Wasm decoders that are built (build/decoders/*.wasm). */
export function builtDecoders(): string[] {
  const dir = path.join(repoRoot, 'build', 'decoders');
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.wasm')).map((f) => f.slice(0, -5)).sort() : [];
}

/** A built decoder's name, or a path to any .wasm (the tests fuzz the hostile fixtures too). */
export function wasmFile(name: string): string {
  return name.includes('/') ? name : path.join(repoRoot, 'build', 'decoders', `${name}.wasm`);
}

/** Records whose decoder said it lost its place (FLAG_NO_REQUEST or FLAG_UNKNOWN: decoders/abi/abi.ts),
 *  across every instance: a decoder that resynchronises instead of rejecting shows it noticed here. */
let lostPlace = 0;
const LOST_PLACE_FLAGS = 4 | 16;

export function loadInstance(name: string, bytes: Uint8Array = fs.readFileSync(wasmFile(name))): DecoderInstance {
  return DecoderInstance.fromBytes(bytes, { onRecord: (r) => { if (r.flags & LOST_PLACE_FLAGS) lostPlace++; } });
}

/** The parts a case fed, as a conversation the fuzzer can mutate again. */
function conversationOf(proto: string, ops: Op[]): Conversation {
  const parts: Conversation['parts'] = [];
  for (const o of ops) {
    if (o.op !== 'feed') continue;
    const bytes = Buffer.from(o.hex, 'hex');
    const last = parts[parts.length - 1];
    if (last && last.dir === o.dir) last.bytes = Buffer.concat([last.bytes, bytes]);
    else parts.push({ dir: o.dir, bytes });
  }
  return { proto, parts };
}

function captureFiles(): Array<{ proto: string; file: string }> {
  const out: Array<{ proto: string; file: string }> = [];
  const add = (proto: string, dir: string) => {
    if (!fs.existsSync(dir)) return;
    for (const f of fs.readdirSync(dir)) if (/\.pcap(ng)?$/.test(f)) out.push({ proto, file: path.join(dir, f) });
  };
  for (const d of fs.readdirSync(path.join(repoRoot, 'decoders'))) add(d, path.join(repoRoot, 'decoders', d, 'testdata'));
  if (fs.existsSync(path.join(corpusRoot, 'pcap'))) {
    for (const d of fs.readdirSync(path.join(corpusRoot, 'pcap'))) add(d === 'grpc' ? 'http2' : d, path.join(corpusRoot, 'pcap', d));
  }
  return out;
}

const SEED_CAP = 64 * 1024; // bytes per conversation kept as a seed: keeps one case fast

/** Every connection of every capture, reassembled, as a seed conversation. */
export async function loadSeeds(): Promise<Conversation[]> {
  const seeds: Conversation[] = [];
  for (const { proto, file } of captureFiles()) {
    const conns = new Map<number, Conversation & { size: number }>();
    try {
      await replayFile(file, {
        onOpen() { /* conversations are created on first data */ },
        onData(conn, fromClient, bytes) {
          let c = conns.get(conn.id);
          if (!c) { c = { proto, parts: [], size: 0 }; conns.set(conn.id, c); }
          if (c.size >= SEED_CAP) return;
          c.parts.push({ dir: fromClient ? 0 : 1, bytes: Buffer.from(bytes.subarray(0, SEED_CAP - c.size)) });
          c.size += bytes.length;
        },
        onGap() { /* gaps are injected by the mutator */ },
        onClose() { /* closes are part of every case */ },
      });
    } catch { continue; /* a capture we cannot read is no seed */ }
    for (const c of conns.values()) if (c.parts.length) seeds.push({ proto: c.proto, parts: c.parts });
  }
  return seeds;
}

/** Small deterministic PRNG (xorshift32) so a run is reproducible from its seed. */
export class Rng {
  constructor(private s: number) { if (!this.s) this.s = 0x9e3779b9; }
  u32(): number { let x = this.s; x ^= x << 13; x ^= x >>> 17; x ^= x << 5; this.s = x >>> 0; return this.s; }
  int(n: number): number { return n <= 0 ? 0 : this.u32() % n; }
  chance(p: number): boolean { return this.u32() / 0x100000000 < p; }
  pick<T>(a: T[]): T { return a[this.int(a.length)]; }
}

const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe, 0x0a, 0x0d, 0x3a, 0x20];

/** One byte-level mutation of `b` (returns a new buffer). */
function mutateBytes(b: Buffer, rng: Rng, donor: Buffer): Buffer {
  if (b.length === 0) return Buffer.from(donor.subarray(0, 1 + rng.int(64)));
  const at = rng.int(b.length);
  switch (rng.int(9)) {
    case 0: { const c = Buffer.from(b); c[at] ^= 1 << rng.int(8); return c; }
    case 1: { const c = Buffer.from(b); c[at] = rng.pick(INTERESTING); return c; }
    case 2: { // a 16/32-bit field set to an extreme: length prefixes are everywhere in these protocols
      const c = Buffer.from(b); const v = rng.pick([0, 1, 0x7fff, 0xffff, 0x7fffffff, 0xffffffff, 0x80000000]);
      if (at + 4 <= c.length) c.writeUInt32BE(v >>> 0, at); else if (at + 2 <= c.length) c.writeUInt16BE(v & 0xffff, at); return c;
    }
    case 3: return Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + rng.int(32))]); // delete a range
    case 4: { const n = 1 + rng.int(64); return Buffer.concat([b.subarray(0, at), crypto.randomBytes(n), b.subarray(at)]); } // insert noise
    case 5: { const s = rng.int(b.length); return Buffer.concat([b.subarray(0, at), b.subarray(s, s + 1 + rng.int(256)), b.subarray(at)]); } // duplicate
    case 6: { const s = rng.int(donor.length); return Buffer.concat([b.subarray(0, at), donor.subarray(s, s + 1 + rng.int(512))]); } // splice
    case 7: return b.subarray(0, at); // truncate
    default: { const c = Buffer.from(b); for (let i = 0; i < 1 + rng.int(8); i++) c[rng.int(c.length)] = rng.int(256); return c; }
  }
}

/** A case: the seed's parts, a few mutated, each re-split at random points, with gaps/ticks/early close. */
export function makeCase(seed: Conversation, donor: Conversation, rng: Rng, mutations = 1 + rng.int(4)): Op[] {
  const parts = seed.parts.map((p) => ({ dir: p.dir, bytes: p.bytes }));
  const nMut = mutations;
  for (let i = 0; i < nMut && parts.length; i++) {
    const k = rng.int(parts.length);
    parts[k].bytes = mutateBytes(parts[k].bytes, rng, rng.pick(donor.parts).bytes);
  }
  if (rng.chance(0.1) && parts.length > 1) { const k = rng.int(parts.length); const [p] = parts.splice(k, 1); parts.splice(rng.int(parts.length), 0, p); }
  if (rng.chance(0.05)) for (const p of parts) p.dir ^= 1; // roles swapped (the router guessed wrong)
  const ops: Op[] = [];
  const stopAt = rng.chance(0.1) ? rng.int(parts.length) : parts.length;
  for (let i = 0; i < stopAt; i++) {
    const { dir, bytes } = parts[i];
    let off = 0;
    while (off < bytes.length) {
      const n = rng.chance(0.5) ? bytes.length - off : 1 + rng.int(Math.max(1, bytes.length - off));
      ops.push({ op: 'feed', dir, hex: bytes.subarray(off, off + n).toString('hex') });
      off += n;
    }
    if (rng.chance(0.03)) ops.push({ op: 'gap', dir: rng.int(2), n: 1 + rng.int(rng.chance(0.5) ? 100 : 1 << 20) });
    if (rng.chance(0.02)) ops.push({ op: 'tick', ts: String(BigInt(i + 1) * 60_000_000_000n) });
  }
  ops.push({ op: 'close' });
  return ops;
}

export interface Tally { cases: number; feeds: number; bytes: number; ok: number; invalid: number; overflow: number; ignored: number; gapResets: number; records: number; lostPlace: number }

export interface RunOutcome { kind: string; message: string }

/**
 * Runs one case on `inst` under `stream`; returns the failure or null. `tally` receives the
 * fuzzer's own count of every FeedResult so it can be checked against the instance's counters.
 */
export function runCase(inst: DecoderInstance, stream: number, ops: Op[], tally?: Tally): RunOutcome | null {
  const c0 = { ...inst.counters };
  const lost0 = lostPlace;
  let ts = 1_000_000n;
  try {
    for (const o of ops) {
      if (o.op === 'feed') {
        const bytes = Buffer.from(o.hex, 'hex');
        const r = inst.feed(stream, o.dir, bytes, ts);
        ts += 1000n;
        if (tally) {
          tally.feeds++; tally.bytes += bytes.length;
          if (r === 'ok') tally.ok++; else if (r === 'invalid') tally.invalid++; else if (r === 'overflow') tally.overflow++; else if (r === 'ignored') tally.ignored++;
        }
        if (r === 'trap') break;
        if (r === 'ignored') break; // the agent hands the rest of the stream to another decoder
      } else if (o.op === 'gap') {
        const r = inst.gap(stream, o.dir, o.n);
        if (tally && r === 'invalid') tally.gapResets++;
        if (r === 'trap') break;
      } else if (o.op === 'tick') inst.tick(BigInt(o.ts));
      else inst.closeStream(stream);
    }
    inst.closeStream(stream);
  } catch (e) {
    return { kind: 'host-exception', message: (e as Error)?.stack ?? String(e) };
  }
  const c = inst.counters;
  if (tally) { tally.cases++; tally.records += c.records - c0.records; tally.lostPlace += lostPlace - lost0; }
  if (c.traps > c0.traps) return { kind: 'trap', message: inst.lastError ?? 'trap' };
  if (c.budgetExceeded > c0.budgetExceeded) return { kind: 'cpu-budget', message: inst.lastError ?? 'budget' };
  if (c.badRecords > c0.badRecords) return { kind: 'bad-record', message: inst.lastError ?? 'bad record' };
  if (c.hostErrors > c0.hostErrors) return { kind: 'host-error', message: inst.lastError ?? 'host error' };
  if (inst.pendingBytes() !== 0) return { kind: 'pending-after-close', message: `${inst.pendingBytes()} bytes held after close` };
  return null;
}

/** Replays a crasher on a fresh instance (what the regression tests do). */
export function reproduce(c: Crasher): RunOutcome | null {
  return runCase(loadInstance(c.decoder), 1, c.ops);
}

/** Greedy minimisation: drop ops, then shorten feeds, keeping the same failure kind. */
export function minimise(c: Crasher, budget = 300): Crasher {
  let ops = c.ops;
  const same = (o: Op[]) => { if (budget-- <= 0) return false; const r = runCase(loadInstance(c.decoder), 1, o); return r !== null && r.kind === c.kind; };
  for (let i = ops.length - 2; i >= 0 && budget > 0; i--) {
    const cand = ops.slice(0, i).concat(ops.slice(i + 1));
    if (same(cand)) ops = cand;
  }
  for (let i = 0; i < ops.length && budget > 0; i++) {
    const o = ops[i];
    if (o.op !== 'feed') continue;
    let len = o.hex.length / 2;
    while (len > 1 && budget > 0) {
      const half = len >> 1;
      const cand = ops.slice(); cand[i] = { op: 'feed', dir: o.dir, hex: o.hex.slice(0, half * 2) };
      if (!same(cand)) break;
      ops = cand; len = half;
    }
  }
  return { ...c, ops };
}

export function saveCrasher(c: Crasher): string {
  fs.mkdirSync(crashDir, { recursive: true });
  const id = crypto.createHash('sha1').update(JSON.stringify(c.ops)).digest('hex').slice(0, 10);
  const file = path.join(crashDir, `${path.basename(c.decoder, '.wasm')}-${c.kind}-${id}.json`);
  fs.writeFileSync(file, JSON.stringify(c, null, 1) + '\n');
  return file;
}

export interface DecoderReport {
  decoder: string;
  tally: Tally;
  counters: Record<string, number>;
  countersAgree: boolean;
  crashes: Array<{ kind: string; message: string; file?: string; reproducible: boolean }>;
  wasmMemoryBytes: { afterWarmup: number; end: number; declaredMax: number };
  /** Basic-block sites of the module; reached by the unmutated seeds; reached in the end; cases kept for new coverage. */
  coverage: { sites: number; seeds: number; covered: number; kept: number };
}

const KEPT_CAP = 2000;

/** Fuzzes one decoder for `ms` milliseconds. Crashers are minimised and saved when `save`. */
export function fuzzDecoder(name: string, seeds: Conversation[], ms: number, seedNum: number, save: boolean): DecoderReport {
  const rng = new Rng(seedNum);
  const own = seeds.filter((s) => s.proto === name);
  const pool = own.length ? own : seeds;
  // Coverage-guided: the module runs with a counter per basic block (test/fuzz/coverage.ts); a case
  // that reaches a new site or hit-count bucket is kept and mutated further. Crashers are
  // reproduced and minimised on the module as shipped, never the instrumented one.
  const cov = instrumentCoverage(fs.readFileSync(wasmFile(name)));
  const map = new CoverageMap(cov.sites);
  const kept: Conversation[] = [];
  let stream = 1;
  const base = loadInstance(name, cov.bytes); // its own instance: the tally check below covers the fuzzing cases only
  for (const s of own.slice(0, 200)) { runCase(base, stream++, makeCase(s, s, new Rng(1), 0)); map.merge(countersOf(base, cov.sites)); }
  const seedCovered = map.covered();
  let inst = loadInstance(name, cov.bytes);
  const tally: Tally = { cases: 0, feeds: 0, bytes: 0, ok: 0, invalid: 0, overflow: 0, ignored: 0, gapResets: 0, records: 0, lostPlace: 0 };
  const crashes: DecoderReport['crashes'] = [];
  const seen = new Set<string>();
  const agg = { invalid: 0, overflows: 0, gapResets: 0 };
  const t0 = Date.now();
  let warm = 0;
  while (Date.now() - t0 < ms) {
    // Half from the cases that found new coverage; else 80% own protocol, 20% any capture:
    // decoders also see other protocols' bytes in real life.
    const seed = kept.length && rng.chance(0.5) ? rng.pick(kept) : rng.chance(0.8) ? rng.pick(pool) : rng.pick(seeds);
    const ops = makeCase(seed, rng.pick(seeds), rng);
    const r = runCase(inst, stream++, ops, tally);
    if (map.merge(countersOf(inst, cov.sites)) && !r) {
      const c = conversationOf(name, ops);
      if (kept.length < KEPT_CAP) kept.push(c); else kept[rng.int(KEPT_CAP)] = c;
    }
    if (!warm && Date.now() - t0 > ms / 10) warm = inst.memoryBytes();
    if (r) {
      const key = `${r.kind}:${r.message.split('\n')[0].replace(/\d+/g, 'N')}`;
      // A trap resets the instance; carry its counters over so the tally check stays exact.
      if (!seen.has(key)) {
        seen.add(key);
        const rep = reproduce({ decoder: name, kind: r.kind, message: r.message, ops });
        const entry: DecoderReport['crashes'][number] = { kind: r.kind, message: r.message.split('\n')[0], reproducible: rep !== null && rep.kind === r.kind };
        if (save && entry.reproducible) entry.file = saveCrasher(minimise({ decoder: name, kind: r.kind, message: entry.message, ops }));
        crashes.push(entry);
      }
    }
    if (inst.quarantined || r?.kind === 'host-exception') {
      // Quarantine is the host's answer to a failing module; the fuzzer keeps going on a fresh one.
      agg.invalid += inst.counters.invalid; agg.overflows += inst.counters.overflows; agg.gapResets += inst.counters.gapResets;
      inst = loadInstance(name, cov.bytes);
    }
  }
  const c = inst.counters;
  const invalid = agg.invalid + c.invalid, overflows = agg.overflows + c.overflows, gapResets = agg.gapResets + c.gapResets;
  const mem = declaredMax(name);
  return {
    decoder: name,
    tally,
    counters: { invalid, overflows, gapResets },
    countersAgree: invalid === tally.invalid && overflows === tally.overflow && gapResets === tally.gapResets,
    crashes,
    wasmMemoryBytes: { afterWarmup: warm, end: inst.memoryBytes(), declaredMax: mem },
    coverage: { sites: cov.sites, seeds: seedCovered, covered: map.covered(), kept: kept.length },
  };
}

function declaredMax(name: string): number {
  const b = fs.readFileSync(wasmFile(name));
  return (declaredMemory(b)?.maximum ?? 0) * 65536;
}
