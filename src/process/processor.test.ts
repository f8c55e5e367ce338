import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertClose, CLOSES } from '../../test/fixtures/indicator-closes.ts';
import type { Candle, IngestEntry, Interval, ProcessedTick } from '../core/records.ts';
import { INTERVAL_MS, INTERVALS } from '../core/records.ts';
import {
  ALERT_SEQ_STRIDE,
  DEFAULT_ANOMALY,
  emptyOutput,
  type ProcessConfig,
  type ProcessOutput,
  Processor,
  type ProcessorSnapshot,
} from './processor.ts';

/** An hour boundary (472 222 h since the epoch): every interval's bucket starts here. */
const T0 = 1_699_999_200_000;
const CONFIG: ProcessConfig = { latenessMs: 10_000, priceRules: [], anomaly: DEFAULT_ANOMALY };

type TickEntry = Extract<IngestEntry, { kind: 'tick' }>;

function tick(symbol: string, ts: number, price: number, size = 1, id?: string): TickEntry {
  const entry: TickEntry = { kind: 'tick', source: 'test', symbol, ts, price, size, receivedAt: ts + 5 };
  if (id !== undefined) entry.id = id;
  return entry;
}

/** Applies entries at offsets 0, 1, 2... */
function run(entries: IngestEntry[], config: ProcessConfig = CONFIG, processor = new Processor(config)) {
  const out = emptyOutput();
  entries.forEach((entry, offset) => {
    processor.apply(entry, offset, out);
  });
  return { processor, out };
}

function lateFlags(out: ProcessOutput): boolean[] {
  return out.ticks.map((t) => t.late);
}

function summary(candles: Candle[]): [Interval, number, number, number, boolean][] {
  return candles.map((c) => [c.interval, c.ts - T0, c.close, c.trades, c.final]);
}

test('a processed tick is the tick plus seq (= offset), the averages and late', () => {
  const { out } = run([
    tick('BTCUSDT', T0 + 1, 10, 2, 'a1'),
    { ...tick('BTCUSDT', T0 + 2, 11), side: 'sell' },
  ]);
  const expected: ProcessedTick[] = [
    {
      source: 'test',
      symbol: 'BTCUSDT',
      ts: T0 + 1,
      price: 10,
      size: 2,
      id: 'a1',
      receivedAt: T0 + 6,
      seq: 0,
      maShort: null,
      maLong: null,
      late: false,
    },
    {
      source: 'test',
      symbol: 'BTCUSDT',
      ts: T0 + 2,
      price: 11,
      size: 1,
      side: 'sell',
      receivedAt: T0 + 7,
      seq: 1,
      maShort: null,
      maLong: null,
      late: false,
    },
  ];
  assert.deepEqual(out.ticks, expected);
  assert.deepEqual(Object.keys(out.ticks[0]!).includes('side'), false);
});

test('maShort/maLong warm up at 5 and 20 prices per symbol; late ticks count', () => {
  const entries: IngestEntry[] = [];
  for (let i = 1; i <= 21; i++) {
    entries.push(tick('AAA', T0 + i * 1_000, i));
    entries.push(tick('BBB', T0 + i * 1_000, 1_000 + i));
  }
  // 10 minutes later, then a tick for the first minute: late, yet it is the 22nd price of AAA.
  entries.push(tick('AAA', T0 + 600_000, 30), tick('AAA', T0 + 500, 40));
  const { out } = run(entries);
  const aaa = out.ticks.filter((t) => t.symbol === 'AAA');
  assert.deepEqual(
    aaa.slice(0, 5).map((t) => t.maShort),
    [null, null, null, null, 3],
  );
  assert.equal(aaa[18]!.maLong, null);
  // By hand: prices 1..20 -> mean 10.5; 2..21 -> 11.5; last 5 of 1..21 = 17..21 -> 19.
  assert.equal(aaa[19]!.maLong, 10.5);
  assert.equal(aaa[20]!.maLong, 11.5);
  assert.equal(aaa[20]!.maShort, 19);
  // BBB is independent: last 5 of 1001..1021 -> 1019.
  assert.equal(out.ticks.filter((t) => t.symbol === 'BBB')[20]!.maShort, 1019);
  const late = aaa[22]!;
  assert.equal(late.late, true);
  // Prices 1..21, 30, 40: last 5 = 19, 20, 21, 30, 40 -> 130 / 5 = 26; last 20 = 4..21, 30, 40 -> 295 / 20.
  assert.equal(late.maShort, 26);
  assert.equal(late.maLong, 14.75);
});

