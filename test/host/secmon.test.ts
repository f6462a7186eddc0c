// Security monitor rules without the kernel: the shipped policy validates, broken files are named
// with what is wrong, and rule matching / rate limiting decide as documented.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { repoRoot } from '../helpers/decoder';
import { loadPolicy, PolicyError, Rule, ruleSchema } from '../../host/src/secmon/policy';
import { SecurityEvent, targetIds, fileOperation } from '../../host/src/secmon/event';
import { matches } from '../../host/src/secmon/match';
import { RuleLimiter } from '../../host/src/secmon/limit';

function policyDir(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-secmon-unit-'));
  for (const [n, body] of Object.entries(files)) fs.writeFileSync(path.join(dir, n), body);
  return dir;
}

const ev = (o: Partial<SecurityEvent>): SecurityEvent => ({
  call: 0, kind: 'exec', syscall: 'execve', pid: 10, tid: 10, uid: 1000, euid: 1000, ret: 0, args: [0n, 0n, 0n, 0n],
  comm: 'x', ancestors: [], path: '', extra: [], ...o,
});
const rule = (o: Record<string, unknown>): Rule => ruleSchema.parse({ id: 'r', description: 'd', ...o });

test('secmon: the shipped policies/security validates; nested prefixes collapse for the kernel filter', () => {
  const p = loadPolicy(path.join(repoRoot, 'policies', 'security'));
  assert.ok(p.rules.length >= 10);
  assert.deepEqual(p.prefixes, ['/etc/', '/root/.ssh/']);
});

test('secmon: invalid files are refused with file, rule path and reason', () => {
  const dir = policyDir({
    'a.yaml': 'rules:\n  - { id: x, description: d, event: exec, match: { colour: red } }\n  - { id: o, description: d, event: open }\n',
    'b.yaml': 'rules:\n  - { id: dup, description: d, event: exec }\n',
    'c.yaml': 'rules:\n  - { id: dup, description: d, event: bpf }\n',
  });
  assert.throws(() => loadPolicy(dir), (e: Error) => {
    assert.ok(e instanceof PolicyError);
    assert.match(e.message, /a\.yaml: rules\.0\.match: unknown key\(s\) colour/);
    assert.match(e.message, /a\.yaml: rules\.1\.match\.path_prefix: an open rule needs match\.path_prefix/);
    assert.match(e.message, /c\.yaml: rule id "dup" already defined in .*b\.yaml/);
    return true;
  });
  const many = policyDir({ 'p.yaml': `rules:\n${Array.from({ length: 9 }, (_, i) => `  - { id: p${i}, description: d, event: open, match: { path_prefix: [/d${i}/] } }`).join('\n')}\n` });
  assert.throws(() => loadPolicy(many), /9 distinct open and file_change path_prefix values; the kernel filter holds 8/);
});

test('secmon: matching by names, parent, ids, access, destination and result', () => {
  const shell = rule({ event: 'exec', match: { executable: ['sh'], parent_executable: ['nginx'] } });
  assert.equal(matches(shell, ev({ comm: 'sh', path: '/bin/sh', ancestors: [{ pid: 1, name: 'nginx' }] })), true);
  assert.equal(matches(shell, ev({ comm: 'sh', path: '/bin/sh', ancestors: [{ pid: 1, name: 'bash' }] })), false);
  // setresuid(-1, 0, -1): only the effective id is asked for.
  const su = ev({ kind: 'setuid', syscall: 'setresuid', args: [0xffffffffn, 0n, 0xffffffffn, 0n] });
  assert.deepEqual(targetIds(su), [0]);
  assert.equal(matches(rule({ event: 'setuid', match: { target_id: [0], not_uid: [0] } }), su), true);
  assert.equal(matches(rule({ event: 'setuid', match: { target_id: [0], not_uid: [0] } }), { ...su, uid: 0 }), false);
  const etc = rule({ event: 'open', match: { path_prefix: ['/etc/'], access: 'write' } });
  assert.equal(matches(etc, ev({ kind: 'open', path: '/etc/passwd', args: [0n, 0n, 0o1101n, 0n] })), true); // O_WRONLY|O_CREAT|O_TRUNC
  assert.equal(matches(etc, ev({ kind: 'open', path: '/etc/passwd', args: [0n, 0n, 0o2000000n, 0n] })), false); // O_CLOEXEC, read
  const out = rule({ event: 'connect', match: { not_remote_cidr: ['10.0.0.0/8', 'fc00::/7'], result: 'success' } });
  assert.equal(matches(out, ev({ kind: 'connect', address: '203.0.113.5', port: 443, ret: -115 })), true, 'EINPROGRESS is a connect under way');
  assert.equal(matches(out, ev({ kind: 'connect', address: '10.1.2.3', port: 443 })), false);
  assert.equal(matches(out, ev({ kind: 'connect', address: 'fd00::1', port: 443 })), false);
  assert.equal(matches(out, ev({ kind: 'connect', address: '203.0.113.5', port: 443, ret: -111 })), false);
});

