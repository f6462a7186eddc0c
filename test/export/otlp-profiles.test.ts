// OTLP profiles (development signal) over gRPC and HTTP/protobuf to the real test receiver, which
// decodes with the opentelemetry-proto v1.8.0 profiles messages: the profiler's own OTLP builder
// (profile/otlp.ts) → export queue → wire → decoded samples with their stacks resolved through the
// dictionary.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import {
  createExportQueues,
  createProfileExporter,
  encodeProfilesRequest,
  encodeProfilesRequests,
  resolveExportConfig,
  shutdownExportQueues,
} from '../../host/src/export';
import { freePort, decodeOtlpRequest, flattenProfiles, envFor, receiversStoppedAfter } from '../helpers/otlp-receiver';
import { toOtlpProfiles } from '../../host/src/profile/otlp';
import type { IntervalProfile } from '../../host/src/profile/model';
import type { Frame } from '../../host/src/profile/symbolizer';
import type { ProcessInfo } from '../../host/src/profile/process';

const receiver = receiversStoppedAfter();

const fr = (name: string, module: string, kind: Frame['kind'] = 'native', buildId = ''): Frame => ({ name, module, kind, buildId, unresolved: false });
const MAIN = fr('main', '/usr/bin/shop', 'native', 'deadbeef');
const HANDLE = fr('handle_request', '/usr/bin/shop', 'native', 'deadbeef');
const MEMCPY = fr('__memcpy_avx_unaligned', '/usr/lib/x86_64-linux-gnu/libc.so.6');
const JIT = fr('LazyCompile:*render /app/page.js:12', '[jit]', 'jit');
const SYSCALL = fr('entry_SYSCALL_64', '[kernel]', 'kernel');

function info(pid: number, comm: string): ProcessInfo {
  return { pid, serviceName: pid === 100 ? 'shop' : 'page', executableName: comm, executablePath: `/usr/bin/${comm}`, commandLine: `${comm} --serve`, containerId: '', cgroupPath: '' };
}

/** Interval k: shop (pid 100) two stacks, page (pid 200) one linked to a trace. */
function interval(k: number): IntervalProfile {
  const startMs = 1_700_000_000_000 + k * 10_000;
  return {
    startMs,
    endMs: startMs + 10_000,
    periodNs: 10_101_010,
    missingStacks: 0,
    samples: [
      { pid: 100, tid: 101, comm: 'shop', count: 7 + k, stack: [MAIN, HANDLE, MEMCPY] },
      { pid: 100, tid: 102, comm: 'shop-worker', count: 3, stack: [MAIN, HANDLE, MEMCPY, SYSCALL] },
      { pid: 200, tid: 200, comm: 'node', count: 11, stack: [JIT], link: { traceId: 'ab'.repeat(16), spanId: String(k).padStart(2, '0').repeat(8) } },
    ],
  };
}

const request = (k: number) => toOtlpProfiles(interval(k), info, 'node-1', '0.1.0');

/** What a user reads off the receiver for interval k. */
function expected(k: number) {
  const startNs = String(BigInt(1_700_000_000_000 + k * 10_000) * 1_000_000n);
  const common = { scope: { name: 'telegen.profile', version: '0.1.0' }, timeUnixNano: startNs, durationNano: '10000000000', period: '10101010', sampleType: ['samples', 'count'], periodType: ['cpu', 'nanoseconds'] };
  const shop = { 'service.name': 'shop', 'process.pid': 100, 'host.name': 'node-1', 'process.executable.name': 'shop', 'process.executable.path': '/usr/bin/shop', 'process.command_line': 'shop --serve' };
  const page = { 'service.name': 'page', 'process.pid': 200, 'host.name': 'node-1', 'process.executable.name': 'node', 'process.executable.path': '/usr/bin/node', 'process.command_line': 'node --serve' };
  const id = (pid: number) => pid.toString(16).padStart(8, '0') + '00000000' + BigInt(startNs).toString(16).padStart(16, '0');
  return [
    {
      ...common, resource: shop, profileId: id(100), values: [7 + k],
      stack: ['__memcpy_avx_unaligned', 'handle_request', 'main'],
      modules: ['/usr/lib/x86_64-linux-gnu/libc.so.6', '/usr/bin/shop', '/usr/bin/shop'],
      frameAttributes: [{ 'profile.frame.type': 'native' }, { 'profile.frame.type': 'native' }, { 'profile.frame.type': 'native' }],
      attributes: { 'thread.id': '101', 'thread.name': 'shop' },
    },
    {
      ...common, resource: shop, profileId: id(100), values: [3],
      stack: ['entry_SYSCALL_64', '__memcpy_avx_unaligned', 'handle_request', 'main'],
      modules: ['[kernel]', '/usr/lib/x86_64-linux-gnu/libc.so.6', '/usr/bin/shop', '/usr/bin/shop'],
      frameAttributes: [{ 'profile.frame.type': 'kernel' }, { 'profile.frame.type': 'native' }, { 'profile.frame.type': 'native' }, { 'profile.frame.type': 'native' }],
      attributes: { 'thread.id': '102', 'thread.name': 'shop-worker' },
    },
    {
      ...common, resource: page, profileId: id(200), values: [11],
      stack: ['LazyCompile:*render /app/page.js:12'], modules: ['[jit]'], frameAttributes: [{ 'profile.frame.type': 'jit' }],
      attributes: { 'thread.id': '200', 'thread.name': 'node' },
      link: { traceId: 'ab'.repeat(16), spanId: String(k).padStart(2, '0').repeat(8) },
    },
  ];
}

