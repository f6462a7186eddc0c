// Issue 3 item 4, the third hot-swap path: a decoders directory the agent watches
// (hot_swap.watch_dir). A signed module dropped there is swapped in and decodes live traffic;
// an unsigned or tampered one is refused with its reason and counted, and what ran before keeps
// running; a new signed version replaces the old one; an installer's dot-file temporary is
// ignored until it is renamed into place.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as crypto from 'crypto';
import { execFileSync } from 'child_process';
import { wasmPath } from '../helpers/decoder';
import { requireBpf, startAgent, startServer, waitFor, freePort, RunningAgent } from '../helpers/agent';

type Listed = { name: string; version: string; state: string; generation: number; approvedBy?: string; sha256: string };
const listed = async (agent: RunningAgent): Promise<Listed[]> => (await agent.api('/api/decoders')).json() as never;
const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

test('watched decoders directory: signed drop-in swaps, bad ones are refused and counted, updates replace', { timeout: 180_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-watch-'));
  const watch = path.join(dir, 'decoders.d');
  fs.mkdirSync(watch);
  const kp = crypto.generateKeyPairSync('ed25519');
  fs.writeFileSync(path.join(dir, 'ops.pub.pem'), kp.publicKey.export({ type: 'spki', format: 'pem' }));
  const sign = (b: Buffer) => crypto.sign(null, b, kp.privateKey).toString('base64');
  fs.writeFileSync(path.join(dir, 'policy.yaml'), [
    'hot_swap:', '  require: signature', `  watch_dir: ${watch}`,
    '  signing_keys:', '    - name: ops', `      public_key_file: ${path.join(dir, 'ops.pub.pem')}`,
  ].join('\n') + '\n');
  fs.writeFileSync(path.join(dir, 'config.yaml'), `policy_file: ${path.join(dir, 'policy.yaml')}\ndecoders:\n  disabled: [redis]\n`);

  const agent = await startAgent({ config: path.join(dir, 'config.yaml') });
  const redisPort = await freePort();
  const redis = await startServer('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { port: redisPort, readyPattern: /Ready to accept connections/ });
  const cli = (...a: string[]) => execFileSync('redis-cli', ['-p', String(redisPort), ...a], { encoding: 'utf8' });
  const metric = async (re: RegExp) => Number(re.exec(await (await agent.api('/metrics')).text())?.[1] ?? 0);
  try {
    assert.equal((await listed(agent)).some((d) => d.name === 'redis'), false, 'redis is not loaded at start');
    const redisWasm = fs.readFileSync(wasmPath('redis'));

    // 1. unsigned: refused with the reason in the log, counted, nothing loaded
    fs.writeFileSync(path.join(watch, 'redis.wasm'), redisWasm);
    await waitFor(async () => (await metric(/telegen_decoder_swaps_total\{decoder="redis",result="refused"\} (\d+)/)) === 1, 20_000);
    assert.match(agent.logs.join(''), /decoder swap refused[^\n]*not signed|not signed[^\n]*decoder swap refused/);
    assert.equal((await listed(agent)).some((d) => d.name === 'redis'), false);

    // 2. the signature arrives beside it: the same bytes are now accepted and decode live traffic
    fs.writeFileSync(path.join(watch, 'redis.wasm.sig'), sign(redisWasm));
    await waitFor(async () => (await listed(agent)).some((d) => d.name === 'redis' && d.state === 'active'), 20_000);
    const first = (await listed(agent)).find((d) => d.name === 'redis' && d.state === 'active')!;
    assert.equal(first.approvedBy, 'ops');
    assert.equal(first.sha256, sha256(redisWasm));
    cli('SET', 'k', 'v');
    const redisSpans = () => agent.spans().filter((x) => x.attributes['db.system.name'] === 'redis' && x.attributes['server.port'] === redisPort && x.kind === 3);
    await waitFor(() => redisSpans().some((x) => x.attributes['db.query.text'] === 'SET k ?'), 20_000);

    // 3. tampered bytes with the old signature: refused, the running version stays active
    const tampered = Buffer.from(redisWasm);
    tampered[tampered.length - 1] ^= 1;
    fs.writeFileSync(path.join(watch, 'redis.wasm'), tampered);
    await waitFor(async () => (await metric(/telegen_decoder_swaps_total\{decoder="redis",result="refused"\} (\d+)/)) === 2, 20_000);
    assert.match(agent.logs.join(''), /does not verify/);
    let now = (await listed(agent)).filter((d) => d.name === 'redis');
    assert.deepEqual(now.filter((d) => d.state === 'active').map((d) => d.generation), [first.generation], 'the accepted version keeps running');

    // 4. an installer writes a new signed version as a dot-file and renames it into place: only
    //    the renamed file counts, and it becomes the new active generation
    const v2 = fs.readFileSync(wasmPath('redis'));
    // same decoder, different bytes: append a custom section ("telegen.note") so the sha differs
    const note = Buffer.from('watch-dir test v2');
    const section = Buffer.concat([Buffer.from([0, 1 + 12 + note.length, 12]), Buffer.from('telegen.note'), note]);
    const v2bytes = Buffer.concat([v2, section]);
    fs.writeFileSync(path.join(watch, '.redis.wasm.tmp.wasm'), v2bytes);
    fs.writeFileSync(path.join(watch, 'redis.wasm.sig'), sign(v2bytes));
    fs.renameSync(path.join(watch, '.redis.wasm.tmp.wasm'), path.join(watch, 'redis.wasm'));
    await waitFor(async () => (await listed(agent)).some((d) => d.name === 'redis' && d.state === 'active' && d.sha256 === sha256(v2bytes)), 20_000);
    now = (await listed(agent)).filter((d) => d.name === 'redis');
    const active = now.filter((d) => d.state === 'active');
    assert.equal(active.length, 1, 'exactly one active redis decoder');
    assert.ok(active[0].generation > first.generation, 'a newer generation');
    assert.equal(await metric(/telegen_decoder_swaps_total\{decoder="redis",result="ok"\} (\d+)/), 2, 'two accepted swaps: v1 and v2, nothing for the temporary');
    cli('GET', 'after-v2');
    await waitFor(() => redisSpans().some((x) => x.attributes['db.query.text'] === 'GET after-v2'), 20_000);
    assert.equal(await agent.stop(), 0);
  } finally {
    await redis.stop();
    if (agent.proc.exitCode === null) agent.proc.kill('SIGKILL');
  }
});
