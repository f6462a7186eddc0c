// Unit tests of the pgsql decoder: exact attributes users see, split reads, pipelining, errors,
// COPY, authentication without secrets, hostile input.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { serialize } from 'pg-protocol';
import { Harness } from '../helpers/decoder';
import { DecodedRecord } from '../../host/src/decoders/records';
import { be, fresh, play, exchanges, msg, i32, cstr, Step, DIR_REQ as Q, DIR_RESP as R } from './pgsql-util';

const FLAG_ERROR = 1, FLAG_NO_RESPONSE = 2, FLAG_NO_REQUEST = 4, FLAG_TRUNCATED = 8, FLAG_UNKNOWN = 16, FLAG_TIMEOUT = 32;
const BASE = { 'db.system.name': 'postgresql', 'network.protocol.name': 'postgresql' };
const CONN = { ...BASE, 'db.namespace': 'shop', 'telegen.db.user': 'alice', 'telegen.db.application_name': 'billing' };

/** Startup with trust auth; returns the steps (the startup record is the first one emitted). */
function startupSteps(): Step[] {
  return [
    [Q, serialize.startup({ user: 'alice', database: 'shop', application_name: 'billing', client_encoding: 'UTF8' })],
    [R, Buffer.concat([be.authOk(), be.param('server_version', '15.8'), be.param('client_encoding', 'UTF8'), be.keyData(4242, 0x5ec2e7), be.ready()])],
  ];
}

function connected(): Harness {
  const h = fresh();
  play(h, 1, startupSteps());
  h.records.length = 0;
  return h;
}

/** Everything a user could see of the records, as one string (to look for leaked secrets). */
function dump(h: Harness): string { return JSON.stringify(h.records.map((r) => r.attributes)) + h.logs.join('\n'); }

function attrs(r: DecodedRecord): Record<string, unknown> { return r.attributes; }

test('meta names the decoder, its protocol and port', () => {
  const h = fresh();
  assert.equal(h.inst.meta.name, 'pgsql');
  assert.deepEqual(h.inst.meta.protocols, ['postgresql']);
  assert.deepEqual(h.inst.meta.ports, [5432]);
  assert.equal(h.inst.meta.transport, 'tcp');
});

test('detect: startup, SSLRequest and CancelRequest are certain; typed chains plausible; other bytes not', () => {
  const h = fresh();
  assert.equal(h.inst.detect(Q, serialize.startup({ user: 'u' })), 100);
  assert.equal(h.inst.detect(Q, serialize.requestSsl()), 100);
  assert.equal(h.inst.detect(Q, serialize.cancel(1, 2)), 100);
  assert.ok(h.inst.detect(Q, Buffer.concat([serialize.parse({ text: 'select 1' }), serialize.bind({}), serialize.execute({}), serialize.sync()])) >= 50);
  assert.ok(h.inst.detect(R, be.authMd5(Buffer.from('salt'))) >= 80);
  assert.equal(h.inst.detect(Q, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), 0);
  assert.equal(h.inst.detect(Q, Buffer.from([0x16, 3, 1, 0, 0x50, 1])), 0);
});

test('startup: parameters, trust auth, backend pid and server version; ts from StartupMessage to ReadyForQuery', () => {
  const h = fresh();
  assert.deepEqual(play(h, 1, startupSteps()), ['ok', 'ok']);
  assert.equal(h.records.length, 1);
  const r = h.records[0];
  assert.equal(r.kind, 1);
  assert.equal(r.flags, 0);
  assert.equal(r.tsStart, 1000n);
  assert.equal(r.tsEnd, 2000n);
  assert.deepEqual(attrs(r), { ...CONN, 'db.operation.name': 'STARTUP', 'network.protocol.version': '3.0', 'telegen.db.auth.method': 'trust', 'telegen.db.backend.pid': 4242, 'telegen.db.server.version': '15.8' });
});

