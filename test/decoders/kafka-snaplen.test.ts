// A capture taken with a small snaplen (tcpdump -s 200, as public collections often are): each
// segment keeps its first bytes and the replay reports the rest as lost. tshark still decodes the
// head of every request it sees (api key, version, correlation id, client id, topic). The Kafka
// decoder dropped a message whose end was lost, held bytes and all: every Produce larger than the
// snaplen had no span, its answer came for a request never seen (kcat's batches and kafkajs'
// produces of the committed mock-kcat-kafkajs capture cut by editcap -s 200: 59 spans of the
// whole capture's 70; now 70). Now the
// start the host held is decoded as the request cut short (FLAG_UNKNOWN) and the rest of it is
// skipped as it arrives, so the answer finds its request. Needs tshark and editcap.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync, spawnSync } from 'child_process';
import { repoRoot } from '../helpers/decoder';

const full = path.join(repoRoot, 'decoders', 'kafka', 'testdata', 'mock-kcat-kafkajs.pcapng');
const have = (bin: string) => spawnSync(bin, ['-v'], { stdio: 'ignore' }).status === 0;

interface Req { key: number; version: number; topics: string[] }

/** tshark's requests per "clientPort/corr" (only packets holding one Kafka message). */
function tsharkRequests(file: string, port: number): Map<string, Req> {
  const out = execFileSync('tshark', ['-r', file, '-d', `tcp.port==${port},kafka`, '-Y', 'kafka.request_key', '-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=|',
    '-e', 'tcp.srcport', '-e', 'kafka.correlation_id', '-e', 'kafka.request_key', '-e', 'kafka.request.version', '-e', 'kafka.topic_name'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const m = new Map<string, Req>();
  for (const line of out.split('\n').filter(Boolean)) {
    const [src, corr, key, ver, topics] = line.split('\t');
    if (corr.includes('|')) continue;
    m.set(`${src}/${corr}`, { key: Number(key), version: Number(ver), topics: topics ? [...new Set(topics.split('|').filter((t) => t && t !== '[ Null ]'))] : [] });
  }
  return m;
}

test('kafka: a capture cut to 200 bytes a packet keeps a span for every request tshark decodes', { skip: !(have('tshark') && have('editcap')) && 'needs tshark and editcap' }, () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-kafka-snap-'));
  try {
    const cut = path.join(tmp, 'cut.pcapng');
    execFileSync('editcap', ['-s', '200', full, cut], { stdio: 'ignore' });
    const port = Number(execFileSync('tshark', ['-r', full, '-Y', 'tcp.flags.syn==1 && tcp.flags.ack==0', '-T', 'fields', '-e', 'tcp.dstport'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0]);
    // Requests of the whole capture that tshark still decodes from the cut one (a cut continuation
    // segment read as a message of its own by tshark has no counterpart in the whole capture).
    const whole = tsharkRequests(full, port);
    const seen = [...tsharkRequests(cut, port)].filter(([k]) => whole.has(k));
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'telegen'), 'replay', cut], { encoding: 'utf8', maxBuffer: 1 << 26, env: { ...process.env, TELEGEN_LOG_LEVEL: 'warn' } });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, / gaps/, 'the replay reports the cut bytes as lost');
    const spans = new Map<string, Record<string, unknown>>();
    for (const l of r.stdout.split('\n').filter(Boolean)) {
      const a = JSON.parse(l).attributes;
      spans.set(`${a['client.port']}/${a['kafka.correlation_id']}`, a);
    }
    const cutProduces = seen.filter(([k, q]) => q.key === 0 && !spans.has(k));
    assert.deepEqual(cutProduces.map(([k]) => k), [], 'every produce tshark reads has its span');
    let produces = 0;
    for (const [k, q] of seen) {
      const a = spans.get(k);
      assert.ok(a, `${k}: no span for tshark's api ${q.key} v${q.version}`);
      assert.deepEqual([a['kafka.api_key'], a['kafka.api_version']], [q.key, q.version], k);
      if (q.topics.length) {
        const ours = new Set([a['messaging.destination.name'], ...((a['telegen.kafka.topics'] as string[] | undefined) ?? [])].filter(Boolean));
        assert.deepEqual([...ours].sort(), [...q.topics].sort(), `${k}: topics`);
      }
      if (q.key === 0) produces++;
    }
    assert.ok(seen.length >= 30 && produces >= 8, `${seen.length} requests, ${produces} produces compared`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
