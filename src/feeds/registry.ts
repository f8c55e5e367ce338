/** Every feed type: its config schema and its constructor. A new provider is one folder plus one entry here. */
import { z } from 'zod';
import type { Feed } from './feed.ts';
import { ReplayFeed, replayFeedSchema } from './replay/replay-feed.ts';
import { SyntheticFeed, syntheticFeedSchema } from './synthetic/synthetic-feed.ts';

export const feedConfigSchema = z.discriminatedUnion('type', [syntheticFeedSchema, replayFeedSchema]);
export type FeedConfig = z.infer<typeof feedConfigSchema>;

/** Builds the feed a config entry describes; `defaultSymbols` serves feeds that name none. */
export function createFeed(config: FeedConfig, defaultSymbols: readonly string[]): Feed {
  switch (config.type) {
    case 'synthetic':
      return new SyntheticFeed(config, defaultSymbols);
    case 'replay':
      return new ReplayFeed(config);
  }
}
