/**
 * The contract every Feed passes (STYLE §2), run from conformance.test.ts against each adapter and its fake
 * server: batches flow with serialisable positions; a restart from a saved position neither re-reads nor
 * skips; abort stops the run; malformed frames are counted, never thrown; errors that retrying cannot fix
 * end the run as `fatal` with a classified cause; a live feed's status has every field FeedStatus merges.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { describe, it } from 'node:test';
import { waitUntil } from '../../test/support/wait.ts';
import type { Feed } from './feed.ts';

/** How a feed resumes from a saved position. */
export type ResumeKind =
  /** Re-reads its source exactly after the position (replay, synthetic, backfill). */
  | 'exact'
  /** A live feed that fills what it missed from the provider's REST history (Binance, Coinbase, Kraken). */
  | 'gap-fill'
  /** A live feed without history: what happened while it was down is gone, and nothing is delivered twice. */
  | 'live-only';

/** One feed type and its fake upstream, set up afresh for each test. */
export interface FeedDriver {
  /** A new feed over the fake (the same config every call: a restart builds a second one). */
  create(): Feed;
  /** Resolves once a running feed receives what `produce` makes (e.g. it has subscribed on the newest connection). */
  ready(): Promise<void>;
  /** Makes `count` new records happen upstream (local and bounded feeds produce on their own: a no-op). */
  produce(count: number): Promise<void>;
  /** Identifies a raw record across runs (a trade id, or what stands in for one). */
  key(record: Record<string, unknown>): string;
  resume: ResumeKind;
  /** The provider sends its last trade again on every subscription (Coinbase `last_match`): allowed once. */
  replaysLastOnSubscribe?: boolean;
  /** Sends frames the provider would never send and returns how many the feed must count as malformed. */
  sendMalformed?(): Promise<number>;
  /** Makes the provider refuse in a way retrying cannot fix (bad key, HTTP 401, client id in use). */
  refuseFatally?(): void;
  /** A feed of this type pointed at `url` (its scheme and a port where nothing listens). */
  createAt?(port: number): Feed;
  cleanup(): Promise<void>;
}

/** A run collected batch by batch. */
interface CollectedRun {
  batches: { records: Record<string, unknown>[]; position: unknown }[];
  records(): Record<string, unknown>[];
  done: Promise<void>;
  error(): unknown;
  stop(): Promise<void>;
}

function collect(feed: Feed, position?: unknown): CollectedRun {
  const controller = new AbortController();
  const batches: CollectedRun['batches'] = [];
  let failure: unknown;
  const done = (async () => {
    for await (const batch of feed.run(position, controller.signal)) {
      const records = [
        ...((batch.values ?? []) as Record<string, unknown>[]),
        ...(batch.lines ?? []).map((line) => JSON.parse(line) as Record<string, unknown>),
      ];
      batches.push({ records, position: batch.position });
    }
  })().catch((error: unknown) => {
    failure = error;
  });
  return {
    batches,
    records: () => batches.flatMap((batch) => batch.records),
    done,
    error: () => failure,
    stop: async () => {
      controller.abort();
      await done;
    },
  };
}

