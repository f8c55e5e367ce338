/**
 * `backfill`: a bounded feed that pages a provider's REST trade history for a time range and ends, so the
 * history goes through the same ingest → log → process → store path as live data and its candles finalise.
 * `streamlines backfill` builds one; it can also sit in a config. Its position is the last trade loaded per
 * symbol, so an interrupted backfill resumes after it.
 */
import { z } from 'zod';
import { binanceProvider } from '../binance/binance-feed.ts';
import { coinbaseProvider } from '../coinbase/coinbase-feed.ts';
import type { LiveProvider } from '../connection/live-trade-feed.ts';
import type { Feed, FeedBatch } from '../feed.ts';
import { krakenProvider } from '../kraken/kraken-feed.ts';

export const backfillFeedSchema = z.strictObject({
  type: z.literal('backfill'),
  name: z.string().min(1).optional().describe('Feed name (default "backfill").'),
  provider: z.enum(['binance', 'coinbase', 'kraken']).describe('Whose REST trade history to load.'),
  symbols: z.array(z.string().min(1)).min(1).describe('Symbols as the provider writes them.'),
  from: z.number().int().positive().describe('Start, ms since the epoch (inclusive).'),
  to: z.number().int().positive().describe('End, ms since the epoch (inclusive).'),
  restUrl: z.string().url().optional().describe("REST base URL (default: the provider's)."),
});
export type BackfillFeedConfig = z.infer<typeof backfillFeedSchema>;

const DEFAULT_REST: Record<BackfillFeedConfig['provider'], string> = {
  binance: 'https://data-api.binance.vision',
  coinbase: 'https://api.exchange.coinbase.com',
  kraken: 'https://api.kraken.com',
};

interface BackfillPosition {
  last: Record<string, { id: string; ts: number }>;
}

export class BackfillFeed implements Feed {
  readonly name: string;
  readonly type = 'backfill';
  readonly bounded = true;
  readonly defaultSource: string;
  readonly #config: BackfillFeedConfig;
  readonly #provider: LiveProvider;
  #doneMs = 0;
  #loaded = 0;

  constructor(config: BackfillFeedConfig) {
    if (config.to < config.from)
      throw new Error(`backfill feed: "to" (${config.to}) is before "from" (${config.from})`);
    this.#config = config;
    this.name = config.name ?? 'backfill';
    this.defaultSource = config.provider;
    const restUrl = config.restUrl ?? DEFAULT_REST[config.provider];
    // The stream URL is never used by a backfill.
    const endpoints = { url: 'ws://unused.invalid', restUrl };
    this.#provider =
      config.provider === 'binance'
        ? binanceProvider(endpoints)
        : config.provider === 'coinbase'
          ? coinbaseProvider(endpoints)
          : krakenProvider(endpoints);
  }

  /** Time covered so far over all symbols, in ms. */
  progress(): { done: number; total: number; unit: string } {
    const span = this.#config.to - this.#config.from + 1;
    return { done: this.#doneMs, total: span * this.#config.symbols.length, unit: 'ms' };
  }

  /** Trades loaded in this process. */
  loaded(): number {
    return this.#loaded;
  }

  async *run(position: unknown, signal: AbortSignal): AsyncIterable<FeedBatch> {
    const history = this.#provider.history?.bind(this.#provider);
    if (!history) throw new Error(`backfill: ${this.#config.provider} has no REST history`);
    const last: BackfillPosition['last'] = { ...((position as BackfillPosition | undefined)?.last ?? {}) };
    const span = this.#config.to - this.#config.from + 1;
    try {
      for (const [index, symbol] of this.#config.symbols.entries()) {
        const stored = this.#provider.storedSymbol(symbol);
        const resume = last[stored];
        for await (const page of history({
          symbol,
          afterId: resume?.id,
          fromMs: resume?.ts ?? this.#config.from,
          toMs: this.#config.to,
          signal,
        })) {
          if (signal.aborted) return;
          const top = page[page.length - 1];
          if (top?.id !== undefined) last[stored] = { id: top.id, ts: top.ts };
          this.#loaded += page.length;
          this.#doneMs = index * span + Math.max(0, (top?.ts ?? this.#config.from) - this.#config.from);
          yield { values: page, position: { last: { ...last } } };
        }
        this.#doneMs = (index + 1) * span;
      }
    } catch (error) {
      // Stopping mid-page is the end of the run, not a failure.
      if (signal.aborted) return;
      throw error;
    }
  }
}
