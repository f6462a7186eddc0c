import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { loadConfig, parseConfig, ConfigError } from '../../host/src/config';
import { planReload } from '../../host/src/config/reload';
import { repoRoot } from '../helpers/decoder';

function tmpFile(name: string, text: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-cfg-'));
  const f = path.join(d, name);
  fs.writeFileSync(f, text);
  return f;
}

test('defaults: ring 16 MB, capture 16 KiB, API on 127.0.0.1', () => {
  const c = parseConfig({});
  assert.equal(c.tracers.socket.ring_bytes, 16 << 20);
  assert.equal(c.tracers.socket.capture_max, 16384);
  assert.equal(c.api.listen, '127.0.0.1:9464');
  assert.deepEqual(c.pipeline.redaction.headers, ['authorization', 'cookie', 'set-cookie', 'proxy-authorization']);
});

test('a wrong key names the key; a wrong value names the key and what is allowed', () => {
  assert.throws(() => loadConfig(tmpFile('c.yaml', 'tracers:\n  socket:\n    ringbytes: 5\n')), (e: Error) => e instanceof ConfigError && /tracers\.socket: unknown key\(s\) "ringbytes"/.test(e.message));
  assert.throws(() => loadConfig(tmpFile('c.yaml', 'tracers:\n  socket:\n    ring_bytes: 1000000\n')), /tracers\.socket\.ring_bytes: must be a power of two/);
  assert.throws(() => loadConfig(tmpFile('c.yaml', 'api:\n  listen: nowhere\n')), /api\.listen: must be HOST:PORT/);
  assert.throws(() => loadConfig(tmpFile('c.yaml', 'pipeline:\n  sampling:\n    ratio: 2\n')), /pipeline\.sampling\.ratio: Number must be less than or equal to 1/);
  assert.throws(() => loadConfig(tmpFile('c.yaml', ': : :\n  - [')), /is not valid YAML/);
});

test('telegen run with a bad config prints one clear line and exits 1 (no stack trace)', () => {
  const f = tmpFile('bad.yaml', 'tracers:\n  socket:\n    capture_max: "lots"\n');
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'telegen'), 'run', '--config', f, '--data-dir', path.dirname(f)], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /telegen: invalid config .*bad\.yaml:\n {2}tracers\.socket\.capture_max: Expected number, received string/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
});

test('an OTLP setting the exporter cannot use is refused at start with its key', () => {
  const f = tmpFile('bad-otlp.yaml', 'otlp:\n  protocol: carrier-pigeon\n');
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'telegen'), 'run', '--config', f, '--data-dir', path.dirname(f)], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /otlp\.protocol/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});

test('config reload plan: pipeline, log level and the CPU budget apply live, everything else (the memory bound too) is named for a restart', () => {
  const running = parseConfig({ otlp: { endpoint: 'a:4317' }, pipeline: { filter: { exclude_ports: [1] } } });
  const next = parseConfig({
    log_level: 'debug',
    otlp: { endpoint: 'b:4317' },
    api: { listen: '127.0.0.1:9999' },
    agent: { max_cpu_percent: 25, max_rss_mb: 256 },
    tracers: { tls: { enabled: false } },
    pipeline: { filter: { exclude_ports: [1, 2] }, sampling: { ratio: 0.5 }, redaction: { headers: ['x-token'] } },
  });
  assert.deepEqual(planReload(running, next), {
    live: ['log_level', 'agent.max_cpu_percent', 'pipeline.filter.exclude_ports', 'pipeline.sampling.ratio', 'pipeline.redaction.headers'],
    restart: ['api.listen', 'agent.max_rss_mb', 'tracers.tls.enabled', 'otlp.endpoint'],
  });
  assert.deepEqual(planReload(running, parseConfig({ otlp: { endpoint: 'a:4317' }, pipeline: { filter: { exclude_ports: [1] } } })), { live: [], restart: [] });
});