test('late iff bucket + 60 s <= W, with W = max ts - lateness taken before the tick', () => {
  const { out, processor } = run([
    tick('X', T0 + 30_000, 1),
    tick('X', T0 + 69_999, 2), // W before = T0 + 20 000; after = T0 + 59 999: minute 0 stays open
    tick('X', T0 + 59_000, 3), // bucket end T0 + 60 000 > W = T0 + 59 999: not late
    tick('X', T0 + 70_000, 4), // W after = T0 + 60 000 = end of minute 0: it closes
    tick('X', T0 + 59_999, 5), // bucket end == W: late (the equality is late)
    tick('X', T0 + 60_000, 6), // minute 1, end T0 + 120 000 > W: not late
  ]);
  assert.deepEqual(lateFlags(out), [false, false, false, false, true, false]);
  assert.deepEqual(summary(out.candles), [['1m', 0, 3, 2, true]]);
  assert.equal(processor.counters().late, 1);
  // The late tick entered no candle of any interval: minute 1 holds ticks 2, 4 and 6; 5m holds 2 + 3.
  assert.deepEqual(
    processor.formingCandles('X', '1m').map((c) => [c.ts - T0, c.trades, c.close]),
    [[60_000, 3, 4]],
  );
  assert.equal(processor.formingCandles('X', '5m')[0]?.trades, 5);
});

test('the first tick of a symbol is never late (W = -Infinity), whatever the others did', () => {
  const { out } = run([tick('A', T0 + 3_600_000, 1), tick('B', T0, 1)]);
  assert.deepEqual(lateFlags(out), [false, false]);
});

test('lateness 0: a window closes as soon as a tick reaches its end', () => {
  const config = { ...CONFIG, latenessMs: 0 };
  const { out } = run(
    [
      tick('X', T0 + 59_999, 1),
      tick('X', T0 + 60_000, 2),
      tick('X', T0 + 59_999, 3),
      tick('X', T0 + 60_000, 4),
    ],
    config,
  );
  assert.deepEqual(lateFlags(out), [false, false, true, false]);
  assert.deepEqual(summary(out.candles), [['1m', 0, 1, 1, true]]);
});

test('a clock entry closes a quiet symbol once wall clock passes window end + lateness', () => {
  const entries: IngestEntry[] = [tick('QUIET', T0 + 10_000, 1), tick('BUSY', T0 + 10_000, 1)];
  const { out, processor } = run(entries);
  const more = emptyOutput();
  processor.apply({ kind: 'clock', wallMs: T0 + 69_999 }, 2, more);
  assert.equal(more.candles.length, 0);
  processor.apply({ kind: 'clock', wallMs: T0 + 70_000 }, 3, more);
  // Both symbols' first minutes close (BUSY is just as quiet); no longer interval has ended yet.
  assert.deepEqual(
    more.candles.map((c) => [c.symbol, c.interval, c.ts - T0, c.final]),
    [
      ['QUIET', '1m', 0, true],
      ['BUSY', '1m', 0, true],
    ],
  );
  assert.equal(more.indicators.length, 2);
  // A tick arriving later for that minute is late; the next minute is not.
  processor.apply(tick('QUIET', T0 + 20_000, 2), 4, more);
  processor.apply(tick('QUIET', T0 + 60_000, 3), 5, more);
  assert.deepEqual(lateFlags(more), [true, false]);
  assert.deepEqual(
    processor.formingCandles('QUIET', '5m').map((c) => [c.ts - T0, c.trades]),
    [[0, 2]],
  );
  assert.equal(processor.counters().candlesClosed, 2);
  assert.equal(out.candles.length, 0);
});

