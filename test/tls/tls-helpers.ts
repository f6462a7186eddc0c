// Self-made CA and a server certificate for 127.0.0.1/localhost, made with the openssl CLI.
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { execFileSync, spawn } from 'child_process';
import { freePort, outputOf, waitFor, Served } from '../helpers/agent';
import { repoRoot } from '../helpers/decoder';

export interface Pki { dir: string; ca: string; cert: string; key: string }

export function makePki(): Pki {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-tls-'));
  const p = (f: string) => path.join(dir, f);
  const ossl = (args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  ossl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '2', '-subj', '/CN=telegen test CA']);
  ossl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', '/CN=localhost']);
  fs.writeFileSync(p('ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  ossl(['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('server.pem'), '-days', '2', '-extfile', p('ext.cnf')]);
  return { dir, ca: p('ca.pem'), cert: p('server.pem'), key: p('server.key') };
}

/** The profiler is another tracer's concern and costs this shared machine CPU: TLS tests leave it out. */
export const TLS_TEST_CONFIG = 'tracers:\n  profile: { enabled: false }\n';

/** A PKI directory with `files` (name → contents) written into it and the agent's config file
 *  (`config`, TLS_TEST_CONFIG by default) as agent.yaml: the set-up every TLS test starts with. */
export function tlsScratch(files: Record<string, string> = {}, config = TLS_TEST_CONFIG): { pki: Pki; file: (name: string) => string; cfg: string } {
  const pki = makePki();
  const file = (name: string) => path.join(pki.dir, name);
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(file(name), text);
  const cfg = file('agent.yaml');
  fs.writeFileSync(cfg, config);
  return { pki, file, cfg };
}

/** nghttpd (libnghttp2 and the system's libssl) serving `docs` over TLS on 127.0.0.1 with the PKI's
 *  certificate, `args` before the port (e.g. --trailer); resolves once it accepts connections (it
 *  prints nothing when it listens). */
export async function startNghttpd(pki: Pki, docs: string, args: string[] = []): Promise<Served> {
  const port = await freePort();
  const proc = spawn('nghttpd', [...args, '-a', '127.0.0.1', '-d', docs, String(port), pki.key, pki.cert], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = outputOf(proc);
  await waitFor(() => {
    if (proc.exitCode !== null) throw new Error(`nghttpd exited: ${out()}`);
    return new Promise<boolean>((res) => {
      const c = net.connect(port, '127.0.0.1');
      c.once('connect', () => { c.destroy(); res(true); });
      c.once('error', () => res(false));
    });
  }, 15_000, 100);
  return {
    proc, port,
    stop: () => new Promise((resolve) => { if (proc.exitCode !== null || proc.signalCode !== null) return resolve(); proc.once('exit', () => resolve()); proc.kill('SIGTERM'); }),
  };
}

/** The start of a grpc-js script: `grpc`, `fs` and `Echo`, the service of
 *  decoders/http2/testdata/record/echo.proto (Unary, ClientStream, ServerStream, Bidi, Fail). */
export const GRPC_ECHO_JS = `
const grpc = require(${JSON.stringify(path.join(repoRoot, 'node_modules', '@grpc', 'grpc-js'))}); const loader = require(${JSON.stringify(path.join(repoRoot, 'node_modules', '@grpc', 'proto-loader'))}); const fs = require('fs');
const Echo = grpc.loadPackageDefinition(loader.loadSync(${JSON.stringify(path.join(repoRoot, 'decoders', 'http2', 'testdata', 'record', 'echo.proto'))}, { keepCase: true })).telegen.test.Echo;
`;
