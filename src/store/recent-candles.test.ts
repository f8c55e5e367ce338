import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { testCandle } from '../../test/support/records.ts';
import type { Candle, Interval, ProcessedTick } from '../core/records.ts';
import { fileStoreHarness, makeBatch, storeConformance } from './conformance.ts';
import { DuckDbStore } from './duckdb/duckdb-store.ts';
import { MemoryStore } from './memory/memory-store.ts';
import { type RecentCandlesStore, withRecentCandles } from './recent-candles.ts';
import type { RangeQuery, Store, StoreBatch } from './store.ts';

const MINUTE = 60_000;
const T0 = 1_000 * MINUTE;
const SYMBOLS = ['AAA', 'BBB', 'CCC'] as const;
const INTERVALS: readonly Interval[] = ['1m', '5m'];

function candle(
  symbol: string,
  interval: Interval,
  ts: number,
  price: number,
  vwap: number | null = price,
): Candle {
  const volume = vwap === null ? 0 : 2;
  return testCandle(ts, {
    symbol,
    interval,
    open: price,
    high: price + 1,
    low: price - 1,
    close: price + 0.5,
    volume,
    vwap,
  });
}

function batch(candles: readonly Candle[], checkpointName = 'processor'): StoreBatch {
  return makeBatch({ candles, checkpoint: { name: checkpointName, offsets: { 0: 1 }, state: null } });
}

/** `count` 1m candles of AAA, one a minute from T0 + first minutes. */
function minutes(first: number, count: number): Candle[] {
  return Array.from({ length: count }, (_, i) =>
    candle('AAA', '1m', T0 + (first + i) * MINUTE, 100 + first + i),
  );
}

// --- The property: whatever was written and however it is read, the answer is the inner store's. ---

/** One candle to write: which series, and how far its clock moves (<= 0: out of order or repeated). */
interface CandleStep {
  series: number;
  stepMs: number;
  price: number;
  vwap: number | null;
  trades: number;
}

type Operation =
  | { kind: 'write'; candles: CandleStep[]; fail: boolean }
  | { kind: 'query'; series: number; range: RangeSpec }
  | { kind: 'race'; series: number; range: RangeSpec; candles: CandleStep[] }
  | { kind: 'expire'; beforeMinute: number; race: RangeSpec | undefined; series: number }
  | { kind: 'reopen' };

const SERIES_COUNT = SYMBOLS.length * INTERVALS.length;
const seriesName = (series: number): [string, Interval] => [
  SYMBOLS[series % SYMBOLS.length]!,
  INTERVALS[Math.floor(series / SYMBOLS.length)]!,
];

const price = fc.double({ min: -1e6, max: 1e6, noNaN: true });
const candleStep = (disorder: boolean): fc.Arbitrary<CandleStep> =>
  fc.record({
    series: fc.integer({ min: 0, max: SERIES_COUNT - 1 }),
    // Mostly a few minutes forward, sometimes 1-2 ms so bounds one ms off a candle matter; with
    // disorder, now and then back in time or a repeat, so the ring has to give up and refill.
    stepMs: fc.oneof(
      { weight: 8, arbitrary: fc.integer({ min: 1, max: 3 }).map((m) => m * MINUTE) },
      { weight: 2, arbitrary: fc.constantFrom(1, 2) },
      { weight: disorder ? 1 : 0, arbitrary: fc.constantFrom(-4 * MINUTE, -MINUTE, -1, 0) },
    ),
    price,
    vwap: fc.option(price, { nil: null }),
    trades: fc.nat({ max: 1_000 }),
  });

/**
 * A bound: a ts around where the candles are (T0 .. ~T0 + 100 minutes, below and above them,
 * off-minute), or one ms around the ts of one of the newest candles the series holds, resolved when
 * the query runs.
 */
type BoundSpec = number | { nearCandle: number; deltaMs: number };
interface RangeSpec {
  from?: BoundSpec;
  to?: BoundSpec;
  limit: number;
}
const bound: fc.Arbitrary<BoundSpec> = fc.oneof(
  fc
    .tuple(fc.integer({ min: -5, max: 110 }), fc.constantFrom(0, 0, 0, -1, 1, 0.5))
    .map(([minute, offset]) => T0 + minute * MINUTE + offset),
  fc.record({ nearCandle: fc.nat({ max: 10 }), deltaMs: fc.constantFrom(-1, 0, 1) }),
);
const rangeQuery = (perSeries: number): fc.Arbitrary<RangeSpec> =>
  fc.record(
    {
      from: bound,
      to: bound,
      limit: fc.oneof(
        fc.constantFrom(0, 1, 2, perSeries - 1, perSeries, perSeries + 1, 1_000),
        fc.integer({ min: 0, max: 40 }),
      ),
    },
    { requiredKeys: ['limit'] },
  );