/** A port on 127.0.0.1 where nothing listens (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const CONNECTION_STATES = ['idle', 'connecting', 'connected', 'reconnecting', 'failing', 'fatal', 'stopped'];

/** Registers the feed suite for one feed type; `setUp` starts its fake and returns the driver. */
export function feedConformance(name: string, setUp: () => Promise<FeedDriver>): void {
  describe(`feed conformance: ${name}`, () => {
    async function withDriver(body: (driver: FeedDriver) => Promise<void>): Promise<void> {
      const driver = await setUp();
      try {
        await body(driver);
      } finally {
        await driver.cleanup();
      }
    }

    /** Runs `body` when the driver has what a case needs; otherwise reports the case as skipped, saying why. */
    async function ifDriver(
      context: { skip(message: string): void },
      has: (driver: FeedDriver) => boolean,
      reason: string,
      body: (driver: FeedDriver) => Promise<void>,
    ): Promise<void> {
      const probe = await setUp();
      const applies = has(probe);
      await probe.cleanup();
      if (applies) await withDriver(body);
      else context.skip(reason);
    }

    it('hands records over in batches, each with a JSON-serialisable position', () =>
      withDriver(async (driver) => {
        const run = collect(driver.create());
        try {
          await driver.ready();
          await driver.produce(3);
          await waitUntil(() => run.records().length >= 3, 'three records');
          for (const batch of run.batches) {
            assert.ok(batch.records.length > 0, 'no empty batches');
            assert.deepEqual(JSON.parse(JSON.stringify(batch.position ?? null)), batch.position ?? null);
            for (const record of batch.records) {
              assert.equal(typeof record, 'object');
              for (const field of ['symbol', 'ts', 'price', 'size'])
                assert.ok(field in record, `${field} in ${JSON.stringify(record)}`);
            }
          }
          assert.equal(run.error(), undefined);
        } finally {
          await run.stop();
        }
      }));

    it('restarts from a saved position without re-reading or skipping', () =>
      withDriver(async (driver) => {
        const first = collect(driver.create());
        await driver.ready();
        await driver.produce(4);
        // An exact feed must have handed over more than the batch its position is saved from.
        const batches = driver.resume === 'exact' ? 2 : 1;
        await waitUntil(
          () => first.records().length >= 4 && first.batches.length >= batches,
          `four records in ${batches} batches`,
        );
        await first.stop();
        const [saved, ...later] = first.batches;
        assert.ok(saved, 'a first batch');
        const before = new Set(saved.records.map((record) => driver.key(record)));
        const expected = later.flatMap((batch) => batch.records.map((record) => driver.key(record)));

        if (driver.resume === 'gap-fill') await driver.produce(2); // happens while the feed is down
        const second = collect(driver.create(), saved.position);
        try {
          await driver.ready();
          if (driver.resume !== 'exact') await driver.produce(2);
          // exact: what followed the position; gap-fill: that, the 2 made while down and the 2 made since;
          // live-only: the 2 made since (what happened while down is gone).
          const wanted = { exact: expected.length, 'gap-fill': expected.length + 4, 'live-only': 2 }[
            driver.resume
          ];
          const fresh = () => second.records().filter((record) => !before.has(driver.key(record)));
          await waitUntil(
            () => new Set(fresh().map((record) => driver.key(record))).size >= wanted,
            `${wanted} records after the restart`,
          );
          const keys = second.records().map((record) => driver.key(record));
          if (driver.resume === 'exact') {
            assert.deepEqual(keys.slice(0, expected.length), expected, 'continues right after the position');
          } else {
            const unique = new Set(keys);
            if (driver.resume === 'gap-fill') {
              for (const key of expected)
                assert.ok(unique.has(key), `${key} after the position is not skipped`);
            }
            const last = [...before].at(-1);
            const reread = keys.filter(
              (key) => before.has(key) && !(driver.replaysLastOnSubscribe && key === last),
            );
            assert.deepEqual(reread, [], 'nothing up to the position is read again');
          }
          assert.equal(second.error(), undefined);
        } finally {
          await second.stop();
        }
      }));

    it('stops when the signal aborts', () =>
      withDriver(async (driver) => {
        const run = collect(driver.create());
        await driver.ready();
        await driver.produce(1);
        await waitUntil(() => run.records().length >= 1, 'a record');
        let ended = false;
        const stopping = run.stop().then(() => {
          ended = true;
        });
        // Promptly: the run must not wait for the next record, poll or reconnect.
        await waitUntil(() => ended, 'the run to end after abort', 5_000);
        await stopping;
        assert.equal(run.error(), undefined);
      }));

    it('counts malformed frames and keeps going, never throwing', (context) =>
      ifDriver(
        context,
        (driver) => driver.sendMalformed !== undefined,
        'no provider frames: nothing can be malformed',
        async (driver) => {
          const feed = driver.create();
          const run = collect(feed);
          try {
            await driver.ready();
            const count = await driver.sendMalformed!();
            await driver.produce(1);
            await waitUntil(() => run.records().length >= 1, 'the good record after the bad frames');
            await waitUntil(() => feed.status?.()?.malformed === count, `${count} malformed counted`);
            assert.equal(run.error(), undefined);
            assert.notEqual(feed.status?.()?.state, 'fatal');
          } finally {
            await run.stop();
          }
        },
      ));

    it('ends as fatal with a classified cause when retrying cannot help', (context) =>
      ifDriver(
        context,
        (driver) => driver.refuseFatally !== undefined,
        'the fake cannot refuse for good',
        async (driver) => {
          driver.refuseFatally!();
          const feed = driver.create();
          const run = collect(feed);
          await run.done;
          assert.ok(run.error() instanceof Error, 'the run ends with an error');
          const status = feed.status?.();
          assert.equal(status?.state, 'fatal');
          assert.ok(status?.fatal, 'fatal names the reason');
          assert.equal(status?.cause, status?.fatal);
          assert.ok(status?.causeKind, 'the cause is classified');
          assert.equal(status?.connected, false);
        },
      ));

    it('reports connection status fields, and a closed port as failing with cause `refused`', (context) =>
      ifDriver(
        context,
        (driver) => driver.create().status !== undefined,
        'not a live feed: it has no connection to report',
        async (driver) => {
          const feed = driver.create();
          const run = collect(feed);
          try {
            await driver.ready();
            await waitUntil(() => feed.status!().state === 'connected', 'connected');
            const status = feed.status!();
            assert.ok(CONNECTION_STATES.includes(status.state ?? ''), String(status.state));
            assert.equal(status.connected, true);
            assert.equal(typeof status.reconnects, 'number');
            assert.equal(status.failedAttempts, 0);
            assert.equal(typeof status.lastConnectedAt, 'number');
            assert.equal(status.cause, undefined);
            assert.equal(typeof status.malformed, 'number');
          } finally {
            await run.stop();
          }
          if (!driver.createAt) return;
          const unreachable = driver.createAt(await closedPort());
          const failing = collect(unreachable);
          try {
            await waitUntil(() => (unreachable.status!().failedAttempts ?? 0) >= 1, 'a failed attempt');
            const status = unreachable.status!();
            assert.equal(status.state, 'failing');
            assert.equal(status.causeKind, 'refused');
            assert.match(status.cause ?? '', /refused/);
            assert.equal(status.lastConnectedAt, null);
          } finally {
            await failing.stop();
          }
        },
      ));
  });
}