test('SSLRequest answered N, then SCRAM-SHA-256: no secret reaches any record or log', () => {
  const password = 'hunter2-Sup3rSecret';
  const clientNonce = 'rOprNGfwEbeRWgbNEkqO';
  const serverFirst = `r=${clientNonce}%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`;
  const clientFinal = `c=biws,r=${clientNonce}%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=`;
  const serverFinal = 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=';
  const h = fresh();
  const steps: Step[] = [
    [Q, serialize.requestSsl()],
    [R, be.sslNo()],
    [Q, serialize.startup({ user: 'alice', database: 'shop', application_name: 'billing' })],
    [R, be.authSasl('SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256')],
    [Q, serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', `n,,n=*,r=${clientNonce}`)],
    [R, be.authSaslContinue(serverFirst)],
    [Q, serialize.sendSCRAMClientFinalMessage(clientFinal)],
    [R, Buffer.concat([be.authSaslFinal(serverFinal), be.authOk(), be.param('server_version', '15.8'), be.keyData(77, 0x1badc0de), be.ready()])],
    [Q, serialize.query('select 1')],
    [R, Buffer.concat([be.rowDesc('?column?'), be.dataRow('1'), be.complete('SELECT 1'), be.ready()])],
  ];
  assert.deepEqual(play(h, 3, steps), Array(steps.length).fill('ok'));
  assert.equal(h.records.length, 2);
  assert.deepEqual(attrs(h.records[0]), { ...CONN, 'db.operation.name': 'STARTUP', 'network.protocol.version': '3.0', 'telegen.db.auth.method': 'SCRAM-SHA-256', 'telegen.db.backend.pid': 77, 'telegen.db.server.version': '15.8' });
  assert.equal(h.records[0].tsStart, 1000n, 'the exchange starts at the SSLRequest');
  assert.equal(h.records[0].tsEnd, 8000n);
  const everything = JSON.stringify(h.records.map((r) => r.attributes)) + h.logs.join('\n');
  for (const secret of [password, clientNonce, 'W22ZaJ0SNY7soEsUEjb6gQ', 'dHzbZapWIk4jUhN', serverFinal.slice(2), String(0x1badc0de)]) {
    assert.ok(!everything.includes(secret), `secret ${secret} leaked`);
  }
});

test('cleartext and MD5 passwords never appear; auth method is reported', () => {
  for (const [auth, method, pw] of [[be.authCleartext(), 'password', 'plain-Pa55word'], [be.authMd5(Buffer.from([1, 2, 3, 4])), 'md5', 'md5a3556571e93b0d20722ba62be61e8c2d']] as const) {
    const h = fresh();
    play(h, 1, [
      [Q, serialize.startup({ user: 'bob', database: 'db1' })],
      [R, auth],
      [Q, serialize.password(pw)],
      [R, Buffer.concat([be.authOk(), be.ready()])],
    ]);
    assert.equal(h.records.length, 1);
    assert.deepEqual(attrs(h.records[0]), { ...BASE, 'db.namespace': 'db1', 'telegen.db.user': 'bob', 'db.operation.name': 'STARTUP', 'network.protocol.version': '3.0', 'telegen.db.auth.method': method });
    assert.ok(!dump(h).includes(pw.slice(0, 8)));
  }
});

test('no database parameter: the namespace is the user name (server default)', () => {
  const h = fresh();
  play(h, 1, [[Q, serialize.startup({ user: 'carol' })], [R, Buffer.concat([be.authOk(), be.ready()])]]);
  assert.equal(h.records[0].attributes['db.namespace'], 'carol');
});

test('authentication failure: FATAL ends the startup exchange with FLAG_ERROR', () => {
  const h = fresh();
  play(h, 1, [
    [Q, serialize.startup({ user: 'alice', database: 'shop' })],
    [R, be.authMd5(Buffer.from('abcd'))],
    [Q, serialize.password('wrong')],
    [R, be.error('FATAL', '28P01', 'password authentication failed for user "alice"')],
  ]);
  h.inst.closeStream(1);
  assert.equal(h.records.length, 1);
  assert.equal(h.records[0].flags, FLAG_ERROR);
  assert.deepEqual(attrs(h.records[0]), {
    ...BASE, 'db.namespace': 'shop', 'telegen.db.user': 'alice', 'db.operation.name': 'STARTUP', 'network.protocol.version': '3.0', 'telegen.db.auth.method': 'md5',
    'db.response.status_code': '28P01', 'error.type': '28P01', 'error.message': 'password authentication failed for user "alice"', 'telegen.db.severity': 'FATAL',
  });
});

test('SSLRequest answered S: an upgrade record, then the stream is ignored', () => {
  const h = fresh();
  assert.deepEqual(play(h, 1, [[Q, serialize.requestSsl()], [R, be.sslYes()], [Q, Buffer.from([0x16, 3, 1, 0, 5, 1, 2, 3, 4, 5])], [R, Buffer.from([0x16, 3, 3, 0, 1, 9])]]), ['ok', 'ignored', 'ignored', 'ignored']);
  assert.equal(h.records.length, 1);
  assert.equal(h.records[0].kind, 3);
  assert.deepEqual(attrs(h.records[0]), { ...BASE, 'telegen.protocol.next': 'tls' });
  assert.equal(h.records[0].tsStart, 1000n);
  assert.equal(h.records[0].tsEnd, 2000n);
});

test('direct TLS (ClientHello without SSLRequest): an upgrade record, the stream is ignored', () => {
  const h = fresh();
  assert.deepEqual(play(h, 1, [[Q, Buffer.from([0x16, 3, 1, 0, 5, 1, 2, 3, 4, 5])], [R, Buffer.from([0x16, 3, 3, 0, 1, 9])]]), ['ignored', 'ignored']);
  assert.deepEqual(h.records.map((r) => [r.kind, r.attributes['telegen.protocol.next']]), [[3, 'tls']]);
});

test('GSSENCRequest answered N then a plain startup', () => {
  const h = fresh();
  play(h, 1, [[Q, Buffer.concat([i32(8), i32(80877104)])], [R, be.sslNo()], ...startupSteps()]);
  assert.equal(h.records.length, 1);
  assert.equal(h.records[0].attributes['db.operation.name'], 'STARTUP');
});

test('SSLRequest or GSSENCRequest answered N, then closed before any StartupMessage: one failed STARTUP (the client required encryption)', () => {
  for (const [code, type] of [[80877103, 'ssl_refused'], [80877104, 'gssenc_refused']] as const) {
    const h = fresh();
    play(h, 1, [[Q, Buffer.concat([i32(8), i32(code)])], [R, be.sslNo()]]);
    assert.equal(h.records.length, 0);
    h.inst.closeStream(1);
    assert.deepEqual(h.records.map((r) => [r.kind, r.flags & FLAG_ERROR, r.attributes['db.operation.name'], r.attributes['error.type'], r.tsStart, r.tsEnd]),
      [[1, FLAG_ERROR, 'STARTUP', type, 1000n, 2000n]]);
  }
  // Refused, then the plain startup: only that startup, at close too.
  const h = fresh();
  play(h, 1, [[Q, Buffer.concat([i32(8), i32(80877103)])], [R, be.sslNo()], ...startupSteps()]);
  h.inst.closeStream(1);
  assert.deepEqual(h.records.map((r) => [r.attributes['db.operation.name'], r.attributes['error.type']]), [['STARTUP', undefined]]);
  // Accepted ('S'): the upgrade only, nothing at close.
  const t = fresh();
  play(t, 1, [[Q, Buffer.concat([i32(8), i32(80877103)])], [R, Buffer.from('S')]]);
  t.inst.closeStream(1);
  assert.deepEqual(t.records.map((r) => [r.kind, r.attributes['telegen.protocol.next']]), [[3, 'tls']]);
});

test('simple query: text, operation, collection, rows, tag; span from Query to ReadyForQuery', () => {
  const h = connected();
  play(h, 1, [
    [Q, serialize.query('SELECT id, name FROM public.users WHERE id > 10')],
    [R, Buffer.concat([be.rowDesc('id', 'name'), be.dataRow('11', 'x'), be.dataRow('12', 'y'), be.dataRow('13', 'z'), be.complete('SELECT 3')])],
    [R, be.ready()],
  ], 5000n);
  assert.equal(h.records.length, 1);
  const r = h.records[0];
  assert.equal(r.flags, 0);
  assert.equal(r.tsStart, 5000n);
  assert.equal(r.tsEnd, 7000n);
  assert.deepEqual(attrs(r), { ...CONN, 'db.query.text': 'SELECT id, name FROM public.users WHERE id > 10', 'db.operation.name': 'SELECT', 'db.collection.name': 'public.users', 'telegen.db.command_tag': 'SELECT 3', 'db.response.returned_rows': 3 });
});

test('command tags with row counts: db.response.returned_rows only for rows sent back (SELECT, FETCH, RETURNING, COPY TO), not rows written', () => {
  const h = connected();
  // A result set's tag follows a RowDescription (and its DataRows), as PostgreSQL sends it: `T`
  // marks those; `T2` adds two DataRows.
  const cases: Array<[string, string, Record<string, unknown>]> = [
    ['INSERT INTO orders (id, total) VALUES (1, 9.5)', 'INSERT 0 1', { 'db.operation.name': 'INSERT', 'db.collection.name': 'orders' }],
    ['update "Orders" set total = 0 where id in (1,2)', 'UPDATE 2', { 'db.operation.name': 'UPDATE', 'db.collection.name': '"Orders"' }],
    ['DELETE FROM orders WHERE id = 7', 'DELETE 0', { 'db.operation.name': 'DELETE', 'db.collection.name': 'orders' }],
    ['BEGIN', 'BEGIN', { 'db.operation.name': 'BEGIN' }],
    ['CREATE TABLE IF NOT EXISTS audit.log (x int)', 'CREATE TABLE', { 'db.operation.name': 'CREATE', 'db.collection.name': 'audit.log' }],
    ['-- a comment\n/* and another */ (select 1)', 'T2 SELECT 2', { 'db.operation.name': 'SELECT', 'db.response.returned_rows': 2 }],
    ['select a.x from a join b on a.id = b.id', 'T SELECT 0', { 'db.operation.name': 'SELECT', 'db.response.returned_rows': 0 }],
    ['select x from a, b', 'T SELECT 0', { 'db.operation.name': 'SELECT', 'db.response.returned_rows': 0 }],
    ['select * from t where id in (select id from u)', 'T SELECT 0', { 'db.operation.name': 'SELECT', 'db.response.returned_rows': 0 }],
    ["select 'from x' as s from t1 t", 'T SELECT 0', { 'db.operation.name': 'SELECT', 'db.collection.name': 't1', 'db.response.returned_rows': 0 }],
    ["WITH recent AS (SELECT * FROM orders WHERE ts > now() - interval '1 day') DELETE FROM orders WHERE id IN (SELECT id FROM recent)", 'DELETE 3', { 'db.operation.name': 'DELETE' }],
    ['with recursive t(n) as (values (1) union all select n+1 from t where n < 5) select sum(n) from t', 'T SELECT 0', { 'db.operation.name': 'SELECT', 'db.response.returned_rows': 0 }],
    ['  TRUNCATE TABLE ONLY audit.events', 'TRUNCATE TABLE', { 'db.operation.name': 'TRUNCATE', 'db.collection.name': 'audit.events' }],
    ['DROP TABLE a, b', 'DROP TABLE', { 'db.operation.name': 'DROP' }],
    ['frobnicate the database', 'T SELECT 0', { 'db.operation.name': 'SELECT', 'db.response.returned_rows': 0 }],
    ['INSERT INTO t (a, b) SELECT a, b FROM u', 'INSERT 0 2', { 'db.operation.name': 'INSERT', 'db.collection.name': 't' }],
    ['SELECT $$ FROM fake $$ AS s FROM real_t', 'T SELECT 0', { 'db.operation.name': 'SELECT', 'db.collection.name': 'real_t', 'db.response.returned_rows': 0 }],
    ['INSERT INTO "Weird ""Name""" VALUES (1); SELECT 1', 'INSERT 0 1;T2 SELECT 2', { 'db.operation.name': 'INSERT', 'db.response.returned_rows': 2 }],
    // RETURNING: the rows are sent back, none when nothing matched
    ['INSERT INTO t (a) VALUES (1), (2) RETURNING id', 'T2 INSERT 0 2', { 'db.operation.name': 'INSERT', 'db.collection.name': 't', 'db.response.returned_rows': 2 }],
    ['UPDATE t SET a = 1 WHERE false RETURNING *', 'T UPDATE 0', { 'db.operation.name': 'UPDATE', 'db.collection.name': 't', 'db.response.returned_rows': 0 }],
    // CREATE TABLE AS: tagged SELECT n, no RowDescription, nothing sent back
    ['CREATE TABLE t2 AS SELECT * FROM t', 'SELECT 5', { 'db.operation.name': 'CREATE', 'db.collection.name': 't2' }],
    ['MOVE 5 IN c', 'MOVE 5', { 'db.operation.name': 'MOVE' }],
    ['FETCH 2 FROM c', 'T2 FETCH 2', { 'db.operation.name': 'FETCH', 'db.response.returned_rows': 2 }],
  ];
  for (const [sql, tag, extra] of cases) {
    h.records.length = 0;
    const answer = tag.split(';').flatMap((t) => {
      const m = /^T(\d*) (.*)$/.exec(t);
      if (!m) return [be.complete(t)];
      return [be.rowDesc('x'), ...Array.from({ length: Number(m[1] || 0) }, () => be.dataRow('1')), be.complete(m[2])];
    });
    play(h, 1, [[Q, serialize.query(sql)], [R, Buffer.concat([...answer, be.ready('T')])]]);
    assert.equal(h.records.length, 1, sql);
    assert.deepEqual(attrs(h.records[0]), { ...CONN, 'db.query.text': sql, 'telegen.db.command_tag': tag.replace(/(^|;)T\d* /g, '$1'), ...extra }, sql);
  }
});

test('multi-statement simple query is one exchange; tags joined, rows summed from DataRows', () => {
  const h = connected();
  play(h, 1, [
    [Q, serialize.query('BEGIN; SELECT 1; SELECT 2; COMMIT')],
    [R, Buffer.concat([be.complete('BEGIN'), be.rowDesc('a'), be.dataRow('1'), be.complete('SELECT 1'), be.rowDesc('b'), be.dataRow('2'), be.complete('SELECT 1'), be.complete('COMMIT'), be.ready()])],
  ]);
  assert.equal(h.records.length, 1);
  assert.deepEqual(attrs(h.records[0]), { ...CONN, 'db.query.text': 'BEGIN; SELECT 1; SELECT 2; COMMIT', 'db.operation.name': 'BEGIN', 'telegen.db.command_tag': 'BEGIN;SELECT 1;SELECT 1;COMMIT', 'db.response.returned_rows': 2 });
});

test('empty query string: EmptyQueryResponse, no tag', () => {
  const h = connected();
  play(h, 1, [[Q, serialize.query('')], [R, Buffer.concat([be.empty(), be.ready()])]]);
  assert.equal(h.records.length, 1);
  assert.deepEqual(attrs(h.records[0]), { ...CONN, 'db.query.text': '' });
});

test('ErrorResponse: FLAG_ERROR, SQLSTATE, message, severity; a NoticeResponse is an event and no error', () => {
  const h = connected();
  play(h, 1, [
    [Q, serialize.query('select * from missing')],
    [R, Buffer.concat([be.notice('WARNING', '01000', 'something odd'), be.error('ERROR', '42P01', 'relation "missing" does not exist'), be.ready()])],
  ], 10_000n);
  assert.equal(h.records.length, 2);
  const [n, e] = h.records;
  assert.equal(n.kind, 2);
  assert.equal(n.flags, 0);
  assert.deepEqual(attrs(n), { ...CONN, 'telegen.db.event.name': 'notice', 'db.response.status_code': '01000', 'error.message': 'something odd', 'telegen.db.severity': 'WARNING' });
  assert.equal(e.kind, 1);
  assert.equal(e.flags, FLAG_ERROR);
  assert.deepEqual(attrs(e), { ...CONN, 'db.query.text': 'select * from missing', 'db.operation.name': 'SELECT', 'db.collection.name': 'missing', 'db.response.status_code': '42P01', 'error.type': '42P01', 'error.message': 'relation "missing" does not exist', 'telegen.db.severity': 'ERROR' });
});

test('extended protocol, unnamed statement and portal: one exchange per Execute from Parse to CommandComplete', () => {
  const h = connected();
  play(h, 1, [
    [Q, serialize.parse({ text: 'SELECT name FROM users WHERE id = $1' })],
    [Q, Buffer.concat([serialize.bind({ values: ['42'] }), serialize.describe({ type: 'P' }), serialize.execute({}), serialize.sync()])],
    [R, Buffer.concat([be.parseComplete(), be.bindComplete(), be.rowDesc('name'), be.dataRow('ann'), be.complete('SELECT 1')])],
    [R, be.ready()],
  ], 20_000n);
  assert.equal(h.records.length, 1);
  const r = h.records[0];
  assert.equal(r.tsStart, 20_000n);
  assert.equal(r.tsEnd, 22_000n);
  assert.deepEqual(attrs(r), { ...CONN, 'db.query.text': 'SELECT name FROM users WHERE id = $1', 'db.operation.name': 'SELECT', 'db.collection.name': 'users', 'telegen.db.command_tag': 'SELECT 1', 'db.response.returned_rows': 1 });
  assert.ok(!JSON.stringify(r.attributes).includes('42"'), 'bind parameter values are not captured');
});

test('named statement prepared once (PREPARE exchange), then executed through named portals', () => {
  const h = connected();
  play(h, 1, [
    // libpq PQprepare: Parse + Sync, no Execute in the batch.
    [Q, Buffer.concat([serialize.parse({ name: 'get_user', text: 'SELECT * FROM users WHERE id = $1', types: [23] }), serialize.sync()])],
    [R, Buffer.concat([be.parseComplete(), be.ready()])],
    [Q, Buffer.concat([serialize.bind({ statement: 'get_user', portal: 'p1', values: ['1'] }), serialize.execute({ portal: 'p1' }), serialize.sync()])],
    [R, Buffer.concat([be.bindComplete(), be.dataRow('1', 'ann'), be.complete('SELECT 1'), be.ready()])],
    [Q, Buffer.concat([serialize.bind({ statement: 'get_user', values: ['2'] }), serialize.execute({}), serialize.sync()])],
    [R, Buffer.concat([be.bindComplete(), be.complete('SELECT 0'), be.ready()])],
    [Q, Buffer.concat([serialize.close({ type: 'S', name: 'get_user' }), serialize.sync()])],
    [R, Buffer.concat([be.closeComplete(), be.ready()])],
    [Q, Buffer.concat([serialize.bind({ statement: 'get_user', values: ['3'] }), serialize.execute({}), serialize.sync()])],
    [R, Buffer.concat([be.error('ERROR', '26000', 'prepared statement "get_user" does not exist'), be.ready()])],
  ]);
  const sql = 'SELECT * FROM users WHERE id = $1';
  assert.deepEqual(h.records.map((r) => [r.flags, attrs(r)]), [
    [0, { ...CONN, 'db.query.text': sql, 'db.operation.name': 'PREPARE', 'db.collection.name': 'users', 'telegen.db.statement.name': 'get_user' }],
    [0, { ...CONN, 'db.query.text': sql, 'db.operation.name': 'SELECT', 'db.collection.name': 'users', 'telegen.db.statement.name': 'get_user', 'telegen.db.portal.name': 'p1', 'telegen.db.command_tag': 'SELECT 1', 'db.response.returned_rows': 1 }],
    [0, { ...CONN, 'db.query.text': sql, 'db.operation.name': 'SELECT', 'db.collection.name': 'users', 'telegen.db.statement.name': 'get_user', 'telegen.db.command_tag': 'SELECT 0', 'db.response.returned_rows': 0 }],
    // After Close the statement is forgotten: its SQL is unknown.
    [FLAG_ERROR | FLAG_UNKNOWN, { ...CONN, 'telegen.db.statement.name': 'get_user', 'db.response.status_code': '26000', 'error.type': '26000', 'error.message': 'prepared statement "get_user" does not exist', 'telegen.db.severity': 'ERROR' }],
  ]);
  assert.equal(h.records[0].tsStart, 1000n);
  assert.equal(h.records[0].tsEnd, 2000n);
});

test('pipelined extended queries: three Sync batches sent before any answer; the failing one is flagged', () => {
  const h = connected();
  const batch = (sql: string) => Buffer.concat([serialize.parse({ text: sql }), serialize.bind({}), serialize.describe({ type: 'P' }), serialize.execute({}), serialize.sync()]);
  play(h, 1, [
    [Q, Buffer.concat([batch('INSERT INTO t VALUES (1)'), batch('INSERT INTO nope VALUES (2)'), batch('UPDATE t SET x = 1')])],
    [R, Buffer.concat([be.parseComplete(), be.bindComplete(), be.noData(), be.complete('INSERT 0 1'), be.ready('T')])],
    [R, Buffer.concat([be.error('ERROR', '42P01', 'relation "nope" does not exist'), be.ready('E')])],
    [R, Buffer.concat([be.parseComplete(), be.bindComplete(), be.noData(), be.complete('UPDATE 5'), be.ready('T')])],
  ]);
  assert.deepEqual(h.records.map((r) => [r.flags, r.attributes['db.query.text'], r.attributes['telegen.db.command_tag'], r.attributes['db.response.status_code'], r.attributes['db.response.returned_rows']]), [
    [0, 'INSERT INTO t VALUES (1)', 'INSERT 0 1', undefined, undefined],
    [FLAG_ERROR, 'INSERT INTO nope VALUES (2)', undefined, '42P01', undefined],
    [0, 'UPDATE t SET x = 1', 'UPDATE 5', undefined, undefined],
  ]);
  assert.deepEqual(h.records.map((r) => [r.tsStart, r.tsEnd]), [[1000n, 2000n], [1000n, 3000n], [1000n, 4000n]]);
});

test('several Executes before one Sync: each is an exchange; an error skips the rest of the batch, whose Executes are pipeline_aborted', () => {
  const h = connected();
  play(h, 1, [
    [Q, Buffer.concat([
      serialize.parse({ name: 's1', text: 'SELECT 1' }), serialize.parse({ name: 's2', text: 'SELECT 2/0' }), serialize.parse({ name: 's3', text: 'SELECT 3' }),
      serialize.bind({ statement: 's1' }), serialize.execute({}),
      serialize.bind({ statement: 's2' }), serialize.execute({}),
      serialize.bind({ statement: 's3' }), serialize.execute({}),
      serialize.sync(),
    ])],
    [R, Buffer.concat([be.parseComplete(), be.parseComplete(), be.parseComplete(), be.bindComplete(), be.dataRow('1'), be.complete('SELECT 1'), be.bindComplete(), be.error('ERROR', '22012', 'division by zero'), be.ready('I')])],
  ]);
  assert.deepEqual(h.records.map((r) => [r.flags, r.attributes['db.query.text'], r.attributes['telegen.db.statement.name'], r.attributes['telegen.db.command_tag'] ?? r.attributes['db.response.status_code']]), [
    [0, 'SELECT 1', 's1', 'SELECT 1'],
    [FLAG_ERROR, 'SELECT 2/0', 's2', '22012'],
    [FLAG_ERROR, 'SELECT 3', 's3', undefined],
  ]);
  assert.equal(h.records[2].attributes['error.type'], 'pipeline_aborted');
  // Nothing is left pending: closing emits nothing more.
  h.inst.closeStream(1);
  assert.equal(h.records.length, 3);
});

test('Parse error inside a batch lands on its Execute', () => {
  const h = connected();
  play(h, 1, [
    [Q, Buffer.concat([serialize.parse({ text: 'SELEC 1' }), serialize.bind({}), serialize.describe({ type: 'P' }), serialize.execute({}), serialize.sync()])],
    [R, Buffer.concat([be.error('ERROR', '42601', 'syntax error at or near "SELEC"'), be.ready()])],
  ]);
  assert.equal(h.records.length, 1);
  assert.equal(h.records[0].flags, FLAG_ERROR);
  assert.equal(h.records[0].attributes['db.query.text'], 'SELEC 1');
  assert.equal(h.records[0].attributes['db.response.status_code'], '42601');
});

test('error reported before the batch\'s Execute arrives (the server flushes errors at once): it lands on that Execute', () => {
  for (const failAt of ['bind', 'parse'] as const) {
    const h = connected();
    const err = failAt === 'bind' ? be.error('ERROR', '22012', 'division by zero') : be.error('ERROR', '42601', 'syntax error at end of input');
    play(h, 1, [
      [Q, serialize.parse({ text: 'SELECT 1 / $1::int' })],
      [Q, Buffer.concat([serialize.bind({ values: ['0'] }), serialize.describe({ type: 'P' })])],
      [R, failAt === 'bind' ? Buffer.concat([be.parseComplete(), err]) : err],
      [Q, serialize.execute({})],
      [Q, serialize.sync()],
      [R, be.ready()],
      [Q, Buffer.concat([serialize.parse({ text: 'SELECT 2' }), serialize.bind({}), serialize.execute({}), serialize.sync()])],
      [R, Buffer.concat([be.parseComplete(), be.bindComplete(), be.dataRow('2'), be.complete('SELECT 1'), be.ready()])],
    ]);
    assert.deepEqual(h.records.map((r) => [r.flags, r.tsStart, r.tsEnd, r.attributes['db.query.text'], r.attributes['db.response.status_code'] ?? r.attributes['telegen.db.command_tag']]), [
      [FLAG_ERROR, 1000n, 3000n, 'SELECT 1 / $1::int', failAt === 'bind' ? '22012' : '42601'],
      [0, 7000n, 8000n, 'SELECT 2', 'SELECT 1'],
    ], failAt);
  }
});

test('Execute with a row limit: PortalSuspended, then the rest', () => {
  const h = connected();
  play(h, 1, [
    [Q, Buffer.concat([serialize.parse({ text: 'SELECT g FROM generate_series(1,3) g' }), serialize.bind({ portal: 'c' }), serialize.execute({ portal: 'c', rows: 2 }), serialize.flush()])],
    [R, Buffer.concat([be.parseComplete(), be.bindComplete(), be.dataRow('1'), be.dataRow('2'), be.suspended()])],
    [Q, Buffer.concat([serialize.execute({ portal: 'c', rows: 2 }), serialize.sync()])],
    [R, Buffer.concat([be.dataRow('3'), be.complete('SELECT 1'), be.ready()])],
  ]);
  assert.deepEqual(h.records.map((r) => [r.attributes['db.response.returned_rows'], r.attributes['telegen.db.portal.suspended'], r.attributes['telegen.db.command_tag'], r.attributes['telegen.db.portal.name']]), [
    [2, true, undefined, 'c'],
    [1, undefined, 'SELECT 1', 'c'],
  ]);
});

test('COPY FROM STDIN: CopyData counted, never captured', () => {
  const h = connected();
  play(h, 1, [
    [Q, serialize.query('COPY items FROM STDIN')],
    [R, be.copyIn(2)],
    [Q, Buffer.concat([serialize.copyData(Buffer.from('1\tsecret-row-one\n')), serialize.copyData(Buffer.from('2\tsecret-row-two\n')), serialize.copyDone()])],
    [R, Buffer.concat([be.complete('COPY 2'), be.ready()])],
  ]);
  assert.equal(h.records.length, 1);
  assert.deepEqual(attrs(h.records[0]), { ...CONN, 'db.query.text': 'COPY items FROM STDIN', 'db.operation.name': 'COPY', 'db.collection.name': 'items', 'telegen.db.command_tag': 'COPY 2', 'telegen.db.copy.messages': 2, 'telegen.db.copy.bytes': 34 });
  assert.ok(!dump(h).includes('secret-row'));
});

test('COPY TO STDOUT and a failed COPY FROM (CopyFail)', () => {
  const h = connected();
  play(h, 1, [
    [Q, serialize.query('COPY (SELECT 1) TO STDOUT')],
    [R, Buffer.concat([be.copyOut(1), be.copyData('1\n'), be.copyData('2\n'), be.copyData('3\n'), be.copyDone(), be.complete('COPY 3'), be.ready()])],
    [Q, serialize.query('COPY items FROM STDIN')],
    [R, be.copyIn(1)],
    [Q, serialize.copyFail('client gave up')],
    [R, Buffer.concat([be.error('ERROR', '57014', 'COPY from stdin failed: client gave up'), be.ready()])],
  ]);
  assert.deepEqual(h.records.map((r) => [r.flags, r.attributes['telegen.db.command_tag'], r.attributes['telegen.db.copy.messages'], r.attributes['telegen.db.copy.bytes'], r.attributes['db.response.status_code']]), [
    [0, 'COPY 3', 3, 6, undefined],
    [FLAG_ERROR, undefined, 0, 0, '57014'],
  ]);
});

test('NotificationResponse (LISTEN/NOTIFY) is an event with the channel, without the payload', () => {
  const h = connected();
  play(h, 1, [[Q, serialize.query('LISTEN jobs')], [R, Buffer.concat([be.complete('LISTEN'), be.ready()])], [R, be.notification(999, 'jobs', 'payload-private')]]);
  assert.equal(h.records.length, 2);
  assert.equal(h.records[1].kind, 2);
  assert.deepEqual(attrs(h.records[1]), { ...CONN, 'telegen.db.event.name': 'notification', 'telegen.db.notification.channel': 'jobs', 'telegen.db.backend.pid': 999 });
  assert.ok(!dump(h).includes('payload-private'));
});

test('CancelRequest: one exchange with the backend pid, never the secret key', () => {
  const h = fresh();
  assert.deepEqual(play(h, 9, [[Q, serialize.cancel(31337, 0x0badf00d)]]), ['ok']);
  h.inst.closeStream(9);
  assert.equal(h.records.length, 1);
  assert.deepEqual(attrs(h.records[0]), { ...BASE, 'db.operation.name': 'CANCEL', 'telegen.db.backend.pid': 31337 });
  assert.ok(!dump(h).includes(String(0x0badf00d)));
});

test('FunctionCall: one exchange', () => {
  const h = connected();
  const fcall = msg('F', i32(1598), Buffer.from([0, 0]), Buffer.from([0, 0]), Buffer.from([0, 0]));
  play(h, 1, [[Q, fcall], [R, Buffer.concat([msg('V', i32(4), i32(7)), be.ready()])]]);
  assert.equal(h.records.length, 1);
  assert.deepEqual(attrs(h.records[0]), { ...CONN, 'db.operation.name': 'FUNCTION CALL' });
});

test('mid-stream join: a response without its request is FLAG_NO_REQUEST; later queries are normal', () => {
  const h = fresh();
  play(h, 5, [
    [R, Buffer.concat([be.dataRow('x'), be.complete('SELECT 1'), be.ready()])],
    [Q, serialize.query('select 2')],
    [R, Buffer.concat([be.rowDesc('a'), be.dataRow('2'), be.complete('SELECT 1'), be.ready()])],
  ]);
  assert.deepEqual(h.records.map((r) => [r.flags, attrs(r)]), [
    [FLAG_NO_REQUEST, { ...BASE, 'db.operation.name': 'SELECT', 'telegen.db.command_tag': 'SELECT 1', 'db.response.returned_rows': 1 }],
    [0, { ...BASE, 'db.query.text': 'select 2', 'db.operation.name': 'SELECT', 'telegen.db.command_tag': 'SELECT 1', 'db.response.returned_rows': 1 }],
  ]);
});

test('mid-stream join inside a message: boundaries are found again', () => {
  const h = fresh();
  const q1 = serialize.query('select * from accounts where id = 1');
  const tail = q1.subarray(9); // the capture began 9 bytes into a Query
  const resp1 = Buffer.concat([be.dataRow('abcdefgh'), be.complete('SELECT 1'), be.ready()]);
  play(h, 6, [
    [Q, Buffer.concat([tail, serialize.query('select 42')])],
    [R, Buffer.concat([resp1.subarray(7), be.rowDesc('n'), be.dataRow('42'), be.complete('SELECT 1'), be.ready()])],
  ]);
  assert.equal(h.inst.counters.traps, 0);
  // The cut request is a placeholder (no text, FLAG_UNKNOWN) that takes the first answer.
  assert.deepEqual(exchanges(h).map((r) => [r.flags, attrs(r)]), [
    [FLAG_UNKNOWN, { ...BASE, 'db.operation.name': 'SELECT', 'telegen.db.command_tag': 'SELECT 1', 'db.response.returned_rows': 1 }],
    [0, { ...BASE, 'db.query.text': 'select 42', 'db.operation.name': 'SELECT', 'telegen.db.command_tag': 'SELECT 1', 'db.response.returned_rows': 1 }],
  ]);
});

// ------------------------------------------------------------------ split reads

function session(): Step[] {
  return [
    ...startupSteps(),
    [Q, serialize.query('SELECT 1; SELECT 2')],
    [R, Buffer.concat([be.rowDesc('a'), be.dataRow('1'), be.complete('SELECT 1'), be.rowDesc('b'), be.dataRow('2'), be.complete('SELECT 1'), be.ready()])],
    [Q, Buffer.concat([serialize.parse({ name: 'q', text: 'UPDATE t SET v = $1' }), serialize.bind({ statement: 'q', values: ['x'] }), serialize.describe({ type: 'P' }), serialize.execute({}), serialize.sync()])],
    [R, Buffer.concat([be.parseComplete(), be.bindComplete(), be.noData(), be.complete('UPDATE 4'), be.ready()])],
    [Q, serialize.query('bad')],
    [R, Buffer.concat([be.error('ERROR', '42601', 'syntax error'), be.ready()])],
  ];
}

function summary(h: Harness): string {
  return JSON.stringify(h.records.map((r) => ({ k: r.kind, f: r.flags, a: r.attributes })));
}

test('split reads: every split point of every message gives the same records', () => {
  const whole = fresh();
  play(whole, 1, session());
  const want = summary(whole);
  assert.equal(whole.records.length, 4);
  const steps = session();
  for (let s = 0; s < steps.length; s++) {
    const [dir, bytes] = steps[s];
    for (let cut = 1; cut < bytes.length; cut++) {
      const h = fresh();
      steps.forEach(([d, b], i) => {
        if (i !== s) h.inst.feed(1, d, b, 1000n + BigInt(i) * 1000n);
        else { h.inst.feed(1, dir, b.subarray(0, cut), 1000n + BigInt(i) * 1000n); h.inst.feed(1, dir, b.subarray(cut), 1000n + BigInt(i) * 1000n); }
      });
      assert.equal(summary(h), want, `step ${s} cut at ${cut}`);
    }
  }
});

test('split reads: one byte at a time', () => {
  const whole = fresh();
  play(whole, 1, session());
  const h = fresh();
  session().forEach(([d, b], i) => { for (let k = 0; k < b.length; k++) h.inst.feed(1, d, b.subarray(k, k + 1), 1000n + BigInt(i) * 1000n); });
  assert.equal(summary(h), summary(whole));
});

// ------------------------------------------------------------------ lifecycle

test('close: unanswered queries become FLAG_NO_RESPONSE; state is freed', () => {
  const h = connected();
  play(h, 1, [[Q, serialize.query('select pg_sleep(100)')]]);
  assert.equal(h.records.length, 0);
  h.inst.closeStream(1);
  assert.equal(h.records.length, 1);
  assert.equal(h.records[0].flags, FLAG_NO_RESPONSE);
  assert.equal(h.records[0].attributes['db.query.text'], 'select pg_sleep(100)');
  h.inst.closeStream(1);
  assert.equal(h.records.length, 1);
});

test('tick: an operation unanswered for 5 minutes expires with FLAG_NO_RESPONSE', () => {
  const h = connected();
  play(h, 1, [[Q, serialize.query('select 1')]], 1_000_000_000n);
  h.inst.tick(1_000_000_000n + 299_000_000_000n);
  assert.equal(h.records.length, 0);
  h.inst.tick(1_000_000_000n + 301_000_000_000n);
  assert.equal(h.records.length, 1);
  assert.equal(h.records[0].flags, FLAG_NO_RESPONSE | FLAG_TIMEOUT);
  // Unanswered for 301 s when the decoder gave up: it lasts that long, not 0 s.
  assert.equal(h.records[0].tsEnd, 1_000_000_000n + 301_000_000_000n);
});

test('the operation cap: 4096 pending per stream while the decoder-wide spare room lasts, else 128; one pushed out unanswered ends where the one that pushed it out began', () => {
  const h = connected();
  h.records.length = 0;
  const fill = (stream: number, n: number) => { for (let i = 0; i < n; i++) h.inst.feed(stream, Q, serialize.query(`select ${i}`), 1_000n + BigInt(i)); };
  // A pipelining client's 2000-row batch (Bind + Execute each) fits one stream.
  fill(1, 4096);
  assert.equal(h.records.length, 0);
  h.inst.feed(1, Q, serialize.query('select 4096'), 9_000n);
  assert.deepEqual(h.records.map((r) => [r.attributes['db.query.text'], r.flags, r.tsStart, r.tsEnd]),
    [['select 0', FLAG_NO_RESPONSE | FLAG_UNKNOWN, 1_000n, 9_000n]]);
  // Past 128, streams share 16384 spare slots (a ring doubles: 3968 for a stream at 4096): four
  // streams at 4096 leave 512 for a fifth, which pushes out its oldest at the 513th.
  for (const s of [2, 3, 4]) { play(h, s, [[Q, serialize.startup({ user: 'u', database: 'd' })], [R, Buffer.concat([be.authOk(), be.ready()])]]); fill(s, 4096); }
  play(h, 5, [[Q, serialize.startup({ user: 'u', database: 'd' })], [R, Buffer.concat([be.authOk(), be.ready()])]]);
  h.records.length = 0;
  fill(5, 512);
  assert.equal(h.records.length, 0);
  h.inst.feed(5, Q, serialize.query('select 512'), 9_000n);
  assert.deepEqual(h.records.map((r) => [r.attributes['db.query.text'], r.flags]), [['select 0', FLAG_NO_RESPONSE | FLAG_UNKNOWN]]);
  // A drained stream gives its spare slots back: answered, stream 2's ring is 128 again.
  h.inst.feed(2, R, Buffer.concat(Array.from({ length: 4096 }, () => Buffer.concat([be.complete('SELECT 1'), be.ready()]))), 10_000n);
  h.records.length = 0;
  fill(5, 2048);
  assert.equal(h.records.length, 0, 'stream 5 grew into the slots stream 2 gave back');
});

test('startup closed before authentication completes (psql asking for a password): NO_RESPONSE', () => {
  const h = fresh();
  play(h, 1, [[Q, serialize.startup({ user: 'u', database: 'd' })], [R, be.authSasl('SCRAM-SHA-256')]]);
  h.inst.closeStream(1);
  assert.equal(h.records.length, 1);
  assert.equal(h.records[0].flags, FLAG_NO_RESPONSE);
  assert.equal(h.records[0].attributes['telegen.db.auth.method'], 'SCRAM-SHA-256');
});

// ------------------------------------------------------------------ big and hostile input

test('a DataRow larger than the input window is skipped without overflow; gaps inside it are absorbed', () => {
  const h = connected();
  const big = be.dataRow('x'.repeat(600_000));
  play(h, 1, [[Q, serialize.query('select big from blobs')]]);
  h.inst.feed(1, R, big.subarray(0, 100_000), 3000n);
  assert.equal(h.inst.gap(1, R, 200_000), 'ok');
  h.inst.feed(1, R, big.subarray(300_000), 3000n);
  h.inst.feed(1, R, Buffer.concat([be.complete('SELECT 1'), be.ready()]), 4000n);
  assert.equal(h.inst.counters.overflows, 0);
  assert.equal(h.inst.counters.gapsAbsorbed, 1);
  assert.equal(h.records.length, 1);
  assert.equal(h.records[0].attributes['db.response.returned_rows'], 1);
  assert.equal(h.records[0].attributes['telegen.db.command_tag'], 'SELECT 1');
});

test('a query longer than the field cap is cut and flagged TRUNCATED', () => {
  const h = connected();
  const sql = 'SELECT ' + Array.from({ length: 20_000 }, (_, i) => `c${i}`).join(', ') + ' FROM wide';
  play(h, 1, [[Q, serialize.query(sql)], [R, Buffer.concat([be.complete('SELECT 0'), be.ready()])]]);
  assert.equal(h.records.length, 1);
  assert.equal(h.records[0].flags & FLAG_TRUNCATED, FLAG_TRUNCATED);
  assert.equal(h.records[0].attributes['db.query.text'], sql.slice(0, 8192));
  assert.equal(h.records[0].attributes['db.operation.name'], 'SELECT');
});

test('hostile lengths: negative, too small, huge, wrong fixed sizes → invalid, never a trap', () => {
  const bad: Buffer[] = [
    Buffer.concat([Buffer.from('Q'), i32(-1), Buffer.from('select 1\0')]),
    Buffer.concat([Buffer.from('Q'), i32(2)]),
    Buffer.concat([Buffer.from('Q'), i32(0x7fffffff), Buffer.from('select')]),
    Buffer.concat([Buffer.from('S'), i32(9), Buffer.alloc(5)]),
    Buffer.concat([Buffer.from('\x01'), i32(4)]),
  ];
  for (const b of bad) {
    const h = connected();
    const r = h.inst.feed(1, Q, b, 5000n);
    assert.equal(r, 'invalid', b.toString('hex'));
    assert.equal(h.inst.counters.traps, 0);
  }
  for (const b of [Buffer.concat([Buffer.from('D'), i32(-5)]), Buffer.concat([Buffer.from('Z'), i32(5), Buffer.from('Q')]), Buffer.concat([Buffer.from('K'), i32(2000), Buffer.alloc(8)])]) {
    const h = connected();
    assert.equal(h.inst.feed(1, R, b, 5000n), 'invalid', b.toString('hex'));
  }
  // Untyped first message that is not PostgreSQL.
  const h = fresh();
  assert.equal(h.inst.feed(1, Q, Buffer.concat([i32(8), i32(12345678)]), 1n), 'invalid');
  // Startup claiming a huge length: not a startup.
  assert.equal(fresh().inst.feed(1, Q, Buffer.concat([i32(0x00ffffff), i32(0x30000)]), 1n), 'invalid');
});

test('truncated fields inside messages (missing NULs, short bodies) decode without trapping', () => {
  const h = connected();
  const cases: Buffer[] = [
    msg('Q', Buffer.from('select no-nul')),
    msg('P', Buffer.from('name-without-nul')),
    msg('B', Buffer.from('p')),
    msg('E'),
    msg('C', Buffer.from('S')),
    msg('F'),
  ];
  for (const c of cases) h.inst.feed(1, Q, c, 1n);
  for (const c of [msg('E', Buffer.from('Sxx')), msg('C', Buffer.from('SELECT 99999999999999999999999')), msg('A', Buffer.from([0, 0])), msg('R'), msg('S', Buffer.from('server_version')), msg('N'), msg('T'), msg('D')]) {
    const r = h.inst.feed(1, R, c, 2n);
    assert.notEqual(r, 'trap');
  }
  h.inst.closeStream(1);
  assert.equal(h.inst.counters.traps, 0);
  assert.equal(h.inst.counters.badRecords, 0);
});

test('fuzz: random bytes and mutated sessions never trap', () => {
  let seed = 12345;
  const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed; };
  const base = Buffer.concat(session().map(([, b]) => b));
  const h = fresh();
  for (let iter = 0; iter < 400; iter++) {
    const steps = session().map(([d, b]) => [d, Buffer.from(b)] as Step);
    for (const [, b] of steps) {
      const flips = rnd() % 4;
      for (let k = 0; k < flips; k++) b[rnd() % b.length] = rnd() & 0xff;
    }
    steps.forEach(([d, b], i) => h.inst.feed(iter, d, b, BigInt(i)));
    const junk = Buffer.alloc(rnd() % 300);
    for (let k = 0; k < junk.length; k++) junk[k] = rnd() & 0xff;
    h.inst.feed(iter, rnd() & 1, junk, 99n);
    h.inst.feed(iter, rnd() & 1, base.subarray(rnd() % base.length), 100n);
    h.inst.closeStream(iter);
  }
  assert.equal(h.inst.counters.traps, 0, h.inst.lastError);
  assert.equal(h.inst.counters.badRecords, 0);
});

