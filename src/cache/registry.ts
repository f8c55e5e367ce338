/**
 * Picks the cache implementations a config names. A new backend is a new folder plus one case here.
 */
import type { CacheConfig } from './cache-config.ts';
import type { LatestCache } from './latest-cache.ts';
import type { LiveBus } from './live-bus.ts';
import { MemoryLatestCache } from './memory/memory-latest-cache.ts';
import { MemoryLiveBus } from './memory/memory-live-bus.ts';
import { RedisLatestCache } from './redis/redis-latest-cache.ts';
import { RedisLiveBus } from './redis/redis-live-bus.ts';

/** The latest-price cache and the live bus of one process. */
export interface Cache {
  latest: LatestCache;
  bus: LiveBus;
}

/** The `cache` section as code may pass it (the schema fills the defaults). */
export type CacheSettings =
  | { type: 'memory'; ttlSeconds?: number }
  | { type: 'redis'; url: string; ttlSeconds?: number; keyPrefix?: string };

export const DEFAULT_CACHE_TTL_SECONDS = 60;
export const DEFAULT_KEY_PREFIX = 'streamlines:';

/**
 * Creates (but does not open) the configured cache. The Redis password comes from `REDIS_PASSWORD`
 * in `env`; `onError` hears about dropped Redis connections (they reconnect by themselves).
 */
export function createCache(
  config: CacheConfig | CacheSettings,
  options: { env?: NodeJS.ProcessEnv; onError?: (error: Error) => void } = {},
): Cache {
  const ttlMs = (config.ttlSeconds ?? DEFAULT_CACHE_TTL_SECONDS) * 1000;
  switch (config.type) {
    case 'memory':
      return { latest: new MemoryLatestCache({ ttlMs }), bus: new MemoryLiveBus() };
    case 'redis': {
      const connection = {
        url: config.url,
        password: (options.env ?? process.env).REDIS_PASSWORD,
        keyPrefix: config.keyPrefix ?? DEFAULT_KEY_PREFIX,
        onError: options.onError,
      };
      return { latest: new RedisLatestCache({ ...connection, ttlMs }), bus: new RedisLiveBus(connection) };
    }
  }
}

/** Opens both parts; on failure closes what opened, so no connection is left behind. */
export async function openCache(cache: Cache): Promise<void> {
  const results = await Promise.allSettled([cache.latest.open(), cache.bus.open()]);
  const failed = results.find((result) => result.status === 'rejected');
  if (failed) {
    await closeCache(cache);
    throw failed.reason;
  }
}

export async function closeCache(cache: Cache): Promise<void> {
  await Promise.allSettled([cache.latest.close(), cache.bus.close()]);
}
