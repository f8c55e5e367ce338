import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { type FakeView, SEED, testServerForSuite } from '../../../test/support/serve.ts';

let app: FastifyInstance;
let view: FakeView;
testServerForSuite((server) => {
  ({ app, view } = server);
});

test('GET /api/v1/stats returns the pipeline view stats as they are now', async () => {
  const first = await app.inject({ url: '/api/v1/stats' });
  assert.equal(first.statusCode, 200);
  assert.deepEqual(first.json(), view.statsValue);
  view.statsValue = { ...view.statsValue, received: 13, drained: true };
  const second = await app.inject({ url: '/api/v1/stats' });
  assert.equal(second.json().received, 13);
  assert.equal(second.json().drained, true);
  for (const key of ['received', 'accepted', 'rejected', 'duplicates', 'late', 'drained']) {
    assert.ok(key in second.json(), key);
  }
});

test('GET /api/v1/dead-letters returns the most recent 100 by default, ascending', async () => {
  const response = await app.inject({ url: '/api/v1/dead-letters' });
  assert.equal(response.statusCode, 200);
  const { deadLetters } = response.json();
  assert.equal(deadLetters.length, 100);
  // SEED has 150 dead letters with seq 1000..1149: the last 100 start at 1050.
  assert.equal(deadLetters[0].seq, 1_050);
  assert.deepEqual(deadLetters.at(-1), SEED.deadLetters.at(-1));
});

test('GET /api/v1/dead-letters?limit=N and its errors', async () => {
  const two = await app.inject({ url: '/api/v1/dead-letters?limit=2' });
  assert.deepEqual(
    two.json().deadLetters.map((letter: { seq: number }) => letter.seq),
    [1_148, 1_149],
  );
  const bad = await app.inject({ url: '/api/v1/dead-letters?limit=zero' });
  assert.equal(bad.statusCode, 400);
  assert.deepEqual(bad.json(), {
    error: { code: 'invalid_parameter', message: 'query parameter limit must be an integer, got "zero"' },
  });
});