test('the encoder writes what the official messages decode: every field type, ids, negative and 64-bit values', () => {
  const req = {
    resourceProfiles: [{
      resource: { attributes: [{ key: 'k.str', value: { stringValue: 'v' } }, { key: 'k.int', value: { intValue: '-42' } }, { key: 'k.bool', value: { boolValue: true } }, { key: 'k.dbl', value: { doubleValue: 2.5 } }, { key: 'k.arr', value: { arrayValue: { values: [{ stringValue: 'a' }, { intValue: '9007199254740993' }] } } }] },
      scopeProfiles: [{ scope: { name: 's', version: '1' }, profiles: [{
        sampleType: { typeStrindex: 1, unitStrindex: 2 }, periodType: { typeStrindex: 3, unitStrindex: 4 }, period: '10000000',
        timeUnixNano: '1700000000123456789', durationNano: '18446744073709551615', profileId: '0102030405060708090a0b0c0d0e0f10',
        samples: [{ stackIndex: 1, values: ['-5', '9007199254740993'], attributeIndices: [1], linkIndex: 1, timestampsUnixNano: ['1700000000123456790'] }],
        attributeIndices: [1],
      }] }],
    }],
    dictionary: {
      mappingTable: [{}, { memoryStart: '140737488355328', memoryLimit: '140737488359424', fileOffset: '4096', filenameStrindex: 5, attributeIndices: [1] }],
      locationTable: [{}, { mappingIndex: 1, address: '140737488355400', lines: [{ functionIndex: 1, line: '12', column: '3' }], attributeIndices: [1] }],
      functionTable: [{}, { nameStrindex: 6, systemNameStrindex: 6, filenameStrindex: 5, startLine: '10' }],
      linkTable: [{}, { traceId: 'ff'.repeat(16), spanId: '0e'.repeat(8) }],
      stringTable: ['', 'samples', 'count', 'cpu', 'nanoseconds', '/bin/x', 'f√'],
      attributeTable: [{}, { keyStrindex: 1, value: { intValue: '-1' }, unitStrindex: 2 }],
      stackTable: [{}, { locationIndices: [1, 1] }],
    },
  };
  const got = decodeOtlpRequest('profiles', encodeProfilesRequest(req));
  // Decoded with int64s as decimal strings and ids as hex: the same notation the input uses.
  assert.deepEqual(got, req);
});

for (const protocol of ['grpc', 'http'] as const) {
  for (const compression of ['gzip', 'none'] as const) {
    test(`profiles over ${protocol} (${compression}): two intervals in one request, stacks resolved at the receiver`, async () => {
      const r = await receiver(protocol);
      const resolved = resolveExportConfig({}, envFor(r, compression));
      assert.equal(resolved.profiles.mode, 'otlp');
      const exp = createProfileExporter(resolved, '/nonexistent');
      assert.equal(exp.target, `${protocol}:${protocol === 'grpc' ? r.url : r.url + '/v1development/profiles'}`);
      const res = await exp.export([request(1), request(2)]);
      assert.equal(res.code, 'success', String(res.error));
      await exp.shutdown();
      assert.equal(r.attempts.length, 1, 'one request for the batch');
      assert.equal(r.attempts[0].signal, 'profiles');
      assert.equal(r.attempts[0].headers['x-tenant'], 'team a');
      if (protocol === 'http') {
        assert.equal(r.attempts[0].headers['content-type'], 'application/x-protobuf');
        assert.equal(r.attempts[0].headers['content-encoding'], compression === 'gzip' ? 'gzip' : undefined);
      }
      assert.deepEqual(r.profileSamples(), [...expected(1), ...expected(2)]);
    });
  }
}

test('several requests encoded as one keep every sample resolving to the same stack, strings interned once', () => {
  const merged = decodeOtlpRequest('profiles', encodeProfilesRequests([request(1), request(2), request(3)])) as { dictionary: { stringTable: string[] } };
  const strings = merged.dictionary.stringTable;
  assert.equal(new Set(strings).size, strings.length, 'no string twice');
  assert.ok(strings.length < 3 * (request(1) as { dictionary: { stringTable: string[] } }).dictionary.stringTable.length, 'shared strings stored once');
  assert.deepEqual(flattenProfiles(merged as never), [1, 2, 3].flatMap((k) => flattenProfiles(request(k) as never)));
});

