// Self-made CA and a server certificate for 127.0.0.1/localhost, made with the openssl CLI.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync } from 'child_process';

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