test('an end entry makes every open window of every symbol and interval final; later ticks are late', () => {
  const { out, processor } = run([
    tick('A', T0 + 1_000, 1),
    tick('A', T0 + 2_000_000, 2),
    tick('B', T0 + 5_000, 3),
    { kind: 'end', source: 'replay' },
    tick('A', T0 + 9_000_000, 4),
    tick('C', T0 + 9_000_000, 5),
  ]);
  assert.deepEqual(
    out.candles.map((c) => [c.symbol, c.interval, c.ts - T0, c.trades, c.final]),
    [
      // Closed by A's second tick (W = T0 + 1 990 000), which leaves the first hour open.
      ['A', '1m', 0, 1, true],
      ['A', '5m', 0, 1, true],
      ['A', '15m', 0, 1, true],
      // Closed by the end entry.
      ['A', '1m', 1_980_000, 1, true],
      ['A', '5m', 1_800_000, 1, true],
      ['A', '15m', 1_800_000, 1, true],
      ['A', '1h', 0, 2, true],
      // T0 is 22:00 UTC: its day began 22 h earlier.
      ['A', '1d', -79_200_000, 2, true],
      ['B', '1m', 0, 1, true],
      ['B', '5m', 0, 1, true],
      ['B', '15m', 0, 1, true],
      ['B', '1h', 0, 1, true],
      ['B', '1d', -79_200_000, 1, true],
    ],
  );
  assert.deepEqual(lateFlags(out), [false, false, false, true, true]);
  for (const interval of INTERVALS) assert.deepEqual(processor.formingCandles('A', interval), []);
  assert.equal(processor.counters().candlesClosed, 13);
  // One indicator point per final candle, of that candle's symbol, interval and ts.
  assert.deepEqual(
    out.indicators.map((p) => [p.symbol, p.interval, p.ts]),
    out.candles.map((c) => [c.symbol, c.interval, c.ts]),
  );
});

/** A deterministic pseudo-random stream: several symbols, disorder beyond the lateness, zero sizes. */
function randomEntries(count: number, seed: number): IngestEntry[] {
  let state = seed;
  const random = () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
  const symbols = ['AAA', 'BBB', 'CCC'];
  const prices = [100, 50, 10];
  const entries: IngestEntry[] = [];
  let ts = T0 + 12_345;
  for (let i = 0; i < count; i++) {
    const s = Math.floor(random() * symbols.length);
    ts += Math.floor(random() * 4_000);
    // Mostly small disorder, sometimes more than the 10 s lateness, sometimes an exact duplicate ts.
    const roll = random();
    const eventTs =
      roll < 0.05
        ? ts - 20_000 - Math.floor(random() * 60_000)
        : roll < 0.1
          ? ts
          : ts - Math.floor(random() * 8_000);
    prices[s] = prices[s]! * (1 + (random() - 0.5) * 0.01);
    // CCC trades with size 0 only (its candles have no vwap); the others now and then.
    const size = s === 2 || random() < 0.05 ? 0 : Math.round(random() * 1_000) / 100;
    entries.push(tick(symbols[s]!, eventTs, prices[s]!, size, random() < 0.5 ? String(i) : undefined));
  }
  return entries;
}

