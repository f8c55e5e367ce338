/**
 * The one behaviour every Store implementation must show. Each implementation's test calls
 * `storeConformance` with a factory; expected values here are written out by hand from the
 * RangeQuery and ordering rules in store.ts, not computed by another store.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { testAlert, testCandle, testPoint, testTick, WARM_INDICATORS } from '../../test/support/records.ts';
import type { Candle, DeadLetter, ProcessedTick } from '../core/records.ts';
import {
  CheckpointConflictError,
  type RangeQuery,
  type Store,
  type StoreBatch,
  type StoredTick,
} from './store.ts';

/** What a factory hands the suite: an unopened store, and how to reach the same data again. */
export interface StoreHarness {
  store: Store;
  /** A new, unopened store over the same data; the suite closes the previous one first. */
  reopen?: () => Promise<Store>;
  /** Removes whatever the store left behind (files); called after the suite closed its stores. */
  cleanup: () => Promise<void>;
}

/** A harness over the store `open` makes on a file in a fresh temp dir; `reopen` opens the same file. */
export async function fileStoreHarness(open: (file: string) => Store): Promise<StoreHarness> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'streamlines-store-'));
  const file = path.join(dir, 'store.duckdb');
  return {
    store: open(file),
    reopen: async () => open(file),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** A minute-aligned epoch ms (1_699_999_980_000 / 60_000 = 28_333_333), far above 2^31. */
const T0 = 1_699_999_980_000;
const MINUTE = 60_000;

function makeDeadLetter(seq: number, fields: Partial<DeadLetter> = {}): DeadLetter {
  return {
    seq,
    source: 'replay',
    reason: 'invalid_price',
    detail: `price must be a finite number > 0, got "abc" (${seq})`,
    raw: `{"symbol":"BTCUSDT","price":"abc","n":${seq}}`,
    receivedAt: T0 + seq,
    ...fields,
  };
}

/** Everything a store answers about BTCUSDT (1m), plus alerts, dead letters and one checkpoint. */
async function everything(store: Store, checkpoint: string): Promise<unknown[]> {
  return [
    await store.ticks('BTCUSDT', { limit: 100 }),
    await store.latest('BTCUSDT'),
    await store.symbols(),
    await store.candles('BTCUSDT', '1m', { limit: 100 }),
    await store.indicators('BTCUSDT', '1m', { limit: 100 }),
    await store.alerts({ limit: 100 }),
    await store.deadLetters(100),
    await store.checkpoint(checkpoint),
  ];
}

/** An empty batch with a checkpoint, overridden by `parts`. */
export function makeBatch(parts: Partial<StoreBatch> = {}): StoreBatch {
  return {
    ticks: [],
    candles: [],
    indicators: [],
    alerts: [],
    deadLetters: [],
    checkpoint: { name: 'processor', offsets: { 0: 0 }, state: null },
    ...parts,
  };
}

/** Ticks carry their seq in `id` so range results can be compared as short lists. */
const ids = (ticks: readonly StoredTick[]): (string | null)[] => ticks.map((tick) => tick.id);

/** Registers the Store conformance tests for one implementation. */
/** `durable`: the store keeps data across close and reopen, so the persistence test is registered too. */
export function storeConformance(
  name: string,
  makeStore: () => Promise<StoreHarness>,
  options: { durable: boolean } = { durable: false },
): void {
  describe(`Store conformance: ${name}`, () => {
    let harness: StoreHarness;
    let store: Store;
    let opened: Store[] = [];

    beforeEach(async () => {
      harness = await makeStore();
      store = harness.store;
      await store.open();
      opened = [store];
    });

    afterEach(async () => {
      for (const each of opened) await each.close();
      await harness.cleanup();
    });

    test('round-trips ticks with exact fields, null MAs and a missing id', async () => {
      await store.write(
        makeBatch({
          ticks: [
            testTick(0, T0, { price: 100.25, size: 0.5, id: 'a1', side: 'buy' }),
            testTick(1, T0 + 1000, { price: 0.1 + 0.2, size: 0, maShort: 100.5 }),
            testTick(2, T0 + 500, { id: '42', late: true, maShort: 101.125, maLong: 99.0625, side: 'sell' }),
            testTick(3, T0, { symbol: 'ETHUSDT', id: 'other-symbol' }),
          ],
        }),
      );
      const expected: StoredTick[] = [
        { ts: T0, price: 100.25, size: 0.5, id: 'a1', maShort: null, maLong: null, late: false },
        { ts: T0 + 500, price: 100, size: 1, id: '42', maShort: 101.125, maLong: 99.0625, late: true },
        // 0.1 + 0.2 = 0.30000000000000004: a store that rounds through float32 or text would lose it.
        {
          ts: T0 + 1000,
          price: 0.30000000000000004,
          size: 0,
          id: null,
          maShort: 100.5,
          maLong: null,
          late: false,
        },
      ];
      assert.deepStrictEqual(await store.ticks('BTCUSDT', { limit: 10 }), expected);
    });

    test('newestTickTs and storedSpan give where stored rows end and begin in event time', async () => {
      assert.equal(await store.newestTickTs(), undefined);
      assert.deepStrictEqual(await store.storedSpan(), {});
      await store.write(
        makeBatch({
          ticks: [testTick(0, T0 + 5 * MINUTE), testTick(1, T0 + 2 * MINUTE, { symbol: 'ETHUSDT' })],
          candles: [testCandle(T0 + MINUTE)],
          alerts: [testAlert(0, T0 + 30_000)],
        }),
      );
      assert.equal(await store.newestTickTs(), T0 + 5 * MINUTE);
      assert.deepStrictEqual(await store.storedSpan(), {
        oldestTickTs: T0 + 2 * MINUTE,
        oldestAggregateTs: T0 + 30_000,
      });
    });

    test('deleteExpired deletes exactly the rows before each cutoff, and dead letters only when asked', async () => {
      const ticks = [0, 1, 2, 3].map((i) => testTick(i, T0 + i * MINUTE, { id: String(i) }));
      const candles = [0, 1, 2, 3].map((i) => testCandle(T0 + i * MINUTE, { close: 100 + i }));
      const points = [0, 1, 2, 3].map((i) => testPoint(T0 + i * MINUTE, { sma20: i }));
      const alerts = [0, 1, 2, 3].map((i) => testAlert(i, T0 + i * MINUTE));
      const deadLetters = [makeDeadLetter(0)];
      await store.write(makeBatch({ ticks, candles, indicators: points, alerts, deadLetters }));
      assert.deepStrictEqual(await store.deleteExpired({}), {
        ticks: 0,
        candles: 0,
        indicators: 0,
        alerts: 0,
        deadLetters: 0,
      });
      // The cutoff itself is kept: only ts < cutoff goes.
      const deleted = await store.deleteExpired({
        ticksBeforeMs: T0 + 2 * MINUTE,
        candlesBeforeMs: T0 + MINUTE,
      });
      assert.deepStrictEqual(deleted, { ticks: 2, candles: 1, indicators: 1, alerts: 1, deadLetters: 0 });
      assert.deepStrictEqual(ids(await store.ticks('BTCUSDT', { limit: 10 })), ['2', '3']);
      assert.deepStrictEqual(await store.candles('BTCUSDT', '1m', { limit: 10 }), candles.slice(1));
      assert.deepStrictEqual(await store.indicators('BTCUSDT', '1m', { limit: 10 }), points.slice(1));
      assert.deepStrictEqual(await store.alerts({ limit: 10 }), alerts.slice(1));
      assert.equal((await store.latest('BTCUSDT'))?.ts, T0 + 3 * MINUTE);
      assert.equal((await store.deadLetters(10)).length, 1);
      assert.equal(await store.newestTickTs(), T0 + 3 * MINUTE);
      // Only ticks: candles stay.
      await store.deleteExpired({ ticksBeforeMs: T0 + 10 * MINUTE });
      assert.deepStrictEqual(await store.ticks('BTCUSDT', { limit: 10 }), []);
      assert.equal((await store.candles('BTCUSDT', '1m', { limit: 10 })).length, 3);
      await assert.rejects(store.deleteExpired({ ticksBeforeMs: 1.5 }), RangeError);
    });

    test('deleteExpired keeps the newest dead letters by seq, at most maxRows per call', async () => {
      // Seqs skip (they are log offsets, ticks in between) and arrive out of order across writes.
      const seqs = [3, 7, 8, 20, 21, 40, 41, 42, 50, 99];
      await store.write(makeBatch({ deadLetters: [50, 99, 3, 40].map((seq) => makeDeadLetter(seq)) }));
      await store.write(makeBatch({ deadLetters: [7, 41, 20, 42, 8, 21].map((seq) => makeDeadLetter(seq)) }));
      const remaining = async (): Promise<number[]> =>
        (await store.deadLetters(100)).map((letter) => letter.seq);
      // Fewer than `keep`, or exactly `keep`: nothing goes.
      assert.equal((await store.deleteExpired({ deadLetters: { keep: 11, maxRows: 100 } })).deadLetters, 0);
      assert.equal((await store.deleteExpired({ deadLetters: { keep: 10, maxRows: 100 } })).deadLetters, 0);
      assert.deepStrictEqual(await remaining(), seqs);
      // Over the bound by 6, at most 4 per call: the oldest 4 first, then the other 2.
      assert.deepStrictEqual(await store.deleteExpired({ deadLetters: { keep: 4, maxRows: 4 } }), {
        ticks: 0,
        candles: 0,
        indicators: 0,
        alerts: 0,
        deadLetters: 4,
      });
      assert.deepStrictEqual(await remaining(), seqs.slice(4));
      assert.equal((await store.deleteExpired({ deadLetters: { keep: 4, maxRows: 4 } })).deadLetters, 2);
      assert.deepStrictEqual(
        await store.deadLetters(100),
        [41, 42, 50, 99].map((seq) => makeDeadLetter(seq)),
      );
      assert.equal((await store.deleteExpired({ deadLetters: { keep: 4, maxRows: 4 } })).deadLetters, 0);
      // Newer ones push the oldest out; keep 1 leaves only the newest.
      await store.write(makeBatch({ deadLetters: [makeDeadLetter(120)] }));
      assert.equal((await store.deleteExpired({ deadLetters: { keep: 1, maxRows: 100 } })).deadLetters, 4);
      assert.deepStrictEqual(await remaining(), [120]);
      for (const deadLetters of [
        { keep: 0, maxRows: 1 },
        { keep: 1, maxRows: 0 },
        { keep: 1.5, maxRows: 1 },
      ]) {
        await assert.rejects(store.deleteExpired({ deadLetters }), RangeError);
      }
    });

    test('round-trips final candles and indicator points with their nulls, per interval', async () => {
      const candles = [
        testCandle(T0, {
          open: 100.5,
          high: 101.75,
          low: 99.25,
          close: 100,
          volume: 2.5,
          trades: 4,
          vwap: 100.3,
        }),
        testCandle(T0 + MINUTE, { volume: 0, trades: 2, vwap: null }),
        testCandle(T0, { interval: '5m', close: 555 }),
        testCandle(T0, { symbol: 'ETHUSDT', close: 777 }),
      ];
      const points = [
        testPoint(T0),
        testPoint(T0 + MINUTE, WARM_INDICATORS),
        testPoint(T0, { interval: '5m', sma20: 5 }),
      ];
      await store.write(makeBatch({ candles, indicators: points }));

      assert.deepStrictEqual(await store.candles('BTCUSDT', '1m', { limit: 10 }), [candles[0], candles[1]]);
      assert.deepStrictEqual(await store.candles('BTCUSDT', '5m', { limit: 10 }), [candles[2]]);
      assert.deepStrictEqual(await store.candles('ETHUSDT', '1m', { limit: 10 }), [candles[3]]);
      assert.deepStrictEqual(await store.candles('BTCUSDT', '1h', { limit: 10 }), []);
      assert.deepStrictEqual(await store.indicators('BTCUSDT', '1m', { limit: 10 }), [points[0], points[1]]);
      assert.deepStrictEqual(await store.indicators('BTCUSDT', '5m', { limit: 10 }), [points[2]]);
    });

    test('1d candles answer the roll-up of the 1h candles written with them (docs/design.md, Rules)', async () => {
      // The processor writes each day's 1h candles and its 1d roll-up; a store may serve the day from
      // either (TimescaleDB: a continuous aggregate over the 1h rows). Values chosen so every field of
      // the roll-up differs from every single hour's, and vwap is exact in binary.
      const DAY = 86_400_000;
      const day0 = Math.floor(T0 / DAY) * DAY;
      const hour = (i: number, fields: Partial<Candle>) =>
        testCandle(day0 + i * 3_600_000, { interval: '1h', ...fields });
      const hours = [
        hour(0, { open: 10, high: 12, low: 9, close: 11, volume: 2, trades: 3, vwap: 10.5 }),
        hour(5, { open: 11, high: 15, low: 10, close: 14, volume: 4, trades: 5, vwap: 12.25 }),
        hour(23, { open: 14, high: 14.5, low: 8, close: 9, volume: 0, trades: 1, vwap: null }),
        hour(24, { open: 20, high: 21, low: 19, close: 20.5, volume: 1, trades: 1, vwap: 20 }),
      ];
      const days = [
        testCandle(day0, {
          interval: '1d',
          open: 10,
          high: 15,
          low: 8,
          close: 9,
          volume: 6,
          trades: 9,
          vwap: (10.5 * 2 + 12.25 * 4) / 6,
        }),
        testCandle(day0 + DAY, {
          interval: '1d',
          open: 20,
          high: 21,
          low: 19,
          close: 20.5,
          volume: 1,
          trades: 1,
          vwap: 20,
        }),
      ];
      // Hours in one batch, days in the next: the processor closes a day after its last hour.
      await store.write(makeBatch({ candles: hours }));
      await store.write(makeBatch({ candles: days }));
      const got = await store.candles('BTCUSDT', '1d', { limit: 10 });
      assert.equal(got.length, 2);
      for (let i = 0; i < days.length; i++) {
        const { vwap, ...rest } = got[i]!;
        const { vwap: expectedVwap, ...expectedRest } = days[i]!;
        assert.deepStrictEqual(rest, expectedRest);
        assert.ok(Math.abs(vwap! - expectedVwap!) <= 1e-9 * expectedVwap!, `vwap ${vwap} vs ${expectedVwap}`);
      }
      assert.deepStrictEqual(
        (await store.candles('BTCUSDT', '1d', { from: day0 + 1, limit: 10 })).map((c) => c.ts),
        [day0 + DAY],
      );
      assert.deepStrictEqual(
        (await store.candles('BTCUSDT', '1d', { to: day0 + DAY - 1, limit: 10 })).map((c) => c.ts),
        [day0],
      );
      assert.deepStrictEqual(await store.candles('ETHUSDT', '1d', { limit: 10 }), []);
    });

    test('stored candles read back as final', async () => {
      // The store keeps final candles only; whatever flag came in, what it serves is final.
      await store.write(makeBatch({ candles: [testCandle(T0, { final: false })] }));
      const [candle] = await store.candles('BTCUSDT', '1m', { limit: 1 });
      assert.equal(candle?.final, true);
    });

    test('round-trips alerts, omitting threshold when there is none', async () => {
      const withThreshold = testAlert(1, T0, { kind: 'price_below', price: 99.5, threshold: 100 });
      const withoutThreshold = testAlert(2, T0 + 1, {
        kind: 'golden_cross',
        price: 101,
        message: 'golden cross',
      });
      await store.write(makeBatch({ alerts: [withThreshold, withoutThreshold] }));
      const alerts = await store.alerts({ limit: 10 });
      assert.deepStrictEqual(alerts, [withThreshold, withoutThreshold]);
      assert.equal('threshold' in alerts[1]!, false);
    });

    test('deadLetters returns the most recent N, ascending by seq', async () => {
      const letters = [10, 11, 12, 13, 14].map((seq) => makeDeadLetter(seq));
      letters[1] = makeDeadLetter(11, { reason: 'invalid_symbol', source: 'binance', raw: 'not json' });
      await store.write(makeBatch({ deadLetters: letters.slice(0, 3) }));
      await store.write(makeBatch({ deadLetters: letters.slice(3) }));
      assert.deepStrictEqual(await store.deadLetters(3), letters.slice(2));
      assert.deepStrictEqual(await store.deadLetters(100), letters);
      assert.deepStrictEqual(await store.deadLetters(0), []);
    });

    describe('RangeQuery on ticks', () => {
      // Sorted by (ts, seq): t0@0, t1@1000, t2@1000, t3@2000, t4@3000, t5@4000 (ms after T0).
      // t2 is written in an earlier batch than t1, so insertion order alone would put it first.
      const btcIds = async (range: RangeQuery) => ids(await store.ticks('BTCUSDT', range));
      beforeEach(async () => {
        const at = (seq: number, offsetMs: number): ProcessedTick =>
          testTick(seq, T0 + offsetMs, { id: `t${seq}` });
        await store.write(makeBatch({ ticks: [at(0, 0), at(2, 1000), at(3, 2000)] }));
        await store.write(makeBatch({ ticks: [at(1, 1000), at(5, 4000), at(4, 3000)] }));
        await store.write(makeBatch({ ticks: [testTick(6, T0 + 1000, { symbol: 'ETHUSDT', id: 'eth' })] }));
      });

      test('neither bound: the last `limit`', async () => {
        assert.deepStrictEqual(await btcIds({ limit: 10 }), ['t0', 't1', 't2', 't3', 't4', 't5']);
        assert.deepStrictEqual(await btcIds({ limit: 2 }), ['t4', 't5']);
      });

      test('from only: the first `limit` at or after from', async () => {
        assert.deepStrictEqual(await btcIds({ from: T0 + 1000, limit: 10 }), ['t1', 't2', 't3', 't4', 't5']);
        assert.deepStrictEqual(await btcIds({ from: T0 + 1000, limit: 2 }), ['t1', 't2']);
        assert.deepStrictEqual(await btcIds({ from: T0 + 1001, limit: 2 }), ['t3', 't4']);
      });

      test('to only: the last `limit` at or before to', async () => {
        assert.deepStrictEqual(await btcIds({ to: T0 + 2000, limit: 10 }), ['t0', 't1', 't2', 't3']);
        assert.deepStrictEqual(await btcIds({ to: T0 + 2000, limit: 2 }), ['t2', 't3']);
        // Of the two ticks at T0+1000 the later in log order is the last one.
        assert.deepStrictEqual(await btcIds({ to: T0 + 1000, limit: 1 }), ['t2']);
        assert.deepStrictEqual(await btcIds({ to: T0 - 1, limit: 10 }), []);
      });

      test('both bounds: the first `limit` within [from, to], both inclusive', async () => {
        assert.deepStrictEqual(await btcIds({ from: T0 + 1000, to: T0 + 3000, limit: 10 }), [
          't1',
          't2',
          't3',
          't4',
        ]);
        assert.deepStrictEqual(await btcIds({ from: T0 + 1000, to: T0 + 3000, limit: 3 }), [
          't1',
          't2',
          't3',
        ]);
        assert.deepStrictEqual(await btcIds({ from: T0 + 1000, to: T0 + 1000, limit: 10 }), ['t1', 't2']);
        assert.deepStrictEqual(await btcIds({ from: T0 + 3000, to: T0 + 1000, limit: 10 }), []);
      });

      test('limit 0 returns nothing', async () => {
        assert.deepStrictEqual(await store.ticks('BTCUSDT', { limit: 0 }), []);
        assert.deepStrictEqual(await store.ticks('BTCUSDT', { from: T0, limit: 0 }), []);
      });
    });

    test('RangeQuery on candles and indicators, filtered by symbol and interval', async () => {
      const minutes = [0, 1, 2, 3, 4];
      // Written newest first: the order must come from ts, not from insertion.
      const candles = minutes.map((k) => testCandle(T0 + k * MINUTE, { close: 100 + k }));
      const points = minutes.map((k) => testPoint(T0 + k * MINUTE, { sma20: 100 + k }));
      await store.write(
        makeBatch({
          candles: [...candles].reverse().concat(testCandle(T0 + 5 * MINUTE, { interval: '5m' })),
          indicators: [...points].reverse().concat(testPoint(T0 + 5 * MINUTE, { symbol: 'ETHUSDT' })),
        }),
      );
      // The same queries on both series, each read back as the value that numbers its minute.
      const series = [
        async (query: RangeQuery) =>
          (await store.candles('BTCUSDT', '1m', query)).map((candle): number | null => candle.close),
        async (query: RangeQuery) =>
          (await store.indicators('BTCUSDT', '1m', query)).map((point) => point.sma20),
      ];
      for (const read of series) {
        assert.deepStrictEqual(await read({ limit: 2 }), [103, 104]);
        assert.deepStrictEqual(await read({ from: T0 + MINUTE, limit: 2 }), [101, 102]);
        assert.deepStrictEqual(await read({ to: T0 + 2 * MINUTE, limit: 2 }), [101, 102]);
        assert.deepStrictEqual(
          await read({ from: T0 + MINUTE, to: T0 + 3 * MINUTE, limit: 10 }),
          [101, 102, 103],
        );
      }
    });

    test('alerts are filtered by symbol, kind and range, ascending by ts then seq', async () => {
      // Sorted by (ts, seq): a3@0, a1@1000, a2@1000, a5@1000, a4@2000 (ms after T0).
      await store.write(makeBatch({ alerts: [testAlert(5, T0 + 1000, { kind: 'anomaly' })] }));
      await store.write(
        makeBatch({
          alerts: [
            testAlert(1, T0 + 1000, { kind: 'price_above', threshold: 99 }),
            testAlert(2, T0 + 1000, { symbol: 'ETHUSDT', kind: 'price_below', threshold: 50 }),
            testAlert(3, T0, { kind: 'golden_cross' }),
            testAlert(4, T0 + 2000, { kind: 'price_above', threshold: 105 }),
          ],
        }),
      );
      const seqs = async (query: Parameters<Store['alerts']>[0]): Promise<number[]> =>
        (await store.alerts(query)).map((alert) => alert.seq);

      assert.deepStrictEqual(await seqs({ limit: 100 }), [3, 1, 2, 5, 4]);
      assert.deepStrictEqual(await seqs({ symbol: 'BTCUSDT', limit: 100 }), [3, 1, 5, 4]);
      assert.deepStrictEqual(await seqs({ kind: 'price_above', limit: 100 }), [1, 4]);
      assert.deepStrictEqual(await seqs({ symbol: 'ETHUSDT', kind: 'price_below', limit: 100 }), [2]);
      assert.deepStrictEqual(await seqs({ symbol: 'ETHUSDT', kind: 'price_above', limit: 100 }), []);
      assert.deepStrictEqual(await seqs({ from: T0 + 1000, to: T0 + 1000, limit: 100 }), [1, 2, 5]);
      assert.deepStrictEqual(await seqs({ limit: 2 }), [5, 4]);
      assert.deepStrictEqual(await seqs({ from: T0 + 1000, limit: 2 }), [1, 2]);
      assert.deepStrictEqual(await seqs({ symbol: 'BTCUSDT', to: T0 + 1000, limit: 2 }), [1, 5]);
    });

    test('latest is the tick with the largest seq, not the largest ts', async () => {
      await store.write(
        makeBatch({
          ticks: [
            // Array order is not log order either: seq decides.
            testTick(1, T0 + 1000, {
              price: 101,
              size: 2,
              maShort: 100.5,
              maLong: 100.25,
              source: 'binance',
            }),
            testTick(0, T0 + 5000, { price: 100 }),
          ],
        }),
      );
      assert.deepStrictEqual(await store.latest('BTCUSDT'), {
        symbol: 'BTCUSDT',
        ts: T0 + 1000,
        price: 101,
        size: 2,
        maShort: 100.5,
        maLong: 100.25,
        source: 'binance',
      });

      // A late tick (smaller ts) that comes later in the log replaces it.
      await store.write(makeBatch({ ticks: [testTick(2, T0 + 500, { price: 102, late: true })] }));
      assert.deepStrictEqual(await store.latest('BTCUSDT'), {
        symbol: 'BTCUSDT',
        ts: T0 + 500,
        price: 102,
        size: 1,
        maShort: null,
        maLong: null,
        source: 'synthetic',
      });
    });

    test('symbols summarises every symbol ascending by name, from its latest tick', async () => {
      assert.deepStrictEqual(await store.symbols(), []);
      await store.write(
        makeBatch({
          ticks: [
            testTick(0, T0 + 9000, { symbol: 'ETHUSDT', price: 2000 }),
            testTick(1, T0 + 1000, { symbol: 'ETHUSDT', price: 2001 }),
            testTick(0, T0, { symbol: 'BTCUSDT', price: 60000.5 }),
          ],
        }),
      );
      await store.write(makeBatch({ ticks: [testTick(0, T0 + 3, { symbol: 'ADAUSDT', price: 0.25 })] }));
      assert.deepStrictEqual(await store.symbols(), [
        { symbol: 'ADAUSDT', lastPrice: 0.25, lastTs: T0 + 3 },
        { symbol: 'BTCUSDT', lastPrice: 60000.5, lastTs: T0 },
        { symbol: 'ETHUSDT', lastPrice: 2001, lastTs: T0 + 1000 },
      ]);
    });

    test('checkpoints round-trip, overwrite, and are independent per name', async () => {
      assert.equal(await store.checkpoint('processor'), undefined);
      const state = { windows: { BTCUSDT: [1.5, null, 'x'] }, counters: { accepted: 12 }, done: false };
      await store.write(makeBatch({ checkpoint: { name: 'processor', offsets: { 0: 10, 3: 7 }, state } }));
      // Mutating the caller's object afterwards must not change what was committed.
      state.counters.accepted = 999;
      assert.deepStrictEqual(await store.checkpoint('processor'), {
        offsets: { 0: 10, 3: 7 },
        state: { windows: { BTCUSDT: [1.5, null, 'x'] }, counters: { accepted: 12 }, done: false },
      });

      await store.write(
        makeBatch({ checkpoint: { name: 'processor', offsets: { 0: 25 }, state: { n: 2 } } }),
      );
      await store.write(makeBatch({ checkpoint: { name: 'backfill', offsets: { 1: 3 }, state: 'text' } }));
      assert.deepStrictEqual(await store.checkpoint('processor'), { offsets: { 0: 25 }, state: { n: 2 } });
      assert.deepStrictEqual(await store.checkpoint('backfill'), { offsets: { 1: 3 }, state: 'text' });
    });

    describe('checkpoint fencing (`previous`)', () => {
      const fenced = (
        offsets: Record<number, number>,
        previous: Record<number, number>,
        parts: Partial<StoreBatch> = {},
      ): StoreBatch =>
        makeBatch({ ...parts, checkpoint: { name: 'processor:p0', offsets, state: offsets, previous } });

      test('a chain of writes, each continuing from the last offsets, all commit', async () => {
        await store.write(fenced({ 0: 5, 2: 3 }, {}, { ticks: [testTick(0, T0, { id: 'a' })] }));
        // Key order differs from what was stored: offsets compare as maps.
        await store.write(
          fenced({ 0: 9, 2: 3 }, { 2: 3, 0: 5 }, { ticks: [testTick(1, T0 + 1, { id: 'b' })] }),
        );
        await store.write(
          fenced({ 0: 9, 2: 4 }, { 0: 9, 2: 3 }, { ticks: [testTick(2, T0 + 2, { id: 'c' })] }),
        );
        assert.deepStrictEqual(await store.checkpoint('processor:p0'), {
          offsets: { 0: 9, 2: 4 },
          state: { 0: 9, 2: 4 },
        });
        assert.deepStrictEqual(ids(await store.ticks('BTCUSDT', { limit: 10 })), ['a', 'b', 'c']);
      });

      test('a stale `previous` throws CheckpointConflictError and writes nothing', async () => {
        await store.write(fenced({ 0: 5 }, {}, { ticks: [testTick(0, T0, { id: 'first' })] }));
        await store.write(fenced({ 0: 8 }, { 0: 5 }, { ticks: [testTick(1, T0 + 1, { id: 'second' })] }));
        const snapshot = () => everything(store, 'processor:p0');
        const before = await snapshot();

        // A writer that still believes offset 5 is the last: another one has moved it to 8.
        const stale = fenced(
          { 0: 7 },
          { 0: 5 },
          {
            ticks: [testTick(2, T0 + 2, { id: 'stale', price: 999 }), testTick(0, T0, { symbol: 'ETHUSDT' })],
            candles: [testCandle(T0)],
            indicators: [testPoint(T0)],
            alerts: [testAlert(0, T0)],
            deadLetters: [makeDeadLetter(0)],
          },
        );
        const rejection = await store.write(stale).then(
          () => undefined,
          (error: unknown) => error,
        );
        assert.ok(rejection instanceof CheckpointConflictError, `got ${String(rejection)}`);
        assert.equal(rejection.name, 'CheckpointConflictError');
        assert.match(rejection.message, /processor:p0/);
        assert.match(rejection.message, /\{"0":5\}/);
        assert.match(rejection.message, /\{"0":8\}/);
        assert.deepStrictEqual(await snapshot(), before);

        // Neither a subset nor a superset of the stored offsets matches.
        await assert.rejects(store.write(fenced({ 0: 9 }, {})), CheckpointConflictError);
        await assert.rejects(store.write(fenced({ 0: 9 }, { 0: 8, 1: 0 })), CheckpointConflictError);
        assert.deepStrictEqual(await snapshot(), before);

        // The store is still usable, and the right `previous` commits.
        await store.write(fenced({ 0: 9 }, { 0: 8 }, { ticks: [testTick(3, T0 + 3, { id: 'third' })] }));
        assert.deepStrictEqual(ids(await store.ticks('BTCUSDT', { limit: 100 })), [
          'first',
          'second',
          'third',
        ]);
        assert.deepStrictEqual((await store.checkpoint('processor:p0'))?.offsets, { 0: 9 });
      });

      test('a first write with `{}` commits; a second "first" write conflicts', async () => {
        // A missing checkpoint counts as `{}`, so a non-empty `previous` on it conflicts too.
        await assert.rejects(store.write(fenced({ 0: 1 }, { 0: 0 })), CheckpointConflictError);
        assert.equal(await store.checkpoint('processor:p0'), undefined);

        await store.write(fenced({ 0: 4 }, {}, { ticks: [testTick(0, T0, { id: 'winner' })] }));
        await assert.rejects(
          store.write(fenced({ 0: 2 }, {}, { ticks: [testTick(1, T0, { id: 'loser' })] })),
          CheckpointConflictError,
        );
        assert.deepStrictEqual(await store.checkpoint('processor:p0'), {
          offsets: { 0: 4 },
          state: { 0: 4 },
        });
        assert.deepStrictEqual(ids(await store.ticks('BTCUSDT', { limit: 10 })), ['winner']);
        // Fencing is per checkpoint name: another partition's first write is unaffected.
        await store.write(
          makeBatch({ checkpoint: { name: 'processor:p1', offsets: { 1: 1 }, state: null, previous: {} } }),
        );
        assert.deepStrictEqual((await store.checkpoint('processor:p1'))?.offsets, { 1: 1 });
      });

      test('without `previous` a write overwrites whatever is stored, as before', async () => {
        await store.write(fenced({ 0: 5 }, {}));
        await store.write(
          makeBatch({ checkpoint: { name: 'processor:p0', offsets: { 0: 2 }, state: 'reset' } }),
        );
        assert.deepStrictEqual(await store.checkpoint('processor:p0'), { offsets: { 0: 2 }, state: 'reset' });
        // And fencing then continues from the overwritten offsets.
        await store.write(fenced({ 0: 3 }, { 0: 2 }));
        assert.deepStrictEqual((await store.checkpoint('processor:p0'))?.offsets, { 0: 3 });
      });
    });

    test('an unknown symbol has no latest tick and empty series', async () => {
      await store.write(
        makeBatch({ ticks: [testTick(0, T0)], candles: [testCandle(T0)], alerts: [testAlert(0, T0)] }),
      );
      assert.equal(await store.latest('NOPE'), undefined);
      assert.deepStrictEqual(await store.ticks('NOPE', { limit: 10 }), []);
      assert.deepStrictEqual(await store.candles('NOPE', '1m', { limit: 10 }), []);
      assert.deepStrictEqual(await store.indicators('NOPE', '1m', { limit: 10 }), []);
      assert.deepStrictEqual(await store.alerts({ symbol: 'NOPE', limit: 10 }), []);
    });

    test('reads made on an empty store do not disturb reads after a write', async () => {
      // Guards against cached query plans built for the empty tables (a real DuckDB failure).
      const readAll = async (): Promise<unknown[]> => [
        await store.ticks('BTCUSDT', { limit: 10 }),
        await store.ticks('BTCUSDT', { from: T0, limit: 10 }),
        await store.latest('BTCUSDT'),
        await store.symbols(),
        await store.candles('BTCUSDT', '1m', { limit: 10 }),
        await store.indicators('BTCUSDT', '1m', { to: T0 + MINUTE, limit: 10 }),
        await store.alerts({ symbol: 'BTCUSDT', limit: 10 }),
        await store.deadLetters(10),
        await store.checkpoint('processor'),
      ];
      assert.deepStrictEqual(await readAll(), [[], [], undefined, [], [], [], [], [], undefined]);
      const tick = testTick(0, T0, { symbol: 'BTCUSDT', id: 'a-longer-trade-id-than-before', price: 123.5 });
      const candle = testCandle(T0);
      const point = testPoint(T0, { sma20: 1.25 });
      const alert = testAlert(0, T0, {
        threshold: 120,
        message: 'a message long enough to overflow a short key',
      });
      const deadLetter = makeDeadLetter(0);
      await store.write(
        makeBatch({
          ticks: [tick],
          candles: [candle],
          indicators: [point],
          alerts: [alert],
          deadLetters: [deadLetter],
          checkpoint: { name: 'processor', offsets: { 0: 1 }, state: 'ok' },
        }),
      );
      const stored: StoredTick = {
        ts: T0,
        price: 123.5,
        size: 1,
        id: 'a-longer-trade-id-than-before',
        maShort: null,
        maLong: null,
        late: false,
      };
      assert.deepStrictEqual(await readAll(), [
        [stored],
        [stored],
        {
          symbol: 'BTCUSDT',
          ts: T0,
          price: 123.5,
          size: 1,
          maShort: null,
          maLong: null,
          source: 'synthetic',
        },
        [{ symbol: 'BTCUSDT', lastPrice: 123.5, lastTs: T0 }],
        [candle],
        [point],
        [alert],
        [deadLetter],
        { offsets: { 0: 1 }, state: 'ok' },
      ]);
    });

    test('a batch with only a checkpoint commits the checkpoint', async () => {
      await store.write(makeBatch({ checkpoint: { name: 'processor', offsets: { 0: 3 }, state: [1, 2] } }));
      assert.deepStrictEqual(await store.checkpoint('processor'), { offsets: { 0: 3 }, state: [1, 2] });
      assert.deepStrictEqual(await store.symbols(), []);
    });

    test('a write that fails leaves nothing of its batch behind', async () => {
      const good = makeBatch({
        ticks: [testTick(0, T0, { id: 'kept' })],
        candles: [testCandle(T0)],
        indicators: [testPoint(T0)],
        alerts: [testAlert(0, T0)],
        deadLetters: [makeDeadLetter(0)],
        checkpoint: { name: 'processor', offsets: { 0: 1 }, state: { n: 1 } },
      });
      await store.write(good);
      const snapshot = async () => [
        await store.ticks('ETHUSDT', { limit: 100 }),
        ...(await everything(store, 'processor')),
      ];
      const before = await snapshot();

      // Every part of the batch is valid except the checkpoint name, which a store checks last
      // or first: either way, nothing of the batch may stay.
      const bad = makeBatch({
        ticks: [testTick(1, T0 + 1, { id: 'lost', price: 999 }), testTick(0, T0, { symbol: 'ETHUSDT' })],
        candles: [testCandle(T0 + MINUTE)],
        indicators: [testPoint(T0 + MINUTE)],
        alerts: [testAlert(1, T0 + 1)],
        deadLetters: [makeDeadLetter(1)],
        checkpoint: { name: '', offsets: { 0: 3 }, state: { n: 2 } },
      });
      await assert.rejects(store.write(bad));
      assert.deepStrictEqual(await snapshot(), before);
      assert.equal(await store.checkpoint(''), undefined);

      // The store is still usable, and the next batch lands whole.
      await store.write({ ...bad, checkpoint: { name: 'processor', offsets: { 0: 3 }, state: { n: 2 } } });
      assert.deepStrictEqual(ids(await store.ticks('BTCUSDT', { limit: 100 })), ['kept', 'lost']);
      assert.deepStrictEqual(await store.checkpoint('processor'), { offsets: { 0: 3 }, state: { n: 2 } });
    });

    test('reads running alongside writes only ever see whole batches', async () => {
      const batchSize = 50;
      const writes: Promise<void>[] = [];
      const reads: Promise<number>[] = [];
      for (let b = 0; b < 10; b++) {
        const ticks = Array.from({ length: batchSize }, (_, i) =>
          testTick(b * batchSize + i, T0 + b * batchSize + i),
        );
        writes.push(
          store.write(
            makeBatch({ ticks, checkpoint: { name: 'p', offsets: { 0: (b + 1) * batchSize }, state: b } }),
          ),
        );
        reads.push(store.ticks('BTCUSDT', { limit: 100_000 }).then((ticks) => ticks.length));
      }
      await Promise.all(writes);
      for (const count of await Promise.all(reads)) assert.equal(count % batchSize, 0, `saw ${count} ticks`);
      assert.equal((await store.ticks('BTCUSDT', { limit: 100_000 })).length, 10 * batchSize);
    });

    describe('API keys', () => {
      // Hashes are opaque hex strings to the store; these stand in for sha256 digests.
      const readKey = {
        id: 'k1',
        name: 'dashboard',
        role: 'read',
        hash: 'aa'.repeat(32),
        createdAt: T0,
      } as const;
      const adminKey = {
        id: 'k0',
        name: 'ops',
        role: 'admin',
        hash: 'bb'.repeat(32),
        createdAt: T0,
      } as const;

      test('created keys are listed by createdAt then id, without their hash', async () => {
        await store.createKey(readKey);
        await store.createKey(adminKey);
        await store.createKey({
          id: 'k2',
          name: 'early',
          role: 'read',
          hash: 'cc'.repeat(32),
          createdAt: T0 - 1,
        });
        const listed = await store.listKeys();
        assert.deepStrictEqual(listed, [
          { id: 'k2', name: 'early', role: 'read', createdAt: T0 - 1, revokedAt: null },
          { id: 'k0', name: 'ops', role: 'admin', createdAt: T0, revokedAt: null },
          { id: 'k1', name: 'dashboard', role: 'read', createdAt: T0, revokedAt: null },
        ]);
      });

      test('findKeyByHash finds only an active key with exactly that hash', async () => {
        await store.createKey(readKey);
        await store.createKey(adminKey);
        assert.deepStrictEqual(await store.findKeyByHash(readKey.hash), {
          id: 'k1',
          name: 'dashboard',
          role: 'read',
          createdAt: T0,
          revokedAt: null,
        });
        assert.equal((await store.findKeyByHash(adminKey.hash))?.role, 'admin');
        assert.equal(await store.findKeyByHash('dd'.repeat(32)), undefined);
        assert.equal(await store.findKeyByHash(readKey.hash.toUpperCase()), undefined);
        assert.equal(await store.findKeyByHash(readKey.hash.slice(0, 10)), undefined);
        // A hash is a literal, never a pattern or SQL.
        assert.equal(await store.findKeyByHash("%' OR '1'='1"), undefined);
      });

      test('revokeKey revokes once, hides the key from findKeyByHash, keeps it in the list', async () => {
        await store.createKey(readKey);
        await store.createKey(adminKey);
        assert.equal(await store.revokeKey('k1', T0 + 5), true);
        assert.equal(await store.revokeKey('k1', T0 + 6), false);
        assert.equal(await store.revokeKey('nope', T0 + 6), false);
        assert.equal(await store.findKeyByHash(readKey.hash), undefined);
        assert.equal((await store.findKeyByHash(adminKey.hash))?.id, 'k0');
        assert.deepStrictEqual(
          (await store.listKeys()).map((key) => [key.id, key.revokedAt]),
          [
            ['k0', null],
            ['k1', T0 + 5],
          ],
        );
      });

      test('rejects a duplicate id or hash, an empty name and an unknown role, keeping nothing', async () => {
        await store.createKey(readKey);
        await assert.rejects(store.createKey({ ...adminKey, id: 'k1' }));
        await assert.rejects(store.createKey({ ...adminKey, hash: readKey.hash }));
        await assert.rejects(store.createKey({ ...adminKey, name: '' }));
        await assert.rejects(store.createKey({ ...adminKey, role: 'root' as 'admin' }));
        assert.deepStrictEqual(
          (await store.listKeys()).map((key) => key.id),
          ['k1'],
        );
        // Still usable afterwards.
        await store.createKey(adminKey);
        assert.equal((await store.listKeys()).length, 2);
      });

      (options.durable ? test : () => undefined)('keys and revocations survive a reopen', async () => {
        if (harness.reopen === undefined) throw new Error('a durable store under test must offer reopen()');
        await store.createKey(readKey);
        await store.createKey(adminKey);
        await store.revokeKey('k0', T0 + 9);
        await store.close();
        const reopened = await harness.reopen();
        opened.push(reopened);
        await reopened.open();
        assert.deepStrictEqual(await reopened.listKeys(), [
          { id: 'k0', name: 'ops', role: 'admin', createdAt: T0, revokedAt: T0 + 9 },
          { id: 'k1', name: 'dashboard', role: 'read', createdAt: T0, revokedAt: null },
        ]);
        assert.equal((await reopened.findKeyByHash(readKey.hash))?.id, 'k1');
        assert.equal(await reopened.findKeyByHash(adminKey.hash), undefined);
      });
    });

    (options.durable ? test : () => undefined)('data persists across close and reopen', async () => {
      if (harness.reopen === undefined) throw new Error('a durable store under test must offer reopen()');
      const batch = makeBatch({
        ticks: [testTick(0, T0, { id: 'x', maShort: 1.5 }), testTick(1, T0 + 1, { late: true })],
        candles: [testCandle(T0, { vwap: null })],
        indicators: [testPoint(T0, { rsi14: 42.5 })],
        alerts: [testAlert(0, T0, { threshold: 99 }), testAlert(1, T0 + 1)],
        deadLetters: [makeDeadLetter(0)],
        checkpoint: { name: 'processor', offsets: { 0: 2 }, state: { forming: [1, 2, 3] } },
      });
      await store.write(batch);
      const read = (from: Store) => everything(from, 'processor');
      const before = await read(store);
      assert.equal((before[0] as StoredTick[]).length, 2);

      await store.close();
      const reopened = await harness.reopen();
      opened.push(reopened);
      await reopened.open();
      assert.deepStrictEqual(await read(reopened), before);
      // And it keeps accepting writes after the restart.
      await reopened.write(makeBatch({ ticks: [testTick(2, T0 + 2, { id: 'after' })] }));
      assert.deepStrictEqual(ids(await reopened.ticks('BTCUSDT', { limit: 10 })), ['x', null, 'after']);
    });
  });
}
