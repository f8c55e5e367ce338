/** Every feed type: its config schema and its constructor. A new provider is one folder plus one entry here. */
import { z } from 'zod';
import { alpacaFeedSchema, createAlpacaFeed } from './alpaca/alpaca-feed.ts';
import { BackfillFeed, backfillFeedSchema } from './backfill/backfill-feed.ts';
import { binanceFeedSchema, createBinanceFeed } from './binance/binance-feed.ts';
import { coinbaseFeedSchema, createCoinbaseFeed } from './coinbase/coinbase-feed.ts';
import { CoingeckoFeed, coingeckoFeedSchema } from './coingecko/coingecko-feed.ts';
import type { Feed } from './feed.ts';
import { createFinnhubFeed, finnhubFeedSchema } from './finnhub/finnhub-feed.ts';
import { IbFeed, ibFeedSchema } from './ib/ib-feed.ts';
import { createKrakenFeed, krakenFeedSchema } from './kraken/kraken-feed.ts';
import { ReplayFeed, replayFeedSchema } from './replay/replay-feed.ts';
import { SyntheticFeed, syntheticFeedSchema } from './synthetic/synthetic-feed.ts';

export const feedConfigSchema = z.discriminatedUnion('type', [
  syntheticFeedSchema,
  replayFeedSchema,
  binanceFeedSchema,
  coinbaseFeedSchema,
  krakenFeedSchema,
  backfillFeedSchema,
  finnhubFeedSchema,
  alpacaFeedSchema,
  coingeckoFeedSchema,
  ibFeedSchema,
]);
export type FeedConfig = z.infer<typeof feedConfigSchema>;

/** Builds the feed a config entry describes; `defaultSymbols` serves feeds that name none. */
export function createFeed(config: FeedConfig, defaultSymbols: readonly string[]): Feed {
  switch (config.type) {
    case 'synthetic':
      return new SyntheticFeed(config, defaultSymbols);
    case 'replay':
      return new ReplayFeed(config);
    case 'binance':
      return createBinanceFeed(config, defaultSymbols);
    case 'coinbase':
      return createCoinbaseFeed(config);
    case 'kraken':
      return createKrakenFeed(config);
    case 'backfill':
      return new BackfillFeed(config);
    case 'finnhub':
      return createFinnhubFeed(config, defaultSymbols);
    case 'alpaca':
      return createAlpacaFeed(config, defaultSymbols);
    case 'coingecko':
      return new CoingeckoFeed(config, defaultSymbols);
    case 'ib':
      return new IbFeed(config, defaultSymbols);
  }
}
