// `npm run fuzz -- [--minutes N] [--seed S] [decoder...]`: fuzzes every built decoder (or the named
// ones) for N minutes in total, split evenly; saves minimised crashers under test/fuzz/crashers/
// (they become regression tests: test/fuzz/crashers.test.ts) and writes bench/results/fuzz.json.
import * as fs from 'fs';
import * as path from 'path';
import { builtDecoders, loadSeeds, fuzzDecoder, repoRoot } from './fuzzer';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  let minutes = 1;
  let seed = Date.now() >>> 0;
  const names: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--minutes') minutes = Number(args[++i]);
    else if (args[i] === '--seed') seed = Number(args[++i]);
    else names.push(args[i]);
  }
  if (!(minutes > 0)) throw new Error('--minutes must be > 0');
  const decoders = names.length ? names : builtDecoders();
  if (!decoders.length) throw new Error('no built decoders (npm run build:decoders)');
  const seeds = await loadSeeds();
  process.stdout.write(`fuzz: ${decoders.join(', ')} for ${minutes} min total, ${seeds.length} seed conversations, seed ${seed}\n`);
  const per = (minutes * 60_000) / decoders.length;
  const reports = [];
  let failures = 0;
  for (const d of decoders) {
    const r = fuzzDecoder(d, seeds, per, seed, true);
    reports.push(r);
    const t = r.tally;
    process.stdout.write(`${d}: ${t.cases} cases, ${t.feeds} feeds, ${(t.bytes / 1e6).toFixed(1)} MB, ${t.records} records; rejected: invalid ${t.invalid}, overflow ${t.overflow}, ignored ${t.ignored}, gap resets ${t.gapResets}; counters agree: ${r.countersAgree}; wasm memory ${r.wasmMemoryBytes.afterWarmup} -> ${r.wasmMemoryBytes.end} (max ${r.wasmMemoryBytes.declaredMax}); coverage ${r.coverage.covered}/${r.coverage.sites} basic blocks (seeds alone ${r.coverage.seeds}), ${r.coverage.kept} cases kept\n`);
    for (const c of r.crashes) process.stdout.write(`  CRASH ${c.kind}${c.reproducible ? '' : ' (not reproducible alone)'}: ${c.message}${c.file ? ` -> ${path.relative(repoRoot, c.file)}` : ''}\n`);
    if (r.crashes.length || !r.countersAgree) failures++;
  }
  const out = path.join(repoRoot, 'bench', 'results');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'fuzz.json'), JSON.stringify({ name: 'fuzz', date: new Date().toISOString(), minutes, seed, seeds: seeds.length, heapUsedBytes: process.memoryUsage().heapUsed, rssBytes: process.memoryUsage().rss, reports }, null, 2) + '\n');
  process.exit(failures ? 1 : 0);
}

main().catch((e) => { console.error(e); process.exit(2); });