test('bounded memory: a client that never gets answers, and one that prepares without closing', () => {
  const h = connected();
  const batch = Buffer.concat(Array.from({ length: 1000 }, () => Buffer.concat([serialize.parse({ text: 'SELECT 1' }), serialize.bind({}), serialize.execute({}), serialize.sync()])));
  for (let i = 0; i < 50; i++) h.inst.feed(1, Q, batch, BigInt(i));
  const afterPending = h.inst.memoryBytes();
  const named = Buffer.concat(Array.from({ length: 2000 }, (_, i) => serialize.parse({ name: `stmt_${i}`, text: `SELECT ${i} FROM t WHERE x = $1` })));
  for (let i = 0; i < 20; i++) h.inst.feed(1, Q, named, BigInt(i));
  for (let i = 0; i < 50; i++) h.inst.feed(1, Q, batch, BigInt(i));
  assert.equal(h.inst.counters.traps, 0);
  // Abandoned operations are reported, not kept.
  assert.ok(h.records.length > 40_000);
  assert.ok(h.records.every((r) => r.flags & FLAG_NO_RESPONSE));
  assert.ok(h.inst.memoryBytes() <= Math.max(afterPending, 4 * 1024 * 1024), `memory ${h.inst.memoryBytes()}`);
  // Many connections opened and closed: state is freed.
  const before = h.inst.memoryBytes();
  for (let s = 100; s < 3100; s++) { play(h, s, startupSteps()); h.inst.feed(s, Q, serialize.parse({ name: 'x', text: 'select 1' }), 1n); h.inst.closeStream(s); }
  assert.ok(h.inst.memoryBytes() <= before + 2 * 1024 * 1024, `memory ${before} → ${h.inst.memoryBytes()}`);
});

