// The loader's request policy as a pure function over a described host: the cases a live host
// cannot stage cheaply (a bind mount over a mapped library's path, an executable replaced under
// the same name), the rate limit with a controlled clock, and the worker's reading of the ring
// for processes that opened connections. The live paths are in privsep.test.ts and
// privsep-pod.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { policyRefusal, parseRequest, uprobeTargets, RateLimit, HostView, Request, UPROBE_POLICY } from '../../host/src/security/privsep/protocol';
import { connOpenPids, TLS_SYMBOLS } from '../../host/src/security/privsep/requests';
import { otelEnv, DESCRIBE_LIMITS } from '../../host/src/security/privsep/describe';
import { SSL_FUNCS, GNUTLS_FUNCS } from '../../host/src/tracers/tls';
import { tg_conn_event, tg_conn_info, tg_data_event, tg_event_type } from '../../host/src/generated/layout';

const LIB = '/usr/lib/x86_64-linux-gnu/libssl.so.3';
const EXE = '/opt/app/server';

/** pid 42 runs EXE (inode 7) and maps LIB (inode 9); files in its root by path → inode. */
function host(files: Record<string, number | null>, over: Partial<HostView> = {}): HostView {
  return {
    protectedPids: new Set([1000, 1001]),
    pidExists: (pid) => pid === 42 || pid === 1000,
    mappedFiles: (pid) => (pid === 42 ? [EXE, LIB, '/usr/lib/x86_64-linux-gnu/libc.so.6'] : []),
    mappedInodes: (pid, file) => (pid === 42 && file === LIB ? [9] : pid === 42 && file === EXE ? [7] : []),
    executable: (pid) => (pid === 42 ? EXE : null),
    executableInode: (pid) => (pid === 42 ? 7 : null),
    regularFileInRoot: (_pid, file) => (files[file] == null ? null : { ino: files[file] as number }),
    ...over,
  };
}

const req = (o: Partial<Extract<Request, { op: 'attach_uprobe' }>>): Request => {
  const r = parseRequest(Buffer.from(JSON.stringify({ op: 'attach_uprobe', id: 1, tracer: 'tls', pid: 42, library: LIB, symbols: ['SSL_read'], ...o })));
  assert.ok(!('ok' in r), JSON.stringify(r));
  return r;
};

test('policy: the mapped libssl and the process\'s own executable are accepted, by inode', () => {
  const h = host({ [LIB]: 9, [EXE]: 7 });
  assert.equal(policyRefusal(req({}), h), null);
  assert.equal(policyRefusal(req({ library: EXE, symbols: ['SSL_write', 'SSL_read_ex'] }), h), null);
});

test('policy: a path that names another file than the one mapped or run is refused', () => {
  // e.g. a bind mount over the path after the library was mapped: same name, other inode
  assert.match(policyRefusal(req({}), host({ [LIB]: 10, [EXE]: 7 })) ?? '', /is not the file pid 42 maps/);
  assert.match(policyRefusal(req({ library: EXE }), host({ [LIB]: 9, [EXE]: 8 })) ?? '', /is not the file pid 42 runs/);
  // a symlink or a directory on the way: no regular file
  assert.match(policyRefusal(req({}), host({ [LIB]: null })) ?? '', /not a regular file inside \/proc\/42\/root/);
});

test('policy: another process\'s executable, other libraries, other symbols, telegen itself', () => {
  const h = host({ [LIB]: 9, [EXE]: 7 });
  assert.match(policyRefusal(req({ library: '/usr/bin/other' }), h) ?? '', /not one tracer "tls" may hook/);
  assert.match(policyRefusal(req({ library: '/usr/lib/x86_64-linux-gnu/libc.so.6' }), h) ?? '', /not one tracer "tls" may hook/);
  assert.match(policyRefusal(req({ library: EXE }), host({}, { executable: () => '/usr/bin/else' })) ?? '', /not one tracer "tls" may hook/);
  assert.match(policyRefusal(req({ symbols: ['SSL_read', 'system'] }), h) ?? '', /symbol\(s\) system not allowed/);
  assert.match(policyRefusal(req({ pid: 1000 }), h) ?? '', /telegen itself/);
  assert.match(policyRefusal(req({ pid: 43 }), h) ?? '', /does not exist/);
  assert.match(policyRefusal(req({ library: '/usr/lib/./libssl.so.3' }), h) ?? '', /not normalized/);
  assert.match(policyRefusal(req({ library: '/usr/lib/libssl.so.3' }), h) ?? '', /has no mapping of/);
});

test('list_targets names the policy\'s libraries the process maps and its executable', () => {
  assert.deepEqual(uprobeTargets('tls', 42, host({})).sort(), [EXE, LIB].sort());
  assert.deepEqual(uprobeTargets('xdp', 42, host({})), []);
  const r = parseRequest(Buffer.from(JSON.stringify({ op: 'list_targets', id: 3, tracer: 'tls', pid: 42, library: LIB })));
  assert.ok('ok' in r && r.error === 'malformed', 'no extra keys');
});

