// Which OpenSSL files the TLS tracer hooks before any process maps them: the dynamic linker's
// libssl, so a client that starts and exits between two /proc scans (curl) is still covered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import { execFileSync } from 'child_process';
import { ldConfDirs, libsslPaths, systemLibssl } from '../../host/src/tracers/tls';

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

test('libssl and libnghttp2 copies from maps text; a process mapping neither yields none', () => {
  const maps = [
    '55d0c0000000-55d0c0001000 r--p 00000000 fd:01 131 /usr/bin/python3.11',
    '7f0000000000-7f0000010000 r-xp 00010000 fd:01 200 /usr/lib/x86_64-linux-gnu/libssl.so.3',
    '7f0000010000-7f0000020000 r--p 00020000 fd:01 200 /usr/lib/x86_64-linux-gnu/libssl.so.3',
    '7f0000020000-7f0000030000 r-xp 00000000 fd:01 201 /opt/app/lib/libnghttp2.so.14.24.1',
    '7f0000030000-7f0000040000 r-xp 00000000 fd:01 202 /usr/lib/x86_64-linux-gnu/libssl3.so',
    '7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0 [stack]',
  ].join('\n');
  assert.deepEqual(libsslPaths(maps), ['/usr/lib/x86_64-linux-gnu/libssl.so.3', '/opt/app/lib/libnghttp2.so.14.24.1']);
  assert.deepEqual(libsslPaths(fs.readFileSync('/proc/self/maps', 'latin1').replace(/.*lib(ssl|nghttp2)\.so.*\n?/g, '')), []);
});