const operation = (perSeries: number, disorder: boolean): fc.Arbitrary<Operation> =>
  fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record({
        kind: fc.constant('write' as const),
        candles: fc.array(candleStep(disorder), { maxLength: 12 }),
        fail: fc.integer({ min: 0, max: 9 }).map((draw) => draw < 2),
      }),
    },
    {
      weight: 6,
      arbitrary: fc.record({
        kind: fc.constant('query' as const),
        series: fc.integer({ min: 0, max: SERIES_COUNT - 1 }),
        range: rangeQuery(perSeries),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('race' as const),
        series: fc.integer({ min: 0, max: SERIES_COUNT - 1 }),
        range: rangeQuery(perSeries),
        candles: fc.array(candleStep(disorder), { minLength: 1, maxLength: 6 }),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('expire' as const),
        beforeMinute: fc.integer({ min: -2, max: 110 }),
        race: fc.option(rangeQuery(perSeries), { nil: undefined }),
        series: fc.integer({ min: 0, max: SERIES_COUNT - 1 }),
      }),
    },
    { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
  );

/**
 * Runs the operations against `inner` wrapped by the decorator and compares every read with the
 * inner store's own answer. `allowRepeats` is off for DuckDB: it orders rows that share a ts
 * arbitrarily, so two reads of the same store need not agree and there is nothing to compare.
 */
async function checkAgainstInner(
  inner: Store,
  perSeries: number,
  operations: readonly Operation[],
  allowRepeats: boolean,
): Promise<RecentCandlesStore> {
  const store = withRecentCandles(inner, { perSeries });
  const clocks = Array.from({ length: SERIES_COUNT }, () => T0);
  const used = Array.from({ length: SERIES_COUNT }, () => new Set<number>());
  const toCandles = (steps: readonly CandleStep[]): Candle[] => {
    const out: Candle[] = [];
    for (const step of steps) {
      const ts = clocks[step.series]! + step.stepMs;
      if (!allowRepeats && used[step.series]!.has(ts)) continue;
      clocks[step.series] = Math.max(clocks[step.series]!, ts);
      used[step.series]!.add(ts);
      const [symbol, interval] = seriesName(step.series);
      out.push({ ...candle(symbol, interval, ts, step.price, step.vwap), trades: step.trades });
    }
    return out;
  };
  const resolve = (series: number, spec: BoundSpec | undefined): number | undefined => {
    if (typeof spec !== 'object') return spec;
    const held = [...used[series]!].sort((a, b) => a - b);
    // Counted from the newest: the ring's edges (perSeries <= 8 back) are where mistakes would be.
    return held.length === 0 ? T0 : held[held.length - 1 - (spec.nearCandle % held.length)]! + spec.deltaMs;
  };
  const compare = async (series: number, spec: RangeSpec, context: string) => {
    const [symbol, interval] = seriesName(series);
    const range: RangeQuery = { limit: spec.limit };
    if (spec.from !== undefined) range.from = resolve(series, spec.from);
    if (spec.to !== undefined) range.to = resolve(series, spec.to);
    const expected = await inner.candles(symbol, interval, range);
    const actual = await store.candles(symbol, interval, range);
    assert.deepStrictEqual(actual, expected, `${context}: ${symbol} ${interval} ${JSON.stringify(range)}`);
  };

  await store.open();
  try {
    for (const [index, op] of operations.entries()) {
      if (op.kind === 'write') {
        const usedBefore = used.map((set) => new Set(set));
        const candles = toCandles(op.candles);
        if (op.fail) {
          // An empty checkpoint name is refused by every store, after the candles were staged.
          await assert.rejects(store.write(batch(candles, '')));
          used.splice(0, used.length, ...usedBefore);
        } else await store.write(batch(candles));
      } else if (op.kind === 'query') {
        await compare(op.series, op.range, `op ${index}`);
      } else if (op.kind === 'race') {
        // The read may fill its ring while the write commits: whatever it answered, the rings
        // must still mirror the store afterwards.
        const [symbol, interval] = seriesName(op.series);
        await Promise.all([
          store.candles(symbol, interval, { limit: op.range.limit }),
          store.write(batch(toCandles(op.candles))),
        ]);
        await compare(op.series, op.range, `after race ${index}`);
      } else if (op.kind === 'expire') {
        // Retention deletes the oldest candles; with `race`, while a read fills its ring.
        const cutoffs = { candlesBeforeMs: T0 + op.beforeMinute * MINUTE };
        const [symbol, interval] = seriesName(op.series);
        await Promise.all([
          op.race && store.candles(symbol, interval, { limit: op.race.limit }),
          store.deleteExpired(cutoffs),
        ]);
        for (const set of used) for (const ts of [...set]) if (ts < cutoffs.candlesBeforeMs) set.delete(ts);
        if (op.race) await compare(op.series, op.race, `after expire ${index}`);
      } else {
        await store.close();
        await store.open();
      }
    }
    for (let series = 0; series < SERIES_COUNT; series++) {
      await compare(series, { limit: 1_000 }, 'final');
      await compare(series, { limit: perSeries }, 'final');
    }
  } finally {
    await store.close();
  }
  return store;
}

