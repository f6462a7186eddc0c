// Which OpenSSL files the TLS tracer hooks before any process maps them: the dynamic linker's
// libssl, so a client that starts and exits between two /proc scans (curl) is still covered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import { execFileSync } from 'child_process';
import { ldConfDirs, systemLibssl } from '../../host/src/tracers/tls';

test('ld.so.conf: directories, comments and include globs', () => {
  const included: Record<string, string> = { '/etc/x.d/*.conf': '/opt/a/lib # comment\n/opt/b/lib' };
  const dirs = ldConfDirs('# top\ninclude /etc/x.d/*.conf\n\n/usr/local/lib\nnot-a-path\n', (p) => ldConfDirs(included[p] ?? '', () => []));
  assert.deepEqual(dirs, ['/opt/a/lib', '/opt/b/lib', '/usr/local/lib']);
});

test('the libssl that curl loads is among the system libssl files', () => {
  const ldd = execFileSync('ldd', [execFileSync('sh', ['-c', 'command -v curl'], { encoding: 'utf8' }).trim()], { encoding: 'utf8' });
  const m = /libssl\.so[.\d]* => (\S+)/.exec(ldd);
  assert.ok(m, `curl links libssl dynamically here: ${ldd}`);
  const ino = (p: string) => { const s = fs.statSync(p); return `${s.dev}:${s.ino}`; };
  assert.ok(systemLibssl().map(ino).includes(ino(m[1])), `${m[1]} not found by systemLibssl(): ${systemLibssl().join(', ')}`);
});
