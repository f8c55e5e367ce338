/**
 * What a `process` role passes as `ProcessRunner`'s `publish` option: every live message goes to
 * the bus, and the last tick of each symbol in a batch goes to the latest-price cache.
 */
import type { LiveListener } from '../core/pipeline-view.ts';
import { type LatestTick, latestTickOf } from '../store/store.ts';
import type { Cache } from './registry.ts';

export interface LivePublisher {
  publish: LiveListener;
  /** Cache writes that failed (Redis unreachable); the next batch sets the symbol again. */
  readonly cacheErrors: number;
  /** Resolves once every cache write started so far has settled. */
  flushed(): Promise<void>;
}

/** Forwards live messages to `cache.bus` and keeps `cache.latest` current, one write per batch. */
export function createLivePublisher(cache: Cache): LivePublisher {
  let pending = new Map<string, LatestTick>();
  let scheduled = false;
  let cacheErrors = 0;
  const inFlight = new Set<Promise<void>>();

  const flush = (): void => {
    scheduled = false;
    const ticks = [...pending.values()];
    pending = new Map();
    const write = cache.latest.set(ticks).catch(() => {
      cacheErrors++;
    });
    inFlight.add(write);
    void write.finally(() => inFlight.delete(write));
  };

  return {
    publish(channel, data) {
      cache.bus.publish(channel, data);
      if (!channel.startsWith('ticks:')) return;
      // ProcessRunner's tick messages carry these fields and more; the cache keeps these.
      const tick = latestTickOf(data as LatestTick);
      pending.set(tick.symbol, tick);
      if (scheduled) return;
      scheduled = true;
      // After the synchronous loop that publishes the whole batch: one cache write per batch.
      queueMicrotask(flush);
    },
    get cacheErrors() {
      return cacheErrors;
    },
    async flushed() {
      await Promise.allSettled([...inFlight]);
    },
  };
}
