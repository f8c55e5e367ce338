import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { testCandle } from '../../test/support/records.ts';
import { parseConfig } from '../config/load.ts';
import { cacheConfigSchema } from '../config/schema.ts';
import { latestTick } from './conformance.ts';
import { createLivePublisher } from './live-publisher.ts';
import { MemoryLatestCache } from './memory/memory-latest-cache.ts';
import { MemoryLiveBus } from './memory/memory-live-bus.ts';
import { RedisLatestCache } from './redis/redis-latest-cache.ts';
import { RedisLiveBus } from './redis/redis-live-bus.ts';
import { closeCache, createCache, openCache } from './registry.ts';

describe('cache config and registry', () => {
  it('defaults to the in-process cache with a 60 s ttl', () => {
    const config = parseConfig({});
    assert.deepEqual(config.cache, { type: 'memory', ttlSeconds: 60 });
    const cache = createCache(config.cache);
    assert.ok(cache.latest instanceof MemoryLatestCache);
    assert.ok(cache.bus instanceof MemoryLiveBus);
  });

  it('builds the Redis pair (unopened, so no server is needed) from a redis section', () => {
    const config = parseConfig({ cache: { type: 'redis', url: 'redis://127.0.0.1:6379', ttlSeconds: 5 } });
    assert.deepEqual(config.cache, {
      type: 'redis',
      url: 'redis://127.0.0.1:6379',
      ttlSeconds: 5,
      keyPrefix: 'streamlines:',
    });
    const cache = createCache(config.cache, { env: { REDIS_PASSWORD: 'from-env' } });
    assert.ok(cache.latest instanceof RedisLatestCache);
    assert.ok(cache.bus instanceof RedisLiveBus);
  });

  it('rejects a password in the URL, a missing URL and unknown keys, naming the path', () => {
    assert.throws(
      () => parseConfig({ cache: { type: 'redis', url: 'redis://user:secret@host:6379' } }),
      /cache\.url: do not put a password in the config file: set REDIS_PASSWORD/,
    );
    assert.throws(() => parseConfig({ cache: { type: 'redis' } }), /cache\.url/);
    assert.throws(() => parseConfig({ cache: { type: 'memory', url: 'x' } }), /cache\.url: unknown key/);
    assert.throws(
      () => parseConfig({ cache: { type: 'redis', url: 'http://host' } }),
      /cache\.url: expected redis:/,
    );
    assert.throws(() => parseConfig({ cache: { type: 'memory', ttlSeconds: 0 } }), /cache\.ttlSeconds/);
  });

  it('an open that fails closes what it opened and rejects', async () => {
    // Port 1 on 127.0.0.1 refuses connections.
    const cache = createCache(cacheConfigSchema.parse({ type: 'redis', url: 'redis://127.0.0.1:1' }), {
      onError: () => {},
    });
    await assert.rejects(openCache(cache));
  });
});

describe('createLivePublisher', () => {
  it('forwards every message to the bus and writes the last tick per symbol once per batch', async () => {
    const cache = createCache(cacheConfigSchema.parse({ type: 'memory' }));
    await openCache(cache);
    const writes: number[] = [];
    const set = cache.latest.set.bind(cache.latest);
    cache.latest.set = (ticks) => {
      writes.push(ticks.length);
      return set(ticks);
    };
    const heard: string[] = [];
    await cache.bus.subscribe((channel) => heard.push(channel));
    const publisher = createLivePublisher(cache);
    const message = (symbol: string, price: number) => ({
      ...latestTick(symbol, price),
      id: null,
      late: false,
    });
    publisher.publish('ticks:AAA', message('AAA', 1));
    publisher.publish('ticks:BBB', message('BBB', 2));
    publisher.publish('ticks:AAA', message('AAA', 3));
    publisher.publish('alerts', { kind: 'price_above' });
    await publisher.flushed();
    await new Promise((resolve) => setImmediate(resolve));
    await publisher.flushed();
    assert.deepEqual(heard, ['ticks:AAA', 'ticks:BBB', 'ticks:AAA', 'alerts']);
    assert.deepEqual(writes, [2], 'one write of two symbols for the batch');
    assert.deepEqual(await cache.latest.get('AAA'), latestTick('AAA', 3));
    assert.equal(publisher.cacheErrors, 0);
    await closeCache(cache);
  });

  it('holds forming candles to one update per window and interval; finals, ticks and alerts go at once', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
    const cache = createCache(cacheConfigSchema.parse({ type: 'memory' }));
    await openCache(cache);
    const heard: string[] = [];
    await cache.bus.subscribe((channel, data) => {
      const candle = data as { ts: number; close: number; final: boolean };
      heard.push(
        channel.startsWith('candles:')
          ? `${channel} ${candle.ts} ${candle.close}${candle.final ? ' final' : ''}`
          : channel,
      );
    });
    const publisher = createLivePublisher(cache, { formingIntervalMs: 250 });
    const forming = (ts: number, close: number) => testCandle(ts, { close, final: false });
    const channel = 'candles:BTCUSDT:1m';

    publisher.publish(channel, forming(0, 1)); // the window's first update: at once
    publisher.publish(channel, forming(0, 2)); // held...
    publisher.publish('ticks:BTCUSDT', { ...latestTick('BTCUSDT', 2), id: null, late: false });
    publisher.publish(channel, forming(60_000, 10)); // another window of the channel: its own first update
    publisher.publish(channel, forming(0, 3)); // ...replaced by the newest state
    publisher.publish('alerts', { kind: 'price_above' });
    assert.deepEqual(heard, [`${channel} 0 1`, 'ticks:BTCUSDT', `${channel} 60000 10`, 'alerts']);

    t.mock.timers.tick(250);
    assert.deepEqual(heard.slice(4), [`${channel} 0 3`], 'only the newest held state, after the interval');

    publisher.publish(channel, forming(0, 4)); // held: the window was updated less than 250 ms ago
    publisher.publish(channel, testCandle(0, { close: 5, final: true })); // goes at once, and replaces it
    publisher.publish(channel, forming(60_000, 11)); // held
    t.mock.timers.tick(250);
    assert.deepEqual(heard.slice(5), [`${channel} 0 5 final`, `${channel} 60000 11`]);

    publisher.publish(channel, forming(60_000, 12)); // 250 ms after the last update: at once
    publisher.publish(channel, forming(60_000, 13)); // held until flushed
    await publisher.flushed();
    assert.deepEqual(heard.slice(7), [`${channel} 60000 12`, `${channel} 60000 13`]);
    await closeCache(cache);
  });

  it('holds nothing back with formingIntervalMs 0', async () => {
    const cache = createCache(cacheConfigSchema.parse({ type: 'memory' }));
    await openCache(cache);
    const closes: number[] = [];
    await cache.bus.subscribe((_channel, data) => closes.push((data as { close: number }).close));
    const publisher = createLivePublisher(cache, { formingIntervalMs: 0 });
    for (const close of [1, 2, 3])
      publisher.publish('candles:BTCUSDT:1m', testCandle(0, { close, final: false }));
    assert.deepEqual(closes, [1, 2, 3]);
    await closeCache(cache);
  });
});
