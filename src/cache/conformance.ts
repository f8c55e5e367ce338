/**
 * The contracts every LatestCache and every LiveBus passes (STYLE §2): register them from a test
 * file with a factory. Timings are real (Redis expires keys on its own clock), with margins of at
 * least 150 ms around every expiry so a busy machine does not flip a result.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitUntil } from '../../test/support/wait.ts';
import { LiveJson, liveValue } from '../core/pipeline-view.ts';
import type { LatestTick } from '../store/store.ts';
import type { LatestCache } from './latest-cache.ts';
import type { LiveBus, LiveMessage } from './live-bus.ts';

export function latestTick(symbol: string, price: number, ts = 1_700_000_000_000): LatestTick {
  return { symbol, ts, price, size: 0.5, maShort: price - 1, maLong: null, source: 'synthetic' };
}

/** Opens a fresh, empty cache whose entries live `ttlMs`; `cleanup` closes every cache it made. */
export interface LatestCacheFactory {
  create(ttlMs: number): Promise<LatestCache>;
  cleanup(): Promise<void>;
}

export function latestCacheConformance(name: string, makeFactory: () => Promise<LatestCacheFactory>): void {
  describe(`LatestCache conformance: ${name}`, () => {
    let factory: LatestCacheFactory | undefined;
    const create = async (ttlMs = 60_000) => {
      factory ??= await makeFactory();
      return factory.create(ttlMs);
    };
    after(async () => factory?.cleanup());

    it('answers undefined and [] while empty', async () => {
      const cache = await create();
      assert.equal(await cache.get('BTCUSDT'), undefined);
      assert.deepEqual(await cache.all(), []);
    });

    it('returns what was set, every field, and all() ascending by symbol', async () => {
      const cache = await create();
      // Symbols with every separator the symbol rule allows, set out of order.
      const ticks = [
        latestTick('ETH/USD', 2000.25),
        latestTick('BTC-USD', 0.1 + 0.2),
        latestTick('A:B.C_D', 7),
      ];
      await cache.set(ticks);
      assert.deepEqual(await cache.get('BTC-USD'), ticks[1]);
      assert.deepEqual(await cache.get('A:B.C_D'), ticks[2]);
      assert.deepEqual(
        (await cache.all()).map((tick) => tick.symbol),
        ['A:B.C_D', 'BTC-USD', 'ETH/USD'],
      );
      assert.deepEqual(await cache.all(), [ticks[2], ticks[1], ticks[0]]);
    });

    it('keeps the last tick of a symbol: within one call and across calls', async () => {
      const cache = await create();
      await cache.set([latestTick('SOL', 1, 1), latestTick('SOL', 2, 2), latestTick('ADA', 3, 3)]);
      assert.equal((await cache.get('SOL'))?.price, 2);
      await cache.set([latestTick('SOL', 4, 4)]);
      assert.deepEqual(await cache.get('SOL'), latestTick('SOL', 4, 4));
      assert.deepEqual(
        (await cache.all()).map((tick) => [tick.symbol, tick.price]),
        [
          ['ADA', 3],
          ['SOL', 4],
        ],
      );
    });

    it('does not keep a reference to the caller’s object', async () => {
      const cache = await create();
      const tick = latestTick('XRP', 0.5);
      await cache.set([tick]);
      tick.price = 99;
      assert.equal((await cache.get('XRP'))?.price, 0.5);
    });

    it('an empty set is a no-op', async () => {
      const cache = await create();
      await cache.set([]);
      assert.deepEqual(await cache.all(), []);
    });

    it('expires an entry ttl after its last set; setting again restarts the ttl', async () => {
      // ttl 600 ms: OLD set at 0 expires at 600; KEPT set at 0 and again at 300 expires at 900.
      const cache = await create(600);
      await cache.set([latestTick('OLD', 1), latestTick('KEPT', 1)]);
      assert.equal((await cache.get('OLD'))?.price, 1);
      await sleep(300);
      await cache.set([latestTick('KEPT', 2)]);
      await sleep(450); // t = 750
      assert.equal(await cache.get('OLD'), undefined, 'OLD must have expired at 600 ms');
      assert.equal((await cache.get('KEPT'))?.price, 2, 'KEPT was set again at 300 ms');
      assert.deepEqual(
        (await cache.all()).map((tick) => tick.symbol),
        ['KEPT'],
      );
      await sleep(300); // t = 1050
      assert.equal(await cache.get('KEPT'), undefined, 'KEPT must have expired at 900 ms');
      assert.deepEqual(await cache.all(), []);
    });
  });
}

/**
 * A publisher and a way to make subscribers. In process the subscriber is the publisher's own bus;
 * with Redis each subscriber is a separate bus (as in another `serve` process).
 */
export interface LiveBusFixture {
  publisher: LiveBus;
  subscriber(): Promise<LiveBus>;
  cleanup(): Promise<void>;
}

