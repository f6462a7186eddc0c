// Go binary analysis on real binaries built here from test/fixtures/go: build info, function
// entries from the symbol table and (stripped) from pclntab, and instruction boundaries / RETs
// checked against GNU objdump's disassembly of the same bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import { analyzeGoBinary, goFunctions } from '../../host/src/gotrace/analyze';
import { openElf, functionSymbols, fileOffset, readAt } from '../../host/src/gotrace/elf';
import { instructionStarts } from '../../host/src/gotrace/x86';
import { offsetsFor, GO_OFFSETS } from '../../host/src/gotrace/offsets';
import { httpOffsetsFor, GO_HTTP_OFFSETS } from '../../host/src/gotrace/http-offsets';
import { GO_REQ, GO_REQ_FUNCS, planGoroutines } from '../../host/src/gotrace/goroutines';
import { inspectGoProcesses } from '../../host/src/gotrace/probes';
import { makePki } from '../tls/tls-helpers';
import { buildGo, goVersion, requireGo, Built } from './helpers';

const WANT = ['crypto/tls.(*Conn).Write', 'crypto/tls.(*Conn).Read', 'net/http.serverHandler.ServeHTTP', 'runtime.newproc1'];

let built: Built | undefined;
function bins(t: { skip: (m: string) => void }): Built | undefined {
  if (!requireGo(t)) return undefined;
  built ??= buildGo('server');
  return built;
}

/** objdump's instruction start addresses inside [from, to). */
function objdumpStarts(file: string, from: number, to: number): { starts: number[]; rets: number[] } {
  const out = execFileSync('objdump', ['-d', '--no-show-raw-insn', `--start-address=0x${from.toString(16)}`, `--stop-address=0x${to.toString(16)}`, file],
    { encoding: 'utf8', maxBuffer: 1 << 30 });
  const starts: number[] = [];
  const rets: number[] = [];
  for (const line of out.split('\n')) {
    const m = /^\s+([0-9a-f]+):\s+(\S+)/.exec(line);
    if (!m) continue;
    const a = parseInt(m[1], 16);
    starts.push(a);
    if (/^ret/.test(m[2])) rets.push(a);
  }
  return { starts, rets };
}

test('build info: Go version, module path, on stripped and unstripped binaries', (t) => {
  const b = bins(t);
  if (!b) return;
  for (const f of [b.plain, b.stripped]) {
    const g = analyzeGoBinary(f, WANT);
    assert.ok(g, f);
    assert.equal(g.buildInfo.goVersion, goVersion());
    assert.equal(g.buildInfo.modulePath, 'command-line-arguments');
    assert.deepEqual(g.buildInfo.deps, []);
    assert.equal(g.registerAbi, true);
    assert.deepEqual(g.offsets, offsetsFor(goVersion()));
    assert.equal(g.unsupported, undefined);
  }
  assert.equal(analyzeGoBinary(process.execPath, WANT), undefined, 'node is not a Go binary');
});

