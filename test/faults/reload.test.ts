// SIGHUP applies a changed config to a running agent (host/src/config/reload.ts): the keys that can
// change live take effect on the spans it exports and on what it logs, the changed keys that need a
// restart are named, an invalid file changes nothing, and every reload is counted on /metrics.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { repoRoot } from '../helpers/decoder';
import { requireBpf, startAgent, startServer, RunningAgent } from '../helpers/agent';
import { load, metrics, sum, waitFor, waitMetric } from './helpers';

const fixture = path.join(repoRoot, 'test', 'fixtures', 'http-server.js');

const lines = (agent: RunningAgent, msg: string) => agent.logs.join('').split('\n').filter((l) => l.includes(`"msg":"${msg}"`)).map((l) => JSON.parse(l) as Record<string, unknown>);
const reloads = async (agent: RunningAgent, result: string) => sum(await metrics(agent), 'telegen_config_reloads_total', { result });

test('SIGHUP: redaction, sampling and the log level apply live; a changed tracer key is named for a restart; an invalid file changes nothing', { timeout: 240_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-reload-'));
  // The default policy (it has a redaction section): pipeline.redaction adds to it.
  const cfg = path.join(dir, 'telegen.yaml');
  const rule = 'discovery:\n  service_rules: [{ name: shop, cmdline: "http-server\\\\.js" }]\n';
  const write = (extra: string) => fs.writeFileSync(cfg, `tracers:\n  profile:\n    enabled: false\n${extra}`);
  write('log_level: warn\n');
  const srv = await startServer(process.execPath, [fixture, '0']);
  const agent = await startAgent({ config: cfg });
  const hup = async (result: string) => {
    const before = await reloads(agent, result);
    agent.proc.kill('SIGHUP');
    await waitFor(async () => (await reloads(agent, result)) > before, 30_000);
  };
  const served = (p: string) => agent.spans().filter((s) => s.kind === 2 && s.attributes['server.port'] === srv.port && String(s.attributes['url.path']) === p);
  const serverSpans = async () => sum(await metrics(agent), 'telegen_spans_total', { kind: 'server' });
  try {
    assert.equal(lines(agent, 'telegen running').length, 0, 'log_level warn: the info line at start-up is not logged');
    assert.deepEqual([await reloads(agent, 'applied'), await reloads(agent, 'restart_needed'), await reloads(agent, 'invalid')], [0, 0, 0]);

    // Before: the session parameter is exported as sent.
    assert.equal((await load(srv.port, 5, 1, { path: '/users/1?session=s3cret' })).filter((c) => c === 200).length, 5);
    const plain = await waitFor(() => { const s = served('/users/1'); return s.length >= 5 && s; }, 60_000);
    assert.ok(plain.every((s) => s.attributes['url.query'] === 'session=s3cret'), JSON.stringify(plain.map((s) => s.attributes['url.query'])));

    // Redaction and the log level apply; a tracer key needs a restart and is named.
    // (extra text continues the tracers: mapping first)
    write(`  socket:\n    capture_max: 8192\nlog_level: info\npipeline:\n  redaction:\n    query_params: [session]\n${rule}`);
    await hup('restart_needed');
    const reloaded = await waitFor(() => lines(agent, 'config reloaded')[0], 10_000); // logged at the new level (info)
    assert.deepEqual(reloaded.applied, ['log_level', 'pipeline.redaction.query_params', 'discovery.service_rules']);
    const restart = await waitFor(() => lines(agent, 'config reload: these changed keys apply only after a restart')[0], 10_000);
    assert.deepEqual(restart.restart_needed, ['tracers.socket.capture_max']);
    assert.equal(await reloads(agent, 'applied'), 0);
    assert.equal((await load(srv.port, 5, 1, { path: '/users/2?session=s3cret&token=t0k' })).filter((c) => c === 200).length, 5);
    const masked = await waitFor(() => { const s = served('/users/2'); return s.length >= 5 && s; }, 60_000);
    // The config's parameter and the default policy's (token) both.
    assert.ok(masked.every((s) => s.attributes['url.query'] === 'session=REDACTED&token=REDACTED'), JSON.stringify(masked.map((s) => s.attributes['url.query'])));
    // The service rule names the server process that was running before the reload.
    assert.deepEqual([...new Set(masked.map((s) => s.resource?.['service.name']))], ['shop']);
    assert.ok(plain.every((s) => s.resource?.['service.name'] !== 'shop'));

    // Sampling 0 (errors still kept): the 200s are counted and dropped, the 500s exported. The
    // capture size is back to what runs, so nothing needs a restart.
    write(`log_level: info\npipeline:\n  redaction:\n    query_params: [session]\n  sampling:\n    ratio: 0\n${rule}`);
    await hup('applied');
    assert.deepEqual((await waitFor(() => lines(agent, 'config reloaded')[1], 10_000)).applied, ['pipeline.sampling.ratio']);
    const spans0 = await serverSpans();
    const sampledOut0 = sum(await metrics(agent), 'telegen_spans_sampled_out_total');
    assert.equal((await load(srv.port, 10, 2, { path: '/users/3' })).filter((c) => c === 200).length, 10);
    assert.equal((await load(srv.port, 3, 1, { path: '/status/500' })).filter((c) => c === 500).length, 3);
    await waitFor(() => served('/status/500').length >= 3, 60_000);
    await waitMetric(agent, (ms) => sum(ms, 'telegen_spans_total', { kind: 'server' }) - spans0 >= 13, 60_000, '13 server spans made');
    assert.ok(sum(await metrics(agent), 'telegen_spans_sampled_out_total') - sampledOut0 >= 10, 'the 200s were sampled out');
    assert.equal(served('/users/3').length, 0, 'no span of a sampled-out request is exported');

    // Invalid files: refused, counted, and the running config (sampling 0) stays: a wrong key, and
    // a service rule that is no regular expression (found only as the rules are built).
    write('log_level: info\ntracers_typo: {}\n');
    await hup('invalid');
    const failed = await waitFor(() => lines(agent, 'config reload failed: keeping the running config')[0], 10_000);
    assert.match(String(failed.error), /tracers_typo/);
    write('log_level: info\ndiscovery:\n  service_rules: [{ name: broken, cmdline: "(" }]\n');
    await hup('invalid');
    const failed2 = await waitFor(() => lines(agent, 'config reload failed: keeping the running config')[1], 10_000);
    assert.match(String(failed2.error), /discovery\.service_rules: Invalid regular expression/);
    assert.equal(agent.proc.exitCode, null, 'still running');
    const sampledOut1 = sum(await metrics(agent), 'telegen_spans_sampled_out_total');
    assert.equal((await load(srv.port, 5, 1, { path: '/users/4' })).filter((c) => c === 200).length, 5);
    await waitMetric(agent, (ms) => sum(ms, 'telegen_spans_sampled_out_total') - sampledOut1 >= 5, 60_000, 'still sampled out');
    assert.equal(served('/users/4').length, 0);

    // The CPU budget applies to the running overload gate (reading pauses under load); the memory
    // bound is named for a restart.
    write(`log_level: info\npipeline:\n  redaction:\n    query_params: [session]\n  sampling:\n    ratio: 0\n${rule}agent:\n  max_cpu_percent: 2\n  max_rss_mb: 200\n`);
    await hup('restart_needed');
    assert.deepEqual((await waitFor(() => lines(agent, 'config reloaded')[2], 10_000)).applied, ['agent.max_cpu_percent']);
    assert.deepEqual((await waitFor(() => lines(agent, 'config reload: these changed keys apply only after a restart')[1], 10_000)).restart_needed, ['agent.max_rss_mb']);
    await load(srv.port, 200, 4, { path: '/users/5' });
    await waitMetric(agent, (ms) => sum(ms, 'telegen_ingest_ring_paused_seconds_total', { reason: 'cpu_budget' }) > 0, 60_000, 'ring reading paused for the 2% budget');

    // Back to warn: the reload is counted, and its info line is no longer logged.
    write(`log_level: warn\npipeline:\n  redaction:\n    query_params: [session]\n  sampling:\n    ratio: 0\n${rule}`);
    await hup('applied');
    await new Promise((r) => setTimeout(r, 500)); // the line, were it logged, would be in by now
    assert.equal(lines(agent, 'config reloaded').length, 3, 'a reload to warn logs no info line');
    assert.equal(await agent.stop(), 0);
  } finally {
    await srv.stop();
    if (agent.proc.exitCode === null && agent.proc.signalCode === null) agent.proc.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('SIGHUP under privilege separation: the loader reads the file, the unprivileged worker applies what can change live', { timeout: 240_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-reload-privsep-'));
  fs.chmodSync(dir, 0o755); // the worker (nobody) must reach the socket in it
  const cfg = path.join(dir, 'telegen.yaml');
  const write = (extra: string) => fs.writeFileSync(cfg, `tracers:\n  profile: { enabled: false }\n${extra}security:\n  privilege_separation: true\n  loader_socket: ${path.join(dir, 'loader.sock')}\n`);
  write('');
  const srv = await startServer(process.execPath, [fixture, '0']);
  const agent = await startAgent({ config: cfg });
  const served = (p: string) => agent.spans().filter((s) => s.kind === 2 && s.attributes['server.port'] === srv.port && String(s.attributes['url.path']) === p);
  const hup = async (result: string) => {
    const before = await reloads(agent, result);
    agent.proc.kill('SIGHUP'); // the loader: `telegen run` is the loader here
    await waitFor(async () => (await reloads(agent, result)) > before, 30_000);
  };
  try {
    assert.equal((await load(srv.port, 5, 1, { path: '/users/1' })).filter((c) => c === 200).length, 5);
    await waitFor(() => served('/users/1').length >= 5, 60_000);

    write('  socket: { capture_max: 8192 }\npipeline:\n  sampling: { ratio: 0 }\n');
    await hup('restart_needed');
    assert.deepEqual((await waitFor(() => lines(agent, 'config reloaded')[0], 10_000)).applied, ['pipeline.sampling.ratio']);
    assert.deepEqual((await waitFor(() => lines(agent, 'config reload: these changed keys apply only after a restart')[0], 10_000)).restart_needed, ['tracers.socket.capture_max']);
    const sampledOut0 = sum(await metrics(agent), 'telegen_spans_sampled_out_total');
    assert.equal((await load(srv.port, 10, 2, { path: '/users/2' })).filter((c) => c === 200).length, 10);
    await waitMetric(agent, (ms) => sum(ms, 'telegen_spans_sampled_out_total') - sampledOut0 >= 10, 60_000, 'sampled out in the worker');
    assert.equal(served('/users/2').length, 0);

    write('pipeline_typo: {}\n');
    await hup('invalid');
    assert.match(String((await waitFor(() => lines(agent, 'config reload failed: keeping the running config')[0], 10_000)).error), /pipeline_typo/);
    assert.equal(await agent.stop(), 0);
  } finally {
    await srv.stop();
    if (agent.proc.exitCode === null && agent.proc.signalCode === null) agent.proc.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
