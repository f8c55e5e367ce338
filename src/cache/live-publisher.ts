/**
 * What a `process` role passes as `ProcessRunner`'s `publish` option: live messages go to the bus,
 * and the last tick of each symbol in a batch goes to the latest-price cache.
 *
 * Forming candles are held back to at most one message per window every `formingIntervalMs`: the
 * runner publishes every open window of every symbol a batch touched (5 intervals each), which at
 * 20 000 ticks/s was a third of the bus's messages, each serialised by the processor and decoded by
 * every serve process, while a chart needs a few updates a second. A window's first update goes out
 * at once, later ones at the end of the interval (its newest state only); a final candle goes out
 * at once and supersedes its window's held update. Ticks and alerts are never held.
 */
import type { LiveListener } from '../core/pipeline-view.ts';
import { type LatestTick, latestTickOf } from '../store/store.ts';
import type { Cache } from './registry.ts';

export interface LivePublisher {
  publish: LiveListener;
  /** Cache writes that failed (Redis unreachable); the next batch sets the symbol again. */
  readonly cacheErrors: number;
  /** Sends the forming candles held back, then resolves once every cache write started so far has settled. */
  flushed(): Promise<void>;
}

export interface LivePublisherOptions {
  /** Least time between two updates of one forming window on the bus, ms (default 250; 0 holds nothing back). */
  formingIntervalMs?: number;
}

/** Default of `formingIntervalMs`: four updates a second of a forming candle. */
export const FORMING_INTERVAL_MS = 250;

/** Windows tracked before the first sweep of stale ones (100 symbols x 5 intervals x 2 open windows). */
const SWEEP_AT_LEAST = 1_000;

/** A candle's bucket start and finality, which is all the publisher reads of one. */
interface CandleHead {
  ts: number;
  final: boolean;
}

/** Forwards live messages to `cache.bus` and keeps `cache.latest` current, one write per batch. */
export function createLivePublisher(cache: Cache, options: LivePublisherOptions = {}): LivePublisher {
  const formingIntervalMs = options.formingIntervalMs ?? FORMING_INTERVAL_MS;
  let pending = new Map<string, LatestTick>();
  let scheduled = false;
  let cacheErrors = 0;
  const inFlight = new Set<Promise<void>>();
  /** Per window (`channel` + bucket start): when its last update went out, and the newest one held back. */
  const sentAt = new Map<string, number>();
  let held = new Map<string, { channel: string; candle: unknown }>();
  let timer: NodeJS.Timeout | undefined;
  /** Size of `sentAt` at which it is next swept: twice what the last sweep kept, so sweeps stay rare. */
  let sweepAt = SWEEP_AT_LEAST;

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

  const sendHeld = (): void => {
    timer = undefined;
    const now = Date.now();
    const windows = held;
    held = new Map();
    for (const [key, { channel, candle }] of windows) {
      sentAt.set(key, now);
      cache.bus.publish(channel, candle);
    }
  };

  const publishCandle = (channel: string, candle: unknown): void => {
    const head = candle as CandleHead;
    const key = `${channel}@${head.ts}`;
    if (head.final) {
      // The final state replaces whatever update of the window is held, and the window is done.
      held.delete(key);
      sentAt.delete(key);
      cache.bus.publish(channel, candle);
      return;
    }
    const now = Date.now();
    if (!held.has(key) && now - (sentAt.get(key) ?? Number.NEGATIVE_INFINITY) >= formingIntervalMs) {
      // A window whose final state never came (its partition moved away) would stay: an entry older
      // than the interval holds nothing back, so those can go.
      if (sentAt.size >= sweepAt) {
        for (const [stale, at] of sentAt) if (now - at >= formingIntervalMs) sentAt.delete(stale);
        sweepAt = Math.max(SWEEP_AT_LEAST, 2 * sentAt.size);
      }
      sentAt.set(key, now);
      cache.bus.publish(channel, candle);
      return;
    }
    held.set(key, { channel, candle });
    if (timer === undefined) {
      timer = setTimeout(sendHeld, formingIntervalMs);
      timer.unref();
    }
  };

  return {
    publish(channel, data) {
      if (formingIntervalMs > 0 && channel.startsWith('candles:')) {
        publishCandle(channel, data);
        return;
      }
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
      if (timer !== undefined) {
        clearTimeout(timer);
        sendHeld();
      }
      await Promise.allSettled([...inFlight]);
    },
  };
}
