import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { type Json, MINUTE, testServerForSuite } from '../../../test/support/serve.ts';

let app: FastifyInstance;
testServerForSuite((server) => {
  ({ app } = server);
});

async function get(url: string): Promise<{ status: number; body: Json }> {
  const response = await app.inject({ method: 'GET', url });
  return { status: response.statusCode, body: response.json() };
}

test('lists alerts ascending by ts without the internal seq; threshold only when set', async () => {
  const { status, body } = await get('/api/v1/alerts');
  assert.equal(status, 200);
  assert.deepEqual(body.alerts, [
    {
      ts: 2 * MINUTE,
      symbol: 'BTCUSDT',
      kind: 'price_above',
      price: 101,
      message: 'above',
      threshold: 100.5,
    },
    { ts: 2 * MINUTE + 1, symbol: 'ETHUSDT', kind: 'anomaly', price: 50, message: 'spike' },
    { ts: 3 * MINUTE, symbol: 'BTCUSDT', kind: 'golden_cross', price: 102, message: 'cross' },
  ]);
});

test('filters by symbol (trimmed and upper-cased), kind and time range', async () => {
  const bySymbol = await get('/api/v1/alerts?symbol=%20btcusdt%20');
  assert.deepEqual(
    bySymbol.body.alerts.map((alert: { kind: string }) => alert.kind),
    ['price_above', 'golden_cross'],
  );
  const byKind = await get('/api/v1/alerts?kind=anomaly');
  assert.deepEqual(
    byKind.body.alerts.map((alert: { symbol: string }) => alert.symbol),
    ['ETHUSDT'],
  );
  const byRange = await get(`/api/v1/alerts?from=${2 * MINUTE + 1}&to=${3 * MINUTE}&limit=1`);
  assert.deepEqual(
    byRange.body.alerts.map((alert: { ts: number }) => alert.ts),
    [2 * MINUTE + 1],
  );
  const unknown = await get('/api/v1/alerts?symbol=NOPE');
  assert.deepEqual(unknown, { status: 200, body: { alerts: [] } });
});

test('400 invalid_kind, invalid_symbol, invalid_parameter and invalid_range', async () => {
  const kind = await get('/api/v1/alerts?kind=price_sideways');
  assert.equal(kind.status, 400);
  assert.equal(kind.body.error.code, 'invalid_kind');
  assert.match(kind.body.error.message, /kind must be one of price_above, .*got "price_sideways"/);

  const symbol = await get('/api/v1/alerts?symbol=a%20b');
  assert.equal(symbol.status, 400);
  assert.equal(symbol.body.error.code, 'invalid_symbol');
  assert.match(symbol.body.error.message, /query parameter symbol .*"a b"/);

  const limit = await get('/api/v1/alerts?limit=-3');
  assert.equal(limit.status, 400);
  assert.equal(limit.body.error.code, 'invalid_parameter');

  const range = await get('/api/v1/alerts?from=10&to=9');
  assert.equal(range.status, 400);
  assert.equal(range.body.error.code, 'invalid_range');
});
