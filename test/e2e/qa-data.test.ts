// QA of what the agent reports for DNS, PostgreSQL and Kafka traffic, with the real clients and
// servers on 127.0.0.1 (a demanding user's checks): each test is a bug that was found and fixed.
//  1. Kafka server side: a broker that reads a request's size (or header) first and the rest in a
//     second read was never detected — every connection's server half went undecoded (router).
//  2. DNS queries nobody answers: 0 s spans with an unset status, counted in dns.lookup.duration
//     as successful instant lookups and not in telegen.dns.lookups.failed (pipeline/spans, kernel UDP close).
//  3. db/messaging/dns client instruments fed by SERVER spans (postgres, dnsmasq, the broker).
//  4. pgsql: backend bytes lost (ring overflow) took the next query's CommandComplete as the answer
//     of the query whose end was lost ("UNLISTEN" as the tag of a 100k-row SELECT, its rows cut).
//  5. pgsql NOTICE/WARNING and LISTEN/NOTIFY deliveries were decoded, then dropped: no signal.
//  6. Kafka: a produce to two topics was "produce t1", its t2 messages counted under t1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync, spawn, spawnSync } from 'child_process';
import { serialize } from 'pg-protocol';
import { SpanKind, SpanStatusCode, Attributes } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { requireBpf, startAgent, waitFor } from '../helpers/agent';
import { initPostgres, PG_BIN } from '../helpers/postgres';
import { loadDecoder, repoRoot } from '../helpers/decoder';
import { be, DIR_REQ, DIR_RESP } from '../decoders/pgsql-util';
import { FLAG_NO_RESPONSE, FLAG_UNKNOWN } from '../../decoders/abi/abi';
import { Router } from '../../host/src/ingest/router';
import { DecoderRegistry } from '../../host/src/decoders/registry';
import { RedStore } from '../../host/src/analytics/red';
import { ConnMeta } from '../../host/src/model';
import { SelfMetrics } from '../../host/src/metrics/self';

const SERVER = 2;
const CLIENT = 3;

/** Every metric data point of one name in DATA_DIR/metrics.jsonl (OTLP/JSON lines). */
function metricPoints(dataDir: string, name: string): Array<{ attrs: Record<string, unknown>; value: number; sum?: number }> {
  const file = path.join(dataDir, 'metrics.jsonl');
  if (!fs.existsSync(file)) return [];
  const out: Array<{ attrs: Record<string, unknown>; value: number; sum?: number }> = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const req = JSON.parse(line);
    for (const rm of req.resourceMetrics ?? []) for (const sm of rm.scopeMetrics ?? []) for (const m of sm.metrics ?? []) {
      if (m.name !== name) continue;
      for (const p of m.sum?.dataPoints ?? m.histogram?.dataPoints ?? m.gauge?.dataPoints ?? []) {
        const attrs: Record<string, unknown> = {};
        for (const kv of p.attributes ?? []) attrs[kv.key] = Object.values(kv.value ?? {})[0];
        out.push({ attrs, value: Number(p.asInt ?? p.asDouble ?? p.count ?? 0), sum: p.sum });
      }
    }
  }
  return out;
}

/** The last (cumulative) value of the points of `name` whose attributes include `match`. */
function lastValue(dataDir: string, name: string, match: Record<string, unknown>): number {
  const pts = metricPoints(dataDir, name).filter((p) => Object.entries(match).every(([k, v]) => p.attrs[k] === v));
  return pts.length ? pts[pts.length - 1].value : 0;
}

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

// ------------------------------------------------------------------ 1. detection over split reads

function routerWithRecords(): { router: Router; records: Array<{ decoder: string; attributes: Record<string, unknown> }> } {
  const records: Array<{ decoder: string; attributes: Record<string, unknown> }> = [];
  let router!: Router;
  const registry = new DecoderRegistry({ onRecord: (rec, inst) => router.onRecord(rec, inst.meta.name) });
  registry.loadDir(path.join(repoRoot, 'build', 'decoders'));
  router = new Router(registry, (rec, _conn, decoder) => records.push({ decoder, attributes: rec.attributes as Record<string, unknown> }), new SelfMetrics(), { detectThreshold: 50 });
  return { router, records };
}

