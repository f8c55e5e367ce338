import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Candle, INTERVALS } from '../core/records.ts';
import { bucketStart, SymbolCandles } from './candles.ts';

/** An hour boundary (1 699 999 200 000 = 472 222 h), so every interval's bucket starts here. */
const T0 = 1_699_999_200_000;

test('bucketStart equals ts - ts mod interval, checked with BigInt arithmetic', () => {
  let seed = 7;
  const random = () => {
    seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
    return seed / 2 ** 32;
  };
  const samples = [1, 59_999, 60_000, 60_001, T0 - 1, T0, 999_999_999_999_999, 1e15, 2 ** 53 - 1];
  for (let i = 0; i < 2_000; i++) samples.push(Math.floor(random() * 1e15), Math.floor(random() * 2e12));
  for (const intervalMs of [60_000, 300_000, 900_000, 3_600_000]) {
    for (const ts of samples) {
      const expected = Number(BigInt(ts) - (BigInt(ts) % BigInt(intervalMs)));
      assert.equal(bucketStart(ts, intervalMs), expected, `ts=${ts} interval=${intervalMs}`);
    }
  }
});

test('open is the smallest ts (ties: earlier in log order), close the largest (ties: later)', () => {
  const candles = new SymbolCandles('BTCUSDT');
  const ticks: [number, number, number][] = [
    [T0 + 1_000, 10, 1],
    [T0 + 500, 20, 2], // smallest ts so far: becomes the open
    [T0 + 500, 30, 1], // same smallest ts, later in the log: the open stays 20
    [T0 + 2_000, 40, 1], // largest ts: becomes the close
    [T0 + 2_000, 50, 3], // same largest ts, later in the log: the close becomes 50
    [T0 + 1_500, 60, 2], // in between: only high, volume, trades
  ];
  for (const [ts, price, size] of ticks) candles.addTick(T0, ts, price, size);
  assert.deepEqual(candles.forming('1m'), [
    {
      symbol: 'BTCUSDT',
      interval: '1m',
      ts: T0,
      open: 20,
      high: 60,
      low: 10,
      close: 50,
      volume: 10,
      trades: 6,
      // By hand: (10*1 + 20*2 + 30*1 + 40*1 + 50*3 + 60*2) / 10 = 390 / 10.
      vwap: 39,
      final: false,
    },
  ]);
});

test('vwap is null when every size is 0', () => {
  const candles = new SymbolCandles('X');
  candles.addTick(T0, T0 + 1, 5, 0);
  candles.addTick(T0, T0 + 2, 6, 0);
  const [candle] = candles.forming('1m');
  assert.equal(candle?.volume, 0);
  assert.equal(candle?.vwap, null);
  assert.equal(candle?.trades, 2);
});

test('closeThrough closes 1m windows ascending, then the longer ones they complete', () => {
  const candles = new SymbolCandles('X');
  // Out of order arrival: the 2nd minute first.
  candles.addTick(T0 + 60_000, T0 + 61_000, 2, 1);
  candles.addTick(T0, T0 + 1_000, 1, 1);
  candles.addTick(T0 + 300_000, T0 + 301_000, 3, 1);
  const out: Candle[] = [];
  candles.closeThrough(T0 + 120_000, out);
  assert.deepEqual(
    out.map((c) => [c.interval, c.ts - T0, c.close, c.final]),
    [
      ['1m', 0, 1, true],
      ['1m', 60_000, 2, true],
    ],
  );
  // The 5m window [T0, T0 + 5m) is forming from its two final minutes.
  assert.deepEqual(
    candles.forming('5m').map((c) => [c.ts - T0, c.open, c.close, c.trades]),
    [
      [0, 1, 2, 2],
      [300_000, 3, 3, 1],
    ],
  );
  out.length = 0;
  candles.closeThrough(Number.POSITIVE_INFINITY, out);
  assert.deepEqual(
    out.map((c) => [c.interval, c.ts - T0, c.open, c.close, c.trades]),
    [
      ['1m', 300_000, 3, 3, 1],
      ['5m', 0, 1, 2, 2],
      ['5m', 300_000, 3, 3, 1],
      ['15m', 0, 1, 3, 3],
      ['1h', 0, 1, 3, 3],
      // T0 is 22:00 UTC: its day began 22 h earlier.
      ['1d', -79_200_000, 1, 3, 3],
    ],
  );
  assert.deepEqual(candles.forming('1d'), []);
});

test('a snapshot restores the same forming candles', () => {
  const candles = new SymbolCandles('X');
  candles.addTick(T0, T0 + 5, 1, 1);
  candles.addTick(T0 + 60_000, T0 + 60_005, 2, 0.5);
  candles.closeThrough(T0 + 60_000, []);
  const restored = new SymbolCandles('X', JSON.parse(JSON.stringify(candles.snapshot())));
  for (const interval of INTERVALS) {
    assert.deepEqual(restored.forming(interval), candles.forming(interval));
  }
  assert.equal(restored.forming('5m')[0]?.trades, 2);
  const [closedOriginal, closedRestored]: [Candle[], Candle[]] = [[], []];
  candles.closeThrough(T0 + 300_000, closedOriginal);
  restored.closeThrough(T0 + 300_000, closedRestored);
  assert.equal(closedRestored.length, 2, 'minute 1 and the first 5m window close after a restore too');
  assert.deepEqual(closedRestored, closedOriginal);
});
