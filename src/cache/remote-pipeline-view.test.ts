import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { remoteViewScenario } from '../../test/support/view-scenario.ts';
import { cacheConfigSchema } from '../config/schema.ts';
import { LiveJson } from '../core/pipeline-view.ts';
import { type Candle, emptyCounters } from '../core/records.ts';
import { makeBatch } from '../store/conformance.ts';
import { MemoryStore } from '../store/memory/memory-store.ts';
import { MemoryLiveBus } from './memory/memory-live-bus.ts';
import { closeCache, createCache } from './registry.ts';
import {
  CheckpointStatsSource,
  RemotePipelineView,
  type StatsSnapshot,
  type StatsSource,
} from './remote-pipeline-view.ts';

remoteViewScenario('memory cache', async () => {
  const cache = createCache(cacheConfigSchema.parse({ type: 'memory' }));
  return { processSide: cache, serveSide: cache, cleanup: () => closeCache(cache) };
});

function candle(ts: number, close: number, final: boolean): Candle {
  return {
    symbol: 'A:B',
    interval: '1m',
    ts,
    open: 1,
    high: 2,
    low: 1,
    close,
    volume: 1,
    trades: 1,
    vwap: 1,
    final,
  };
}

/** A memory bus whose subscribers get every message's data as JSON text, as from Redis. */
function serialisingBus(): MemoryLiveBus {
  const bus = new MemoryLiveBus();
  const subscribe = bus.subscribe.bind(bus);
  bus.subscribe = (listener) =>
    subscribe((channel, data) => listener(channel, new LiveJson(JSON.stringify(data))));
  return bus;
}

const zeroStats: StatsSnapshot = {
  ...emptyCounters(),
  drained: false,
  logEndOffset: 0,
  processedOffset: 0,
};

describe('RemotePipelineView', () => {
  for (const serialised of [false, true]) {
    it(`tracks forming candles by their series, drops them when final, bounds them${serialised ? ' (candles as JSON text from another process)' : ''}`, async () => {
      const bus = serialised ? serialisingBus() : new MemoryLiveBus();
      const view = new RemotePipelineView({
        bus,
        stats: { read: async () => zeroStats },
        maxFormingPerSeries: 2,
      });
      await view.open();
      try {
        bus.publish('candles:A:B:1m', candle(120_000, 5, false));
        bus.publish('candles:A:B:1m', candle(60_000, 3, false));
        bus.publish('candles:A:B:1m', candle(60_000, 4, false)); // replaces the 60 s window
        assert.deepEqual(
          view.formingCandles('A:B', '1m').map((c) => [c.ts, c.close]),
          [
            [60_000, 4],
            [120_000, 5],
          ],
        );
        bus.publish('candles:A:B:1m', candle(180_000, 6, false)); // a third: the oldest goes
        assert.deepEqual(
          view.formingCandles('A:B', '1m').map((c) => c.ts),
          [120_000, 180_000],
        );
        bus.publish('candles:A:B:1m', candle(120_000, 5, true));
        assert.deepEqual(
          view.formingCandles('A:B', '1m').map((c) => c.ts),
          [180_000],
        );
        assert.deepEqual(view.formingCandles('A:B', '5m'), []);
      } finally {
        await view.close();
      }
    });
  }

  it('forwards live messages to listeners until they unsubscribe, and stops at close', async () => {
    const bus = new MemoryLiveBus();
    const view = new RemotePipelineView({ bus, stats: { read: async () => zeroStats } });
    await view.open();
    const heard: string[] = [];
    const off = view.onLive((channel) => heard.push(channel));
    bus.publish('ticks:X', {});
    off();
    bus.publish('ticks:Y', {});
    view.onLive((channel) => heard.push(`again ${channel}`));
    await view.close();
    bus.publish('ticks:Z', {});
    assert.deepEqual(heard, ['ticks:X']);
  });

  it('refreshes stats on its timer and keeps the last good stats when a refresh fails', async () => {
    let reads = 0;
    const errors: unknown[] = [];
    const source: StatsSource = {
      read: async () => {
        reads++;
        if (reads === 3) throw new Error('store down');
        return { ...zeroStats, accepted: reads };
      },
    };
    const view = new RemotePipelineView({
      bus: new MemoryLiveBus(),
      stats: source,
      refreshMs: 10,
      onError: (error) => errors.push(error),
    });
    await view.open();
    try {
      assert.equal(view.stats().accepted, 1);
      const deadline = Date.now() + 5_000;
      while (reads < 4 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
      assert.equal(errors.length, 1);
      assert.equal(view.stats().accepted >= 2, true);
      assert.notEqual(view.stats().accepted, 3, 'the failed read never shows');
    } finally {
      await view.close();
    }
  });
});

describe('CheckpointStatsSource', () => {
  it('reads nothing as zeros, then the counters and offset sum of the checkpoint', async () => {
    const store = new MemoryStore();
    await store.open();
    const source = new CheckpointStatsSource({ store, logEndOffset: () => 9 });
    assert.deepEqual(await source.read(), { ...zeroStats, logEndOffset: 9 });
    const counters = {
      ...zeroStats,
      received: 7,
      accepted: 6,
      rejected: 1,
      rejectedByReason: { invalid_ts: 1 },
    };
    await store.write(
      makeBatch({
        // Offsets of three partitions: 4 + 3 + 2 = 9 processed, equal to the log end.
        checkpoint: { name: 'processor', offsets: { 0: 4, 1: 3, 2: 2 }, state: { counters, ended: true } },
      }),
    );
    const stats = await source.read();
    assert.equal(stats.processedOffset, 9);
    assert.equal(stats.received, 7);
    assert.deepEqual(stats.rejectedByReason, { invalid_ts: 1 });
    assert.equal(stats.drained, true);
    await store.close();
  });
});
