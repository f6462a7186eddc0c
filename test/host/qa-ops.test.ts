// What an operator meets first — the command line, config errors, start-up refusals, a second
// agent, replay over real captures — checked the way they use it: bin/telegen as a child process,
// one clear line and the right exit code, never a stack trace, a JSON log dump, or an agent that
// starts when it was asked for help.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as net from 'net';
import { spawn, spawnSync, SpawnSyncReturns } from 'child_process';
import YAML from 'yaml';
import { parseConfig, loadConfig, ConfigError } from '../../host/src/config';
import { resolveExportConfig } from '../../host/src/export';
import { parseArgs, COMMAND_FLAGS, UsageError } from '../../host/src/cli/main';
import { canLoadBpf, checkPrivileges, checkDataDir, lockDataDir, lockHolder, PreflightError } from '../../host/src/cli/preflight';
import { replayToSpans, spanToJsonLine, describeStats } from '../../host/src/cli/replay';
import { CAP } from '../../host/src/security/caps';
import { repoRoot, corpusDir } from '../helpers/decoder';
import { setLogLevel } from '../../host/src/log';
import { requireBpf, startAgent, freePort } from '../helpers/agent';

const BIN = path.join(repoRoot, 'bin', 'telegen');
const dirs: string[] = [];
const tmp = (): string => { const d = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-qa-ops-')); dirs.push(d); return d; };
process.once('exit', (code) => { if (code === 0) for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });
const isRoot = process.getuid?.() === 0;

/** bin/telegen with TELEGEN_LOG_LEVEL unset (the operator's default), killed after `timeoutMs`. */
function telegen(args: string[], opts: { env?: Record<string, string | undefined>; timeoutMs?: number; uid?: number } = {}): SpawnSyncReturns<string> & { ms: number } {
  const env: Record<string, string | undefined> = { ...process.env, ...opts.env };
  if (!opts.env || !('TELEGEN_LOG_LEVEL' in opts.env)) delete env.TELEGEN_LOG_LEVEL;
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: opts.timeoutMs ?? 30_000, env: env as NodeJS.ProcessEnv, uid: opts.uid, gid: opts.uid });
  return Object.assign(r, { ms: Date.now() - t0 });
}