/** Straightforward reference candles from a list of ticks (in log order) of one symbol. */
function referenceCandles(
  ticks: ProcessedTick[],
  interval: Interval,
): Map<number, Omit<Candle, 'symbol' | 'interval' | 'final'>> {
  const intervalMs = INTERVAL_MS[interval];
  const groups = new Map<number, ProcessedTick[]>();
  for (const t of ticks) {
    const bucket = t.ts - (t.ts % intervalMs);
    groups.set(bucket, [...(groups.get(bucket) ?? []), t]);
  }
  const candles = new Map<number, Omit<Candle, 'symbol' | 'interval' | 'final'>>();
  for (const [bucket, group] of groups) {
    const minTs = Math.min(...group.map((t) => t.ts));
    const maxTs = Math.max(...group.map((t) => t.ts));
    const volume = group.reduce((sum, t) => sum + t.size, 0);
    candles.set(bucket, {
      ts: bucket,
      open: group.find((t) => t.ts === minTs)!.price,
      close: group.findLast((t) => t.ts === maxTs)!.price,
      high: Math.max(...group.map((t) => t.price)),
      low: Math.min(...group.map((t) => t.price)),
      volume,
      trades: group.length,
      vwap: volume === 0 ? null : group.reduce((sum, t) => sum + t.price * t.size, 0) / volume,
    });
  }
  return candles;
}

function assertRelative(actual: number | null, expected: number | null, message: string): void {
  if (expected === null || actual === null) {
    assert.equal(actual, expected, message);
    return;
  }
  assert.ok(
    Math.abs(actual - expected) <= 1e-9 * Math.max(1, Math.abs(expected)),
    `${message}: ${actual} vs ${expected}`,
  );
}

test('candles of every interval match a reference over the non-late ticks; 5m/15m/1h/1d are the 1m roll-up', () => {
  for (const seed of [1, 2, 3]) {
    const entries = randomEntries(3_000, seed);
    entries.push({ kind: 'end', source: 'replay' });
    const { out } = run(entries);
    assert.ok(
      out.ticks.some((t) => t.late),
      'the stream has late ticks',
    );
    assert.ok(
      out.candles.some((c) => c.vwap === null),
      'the stream has a zero-volume candle',
    );
    for (const symbol of ['AAA', 'BBB', 'CCC']) {
      const onTime = out.ticks.filter((t) => t.symbol === symbol && !t.late);
      const minutes = out.candles.filter((c) => c.symbol === symbol && c.interval === '1m');
      for (const interval of INTERVALS) {
        const candles = out.candles.filter((c) => c.symbol === symbol && c.interval === interval);
        const reference = referenceCandles(onTime, interval);
        assert.equal(candles.length, reference.size, `${symbol} ${interval} count`);
        assert.deepEqual(
          candles.map((c) => c.ts),
          [...reference.keys()].sort((a, b) => a - b),
          'ascending, one per bucket with trades',
        );
        for (const candle of candles) {
          const expected = reference.get(candle.ts)!;
          const at = `${symbol} ${interval} ${candle.ts}`;
          assert.equal(candle.final, true);
          assert.deepEqual(
            [candle.open, candle.close, candle.high, candle.low, candle.trades],
            [expected.open, expected.close, expected.high, expected.low, expected.trades],
            at,
          );
          assertRelative(candle.volume, expected.volume, `${at} volume`);
          assertRelative(candle.vwap, expected.vwap, `${at} vwap`);
          // Roll-up of the 1m candles inside it.
          const inside = minutes.filter((m) => m.ts >= candle.ts && m.ts < candle.ts + INTERVAL_MS[interval]);
          const volume = inside.reduce((sum, m) => sum + m.volume, 0);
          assert.equal(candle.open, inside[0]!.open, at);
          assert.equal(candle.close, inside[inside.length - 1]!.close, at);
          assert.equal(candle.high, Math.max(...inside.map((m) => m.high)), at);
          assert.equal(candle.low, Math.min(...inside.map((m) => m.low)), at);
          assert.equal(
            candle.trades,
            inside.reduce((sum, m) => sum + m.trades, 0),
            at,
          );
          assertRelative(candle.volume, volume, `${at} rolled-up volume`);
        }
      }
    }
  }
});