test('secmon: rate limit lets a burst through, counts the rest, reports them on the next record', () => {
  const l = new RuleLimiter(1, 2, 0);
  assert.deepEqual([l.take(0), l.take(0), l.take(0), l.take(10)], [0, 0, undefined, undefined]);
  assert.equal(l.take(1010), 2, 'one token back after a second; two were suppressed before it');
  assert.equal(l.suppressed, 2);
});

test('secmon: file_change rules need a prefix, pick operations, and match a rename or link at either end', () => {
  assert.throws(() => rule({ event: 'file_change' }), /a file_change rule needs match\.path_prefix/);
  assert.throws(() => rule({ event: 'file_change', match: { path_prefix: ['/etc/'], operation: ['move'] } }));
  const etc = rule({ event: 'file_change', match: { path_prefix: ['/etc/'] } });
  const chmodOnly = rule({ event: 'file_change', match: { path_prefix: ['/etc/'], operation: ['chmod'] } });
  const mvIn = ev({ kind: 'file_change', syscall: 'renameat2', path: '/etc/cron.d/x', extra: ['/tmp/x'] });
  const mvOut = ev({ kind: 'file_change', syscall: 'rename', path: '/tmp/shadow', extra: ['/etc/shadow'] });
  const symlinkOut = ev({ kind: 'file_change', syscall: 'symlinkat', path: '/tmp/s', extra: ['/etc/shadow'] });
  const rmdir = ev({ kind: 'file_change', syscall: 'unlinkat', path: '/etc/d', args: [0n, 0n, 0x200n, 0n] });
  assert.equal(fileOperation(rmdir), 'rmdir');
  assert.equal(matches(etc, mvIn), true);
  assert.equal(matches(etc, mvOut), true, 'a file moved out of /etc is gone from it');
  assert.equal(matches(etc, symlinkOut), false, "a symlink's target as given is not a path changed");
  assert.equal(matches(chmodOnly, mvIn), false);
  assert.equal(matches(chmodOnly, ev({ kind: 'file_change', syscall: 'fchmodat', path: '/etc/x' })), true);
  assert.equal(matches(etc, ev({ kind: 'file_change', syscall: 'unlink', path: 'a/very/long/name', unresolved: true })), true, 'unresolved: cannot be ruled out');
  assert.equal(matches(etc, ev({ kind: 'file_change', syscall: 'unlink', path: '/tmp/x' })), false);
  // the shipped policy watches rename/link/unlink/chmod/chown under /etc as well as writes
  const shipped = loadPolicy(path.join(repoRoot, 'policies', 'security'));
  assert.ok(shipped.rules.some((r) => matches(r, { ...mvIn, comm: 'mv' })));
  assert.ok(shipped.rules.some((r) => matches(r, ev({ kind: 'file_change', syscall: 'fchownat', path: '/etc/sudoers', comm: 'chown' }))));
});