test('the agent queue sends profiles to the receiver (http), and the profiler-side count matches', async () => {
  const r = await receiver('http');
  const resolved = resolveExportConfig({ profiles: { batch_size: 4 } }, envFor(r, 'gzip'));
  const q = createExportQueues(resolved, '/nonexistent');
  assert.ok(q.profiles);
  for (let k = 0; k < 6; k++) assert.equal(q.profiles.enqueue(request(k)), true);
  await q.profiles.forceFlush();
  const reports = await shutdownExportQueues(q, 5000);
  // Two requests may be in flight at once (max_concurrent_exports), so they can arrive in either
  // order: every sample must arrive exactly once, compared without the order between requests.
  const key = (x: { profileId: string; stack: string[]; attributes: Record<string, unknown> }): string =>
    `${x.profileId}|${x.stack.join(';')}|${String(x.attributes['thread.id'])}`;
  const byKey = <T extends Parameters<typeof key>[0]>(xs: T[]): T[] => [...xs].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  const want = [0, 1, 2, 3, 4, 5].flatMap(expected);
  assert.equal(new Set(want.map(key)).size, want.length, 'the key tells every expected sample apart');
  assert.deepEqual(byKey(r.profileSamples()), byKey(want));
  const c = q.profiles.counters();
  assert.equal(c.exported, 6);
  assert.equal(c.export_requests, 2, 'batch_size 4: two requests for six profiles');
  assert.ok(reports.every((x) => JSON.stringify(x).length > 0));
});

for (const protocol of ['grpc', 'http'] as const) {
  test(`profiles over ${protocol}: throttled → retryable with the server's delay, rejected → failure, down → retryable`, async () => {
    const r = await receiver(protocol);
    const exp = createProfileExporter(resolveExportConfig({}, envFor(r, 'gzip')), '/nonexistent');
    r.setMode({ kind: 'throttle', retryAfterMs: 2000 }, 1);
    const t = await exp.export([request(1)]);
    assert.equal(t.code, 'retryable');
    assert.equal(t.retryAfterMs, 2000);
    r.setMode({ kind: 'permanent', message: 'bad profile' }, 1);
    const p = await exp.export([request(1)]);
    assert.equal(p.code, 'failure');
    assert.match(String(p.error?.message), /bad profile/);
    const ok = await exp.export([request(1)]);
    assert.equal(ok.code, 'success');
    assert.deepEqual(r.profileSamples(), expected(1));
    await exp.shutdown();

    const port = await freePort();
    const down = createProfileExporter(resolveExportConfig({}, { ...envFor(r, 'gzip'), OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, OTEL_EXPORTER_OTLP_TIMEOUT: '2000' }), '/nonexistent');
    const d = await down.export([request(1)]);
    assert.equal(d.code, 'retryable', String(d.error));
    await down.shutdown();
  });
}

test('a batch over the receivers\' 4 MiB request limit goes in parts, every sample delivered (grpc)', async () => {
  const r = await receiver('grpc');
  const exp = createProfileExporter(resolveExportConfig({}, envFor(r, 'gzip')), '/nonexistent');
  // 200 distinct functions per interval, 150 samples of depth 24: ~30 KB encoded each, ~6 MB for 200.
  const big = (k: number) => {
    const frames = Array.from({ length: 200 }, (_, i) => fr(`fn_${k}_${i}`, `/usr/lib/lib${i % 9}.so`));
    const iv = interval(k);
    iv.samples = Array.from({ length: 150 }, (_, s) => ({ pid: 100 + (k % 3), tid: 1000 + s, comm: 'svc', count: 1 + s, stack: Array.from({ length: 24 }, (_, d) => frames[(s * 7 + d * 13) % frames.length]) }));
    return toOtlpProfiles(iv, info, 'node-1', '0.1.0');
  };
  const batch = Array.from({ length: 200 }, (_, k) => big(k));
  const res = await exp.export(batch);
  assert.equal(res.code, 'success', String(res.error));
  await exp.shutdown();
  assert.ok(r.attempts.length >= 2, `${r.attempts.length} request(s)`);
  for (const a of r.attempts) assert.ok(a.bytes <= 3.5 * 1024 * 1024, `request of ${a.bytes} bytes`);
  const got = r.profileSamples();
  assert.equal(got.length, 200 * 150);
  assert.deepEqual(got.slice(0, 150).map((s) => s.values[0]), Array.from({ length: 150 }, (_, s) => 1 + s));
  // Parts are in flight together, so the receiver may see them in either order: look the last
  // interval's last sample up rather than expecting it at the end.
  assert.ok(got.some((s) => s.values[0] === 150 && s.stack[0] === 'fn_199_' + String((149 * 7 + 23 * 13) % 200)));
});