export function liveBusConformance(name: string, makeFixture: () => Promise<LiveBusFixture>): void {
  describe(`LiveBus conformance: ${name}`, () => {
    const fixtures: LiveBusFixture[] = [];
    const fixture = async () => {
      const made = await makeFixture();
      fixtures.push(made);
      return made;
    };
    after(async () => {
      for (const made of fixtures) await made.cleanup();
    });

    const collect = async (bus: LiveBus) => {
      const received: LiveMessage[] = [];
      const unsubscribe = await bus.subscribe((channel, data) => received.push({ channel, data }));
      return { received, unsubscribe };
    };

    it('delivers {channel, data} in publish order, data intact', async () => {
      const { publisher, subscriber } = await fixture();
      const { received } = await collect(await subscriber());
      const sent: LiveMessage[] = [
        { channel: 'ticks:BTCUSDT', data: { price: 0.1 + 0.2, maLong: null, id: 'a', late: false } },
        {
          channel: 'candles:A:B:1m',
          data: { symbol: 'A:B', interval: '1m', final: false, nested: [1, [2]] },
        },
        { channel: 'alerts', data: { kind: 'price_above', message: 'ünïcødé ✓' } },
        { channel: 'ticks:BTCUSDT', data: { price: 1e-12 } },
      ];
      for (const message of sent) publisher.publish(message.channel, message.data);
      await waitUntil(() => received.length >= sent.length, 'the 4 messages');
      assert.deepEqual(received, sent);
      assert.equal(publisher.publishErrors, 0);
    });

    it('hands an encoded subscriber the same messages, data serialised or not', async () => {
      const { publisher, subscriber } = await fixture();
      const bus = await subscriber();
      const received: LiveMessage[] = [];
      await bus.subscribe((channel, data) => received.push({ channel, data }), { encoded: true });
      const sent: LiveMessage[] = [
        { channel: 'ticks:BTCUSDT', data: { price: 0.1 + 0.2, maLong: null, id: 'a\tb\nc' } },
        { channel: 'alerts', data: { message: 'ünïcødé ✓' } },
      ];
      for (const message of sent) publisher.publish(message.channel, message.data);
      await waitUntil(() => received.length >= sent.length, 'the 2 messages');
      // Where the data crossed a process it comes as JSON text that reads back the same.
      for (const message of received) {
        if (message.data instanceof LiveJson)
          assert.equal(message.data.json, JSON.stringify(message.data.value()));
      }
      assert.deepEqual(
        received.map(({ channel, data }) => ({ channel, data: liveValue(data) })),
        sent,
      );
    });

    it('keeps order across many messages published in one go and across turns', async () => {
      const { publisher, subscriber } = await fixture();
      const { received } = await collect(await subscriber());
      for (let i = 0; i < 5_000; i++) publisher.publish(`ticks:S${i % 7}`, { i });
      await sleep(1);
      for (let i = 5_000; i < 5_100; i++) publisher.publish('alerts', { i });
      await waitUntil(() => received.length >= 5_100, '5100 messages');
      assert.equal(received.length, 5_100);
      received.forEach((message, i) => {
        assert.deepEqual(message.data, { i });
        assert.equal(message.channel, i < 5_000 ? `ticks:S${i % 7}` : 'alerts');
      });
    });

    it('fans out to every subscriber; unsubscribing stops only that one', async () => {
      const { publisher, subscriber } = await fixture();
      const first = await collect(await subscriber());
      const second = await collect(await subscriber());
      publisher.publish('alerts', { n: 1 });
      await waitUntil(() => first.received.length === 1 && second.received.length === 1, 'both to get n=1');
      first.unsubscribe();
      publisher.publish('alerts', { n: 2 });
      await waitUntil(() => second.received.length === 2, 'the second subscriber to get n=2');
      // The Redis bus delivers in order on one connection: n=2 reached `second`, and would have
      // reached `first` in the same callback had it still been subscribed.
      await sleep(50);
      assert.deepEqual(
        first.received.map((message) => message.data),
        [{ n: 1 }],
      );
      assert.deepEqual(
        second.received.map((message) => message.data),
        [{ n: 1 }, { n: 2 }],
      );
    });

    it('is live only: what was published before subscribing is not delivered', async () => {
      const { publisher, subscriber } = await fixture();
      const bus = await subscriber();
      publisher.publish('alerts', { n: 'before' });
      await sleep(100);
      const { received } = await collect(bus);
      publisher.publish('alerts', { n: 'after' });
      await waitUntil(() => received.length >= 1, 'the message published after subscribing');
      await sleep(50);
      assert.deepEqual(received, [{ channel: 'alerts', data: { n: 'after' } }]);
    });

    it('close sends what was published just before it', async () => {
      const made = await fixture();
      const { received } = await collect(await made.subscriber());
      made.publisher.publish('alerts', { last: true });
      await made.publisher.close();
      await waitUntil(() => received.length === 1, 'the message published before close');
      assert.deepEqual(received[0], { channel: 'alerts', data: { last: true } });
    });
  });
}