test('indicator points per final candle match the reference values', () => {
  // One tick per minute at CLOSES[i]; the 1m indicators then see CLOSES as closes.
  const entries: IngestEntry[] = CLOSES.map((price, i) => tick('X', T0 + i * 60_000 + 1_000, price));
  entries.push({ kind: 'end', source: 'replay' });
  const { out } = run(entries);
  const minutes = out.indicators.filter((p) => p.interval === '1m');
  assert.equal(minutes.length, CLOSES.length);
  assert.deepEqual(
    minutes.map((p) => p.ts),
    CLOSES.map((_, i) => T0 + i * 60_000),
  );
  // Reference values: the Python snippets in indicators/*.test.ts.
  assert.equal(minutes[13]!.rsi14, null);
  assertClose(minutes[14]!.rsi14, 70.46413502109705);
  assert.equal(minutes[18]!.sma20, null);
  assertClose(minutes[19]!.sma20, 45.409);
  assertClose(minutes[24]!.ema20, 45.66794031073179);
  assertClose(minutes[24]!.bbUpper, 46.73602100813846);
  assertClose(minutes[24]!.bbLower, 45.069978991861554);
  // 25 minutes make 5 final 5m candles, whose closes are CLOSES[4], CLOSES[9], ...
  assert.deepEqual(
    out.candles.filter((c) => c.interval === '5m').map((c) => c.close),
    [CLOSES[4], CLOSES[9], CLOSES[14], CLOSES[19], CLOSES[24]],
  );
  assert.equal(out.indicators.filter((p) => p.interval === '5m').length, 5);
});

test('price rules fire on crossing, not on touching; first tick never fires; late ticks count', () => {
  const config: ProcessConfig = {
    ...CONFIG,
    priceRules: [
      { symbol: ' btcusdt ', above: 100 },
      { symbol: 'BTCUSDT', below: 100 },
    ],
  };
  const prices = [101, 100, 100.5, 101, 100, 99.5, 100, 99, 101];
  const entries = prices.map((price, i) => tick('BTCUSDT', T0 + 100_000 + i * 1_000, price));
  entries.push(tick('ETHUSDT', T0, 50), tick('ETHUSDT', T0, 150));
  entries.push(tick('BTCUSDT', T0, 99)); // late, yet it is the previous tick of the next one
  entries.push(tick('BTCUSDT', T0 + 200_000, 100.01));
  const { out, processor } = run(entries, config);
  // By hand: 101 first (no fire); 101->100 touches (no); 100->100.5 above; 101->100 touches (no);
  // 100->99.5 below; 99.5->100 (no); 100->99 below; 99->101 above; 101->99 (late) below; 99->100.01 above.
  // Seq = the firing tick's offset (entries 2, 5, 7, 8, 11, 12) times ALERT_SEQ_STRIDE.
  assert.deepEqual(
    out.alerts.map((a) => [a.kind, a.price, a.threshold, a.seq / ALERT_SEQ_STRIDE]),
    [
      ['price_above', 100.5, 100, 2],
      ['price_below', 99.5, 100, 5],
      ['price_below', 99, 100, 7],
      ['price_above', 101, 100, 8],
      ['price_below', 99, 100, 11],
      ['price_above', 100.01, 100, 12],
    ],
  );
  assert.equal(out.ticks[11]!.late, true);
  assert.deepEqual(out.alerts[0], {
    seq: 2 * ALERT_SEQ_STRIDE,
    ts: T0 + 102_000,
    symbol: 'BTCUSDT',
    kind: 'price_above',
    price: 100.5,
    threshold: 100,
    message: 'BTCUSDT rose above 100 (now 100.5)',
  });
  assert.equal(processor.counters().alertsFired, 6);
});

