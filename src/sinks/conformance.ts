/**
 * The behaviour every Sink must show, run by each sink's test against its real target: what it
 * writes reads back from the target exactly (as a user of that system would read it), writing the
 * same records again changes nothing, a new instance on the same target carries on, and a target
 * that is down makes `write` reject until it is back, after which nothing is missing.
 * Expected values are the records written, written out by hand below.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { testAlert, testCandle, testPoint, testTick, WARM_INDICATORS } from '../../test/support/records.ts';
import type { Alert, Candle, IndicatorPoint, ProcessedTick } from '../core/records.ts';
import { type Sink, type SinkBatch, SinkError, selectRecords } from './sink.ts';

/** What a sink's test hands the suite. */
export interface SinkHarness {
  /** A new, unopened sink on the harness's target (the suite may make several: a restart). */
  makeSink(): Sink;
  /**
   * Everything the target holds, as records (fields the target does not keep may be absent; the
   * suite compares the fields of `SinkView`).
   */
  readBack(): Promise<SinkBatch>;
  /** Stops and starts the target, for the outage test (omitted: the test is skipped). */
  stopTarget?: () => Promise<void>;
  startTarget?: () => Promise<void>;
  cleanup(): Promise<void>;
}

/** A minute-aligned epoch ms on 2023-11-14; D is its day. */
const T0 = 1_699_999_980_000;
const DAY = 86_400_000;

function tick(seq: number, ts: number, fields: Partial<ProcessedTick> = {}): ProcessedTick {
  return testTick(seq, ts, { source: 'replay', receivedAt: 1_700_000_000_000 + seq, ...fields });
}

function candle(interval: Candle['interval'], ts: number, fields: Partial<Candle> = {}): Candle {
  return testCandle(ts, {
    interval,
    high: 102.5,
    low: 99.25,
    volume: 3.5,
    trades: 4,
    vwap: 100.75,
    ...fields,
  });
}

function point(
  interval: IndicatorPoint['interval'],
  ts: number,
  fields: Partial<IndicatorPoint> = {},
): IndicatorPoint {
  return testPoint(ts, { interval, ...fields });
}

function alert(seq: number, ts: number, fields: Partial<Alert> = {}): Alert {
  return testAlert(seq, ts, { price: 101, ...fields });
}

/** First batch: rows sharing a millisecond, nulls, absent ids, two days, two symbols. */
export const FIRST_BATCH: SinkBatch = {
  ticks: [
    tick(0, T0, { price: 100.25, size: 0.5, id: 'a1', side: 'buy' }),
    // Same symbol and ms as the first: must stay a row of its own.
    tick(1, T0, { price: 0.1 + 0.2, size: 0, maShort: 100.5 }),
    tick(2, T0 + 1_500, { id: '42', late: true, maShort: 101.125, maLong: 99.0625, side: 'sell' }),
    tick(3, T0, { symbol: 'ETH/USD:X', source: 'my feed, 2', id: 'quote " and \\ backslash' }),
    tick(4, T0 + DAY, { price: 7 }),
  ],
  candles: [
    candle('1m', T0),
    candle('1m', T0 + 60_000, { volume: 0, trades: 2, vwap: null }),
    candle('1d', T0 - (T0 % DAY), { close: 555 }),
    candle('1m', T0, { symbol: 'ETH/USD:X', close: 777 }),
  ],
  indicators: [
    point('1m', T0),
    point('1m', T0 + 60_000, WARM_INDICATORS),
    point('5m', T0, { sma20: 5, rsi14: 100 }),
  ],
  alerts: [
    alert(4096, T0, { kind: 'price_above', threshold: 100 }),
    // Same ms and kind, another rule: two alerts.
    alert(4097, T0, {
      kind: 'price_above',
      threshold: 100.2,
      message: 'a "quoted", message\nwith a newline',
    }),
    alert(8192, T0 + 1_500, { kind: 'golden_cross' }),
    alert(12_288, T0 + DAY, { kind: 'anomaly', symbol: 'ETH/USD:X', price: 7 }),
  ],
};

/** Second batch: later rows, written after the first. */
export const SECOND_BATCH: SinkBatch = {
  ticks: [tick(5, T0 + DAY + 10, { price: 8, maShort: 7.5 })],
  candles: [candle('1h', T0 - (T0 % 3_600_000), { open: 99 })],
  indicators: [point('1h', T0 - (T0 % 3_600_000), { sma20: 1 })],
  alerts: [alert(16_384, T0 + DAY + 10, { kind: 'price_below', threshold: 7.5, price: 7 })],
};

/** The fields every target keeps, per kind: what the suite compares. */
export interface SinkView {
  ticks: Pick<ProcessedTick, 'symbol' | 'ts' | 'price' | 'size' | 'maShort' | 'maLong' | 'late'>[];
  candles: Omit<Candle, 'final'>[];
  indicators: IndicatorPoint[];
  alerts: Pick<Alert, 'symbol' | 'ts' | 'kind' | 'price' | 'threshold' | 'message'>[];
}

