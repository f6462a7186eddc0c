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
