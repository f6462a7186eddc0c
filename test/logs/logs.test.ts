// The host stages of log capture on their own: severity from the formats services print, writes
// → lines (split, joined, cut, idle), the per-process budget, and linking after the wait.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { parseSeverity } from '../../host/src/logs/severity';
import { LineAssembler, LogLine, LogWrite } from '../../host/src/logs/lines';
import { LineBudget } from '../../host/src/logs/limit';
import { LinkQueue, LinkedLine } from '../../host/src/logs/link';
import { toLogRecord } from '../../host/src/logs/record';

test('severity from JSON, logfmt and level words; none for prose', () => {
  const cases: Array<[string, string | undefined]> = [
    ['{"level":"error","msg":"boom"}', 'ERROR'],
    ['{"level":30,"time":1,"msg":"pino info"}', 'INFO'],
    ['{"level":50,"msg":"pino error"}', 'ERROR'],
    ['{"severity":"WARNING","message":"gcp style"}', 'WARN'],
    ['{"levelname":"CRITICAL","message":"python json"}', 'FATAL'],
    ['{"log":{"level":"debug"},"message":"ecs"}', 'DEBUG'],
    ['{"msg":"no level at all"}', undefined],
    ['time=2026-01-01T00:00:00Z level=warn msg="disk slow"', 'WARN'],
    ['2026-11-26 03:50:00,123 ERROR order 1 failed', 'ERROR'],
    ['ERROR:root:python default format', 'ERROR'],
    ['[WARN] retrying', 'WARN'],
    ['WARNING: deprecated', 'WARN'],
    ['I1126 Info: started', 'INFO'],
    ['Error: ENOENT: no such file', 'ERROR'],
    ['fetched 3 items without any error', undefined],
    ['the errors were handled', undefined],
  ];
  for (const [line, want] of cases) assert.equal(parseSeverity(line)?.text, want, line);
  assert.equal(parseSeverity('{"level":"error"}')?.number, 17);
  assert.equal(parseSeverity('WARN x')?.number, 13);
});

function w(bytes: string, over: Partial<LogWrite> = {}): LogWrite {
  return { pid: 10, tid: 11, fd: 1, ts: 1000n, comm: 'app', bytes: Buffer.from(bytes), truncated: false, ...over };
}

test('writes become lines: split, joined across writes, time and thread of the first byte', () => {
  const got: LogLine[] = [];
  const a = new LineAssembler({ maxLineBytes: 32, idleNs: 1_000n, maxStreams: 4 }, (l) => got.push(l));
  a.push(w('one\ntwo\n'));
  a.push(w('thr', { ts: 2000n, tid: 12 }));
  a.push(w('ee\r\n', { ts: 3000n, tid: 13 }));
  a.push(w('\n\n'));
  assert.deepEqual(got.map((l) => l.text), ['one', 'two', 'three']);
  assert.equal(got[2].ts, 2000n);
  assert.equal(got[2].tid, 12);
  // stdout and stderr of one process are separate streams
  a.push(w('out-part', { fd: 1 }));
  a.push(w('err line\n', { fd: 2 }));
  assert.equal(got[3].text, 'err line');
  assert.equal(got[3].fd, 2);
  // an unterminated line goes out once idle
  a.tick(5000n);
  assert.equal(got[4].text, 'out-part');
  // over the line limit: cut and marked
  a.push(w('x'.repeat(40) + '\nnext\n', { ts: 9000n }));
  assert.equal(got[5].text, 'x'.repeat(32));
  assert.equal(got[5].truncated, true);
  assert.equal(got[6].text, 'next');
  // a write the kernel cut: its open line cannot be completed and goes out marked
  a.push(w('cut sho', { truncated: true }));
  assert.equal(got[7].text, 'cut sho');
  assert.equal(got[7].truncated, true);
  // bounded streams: the oldest partial is emitted when a fifth stream opens
  for (let pid = 1; pid <= 5; pid++) a.push(w(`p${pid}`, { pid }));
  assert.equal(got[8].text, 'p1');
  a.flush();
  assert.deepEqual(got.slice(9).map((l) => l.text).sort(), ['p2', 'p3', 'p4', 'p5']);
});