test('router: a server reading a Kafka request as size (or header), then the rest, is still detected', () => {
  const { router, records } = routerWithRecords();
  const meta: ConnMeta = { pid: 1, role: 'server', transport: 'tcp', localAddr: '127.0.0.1', localPort: 39092, remoteAddr: '127.0.0.1', remotePort: 50000 };
  const conn = router.open(meta);
  // ApiVersions v0, correlation id 7, client id "qa": the broker reads the size, then the rest.
  const clientId = Buffer.from('qa');
  const body = Buffer.concat([Buffer.from([0, 18, 0, 0, 0, 0, 0, 7, 0, clientId.length]), clientId]);
  const size = Buffer.alloc(4); size.writeInt32BE(body.length);
  router.dataLocal(conn, false, size, 1000n);
  router.dataLocal(conn, false, body, 2000n);
  // The answer: correlation id 7, error 0, one api (18, 0..3).
  const resp = Buffer.from([0, 0, 0, 7, 0, 0, 0, 0, 0, 1, 0, 18, 0, 0, 0, 3]);
  const rsize = Buffer.alloc(4); rsize.writeInt32BE(resp.length);
  router.dataLocal(conn, true, Buffer.concat([rsize, resp]), 3000n);
  assert.equal(conn.state, 'bound', 'bound to a decoder');
  assert.equal(conn.decoder?.name, 'kafka');
  const kafka = records.filter((r) => r.decoder === 'kafka');
  assert.equal(kafka.length, 1, JSON.stringify(records));
  assert.equal(kafka[0].attributes['messaging.operation.name'], 'api_versions');
  assert.equal(kafka[0].attributes['kafka.correlation_id'], 7);
  assert.equal(kafka[0].attributes['messaging.client.id'], 'qa');
});

// ------------------------------------------------------------------ 4. pgsql: lost backend bytes

for (const order of ['query, then gap', 'gap, then query']) test(`pgsql: the CommandComplete after lost backend bytes goes to the query whose SQL it names (${order})`, () => {
  const h = loadDecoder('pgsql');
  const s = 1;
  const t = (i: number) => 1000n + BigInt(i) * 1000n;
  h.inst.feed(s, DIR_REQ, serialize.startup({ user: 'postgres', database: 'shop' }), t(0));
  h.inst.feed(s, DIR_RESP, Buffer.concat([be.authOk(), be.keyData(42, 7), be.ready()]), t(1));
  // node-postgres: SELECT * FROM big WHERE id > $1, 100k rows.
  h.inst.feed(s, DIR_REQ, Buffer.concat([serialize.parse({ text: 'SELECT * FROM big WHERE id > $1' }), serialize.bind({ values: ['0'] }),
    serialize.describe({ type: 'P' }), serialize.execute({}), serialize.sync()]), t(2));
  h.inst.feed(s, DIR_RESP, Buffer.concat([be.parseComplete(), be.bindComplete(), be.rowDesc('id', 'h'),
    ...Array.from({ length: 100 }, (_, i) => be.dataRow(String(i), 'x'))]), t(3));
  // The ring overflowed: the rest of the rows, CommandComplete "SELECT 100000" and ReadyForQuery
  // are lost; the client, which had them, sent its next query.
  // The host learns of the loss at the next backend bytes: before or after the client's next query.
  if (order === 'query, then gap') h.inst.feed(s, DIR_REQ, serialize.query('UNLISTEN *'), t(4));
  assert.equal(h.inst.gap(s, DIR_RESP, 5_000_000), 'ok');
  if (order === 'gap, then query') h.inst.feed(s, DIR_REQ, serialize.query('UNLISTEN *'), t(4));
  h.inst.feed(s, DIR_RESP, Buffer.concat([be.complete('UNLISTEN'), be.ready()]), t(5));
  const q = h.records.filter((r) => r.attributes['db.operation.name'] !== 'STARTUP')
    .map((r) => [r.attributes['db.query.text'], r.attributes['telegen.db.command_tag'], r.attributes['db.response.returned_rows'], r.flags & (FLAG_NO_RESPONSE | FLAG_UNKNOWN)]);
  assert.deepEqual(q, [
    ['SELECT * FROM big WHERE id > $1', undefined, 100, FLAG_NO_RESPONSE | FLAG_UNKNOWN],
    ['UNLISTEN *', 'UNLISTEN', undefined, 0],
  ]);

  // Lost rows only (the tag still names the SELECT): it keeps its tag, its record says unknown.
  h.inst.feed(s, DIR_REQ, serialize.query('SELECT * FROM big'), t(6));
  h.inst.feed(s, DIR_RESP, Buffer.concat([be.rowDesc('id', 'h'), be.dataRow('1', 'x')]), t(7));
  assert.equal(h.inst.gap(s, DIR_RESP, 1000), 'ok');
  h.inst.feed(s, DIR_RESP, Buffer.concat([be.dataRow('9', 'x'), be.complete('SELECT 100000'), be.ready()]), t(8));
  const last = h.records[h.records.length - 1];
  assert.equal(last.attributes['db.query.text'], 'SELECT * FROM big');
  assert.equal(last.attributes['telegen.db.command_tag'], 'SELECT 100000');
  assert.equal(last.flags & (FLAG_NO_RESPONSE | FLAG_UNKNOWN), FLAG_UNKNOWN);
});

