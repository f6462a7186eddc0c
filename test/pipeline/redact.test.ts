// Redaction from two sources: the policy file (the operator's floor) and pipeline.redaction.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { makeRedactor, mergeRedaction, REDACTED, redactSqlLiterals } from '../../host/src/pipeline/redact';
import { normalizeStatement } from '../../host/src/analytics/db-statements';
import { parseConfig } from '../../host/src/config';
import { loadPolicy } from '../../host/src/decoders/policy';
import { repoRoot } from '../helpers/decoder';
import * as path from 'path';

test('redaction: the policy and pipeline.redaction are merged (a value is redacted when either names it)', () => {
  const policy = loadPolicy(path.join(repoRoot, 'policies', 'default.yaml')).redaction;
  assert.ok(policy, 'the default policy has a redaction section');
  const cfg = parseConfig({ pipeline: { redaction: { headers: ['X-Api-Key'], query_params: ['session'], sql_literals: false } } }).pipeline.redaction;
  const merged = mergeRedaction(policy, cfg);
  const attrs: Record<string, unknown> = {
    'http.request.header.x-api-key': ['k3y', 'k4y'],
    'http.request.header.authorization': ['Bearer abc'],
    'http.request.header.accept': ['*/*'],
    'url.query': 'session=s1&token=t2&page=3',
    'db.system.name': 'postgresql',
    'db.query.text': "SELECT * FROM users WHERE name = 'bob'",
  };
  makeRedactor(merged)(attrs as never);
  assert.deepEqual(attrs['http.request.header.x-api-key'], [REDACTED, REDACTED], 'added by the config; still a string[]');
  assert.deepEqual(attrs['http.request.header.authorization'], [REDACTED], 'kept from the policy');
  assert.deepEqual(attrs['http.request.header.accept'], ['*/*']);
  assert.equal(attrs['url.query'], 'session=REDACTED&token=REDACTED&page=3');
  assert.equal(attrs['db.query.text'], 'SELECT * FROM users WHERE name = ?', 'the policy keeps SQL literals redacted though the config turned them off');
  // Names are matched without case, each once.
  assert.equal(merged.headers.filter((h) => h.toLowerCase() === 'authorization').length, 1);
  // No policy section: the config alone.
  assert.deepEqual(mergeRedaction(undefined, cfg), cfg);
});

// pgbench's UPDATE (`abalance + :delta`, delta from -5000 to 5000) was exported as
// `abalance + ?` or `abalance + -?` by the delta's sign: one statement became two db.query.text
// values and two statement series. PostgreSQL folds a sign into its constant (pg_stat_statements
// shows `abalance + $1`); a subtraction keeps its operator.
test('SQL literals: a negative number is one literal, a subtraction is not', () => {
  const pgbench = (delta: number) => `UPDATE pgbench_accounts SET abalance = abalance + ${delta} WHERE aid = 7;`;
  assert.equal(redactSqlLiterals(pgbench(-1234)), 'UPDATE pgbench_accounts SET abalance = abalance + ? WHERE aid = ?;');
  assert.equal(redactSqlLiterals(pgbench(1234)), redactSqlLiterals(pgbench(-1234)));
  assert.equal(normalizeStatement(pgbench(-3)), normalizeStatement(pgbench(3)));
  const cases: Array<[string, string]> = [
    ['SELECT -1, f(2,-3), (-4.5e3), x = - 5', 'SELECT ?, f(?,?), (?), x = ?'],
    ['SELECT * FROM t WHERE a > -1 AND b IN (-1, -2) LIMIT -0', 'SELECT * FROM t WHERE a > ? AND b IN (?, ?) LIMIT ?'],
    ['SELECT 5 - 3, a -1, $1 - 2, (b) - 4, c - -6', 'SELECT ? - ?, a -?, $1 - ?, (b) - ?, c - ?'],
    ["SELECT 'x' - 1 -- -2\n", "SELECT ? - ? -- -2\n"],
  ];
  for (const [sql, want] of cases) assert.equal(redactSqlLiterals(sql), want, sql);
});