test('per-process budget: lines beyond lines_per_second are dropped and counted', () => {
  let now = 10_000;
  const b = new LineBudget(3, () => now);
  assert.deepEqual([1, 2, 3, 4, 5].map(() => b.take(7)), [true, true, true, false, false]);
  assert.equal(b.take(8), true, 'another process has its own budget');
  now += 1000;
  assert.equal(b.take(7), true, 'next second');
  assert.equal(b.dropped, 2);
});

test('lines are held for the wait, then linked with what is known; bounded', () => {
  const out: LinkedLine[] = [];
  const asked: bigint[] = [];
  const q = new LinkQueue({ waitNs: 100n, maxWaitNs: 500n, maxPending: 3 }, (pid, tid, ts) => { asked.push(ts); return tid === 5 ? { traceId: 't'.repeat(32), spanId: 's'.repeat(16) } : undefined; }, (l) => out.push(l));
  const line = (tid: number, text: string): LogLine => ({ pid: 1, tid, fd: 1, ts: 0n, comm: 'c', text, truncated: false });
  q.add(line(5, 'a'), 1000n);
  q.add(line(6, 'b'), 1050n);
  q.tick(1099n);
  assert.equal(out.length, 0, 'not before the wait');
  q.tick(1100n);
  assert.deepEqual(out.map((l) => [l.text, l.link?.spanId]), [['a', 's'.repeat(16)]]);
  q.tick(1150n);
  assert.equal(out[1].link, undefined);
  for (const t of ['c', 'd', 'e', 'f']) q.add(line(5, t), 2000n);
  assert.equal(out.length, 3, 'the oldest is released early over maxPending');
  assert.equal(q.forced, 1);
  q.flush();
  assert.deepEqual(out.map((l) => l.text), ['a', 'b', 'c', 'd', 'e', 'f']);
  assert.equal(q.linked, 5);
  assert.deepEqual(asked.slice(0, 2), [1000n, 1050n], 'asked at the line\'s own time');
});

test('a line whose request is known but whose trace is still being decided is asked again, up to maxWaitNs', () => {
  const out: LinkedLine[] = [];
  let decided = false;
  const q = new LinkQueue({ waitNs: 100n, maxWaitNs: 1000n, maxPending: 10 },
    (pid, tid) => (tid === 1 ? (decided ? { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16) } : 'pending') : 'pending'), (l) => out.push(l));
  const line = (tid: number, text: string): LogLine => ({ pid: 1, tid, fd: 1, ts: 0n, comm: 'c', text, truncated: false });
  q.add(line(1, 'waits for its trace'), 0n);
  q.add(line(2, 'never decided'), 0n);
  q.tick(100n);
  q.tick(500n);
  assert.equal(out.length, 0);
  decided = true;
  q.tick(600n);
  assert.deepEqual(out.map((l) => [l.text, l.link?.spanId]), [['waits for its trace', 'b'.repeat(16)]]);
  q.tick(999n);
  assert.equal(out.length, 1);
  q.tick(1000n);
  assert.deepEqual(out.map((l) => [l.text, l.link?.spanId]), [['waits for its trace', 'b'.repeat(16)], ['never decided', undefined]]);
});

test('a linked line becomes an OTLP log record with trace context, severity and semconv attributes', () => {
  const l: LinkedLine = { pid: 42, tid: 43, fd: 2, ts: 0n, comm: 'app', text: 'ERROR bad', truncated: true, epochNs: 1_700_000_000_123_456_789n, link: { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16) } };
  const r = toLogRecord(l, { 'service.name': 'svc', 'process.pid': 42 }, 1_700_000_001_000_000_000n);
  assert.deepEqual(r.hrTime, [1_700_000_000, 123_456_789]);
  assert.equal(r.spanContext?.traceId, 'a'.repeat(32));
  assert.equal(r.spanContext?.spanId, 'b'.repeat(16));
  assert.equal(r.severityText, 'ERROR');
  assert.equal(r.body, 'ERROR bad');
  assert.deepEqual(r.attributes, { 'log.iostream': 'stderr', 'thread.id': 43, 'process.pid': 42, 'telegen.log.truncated': true });
  assert.equal(r.resource.attributes['service.name'], 'svc');
  const plain = toLogRecord({ ...l, fd: 1, text: 'hello', truncated: false, link: undefined }, { 'service.name': 'svc' }, 0n);
  assert.equal(plain.spanContext, undefined);
  assert.equal(plain.severityNumber, undefined);
  assert.equal(plain.attributes['log.iostream'], 'stdout');
});
