/**
 * Record builders shared by the store, sink and processor tests: BTCUSDT, plain defaults, and `fields`
 * to override any of them.
 */
import type { Alert, Candle, IndicatorPoint, ProcessedTick } from '../../src/core/records.ts';

/** A processed tick: price 100, size 1, received 7 ms after its time, no moving averages, not late. */
export function testTick(seq: number, ts: number, fields: Partial<ProcessedTick> = {}): ProcessedTick {
  return {
    source: 'synthetic',
    symbol: 'BTCUSDT',
    ts,
    price: 100,
    size: 1,
    receivedAt: ts + 7,
    seq,
    maShort: null,
    maLong: null,
    late: false,
    ...fields,
  };
}

/** A final 1m candle: open 100, high 102, low 99, close 101, three trades. */
export function testCandle(ts: number, fields: Partial<Candle> = {}): Candle {
  return {
    symbol: 'BTCUSDT',
    interval: '1m',
    ts,
    open: 100,
    high: 102,
    low: 99,
    close: 101,
    volume: 3,
    trades: 3,
    vwap: 100.5,
    final: true,
    ...fields,
  };
}

/** Every price and volume field of a candle at 1 (for tests that count or aggregate candles). */
export const ONES = { open: 1, high: 1, low: 1, close: 1, volume: 1, trades: 1, vwap: 1 } as const;

/** A 1m indicator point with every indicator still warming up (null). */
export function testPoint(ts: number, fields: Partial<IndicatorPoint> = {}): IndicatorPoint {
  return {
    symbol: 'BTCUSDT',
    interval: '1m',
    ts,
    sma20: null,
    ema20: null,
    rsi14: null,
    bbUpper: null,
    bbMiddle: null,
    bbLower: null,
    ...fields,
  };
}

/** Every indicator of a point set, to values that are exact in binary (they round-trip any store). */
export const WARM_INDICATORS = {
  sma20: 100.125,
  ema20: 100.0625,
  rsi14: 55.5,
  bbUpper: 102.5,
  bbMiddle: 100.125,
  bbLower: 97.75,
} as const;

/** A price_above alert at price 100. */
export function testAlert(seq: number, ts: number, fields: Partial<Alert> = {}): Alert {
  return { seq, ts, symbol: 'BTCUSDT', kind: 'price_above', price: 100, message: `alert ${seq}`, ...fields };
}