/** Projects records onto the compared fields, in one canonical order. */
export function viewOf(batch: SinkBatch): SinkView {
  const byKey = <T>(rows: T[], key: (row: T) => string) =>
    rows.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  const n = (value: number) => String(value).padStart(16, '0');
  return {
    ticks: byKey(
      batch.ticks.map(({ symbol, ts, price, size, maShort, maLong, late }) => ({
        symbol,
        ts,
        price,
        size,
        maShort: maShort ?? null,
        maLong: maLong ?? null,
        late,
      })),
      (t) => `${t.symbol}|${n(t.ts)}|${n(t.price)}|${t.size}`,
    ),
    candles: byKey(
      batch.candles.map(({ symbol, interval, ts, open, high, low, close, volume, trades, vwap }) => ({
        symbol,
        interval,
        ts,
        open,
        high,
        low,
        close,
        volume,
        trades,
        vwap: vwap ?? null,
      })),
      (c) => `${c.symbol}|${c.interval}|${n(c.ts)}`,
    ),
    indicators: byKey(
      batch.indicators.map(({ symbol, interval, ts, sma20, ema20, rsi14, bbUpper, bbMiddle, bbLower }) => ({
        symbol,
        interval,
        ts,
        sma20: sma20 ?? null,
        ema20: ema20 ?? null,
        rsi14: rsi14 ?? null,
        bbUpper: bbUpper ?? null,
        bbMiddle: bbMiddle ?? null,
        bbLower: bbLower ?? null,
      })),
      (p) => `${p.symbol}|${p.interval}|${n(p.ts)}`,
    ),
    alerts: byKey(
      batch.alerts.map(({ symbol, ts, kind, price, threshold, message }) => ({
        symbol,
        ts,
        kind,
        price,
        ...(threshold === undefined || threshold === null ? {} : { threshold }),
        message,
      })),
      (a) => `${a.symbol}|${n(a.ts)}|${a.kind}|${a.message}`,
    ),
  };
}

function concat(...batches: SinkBatch[]): SinkBatch {
  return {
    ticks: batches.flatMap((b) => b.ticks),
    candles: batches.flatMap((b) => b.candles),
    indicators: batches.flatMap((b) => b.indicators),
    alerts: batches.flatMap((b) => b.alerts),
  };
}

/** Registers the Sink conformance tests for one implementation and target. */
export function sinkConformance(
  name: string,
  makeHarness: () => Promise<SinkHarness>,
  options: { timeout?: number } = {},
): void {
  describe(`Sink conformance: ${name}`, { timeout: options.timeout ?? 300_000 }, () => {
    let harness: SinkHarness;
    let sink: Sink;
    const expect = async (...batches: SinkBatch[]) => {
      const wanted = selectRecords(concat(...batches), sink.records);
      assert.deepStrictEqual(viewOf(await harness.readBack()), viewOf(wanted));
    };

    before(async () => {
      harness = await makeHarness();
      sink = harness.makeSink();
    });
    after(async () => {
      await sink?.close();
      await harness?.cleanup();
    });

    // The tests build on each other, in order, on one target: like a sink's life.
    test('open creates what the target lacks; a batch reads back exactly, same-ms rows apart', async () => {
      await sink.open();
      await sink.write(selectRecords(FIRST_BATCH, sink.records));
      await expect(FIRST_BATCH);
    });

    test('writing the same records again (a re-delivery) changes nothing', async () => {
      await sink.write(selectRecords(FIRST_BATCH, sink.records));
      await sink.write(selectRecords(concat(FIRST_BATCH, SECOND_BATCH), sink.records));
      await expect(FIRST_BATCH, SECOND_BATCH);
    });

    test('a new instance on the same target (a restart) opens and re-delivers idempotently', async () => {
      await sink.close();
      sink = harness.makeSink();
      await sink.open();
      await sink.write(selectRecords(SECOND_BATCH, sink.records));
      await expect(FIRST_BATCH, SECOND_BATCH);
    });

    test('an empty batch is a no-op', async () => {
      await sink.write({ ticks: [], candles: [], indicators: [], alerts: [] });
      await expect(FIRST_BATCH, SECOND_BATCH);
    });

    test('while the target is down, write rejects with a SinkError; once it is back nothing is missing', async (t) => {
      if (harness.stopTarget === undefined || harness.startTarget === undefined) {
        t.skip('this harness cannot stop its target');
        return;
      }
      await harness.stopTarget();
      const third: SinkBatch = {
        ticks: [tick(6, T0 + 2 * DAY, { price: 9 })],
        candles: [candle('15m', T0 + 2 * DAY - ((T0 + 2 * DAY) % 900_000))],
        indicators: [point('15m', T0 + 2 * DAY - ((T0 + 2 * DAY) % 900_000), { ema20: 3 })],
        alerts: [alert(20_480, T0 + 2 * DAY, { kind: 'death_cross', price: 9 })],
      };
      try {
        await assert.rejects(sink.write(selectRecords(third, sink.records)), (error: unknown) => {
          assert.ok(error instanceof SinkError, `expected a SinkError, got ${String(error)}`);
          return true;
        });
      } finally {
        await harness.startTarget();
      }
      // As the stage does: the same write again, with a pause, on the same instance (no new open()).
      const deadline = Date.now() + 60_000;
      for (;;) {
        try {
          await sink.write(selectRecords(third, sink.records));
          break;
        } catch (error) {
          if (Date.now() > deadline) throw error;
          await new Promise((resolve) => setTimeout(resolve, 1_000));
        }
      }
      await expect(FIRST_BATCH, SECOND_BATCH, third);
    });
  });
}
