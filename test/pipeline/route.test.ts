import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { templateRoute } from '../../host/src/pipeline/route';

test('route templates: ids of every shape become {id}, words and the path shape stay', () => {
  const cases: Array<[string, string]> = [
    ['/', '/'],
    ['', '/'],
    ['/users', '/users'],
    ['/users/42', '/users/{id}'],
    ['/users/42/orders/7/', '/users/{id}/orders/{id}/'],
    ['/o/123e4567-e89b-12d3-a456-426614174000', '/o/{id}'],
    ['/blob/0123456789abcdef', '/blob/{id}'],
    ['/blob/0123456789abcde', '/blob/0123456789abcde'],
    ['/t/abcdefghij_KLMNOPQ-1234', '/t/{id}'],
    ['/t/abcdefghijKLMNOPQRSTuv', '/t/abcdefghijKLMNOPQRSTuv'],
    ['/v1/items', '/v1/items'],
    ['//a//1', '//a//{id}'],
  ];
  for (const [path, route] of cases) {
    assert.equal(templateRoute(path), route, path);
    assert.equal(templateRoute(path), route, `${path} (cached)`);
  }
});
