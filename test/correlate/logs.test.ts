// Logs ↔ traces on real processes through the real agent: a thread-per-request Python service
// (logging to stderr, JSON to stdout) calling an event-loop Node service (pino-style JSON to
// stdout, "ERROR ..." to stderr). Each line the services print while serving a request must come
// out as one OTLP log record with the severity it states and the trace/span id of that request —
// also when two requests overlap on two Python handler threads (thread ids per exchange).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawn } from 'child_process';
import { requireBpf, startAgent, startServer, waitFor, curl, attrsToObject, otlpValue, FlatSpan, RunningAgent, Served } from '../helpers/agent';
import { repoRoot } from '../helpers/decoder';

const FIX = path.join(repoRoot, 'test', 'fixtures', 'logs');

interface FlatLog {
  body: string; severityNumber?: number; severityText?: string; traceId?: string; spanId?: string;
  attributes: Record<string, unknown>; resource: Record<string, unknown>;
}

function readLogs(file: string): FlatLog[] {
  if (!fs.existsSync(file)) return [];
  const out: FlatLog[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    for (const rl of JSON.parse(line).resourceLogs ?? []) {
      const resource = attrsToObject(rl.resource?.attributes);
      for (const sl of rl.scopeLogs ?? []) {
        for (const r of sl.logRecords ?? []) {
          out.push({
            body: String(otlpValue(r.body) ?? ''), severityNumber: r.severityNumber, severityText: r.severityText,
            traceId: r.traceId || undefined, spanId: r.spanId || undefined, attributes: attrsToObject(r.attributes), resource,
          });
        }
      }
    }
  }
  return out;
}

function curlAsync(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn('curl', ['-sS', '--max-time', '20', url], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => { out += String(d); });
    p.once('exit', (c) => (c === 0 ? resolve(out) : reject(new Error(`curl ${url} exited ${c}`))));
  });
}