// The wrapper is a Store like any other (#16): the whole conformance suite runs through it.
storeConformance('recent candles over memory', async () => ({
  store: withRecentCandles(new MemoryStore(), { perSeries: 2 }),
  cleanup: async () => {},
}));

storeConformance(
  'recent candles over a duckdb file',
  () => fileStoreHarness((file) => withRecentCandles(new DuckDbStore({ path: file }), { perSeries: 2 })),
  { durable: true },
);

/** A ring size of 1..8 candles and up to `maxLength` operations against it. */
const ringAndOperations = (maxLength: number) =>
  fc
    .integer({ min: 1, max: 8 })
    .chain((perSeries) =>
      fc.tuple(fc.constant(perSeries), fc.array(operation(perSeries, true), { maxLength })),
    );

describe('withRecentCandles answers exactly what the inner store answers', () => {
  test('over a MemoryStore, with out-of-order and repeated candles', async () => {
    let hits = 0;
    let misses = 0;
    await fc.assert(
      fc.asyncProperty(ringAndOperations(60), async ([perSeries, operations]) => {
        const store = await checkAgainstInner(new MemoryStore(), perSeries, operations, true);
        hits += store.stats().hits;
        misses += store.stats().misses;
      }),
      { numRuns: 300 },
    );
    // Otherwise the property would hold trivially by always asking the inner store.
    // (About 40 % hits: rings of 1..8 candles against ranges anywhere over ~100 minutes.)
    assert.ok(hits > (hits + misses) / 5, `hits ${hits}, misses ${misses}`);
    assert.ok(misses > 0, 'no query fell back: small rings and old ranges should');
  });

  test('over an in-memory DuckDbStore', async () => {
    let hits = 0;
    await fc.assert(
      fc.asyncProperty(ringAndOperations(40), async ([perSeries, operations]) => {
        const store = await checkAgainstInner(
          new DuckDbStore({ path: ':memory:' }),
          perSeries,
          operations,
          false,
        );
        hits += store.stats().hits;
      }),
      { numRuns: 40 },
    );
    assert.ok(hits > 0);
  });
});

/** A ring of 5 candles a series over an open MemoryStore, `first` written through it. */
async function ringOfFive(first: Candle[]) {
  const inner = new MemoryStore();
  const store = withRecentCandles(inner, { perSeries: 5 });
  await store.open();
  await store.write(batch(first));
  return { inner, store };
}