test('statement table: the oldest of more than 256 named statements is forgotten first', () => {
  const h = connected();
  const parses = Buffer.concat(Array.from({ length: 300 }, (_, i) => serialize.parse({ name: `s${i}`, text: `SELECT ${i}` })));
  play(h, 1, [[Q, Buffer.concat([parses, serialize.sync()])], [R, Buffer.concat([...Array.from({ length: 300 }, () => be.parseComplete()), be.ready()])]]);
  h.records.length = 0;
  for (const i of [0, 43, 44, 299]) {
    play(h, 1, [[Q, Buffer.concat([serialize.bind({ statement: `s${i}` }), serialize.execute({}), serialize.sync()])], [R, Buffer.concat([be.bindComplete(), be.complete('SELECT 1'), be.ready()])]]);
  }
  assert.deepEqual(h.records.map((r) => [r.flags, r.attributes['db.query.text']]), [[FLAG_UNKNOWN, undefined], [FLAG_UNKNOWN, undefined], [0, 'SELECT 44'], [0, 'SELECT 299']]);
});

test('many concurrent connections: 4000 decoded within memory, the ones beyond are left undecoded', () => {
  const h = fresh();
  const open = (s: number) => play(h, s, [
    [Q, serialize.startup({ user: 'alice', database: 'shop', application_name: 'billing' })],
    [R, Buffer.concat([be.authOk(), be.param('server_version', '15.8'), be.keyData(1, 2), be.ready()])],
    [Q, Buffer.concat([serialize.parse({ name: 'q1', text: 'SELECT * FROM users WHERE id = $1' }), serialize.bind({ statement: 'q1' }), serialize.execute({}), serialize.sync()])],
    [R, Buffer.concat([be.parseComplete(), be.bindComplete(), be.dataRow('1'), be.complete('SELECT 1'), be.ready()])],
  ]);
  for (let s = 0; s < 4000; s++) assert.deepEqual(open(s), ['ok', 'ok', 'ok', 'ok']);
  assert.deepEqual(open(4000), ['ignored', 'ignored', 'ignored', 'ignored']);
  assert.equal(h.inst.counters.traps, 0);
  assert.equal(exchanges(h).length, 8000);
  assert.ok(h.inst.memoryBytes() <= 24 * 1024 * 1024, `memory ${h.inst.memoryBytes()}`);
  h.inst.closeStream(0);
  assert.deepEqual(open(4001), ['ok', 'ok', 'ok', 'ok']);
});

