import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import {
  buildTestServer,
  type FakeView,
  type Json,
  MINUTE,
  makeCandle,
  SEED,
  testServerForSuite,
} from '../../../test/support/serve.ts';
import type { Candle } from '../../core/records.ts';
import { mergeCandles } from './market.ts';

let app: FastifyInstance;
let view: FakeView;

testServerForSuite((server) => {
  ({ app, view } = server);
});

async function get(url: string): Promise<{ status: number; body: Json }> {
  const response = await app.inject({ method: 'GET', url });
  return { status: response.statusCode, body: response.json() };
}

function assertError(
  result: { status: number; body: Json },
  status: number,
  code: string,
  mention?: string,
): void {
  assert.equal(result.status, status, JSON.stringify(result.body));
  assert.equal(result.body.error.code, code);
  assert.equal(typeof result.body.error.message, 'string');
  if (mention !== undefined)
    assert.ok(result.body.error.message.includes(mention), result.body.error.message);
}

describe('GET /api/v1/symbols', () => {
  test('lists every symbol with its last price and time, by name', async () => {
    const { status, body } = await get('/api/v1/symbols');
    assert.equal(status, 200);
    assert.deepEqual(body, {
      symbols: [
        { symbol: 'BTCUSDT', lastPrice: 103, lastTs: 4 * MINUTE },
        { symbol: 'ETHUSDT', lastPrice: 50, lastTs: 2 * MINUTE + 1 },
      ],
    });
  });
});

describe('GET /api/v1/latest/:symbol', () => {
  test('returns the last tick, the symbol trimmed and upper-cased', async () => {
    const { status, body } = await get('/api/v1/latest/%20btcusdt%20');
    assert.equal(status, 200);
    assert.deepEqual(body, {
      symbol: 'BTCUSDT',
      ts: 4 * MINUTE,
      price: 103,
      size: 1,
      maShort: 101.5,
      maLong: null,
      source: 'test',
    });
  });

  test('404 unknown_symbol for a symbol the store has never seen', async () => {
    assertError(await get('/api/v1/latest/DOGEUSDT'), 404, 'unknown_symbol', 'DOGEUSDT');
  });

  test('400 invalid_symbol for a symbol that breaks the pattern', async () => {
    assertError(await get('/api/v1/latest/BTC%20USDT'), 400, 'invalid_symbol', 'BTC USDT');
    assertError(await get('/api/v1/latest/-BTC'), 400, 'invalid_symbol', '-BTC');
    assertError(await get(`/api/v1/latest/${'A'.repeat(33)}`), 400, 'invalid_symbol');
  });

  test('a symbol with an encoded slash reaches the route whole', async () => {
    assertError(await get('/api/v1/latest/btc%2Fusd'), 404, 'unknown_symbol', 'BTC/USD');
  });
});

