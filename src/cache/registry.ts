/** Every cache type: its config schema and its constructor. A new cache is one folder plus one entry here. */
import { type ComponentConfig, componentKind, createComponent } from '../core/component-table.ts';
import type { LatestCache } from './latest-cache.ts';
import type { LiveBus } from './live-bus.ts';
import { memoryCacheSchema } from './memory/memory-cache-config.ts';
import { MemoryLatestCache } from './memory/memory-latest-cache.ts';
import { MemoryLiveBus } from './memory/memory-live-bus.ts';
import { redisCacheSchema } from './redis/redis-cache-config.ts';
import { RedisReachability } from './redis/redis-connection.ts';
import { RedisLatestCache } from './redis/redis-latest-cache.ts';
import { RedisLiveBus } from './redis/redis-live-bus.ts';

/** The latest-price cache and the live bus of one process. */
export interface Cache {
  latest: LatestCache;
  bus: LiveBus;
  /** What is wrong with its connections, undefined while they are up (always, in memory). */
  problem(): string | undefined;
}

/** What creating a cache takes besides its config: the environment, and who hears of dropped connections. */
export interface CacheOptions {
  env?: NodeJS.ProcessEnv;
  onError?: (error: Error) => void;
}

/** A cache type; `create` builds it unopened. */
const cacheType = componentKind<[options: CacheOptions], Cache>();

/** The `cache` section's types (the config's `cache` is a union of their schemas). */
export const CACHE_TYPES = [
  cacheType({
    type: 'memory',
    schema: memoryCacheSchema,
    create: (config) => ({
      latest: new MemoryLatestCache({ ttlMs: config.ttlSeconds * 1000 }),
      bus: new MemoryLiveBus(),
      problem: () => undefined,
    }),
  }),
  cacheType({
    type: 'redis',
    schema: redisCacheSchema,
    create: (config, options) => {
      const reachability = new RedisReachability();
      const connection = {
        url: config.url,
        password: (options.env ?? process.env).REDIS_PASSWORD,
        keyPrefix: config.keyPrefix,
        onError: options.onError,
        reachability,
      };
      return {
        latest: new RedisLatestCache({ ...connection, ttlMs: config.ttlSeconds * 1000 }),
        bus: new RedisLiveBus(connection),
        problem: () => reachability.problem(),
      };
    },
  }),
] as const;

/** The parsed `cache` section. */
export type CacheConfig = ComponentConfig<typeof CACHE_TYPES>;

/**
 * Creates (but does not open) the configured cache. The Redis password comes from `REDIS_PASSWORD`
 * in `options.env`; `options.onError` hears about dropped Redis connections (they reconnect by themselves).
 */
export function createCache(config: CacheConfig, options: CacheOptions = {}): Cache {
  return createComponent(CACHE_TYPES, config, options);
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
