/**
 * The Redis LatestCache: one string key per symbol (`PREFIX latest:SYM` = the tick as JSON) with a
 * PX expiry, so Redis itself drops symbols that stopped trading. A key per symbol rather than one
 * hash because Redis 7.0 (Debian 12) cannot expire single hash fields.
 */
import { type LatestTick, latestTickOf } from '../../store/store.ts';
import { type LatestCache, lastPerSymbol, sortBySymbol } from '../latest-cache.ts';
import {
  closeClient,
  createRedisClient,
  escapeGlob,
  type RedisClient,
  type RedisConnectionOptions,
} from './redis-connection.ts';

export interface RedisLatestCacheOptions extends RedisConnectionOptions {
  ttlMs: number;
  /** Prefix of every key, e.g. `streamlines:`. */
  keyPrefix: string;
}

/** MGET at most this many keys at once, so one call never blocks Redis for long. */
const MGET_CHUNK = 500;

export class RedisLatestCache implements LatestCache {
  readonly #client: RedisClient;
  readonly #ttlMs: number;
  readonly #keyPrefix: string;

  constructor(options: RedisLatestCacheOptions) {
    if (!Number.isFinite(options.ttlMs) || options.ttlMs < 1) {
      throw new Error(`ttlMs must be at least 1 ms, got ${options.ttlMs}`);
    }
    this.#client = createRedisClient(options);
    this.#ttlMs = Math.round(options.ttlMs);
    this.#keyPrefix = `${options.keyPrefix}latest:`;
  }

  async open(): Promise<void> {
    await this.#client.connect();
  }

  async set(ticks: readonly LatestTick[]): Promise<void> {
    const latest = lastPerSymbol(ticks);
    if (latest.size === 0) return;
    const multi = this.#client.multi();
    for (const [symbol, tick] of latest) {
      multi.set(this.#keyPrefix + symbol, encode(tick), { expiration: { type: 'PX', value: this.#ttlMs } });
    }
    await multi.execAsPipeline();
  }

  async get(symbol: string): Promise<LatestTick | undefined> {
    const value = await this.#client.get(this.#keyPrefix + symbol);
    return value === null ? undefined : decode(value);
  }

  async all(): Promise<LatestTick[]> {
    const keys = new Set<string>();
    // SCAN may return a key twice while Redis rehashes; the set removes the repeats.
    for await (const batch of this.#client.scanIterator({
      MATCH: `${escapeGlob(this.#keyPrefix)}*`,
      COUNT: 1000,
    })) {
      for (const key of batch) keys.add(key);
    }
    const all = [...keys];
    const out: LatestTick[] = [];
    for (let start = 0; start < all.length; start += MGET_CHUNK) {
      const values = await this.#client.mGet(all.slice(start, start + MGET_CHUNK));
      // A key that expired between SCAN and MGET reads as null.
      for (const value of values) if (value !== null) out.push(decode(value));
    }
    return sortBySymbol(out);
  }

  async close(): Promise<void> {
    await closeClient(this.#client);
  }
}

function encode(tick: LatestTick): string {
  return JSON.stringify(latestTickOf(tick));
}

function decode(value: string): LatestTick {
  return JSON.parse(value) as LatestTick;
}
