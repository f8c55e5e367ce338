import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { FakeCoinbase, match } from '../../../test/fakes/fake-coinbase-server.ts';
import { FeedHarness } from '../../../test/fakes/feed-harness.ts';
import { waitUntil } from '../../../test/support/wait.ts';
import type { LiveTradeFeed } from '../connection/live-trade-feed.ts';
import { coinbaseFeedSchema, createCoinbaseFeed } from './coinbase-feed.ts';

/** FEEDS.md sample `coinbase-exchange-matches.ndjson`, second line, verbatim. */
const SAMPLE_MATCH =
  '{"type":"match","trade_id":978694535,"maker_order_id":"b7d1f2a3-5c6e-4f7a-9b8c-0d1e2f3a4b5c","taker_order_id":"c9e3a4b5-6d7f-4a8b-8c9d-1e2f3a4b5c6d","side":"buy","size":"0.02000000","price":"96412.14","product_id":"BTC-USD","sequence":123894075388,"time":"2026-11-20T15:30:01.201877Z"}';

describe('coinbase feed', () => {
  let fake: FakeCoinbase;
  let harness: FeedHarness | undefined;
  const logs: string[] = [];

  beforeEach(async () => {
    fake = await FakeCoinbase.start();
    logs.length = 0;
  });
  afterEach(async () => {
    await harness?.stop();
    harness = undefined;
    await fake.close();
  });

  function feed(symbols = ['BTC-USD'], tuning: object = {}): LiveTradeFeed {
    const config = coinbaseFeedSchema.parse({
      type: 'coinbase',
      symbols,
      url: fake.url,
      restUrl: fake.restUrl,
    });
    return createCoinbaseFeed(config, {
      initialBackoffMs: 20,
      maxBackoffMs: 100,
      staleAfterMs: 2_000,
      log: (line: string) => logs.push(line),
      ...tuning,
    });
  }

  it('subscribes to matches and heartbeat and stores the TAKER side (the opposite of `side`)', async () => {
    harness = await FeedHarness.start(feed());
    await waitUntil(() => fake.subscribers('BTC-USD').length === 1, 'subscription');
    assert.deepEqual(fake.exchange.clients[0]?.received[0], {
      type: 'subscribe',
      product_ids: ['BTC-USD'],
      channels: ['matches', 'heartbeat'],
    });
    fake.sendRaw(SAMPLE_MATCH);
    const [tick] = await harness.waitForTicks(1);
    // From the sample: maker side "buy" ⇒ taker sold; time .201877 µs truncated to ms.
    assert.deepEqual(
      { ...tick, receivedAt: 0 },
      {
        kind: 'tick',
        source: 'coinbase',
        symbol: 'BTC-USD',
        ts: Date.UTC(2026, 10, 20, 15, 30, 1, 201),
        price: 96412.14,
        size: 0.02,
        id: '978694535',
        side: 'sell',
        receivedAt: 0,
      },
    );
  });

  it('reconnects after a drop, resubscribes and fills the gap over REST, each trade once', async () => {
    const live = feed();
    harness = await FeedHarness.start(live);
    await waitUntil(() => fake.subscribers('BTC-USD').length === 1, 'subscription');
    const t0 = Date.now() - 10_000;
    for (let id = 101; id <= 103; id++) fake.publish(match('BTC-USD', id, t0 + id, '50000.5', '0.1', 'sell'));
    await harness.waitForTicks(3);
    fake.silent = true;
    fake.exchange.dropAll();
    for (let id = 104; id <= 107; id++) fake.publish(match('BTC-USD', id, t0 + id, '50001', '0.2', 'buy'));
    fake.silent = false;
    await waitUntil(() => fake.subscribers('BTC-USD').length === 1, 'resubscription');
    fake.publish(match('BTC-USD', 108, t0 + 108, '50002', '0.3', 'sell'));
    await harness.waitForTicks(8);
    await sleep(100);
    const ticks = await harness.ticks();
    assert.deepEqual(
      ticks.map((tick) => Number(tick.id)).sort((a, b) => a - b),
      [101, 102, 103, 104, 105, 106, 107, 108],
    );
    assert.equal(ticks.find((tick) => tick.id === '105')?.side, 'sell', 'REST side is the maker side too');
    // Forward paging: after = last id + limit + 1.
    assert.ok(fake.exchange.httpRequests.includes('/products/BTC-USD/trades?limit=1000&after=1104'));
    assert.equal(live.status().reconnects, 1);
    assert.ok(live.status().backfilled >= 4);
  });

  it('a heartbeat whose last_trade_id runs ahead triggers a REST gap fill without reconnecting', async () => {
    const live = feed();
    harness = await FeedHarness.start(live);
    await waitUntil(() => fake.subscribers('BTC-USD').length === 1, 'subscription');
    const t0 = Date.now() - 1_000;
    fake.publish(match('BTC-USD', 1, t0, '10', '1', 'buy'));
    await harness.waitForTicks(1);
    fake.silent = true;
    fake.publish(match('BTC-USD', 2, t0 + 1, '11', '1', 'buy'));
    fake.silent = false;
    fake.heartbeat('BTC-USD');
    const ticks = await harness.waitForTicks(2);
    assert.equal(ticks[1]?.id, '2');
    assert.equal(fake.exchange.clients.length, 1);
    assert.equal(live.status().backfilled, 1);
  });

  it('heartbeats keep a quiet product alive; their absence trips the watchdog', async () => {
    const live = feed(['BTC-USD'], { staleAfterMs: 250 });
    harness = await FeedHarness.start(live);
    await waitUntil(() => fake.subscribers('BTC-USD').length === 1, 'subscription');
    for (let i = 0; i < 6; i++) {
      fake.heartbeat('BTC-USD');
      await sleep(100);
    }
    assert.equal(fake.exchange.clients.length, 1, 'heartbeats every 100 ms keep the connection');
    await waitUntil(() => fake.exchange.clients.length === 2, 'watchdog reconnect', 2_000);
    await waitUntil(() => live.status().reconnects === 1, 'reconnect counted');
  });

  it('an unknown product is fatal: no retry loop, reason in the status', async () => {
    const live = feed(['BTC-USDX']);
    harness = await FeedHarness.start(live);
    await harness.done;
    assert.match(live.status().fatal ?? '', /BTC-USDX is not a valid product/);
    await sleep(300);
    assert.equal(fake.exchange.clients.length, 1);
    assert.equal(harness.ingest.feedStatuses()[0]?.fatal, live.status().fatal);
  });

  it('counts malformed frames and carries on', async () => {
    const live = feed();
    harness = await FeedHarness.start(live);
    await waitUntil(() => fake.subscribers('BTC-USD').length === 1, 'subscription');
    fake.sendRaw('{oops');
    fake.sendRaw('{"type":"match","trade_id":"x"}');
    fake.sendRaw('{"no":"type"}');
    fake.sendRaw(SAMPLE_MATCH);
    await harness.waitForTicks(1);
    assert.equal(live.status().malformed, 3);
    assert.equal(fake.exchange.clients.length, 1);
  });
});