describe('GET /api/v1/ticks/:symbol', () => {
  const btc = SEED.ticks.filter((tick) => tick.symbol === 'BTCUSDT');

  test('returns the ticks ascending, in the API shape (id null when absent)', async () => {
    const { status, body } = await get('/api/v1/ticks/btcusdt');
    assert.equal(status, 200);
    assert.equal(body.symbol, 'BTCUSDT');
    assert.deepEqual(
      body.ticks.map((tick: { ts: number }) => tick.ts),
      btc.map((tick) => tick.ts),
    );
    assert.deepEqual(body.ticks[0], {
      ts: MINUTE,
      price: 100,
      size: 1,
      id: 't1',
      maShort: null,
      maLong: null,
      late: false,
    });
    assert.deepEqual(body.ticks[3], {
      ts: 4 * MINUTE,
      price: 103,
      size: 1,
      id: null,
      maShort: 101.5,
      maLong: null,
      late: true,
    });
  });

  test('from + limit gives the first N in range; limit alone the last N; to is inclusive', async () => {
    const first = await get(`/api/v1/ticks/BTCUSDT?from=${2 * MINUTE}&limit=2`);
    assert.deepEqual(
      first.body.ticks.map((tick: { ts: number }) => tick.ts),
      [2 * MINUTE, 3 * MINUTE],
    );
    const last = await get('/api/v1/ticks/BTCUSDT?limit=2');
    assert.deepEqual(
      last.body.ticks.map((tick: { ts: number }) => tick.ts),
      [3 * MINUTE, 4 * MINUTE],
    );
    const upTo = await get(`/api/v1/ticks/BTCUSDT?to=${2 * MINUTE}`);
    assert.deepEqual(
      upTo.body.ticks.map((tick: { ts: number }) => tick.ts),
      [MINUTE, 2 * MINUTE],
    );
  });

  test('404 for an unknown symbol', async () => {
    assertError(await get('/api/v1/ticks/NOPE'), 404, 'unknown_symbol');
  });

  test('400 invalid_parameter for bad from, to and limit, naming the parameter and value', async () => {
    const cases: [query: string, message: string][] = [
      ['from=abc', 'from must be an integer, got "abc"'],
      ['to=1.5', 'to must be an integer, got "1.5"'],
      ['from=-1', 'from must be >= 0, got "-1"'],
      ['to=', 'to must be an integer'],
      ['limit=0', 'limit must be >= 1, got "0"'],
      ['limit=10001', 'limit must be <= 10000, got "10001"'],
      ['limit=2.5', 'limit must be an integer'],
      ['limit=1&limit=2', 'limit'],
    ];
    for (const [query, message] of cases) {
      assertError(await get(`/api/v1/ticks/BTCUSDT?${query}`), 400, 'invalid_parameter', message);
    }
  });

  test('400 invalid_range when from > to', async () => {
    assertError(
      await get('/api/v1/ticks/BTCUSDT?from=5&to=3'),
      400,
      'invalid_range',
      'from (5) must be <= to (3)',
    );
  });

  test('the limit maximum follows the maxLimit option', async () => {
    const small = await buildTestServer({ config: { limits: { maxLimit: 3, defaultLimit: 2 } } });
    try {
      const over = await small.app.inject({ url: '/api/v1/ticks/BTCUSDT?limit=4' });
      assert.equal(over.statusCode, 400);
      assert.match(over.json().error.message, /limit must be <= 3/);
      const byDefault = await small.app.inject({ url: '/api/v1/ticks/BTCUSDT' });
      assert.equal(byDefault.json().ticks.length, 2);
    } finally {
      await small.app.close();
    }
  });
});