test('two streams interleaved keep separate state', () => {
  const h = fresh();
  h.inst.feed(1, Q, serialize.startup({ user: 'a', database: 'one' }), 1n);
  h.inst.feed(2, Q, serialize.startup({ user: 'b', database: 'two' }), 1n);
  h.inst.feed(2, R, Buffer.concat([be.authOk(), be.ready()]), 2n);
  h.inst.feed(1, R, Buffer.concat([be.authOk(), be.ready()]), 2n);
  h.inst.feed(1, Q, serialize.query('select 1'), 3n);
  h.inst.feed(2, Q, serialize.query('select 2'), 3n);
  h.inst.feed(2, R, Buffer.concat([be.complete('SELECT 0'), be.ready()]), 4n);
  h.inst.feed(1, R, Buffer.concat([be.complete('SELECT 0'), be.ready()]), 4n);
  assert.deepEqual(exchanges(h).slice(2).map((r) => [r.stream, r.attributes['db.namespace'], r.attributes['db.query.text']]), [[2, 'two', 'select 2'], [1, 'one', 'select 1']]);
});

void cstr;

test('a gap that loses a whole Query: boundaries are found again, its answer is FLAG_NO_REQUEST', () => {
  const h = connected();
  play(h, 1, [[Q, serialize.query('select 1')], [R, Buffer.concat([be.complete('SELECT 1'), be.ready()])]]);
  const lost = serialize.query('select 2');
  assert.equal(h.inst.gap(1, Q, lost.length), 'ok');
  play(h, 1, [
    [R, Buffer.concat([be.complete('SELECT 1'), be.ready()])],
    [Q, serialize.query('select 3')],
    [R, Buffer.concat([be.complete('SELECT 1'), be.ready()])],
  ]);
  assert.deepEqual(h.records.map((r) => [r.flags, r.attributes['db.query.text']]), [[0, 'select 1'], [FLAG_NO_REQUEST, undefined], [0, 'select 3']]);
});

