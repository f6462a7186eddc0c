// detect(dir, …) on real captures (decoders' testdata and the shared corpus): the host asks both
// directions of a connection whose sides it does not know (one older than the agent, to a port
// that does not listen here), and takes the side the bytes read as. So the first bytes each side
// sends must read as that side only, and no read of any connection may read as the other side
// only — for every decoder, since every one is asked (router.inferRole).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { DIR_REQUEST, DIR_RESPONSE } from '../../decoders/abi/abi';
import { DecoderRegistry } from '../../host/src/decoders/registry';
import { Router } from '../../host/src/ingest/router';
import { SelfMetrics } from '../../host/src/metrics/self';
import { ConnMeta } from '../../host/src/model';
import { replayFile, ReplayConn } from '../../host/src/replay';
import { repoRoot, corpusDir, loadDecoder } from '../helpers/decoder';
import { frame } from './http2-helpers';

const THRESHOLD = 50;
const corpus = path.join(corpusDir, 'pcap');

interface Read { fromClient: boolean; first: boolean; bytes: Uint8Array }
interface Flow { conn: ReplayConn; reads: Read[]; firstSeen: [boolean, boolean]; gap: boolean }

/** Every read of every connection whose sides the capture shows (a SYN, or a UDP port rule). */
async function flowsOf(file: string): Promise<Flow[]> {
  const flows = new Map<number, Flow>();
  await replayFile(file, {
    onOpen(c) { flows.set(c.id, { conn: c, reads: [], firstSeen: [false, false], gap: false }); },
    onData(c, fromClient, bytes) {
      const f = flows.get(c.id)!;
      const i = fromClient ? 0 : 1;
      f.reads.push({ fromClient, first: !f.firstSeen[i] && !f.gap, bytes: bytes.slice() });
      f.firstSeen[i] = true;
    },
    onGap(c) { flows.get(c.id)!.gap = true; },
    onClose() { /* kept */ },
  });
  return [...flows.values()].filter((f) => f.conn.roleKnown);
}

function captures(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((f) => /\.pcap(ng)?$/.test(f)).map((f) => path.join(dir, f));
}

/** Per decoder: captures of its protocol whose first bytes each side sends must decide the side. */
const PROTOCOLS: Array<{ decoder: string; files: string[]; bothSides?: (r: Read) => boolean }> = [
  { decoder: 'http1', files: [...captures(path.join(repoRoot, 'decoders', 'http1', 'testdata')), ...captures(path.join(corpus, 'http1'))] },
  { decoder: 'dns', files: [...captures(path.join(repoRoot, 'decoders', 'dns', 'testdata')), ...captures(path.join(corpus, 'dns'))] },
  { decoder: 'pgsql', files: [...captures(path.join(repoRoot, 'decoders', 'pgsql', 'testdata')), ...captures(path.join(corpus, 'pgsql'))] },
  // The server's preface is a SETTINGS frame (RFC 9113 3.4), which the client sends too (after its
  // magic, and whenever its settings change): without the magic it tells no side.
  {
    decoder: 'http2', files: [...captures(path.join(repoRoot, 'decoders', 'http2', 'testdata')), ...captures(path.join(corpus, 'http2'))],
    bothSides: (r) => !r.fromClient && r.bytes.length >= 9 && r.bytes[3] === 4,
  },
  { decoder: 'kafka', files: [...captures(path.join(repoRoot, 'decoders', 'kafka', 'testdata')), ...captures(path.join(corpus, 'kafka'))] },
];

for (const p of PROTOCOLS) {
  test(`${p.decoder}: the first bytes each side sends read as that side only (${p.files.length} captures)`, async (t) => {
    assert.ok(p.files.length > 0, 'captures found');
    const d = loadDecoder(p.decoder);
    let checked = 0;
    const wrong: string[] = [];
    for (const file of p.files) {
      for (const f of await flowsOf(file)) {
        for (const r of f.reads) {
          if (!r.first) continue;
          const own = d.inst.detect(r.fromClient ? DIR_REQUEST : DIR_RESPONSE, r.bytes);
          if (own < THRESHOLD) continue; // not this protocol, or not a start the decoder knows (judged by the corpus tests)
          checked++;
          const other = d.inst.detect(r.fromClient ? DIR_RESPONSE : DIR_REQUEST, r.bytes);
          if (other >= THRESHOLD && !p.bothSides?.(r)) wrong.push(`${path.basename(file)} #${f.conn.id} ${r.fromClient ? 'client' : 'server'}: ${own}/${other} ${Buffer.from(r.bytes.subarray(0, 24)).toString('latin1')}`);
        }
      }
    }
    t.diagnostic(`${checked} first reads of this protocol`);
    assert.ok(checked > 0, 'some first bytes were this protocol');
    assert.deepEqual(wrong, [], `${wrong.length} of ${checked} first reads also read as the other side`);
  });
}