/** One sentence on stderr: no stack trace, no JSON log line. */
function assertOneSentence(stderr: string, what: string): void {
  assert.doesNotMatch(stderr, /\n\s+at |\\n\s+at /, `${what}: no stack trace:\n${stderr}`);
  assert.doesNotMatch(stderr, /^\{"level"/m, `${what}: no JSON log line:\n${stderr}`);
}

// ---------------------------------------------------------------------------------------------
// --help and flags

test('every command answers --help / -h with its usage and exit 0 (run --help started the agent, collect --help a collector)', () => {
  for (const args of [['--help'], ['-h'], ['help'], ['help', 'run'], ...Object.keys(COMMAND_FLAGS).flatMap((c) => [[c, '--help'], [c, '-h']])]) {
    const r = telegen(args, { timeoutMs: 15_000 });
    assert.equal(r.signal, null, `telegen ${args.join(' ')} did not return (it started something): ${r.stderr.slice(-500)}`);
    assert.equal(r.status, 0, `telegen ${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stdout, /^usage:\n/, `telegen ${args.join(' ')} prints usage`);
    const cmd = args[0] === 'help' ? args[1] : args[0].startsWith('-') ? undefined : args[0];
    if (cmd) assert.match(r.stdout, new RegExp(`telegen ${cmd}\\b`), `telegen ${args.join(' ')}: the usage of ${cmd}`);
    assert.doesNotMatch(r.stderr, /decoder loaded|telegen running|collector running/, `telegen ${args.join(' ')} started nothing`);
  }
});

test('run --help says where the output goes and each flag\'s default (it printed the usage line alone)', () => {
  for (const args of [['run', '--help'], ['help', 'run']]) {
    const r = telegen(args, { timeoutMs: 15_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /--data-dir DIR .*traces\.jsonl, metrics\.jsonl, logs\.jsonl/);
    assert.match(r.stdout, /default data_dir \/var\/lib\/telegen \(env TELEGEN_DATA_DIR\)/);
    assert.match(r.stdout, /--api-listen HOST:PORT +the HTTP API and page; default api\.listen 127\.0\.0\.1:9464 \(env TELEGEN_API_LISTEN\)/);
    assert.match(r.stdout, /OTEL_EXPORTER_OTLP_ENDPOINT/);
  }
  // The defaults it names are the config's.
  const { loadConfig } = require('../../host/src/config') as typeof import('../../host/src/config');
  const cfg = loadConfig(undefined);
  assert.equal(cfg.data_dir, '/var/lib/telegen');
  assert.equal(cfg.api.listen, '127.0.0.1:9464');
  for (const c of ['replay', 'doctor', 'collect']) assert.match(telegen([c, '--help']).stdout, /^usage:\n.*\n[A-Z].+\n  --/, `${c} --help says what it does and its flags`);
});

test('an unknown flag, a flag without its value and a stray argument are refused with usage and exit 2 (they were ignored and the agent started on its defaults)', () => {
  const cases: Array<[string[], RegExp]> = [
    [['run', '--confg', '/etc/telegen.yaml'], /unknown flag --confg \(telegen run takes --config, --data-dir, --api-listen\)/],
    [['run', '--config'], /--config needs a value/],
    [['run', '--data-dir', '--api-listen', '127.0.0.1:1'], /--data-dir needs a value/],
    [['run', '--config='], /--config needs a value/],
    [['run', 'extra'], /unexpected argument "extra"/],
    // There are no short flags but -h: "-d DIR" was 'unexpected arguments "-d" "DIR"'.
    [['run', '-d', '/tmp/x'], /^telegen run: unknown flag -d: flags are long, --name VALUE \(telegen run takes --config, --data-dir, --api-listen\)/],
    // Replay's capture file is its argument: none, or two, is a wrong command line (was exit 1, no usage).
    [['replay'], /^telegen replay: needs a capture file: telegen replay FILE\.pcap\n/],
    [['replay', 'a.pcap', 'b.pcap'], /^telegen replay: takes one capture file, not 2 \(a\.pcap b\.pcap\): run it once per file\n/],
    [['doctor', '--json=yes'], /--json takes no value/],
    [['replay', 'x.pcap', '--fromat', 'otlp'], /unknown flag --fromat/],
    [['collect', '--replica', '1'], /unknown flag --replica /],
    [['decoders', 'list', '--directory', '/x'], /unknown flag --directory/],
  ];
  for (const [args, re] of cases) {
    const r = telegen(args, { timeoutMs: 15_000 });
    assert.equal(r.status, 2, `telegen ${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re, `telegen ${args.join(' ')}`);
    assert.match(r.stderr, /usage:/);
    assertOneSentence(r.stderr.split('usage:')[0], args.join(' '));
  }
  assert.equal(telegen(['frobnicate']).status, 2);
});

test('parseArgs: a bool flag never swallows the next argument; --name=value; -h is help', () => {
  assert.deepEqual(parseArgs(['--json', 'x'], COMMAND_FLAGS.doctor, 'doctor'), { _: ['x'], flags: { json: true } });
  assert.deepEqual(parseArgs(['a.pcap', '--format=otlp'], COMMAND_FLAGS.replay, 'replay'), { _: ['a.pcap'], flags: { format: 'otlp' } });
  assert.deepEqual(parseArgs(['-h'], COMMAND_FLAGS.run, 'run').flags, { help: true });
  assert.throws(() => parseArgs(['--bogus'], COMMAND_FLAGS.run, 'run'), UsageError);
  // Without a spec (embedders) it stays permissive, as before.
  assert.deepEqual(parseArgs(['--anything', 'v', '--flag']), { _: [], flags: { anything: 'v', flag: true } });
});

test('README: every flag its Commands table names is one the command takes', () => {
  const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const rows = readme.split('\n').filter((l) => /^\| `telegen [a-z]+/.test(l));
  assert.ok(rows.length >= 6, 'the Commands table');
  for (const row of rows) {
    const cell = /^\| (`telegen[^|]*(?:\\\|[^|]*)*)\|/.exec(row)?.[1] ?? '';
    for (const part of cell.split(' / ')) {
      const cmd = /`telegen ([a-z]+)/.exec(part)?.[1];
      if (!cmd) continue;
      assert.ok(COMMAND_FLAGS[cmd], `README names a command telegen does not have: ${cmd}`);
      for (const m of part.matchAll(/--([a-z][a-z-]*)/g)) {
        assert.ok(m[1] in COMMAND_FLAGS[cmd], `README: telegen ${cmd} --${m[1]} is not a flag of telegen ${cmd}`);
      }
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Config and environment errors

test('README config example validates, and an unknown key lists the keys allowed there', () => {
  const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const block = /## Configuration[\s\S]*?```yaml\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(block, 'the README has a config example');
  const cfg = parseConfig(YAML.parse(block), 'README');
  resolveExportConfig(cfg.otlp ?? {}, {});
  assert.throws(() => parseConfig({ tracers: { sockett: {} } }), (e: Error) => e instanceof ConfigError
    && /tracers: unknown key\(s\) "sockett" \(allowed: socket, profile, tls/.test(e.message));
  assert.throws(() => parseConfig({ bogus: 1 }), /\(top level\): unknown key\(s\) "bogus" \(allowed: data_dir, .*tracers/);
  assert.throws(() => parseConfig({ tracers: { socket: { ringbytes: 1 } } }), /tracers\.socket: unknown key\(s\) "ringbytes" \(allowed: enabled, ring_bytes, capture_max/);
});

test('api.listen: a port outside 1-65535 is a config error naming --api-listen (it failed only after every tracer attached)', () => {
  assert.throws(() => parseConfig({ api: { listen: '127.0.0.1:99999' } }), /api\.listen: the port must be 1-65535/);
  assert.throws(() => parseConfig({ api: { listen: '127.0.0.1:0' } }), /api\.listen: the port must be 1-65535/);
  assert.equal(parseConfig({ api: { listen: '[::1]:9464' } }).api.listen, '[::1]:9464');
  const d = tmp();
  for (const listen of ['127.0.0.1:99999', 'nope']) {
    const r = telegen(['run', '--data-dir', d, '--api-listen', listen]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /api\.listen \(set by --api-listen\): (the port must be 1-65535|must be HOST:PORT)\n/);
    assert.equal((r.stderr.match(/api\.listen/g) ?? []).length, 1, `one line for one mistake: ${r.stderr}`);
    assertOneSentence(r.stderr, listen);
  }
  const c = telegen(['collect', '--data-dir', d, '--api-listen', 'nope']);
  assert.equal(c.status, 1);
  assert.match(c.stderr, /^telegen: --api-listen "nope": must be HOST:PORT\n$/);
});

test('environment: an unknown TELEGEN_LOG_LEVEL (pino threw at load) and a TELEGEN_MAX_* that is no number (ignored) are refused by name', () => {
  const d = tmp();
  const lvl = telegen(['run', '--data-dir', d], { env: { TELEGEN_LOG_LEVEL: 'loud' } });
  assert.equal(lvl.status, 1);
  assert.match(lvl.stderr, /^telegen: TELEGEN_LOG_LEVEL: "loud" is not allowed; use one of trace, debug, info, warn, error, fatal, silent\n$/);
  const rss = telegen(['run', '--data-dir', d], { env: { TELEGEN_MAX_RSS_MB: 'abc' } });
  assert.equal(rss.status, 1);
  assert.match(rss.stderr, /^telegen: TELEGEN_MAX_RSS_MB: "abc" is not a number \(it sets agent\.max_rss_mb\)\n$/);
  const cpu = telegen(['run', '--data-dir', d], { env: { TELEGEN_MAX_CPU_PERCENT: '-5' } });
  assert.equal(cpu.status, 1);
  assert.match(cpu.stderr, /agent\.max_cpu_percent \(set by TELEGEN_MAX_CPU_PERCENT=-5\): Number must be greater than or equal to 0/);
  // The file's own value is the file's: no env note when the file sets the key.
  const f = path.join(d, 'c.yaml');
  fs.writeFileSync(f, 'agent:\n  max_cpu_percent: -1\n');
  const prev = process.env.TELEGEN_MAX_CPU_PERCENT;
  process.env.TELEGEN_MAX_CPU_PERCENT = '5';
  try {
    assert.throws(() => loadConfig(f), (e: Error) => /agent\.max_cpu_percent: Number must be/.test(e.message) && !/set by/.test(e.message));
  } finally { if (prev === undefined) delete process.env.TELEGEN_MAX_CPU_PERCENT; else process.env.TELEGEN_MAX_CPU_PERCENT = prev; }
});

// ---------------------------------------------------------------------------------------------
// Start-up refusals (cli/preflight.ts): before any BPF is loaded

test('preflight units: privileges, data dir, one agent per data dir', () => {
  const cfg = parseConfig({});
  assert.equal(canLoadBpf(1n << BigInt(CAP.BPF)), true);
  assert.equal(canLoadBpf(1n << BigInt(CAP.SYS_ADMIN)), true);
  assert.equal(canLoadBpf(1n << BigInt(CAP.PERFMON)), false);
  assert.throws(() => checkPrivileges(cfg, 0n, 1000), (e: Error) => e instanceof PreflightError
    && /telegen run needs root, or CAP_BPF and CAP_PERFMON .*\(socket, tls, tcp.*\); this process \(uid 1000\) has neither.*telegen doctor.*telegen replay/.test(e.message));
  // Nothing to load, nothing needed.
  const off = parseConfig({ tracers: Object.fromEntries(Object.keys(cfg.tracers).map((k) => [k, { enabled: false }])) });
  assert.doesNotThrow(() => checkPrivileges(off, 0n, 1000));

  const d = tmp();
  const file = path.join(d, 'a-file');
  fs.writeFileSync(file, '');
  assert.throws(() => checkDataDir(path.join(file, 'sub'), '--data-dir'), /cannot create the data dir .*a-file\/sub \(--data-dir\): .*a-file is not a directory/);
  // Node's recursive mkdir spins forever on an ENOENT from /proc: this must return.
  assert.throws(() => checkDataDir('/proc/telegen-qa-ops/data'), /cannot create the data dir \/proc\/telegen-qa-ops\/data/);
  checkDataDir(path.join(d, 'x', 'y'));
  assert.ok(fs.statSync(path.join(d, 'x', 'y')).isDirectory());
  assert.deepEqual(fs.readdirSync(path.join(d, 'x', 'y')), [], 'the write probe is removed');

  // Lock: taken, refused while a live telegen holds it, stale after it is gone.
  const dir = path.join(d, 'lock');
  fs.mkdirSync(dir);
  const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)', 'telegen-lock-holder'], { stdio: 'ignore' });
  try {
    fs.writeFileSync(path.join(dir, 'telegen.pid'), `${holder.pid}\n`);
    assert.equal(lockHolder(dir), holder.pid);
    assert.throws(() => lockDataDir(dir), new RegExp(`another telegen agent \\(pid ${holder.pid}\\) is running with the data dir ${dir}: stop it first`));
  } finally { holder.kill('SIGKILL'); }
  // A pid that is not a telegen (reused after a SIGKILL) or not alive is stale.
  fs.writeFileSync(path.join(dir, 'telegen.pid'), '1\n');
  assert.equal(lockHolder(dir), undefined);
  const release = lockDataDir(dir);
  assert.equal(fs.readFileSync(path.join(dir, 'telegen.pid'), 'utf8').trim(), String(process.pid));
  release();
  assert.equal(fs.existsSync(path.join(dir, 'telegen.pid')), false, 'released');
});

test('run refuses, in one line and before any tracer loads: an unwritable or impossible data dir, a busy API port, unreadable files the config names', async () => {
  const d = tmp();
  const file = path.join(d, 'a-file');
  fs.writeFileSync(file, '');
  const busy = net.createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
  const busyPort = (busy.address() as net.AddressInfo).port;
  const port = await freePort();
  const cfg = (name: string, text: string) => { const f = path.join(d, name); fs.writeFileSync(f, text); return f; };
  try {
    const cases: Array<[string[], RegExp]> = [
      [['run', '--data-dir', file, '--api-listen', `127.0.0.1:${port}`], /cannot create the data dir .*a-file \(--data-dir\): .*not a directory/],
      [['run', '--data-dir', '/proc/telegen-qa-ops', '--api-listen', `127.0.0.1:${port}`], /cannot create the data dir \/proc\/telegen-qa-ops \(--data-dir\)/],
      [['run', '--data-dir', path.join(d, 'busy'), '--api-listen', `127.0.0.1:${busyPort}`],
        new RegExp(`the API address 127\\.0\\.0\\.1:${busyPort} \\(--api-listen\\) is already in use — another telegen agent, or another program`)],
      [['run', '--data-dir', path.join(d, 'na'), '--api-listen', '10.255.255.254:9464'], /the API address 10\.255\.255\.254:9464 \(--api-listen\) is not an address of this host/],
      [['run', '--config', cfg('tok.yaml', 'api:\n  token_file: /nonexistent/token\n'), '--data-dir', path.join(d, 't'), '--api-listen', `127.0.0.1:${port}`], /api\.token_file: cannot read \/nonexistent\/token \(ENOENT\)/],
      [['run', '--config', cfg('tls.yaml', 'api:\n  tls: { cert_file: /nonexistent/c.pem, key_file: /nonexistent/k.pem }\n'), '--data-dir', path.join(d, 't'), '--api-listen', `127.0.0.1:${port}`], /api\.tls\.cert_file: cannot read \/nonexistent\/c\.pem/],
      [['run', '--config', cfg('dec.yaml', 'decoders:\n  dir: /nonexistent/decoders\n'), '--data-dir', path.join(d, 't'), '--api-listen', `127.0.0.1:${port}`], /decoders\.dir: \/nonexistent\/decoders is not a directory/],
    ];
    for (const [args, re] of cases) {
      const r = telegen(args, { timeoutMs: 30_000 });
      assert.equal(r.signal, null, `telegen ${args.join(' ')} hung: ${r.stderr}`);
      assert.equal(r.status, 1, `telegen ${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.doesNotMatch(r.stderr, /hooked|programs attached|telegen running|start-up failed: detaching/, 'refused before any tracer was loaded');
      assertOneSentence(r.stderr, args.join(' '));
      assert.ok(r.ms < 15_000, `refused at once (${r.ms} ms)`);
    }
    // The lock of a refused start is not left behind.
    assert.equal(fs.existsSync(path.join(d, 'busy', 'telegen.pid')), false);
  } finally { busy.close(); }
});

test('run as a user without BPF privileges: one sentence naming root/CAP_BPF, doctor and replay (it ran on, tracing nothing, with libbpf errors)', (t) => {
  if (!isRoot) { t.skip('needs root to run the agent as another user'); return; }
  const d = tmp();
  fs.chmodSync(d, 0o777);
  const r = telegen(['run', '--data-dir', path.join(d, 'data'), '--api-listen', '127.0.0.1:1'], { uid: 65534, timeoutMs: 30_000 });
  assert.equal(r.signal, null, `it ran on: ${r.stderr.slice(-800)}`);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /^telegen: telegen run needs root, or CAP_BPF and CAP_PERFMON .* \(uid 65534\) has neither.*`telegen doctor`.*`telegen replay FILE\.pcap` needs no privileges\.\n$/);
  assert.doesNotMatch(r.stderr, /libbpf|RLIMIT_MEMLOCK/);
  // The loader container (pod mode) says the same.
  const l = telegen(['loader', '--socket', path.join(d, 'l.sock'), '--data-dir', path.join(d, 'data')], { uid: 65534, timeoutMs: 30_000 });
  assert.equal(l.status, 1, l.stderr);
  assert.match(l.stderr, /telegen loader needs root/);
});

test('two agents at once: the same data dir is refused naming the running one (it overwrote its api-token), the same port is refused; SIGTERM exits 0 and frees the dir', { timeout: 180_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const a = await startAgent();
  try {
    const lock = path.join(a.dataDir, 'telegen.pid');
    assert.equal(fs.readFileSync(lock, 'utf8').trim(), String(a.proc.pid), 'DATA_DIR/telegen.pid names the agent');
    const token = fs.readFileSync(path.join(a.dataDir, 'api-token'), 'utf8');
    const port = await freePort();
    const same = telegen(['run', '--data-dir', a.dataDir, '--api-listen', `127.0.0.1:${port}`]);
    assert.equal(same.status, 1, same.stderr);
    assert.match(same.stderr, new RegExp(`^telegen: another telegen agent \\(pid ${a.proc.pid}\\) is running with the data dir ${a.dataDir}: stop it first`));
    assert.equal(fs.readFileSync(path.join(a.dataDir, 'api-token'), 'utf8'), token, 'the running agent\'s token is untouched');
    // The token on disk still opens the running agent's mutating API (a 4xx other than 401).
    const put = await fetch(`http://127.0.0.1:${a.apiPort}/api/decoders/dns`, { method: 'PUT', headers: { authorization: `Bearer ${token.trim()}` }, body: new Uint8Array(4) });
    assert.notEqual(put.status, 401);
    // The CLI with the agent's data dir gets past the token; without it, it is told where to look.
    const wasm = path.join(repoRoot, 'build', 'decoders', 'dns.wasm');
    const withDir = telegen(['decoders', 'load', wasm, '--api', `127.0.0.1:${a.apiPort}`, '--data-dir', a.dataDir], { env: { TELEGEN_API_TOKEN: undefined } });
    assert.doesNotMatch(withDir.stdout + withDir.stderr, /^401 /m, withDir.stderr);
    const noToken = telegen(['decoders', 'load', wasm, '--api', `127.0.0.1:${a.apiPort}`, '--token-file', '/nonexistent/token'], { env: { TELEGEN_API_TOKEN: undefined } });
    assert.equal(noToken.status, 1);
    assert.match(noToken.stderr, /^401 .*\ntelegen: the agent refused the token \(none: \/nonexistent\/token is not readable\): give the running agent's --data-dir, or --token-file\n$/);
    const other = tmp();
    const samePort = telegen(['run', '--data-dir', other, '--api-listen', `127.0.0.1:${a.apiPort}`]);
    assert.equal(samePort.status, 1, samePort.stderr);
    assert.match(samePort.stderr, new RegExp(`the API address 127\\.0\\.0\\.1:${a.apiPort} \\(--api-listen\\) is already in use`));
    assert.ok(samePort.ms < 15_000, `refused before attaching anything (${samePort.ms} ms)`);
    assert.equal(fs.existsSync(path.join(other, 'telegen.pid')), false);
    // Started without --config, a SIGHUP has no file to re-read: said so, nothing changes.
    a.proc.kill('SIGHUP');
    const deadline = Date.now() + 30_000;
    while (!a.logs.join('').includes('no file to re-read') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.match(a.logs.join(''), /config reload \(SIGHUP\): telegen run was started without --config, so there is no file to re-read/);
    assert.ok((await a.api('/readyz')).ok);
  } finally {
    assert.equal(await a.stop(), 0, 'SIGTERM: exit 0');
  }
  assert.equal(fs.existsSync(path.join(a.dataDir, 'telegen.pid')), false, 'the lock goes with the agent');
});

// ---------------------------------------------------------------------------------------------
// replay

test('replay: not a capture, a directory, an empty file, a missing one — one line, exit 1, no JSON log with a stack (at the default log level)', () => {
  const d = tmp();
  const txt = path.join(d, 'notes.txt');
  fs.writeFileSync(txt, '# not a capture at all\n');
  const empty = path.join(d, 'empty.pcap');
  fs.writeFileSync(empty, '');
  const cases: Array<[string[], RegExp]> = [
    [['replay', txt], /^telegen: .*notes\.txt: not a pcap or pcapng file \(magic 0x[0-9a-f]{8}\)\n$/],
    [['replay', empty], /^telegen: .*empty\.pcap: not a capture file \(0 bytes\)\n$/],
    [['replay', d], /^telegen: capture .* is a directory: give one \.pcap or \.pcapng file\n$/],
    [['replay', path.join(d, 'missing.pcap')], /^telegen: capture .*missing\.pcap does not exist\n$/],
    [['replay', path.join(d, 'missing.pcap'), '--format', 'xml'], /^telegen: --format must be jsonl or otlp, not "xml"\n$/],
  ];
  for (const [args, re] of cases) {
    const r = telegen(args);
    assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re, args.join(' '));
    assert.equal(r.stdout, '');
  }
});

test('replay: stderr is the summary (no info log lines); an empty capture in OTLP form is still one JSON request', () => {
  const d = tmp();
  const http = path.join(corpusDir, 'pcap', 'http1', 'zeek__get.pcap');
  if (fs.existsSync(http)) {
    const r = telegen(['replay', http]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /^telegen replay: 1 spans from .*zeek__get\.pcap \(pcap: \d+ packets, 1 TCP and 0 UDP flows, \d+ payload bytes[^)]*\)\n$/);
    assert.equal(JSON.parse(r.stdout.trim()).name.startsWith('GET'), true);
  }
  // A pcap file header and no packets.
  const hdr = Buffer.alloc(24);
  hdr.writeUInt32LE(0xa1b2c3d4, 0); hdr.writeUInt16LE(2, 4); hdr.writeUInt16LE(4, 6); hdr.writeUInt32LE(65535, 16); hdr.writeUInt32LE(1, 20);
  const f = path.join(d, 'nothing.pcap');
  fs.writeFileSync(f, hdr);
  const o = telegen(['replay', f, '--format', 'otlp']);
  assert.equal(o.status, 0, o.stderr);
  assert.deepEqual(JSON.parse(o.stdout), { resourceSpans: [] });
  assert.match(o.stderr, /^telegen replay: 0 spans from .* \(pcap: 0 packets, 0 TCP and 0 UDP flows, 0 payload bytes\)\n$/);
  assert.equal(describeStats(undefined), '');
});

const pcapRoot = path.join(corpusDir, 'pcap');
const captures = fs.existsSync(pcapRoot)
  ? fs.readdirSync(pcapRoot).flatMap((p) => fs.statSync(path.join(pcapRoot, p)).isDirectory() ? fs.readdirSync(path.join(pcapRoot, p)).filter((f) => /\.pcap(ng)?$/.test(f)).map((f) => path.join(pcapRoot, p, f)) : [])
  : [];

test('replay over every corpus capture: no crash, every span a JSON line and OTLP-serializable; one CLI run per protocol exits 0 with parseable output', { timeout: 300_000, skip: captures.length ? false : `no corpus under ${pcapRoot}` }, async () => {
  const { JsonTraceSerializer } = await import('@opentelemetry/otlp-transformer');
  setLogLevel('warn'); // each replay loads every decoder: 6 info lines a capture
  let total = 0;
  for (const f of captures) {
    const res = await replayToSpans(f);
    for (const s of res.spans) {
      const line = JSON.parse(spanToJsonLine(s));
      assert.ok(line.name && line.kind && /^\d+$/.test(line.startTimeUnixNano) && /^\d+$/.test(line.endTimeUnixNano), `${f}: ${JSON.stringify(line)}`);
      assert.ok(BigInt(line.endTimeUnixNano) >= BigInt(line.startTimeUnixNano), `${f}: ${line.name} ends before it starts`);
    }
    if (res.spans.length) assert.ok(JsonTraceSerializer.serializeRequest(res.spans), f);
    total += res.spans.length;
  }
  assert.ok(total > captures.length / 2, `the corpus gives spans (${total} from ${captures.length} captures)`);
  const perProtocol = new Map<string, string>();
  for (const f of captures) if (!perProtocol.has(path.basename(path.dirname(f)))) perProtocol.set(path.basename(path.dirname(f)), f);
  for (const f of perProtocol.values()) {
    for (const format of ['jsonl', 'otlp']) {
      const r = telegen(['replay', f, '--format', format], { timeoutMs: 60_000 });
      assert.equal(r.status, 0, `${f}: ${r.stderr}`);
      for (const l of r.stdout.split('\n').filter(Boolean)) JSON.parse(l);
      assert.match(r.stderr, /^telegen replay: \d+ spans from /);
      assertOneSentence(r.stderr, f);
    }
  }
});

// ---------------------------------------------------------------------------------------------
// decoders, collect

test('decoders: a missing module or directory is one line and exit 1 (a stack trace, and "list" printed nothing with exit 0)', async () => {
  const port = await freePort();
  const down = telegen(['decoders', 'rollback', 'dns', '--api', `127.0.0.1:${port}`]);
  assert.equal(down.status, 1);
  assert.match(down.stderr, new RegExp(`^telegen: cannot reach the agent API at 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\): is the agent running there\\?`));
  const load = telegen(['decoders', 'load', '/nonexistent/x.wasm', '--api', '127.0.0.1:1']);
  assert.equal(load.status, 1);
  assert.match(load.stderr, /^telegen: module \/nonexistent\/x\.wasm does not exist\n$/);
  const list = telegen(['decoders', 'list', '--dir', '/nonexistent/decoders']);
  assert.equal(list.status, 1);
  assert.match(list.stderr, /^telegen: decoder directory \/nonexistent\/decoders does not exist\n$/);
  const verify = telegen(['decoders', 'verify', '/nonexistent/x.wasm']);
  assert.equal(verify.status, 1);
  assert.match(verify.stderr, /^refused: module \/nonexistent\/x\.wasm does not exist\n$/);
  const sign = telegen(['decoders', 'sign', path.join(repoRoot, 'README.md'), '--key', '/nonexistent/key.pem']);
  assert.equal(sign.status, 1);
  assert.match(sign.stderr, /^telegen: key \/nonexistent\/key\.pem does not exist\n$/);
  const ok = telegen(['decoders', 'list']);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /^http1 /m);
  assert.equal(ok.stderr, '', 'no info log lines around the listing');
});

test('collect: API address in use is one line and exit 1 (the EADDRINUSE error was logged with its stack)', async () => {
  const busy = net.createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
  const port = (busy.address() as net.AddressInfo).port;
  try {
    const r = telegen(['collect', '--data-dir', tmp(), '--api-listen', `127.0.0.1:${port}`]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^telegen: the API address 127\\.0\\.0\\.1:${port} \\(--api-listen\\) is already in use`));
    assertOneSentence(r.stderr, 'collect');
  } finally { busy.close(); }
});
