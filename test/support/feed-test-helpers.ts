/**
 * Test scaffolding shared by the live feeds' tests (fake server in, raw records out): running a feed in the
 * background, cleaning up after each test, and waiting for a condition.
 */
import { afterEach } from 'node:test';
import type { Feed } from '../../src/feeds/feed.ts';

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

/** Runs `feed` in the background, collecting every raw record it yields; `stop` aborts and waits for the end. */
export function collectFeed(feed: Feed): {
  values: Record<string, unknown>[];
  done: Promise<void>;
  stop: () => Promise<void>;
} {
  const controller = new AbortController();
  const values: Record<string, unknown>[] = [];
  const done = (async () => {
    for await (const batch of feed.run(undefined, controller.signal)) {
      values.push(...((batch.values ?? []) as Record<string, unknown>[]));
    }
  })();
  // A fatal run rejects `done`; tests that expect it await it themselves.
  done.catch(() => undefined);
  const stop = async (): Promise<void> => {
    controller.abort();
    await done.catch(() => undefined);
  };
  return { values, done, stop };
}

/** Polls `predicate` every 10 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function until(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
