import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { ExportConfigError, otlpConfigSchema, parseOtelHeaders, resolveExportConfig } from '../../host/src/export/config';

const MB = 1024 * 1024;

test('defaults: file mode, seed batch sizes and queue bytes', () => {
  const r = resolveExportConfig(undefined, {});
  assert.equal(r.traces.mode, 'file');
  assert.equal(r.traces.endpoint, undefined);
  assert.deepEqual([r.traces.batchSize, r.metrics.batchSize, r.logs.batchSize, r.profiles.batchSize], [512, 1000, 1000, 100]);
  // Traces written to a local file get a smaller cap than the seed's 256 MB for the network.
  assert.deepEqual([r.traces.queueBytes, r.metrics.queueBytes, r.logs.queueBytes], [32 * MB, 128 * MB, 256 * MB]);
  assert.equal(r.traces.protocol, 'grpc');
  assert.equal(r.traces.compression, 'gzip');
  assert.equal(r.traces.timeoutMs, 10_000);
  assert.equal(r.sources['traces.endpoint'], 'default');
  assert.equal(r.sources['traces.compression'], 'default');
});

test('trace queue cap: 32 MB for the file exporter, the seed\'s 256 MB for OTLP, a set value wins in both', () => {
  assert.equal(resolveExportConfig(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: '127.0.0.1:4317' }).traces.queueBytes, 256 * MB);
  assert.equal(resolveExportConfig({ endpoint: '127.0.0.1:4317' }, {}).traces.queueBytes, 256 * MB);
  const file = resolveExportConfig({ traces: { queue_bytes: 256 * MB } }, {});
  assert.equal(file.traces.mode, 'file');
  assert.equal(file.traces.queueBytes, 256 * MB);
  assert.equal(file.sources['traces.queue_bytes'], 'file otlp.traces.queue_bytes');
  assert.equal(resolveExportConfig(undefined, { TELEGEN_OTLP_TRACES_QUEUE_BYTES: '1048576' }).traces.queueBytes, MB);
  assert.equal(resolveExportConfig({ traces: { queue_bytes: 4 * MB } }, { OTEL_EXPORTER_OTLP_ENDPOINT: '127.0.0.1:4317' }).traces.queueBytes, 4 * MB);
  assert.equal(resolveExportConfig(undefined, {}).sources['traces.queue_bytes'], 'default');
});

test('the seed YAML validates as is', () => {
  const seed = {
    endpoint: 'otel-collector:4317',
    protocol: 'grpc',
    compression: 'gzip',
    traces: { enabled: true, batch_size: 512 },
    metrics: { enabled: true, batch_size: 1000 },
    logs: { enabled: true, batch_size: 1000 },
    profiles: { enabled: true, batch_size: 100 },
  };
  const r = resolveExportConfig(seed, {});
  assert.equal(r.traces.mode, 'otlp');
  // Scheme-less gRPC endpoint without TLS files: plaintext http://.
  assert.equal(r.traces.endpoint, 'http://otel-collector:4317');
  assert.equal(r.traces.tls.insecure, true);
  assert.equal(r.sources['traces.compression'], 'file otlp.compression');
});

test('every key has a description naming its env var', () => {
  const walk = (s: unknown, path: string): void => {
    let t = s as { _def: { innerType?: unknown; typeName: string; description?: string }; shape?: Record<string, unknown> };
    const desc = t._def.description;
    while (t._def.innerType) t = t._def.innerType as typeof t;
    if (path) {
      const d = desc ?? t._def.description;
      assert.ok(d, `${path} has no description`);
      if (t._def.typeName !== 'ZodObject') assert.match(d!, /Env: (OTEL_EXPORTER_OTLP_|TELEGEN_OTLP_)/, `${path} names no env var`);
    }
    if (t._def.typeName === 'ZodObject') {
      const shape = (t as unknown as { shape: Record<string, unknown> }).shape;
      for (const [k, v] of Object.entries(shape)) walk(v, path ? `${path}.${k}` : k);
    }
  };
  walk(otlpConfigSchema, '');
});