describe('withRecentCandles', () => {
  test('serves the last candles from memory and falls back for ranges older than its ring', async () => {
    const { store } = await ringOfFive(minutes(0, 3));
    // First read fills the ring from the store (3 < 5 candles: the ring holds the whole series).
    assert.deepStrictEqual(await store.candles('AAA', '1m', { limit: 10 }), minutes(0, 3));
    assert.deepStrictEqual(store.stats(), { hits: 1, misses: 0, loads: 1 });
    // Writes after the fill extend the ring; 10 candles in all, the ring keeps the last 5 (5..9).
    await store.write(batch(minutes(3, 7)));
    assert.deepStrictEqual(await store.candles('AAA', '1m', { limit: 4 }), minutes(6, 4));
    assert.deepStrictEqual(
      await store.candles('AAA', '1m', { from: T0 + 5 * MINUTE, limit: 100 }),
      minutes(5, 5),
    );
    assert.deepStrictEqual(store.stats(), { hits: 3, misses: 0, loads: 1 });
    // Minute 4 left the ring: a range that needs it goes to the store.
    assert.deepStrictEqual(
      await store.candles('AAA', '1m', { from: T0 + 4 * MINUTE, limit: 2 }),
      minutes(4, 2),
    );
    assert.deepStrictEqual(await store.candles('AAA', '1m', { limit: 6 }), minutes(4, 6));
    assert.deepStrictEqual(store.stats(), { hits: 3, misses: 2, loads: 1 });
    await store.close();
  });

  test('keeps a null vwap null, and other intervals and symbols apart', async () => {
    const store = withRecentCandles(new MemoryStore());
    await store.open();
    const quiet = candle('AAA', '5m', T0, 10, null);
    await store.write(batch([candle('BBB', '5m', T0, 20), quiet, candle('AAA', '1m', T0, 30)]));
    assert.deepStrictEqual(await store.candles('AAA', '5m', { limit: 10 }), [quiet]);
    await store.write(batch([candle('AAA', '5m', T0 + 5 * MINUTE, 11, null)]));
    const answer = await store.candles('AAA', '5m', { limit: 10 });
    assert.deepStrictEqual(answer, [quiet, candle('AAA', '5m', T0 + 5 * MINUTE, 11, null)]);
    assert.equal(store.stats().hits, 2);
    await store.close();
  });

  test('a series the store has no candle of answers empty in one read, and keeps no ring', async () => {
    const store = withRecentCandles(new MemoryStore(), { perSeries: 5 });
    await store.open();
    assert.deepStrictEqual(await store.candles('NOPE', '1m', { limit: 10 }), []);
    assert.deepStrictEqual(store.stats(), { hits: 1, misses: 0, loads: 1 });
    assert.deepStrictEqual(await store.candles('AAA', '1m', { limit: 10 }), []);
    await store.write(batch(minutes(0, 2)));
    // Nothing was kept for AAA while it was empty, so this read fills afresh (a third load).
    assert.deepStrictEqual(await store.candles('AAA', '1m', { limit: 10 }), minutes(0, 2));
    assert.deepStrictEqual(store.stats(), { hits: 3, misses: 0, loads: 3 });
    await store.close();
  });

  test('a failed write leaves the ring as it was', async () => {
    const { store } = await ringOfFive(minutes(0, 3));
    await store.candles('AAA', '1m', { limit: 10 });
    await assert.rejects(store.write(batch(minutes(3, 2), '')), /checkpoint name/);
    // Still answered from the ring (a hit), and without the refused candles.
    assert.deepStrictEqual(await store.candles('AAA', '1m', { limit: 10 }), minutes(0, 3));
    assert.deepStrictEqual(store.stats(), { hits: 2, misses: 0, loads: 1 });
    // The ring still lines up with the store: the next committed minute follows on.
    await store.write(batch(minutes(3, 1)));
    assert.deepStrictEqual(await store.candles('AAA', '1m', { limit: 10 }), minutes(0, 4));
    await store.close();
  });

  test('drops a fill that raced a committed write, instead of missing that write', async () => {
    // The inner read takes its snapshot, then waits: the write commits in between.
    let release = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    class SlowReads extends MemoryStore {
      override async candles(symbol: string, interval: Interval, range: RangeQuery): Promise<Candle[]> {
        const answer = await super.candles(symbol, interval, range);
        await gate;
        return answer;
      }
    }
    const store = withRecentCandles(new SlowReads(), { perSeries: 5 });
    await store.open();
    await store.write(batch(minutes(0, 2)));
    const read = store.candles('AAA', '1m', { limit: 10 });
    await store.write(batch(minutes(2, 1)));
    release();
    // The fill saw 2 candles; the store has 3. The read falls back to the store, which has all 3.
    assert.deepStrictEqual(await read, minutes(0, 3));
    assert.deepStrictEqual(await store.candles('AAA', '1m', { limit: 10 }), minutes(0, 3));
    await store.close();
  });

  test('a write that repeats a ts makes the ring refill from the store', async () => {
    const { inner, store } = await ringOfFive(minutes(0, 3));
    await store.candles('AAA', '1m', { limit: 10 });
    await store.write(batch([candle('AAA', '1m', T0 + MINUTE, 7)]));
    // The MemoryStore keeps both candles of minute 1; the ring must not pretend otherwise.
    const expected = await inner.candles('AAA', '1m', { limit: 10 });
    assert.equal(expected.length, 4);
    assert.deepStrictEqual(await store.candles('AAA', '1m', { limit: 10 }), expected);
    await store.close();
  });

  test('forwards a range the stores refuse, so the error is the inner store`s', async () => {
    const store = withRecentCandles(new MemoryStore());
    await store.open();
    await store.write(batch(minutes(0, 1)));
    await assert.rejects(
      store.candles('AAA', '1m', { from: Number.NaN, limit: 1 }),
      /range\.from must be a number/,
    );
    await store.close();
  });

  test('reopening forgets the rings: a DuckDB file written meanwhile by another store is read afresh', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'streamlines-recent-candles-'));
    try {
      const file = path.join(dir, 'store.duckdb');
      const store = withRecentCandles(new DuckDbStore({ path: file }), { perSeries: 5 });
      await store.open();
      await store.write(batch(minutes(0, 3)));
      assert.deepStrictEqual(await store.candles('AAA', '1m', { limit: 10 }), minutes(0, 3));
      await store.close();

      const other = new DuckDbStore({ path: file });
      await other.open();
      await other.write(batch(minutes(3, 4)));
      await other.close();

      await store.open();
      assert.deepStrictEqual(await store.candles('AAA', '1m', { limit: 10 }), minutes(0, 7));
      assert.deepStrictEqual(await store.candles('AAA', '1m', { limit: 2 }), minutes(5, 2));
      assert.equal(store.stats().loads, 2);
      await store.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('latest answers what the store holds: loaded once, then kept current by writes', async () => {
    const inner = new MemoryStore();
    await inner.open();
    const tick = (symbol: string, seq: number, price: number): ProcessedTick => ({
      source: 's',
      symbol,
      ts: T0 + seq,
      price,
      size: 1,
      receivedAt: T0,
      seq,
      maShort: null,
      maLong: price,
      late: false,
    });
    // Written before the decorator exists: the first read must come from the store.
    await inner.write(batch([]));
    await inner.write({ ...batch([]), ticks: [tick('AAA', 0, 10), tick('BBB', 1, 20)] });
    let innerReads = 0;
    const counting = new Proxy(inner, {
      get(object, property) {
        if (property === 'latest') innerReads++;
        const value = Reflect.get(object, property, object);
        return typeof value === 'function' ? value.bind(object) : value;
      },
    });
    const store = withRecentCandles(counting);
    assert.deepStrictEqual(await store.latest('AAA'), await inner.latest('AAA'));
    await store.latest('AAA');
    assert.equal(innerReads, 1, 'the second read is answered from memory');
    // Batches in log order: the last tick of a symbol in the last batch is its latest, as in the store.
    await store.write({ ...batch([]), ticks: [tick('AAA', 2, 11), tick('CCC', 3, 30), tick('AAA', 4, 12)] });
    for (const symbol of ['AAA', 'BBB', 'CCC', 'ZZZ']) {
      assert.deepStrictEqual(await store.latest(symbol), await inner.latest(symbol), symbol);
    }
    // A refused write changes nothing.
    await assert.rejects(store.write({ ...batch([], ''), ticks: [tick('AAA', 5, 99)] }));
    assert.equal((await store.latest('AAA'))?.price, 12);
    // A caller changing the answer does not change the cache.
    const answer = await store.latest('AAA');
    if (answer) answer.price = -1;
    assert.equal((await store.latest('AAA'))?.price, 12);
    await store.close();
  });

  test('rejects a ring size that is not a positive integer', () => {
    assert.throws(() => withRecentCandles(new MemoryStore(), { perSeries: 0 }), RangeError);
    assert.throws(() => withRecentCandles(new MemoryStore(), { perSeries: 1.5 }), RangeError);
  });
});
