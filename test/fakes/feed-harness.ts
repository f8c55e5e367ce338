/**
 * The one harness of the feed tests. `FeedHarness` runs a feed through a real `Ingest` over a `MemoryLog`,
 * so a test sees exactly what would reach the store (ticks after validation and dedup, duplicates,
 * rejections) and the FeedStatus ingest reports; `collectFeed` runs it bare and keeps the raw records and
 * positions it yields; `cleanupAfterEach` tears down what a test started.
 */
import { afterEach, beforeEach } from 'node:test';
import { type IngestEntry, TOPIC_TICKS } from '../../src/core/records.ts';
import type { Feed } from '../../src/feeds/feed.ts';
import { Ingest } from '../../src/ingest/ingest.ts';
import { MemoryLog } from '../../src/log/memory/memory-log.ts';
import { waitForValue, waitUntil } from '../support/wait.ts';
import type { FakeStreamingExchange } from './fake-exchange.ts';

export type TickEntry = Extract<IngestEntry, { kind: 'tick' }>;

export class FeedHarness {
  readonly log = new MemoryLog();
  readonly ingest = new Ingest(this.log, { clockIntervalMs: 60_000 });
  readonly controller = new AbortController();
  done: Promise<void> = Promise.resolve();
  error: unknown;

  static async start(feed: Feed): Promise<FeedHarness> {
    const harness = new FeedHarness();
    await harness.log.open();
    await harness.ingest.open();
    harness.done = harness.ingest.runFeed(feed, harness.controller.signal).catch((error: unknown) => {
      harness.error = error;
    });
    return harness;
  }

  /** Everything in the log so far, in log order (one partition). */
  async entries(): Promise<IngestEntry[]> {
    const end = this.log.endOffset(TOPIC_TICKS, 0);
    const records = await this.log.read<IngestEntry>(TOPIC_TICKS, 0, 0, Math.max(1, end));
    return records.map((record) => record.value).filter((entry) => entry.kind !== 'clock');
  }

  async ticks(): Promise<TickEntry[]> {
    return (await this.entries()).filter((entry): entry is TickEntry => entry.kind === 'tick');
  }

  /** Waits until `count` ticks are in the log. */
  async waitForTicks(count: number, timeoutMs = 10_000): Promise<TickEntry[]> {
    let ticks: TickEntry[] = [];
    return waitForValue(
      async () => {
        ticks = await this.ticks();
        return ticks.length >= count ? ticks : undefined;
      },
      () => `${count} ticks; have ${ticks.map((tick) => tick.id).join(',')}`,
      timeoutMs,
    );
  }

  async stop(): Promise<void> {
    this.controller.abort();
    await this.done;
  }
}

/** What a live feed's test works with: its fake server, its harness once started, the feed's log lines. */
export interface LiveFeedTest<Fake> {
  fake: Fake;
  harness: FeedHarness | undefined;
  logs: string[];
  /** A feed environment that reconnects within 100 ms and logs into `logs`, with `tuning` on top. */
  tuned(tuning?: object): { initialBackoffMs: number; log: (line: string) => void };
  /** Starts `feed` in a harness (stopped after the test) and waits until one client subscribed to `key`. */
  startSubscribed(feed: Feed, key: string): Promise<FeedHarness>;
}

/** The fields of a tick that a feed adapter maps from the provider's trade. */
export function tradeFields(ticks: readonly TickEntry[]) {
  return ticks.map(({ source, symbol, ts, price, size, id, side }) => ({
    source,
    symbol,
    ts,
    price,
    size,
    id,
    side,
  }));
}

/**
 * Sets up each test of a live feed: a fresh fake from `startFake` before it and empty `logs`; after it
 * the harness (if the test started one) is stopped and the fake closed.
 */
export function liveFeedTest<Fake extends FakeStreamingExchange<unknown>>(
  startFake: () => Promise<Fake>,
): LiveFeedTest<Fake> {
  const test: LiveFeedTest<Fake> = {
    fake: undefined as unknown as Fake,
    harness: undefined,
    logs: [],
    tuned: (tuning = {}) => ({
      initialBackoffMs: 20,
      maxBackoffMs: 100,
      staleAfterMs: 2_000,
      log: (line: string) => test.logs.push(line),
      ...tuning,
    }),
    startSubscribed: async (feed, key) => {
      const harness = await FeedHarness.start(feed);
      test.harness = harness;
      await waitUntil(() => test.fake.subscribers(key).length === 1, `a subscription to ${key}`);
      return harness;
    },
  };
  beforeEach(async () => {
    test.fake = await startFake();
    test.logs.length = 0;
  });
  afterEach(async () => {
    await test.harness?.stop();
    test.harness = undefined;
    await test.fake.close();
  });
  return test;
}

/** Registers an `afterEach` that runs the cleanups pushed during a test, last first; returns the push. */
export function cleanupAfterEach(): (cleanup: () => Promise<void> | void) => void {
  let cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    cleanups = [];
  });
  return (cleanup) => {
    cleanups.push(cleanup);
  };
}

/** A feed run in the background, its raw records and positions collected as they come. */
export interface CollectedFeed {
  values: Record<string, unknown>[];
  /** The position of every batch, in order. */
  positions: unknown[];
  /** Settles when the run ends; rejects with a fatal error (tests that expect one await it). */
  done: Promise<void>;
  /** Aborts the run and waits for it to end. */
  stop: () => Promise<void>;
}

/** Config fields of a live feed under test: a stall noticed in 5 s, reconnects within 50 ms. */
export const FAST_LIVE_FEED = { staleAfter: 5_000, initialBackoff: 20, maxBackoff: 50 } as const;

/**
 * `collectFeed` for a feed against a fake `server`: `defer` (from cleanupAfterEach) stops the feed and
 * closes the server after the test.
 */
export function collectAgainst(
  defer: (cleanup: () => Promise<void>) => void,
  feed: Feed,
  server: { close(): Promise<void> },
): CollectedFeed {
  const collected = collectFeed(feed);
  defer(async () => {
    await collected.stop();
    await server.close();
  });
  return collected;
}

/** Runs `feed` from `position` in the background, collecting every raw record it yields. */
export function collectFeed(feed: Feed, position?: unknown): CollectedFeed {
  const controller = new AbortController();
  const values: Record<string, unknown>[] = [];
  const positions: unknown[] = [];
  const done = (async () => {
    for await (const batch of feed.run(position, controller.signal)) {
      values.push(...((batch.values ?? []) as Record<string, unknown>[]));
      for (const line of batch.lines ?? []) values.push(JSON.parse(line) as Record<string, unknown>);
      positions.push(batch.position);
    }
  })();
  done.catch(() => undefined);
  const stop = async (): Promise<void> => {
    controller.abort();
    await done.catch(() => undefined);
  };
  return { values, positions, done, stop };
}