function router(): Router {
  let r!: Router;
  const registry = new DecoderRegistry({ onRecord: (rec, inst) => r.onRecord(rec, inst.meta.name) });
  registry.loadDir(path.join(repoRoot, 'build', 'decoders'));
  r = new Router(registry, () => undefined, new SelfMetrics(), { detectThreshold: THRESHOLD });
  return r;
}

test('no read of any captured connection, seen by either side as the first of a connection older than the agent, gives that side the wrong role', async (t) => {
  const r = router();
  const files = [corpus, ...['http1', 'dns', 'pgsql', 'http2', 'kafka'].map((p) => path.join(repoRoot, 'decoders', p, 'testdata'))]
    .flatMap((d) => (d === corpus ? fs.readdirSync(d).map((s) => path.join(d, s)) : [d]))
    .flatMap(captures);
  assert.ok(files.length >= 40, `captures found: ${files.length}`);
  let decided = 0;
  let reads = 0;
  const wrong: string[] = [];
  for (const file of files) {
    for (const f of await flowsOf(file)) {
      for (const rd of f.reads) {
        // The same bytes are sent by one side and read by the other: as each of them would see it.
        for (const egress of [true, false]) {
          const localIsClient = rd.fromClient === egress;
          const c = f.conn;
          const meta: ConnMeta = {
            role: 'unknown', transport: 'tcp', pid: 1,
            localAddr: localIsClient ? c.client.addr : c.server.addr, localPort: localIsClient ? c.client.port : c.server.port,
            remoteAddr: localIsClient ? c.server.addr : c.client.addr, remotePort: localIsClient ? c.server.port : c.client.port,
          };
          if (c.transport !== 'tcp') continue;
          const conn = r.open(meta);
          r.dataLocal(conn, egress, rd.bytes, 1000n);
          reads++;
          if (conn.meta.role !== 'unknown') {
            decided++;
            if (conn.meta.role !== (localIsClient ? 'client' : 'server')) {
              wrong.push(`${path.basename(file)} #${c.id} ${rd.fromClient ? 'client' : 'server'} bytes ${egress ? 'sent' : 'read'}: ${conn.decoder?.name ?? '?'} ${Buffer.from(rd.bytes.subarray(0, 24)).toString('hex')}`);
            }
          }
          r.close(conn);
        }
      }
    }
  }
  t.diagnostic(`${decided} of ${reads} reads decided a side, ${wrong.length} wrongly`);
  assert.ok(decided > 0, 'some reads decided');
  assert.deepEqual(wrong.slice(0, 20), [], `${wrong.length} of ${decided} decided reads (of ${reads}) took the wrong side`);
});

test('http2 without the preface: frames only one side sends decide, the rest read as either side', () => {
  const d = loadDecoder('http2');
  const both = (b: Buffer) => [d.inst.detect(DIR_REQUEST, b), d.inst.detect(DIR_RESPONSE, b)];
  const setting = (id: number, v: number) => { const p = Buffer.alloc(6); p.writeUInt16BE(id, 0); p.writeUInt32BE(v, 2); return p; };
  // SETTINGS_ENABLE_PUSH = 1: a server must not send it (RFC 9113 6.5.2)
  const [rq, rs] = both(frame(4, 0, 0, setting(2, 1)));
  assert.ok(rq >= THRESHOLD && rs < THRESHOLD, `ENABLE_PUSH=1 ${rq}/${rs}`);
  // a pushed (even) stream's DATA: only the server sends on it (RFC 9113 5.1.1)
  const [pq, ps] = both(frame(0, 0, 2, Buffer.from('pushed body')));
  assert.ok(ps >= THRESHOLD && pq < THRESHOLD, `DATA on stream 2 ${pq}/${ps}`);
  // DATA on a client stream, MAX_CONCURRENT_STREAMS, PING: either side
  for (const b of [frame(0, 0, 1, Buffer.from('body')), frame(4, 0, 0, setting(3, 100)), frame(6, 0, 0, Buffer.alloc(8))]) {
    const [a, c] = both(b);
    assert.ok(a >= THRESHOLD && c >= THRESHOLD, `${b.subarray(0, 9).toString('hex')}: ${a}/${c}`);
  }
});