test('a gap while the host holds the start of a message: the connection keeps its user and database, later exchanges decode', () => {
  const h = connected();
  // The first 9 bytes of a Query wait in the host for the rest (NEEDS_MORE); the capture then
  // loses the rest of it. Before, the host reset the whole stream: the rest of the connection
  // lost db.user/db.namespace and its answers their requests.
  const q2 = serialize.query('select 2');
  assert.equal(h.inst.feed(1, Q, q2.subarray(0, 9), 1000n), 'ok');
  assert.equal(h.inst.gap(1, Q, q2.length - 9), 'ok');
  assert.equal(h.inst.counters.gapResets, 0);
  assert.equal(h.inst.counters.gapsAbsorbed, 1);
  play(h, 1, [
    [R, Buffer.concat([be.complete('SELECT 1'), be.ready()])],
    [Q, serialize.query('select 3')],
    [R, Buffer.concat([be.complete('SELECT 1'), be.ready()])],
  ], 2000n);
  const last = h.records[h.records.length - 1];
  assert.deepEqual([last.flags, attrs(last)['db.query.text'], attrs(last)['telegen.db.user'], attrs(last)['db.namespace']], [0, 'select 3', 'alice', 'shop']);
  // The 9 held bytes are the Query's start: decoded as the query cut short (as tshark decodes a
  // segment cut by the snaplen), and its answer is its own.
  assert.deepEqual(h.records.map((r) => [r.flags, attrs(r)['db.query.text'], attrs(r)['telegen.db.command_tag']]), [[FLAG_TRUNCATED, 'sele', 'SELECT 1'], [0, 'select 3', 'SELECT 1']]);
});

