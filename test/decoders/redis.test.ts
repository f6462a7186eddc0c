// The example decoder (decoders/redis): a command never answered is reported by tick() as a
// timeout, and the reply that comes after all is not taken for the next command's.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { loadDecoder } from '../helpers/decoder';
import { DIR_REQUEST as REQ, DIR_RESPONSE as RSP, FLAG_NO_RESPONSE, FLAG_TIMEOUT } from '../../decoders/abi/abi';

const cmd = (...args: string[]) => Buffer.from(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`, 'latin1');
const S = 1_000_000_000n;

test('redis tick(): an unanswered command and those behind it time out; its late reply is not the next command\'s', () => {
  const h = loadDecoder('redis');
  h.inst.feed(1, REQ, cmd('GET', 'a'), 1n * S);
  h.inst.feed(1, REQ, cmd('GET', 'b'), 2n * S);
  h.inst.tick(30n * S);
  assert.equal(h.records.length, 0, 'not yet: 29 s');
  h.inst.tick(62n * S);
  assert.deepEqual(h.records.map((r) => [r.attributes['db.query.text'], r.flags, r.tsStart, r.tsEnd]),
    [['GET a', FLAG_NO_RESPONSE | FLAG_TIMEOUT, 1n * S, 62n * S], ['GET b', FLAG_NO_RESPONSE | FLAG_TIMEOUT, 2n * S, 62n * S]]);
  // The server answers after all (the two late replies), then a new command gets its own reply.
  h.inst.feed(1, RSP, Buffer.from('$-1\r\n$1\r\nx\r\n'), 63n * S);
  h.inst.feed(1, REQ, cmd('GET', 'c'), 64n * S);
  h.inst.feed(1, RSP, Buffer.from('$3\r\nccc\r\n'), 65n * S);
  assert.equal(h.records.length, 3, JSON.stringify(h.records.slice(2), (_k, v) => typeof v === 'bigint' ? String(v) : v));
  const c = h.records[2];
  assert.deepEqual([c.attributes['db.query.text'], c.flags, c.tsStart, c.tsEnd, c.attributes['telegen.response.size']], ['GET c', 0, 64n * S, 65n * S, 9]);
});

test('redis tick(): a blocking command (BLPOP key 0) and what waits behind it never time out', () => {
  const h = loadDecoder('redis');
  h.inst.feed(1, REQ, cmd('BLPOP', 'jobs', '0'), 1n * S);
  h.inst.feed(2, REQ, cmd('GET', 'k'), 1n * S);
  h.inst.tick(3600n * S);
  assert.deepEqual(h.records.map((r) => [r.stream, r.attributes['db.operation.name'], r.flags]), [[2, 'GET', FLAG_NO_RESPONSE | FLAG_TIMEOUT]]);
  h.inst.feed(1, RSP, Buffer.from('*2\r\n$4\r\njobs\r\n$1\r\n1\r\n'), 3601n * S);
  assert.deepEqual([h.records[1].attributes['db.operation.name'], h.records[1].flags, h.records[1].tsEnd], ['BLPOP', 0, 3601n * S]);
});
