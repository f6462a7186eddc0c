// Which script an interpreter's command line runs (host/src/secmon/event.ts scriptArgument): the
// first operand after the interpreter's options, none when the program is given inline or on
// stdin. The expected answers are what each interpreter does with that command line (its manual).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scriptArgument, SecurityEvent } from '../../host/src/secmon/event';

const exec = (exe: string, argv: string[]): SecurityEvent => ({
  call: 1, kind: 'exec', syscall: 'execve', pid: 1, tid: 1, uid: 0, euid: 0, ret: 0, args: [], comm: 'x', ancestors: [],
  path: argv[0], exe, extra: argv,
});

test('scriptArgument: the script an interpreter is given, none for inline code, stdin or a non-interpreter', () => {
  const cases: Array<[string, string[], string | undefined]> = [
    ['/usr/bin/dash', ['sh', 'x.sh', 'arg'], 'x.sh'],
    ['/usr/bin/dash', ['sh', '-e', '-x', '/tmp/x.sh'], '/tmp/x.sh'],
    ['/usr/bin/dash', ['sh', '+x', '-o', 'errexit', 'x.sh'], 'x.sh'],
    ['/usr/bin/dash', ['sh', '-c', 'exit 0', '/tmp/x.sh'], undefined],
    ['/usr/bin/dash', ['sh', '-ec', 'exit 0', '/tmp/x.sh'], undefined],
    ['/usr/bin/dash', ['sh', '-s', '/tmp/x.sh'], undefined],
    ['/usr/bin/dash', ['sh'], undefined],
    ['/usr/bin/bash', ['bash', '--norc', '-O', 'extglob', '--', '-x.sh'], '-x.sh'],
    ['/usr/bin/bash', ['bash', '--rcfile', '/tmp/rc', 'x.sh'], 'x.sh'],
    ['/usr/bin/busybox', ['ash', 'x.sh'], 'x.sh'],
    ['/usr/bin/python3.11', ['python3', '-u', '-W', 'ignore', '-Xdev', 'x.py'], 'x.py'],
    ['/usr/bin/python3.11', ['python3', '-m', 'http.server'], undefined],
    ['/usr/bin/python3.11', ['python3', '-Bc', 'pass', 'x.py'], undefined],
    ['/usr/bin/python3.11', ['python3', '-', 'x.py'], undefined],
    ['/usr/bin/perl', ['perl', '-w', '-I', 'lib', 'x.pl'], 'x.pl'],
    ['/usr/bin/perl', ['perl', '-le', 'print 1', 'x.pl'], undefined],
    ['/usr/bin/node', ['node', '--require', 'm', '--max-old-space-size=64', 'x.js'], 'x.js'],
    ['/usr/bin/node', ['node', '--eval', '1', 'x.js'], undefined],
    ['/usr/bin/php8.2', ['php', '-d', 'a=b', '-f', 'x.php'], 'x.php'],
    ['/usr/bin/true', ['true', 'x.sh'], undefined],
    ['/usr/bin/env', ['env', 'python3', 'x.py'], undefined],
  ];
  for (const [exe, argv, want] of cases) assert.equal(scriptArgument(exec(exe, argv)), want, argv.join(' '));
});