test('function entries: pclntab agrees with the symbol table; stripped binaries resolve from pclntab', (t) => {
  const b = bins(t);
  if (!b) return;
  const elf = openElf(b.plain)!;
  const syms = functionSymbols(elf);
  fs.closeSync(elf.fd);
  const funcs = goFunctions(b.plain)!;
  assert.ok(funcs.length > 3000, `${funcs.length} functions`);
  // An assembly function called from Go has two pclntab entries of the same name (the
  // ABIInternal wrapper and the ABI0 body, which .symtab calls NAME.abi0): one of them matches.
  const byName = new Map<string, number[]>();
  for (const f of funcs) byName.set(f.name, [...(byName.get(f.name) ?? []), f.entry]);
  let agree = 0;
  for (const [name, entries] of byName) {
    const s = syms.get(name);
    if (s === undefined) continue;
    assert.ok(entries.includes(s), `${name}: symbol 0x${s.toString(16)} is a pclntab entry`);
    agree++;
  }
  assert.ok(agree > byName.size * 0.9, `${agree} of ${byName.size} pclntab names are in .symtab`);

  const se = openElf(b.stripped)!;
  assert.equal(functionSymbols(se).size, 0, 'the stripped binary has no symbol table');
  fs.closeSync(se.fd);
  const plain = analyzeGoBinary(b.plain, WANT)!;
  const stripped = analyzeGoBinary(b.stripped, WANT)!;
  assert.equal(plain.symbols, 'symtab');
  assert.equal(stripped.symbols, 'pclntab');
  for (const name of WANT) {
    assert.ok(plain.funcs.get(name), `${name} found (unstripped)`);
    assert.ok(stripped.funcs.get(name), `${name} found (stripped)`);
    assert.equal(plain.funcs.get(name)!.entry, syms.get(name), `${name}: entry is its symbol`);
  }
});

test('x86-64 decoding: every instruction boundary of every function matches objdump; RETs found exactly', (t) => {
  const b = bins(t);
  if (!b) return;
  for (const file of [b.plain, b.stripped]) {
    const funcs = goFunctions(file)!;
    const elf = openElf(file)!;
    const text = elf.sections.find((s) => s.name === '.text')!;
    const inText = funcs.filter((f) => f.entry >= text.addr && f.end <= text.addr + text.size);
    const lo = inText[0].entry;
    const hi = inText[inText.length - 1].end;
    const { starts } = objdumpStarts(file, lo, hi);
    const want = new Set(starts);
    const code = readAt(elf.fd, fileOffset(elf, lo), hi - lo);
    fs.closeSync(elf.fd);
    let checked = 0;
    const wrong: string[] = [];
    for (const f of inText) {
      // Not code: the linker's boringcrypto marker, bytes behind a JMP that no disassembler agrees on.
      if (f.name === 'crypto/internal/boring/sig.StandardCrypto') continue;
      const mine = instructionStarts(code, f.entry - lo, f.end - lo);
      if (!mine) { wrong.push(`${f.name}: undecodable`); continue; }
      for (const s of mine) if (!want.has(s + lo)) { wrong.push(`${f.name}+0x${(s + lo - f.entry).toString(16)}`); break; }
      checked += mine.length;
    }
    assert.deepEqual(wrong.slice(0, 20), [], `${wrong.length} functions decode differently from objdump`);
    assert.ok(checked > 200_000, `${checked} instructions checked`);
  }
  const g = analyzeGoBinary(b.stripped, WANT)!;
  const elf = openElf(b.stripped)!;
  try {
    for (const name of WANT) {
      const f = g.funcs.get(name)!;
      const fn = goFunctions(b.stripped)!.find((x) => x.name === name)!;
      const { rets } = objdumpStarts(b.stripped, fn.entry, fn.end);
      assert.ok(rets.length >= 1, `${name} returns`);
      assert.deepEqual(f.returnOffsets, rets.map((a) => fileOffset(elf, a)), `${name}: RET offsets`);
      for (const o of f.returnOffsets) assert.equal(readAt(elf.fd, o, 1)[0], 0xc3);
    }
  } finally {
    fs.closeSync(elf.fd);
  }
});

