/** Every feed type: its config schema and its constructor. A new provider is one folder plus one entry here. */
import { type ComponentConfig, componentKind, createComponent } from '../core/component-table.ts';
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

/** A feed type; `create` gets the top-level `symbols` for feeds that name none. */
const feedType = componentKind<[defaultSymbols: readonly string[]], Feed>();

/** The types a `feeds` entry may have (each entry of the config's `feeds` is a union of their schemas). */
export const FEED_TYPES = [
  feedType({
    type: 'synthetic',
    schema: syntheticFeedSchema,
    create: (config, symbols) => new SyntheticFeed(config, symbols),
  }),
  feedType({ type: 'replay', schema: replayFeedSchema, create: (config) => new ReplayFeed(config) }),
  feedType({
    type: 'binance',
    schema: binanceFeedSchema,
    create: (config, symbols) => createBinanceFeed(config, symbols),
  }),
  feedType({ type: 'coinbase', schema: coinbaseFeedSchema, create: (config) => createCoinbaseFeed(config) }),
  feedType({ type: 'kraken', schema: krakenFeedSchema, create: (config) => createKrakenFeed(config) }),
  feedType({ type: 'backfill', schema: backfillFeedSchema, create: (config) => new BackfillFeed(config) }),
  feedType({
    type: 'finnhub',
    schema: finnhubFeedSchema,
    create: (config, symbols) => createFinnhubFeed(config, symbols),
  }),
  feedType({
    type: 'alpaca',
    schema: alpacaFeedSchema,
    create: (config, symbols) => createAlpacaFeed(config, symbols),
  }),
  feedType({
    type: 'coingecko',
    schema: coingeckoFeedSchema,
    create: (config, symbols) => new CoingeckoFeed(config, symbols),
  }),
  feedType({ type: 'ib', schema: ibFeedSchema, create: (config, symbols) => new IbFeed(config, symbols) }),
] as const;

/** A parsed `feeds` entry. */
export type FeedConfig = ComponentConfig<typeof FEED_TYPES>;

/** Each feed's name: its own, else its type (the config refuses two feeds of one name). */
export function feedNames(configs: readonly Pick<FeedConfig, 'type' | 'name'>[]): string[] {
  return configs.map((config) => config.name ?? config.type);
}

/** Builds the feed a config entry describes; `defaultSymbols` serves feeds that name none. */
export function createFeed(config: FeedConfig, defaultSymbols: readonly string[]): Feed {
  return createComponent(FEED_TYPES, config, defaultSymbols);
}
