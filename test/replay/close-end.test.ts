// `telegen replay`: an exchange still unanswered when its connection closed ends at the close, as
// the live agent ends it (ingest/kernel.ts sets closedTs; spans.ts extends the span to it). Replay
// did not pass the close time on, so such a span lasted 0 s (ended at its own request): a client
// that gave up on a slow statement read as the fastest statement in the capture, and a streaming
// command (pg_recvlogical's START_REPLICATION, seconds of CopyData until the client closed) as an
// instant one. Real peers: PostgreSQL 15 and node-postgres, captured on lo; the close time is the
// connection's last packet as tshark lists it. Needs root (capture, runuser), postgres, tshark.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync, execFileSync } from 'child_process';
import { repoRoot } from '../helpers/decoder';
import { initPostgres, PG_BIN } from '../helpers/postgres';
import { startLoCapture, stopLoCapture } from '../helpers/capture';

const canRun = process.getuid?.() === 0 && fs.existsSync(path.join(PG_BIN, 'postgres')) && fs.existsSync('/usr/bin/tshark') && fs.existsSync('/usr/bin/dumpcap');

interface JsonSpan { name: string; status: string; startTimeUnixNano: string; endTimeUnixNano: string; attributes: Record<string, unknown> }

function replay(file: string): JsonSpan[] {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'telegen'), 'replay', file], { encoding: 'utf8', env: { ...process.env, TELEGEN_LOG_LEVEL: 'warn' } });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/** ns since the epoch of every packet of the connection from 127.0.0.1:clientPort, as tshark reads them. */
function packetTimes(file: string, clientPort: number): bigint[] {
  const out = execFileSync('tshark', ['-r', file, '-Y', `tcp.port == ${clientPort}`, '-T', 'fields', '-e', 'frame.time_epoch'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return out.split('\n').filter(Boolean).map((t) => {
    const [s, f = ''] = t.trim().split('.');
    return BigInt(s) * 1_000_000_000n + BigInt((f + '000000000').slice(0, 9));
  });
}

test('replay: a statement its client closed the connection on ends at the close, not at its request', { skip: !canRun && 'needs root, PostgreSQL 15, tshark', timeout: 120_000 }, async (t) => {
  const pg = await initPostgres('telegen-replay-close-');
  t.after(() => pg.stop());
  await pg.start();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-replay-close-cap-'));
  t.after(() => { if (!process.env.KEEPCAP) fs.rmSync(tmp, { recursive: true, force: true }); });
  const file = path.join(tmp, 'close.pcapng');
  const cap = await startLoCapture(file, `tcp port ${pg.port}`, pg.port);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Client } = require('pg');
  const client = new Client({ host: '127.0.0.1', port: pg.port, user: 'postgres', database: 'postgres' });
  client.on('error', () => undefined); // the close below is ours
  await client.connect();
  const clientPort: number = client.connection.stream.localPort;
  await client.query('SELECT 1 AS quick');
  // The client gives up on a slow statement: it closes its socket while the server still sleeps.
  const slow = client.query('SELECT pg_sleep(60)').catch(() => undefined);
  await new Promise((r) => setTimeout(r, 300));
  client.connection.stream.destroy();
  await slow;
  await stopLoCapture(cap);

  const spans = replay(file).filter((s) => s.attributes['client.port'] === clientPort);
  const quick = spans.find((s) => s.attributes['db.query.text'] === 'SELECT ? AS quick');
  assert.ok(quick, JSON.stringify(spans.map((s) => s.attributes['db.query.text'])));
  const sleep = spans.find((s) => s.attributes['db.query.text'] === 'SELECT pg_sleep(?)');
  assert.ok(sleep, JSON.stringify(spans.map((s) => s.attributes['db.query.text'])));
  assert.equal(sleep.attributes['telegen.no_response'], true);
  // The capture ends before the server answers: the connection closes at its last packet (the
  // client's FIN and the server's ACK of it), and the unanswered statement lasted until then.
  const times = packetTimes(file, clientPort);
  const lastPacket = times[times.length - 1];
  assert.equal(BigInt(sleep.endTimeUnixNano), lastPacket, `span ${sleep.startTimeUnixNano}..${sleep.endTimeUnixNano}, connection's last packet ${lastPacket}`);
  assert.ok(BigInt(sleep.endTimeUnixNano) > BigInt(sleep.startTimeUnixNano));
  // An answered exchange keeps its own end (its last response byte), before the close.
  assert.ok(BigInt(quick.endTimeUnixNano) < BigInt(sleep.startTimeUnixNano));
});
