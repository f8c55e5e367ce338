/**
 * What a `process` role passes as `ProcessRunner`'s `publish` option: every live message goes to
 * the bus, and the last tick of each symbol in a batch goes to the latest-price cache.
 */
import type { LiveListener } from '../core/pipeline-view.ts';
import type { LatestTick } from '../store/store.ts';
import type { Cache } from './registry.ts';

/** The fields of a `ticks:SYM` message the cache keeps (ProcessRunner publishes these and more). */
interface TickMessage {
  symbol: string;
  ts: number;
  price: number;
  size: number;
  maShort: number | null;
  maLong: number | null;
  source: string;
}

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
      const tick = data as TickMessage;
      pending.set(tick.symbol, {
        symbol: tick.symbol,
        ts: tick.ts,
        price: tick.price,
        size: tick.size,
        maShort: tick.maShort,
        maLong: tick.maLong,
        source: tick.source,
      });
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
