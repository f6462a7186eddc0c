// TLS wiring: CA file, client certificate and key (mTLS) from the resolved config reach the gRPC
// and HTTPS exporters. Certificates are made fresh with openssl for each run.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createTraceExporter, resolveExportConfig } from '../../host/src/export';
import { startReceiver, type OtlpReceiver } from '../helpers/otlp-receiver';
import { expectedFlatSpan, makeSpan } from './fixtures';

let dir = '';
const f = (n: string) => path.join(dir, n);
const receivers: OtlpReceiver[] = [];

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-tls-'));
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=telegen test CA');
  fs.writeFileSync(f('san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  for (const who of ['server', 'client']) {
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${who}.key`, '-out', `${who}.csr`, '-subj', `/CN=${who === 'server' ? 'localhost' : 'telegen-agent'}`);
    openssl('x509', '-req', '-in', `${who}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${who}.pem`, '-days', '2', '-extfile', 'san.ext');
  }
});

after(async () => {
  for (const r of receivers) await r.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

for (const protocol of ['grpc', 'http'] as const) {
  test(`${protocol} over TLS with a CA file and a client certificate (mTLS)`, async () => {
    const r = await startReceiver({
      protocol,
      tls: { key: fs.readFileSync(f('server.key')), cert: fs.readFileSync(f('server.pem')), ca: fs.readFileSync(f('ca.pem')), requireClientCert: true },
    });
    receivers.push(r);
    assert.match(r.url, /^https:/);
    const env = {
      OTEL_EXPORTER_OTLP_ENDPOINT: r.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: protocol === 'grpc' ? 'grpc' : 'http/protobuf',
      OTEL_EXPORTER_OTLP_CERTIFICATE: f('ca.pem'),
      OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: f('client.pem'),
      OTEL_EXPORTER_OTLP_CLIENT_KEY: f('client.key'),
      OTEL_EXPORTER_OTLP_TIMEOUT: '3000',
    };
    const resolved = resolveExportConfig({}, env);
    assert.equal(resolved.traces.tls.insecure, false);
    const exp = createTraceExporter(resolved, '/x');
    const res = await exp.export([makeSpan(1)]);
    assert.equal(res.code, 'success', String(res.error));
    await exp.shutdown();
    assert.deepEqual(r.spans(), [expectedFlatSpan(1)]);
  });

  test(`${protocol} over TLS without the client certificate is refused, not crashed`, async () => {
    const r = await startReceiver({
      protocol,
      tls: { key: fs.readFileSync(f('server.key')), cert: fs.readFileSync(f('server.pem')), ca: fs.readFileSync(f('ca.pem')), requireClientCert: true },
    });
    receivers.push(r);
    const resolved = resolveExportConfig(
      { endpoint: r.url, protocol, timeout_ms: 1000, tls: { ca_file: f('ca.pem') } },
      {},
    );
    const exp = createTraceExporter(resolved, '/x');
    const res = await exp.export([makeSpan(1)]);
    assert.notEqual(res.code, 'success');
    await exp.shutdown();
    assert.equal(r.spans().length, 0);
  });
}

test('a missing CA file is a clear error at exporter creation', () => {
  const resolved = resolveExportConfig({ endpoint: 'https://127.0.0.1:1', tls: { ca_file: '/nonexistent/ca.pem' } }, {});
  assert.throws(() => createTraceExporter(resolved, '/x'), /cannot read CA file \/nonexistent\/ca.pem/);
});