test('golden cross when maShort - maLong goes from <= 0 to > 0, death cross from >= 0 to < 0', () => {
  // 20 ticks at 100: from the 20th, maShort = maLong = 100 (difference 0; the 19th had no maLong).
  const prices = [...new Array(20).fill(100), 110, 50, 50];
  const { out } = run(prices.map((price, i) => tick('X', T0 + i, price)));
  // By hand, tick 21 (110): maShort = 510 / 5 = 102 > maLong = 2010 / 20 = 100.5 -> golden.
  // Tick 22 (50): maShort = 460 / 5 = 92 < maLong = 1960 / 20 = 98 -> death. Tick 23: still < 0, nothing.
  assert.deepEqual(
    out.alerts.map((a) => [a.kind, a.ts - T0, a.price, a.threshold]),
    [
      ['golden_cross', 20, 110, undefined],
      ['death_cross', 21, 50, undefined],
    ],
  );
  assert.equal(out.ticks[20]!.maShort, 102);
  assert.equal(out.ticks[21]!.maLong, 98);
  assert.match(out.alerts[0]!.message, /Golden cross on X/);
});

test('a cross needs both averages at both ticks: none at warm-up', () => {
  // 19 falling prices, then a jump: at the 20th tick maLong appears for the first time; no cross fires.
  const prices = [...Array.from({ length: 19 }, (_, i) => 100 - i), 200];
  const { out } = run(prices.map((price, i) => tick('X', T0 + i, price)));
  assert.deepEqual(out.alerts, []);
});

test('a price rule with a cooldown stays quiet until a tick at least cooldown later in event time', () => {
  const config: ProcessConfig = {
    ...CONFIG,
    priceRules: [
      { symbol: 'X', above: 100, cooldownMs: 10_000 },
      { symbol: 'X', below: 100 },
    ],
  };
  // Seconds after T0 and prices: crossings above 100 at 1 s, 3 s, 9 s (late, ts 0.5 s), 11 s and 12 s.
  const path: [number, number][] = [
    [0, 99],
    [1, 101], // above: fires, quiet until 11 s
    [2, 99], // below (no cooldown): fires
    [3, 101], // above at 3 s: quiet
    [4, 99], // below: fires
    [0.5, 101], // above, a late tick older than the firing: quiet
    [10.999, 99], // below: fires
    [11, 101], // above at exactly 1 s + 10 s: fires, quiet until 21 s
    [11.5, 99], // below: fires
    [12, 101], // above: quiet
    [13, 102], // no crossing, nothing to suppress
  ];
  const { out } = run(
    path.map(([seconds, price]) => tick('X', T0 + seconds * 1_000, price)),
    config,
  );
  assert.deepEqual(
    out.alerts.map((a) => [a.kind, (a.ts - T0) / 1_000]),
    [
      ['price_above', 1],
      ['price_below', 2],
      ['price_below', 4],
      ['price_below', 10.999],
      ['price_above', 11],
      ['price_below', 11.5],
    ],
  );
});

test('maCross false turns cross alerts off; {cooldownMs} spaces them per symbol over both kinds', () => {
  // A wave with a period of 12 ticks, one tick per second, on two symbols: the averages cross twice
  // a period once both are warm.
  const prices = Array.from({ length: 200 }, (_, i) => 100 + 10 * Math.sin((2 * Math.PI * i) / 12));
  const entries = ['X', 'Y'].flatMap((symbol) =>
    prices.map((price, i) => tick(symbol, T0 + i * 1_000, price)),
  );
  const crosses = (config: ProcessConfig) =>
    run(entries, config).out.alerts.map((a) => ({ symbol: a.symbol, kind: a.kind, ts: a.ts }));
  const unlimited = crosses(CONFIG);
  assert.ok(unlimited.length > 40, `the wave crosses often (${unlimited.length})`);
  assert.deepEqual(crosses({ ...CONFIG, maCross: { cooldownMs: 0 } }), unlimited);
  assert.deepEqual(crosses({ ...CONFIG, maCross: false }), []);
  // The cooldown only withholds: keep a cross when it is >= 15 s after the last kept one of its symbol.
  const lastKept = new Map<string, number>();
  const expected = unlimited.filter((alert) => {
    const last = lastKept.get(alert.symbol);
    if (last !== undefined && alert.ts < last + 15_000) return false;
    lastKept.set(alert.symbol, alert.ts);
    return true;
  });
  const spaced = crosses({ ...CONFIG, maCross: { cooldownMs: 15_000 } });
  assert.deepEqual(spaced, expected);
  assert.ok(spaced.length < unlimited.length / 2);
  assert.ok(new Set(spaced.map((a) => a.kind)).size === 2, 'the cooldown spans both kinds, not only one');
});

