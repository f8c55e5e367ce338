import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { FakeCoinbase, match } from '../../../test/fakes/fake-coinbase-server.ts';
import { FeedHarness, liveFeedTest } from '../../../test/fakes/feed-harness.ts';
import { waitUntil } from '../../../test/support/wait.ts';
import type { LiveTradeFeed } from '../connection/live-trade-feed.ts';
import { coinbaseFeedSchema, createCoinbaseFeed } from './coinbase-feed.ts';

/** FEEDS.md sample `coinbase-exchange-matches.ndjson`, second line, verbatim. */
const SAMPLE_MATCH =
  '{"type":"match","trade_id":978694535,"maker_order_id":"b7d1f2a3-5c6e-4f7a-9b8c-0d1e2f3a4b5c","taker_order_id":"c9e3a4b5-6d7f-4a8b-8c9d-1e2f3a4b5c6d","side":"buy","size":"0.02000000","price":"96412.14","product_id":"BTC-USD","sequence":123894075388,"time":"2026-11-20T15:30:01.201877Z"}';

describe('coinbase feed', () => {
  const setup = liveFeedTest(() => FakeCoinbase.start());

  function feed(symbols = ['BTC-USD'], tuning: object = {}): LiveTradeFeed {
    const config = coinbaseFeedSchema.parse({ type: 'coinbase', symbols, ...setup.fake.endpoints });
    return createCoinbaseFeed(config, setup.tuned(tuning));
  }

  it('subscribes to matches and heartbeat and stores the TAKER side (the opposite of `side`)', async () => {
    setup.harness = await setup.startSubscribed(feed(), 'BTC-USD');
    assert.deepEqual(setup.fake.exchange.clients[0]?.received[0], {
      type: 'subscribe',
      product_ids: ['BTC-USD'],
      channels: ['matches', 'heartbeat'],
    });
    setup.fake.sendRaw(SAMPLE_MATCH);
    const [tick] = await setup.harness.waitForTicks(1);
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
    setup.harness = await setup.startSubscribed(live, 'BTC-USD');
    const t0 = Date.now() - 10_000;
    for (let id = 101; id <= 103; id++)
      setup.fake.publish(match('BTC-USD', id, t0 + id, '50000.5', '0.1', 'sell'));
    await setup.harness.waitForTicks(3);
    setup.fake.silent = true;
    setup.fake.exchange.dropAll();
    for (let id = 104; id <= 107; id++)
      setup.fake.publish(match('BTC-USD', id, t0 + id, '50001', '0.2', 'buy'));
    setup.fake.silent = false;
    await waitUntil(() => setup.fake.subscribers('BTC-USD').length === 1, 'resubscription');
    setup.fake.publish(match('BTC-USD', 108, t0 + 108, '50002', '0.3', 'sell'));
    await setup.harness.waitForTicks(8);
    await sleep(100);
    const ticks = await setup.harness.ticks();
    assert.deepEqual(
      ticks.map((tick) => Number(tick.id)).sort((a, b) => a - b),
      [101, 102, 103, 104, 105, 106, 107, 108],
    );
    assert.equal(ticks.find((tick) => tick.id === '105')?.side, 'sell', 'REST side is the maker side too');
    // Forward paging: after = last id + limit + 1.
    assert.ok(setup.fake.exchange.httpRequests.includes('/products/BTC-USD/trades?limit=1000&after=1104'));
    assert.equal(live.status().reconnects, 1);
    assert.ok(live.status().backfilled >= 4);
  });

  it('a heartbeat whose last_trade_id runs ahead triggers a REST gap fill without reconnecting', async () => {
    const live = feed();
    setup.harness = await setup.startSubscribed(live, 'BTC-USD');
    const t0 = Date.now() - 1_000;
    setup.fake.publish(match('BTC-USD', 1, t0, '10', '1', 'buy'));
    await setup.harness.waitForTicks(1);
    setup.fake.silent = true;
    setup.fake.publish(match('BTC-USD', 2, t0 + 1, '11', '1', 'buy'));
    setup.fake.silent = false;
    setup.fake.heartbeat('BTC-USD');
    const ticks = await setup.harness.waitForTicks(2);
    assert.equal(ticks[1]?.id, '2');
    assert.equal(setup.fake.exchange.clients.length, 1);
    assert.equal(live.status().backfilled, 1);
  });

  it('heartbeats keep a quiet product alive; their absence trips the watchdog', async () => {
    const live = feed(['BTC-USD'], { staleAfterMs: 250 });
    setup.harness = await setup.startSubscribed(live, 'BTC-USD');
    for (let i = 0; i < 6; i++) {
      setup.fake.heartbeat('BTC-USD');
      await sleep(100);
    }
    assert.equal(setup.fake.exchange.clients.length, 1, 'heartbeats every 100 ms keep the connection');
    await waitUntil(() => setup.fake.exchange.clients.length === 2, 'watchdog reconnect', 2_000);
    await waitUntil(() => live.status().reconnects === 1, 'reconnect counted');
  });

  it('an unknown product is fatal: no retry loop, reason in the status', async () => {
    const live = feed(['BTC-USDX']);
    setup.harness = await FeedHarness.start(live);
    await setup.harness.done;
    assert.match(live.status().fatal ?? '', /BTC-USDX is not a valid product/);
    await sleep(300);
    assert.equal(setup.fake.exchange.clients.length, 1);
    assert.equal(setup.harness.ingest.feedStatuses()[0]?.fatal, live.status().fatal);
  });

  it('counts malformed frames and carries on', async () => {
    const live = feed();
    setup.harness = await setup.startSubscribed(live, 'BTC-USD');
    setup.fake.sendRaw('{oops');
    setup.fake.sendRaw('{"type":"match","trade_id":"x"}');
    setup.fake.sendRaw('{"no":"type"}');
    setup.fake.sendRaw(SAMPLE_MATCH);
    await setup.harness.waitForTicks(1);
    assert.equal(live.status().malformed, 3);
    assert.equal(setup.fake.exchange.clients.length, 1);
  });
});
