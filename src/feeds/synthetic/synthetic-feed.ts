/**
 * `synthetic`: a believable random-walk market that works offline, the default feed of `npm start`.
 * Prices follow a geometric random walk per symbol, trade sizes are log-normal around a notional,
 * the taker side is random, and each symbol numbers its trades 1, 2, 3... as exchanges do (so
 * ingest's dedup state stays one id range per symbol). The PRNG state, the prices and the id
 * counters are the feed's position, so a restart continues the same market.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { SeededRandom } from '../../core/random.ts';
import { SymbolListFeed } from '../connection/feed-config.ts';
import type { Feed, FeedBatch } from '../feed.ts';

export const syntheticFeedSchema = z.strictObject({
  type: z.literal('synthetic'),
  name: z.string().min(1).optional().describe('Feed name (default "synthetic").'),
  symbols: z
    .array(z.string().min(1))
    .min(1)
    .optional()
    .describe('Symbols to trade (default: top-level `symbols`).'),
  ticksPerSecond: z
    .number()
    .positive()
    .max(1_000_000)
    .default(50)
    .describe('Trades per second over all symbols.'),
  volatility: z.number().positive().max(0.1).default(0.0004).describe('Std dev of the log return per trade.'),
  seed: z.number().int().default(42).describe('PRNG seed: the same seed gives the same market.'),
});
export type SyntheticFeedConfig = z.infer<typeof syntheticFeedSchema>;

/** Plausible starting prices, so the dashboard looks like a market; other symbols start near 100. */
const START_PRICES: Record<string, number> = {
  BTCUSDT: 65_000,
  ETHUSDT: 3_200,
  SOLUSDT: 150,
  BNBUSDT: 580,
  XRPUSDT: 0.52,
  DOGEUSDT: 0.12,
  'BTC-USD': 65_000,
  'ETH-USD': 3_200,
  AAPL: 190,
  MSFT: 420,
  NVDA: 120,
  TSLA: 250,
};

interface SyntheticPosition {
  /** Trades so far, all symbols. */
  seq: number;
  rng: number;
  prices: Record<string, number>;
  /** Per symbol, the id of its last trade. */
  lastIds: Record<string, number>;
}

/**
 * Trades are made in batches, at most every 50 ms and as often as every 10 ms so that a batch holds
 * about 200 trades: a real market's trades arrive spread out, and a tick waits behind the others of
 * its batch all the way to a WebSocket client (at 20 000 ticks/s, 1 000-trade batches every 50 ms
 * put 5-10 ms of the pipeline's work in front of the last tick of each: docs/benchmarks.md,
 * WebSocket latency). Slow markets keep 50 ms, which costs the least per trade.
 */
export function batchIntervalMs(ticksPerSecond: number): number {
  return Math.min(50, Math.max(10, Math.round((200 / ticksPerSecond) * 1000)));
}

export class SyntheticFeed extends SymbolListFeed implements Feed {
  readonly name: string;
  readonly type = 'synthetic';
  readonly bounded = false;
  readonly defaultSource = 'synthetic';
  readonly #config: SyntheticFeedConfig;
  /** Where a symbol first listed while running starts its ids: above a pre-per-symbol position's. */
  #idFloor = 0;

  constructor(config: SyntheticFeedConfig, defaultSymbols: readonly string[]) {
    super('synthetic', config.symbols, defaultSymbols);
    this.#config = config;
    this.name = config.name ?? 'synthetic';
  }

  async *run(position: unknown, signal: AbortSignal): AsyncIterable<FeedBatch> {
    const state = this.#restore(position);
    const random = new SeededRandom(state.rng);
    const intervalMs = batchIntervalMs(this.#config.ticksPerSecond);
    let owed = 0;
    let last = Date.now();
    while (!signal.aborted) {
      await sleep(intervalMs, undefined, { signal }).catch(() => undefined);
      if (signal.aborted) return;
      const now = Date.now();
      owed += ((now - last) / 1000) * this.#config.ticksPerSecond;
      last = now;
      const count = Math.floor(owed);
      owed -= count;
      if (count === 0 || this.symbolList.length === 0) continue;
      const values: unknown[] = new Array(count);
      for (let i = 0; i < count; i++) values[i] = this.#nextTrade(state, random, now);
      state.rng = random.state;
      yield {
        values,
        position: {
          seq: state.seq,
          rng: state.rng,
          prices: { ...state.prices },
          lastIds: { ...state.lastIds },
        },
      };
    }
  }

  #restore(position: unknown): SyntheticPosition {
    const saved = position as Partial<SyntheticPosition> | undefined;
    const prices: Record<string, number> = {};
    // Every symbol's last id is kept, also of symbols no longer listed: one listed again later
    // continues above its old ids instead of repeating them (they would be dropped as duplicates).
    const lastIds: Record<string, number> = { ...saved?.lastIds };
    for (const symbol of this.symbolList) {
      prices[symbol] = saved?.prices?.[symbol] ?? START_PRICES[symbol] ?? 100;
      // A position from before per-symbol ids numbered all trades together: continue above all of them.
      if (saved?.lastIds === undefined) lastIds[symbol] = saved?.seq ?? 0;
    }
    this.#idFloor = saved !== undefined && saved.lastIds === undefined ? (saved.seq ?? 0) : 0;
    return { seq: saved?.seq ?? 0, rng: saved?.rng ?? this.#config.seed, prices, lastIds };
  }

  #nextTrade(state: SyntheticPosition, random: SeededRandom, now: number): object {
    const symbol = this.symbolList[Math.floor(random.next() * this.symbolList.length)]!;
    const previous = state.prices[symbol] ?? START_PRICES[symbol] ?? 100;
    const price = roundPrice(previous * Math.exp(this.#config.volatility * random.normal()));
    state.prices[symbol] = price;
    const notional = 2_000 * Math.exp(0.8 * random.normal());
    const size = Number((notional / price).toPrecision(6));
    state.seq += 1;
    const id = (state.lastIds[symbol] ?? this.#idFloor) + 1;
    state.lastIds[symbol] = id;
    return {
      source: this.defaultSource,
      symbol,
      ts: now,
      price,
      size,
      id: String(id),
      side: random.next() < 0.5 ? 'buy' : 'sell',
    };
  }
}

/** Keeps prices on a realistic tick grid: cents above 1, six significant digits below. */
function roundPrice(price: number): number {
  return price >= 1 ? Math.round(price * 100) / 100 : Number(price.toPrecision(6));
}