test('the policy allows exactly the OpenSSL and GnuTLS functions the TLS tracer attaches, and the worker asks for them', () => {
  const all = [...SSL_FUNCS, ...GNUTLS_FUNCS].map(([f]) => f).sort();
  assert.deepEqual([...UPROBE_POLICY.tls.symbols].sort(), all);
  assert.deepEqual([...TLS_SYMBOLS].sort(), all);
});

test('policy: a container\'s own libgnutls copy is a target and its record functions may be hooked', () => {
  // wget, git-remote-https (libcurl3-gnutls), apt: their plaintext passes gnutls_record_*.
  const GNUTLS = '/var/lib/containers/app/usr/lib/x86_64-linux-gnu/libgnutls.so.30';
  const h = host({ [GNUTLS]: 11 }, {
    mappedFiles: (pid) => (pid === 42 ? [EXE, GNUTLS, '/usr/lib/x86_64-linux-gnu/libc.so.6'] : []),
    mappedInodes: (pid, file) => (pid === 42 && file === GNUTLS ? [11] : []),
  });
  assert.deepEqual(uprobeTargets('tls', 42, h).sort(), [EXE, GNUTLS].sort());
  assert.equal(policyRefusal(req({ library: GNUTLS, symbols: ['gnutls_record_send', 'gnutls_record_recv'] }), h), null);
  assert.match(policyRefusal(req({ library: GNUTLS, symbols: ['gnutls_record_recv', 'gnutls_global_init'] }), h) ?? '', /symbol\(s\) gnutls_global_init not allowed/);
  // the whole list the worker sends fits the request's bound
  const whole = parseRequest(Buffer.from(JSON.stringify({ op: 'attach_uprobe', id: 1, tracer: 'tls', pid: 42, library: GNUTLS, symbols: TLS_SYMBOLS })));
  assert.ok(!('ok' in whole), JSON.stringify(whole));
  assert.equal(policyRefusal(whole, h), null);
});

test('describe_process: only an existing, non-telegen pid; no other field accepted', () => {
  const h = host({});
  const parse = (o: Record<string, unknown>) => parseRequest(Buffer.from(JSON.stringify({ op: 'describe_process', id: 1, ...o })));
  const ok = parse({ pid: 42 });
  assert.ok(!('ok' in ok));
  assert.equal(policyRefusal(ok, h), null);
  assert.match(String(policyRefusal(parse({ pid: 1000 }) as Request, h)), /telegen itself/);
  assert.match(String(policyRefusal(parse({ pid: 7 }) as Request, h)), /does not exist/);
  assert.equal((parse({ pid: 42, path: '/etc/shadow' }) as { error?: string }).error, 'malformed');
  assert.equal((parse({ pid: -1 }) as { error?: string }).error, 'malformed');
});

test('describe_process reads only the OTEL_* variables discovery uses, bounded', () => {
  const long = 'x'.repeat(10_000);
  const env = otelEnv(['AWS_SECRET_ACCESS_KEY=s3cr3t', 'OTEL_SERVICE_NAME=users', `OTEL_RESOURCE_ATTRIBUTES=a=${long}`, 'OTEL_EXPORTER_OTLP_HEADERS=api-key=k', 'XOTEL_SERVICE_NAME=no'].join('\0'));
  assert.deepEqual(Object.keys(env).sort(), ['OTEL_RESOURCE_ATTRIBUTES', 'OTEL_SERVICE_NAME']);
  assert.equal(env.OTEL_SERVICE_NAME, 'users');
  assert.equal(env.OTEL_RESOURCE_ATTRIBUTES!.length, DESCRIBE_LIMITS.resourceAttributes);
  assert.ok(!JSON.stringify(env).includes('s3cr3t') && !JSON.stringify(env).includes('api-key'));
});

test('rate limit: a burst, then the refill rate', () => {
  let now = 0;
  const r = new RateLimit(3, 2, () => now);
  assert.deepEqual([r.take(), r.take(), r.take(), r.take()], [true, true, true, false]);
  now += 499;
  assert.equal(r.take(), false, 'less than one token after 499 ms at 2/s');
  now += 1;
  assert.equal(r.take(), true);
  now += 60_000;
  assert.deepEqual([r.take(), r.take(), r.take(), r.take()], [true, true, true, false], 'never more than the burst');
});

test('the worker reads the pids of connection opens from a ring batch, and nothing else', () => {
  const size = Math.max(tg_conn_event.size, tg_data_event.size);
  const ring = new Uint8Array(size * 3);
  const v = new DataView(ring.buffer);
  const put = (i: number, type: number, pid: number) => {
    v.setUint32(i * size + tg_conn_event.type, type, true);
    v.setUint32(i * size + tg_conn_event.conn + tg_conn_info.pid, pid, true);
  };
  put(0, tg_event_type.TG_EV_CONN_OPEN, 4242);
  put(1, tg_event_type.TG_EV_DATA, 777);
  put(2, tg_event_type.TG_EV_CONN_OPEN, 99);
  const index = new Uint32Array([0, size, size, size, 2 * size, 8]); // the last one is truncated
  const out = new Set<number>();
  connOpenPids(ring, index, 3, out);
  assert.deepEqual([...out], [4242]);
});