// ------------------------------------------------------------------ 3. client instruments, unit

test('RED: SERVER spans of a database, a broker or a DNS server feed no client instrument; the timeline keeps them', () => {
  let now = 1_000_000;
  const red = new RedStore({ perService: 100, perInstrument: 100, idleMs: 600_000 }, () => now, () => 'start');
  const span = (kind: SpanKind, service: string, attributes: Attributes): ReadableSpan => ({
    name: 'x', kind, attributes, status: { code: SpanStatusCode.UNSET }, duration: [0, 2_000_000],
    resource: { attributes: { 'service.name': service } }, spanContext: () => ({ traceId: '1'.repeat(32), spanId: '2'.repeat(16), traceFlags: 1 }),
  } as unknown as ReadableSpan);
  const pg = { 'db.system.name': 'postgresql', 'db.operation.name': 'SELECT', 'server.address': '127.0.0.1', 'server.port': 5432 };
  const kafka = { 'messaging.system': 'kafka', 'messaging.operation.name': 'produce', 'messaging.destination.name': 't1', 'server.address': '127.0.0.1', 'server.port': 9092 };
  const dns = { 'dns.question.name': 'example.test', 'server.address': '127.0.0.1' };
  for (const [svc, a] of [['app', pg], ['app', kafka], ['app', dns]] as const) red.observe(span(SpanKind.CLIENT, svc, a), false);
  for (const [svc, a] of [['postgres', pg], ['broker', kafka], ['dnsmasq', dns]] as const) red.observe(span(SpanKind.SERVER, svc, a), false);
  const points = red.collect().flatMap((m) => m.dataPoints.map((p) => `${m.descriptor.name} ${p.attributes['service.name']}`)).sort();
  assert.deepEqual(points, ['db.client.operation.duration app', 'dns.lookup.duration app', 'messaging.client.operation.duration app']);
  // The servers' own timeline (topology) still counts their spans, past a collection.
  now += 1000;
  red.collect();
  for (const svc of ['postgres', 'broker', 'dnsmasq']) assert.equal(red.services.get(svc)?.slots.reduce((n, s) => n + s.n, 0), 1, svc);
});

// ------------------------------------------------------------------ live: the running agent

function canUnshare(): boolean {
  return has('dnsmasq') && has('getent') && spawnSync('unshare', ['--mount', '--net', 'true'], { stdio: 'ignore' }).status === 0;
}

// glibc's getaddrinfo asks port 53 of the resolv.conf's nameserver: a private mount + network
// namespace with its own resolv.conf and loopback, dnsmasq on 127.0.0.1:53 in it, the upstream
// for timeout.test a port where nothing listens (no answer ever comes). A and AAAA go out in
// parallel on one socket (sendmmsg); after `timeout:1` glibc gives up and closes the socket.
const GAI = `set -e
D=$1
ip link set lo up
mount --bind "$D/resolv.conf" /etc/resolv.conf
dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --port=53 --listen-address=127.0.0.1 \\
  --bind-interfaces --user=root --pid-file= --address=/ok.test/10.1.2.3 --address=/ok.test/fd00::3 \\
  --server=/timeout.test/127.0.0.1#5399 2>"$D/dnsmasq.log" &
DM=$!
for i in $(seq 1 100); do grep -q "started" "$D/dnsmasq.log" && break; sleep 0.1; done
getent ahosts www.ok.test | head -1
s=$(date +%s%N); getent ahosts slow.timeout.test || echo "gai failed after $(( ($(date +%s%N) - s) / 1000000 )) ms"
kill $DM; wait $DM || true
`;

