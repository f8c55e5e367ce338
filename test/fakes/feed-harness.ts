/**
 * Runs a feed through a real `Ingest` over a `MemoryLog`, so tests see exactly what would reach the store:
 * ticks after validation and dedup, duplicates, rejections.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type IngestEntry, TOPIC_TICKS } from '../../src/core/records.ts';
import type { Feed } from '../../src/feeds/feed.ts';
import { Ingest } from '../../src/ingest/ingest.ts';
import { MemoryLog } from '../../src/log/memory/memory-log.ts';

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
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ticks = await this.ticks();
      if (ticks.length >= count) return ticks;
      if (Date.now() > deadline) {
        throw new Error(
          `timed out waiting for ${count} ticks; have ${ticks.map((tick) => tick.id).join(',')}`,
        );
      }
      await sleep(10);
    }
  }

  async stop(): Promise<void> {
    this.controller.abort();
    await this.done;
  }
}