test('anomaly alerts only when enabled, per the documented EWMA z-score', () => {
  // Prices alternate by +/-0.1 %, then jump 5 %: z ~ 50 (see anomaly.test.ts for the reference model).
  const prices = [100];
  for (let i = 0; i < 120; i++) prices.push(prices[i]! * (i % 2 === 0 ? 1.001 : 1 / 1.001));
  prices.push(prices[prices.length - 1]! * 1.05);
  const entries = prices.map((price, i) => tick('X', T0 + i, price));
  assert.deepEqual(
    run(entries).out.alerts.filter((a) => a.kind === 'anomaly'),
    [],
  );
  const enabled = run(entries, { ...CONFIG, anomaly: { ...DEFAULT_ANOMALY, enabled: true } });
  const anomalies = enabled.out.alerts.filter((a) => a.kind === 'anomaly');
  assert.equal(anomalies.length, 1);
  assert.equal(anomalies[0]!.ts, T0 + 121);
  assert.match(anomalies[0]!.message, /Unusual move on X: \+5\.00% in one tick/);
});

test('a stamped seq (distributed ingest order) replaces the offset in ticks, alerts and dead letters', () => {
  const config: ProcessConfig = {
    ...CONFIG,
    priceRules: [
      { symbol: 'BTCUSDT', above: 100 },
      { symbol: 'BTCUSDT', above: 100.2 },
    ],
  };
  const processor = new Processor(config);
  const out = emptyOutput();
  // Offsets 0, 1, 2 within a partition; ingest order 40, 57, 90 over all partitions.
  processor.apply({ ...tick('BTCUSDT', T0, 99), seq: 40 }, 0, out);
  processor.apply({ ...tick('BTCUSDT', T0 + 1_000, 101), seq: 57 }, 1, out);
  processor.apply(
    { kind: 'rejected', source: 's', reason: 'invalid_json', detail: 'd', raw: '{', receivedAt: 1, seq: 90 },
    2,
    out,
  );
  assert.deepEqual(
    out.ticks.map((t) => t.seq),
    [40, 57],
  );
  // One tick crossing both rules fires two alerts, numbered in firing order after its seq.
  assert.deepEqual(
    out.alerts.map((a) => [a.threshold, a.seq]),
    [
      [100, 57 * ALERT_SEQ_STRIDE],
      [100.2, 57 * ALERT_SEQ_STRIDE + 1],
    ],
  );
  assert.deepEqual(
    out.deadLetters.map((d) => d.seq),
    [90],
  );
});

test('rejected and duplicate entries are counted; rejections become dead letters with seq = offset', () => {
  const { out, processor } = run([
    tick('X', T0, 1),
    {
      kind: 'rejected',
      source: 'feed',
      reason: 'invalid_price',
      detail: 'price must be > 0',
      raw: '{"price":-1}',
      receivedAt: 7,
    },
    { kind: 'duplicate', source: 'feed', symbol: 'X', id: '1', receivedAt: 8 },
    { kind: 'rejected', source: 'feed', reason: 'invalid_price', detail: 'd', raw: 'r', receivedAt: 9 },
    { kind: 'rejected', source: 'feed', reason: 'not_object', detail: 'd', raw: '[]', receivedAt: 10 },
    { kind: 'clock', wallMs: T0 },
  ]);
  assert.deepEqual(processor.counters(), {
    received: 5,
    accepted: 1,
    rejected: 3,
    rejectedByReason: { invalid_price: 2, not_object: 1 },
    duplicates: 1,
    late: 0,
    candlesClosed: 0,
    alertsFired: 0,
  });
  assert.deepEqual(out.deadLetters[0], {
    seq: 1,
    source: 'feed',
    reason: 'invalid_price',
    detail: 'price must be > 0',
    raw: '{"price":-1}',
    receivedAt: 7,
  });
  assert.deepEqual(
    out.deadLetters.map((d) => d.seq),
    [1, 3, 4],
  );
  // counters() is a copy.
  processor.counters().rejectedByReason.invalid_price = 99;
  assert.equal(processor.counters().rejectedByReason.invalid_price, 2);
});