test('a wrong key names the key and the allowed ones', () => {
  assert.throws(
    () => resolveExportConfig({ traces: { batch_sise: 10 } }, {}),
    (e: Error) => {
      assert.ok(e instanceof ExportConfigError);
      assert.match(e.message, /otlp\.traces\.batch_sise: unknown key/);
      assert.match(e.message, /allowed: enabled, batch_size, endpoint, queue_bytes/);
      return true;
    },
  );
  assert.throws(() => resolveExportConfig({ endpont: 'x:1' }, {}), /otlp\.endpont: unknown key \(allowed: endpoint, protocol, compression/);
});

test('a wrong value names the key and what is allowed', () => {
  assert.throws(() => resolveExportConfig({ protocol: 'http/json' }, {}), /otlp\.protocol: "http\/json" is not allowed \(allowed: grpc, http\)/);
  assert.throws(() => resolveExportConfig({ compression: 'zstd' }, {}), /otlp\.compression: "zstd" is not allowed \(allowed: gzip, none\)/);
  assert.throws(() => resolveExportConfig({ metrics: { batch_size: 0 } }, {}), /otlp\.metrics\.batch_size: Number must be greater than or equal to 1/);
  assert.throws(() => resolveExportConfig({ tls: { insecure: 'yes' } }, {}), /otlp\.tls\.insecure: Expected boolean, received string/);
  // Env values too.
  assert.throws(() => resolveExportConfig({}, { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }), /OTEL_EXPORTER_OTLP_PROTOCOL: "http\/json" is not allowed \(grpc, http\/protobuf\)/);
  assert.throws(() => resolveExportConfig({}, { OTEL_EXPORTER_OTLP_TIMEOUT: '10s' }), /OTEL_EXPORTER_OTLP_TIMEOUT: "10s" is not allowed/);
  assert.throws(() => resolveExportConfig({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'ftp://x:1' }), /OTEL_EXPORTER_OTLP_ENDPOINT: scheme "ftp:" is not allowed/);
});

test('generic env endpoint: grpc as is, http gets /v1/<signal>', () => {
  const g = resolveExportConfig({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4317' });
  assert.equal(g.traces.endpoint, 'http://collector:4317');
  assert.equal(g.logs.endpoint, 'http://collector:4317');
  const h = resolveExportConfig({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' });
  assert.equal(h.traces.protocol, 'http');
  assert.equal(h.traces.endpoint, 'http://collector:4318/v1/traces');
  assert.equal(h.metrics.endpoint, 'http://collector:4318/v1/metrics');
  assert.equal(h.logs.endpoint, 'http://collector:4318/v1/logs');
});

test('per-signal env beats generic env; per-signal http endpoint used as is', () => {
  const r = resolveExportConfig({}, {
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://generic:4318',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://traces-only:9999/custom/path',
    OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'grpc',
    OTEL_EXPORTER_OTLP_TIMEOUT: '3000',
    OTEL_EXPORTER_OTLP_LOGS_TIMEOUT: '700',
    OTEL_EXPORTER_OTLP_COMPRESSION: 'none',
    OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: 'gzip',
  });
  assert.equal(r.traces.endpoint, 'http://traces-only:9999/custom/path');
  assert.equal(r.sources['traces.endpoint'], 'env OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  assert.equal(r.logs.endpoint, 'http://generic:4318/v1/logs');
  assert.equal(r.metrics.protocol, 'grpc');
  assert.equal(r.metrics.endpoint, 'http://generic:4318'); // generic endpoint under gRPC: no path appended
  assert.equal(r.traces.protocol, 'http');
  assert.equal(r.traces.timeoutMs, 3000);
  assert.equal(r.logs.timeoutMs, 700);
  assert.equal(r.traces.compression, 'gzip');
  assert.equal(r.logs.compression, 'none');
});

test('env beats file at the same level; per-signal file beats generic env', () => {
  const file = {
    endpoint: 'file-generic:4317',
    protocol: 'grpc',
    compression: 'gzip',
    timeout_ms: 5000,
    headers: { 'x-tenant': 'file', 'x-file-only': '1' },
    logs: { endpoint: 'http://file-logs:4317' },
  };
  const env = {
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://env-generic:4317',
    OTEL_EXPORTER_OTLP_COMPRESSION: 'none',
    OTEL_EXPORTER_OTLP_HEADERS: 'x-tenant=env%20generic,authorization=Bearer%20abc',
    OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-tenant=env-traces',
  };
  const r = resolveExportConfig(file, env);
  assert.equal(r.traces.endpoint, 'http://env-generic:4317'); // generic env > generic file
  assert.equal(r.logs.endpoint, 'http://file-logs:4317'); // per-signal file > generic env
  assert.equal(r.sources['logs.endpoint'], 'file otlp.logs.endpoint');
  assert.equal(r.traces.compression, 'none');
  assert.equal(r.sources['traces.compression'], 'env OTEL_EXPORTER_OTLP_COMPRESSION');
  assert.equal(r.traces.timeoutMs, 5000);
  assert.equal(r.sources['traces.timeout_ms'], 'file otlp.timeout_ms');
  // Headers merge key by key: file < generic env < per-signal env.
  assert.deepEqual(r.traces.headers, { 'x-tenant': 'env-traces', 'x-file-only': '1', authorization: 'Bearer abc' });
  assert.deepEqual(r.metrics.headers, { 'x-tenant': 'env generic', 'x-file-only': '1', authorization: 'Bearer abc' });
  // Per-signal env beats per-signal file.
  const r2 = resolveExportConfig(file, { ...env, OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: 'http://env-logs:4317' });
  assert.equal(r2.logs.endpoint, 'http://env-logs:4317');
});

test('TELEGEN_OTLP_* env beats the file for keys without an OTEL_* variable', () => {
  const r = resolveExportConfig({ traces: { batch_size: 100, queue_bytes: 4096 }, drop_policy: 'drop_oldest' }, { TELEGEN_OTLP_TRACES_BATCH_SIZE: '64', TELEGEN_OTLP_RETRY_MAX_ATTEMPTS: '2' });
  assert.equal(r.traces.batchSize, 64);
  assert.equal(r.traces.queueBytes, 4096);
  assert.equal(r.traces.dropPolicy, 'drop_oldest');
  assert.equal(r.traces.retry.maxAttempts, 2);
});

test('TLS: files from env, scheme decides plaintext, insecure override', () => {
  const r = resolveExportConfig({ endpoint: 'collector:4317' }, {
    OTEL_EXPORTER_OTLP_CERTIFICATE: '/etc/ca.pem',
    OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE: '/etc/c.pem',
    OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY: '/etc/k.pem',
  });
  assert.equal(r.traces.endpoint, 'https://collector:4317'); // TLS files → TLS for a scheme-less endpoint
  assert.deepEqual(r.traces.tls, { insecure: false, caFile: '/etc/ca.pem', certFile: '/etc/c.pem', keyFile: '/etc/k.pem' });
  assert.equal(r.metrics.tls.certFile, undefined);
  const s = resolveExportConfig({ endpoint: 'https://collector:4317' }, {});
  assert.equal(s.traces.tls.insecure, false);
  const i = resolveExportConfig({ endpoint: 'collector:4317', tls: { insecure: true } }, {});
  assert.equal(i.traces.endpoint, 'http://collector:4317');
  assert.throws(() => resolveExportConfig({ endpoint: 'c:1', tls: { cert_file: '/c.pem' } }, {}), /cert_file and tls.key_file .* must be set together/);
});

test('OTEL_EXPORTER_OTLP_HEADERS parsing', () => {
  assert.deepEqual(parseOtelHeaders('a=1, b = two%3Dthree ,,c=', 'X'), { a: '1', b: 'two=three', c: '' });
  assert.throws(() => parseOtelHeaders('novalue', 'OTEL_EXPORTER_OTLP_HEADERS'), /OTEL_EXPORTER_OTLP_HEADERS: "novalue" is not key=value/);
});

test('disabled signal and empty env values are ignored', () => {
  const r = resolveExportConfig({ profiles: { enabled: false } }, { OTEL_EXPORTER_OTLP_ENDPOINT: '' });
  assert.equal(r.profiles.enabled, false);
  assert.equal(r.traces.mode, 'file');
});

test('OTEL_<SIGNAL>_EXPORTER=none disables a signal; other values are refused', () => {
  const r = resolveExportConfig({ logs: { enabled: true } }, { OTEL_LOGS_EXPORTER: 'none', OTEL_TRACES_EXPORTER: 'otlp' });
  assert.equal(r.logs.enabled, false);
  assert.equal(r.sources['logs.enabled'], 'env OTEL_LOGS_EXPORTER');
  assert.equal(r.traces.enabled, true);
  assert.throws(() => resolveExportConfig({}, { OTEL_METRICS_EXPORTER: 'prometheus' }), /OTEL_METRICS_EXPORTER: "prometheus" is not allowed \(otlp, none\)/);
});
