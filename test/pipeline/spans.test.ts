// Spans built from decoder records: exchanges whose attribute sets repeat (shared by the record
// reader) each get their own attributes with their connection's facts.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { serialize } from 'pg-protocol';
import { recordToSpan, identityClock } from '../../host/src/pipeline/spans';
import { ConnMeta } from '../../host/src/model';
import { loadDecoder } from '../helpers/decoder';
import { be, play, DIR_REQ as Q, DIR_RESP as R } from '../decoders/pgsql-util';

test('spans of exchanges with the same attribute bytes (one shared set) own their attributes', () => {
  const h = loadDecoder('pgsql');
  play(h, 1, [
    [Q, serialize.startup({ user: 'alice', database: 'shop' })],
    [R, Buffer.concat([be.authOk(), be.ready()])],
  ]);
  for (let i = 0; i < 4; i++) play(h, 1, [[Q, serialize.query('SELECT 1')], [R, Buffer.concat([be.rowDesc('a'), be.dataRow('1'), be.complete('SELECT 1'), be.ready()])]]);
  const ex = h.records.filter((r) => r.kind === 1 && r.attributes['db.query.text'] === 'SELECT 1');
  assert.equal(ex.length, 4);
  assert.equal(ex[2].attributes, ex[3].attributes, 'the reader shares a repeated set');
  const before = { ...ex[3].attributes };
  const conns: ConnMeta[] = [1, 2, 3, 4].map((k) => ({ role: 'client', localAddr: `10.0.0.${k}`, localPort: 40000 + k, remoteAddr: '10.0.1.1', remotePort: 5432, transport: 'tcp' }));
  const spans = ex.map((r, k) => recordToSpan(r, conns[k], 'postgresql', { clock: identityClock })!);
  for (let k = 0; k < 4; k++) {
    const a = spans[k].attributes;
    assert.equal(a['db.query.text'], 'SELECT 1');
    assert.equal(a['db.response.returned_rows'], 1);
    assert.equal(a['network.peer.address'], '10.0.1.1');
    assert.equal(a['server.port'], 5432);
    assert.equal(a['client.address'], undefined, 'a client span names no client');
    for (let j = 0; j < k; j++) assert.notEqual(a, spans[j].attributes);
  }
  // The shared set is as the decoder made it: no span's additions leaked into it.
  assert.deepEqual({ ...ex[3].attributes }, before);
  assert.equal(before['network.peer.address'], undefined);
});

test('DNS without an answer: multicast (mDNS, LLMNR, IPv4 and IPv6) is no error; unicast times out; a TCP query closed on is no_response', async () => {
  const { KIND_EXCHANGE, FLAG_NO_RESPONSE, FLAG_TIMEOUT } = await import('../../decoders/abi/abi');
  const start = 1_000_000_000n, gaveUp = 6_000_000_000n, closed = 3_000_000_000n;
  const span = (remoteAddr: string, remotePort: number, transport: 'udp' | 'tcp', flags: number, closedTs?: bigint) => {
    const conn: ConnMeta = { role: 'client', localAddr: remoteAddr.includes(':') ? 'fe80::1' : '10.0.0.2', localPort: 40000, remoteAddr, remotePort, transport, closedTs };
    const tsEnd = flags & FLAG_TIMEOUT ? gaveUp : start;
    const s = recordToSpan({ kind: KIND_EXCHANGE, flags, stream: 1, tsStart: start, tsEnd, attributes: { 'network.protocol.name': 'dns', 'dns.question.name': 'printer.local', 'dns.question.type': 'A' } } as Parameters<typeof recordToSpan>[0], conn, 'dns', { clock: identityClock })!;
    return { code: s.status.code, type: s.attributes['error.type'], none: s.attributes['telegen.no_response'], ns: s.duration[0] * 1e9 + s.duration[1] };
  };
  const UNSET = 0, ERROR = 2;
  for (const [addr, port] of [['224.0.0.251', 5353], ['ff02::fb', 5353], ['224.0.0.252', 5355], ['ff02::1:3', 5355]] as const) {
    // gave up by the decoder (5 s) or the socket closed: no error either way, lasting until then
    assert.deepEqual(span(addr, port, 'udp', FLAG_NO_RESPONSE | FLAG_TIMEOUT), { code: UNSET, type: undefined, none: true, ns: Number(gaveUp - start) }, addr);
    assert.deepEqual(span(addr, port, 'udp', FLAG_NO_RESPONSE, closed), { code: UNSET, type: undefined, none: true, ns: Number(closed - start) }, addr);
  }
  assert.deepEqual(span('127.0.0.53', 53, 'udp', FLAG_NO_RESPONSE | FLAG_TIMEOUT), { code: ERROR, type: 'timeout', none: true, ns: Number(gaveUp - start) });
  assert.deepEqual(span('2001:db8::53', 53, 'udp', FLAG_NO_RESPONSE, closed), { code: ERROR, type: 'timeout', none: true, ns: Number(closed - start) });
  assert.deepEqual(span('10.0.0.53', 53, 'tcp', FLAG_NO_RESPONSE, closed), { code: ERROR, type: 'no_response', none: true, ns: Number(closed - start) });
  // over TCP with the connection still open after 5 s: a timeout
  assert.deepEqual(span('10.0.0.53', 53, 'tcp', FLAG_NO_RESPONSE | FLAG_TIMEOUT), { code: ERROR, type: 'timeout', none: true, ns: Number(gaveUp - start) });
});