test('formingCandles: [] for unknown symbols, open windows ascending with final: false', () => {
  const { processor } = run([tick('X', T0 + 65_000, 2), tick('X', T0 + 5_000, 1)]);
  assert.deepEqual(processor.formingCandles('NOPE', '1m'), []);
  assert.deepEqual(
    processor.formingCandles('X', '1m').map((c) => [c.ts - T0, c.close, c.final]),
    [
      [0, 1, false],
      [60_000, 2, false],
    ],
  );
  assert.deepEqual(
    processor.formingCandles('x', '5m').map((c) => [c.ts - T0, c.open, c.close, c.trades]),
    [[0, 1, 2, 2]],
  );
});

test('a snapshot through JSON mid-stream continues exactly like an uninterrupted run', () => {
  const config: ProcessConfig = {
    latenessMs: 10_000,
    priceRules: [
      { symbol: 'AAA', above: 100 },
      { symbol: 'AAA', below: 100, cooldownMs: 60_000 },
      { symbol: 'BBB', below: 50 },
    ],
    // The cooldowns' state (when each rule and each symbol's crosses last fired) is in the snapshot.
    maCross: { cooldownMs: 20_000 },
    anomaly: { ...DEFAULT_ANOMALY, enabled: true, warmupTicks: 20, zScore: 2.5, cooldownTicks: 5 },
  };
  const entries = randomEntries(4_000, 9);
  // Sprinkle in the other entry kinds.
  entries.splice(500, 0, {
    kind: 'rejected',
    source: 's',
    reason: 'invalid_ts',
    detail: 'd',
    raw: 'r',
    receivedAt: 1,
  });
  entries.splice(900, 0, { kind: 'duplicate', source: 's', symbol: 'AAA', id: '1', receivedAt: 1 });
  const clockAt = (entries[1_500] as { ts: number }).ts + 30_000;
  entries.splice(1_500, 0, { kind: 'clock', wallMs: clockAt });
  entries.push({ kind: 'end', source: 's' }, tick('AAA', T0, 1));

  const whole = run(entries, config);
  assert.ok(whole.out.alerts.length > 20, 'the stream fires alerts of several kinds');
  assert.ok(new Set(whole.out.alerts.map((a) => a.kind)).size >= 4);
  for (const cut of [0, 1, 37, 499, 1_501, 2_222, entries.length - 1]) {
    const first = new Processor(config);
    const out = emptyOutput();
    entries.slice(0, cut).forEach((entry, offset) => {
      first.apply(entry, offset, out);
    });
    const saved: ProcessorSnapshot = JSON.parse(JSON.stringify(first.snapshot()));
    const resumed = new Processor(config, saved);
    assert.deepEqual(resumed.snapshot(), saved, 'restore then snapshot is the identity');
    for (const interval of INTERVALS) {
      assert.deepEqual(resumed.formingCandles('AAA', interval), first.formingCandles('AAA', interval));
    }
    entries.slice(cut).forEach((entry, i) => {
      resumed.apply(entry, cut + i, out);
    });
    assert.deepEqual(out, whole.out, `cut at ${cut}`);
    assert.deepEqual(resumed.counters(), whole.processor.counters(), `counters, cut at ${cut}`);
  }
});