test('live DNS: a lookup nobody answers is a failed span lasting until the client gave up, counted as failed, not a 0 s success', { timeout: 180_000 }, async (t) => {
  if (!requireBpf(t)) return;
  if (!canUnshare()) { t.skip('needs dnsmasq, getent and unshare --mount --net'); return; }
  const agent = await startAgent({ env: { TELEGEN_METRICS_INTERVAL_MS: '1000' } });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-qa-dns-'));
  try {
    fs.writeFileSync(path.join(tmp, 'resolv.conf'), 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n');
    fs.writeFileSync(path.join(tmp, 'run.sh'), GAI);
    const run = spawnSync('unshare', ['--mount', '--net', 'sh', path.join(tmp, 'run.sh'), tmp], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /(10\.1\.2\.3|fd00::3)\s+STREAM www\.ok\.test/);
    const gaveUp = Number(/gai failed after (\d+) ms/.exec(run.stdout)?.[1]);
    assert.ok(gaveUp >= 900, run.stdout);

    const q = (name: string, kind: number) => agent.spans().filter((s) => s.kind === kind && s.attributes['dns.question.name'] === name);
    await waitFor(() => q('slow.timeout.test', CLIENT).length >= 2 && q('www.ok.test', CLIENT).length >= 2, 30_000).catch(() => undefined);
    const slow = q('slow.timeout.test', CLIENT).filter((s) => s.attributes['process.executable.name'] === 'getent');
    const dump = JSON.stringify(q('slow.timeout.test', CLIENT).map((s) => [s.attributes['process.executable.name'], s.attributes['dns.question.type'], s.status, Number(s.end - s.start) / 1e6, s.attributes['error.type']]));
    assert.deepEqual(slow.map((s) => s.attributes['dns.question.type']).sort(), ['A', 'AAAA'], dump);
    for (const s of slow) {
      assert.equal(s.status.code, SpanStatusCode.ERROR, dump);
      assert.equal(s.attributes['error.type'], 'timeout', dump);
      assert.equal(s.attributes['telegen.no_response'], true, dump);
      // From the query to the close of glibc's socket: the second it waited (it was 0 s).
      const ms = Number(s.end - s.start) / 1e6;
      assert.ok(ms >= 900 && ms <= gaveUp + 500, dump);
    }
    for (const s of q('www.ok.test', CLIENT)) assert.notEqual(s.status.code, SpanStatusCode.ERROR);

    // Metrics: the semconv histogram has the timeouts as errors with their real duration, the
    // failed-lookups counter counts them; dnsmasq, which answered www.ok.test, is no DNS client of it.
    const lookup = () => metricPoints(agent.dataDir, 'dns.lookup.duration').filter((p) => p.attrs['dns.question.name'] === 'slow.timeout.test' && p.attrs['service.name'] === 'getent');
    await waitFor(() => lookup().some((p) => p.value >= 2), 20_000).catch(() => undefined);
    const pts = lookup();
    assert.ok(pts.length > 0, 'dns.lookup.duration for the unanswered lookup');
    const lastPt = pts[pts.length - 1];
    assert.equal(lastPt.attrs['error.type'], 'timeout');
    assert.equal(lastPt.value, 2);
    assert.ok((lastPt.sum ?? 0) >= 1.8, `sum ${lastPt.sum}`);
    assert.ok(lastValue(agent.dataDir, 'telegen.dns.lookups.failed', { 'telegen.dns.name.suffix': 'timeout.test', 'dns.response_code': 'NO_RESPONSE', 'telegen.dns.side': 'client' }) >= 2);
    assert.equal(metricPoints(agent.dataDir, 'dns.lookup.duration').filter((p) => p.attrs['service.name'] === 'dnsmasq' && p.attrs['dns.question.name'] === 'www.ok.test').length, 0,
      'dnsmasq answering is not a lookup of its own');
    assert.ok(metricPoints(agent.dataDir, 'dns.lookup.duration').some((p) => p.attrs['service.name'] === 'getent' && p.attrs['dns.question.name'] === 'www.ok.test'));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
    assert.equal(await agent.stop(), 0);
  }
});

test('live Kafka: the mock broker (reads a request in two parts) has its SERVER spans; they feed no client metric', { timeout: 180_000 }, async (t) => {
  if (!requireBpf(t)) return;
  if (!has('gcc') || !has('kcat')) { t.skip('needs gcc and kcat'); return; }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-qa-kafka-'));
  const bin = path.join(dir, 'mock-broker');
  execFileSync('gcc', ['-O1', '-Wall', '-o', bin, path.join(repoRoot, 'test', 'fixtures', 'kafka-mock', 'mock-broker.c'), '-lrdkafka']);
  const agent = await startAgent({ env: { TELEGEN_METRICS_INTERVAL_MS: '1000' } });
  const broker = spawn(bin, ['3', 'qa-t1', 'qa-t2'], { stdio: ['pipe', 'pipe', 'pipe'] });
  try {
    let out = '';
    broker.stdout!.on('data', (d) => { out += String(d); });
    const bootstrap = await waitFor(() => /127\.0\.0\.1:\d+/.exec(out)?.[0], 10_000);
    const port = Number(bootstrap.split(':')[1]);
    const kcat = (args: string[], input?: string) => execFileSync('kcat', ['-b', bootstrap, ...args], { input, encoding: 'utf8', timeout: 30_000 });
    kcat(['-P', '-t', 'qa-t1', '-p', '2', '-z', 'gzip'], `${'a'.repeat(3000)}\n${'b'.repeat(3000)}\n`);
    assert.equal(kcat(['-C', '-t', 'qa-t1', '-p', '2', '-o', 'beginning', '-e', '-q', '-f', '%S\n']), '3000\n3000\n');
    const spans = (kind: number) => agent.spans().filter((s) => s.kind === kind && s.attributes['messaging.system'] === 'kafka' && s.attributes['server.port'] === port);
    const ops = (kind: number) => spans(kind).map((s) => s.name);
    await waitFor(() => [CLIENT, SERVER].every((k) => ops(k).includes('produce qa-t1') && ops(k).includes('fetch qa-t1')), 30_000).catch(() => undefined);
    for (const kind of [CLIENT, SERVER]) {
      const got = ops(kind);
      assert.ok(got.includes('produce qa-t1') && got.includes('fetch qa-t1') && got.includes('api_versions'), `kind ${kind}: ${JSON.stringify(got)}`);
      const produce = spans(kind).find((s) => s.name === 'produce qa-t1')!;
      assert.equal(produce.attributes['messaging.batch.message_count'], 2);
      assert.equal(produce.attributes['kafka.compression.codec'], 'gzip');
      assert.equal(produce.attributes['messaging.destination.partition.id'], '2');
      assert.equal(produce.attributes['messaging.client.id'], 'rdkafka');
    }
    // kafkajs sendBatch to two topics: one Produce whose messages go to both — no single destination.
    execFileSync(process.execPath, ['-e', `
      const { Kafka, logLevel } = require('kafkajs');
      (async () => {
        const p = new Kafka({ clientId: 'qa-batch', brokers: ['${bootstrap}'], logLevel: logLevel.NOTHING }).producer();
        await p.connect();
        await p.sendBatch({ topicMessages: [{ topic: 'qa-t1', messages: [{ value: '1', partition: 0 }] }, { topic: 'qa-t2', messages: [{ value: '2', partition: 1 }, { value: '3', partition: 1 }] }] });
        await p.disconnect();
      })().catch((e) => { console.error(e); process.exit(1); });
    `], { cwd: repoRoot, timeout: 30_000 });
    const batch = (kind: number) => spans(kind).filter((s) => s.attributes['messaging.client.id'] === 'qa-batch' && s.attributes['messaging.operation.name'] === 'produce');
    await waitFor(() => batch(CLIENT).length && batch(SERVER).length, 30_000).catch(() => undefined);
    for (const kind of [CLIENT, SERVER]) {
      const b = batch(kind);
      assert.equal(b.length, 1, `kind ${kind}: ${JSON.stringify(spans(kind).map((s) => s.name))}`);
      assert.equal(b[0].name, 'produce');
      assert.equal(b[0].attributes['messaging.destination.name'], undefined);
      assert.deepEqual(b[0].attributes['telegen.kafka.topics'], ['qa-t1', 'qa-t2']);
      assert.equal(b[0].attributes['messaging.batch.message_count'], 3);
    }
    const server = spans(SERVER)[0];
    assert.equal(server.attributes['process.executable.name'], 'mock-broker');
    // Client and server halves of one exchange are joined (the 4-tuple).
    const srvProduce = spans(SERVER).find((s) => s.name === 'produce qa-t1')!;
    const cliProduce = spans(CLIENT).find((s) => s.name === 'produce qa-t1')!;
    assert.equal(srvProduce.parentSpanId, cliProduce.spanId);
    // messaging.client.operation.duration: kcat's operations, none of the broker's.
    const msg = () => metricPoints(agent.dataDir, 'messaging.client.operation.duration').filter((p) => p.attrs['server.port'] === port);
    // The batch's produce point itself (node's other operations can reach a collection first).
    await waitFor(() => msg().some((p) => p.attrs['messaging.operation.name'] === 'fetch')
      && msg().some((p) => p.attrs['service.name'] === 'node' && p.attrs['messaging.operation.name'] === 'produce'), 20_000).catch(() => undefined);
    const services = [...new Set(msg().map((p) => String(p.attrs['service.name'])))].sort();
    assert.deepEqual(services, ['kcat', 'node'], JSON.stringify(services));
    // The batch's produce is one series without a destination, not one of qa-t1.
    const produces = msg().filter((p) => p.attrs['service.name'] === 'node' && p.attrs['messaging.operation.name'] === 'produce');
    assert.deepEqual([...new Set(produces.map((p) => p.attrs['messaging.destination.name']))], [undefined]);
    // messaging.client.sent.messages / consumed.messages: kcat sent 2 to qa-t1 and consumed them;
    // node sent 3 in one batch (no single destination); the broker, which received all five, none.
    const last = (name: string, match: Record<string, unknown>) => lastValue(agent.dataDir, name, { 'server.port': port, ...match });
    const counts = () => [
      last('messaging.client.sent.messages', { 'service.name': 'kcat', 'messaging.destination.name': 'qa-t1', 'messaging.operation.name': 'produce' }),
      last('messaging.client.consumed.messages', { 'service.name': 'kcat', 'messaging.destination.name': 'qa-t1', 'messaging.operation.name': 'fetch' }),
      last('messaging.client.sent.messages', { 'service.name': 'node', 'messaging.operation.name': 'produce' }),
    ];
    await waitFor(() => counts().join() === '2,2,3', 20_000).catch(() => undefined);
    assert.deepEqual(counts(), [2, 2, 3]);
    assert.deepEqual(metricPoints(agent.dataDir, 'messaging.client.sent.messages').filter((p) => p.attrs['service.name'] === 'mock-broker'), []);
  } finally {
    broker.kill('SIGTERM');
    await new Promise<void>((r) => { if (broker.exitCode !== null) return r(); broker.once('exit', () => r()); setTimeout(r, 5000).unref(); });
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(await agent.stop(), 0);
  }
});


interface LogRec { scope: string; severityText?: string; severityNumber?: number; body: unknown; attrs: Record<string, unknown>; resource: Record<string, unknown> }
function logRecords(dataDir: string): LogRec[] {
  const file = path.join(dataDir, 'logs.jsonl');
  if (!fs.existsSync(file)) return [];
  const out: LogRec[] = [];
  const val = (v: Record<string, unknown> | undefined) => (v ? Object.values(v)[0] : undefined);
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  lines.pop();
  for (const line of lines) {
    if (!line.trim()) continue;
    for (const rl of JSON.parse(line).resourceLogs ?? []) {
      const resource: Record<string, unknown> = {};
      for (const kv of rl.resource?.attributes ?? []) resource[kv.key] = val(kv.value);
      for (const sl of rl.scopeLogs ?? []) for (const r of sl.logRecords ?? []) {
        const attrs: Record<string, unknown> = {};
        for (const kv of r.attributes ?? []) attrs[kv.key] = val(kv.value);
        out.push({ scope: sl.scope?.name, severityText: r.severityText, severityNumber: r.severityNumber, body: val(r.body), attrs, resource });
      }
    }
  }
  return out;
}

test('live PostgreSQL: NOTICE/WARNING and LISTEN/NOTIFY reach logs.jsonl (they were dropped); postgres feeds no db client metric', { timeout: 180_000 }, async (t) => {
  if (!requireBpf(t)) return;
  if (!fs.existsSync(path.join(PG_BIN, 'postgres'))) { t.skip('postgresql-15 not installed'); return; }
  const pg = await initPostgres('telegen-qa-pg-');
  const port = pg.port;
  const agent = await startAgent({ env: { TELEGEN_METRICS_INTERVAL_MS: '1000' } });
  try {
    await pg.start();
    const psql = (db: string, sql: string) => spawnSync('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', db, '-X', '-q', '-A', '-t', '-c', sql], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(psql('postgres', 'CREATE DATABASE qa_shop').status, 0);
    const raised = psql('qa_shop', "DO $$BEGIN RAISE NOTICE 'qa notice %', 41 + 1; RAISE WARNING 'qa warning'; END$$");
    assert.match(raised.stderr, /NOTICE: {2}qa notice 42[\s\S]*WARNING: {2}qa warning/);
    const out = execFileSync(process.execPath, ['-e', `
      const { Client } = require('pg');
      (async () => {
        const cfg = { host: '127.0.0.1', port: ${port}, user: 'postgres', database: 'qa_shop' };
        const l = new Client(cfg), c = new Client(cfg);
        await l.connect(); await c.connect();
        const got = [];
        l.on('notification', (n) => got.push(n.channel + ':' + n.payload));
        await l.query('LISTEN qa_chan');
        await c.query("NOTIFY qa_chan, 'top-secret-payload'");
        for (let i = 0; i < 50 && !got.length; i++) await new Promise((r) => setTimeout(r, 100));
        await l.end(); await c.end();
        process.stdout.write(got.join(','));
      })();
    `], { encoding: 'utf8', timeout: 30_000, cwd: repoRoot });
    assert.equal(out, 'qa_chan:top-secret-payload');

    const events = () => logRecords(agent.dataDir).filter((r) => r.scope === 'telegen.events' && r.attrs['server.port'] === port);
    const ofKind = (name: string, exe: string) => events().filter((r) => r.attrs['event.name'] === name && r.resource['process.executable.name'] === exe);
    await waitFor(() => ofKind('db.postgresql.notice', 'psql').length >= 2 && ofKind('db.postgresql.notification', 'node').length >= 1
      && ofKind('db.postgresql.notice', 'postgres').length >= 2 && ofKind('db.postgresql.notification', 'postgres').length >= 1, 30_000).catch(() => undefined);
    const dump = JSON.stringify(events().map((r) => [r.resource['process.executable.name'], r.attrs['event.name'], r.severityText, r.body]));
    for (const exe of ['psql', 'postgres']) {
      const notices = ofKind('db.postgresql.notice', exe).map((r) => [r.severityText, r.body, r.attrs['db.response.status_code'], r.attrs['db.namespace'], r.attrs['db.system.name']]);
      assert.deepEqual(notices, [['NOTICE', 'qa notice 42', '00000', 'qa_shop', 'postgresql'], ['WARNING', 'qa warning', '01000', 'qa_shop', 'postgresql']], `${exe}: ${dump}`);
      assert.ok(ofKind('db.postgresql.notice', exe)[1].severityNumber! > ofKind('db.postgresql.notice', exe)[0].severityNumber!, 'WARNING above NOTICE');
    }
    for (const exe of ['node', 'postgres']) {
      const n = ofKind('db.postgresql.notification', exe);
      assert.equal(n.length, 1, `${exe}: ${dump}`);
      assert.equal(n[0].body, 'NOTIFY qa_chan');
      assert.equal(n[0].attrs['telegen.db.notification.channel'], 'qa_chan');
    }
    assert.ok(!JSON.stringify(events().map((r) => [r.body, r.attrs])).includes('top-secret-payload'), 'the NOTIFY payload is never exported');

    // db.client.operation.duration: psql's and node's operations, none under the server's name.
    const db = () => metricPoints(agent.dataDir, 'db.client.operation.duration').filter((p) => p.attrs['server.port'] === port);
    await waitFor(() => db().some((p) => p.attrs['db.operation.name'] === 'NOTIFY'), 20_000).catch(() => undefined);
    const services = [...new Set(db().map((p) => String(p.attrs['service.name'])))].sort();
    assert.deepEqual(services, ['node', 'psql'], JSON.stringify(services));
  } finally {
    await pg.stop();
    assert.equal(await agent.stop(), 0);
  }
});