test('a statement that is not SQL gets no operation name (span names stay low-cardinality)', () => {
  const h = connected();
  play(h, 1, [[Q, serialize.query('asdsdfdsf;')], [R, Buffer.concat([be.error('ERROR', '42601', 'syntax error at or near "asdsdfdsf"'), be.ready()])]]);
  assert.deepEqual(attrs(h.records[0]), { ...CONN, 'db.query.text': 'asdsdfdsf;', 'db.response.status_code': '42601', 'error.type': '42601', 'error.message': 'syntax error at or near "asdsdfdsf"', 'telegen.db.severity': 'ERROR' });
});

test('a connection after closed ones decodes exactly as in a fresh decoder (closed streams are reused)', () => {
  // What a closed connection may leave behind: startup facts, an open startup, ops in flight, an
  // open orphan exchange, a big message half skipped, an error deferred to the batch's Execute.
  const before: Step[][] = [
    [...startupSteps(), [Q, serialize.query('select pg_sleep(10)')], [R, be.notice('NOTICE', '00000', 'hi')]],
    [[Q, serialize.requestSsl()], [R, be.sslNo()], [Q, serialize.startup({ user: 'bob', database: 'other' })], [R, be.authSasl('SCRAM-SHA-256')]],
    [[R, Buffer.concat([be.dataRow('a'), be.dataRow('b')])], [R, be.dataRow('x'.repeat(600_000)).subarray(0, 70_000)]],
    [...startupSteps(), [Q, Buffer.concat([serialize.parse({ text: 'insert into t values (1)' }), serialize.bind({}), serialize.execute({}), serialize.sync()])],
      [R, Buffer.concat([be.parseComplete(), be.bindComplete(), be.error('ERROR', '23505', 'duplicate key')])]],
  ];
  const after: Step[][] = [
    [[R, Buffer.concat([be.dataRow('1'), be.complete('SELECT 1'), be.ready()])]],
    [[Q, serialize.query('select 1')], [R, Buffer.concat([be.rowDesc('a'), be.dataRow('1'), be.complete('SELECT 1'), be.ready()])]],
    [[Q, serialize.startup({ user: 'carol' })], [R, Buffer.concat([be.authOk(), be.ready()])], [Q, serialize.query('select 2')], [R, Buffer.concat([be.complete('SELECT 0'), be.ready()])]],
  ];
  const seen = (h: Harness) => h.records.map((r) => JSON.stringify(r, (_k, v) => typeof v === 'bigint' ? `${v}n` : v));
  for (const next of after) {
    const clean = fresh();
    play(clean, 7, next);
    clean.inst.closeStream(7);
    assert.ok(clean.records.length > 0);
    // One closed connection before (the next new one gets its object, if any), then all of them.
    for (const prior of [...before.map((b) => [b]), before]) {
      const h = fresh();
      prior.forEach((steps, i) => { play(h, 100 + i, steps); h.inst.closeStream(100 + i); });
      h.records.length = 0;
      play(h, 7, next);
      h.inst.closeStream(7);
      assert.deepEqual(seen(h), seen(clean));
    }
  }
});