describe('GET /api/v1/candles/:symbol', () => {
  const forming = makeCandle('BTCUSDT', '1m', 5 * MINUTE, 104, false);

  test('final candles from the store, then the forming one from the pipeline', async () => {
    view.forming.set('BTCUSDT:1m', [forming]);
    try {
      const { status, body } = await get('/api/v1/candles/btcusdt');
      assert.equal(status, 200);
      assert.equal(body.symbol, 'BTCUSDT');
      assert.equal(body.interval, '1m');
      assert.deepEqual(body.candles, [...SEED.candles, forming]);
      assert.equal(body.candles.at(-1).final, false);
    } finally {
      view.forming.clear();
    }
  });

  test('the limit applies to the merged list: the last N without from, the first N with it', async () => {
    view.forming.set('BTCUSDT:1m', [forming]);
    try {
      const last = await get('/api/v1/candles/BTCUSDT?limit=2');
      assert.deepEqual(
        last.body.candles.map((candle: Candle) => [candle.ts, candle.final]),
        [
          [4 * MINUTE, true],
          [5 * MINUTE, false],
        ],
      );
      const first = await get(`/api/v1/candles/BTCUSDT?from=${3 * MINUTE}&limit=2`);
      assert.deepEqual(
        first.body.candles.map((candle: Candle) => candle.ts),
        [3 * MINUTE, 4 * MINUTE],
      );
      // A forming candle outside [from, to] stays out.
      const bounded = await get(`/api/v1/candles/BTCUSDT?from=${3 * MINUTE}&to=${4 * MINUTE}`);
      assert.deepEqual(
        bounded.body.candles.map((candle: Candle) => candle.ts),
        [3 * MINUTE, 4 * MINUTE],
      );
    } finally {
      view.forming.clear();
    }
  });

  test('asks the pipeline for the requested interval', async () => {
    const forming5m = makeCandle('BTCUSDT', '5m', 5 * MINUTE, 104, false);
    view.forming.set('BTCUSDT:5m', [forming5m]);
    try {
      const { status, body } = await get('/api/v1/candles/BTCUSDT?interval=5m');
      assert.equal(status, 200);
      assert.equal(body.interval, '5m');
      assert.deepEqual(body.candles, [forming5m]);
    } finally {
      view.forming.clear();
    }
  });

  test('400 invalid_interval, 404 unknown_symbol, 400 invalid_range', async () => {
    assertError(await get('/api/v1/candles/BTCUSDT?interval=2m'), 400, 'invalid_interval', 'got "2m"');
    assertError(await get('/api/v1/candles/NOPE'), 404, 'unknown_symbol');
    assertError(await get('/api/v1/candles/BTCUSDT?from=9&to=1'), 400, 'invalid_range');
    assertError(await get('/api/v1/candles/BTCUSDT?limit=x'), 400, 'invalid_parameter', 'limit');
  });
});

describe('mergeCandles', () => {
  const final = [1, 2, 4].map((minute) => makeCandle('X', '1m', minute * MINUTE, minute, true));
  const forming = [3, 4, 5].map((minute) => makeCandle('X', '1m', minute * MINUTE, 100 + minute, false));

  test('interleaves by ts and keeps the stored final candle on a shared ts', () => {
    const merged = mergeCandles(final, forming, { limit: 100 });
    assert.deepEqual(
      merged.map((candle) => [candle.ts / MINUTE, candle.final]),
      [
        [1, true],
        [2, true],
        [3, false],
        [4, true],
        [5, false],
      ],
    );
  });

  test('filters forming candles by from/to and applies the limit from the right end', () => {
    // The store has already applied the range to the final candles: from minute 2 it returns 2 and 4.
    assert.deepEqual(
      mergeCandles(final.slice(1), forming, { from: 2 * MINUTE, limit: 2 }).map(
        (candle) => candle.ts / MINUTE,
      ),
      [2, 3],
    );
    assert.deepEqual(
      mergeCandles(final, forming, { to: 4 * MINUTE, limit: 2 }).map((candle) => candle.ts / MINUTE),
      [3, 4],
    );
    assert.deepEqual(mergeCandles([], forming, { from: 6 * MINUTE, limit: 5 }), []);
  });
});

describe('GET /api/v1/indicators/:symbol', () => {
  test('returns the points ascending without symbol/interval inside each point', async () => {
    const { status, body } = await get('/api/v1/indicators/btcusdt?interval=1m&limit=2');
    assert.equal(status, 200);
    assert.equal(body.symbol, 'BTCUSDT');
    assert.equal(body.interval, '1m');
    assert.deepEqual(body.points, [
      { ts: 2 * MINUTE, sma20: null, ema20: null, rsi14: null, bbUpper: null, bbMiddle: null, bbLower: null },
      { ts: 3 * MINUTE, sma20: 101, ema20: null, rsi14: null, bbUpper: null, bbMiddle: null, bbLower: null },
    ]);
  });

  test('errors as the other symbol routes', async () => {
    assertError(await get('/api/v1/indicators/BTCUSDT?interval=1w'), 400, 'invalid_interval');
    assertError(await get('/api/v1/indicators/NOPE'), 404, 'unknown_symbol');
    assertError(await get('/api/v1/indicators/%20'), 400, 'invalid_symbol');
  });
});