test('stdout/stderr lines become log records linked to the request in flight on their thread', { timeout: 240_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const cleanups: Array<() => Promise<void> | void> = [];
  t.after(async () => { for (const c of cleanups.reverse()) await c(); });

  const cfgFile = path.join(fs.mkdtempSync('/tmp/telegen-logs-cfg-'), 'config.yaml');
  // link_wait_ms must exceed the longest request here (the 1 s /slow/X) plus the time its span
  // takes to reach the correlator on a loaded machine, or the early "slow X start" line is
  // released before the request it was printed in is known.
  fs.writeFileSync(cfgFile, 'tracers:\n  logs: { enabled: true, link_wait_ms: 5000 }\n');
  const agent: RunningAgent = await startAgent({ config: cfgFile });
  cleanups.push(async () => { await agent.stop(); fs.rmSync(agent.dataDir, { recursive: true, force: true }); });
  const backend: Served = await startServer('env', ['OTEL_SERVICE_NAME=log-backend', process.execPath, path.join(FIX, 'backend.js')]);
  cleanups.push(() => backend.stop());
  const frontend: Served = await startServer('env', ['OTEL_SERVICE_NAME=log-frontend', 'python3', path.join(FIX, 'frontend.py'), String(backend.port)]);
  cleanups.push(() => frontend.stop());
  const fpid = frontend.proc.pid!;
  const bpid = backend.proc.pid!;
  const logsFile = path.join(agent.dataDir, 'logs.jsonl');
  const mine = () => readLogs(logsFile).filter((l) => [fpid, bpid].includes(Number(l.resource['process.pid'])));

  // Services are selected by the kernel when they accept a connection: the first request's lines count.
  for (const n of [1, 2]) assert.equal(JSON.parse(curl([`http://127.0.0.1:${frontend.port}/order/${n}`])).id, String(n));
  // Two requests at once, each on its own handler thread, overlapping for up to 1 s.
  await Promise.all([curlAsync(`http://127.0.0.1:${frontend.port}/slow/a`), curlAsync(`http://127.0.0.1:${frontend.port}/slow/b`)]);

  const paths = ['/order/1', '/order/2', '/slow/a', '/slow/b'];
  const expectLines = ['order 1 failed validation', 'order 1 accepted', 'user 1 looked up', 'user 1 not cached', 'order 2 failed validation',
    'order 2 accepted', 'user 2 looked up', 'user 2 not cached', 'slow a start', 'slow a end', 'slow b start', 'slow b end'];
  const { spans, logs } = await waitFor(() => {
    const s = agent.spans();
    const l = mine();
    const servers = s.filter((x) => x.kind === 2 && x.resource['process.pid'] === fpid && paths.includes(String(x.attributes['url.path'])));
    return servers.length >= paths.length && expectLines.every((e) => l.some((x) => x.body.includes(e))) ? { spans: s, logs: l } : undefined;
  }, 60_000).catch((e) => {
    throw new Error(`${(e as Error).message}: logs ${JSON.stringify(mine().map((l) => l.body))}\n${agent.logs.join('').slice(-3000)}`);
  });

  const server = (pid: number, p: string): FlatSpan => {
    const found = spans.filter((s) => s.kind === 2 && s.resource['process.pid'] === pid && s.attributes['url.path'] === p);
    assert.equal(found.length, 1, `one server span for ${p} in ${pid}`);
    return found[0];
  };
  const line = (text: string): FlatLog => {
    const found = logs.filter((l) => l.body.includes(text));
    assert.equal(found.length, 1, `"${text}" exported once: ${JSON.stringify(found)}`);
    return found[0];
  };
  const linkedTo = (l: FlatLog, s: FlatSpan, what: string) => {
    assert.equal(l.traceId, s.traceId, `${what}: trace id`);
    assert.equal(l.spanId, s.spanId, `${what}: span id`);
  };

  for (const n of [1, 2]) {
    const fs_ = server(fpid, `/order/${n}`);
    const bs = server(bpid, `/users/${n}`);
    assert.equal(bs.traceId, fs_.traceId, 'the backend request is in the frontend request\'s trace');
    // Per-exchange thread: the handler thread, not the main thread that accepted the socket.
    const tid = Number(fs_.attributes['thread.id']);
    assert.ok(tid > 0 && tid !== fpid, `frontend server span thread.id ${tid} is a handler thread`);
    const client = spans.filter((s) => s.kind === 3 && s.parentSpanId === fs_.spanId);
    assert.equal(client.length, 1);
    assert.equal(client[0].attributes['thread.id'], tid);
    assert.equal(client[0].attributes['telegen.correlation'], 'thread');

    const err = line(`order ${n} failed validation`);
    linkedTo(err, fs_, 'python logging.error');
    assert.equal(err.severityText, 'ERROR');
    assert.equal(err.severityNumber, 17);
    assert.equal(err.attributes['log.iostream'], 'stderr');
    assert.equal(err.attributes['thread.id'], tid);
    assert.equal(err.resource['service.name'], 'log-frontend');
    const info = line(`order ${n} accepted`);
    linkedTo(info, fs_, 'python JSON print');
    assert.equal(info.severityText, 'INFO');
    assert.equal(info.attributes['log.iostream'], 'stdout');

    const warn = line(`user ${n} looked up`);
    linkedTo(warn, bs, 'node pino-style JSON');
    assert.equal(warn.severityText, 'WARN');
    assert.equal(warn.severityNumber, 13);
    assert.equal(warn.resource['service.name'], 'log-backend');
    const berr = line(`ERROR user ${n} not cached`);
    linkedTo(berr, bs, 'node console.error');
    assert.equal(berr.severityText, 'ERROR');
    assert.equal(berr.attributes['log.iostream'], 'stderr');
  }

  // Concurrent requests: both in flight at once, told apart by their thread.
  const a = server(fpid, '/slow/a');
  const b = server(fpid, '/slow/b');
  assert.ok(a.start < b.end && b.start < a.end, 'the two slow requests overlapped');
  assert.notEqual(a.attributes['thread.id'], b.attributes['thread.id']);
  for (const [s, x] of [[a, 'a'], [b, 'b']] as const) {
    const client = spans.filter((c) => c.kind === 3 && c.resource['process.pid'] === fpid && c.attributes['url.path'] === `/users/${x}`);
    assert.equal(client.length, 1);
    assert.equal(client[0].parentSpanId, s.spanId, `the /users/${x} call is a child of /slow/${x}`);
    assert.equal(client[0].attributes['telegen.correlation'], 'thread');
    for (const text of [`slow ${x} start`, `slow ${x} end`]) {
      const l = line(text);
      linkedTo(l, s, text);
      assert.equal(l.severityText, 'WARN');
      assert.equal(l.attributes['thread.id'], s.attributes['thread.id']);
    }
  }
});