test('offsets table: the row for the installed Go equals what its DWARF says', (t) => {
  const b = bins(t);
  if (!b) return;
  const gen = `${b.dir}/go-offsets`;
  execFileSync('go', ['build', '-o', gen, `${__dirname}/../../../scripts/go-offsets/main.go`], { env: { ...process.env, GOPROXY: 'off' }, stdio: ['ignore', 'ignore', 'pipe'], timeout: 300_000 });
  const measured = JSON.parse(execFileSync(gen, { encoding: 'utf8' })) as Record<string, unknown>;
  assert.equal(measured.goVersion, goVersion());
  const { goVersion: _v, ...fields } = measured;
  assert.deepEqual(offsetsFor(goVersion()), fields);
  assert.ok(GO_OFFSETS.some((r) => r.generatedFrom === goVersion()), 'the installed toolchain generated a row');
  // The net/http row of the goroutine-aware request probes, the same way.
  const { goVersion: _h, ...http } = JSON.parse(execFileSync(gen, ['http'], { encoding: 'utf8' })) as Record<string, unknown>;
  assert.deepEqual(httpOffsetsFor(goVersion()), http);
  assert.ok(GO_HTTP_OFFSETS.some((r) => r.generatedFrom === goVersion()), 'the installed toolchain generated the net/http row');
});

test('goroutine probes: planned on servers that make net/http calls, stripped or not; every RET of the serve and spawn functions', (t) => {
  const b = bins(t);
  if (!b) return;
  for (const f of [b.plain, b.stripped]) {
    const g = analyzeGoBinary(f, GO_REQ_FUNCS)!;
    const plan = planGoroutines(g);
    assert.ok('attach' in plan, `${f}: ${JSON.stringify(plan)}`);
    const count = (prog: string) => plan.attach.filter((p) => p.prog === prog).length;
    assert.deepEqual([count('go_serve_enter'), count('go_spawn_enter'), count('go_exit_enter'), count('go_client_enter')], [1, 1, 1, 1]);
    assert.equal(count('go_serve_return'), g.funcs.get(GO_REQ.serve)!.returnOffsets.length);
    assert.ok(count('go_serve_return') >= 1 && count('go_spawn_return') >= 1, 'returns probed');
    // The cookie carries the generated offsets: g.goid (word 3) and the server's conn.rwc (word 6).
    const serve = plan.attach.find((p) => p.prog === 'go_serve_enter')!;
    const word = (c: number, i: number) => (Math.floor(c / 2 ** (6 * i)) & 0x3f) * 8;
    assert.equal(word(serve.cookie, 3), offsetsFor(goVersion())!.gGoid);
    assert.equal(word(serve.cookie, 6), httpOffsetsFor(goVersion())!.connRwcData);
  }
  const idle = buildGo('idle', b.dir);
  assert.deepEqual(planGoroutines(analyzeGoBinary(idle.plain, GO_REQ_FUNCS)!), { reason: 'no net/http server' });
});

test.after(() => { if (built) fs.rmSync(built.dir, { recursive: true, force: true }); });

test('doctor view: running Go processes, which can take the crypto/tls probes and why not', async (t) => {
  const b = bins(t);
  if (!b) return;
  const idle = buildGo('idle', b.dir);
  const pki = makePki();
  const procs = [spawn(b.stripped, [pki.cert, pki.key], { stdio: ['ignore', 'pipe', 'ignore'] }), spawn(idle.plain, [], { stdio: ['pipe', 'ignore', 'ignore'] })];
  try {
    await new Promise((r) => procs[0].stdout!.once('data', r)); // listening

    const seen = inspectGoProcesses();
    const server = seen.find((s) => s.path === b.stripped);
    const other = seen.find((s) => s.path === idle.plain);
    assert.ok(server && server.pids.includes(procs[0].pid!), JSON.stringify(seen));
    assert.equal(server.reason, undefined, 'the stripped HTTPS server can be instrumented');
    assert.equal(server.symbols, 'pclntab');
    assert.deepEqual(server.goroutines && { reason: server.goroutines.reason, some: server.goroutines.probes >= 6 }, { reason: undefined, some: true }, 'it could take the goroutine probes');
    assert.ok(other && other.pids.includes(procs[1].pid!), JSON.stringify(seen));
    assert.equal(other.reason, 'does not use crypto/tls');
    assert.ok(!seen.some((s) => s.path === process.execPath), 'node is not listed as Go');
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    fs.rmSync(pki.dir, { recursive: true, force: true });
  }
});
