/**
 * The Redis cache and bus against a real redis-server (test/support/redis.ts): the shared
 * conformance suites, plus what only a shared server shows (another client sees the data, key
 * prefixes isolate deployments, a dropped server is counted rather than thrown).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from 'redis';
import { latestCacheConformance, latestTick, liveBusConformance } from '../../src/cache/conformance.ts';
import { RedisLatestCache } from '../../src/cache/redis/redis-latest-cache.ts';
import { RedisLiveBus } from '../../src/cache/redis/redis-live-bus.ts';
import { closeCache, createCache, openCache } from '../../src/cache/registry.ts';
import { cacheConfigSchema } from '../../src/config/schema.ts';
import { LiveJson } from '../../src/core/pipeline-view.ts';
import { findOrStartRedis } from '../support/redis.ts';
import { remoteViewScenario } from '../support/view-scenario.ts';
import { waitUntil } from '../support/wait.ts';

const redis = await findOrStartRedis();

if ('skip' in redis) {
  it('Redis cache and bus', { skip: redis.skip }, () => {});
} else {
  const { url } = redis;
  after(() => redis.stop());

  let prefixCounter = 0;
  /** A prefix per test, so tests share the server but never each other's keys or channel. */
  const freshPrefix = () => `streamlines-test:${process.pid}:${++prefixCounter}:`;

  /** Opens what `make` makes and keeps it, so `closeAll` closes everything a conformance case opened. */
  const openedTracker = () => {
    const opened: { close(): Promise<void> }[] = [];
    return {
      open: async <T extends { open(): Promise<void>; close(): Promise<void> }>(made: T): Promise<T> => {
        await made.open();
        opened.push(made);
        return made;
      },
      closeAll: async () => {
        for (const one of opened) await one.close();
      },
    };
  };

  latestCacheConformance('redis', async () => {
    const tracker = openedTracker();
    return {
      create: (ttlMs) => tracker.open(new RedisLatestCache({ url, ttlMs, keyPrefix: freshPrefix() })),
      cleanup: tracker.closeAll,
    };
  });

  liveBusConformance('redis, separate publisher and subscriber connections', async () => {
    const keyPrefix = freshPrefix();
    // Small publishes, so the 5000-message test also checks that split batches stay in order.
    const tracker = openedTracker();
    return {
      publisher: await tracker.open(new RedisLiveBus({ url, keyPrefix, maxMessagesPerPublish: 64 })),
      subscriber: () => tracker.open(new RedisLiveBus({ url, keyPrefix })),
      cleanup: tracker.closeAll,
    };
  });

  describe('Redis live bus wire format', () => {
    it('publishes a batch as CHANNEL<TAB>JSON lines; an encoded subscriber gets the JSON text unparsed', async () => {
      const keyPrefix = freshPrefix();
      const publisher = new RedisLiveBus({ url, keyPrefix });
      const subscriber = new RedisLiveBus({ url, keyPrefix });
      const raw = createClient({ url });
      await Promise.all([publisher.open(), subscriber.open(), raw.connect()]);
      try {
        const payloads: string[] = [];
        await raw.subscribe(`${keyPrefix}live`, (message) => payloads.push(message));
        const received: { channel: string; data: unknown }[] = [];
        await subscriber.subscribe((channel, data) => received.push({ channel, data }), { encoded: true });
        publisher.publish('ticks:BTCUSDT', { price: 1.5, id: 'x' });
        publisher.publish('alerts', { kind: 'price_above' });
        await waitUntil(() => payloads.length >= 1 && received.length >= 2, 'the batch');
        assert.deepEqual(payloads, [
          'ticks:BTCUSDT\t{"price":1.5,"id":"x"}\nalerts\t{"kind":"price_above"}\n',
        ]);
        assert.ok(received.every(({ data }) => data instanceof LiveJson));
        assert.deepEqual(
          received.map(({ channel, data }) => [channel, (data as LiveJson).json]),
          [
            ['ticks:BTCUSDT', '{"price":1.5,"id":"x"}'],
            ['alerts', '{"kind":"price_above"}'],
          ],
        );
        // Lines that are not CHANNEL<TAB>JSON (someone else publishing on the channel) are counted.
        await raw
          .duplicate()
          .connect()
          .then(async (other) => {
            await other.publish(`${keyPrefix}live`, 'no tab here\n');
            await other.close();
          });
        await waitUntil(() => subscriber.receiveErrors === 1, 'the bad line counted');
      } finally {
        await raw.close();
        await Promise.all([publisher.close(), subscriber.close()]);
      }
    });
  });

  // A processor and a serve process, each with its own Redis connections.
  remoteViewScenario('redis cache', async () => {
    const keyPrefix = freshPrefix();
    const processSide = createCache(cacheConfigSchema.parse({ type: 'redis', url, keyPrefix }));
    const serveSide = createCache(cacheConfigSchema.parse({ type: 'redis', url, keyPrefix }));
    await openCache(processSide);
    await openCache(serveSide);
    return {
      processSide,
      serveSide,
      cleanup: async () => {
        await closeCache(processSide);
        await closeCache(serveSide);
      },
    };
  });

  describe('Redis cache on a shared server', () => {
    it('a tick set by one client is read by another, with a PX expiry set in Redis', async () => {
      const keyPrefix = freshPrefix();
      const writer = new RedisLatestCache({ url, ttlMs: 30_000, keyPrefix });
      const reader = new RedisLatestCache({ url, ttlMs: 30_000, keyPrefix });
      await writer.open();
      await reader.open();
      try {
        await writer.set([latestTick('BTCUSDT', 64_000.5)]);
        assert.deepEqual(await reader.get('BTCUSDT'), latestTick('BTCUSDT', 64_000.5));
        // Checked with a raw client: the key layout and TTL are what docs/distributed.md promises.
        const raw = createClient({ url });
        await raw.connect();
        try {
          const ttl = await raw.pTTL(`${keyPrefix}latest:BTCUSDT`);
          assert.ok(ttl > 25_000 && ttl <= 30_000, `PTTL ${ttl} should be just under 30000`);
        } finally {
          await raw.close();
        }
      } finally {
        await writer.close();
        await reader.close();
      }
    });

    it('key prefixes isolate deployments sharing one Redis', async () => {
      const one = createCache(cacheConfigSchema.parse({ type: 'redis', url, keyPrefix: freshPrefix() }));
      const two = createCache(cacheConfigSchema.parse({ type: 'redis', url, keyPrefix: freshPrefix() }));
      await openCache(one);
      await openCache(two);
      try {
        const heardByTwo: unknown[] = [];
        await two.bus.subscribe((_channel, data) => heardByTwo.push(data));
        const heardByOne: unknown[] = [];
        await one.bus.subscribe((_channel, data) => heardByOne.push(data));
        await one.latest.set([latestTick('ETHUSDT', 3000)]);
        one.bus.publish('alerts', { from: 'one' });
        await waitUntil(() => heardByOne.length === 1, 'deployment one to hear its own message');
        await sleep(50);
        assert.deepEqual(heardByTwo, []);
        assert.deepEqual(await two.latest.all(), []);
        assert.equal((await one.latest.get('ETHUSDT'))?.price, 3000);
      } finally {
        await closeCache(one);
        await closeCache(two);
      }
    });

    it('a prefix with glob characters matches literally', async () => {
      const literal = new RedisLatestCache({ url, ttlMs: 30_000, keyPrefix: `${freshPrefix()}[x]*` });
      const other = new RedisLatestCache({ url, ttlMs: 30_000, keyPrefix: `${freshPrefix()}x` });
      await literal.open();
      await other.open();
      try {
        await other.set([latestTick('OTHER', 1)]);
        await literal.set([latestTick('MINE', 2)]);
        assert.deepEqual(
          (await literal.all()).map((tick) => tick.symbol),
          ['MINE'],
        );
      } finally {
        await literal.close();
        await other.close();
      }
    });

    it('all() reads more keys than one MGET chunk', async () => {
      const cache = new RedisLatestCache({ url, ttlMs: 30_000, keyPrefix: freshPrefix() });
      await cache.open();
      try {
        const ticks = Array.from({ length: 1_234 }, (_, i) =>
          latestTick(`S${String(i).padStart(4, '0')}`, i + 1),
        );
        await cache.set(ticks);
        const all = await cache.all();
        assert.equal(all.length, 1_234);
        assert.deepEqual(all, ticks);
      } finally {
        await cache.close();
      }
    });

    it('publishing while Redis is unreachable is counted, not thrown', async (t) => {
      // A server of its own, stopped under the bus: a lost connection, deterministically.
      const doomed = await findOrStartRedis();
      if ('skip' in doomed || !doomed.started) {
        t.skip('needs a redis-server of its own (STREAMLINES_TEST_REDIS_URL is set)');
        return;
      }
      const bus = new RedisLiveBus({ url: doomed.url, keyPrefix: freshPrefix(), onError: () => {} });
      try {
        await bus.open();
        bus.publish('alerts', { delivered: true });
        await sleep(50);
        assert.equal(bus.publishErrors, 0);
        await doomed.stop();
        await sleep(50);
        assert.doesNotThrow(() => bus.publish('alerts', { lost: true }));
        await waitUntil(() => bus.publishErrors === 1, 'the failed publish to be counted');
      } finally {
        await bus.close();
        await doomed.stop();
      }
    });
  });
}