test('answers without their request reuse field sets (decoders/abi "Field sets") only within one startup: each carries its own connection\'s fields, also on a recycled stream', () => {
  const h = fresh();
  const open = (s: number, startup?: Record<string, string>) => {
    if (startup) play(h, s, [[Q, serialize.startup(startup)], [R, Buffer.concat([be.authOk(), be.ready()])]]);
  };
  // Answers with no Query seen: each is a FLAG_NO_REQUEST exchange built from the tag alone.
  const answers = (s: number) => h.inst.feed(s, R, Buffer.concat([be.complete('UPDATE 1'), be.ready(), be.complete('BEGIN'), be.ready(), be.complete('SELECT 3'), be.ready()]), 5000n);
  const got = () => exchanges(h).filter((r) => r.flags & 4).map((r) => [r.stream, r.attributes['db.namespace'], r.attributes['telegen.db.user'], r.attributes['telegen.db.command_tag'], r.attributes['db.response.returned_rows']]);
  open(1, { user: 'a', database: 'one' });
  open(2, { user: 'b', database: 'two' });
  open(3); // joined mid-stream: no startup fields
  const want: unknown[] = [];
  for (let round = 0; round < 3; round++) {
    for (const [s, db, user] of [[1, 'one', 'a'], [2, 'two', 'b'], [3, undefined, undefined]] as const) {
      assert.equal(answers(s), 'ok');
      want.push([s, db, user, 'UPDATE 1', undefined], [s, db, user, 'BEGIN', undefined], [s, db, user, 'SELECT 3', 3]);
    }
  }
  // Closed streams are recycled for new connections: the new one's fields, not the old one's.
  h.inst.closeStream(1);
  h.inst.closeStream(3);
  open(4, { user: 'c', database: 'three' });
  open(5);
  for (let round = 0; round < 2; round++) {
    for (const [s, db, user] of [[4, 'three', 'c'], [5, undefined, undefined], [2, 'two', 'b']] as const) {
      assert.equal(answers(s), 'ok');
      want.push([s, db, user, 'UPDATE 1', undefined], [s, db, user, 'BEGIN', undefined], [s, db, user, 'SELECT 3', 3]);
    }
  }
  assert.deepEqual(got(), want);
  // Repeats share one frozen attribute object (the span builder copies it: ownAttributes).
  const upd = exchanges(h).filter((r) => r.stream === 5 && r.attributes['telegen.db.command_tag'] === 'UPDATE 1');
  assert.equal(upd[0].attributes, upd[1].attributes);
  assert.ok(Object.isFrozen(upd[1].attributes));
  assert.equal(h.inst.counters.badRecords, 0);
});

test('Executes sent after the error came back, before Sync (a pipelining client that had not read it yet): each is pipeline_aborted with its SQL', () => {
  const h = connected();
  play(h, 1, [
    [Q, Buffer.concat([serialize.parse({ text: 'SELECT 1/0' }), serialize.bind({}), serialize.execute({}), serialize.flush()])],
    [R, Buffer.concat([be.parseComplete(), be.bindComplete(), be.error('ERROR', '22012', 'division by zero')])],
    [Q, Buffer.concat([serialize.parse({ text: 'SELECT 2' }), serialize.bind({}), serialize.execute({}),
      serialize.bind({ statement: 'kept' }), serialize.execute({}), serialize.sync()])],
    [R, be.ready('I')],
    [Q, Buffer.concat([serialize.parse({ text: 'SELECT 4' }), serialize.bind({}), serialize.execute({}), serialize.sync()])],
    [R, Buffer.concat([be.parseComplete(), be.bindComplete(), be.dataRow('4'), be.complete('SELECT 1'), be.ready('I')])],
  ]);
  assert.deepEqual(h.records.map((r) => [r.flags, r.attributes['db.query.text'], r.attributes['db.response.status_code'] ?? r.attributes['error.type'] ?? r.attributes['telegen.db.command_tag']]), [
    [FLAG_ERROR, 'SELECT 1/0', '22012'],
    [FLAG_ERROR, 'SELECT 2', 'pipeline_aborted'],
    // a statement prepared before we joined: no SQL text
    [FLAG_ERROR | FLAG_UNKNOWN, undefined, 'pipeline_aborted'],
    [0, 'SELECT 4', 'SELECT 1'],
  ]);
});
