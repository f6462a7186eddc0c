// Redaction from two sources: the policy file (the operator's floor) and pipeline.redaction.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { makeRedactor, mergeRedaction, REDACTED } from '../../host/src/pipeline/redact';
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
    'http.request.header.x-api-key': ['k3y'],
    'http.request.header.authorization': ['Bearer abc'],
    'http.request.header.accept': ['*/*'],
    'url.query': 'session=s1&token=t2&page=3',
    'db.system.name': 'postgresql',
    'db.query.text': "SELECT * FROM users WHERE name = 'bob'",
  };
  makeRedactor(merged)(attrs as never);
  assert.equal(attrs['http.request.header.x-api-key'], REDACTED, 'added by the config');
  assert.equal(attrs['http.request.header.authorization'], REDACTED, 'kept from the policy');
  assert.deepEqual(attrs['http.request.header.accept'], ['*/*']);
  assert.equal(attrs['url.query'], 'session=REDACTED&token=REDACTED&page=3');
  assert.equal(attrs['db.query.text'], 'SELECT * FROM users WHERE name = ?', 'the policy keeps SQL literals redacted though the config turned them off');
  // Names are matched without case, each once.
  assert.equal(merged.headers.filter((h) => h.toLowerCase() === 'authorization').length, 1);
  // No policy section: the config alone.
  assert.deepEqual(mergeRedaction(undefined, cfg), cfg);
});
