/**
 * One end-to-end check shared by the memory and Redis caches: a real ProcessRunner publishes
 * through `createLivePublisher`, and a RemotePipelineView built from another process's view of the
 * same cache and store must agree with the runner on counters, offsets, forming candles, live
 * messages and latest prices.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { LiveMessage } from '../../src/cache/live-bus.ts';
import { createLivePublisher } from '../../src/cache/live-publisher.ts';
import type { Cache } from '../../src/cache/registry.ts';
import { CheckpointStatsSource, RemotePipelineView } from '../../src/cache/remote-pipeline-view.ts';
import { liveValue } from '../../src/core/pipeline-view.ts';
import { INTERVALS, type IngestEntry, TOPIC_TICKS } from '../../src/core/records.ts';
import { MemoryLog } from '../../src/log/memory/memory-log.ts';
import { DEFAULT_ANOMALY } from '../../src/process/anomaly.ts';
import { ProcessRunner } from '../../src/process/process-runner.ts';
import { MemoryStore } from '../../src/store/memory/memory-store.ts';
import { waitUntil } from './wait.ts';

/** The processor's cache and the serve process's cache (the same object in process). */
export interface CachePair {
  processSide: Cache;
  serveSide: Cache;
  cleanup(): Promise<void>;
}

/** A whole hour, so every interval's buckets start together. */
const T0 = 3_600_000 * 472_222;

function tick(symbol: string, seconds: number, price: number, size = 1): IngestEntry {
  return { kind: 'tick', source: 'replay', symbol, ts: T0 + seconds * 1000, price, size, receivedAt: 1 };
}

export function remoteViewScenario(name: string, makePair: () => Promise<CachePair>): void {
  it(`RemotePipelineView agrees with the ProcessRunner it listens to (${name})`, async () => {
    const pair = await makePair();
    const log = new MemoryLog();
    const store = new MemoryStore();
    await log.open();
    await store.open();
    const publisher = createLivePublisher(pair.processSide);
    const runner = new ProcessRunner({
      log,
      store,
      config: { latenessMs: 10_000, priceRules: [{ symbol: 'AAA', above: 105 }], anomaly: DEFAULT_ANOMALY },
      publish: publisher.publish,
    });
    const view = new RemotePipelineView({
      bus: pair.serveSide.bus,
      stats: new CheckpointStatsSource({ store, logEndOffset: () => log.endOffset(TOPIC_TICKS, 0) }),
      refreshMs: 60_000,
    });
    const live: LiveMessage[] = [];
    const stop = new AbortController();
    let running: Promise<void> | undefined;
    try {
      await view.open();
      view.onLive((channel, data) => live.push({ channel, data: liveValue(data) }));
      assert.deepEqual(view.stats().processedOffset, 0);

      // By hand: AAA 100 -> 106 crosses `above 105` once; the rejected record counts as received.
      const entries: IngestEntry[] = [
        tick('AAA', 0, 100),
        tick('BBB', 10, 50, 2),
        tick('AAA', 30, 106),
        {
          kind: 'rejected',
          source: 'replay',
          reason: 'invalid_price',
          detail: 'x',
          raw: '{}',
          receivedAt: 1,
        },
        tick('AAA', 70, 104),
      ];
      await log.append(
        TOPIC_TICKS,
        entries.map((value) => ({ key: value.kind === 'tick' ? value.symbol : '', value })),
      );
      await runner.open();
      running = runner.run(stop.signal);
      await waitUntil(() => runner.committedOffset() === 5, 'the runner to commit the 5 entries');
      await publisher.flushed();
      await waitUntil(() => live.some((message) => message.channel === 'alerts'), 'the price_above alert');
      // AAA's watermark is 70 s - 10 s = 60 s: minute 0 is final, minute 1 still forming.
      await waitUntil(() => view.formingCandles('AAA', '1m').length === 1, 'AAA’s forming 1m window');
      assert.equal(view.formingCandles('AAA', '1m')[0]?.ts, T0 + 60_000);

      await view.refresh();
      const stats = view.stats();
      assert.deepEqual(
        {
          ...stats,
          drained: undefined,
          logEndOffset: undefined,
          processedOffset: undefined,
          feeds: undefined,
        },
        {
          ...runner.counters(),
          drained: undefined,
          logEndOffset: undefined,
          processedOffset: undefined,
          feeds: undefined,
        },
      );
      assert.equal(stats.accepted, 4);
      assert.equal(stats.rejected, 1);
      assert.equal(stats.alertsFired, 1);
      assert.equal(stats.processedOffset, 5);
      assert.equal(stats.logEndOffset, 5);
      assert.equal(stats.drained, false);
      assert.deepEqual(stats.feeds, []);
      for (const symbol of ['AAA', 'BBB']) {
        for (const interval of INTERVALS) {
          assert.deepEqual(
            view.formingCandles(symbol, interval),
            runner.formingCandles(symbol, interval),
            `${symbol} ${interval}`,
          );
        }
      }
      assert.deepEqual(await pair.serveSide.latest.get('AAA'), await store.latest('AAA'));
      assert.deepEqual(
        (await pair.serveSide.latest.all()).map((latest) => [latest.symbol, latest.price]),
        [
          ['AAA', 104],
          ['BBB', 50],
        ],
      );
      assert.deepEqual(
        live
          .filter((message) => message.channel === 'ticks:AAA')
          .map((message) => (message.data as { price: number }).price),
        [100, 106, 104],
      );

      // The replay ends: every window becomes final, so nothing is forming any more.
      await log.append(TOPIC_TICKS, [
        { key: '', value: { kind: 'end', source: 'replay' } satisfies IngestEntry },
      ]);
      await waitUntil(() => runner.committedOffset() === 6, 'the runner to commit the end');
      await waitUntil(
        () => INTERVALS.every((interval) => view.formingCandles('AAA', interval).length === 0),
        'AAA’s windows to close',
      );
      assert.deepEqual(view.formingCandles('BBB', '1h'), []);
      await view.refresh();
      assert.equal(view.stats().drained, true);
      assert.equal(view.stats().candlesClosed, runner.counters().candlesClosed);
    } finally {
      stop.abort();
      await running;
      await view.close();
      await log.close();
      await store.close();
      await pair.cleanup();
    }
  });
}
