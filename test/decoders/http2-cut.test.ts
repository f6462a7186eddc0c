// HTTP/2 streams whose response began and whose connection closed before the response's end
// (decoders/http2/testdata/h2-cut.pcap, record/h2-cut.js): an @grpc/grpc-js server-streaming
// call whose client process exits after 3 messages, and the same call from curl
// --http2-prior-knowledge giving up at --max-time 0.6 after 11 (both close the connection, no
// RST_STREAM), then one that completes. tshark shows each stream's :status 200 and its messages.
// The decoder reported the two cut streams FLAG_NO_RESPONSE at the close, so their spans said
// telegen.no_response=true beside http.response.status_code 200 — where the idle timeout reports
// a begun response FLAG_UNKNOWN (answered, end unseen) and http1 a body cut by the close the same.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { SpanStatusCode } from '@opentelemetry/api';
import { loadDecoder, repoRoot } from '../helpers/decoder';
import { replayFile } from '../../host/src/replay';
import { recordToSpan, identityClock } from '../../host/src/pipeline/spans';
import { ConnMeta } from '../../host/src/model';
import { DIR_REQUEST, DIR_RESPONSE, FLAG_NO_RESPONSE, FLAG_UNKNOWN } from '../../decoders/abi/abi';
import { exchanges } from './http2-helpers';

const testdata = path.join(repoRoot, 'decoders', 'http2', 'testdata');
// tshark: DATA payload bytes the server sent on each connection before it closed
const RESPONSE_BYTES: Record<string, number> = { '0': 45, '1': 166, '2': 30 };

test('a response cut by the connection\'s close: answered (status, messages, bytes as tshark), unknown end, no no_response on either side', async () => {
  const [head, ...lines] = fs.readFileSync(path.join(testdata, 'h2-cut.expected-calls.tsv'), 'utf8').split('\n').filter(Boolean);
  const cols = head.split('\t');
  const calls = lines.map((l) => Object.fromEntries(l.split('\t').map((v, i) => [cols[i], v])));
  const h = loadDecoder('http2');
  const connOf = new Map<number, string>();
  let n = 0;
  await replayFile(path.join(testdata, 'h2-cut.pcap'), {
    onOpen: (c) => { connOf.set(c.id, String(n++)); },
    onData: (c, fromClient, bytes, ts) => { h.inst.feed(c.id, fromClient ? DIR_REQUEST : DIR_RESPONSE, bytes, ts); },
    onGap: () => { throw new Error('unexpected gap in a loopback recording'); },
    onClose: (c) => { h.inst.closeStream(c.id); },
  });
  const recs = exchanges(h);
  assert.equal(recs.length, 3);
  for (const c of calls) {
    const r = recs.find((x) => connOf.get(x.stream) === c['tcp.stream'])!;
    const cut = c['grpc.status'] === '';
    const a = r.attributes;
    const what = `tcp.stream ${c['tcp.stream']}`;
    assert.equal(a['http.response.status_code'], Number(c.status), what);
    assert.equal(a['telegen.rpc.response.messages'], Number(c['grpc.response.messages']), what);
    assert.equal(a['http.response.body.size'], RESPONSE_BYTES[c['tcp.stream']], what);
    assert.equal(r.flags & FLAG_NO_RESPONSE, 0, `${what}: answered`);
    assert.equal(r.flags & FLAG_UNKNOWN, cut ? FLAG_UNKNOWN : 0, `${what}: its end ${cut ? 'unseen' : 'seen'}`);
    for (const role of ['client', 'server'] as const) {
      const meta: ConnMeta = role === 'client'
        ? { role, localAddr: '127.0.0.1', localPort: 40000, remoteAddr: '127.0.0.1', remotePort: 19530, transport: 'tcp', closedTs: r.tsEnd + 1_000_000n }
        : { role, localAddr: '127.0.0.1', localPort: 19530, remoteAddr: '127.0.0.1', remotePort: 40000, transport: 'tcp', closedTs: r.tsEnd + 1_000_000n };
      const span = recordToSpan({ ...r, attributes: { ...a } } as Parameters<typeof recordToSpan>[0], meta, 'http2', { clock: identityClock })!;
      assert.equal(span.attributes['telegen.no_response'], undefined, `${what} ${role}: no telegen.no_response beside a 200`);
      assert.equal(span.status.code, SpanStatusCode.UNSET, `${what} ${role}`);
      assert.equal(span.attributes['telegen.unknown'], cut ? true : undefined, `${what} ${role}`);
    }
  }
});
