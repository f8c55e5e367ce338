import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { FakeKraken, krakenTrade } from '../../../test/fakes/fake-kraken-server.ts';
import { FeedHarness, liveFeedTest, tradeFields } from '../../../test/fakes/feed-harness.ts';
import { waitUntil } from '../../../test/support/wait.ts';
import type { LiveTradeFeed } from '../connection/live-trade-feed.ts';
import { createKrakenFeed, krakenFeedSchema, krakenRestPair } from './kraken-feed.ts';

/** FEEDS.md sample `kraken-trade.ndjson`, first line, verbatim (a two-trade snapshot). */
const SAMPLE_TRADES =
  '{"channel":"trade","type":"snapshot","data":[{"symbol":"BTC/USD","side":"buy","price":96410.1,"qty":0.00412,"ord_type":"market","trade_id":91422871,"timestamp":"2026-11-20T15:29:58.118204Z"},{"symbol":"BTC/USD","side":"sell","price":96409.9,"qty":0.15,"ord_type":"limit","trade_id":91422872,"timestamp":"2026-11-20T15:29:59.904155Z"}]}';

describe('kraken feed', () => {
  const setup = liveFeedTest(() => FakeKraken.start());

  function feed(symbols = ['BTC/USD'], tuning: object = {}): LiveTradeFeed {
    const config = krakenFeedSchema.parse({ type: 'kraken', symbols, ...setup.fake.endpoints });
    return createKrakenFeed(config, setup.tuned(tuning));
  }

  it('maps REST pair names the legacy way', () => {
    assert.equal(krakenRestPair('BTC/USD'), 'XBTUSD');
    assert.equal(krakenRestPair('eth/usd'), 'ETHUSD');
  });

  it('subscribes to trade and maps trades (taker side, numbers, RFC 3339 time, id), ignoring the status frame', async () => {
    const live = feed();
    setup.harness = await setup.startSubscribed(live, 'BTC/USD');
    assert.deepEqual(setup.fake.exchange.clients[0]?.received[0], {
      method: 'subscribe',
      params: { channel: 'trade', symbol: ['BTC/USD'], snapshot: false },
      req_id: 1,
    });
    setup.fake.sendRaw('{"channel":"heartbeat"}');
    setup.fake.sendRaw(SAMPLE_TRADES);
    const ticks = await setup.harness.waitForTicks(2);
    // From the sample; .118204 s truncates to 118 ms.
    assert.deepEqual(tradeFields(ticks), [
      {
        source: 'kraken',
        symbol: 'BTC/USD',
        ts: Date.UTC(2026, 10, 20, 15, 29, 58, 118),
        price: 96410.1,
        size: 0.00412,
        id: '91422871',
        side: 'buy',
      },
      {
        source: 'kraken',
        symbol: 'BTC/USD',
        ts: Date.UTC(2026, 10, 20, 15, 29, 59, 904),
        price: 96409.9,
        size: 0.15,
        id: '91422872',
        side: 'sell',
      },
    ]);
    assert.equal(live.status().malformed, 0, 'status frame with a >2^53 connection_id is not malformed');
  });

  it('sends app-level pings and takes the pongs', async () => {
    const live = feed(['BTC/USD'], {
      heartbeat: { intervalMs: 50, message: () => ({ method: 'ping', req_id: 99 }) },
    });
    setup.harness = await FeedHarness.start(live);
    await waitUntil(
      () =>
        (setup.fake.exchange.clients[0]?.received ?? []).filter(
          (m) => (m as { method?: string }).method === 'ping',
        ).length >= 2,
      'two pings',
    );
    assert.equal(live.status().malformed, 0);
    assert.equal(live.status().connected, true);
  });

  it('reconnects after a drop and fills the gap from REST Trades, each trade once', async () => {
    const live = feed();
    setup.harness = await setup.startSubscribed(live, 'BTC/USD');
    const t0 = Date.now() - 20_000;
    for (let id = 1; id <= 2; id++)
      setup.fake.publish(krakenTrade('BTC/USD', id, t0 + id * 1000, 90000 + id, 0.5, 'buy'));
    await setup.harness.waitForTicks(2);
    setup.fake.silent = true;
    setup.fake.exchange.dropAll();
    for (let id = 3; id <= 5; id++)
      setup.fake.publish(krakenTrade('BTC/USD', id, t0 + id * 1000, 90000 + id, 0.25, 'sell'));
    setup.fake.silent = false;
    await waitUntil(() => setup.fake.subscribers('BTC/USD').length === 1, 'resubscription');
    setup.fake.publish(krakenTrade('BTC/USD', 6, t0 + 6000, 90006, 1, 'buy'));
    await setup.harness.waitForTicks(6);
    await sleep(100);
    const ticks = await setup.harness.ticks();
    assert.deepEqual(
      ticks.map((tick) => Number(tick.id)).sort((a, b) => a - b),
      [1, 2, 3, 4, 5, 6],
    );
    const backfilled = ticks.find((tick) => tick.id === '4');
    assert.deepEqual(
      { price: backfilled?.price, size: backfilled?.size, side: backfilled?.side, ts: backfilled?.ts },
      { price: 90004, size: 0.25, side: 'sell', ts: t0 + 4000 },
    );
    assert.ok(
      setup.fake.exchange.httpRequests.some((path) => path.startsWith('/0/public/Trades?pair=XBTUSD')),
    );
    assert.equal(live.status().reconnects, 1);
  });

  it('a silent stall (no heartbeat) trips the watchdog', async () => {
    const live = feed(['BTC/USD'], { staleAfterMs: 200 });
    setup.harness = await FeedHarness.start(live);
    await waitUntil(() => setup.fake.exchange.clients.length >= 2, 'watchdog reconnect', 3_000);
    await waitUntil(() => live.status().reconnects >= 1, 'reconnect counted');
  });

  it('an unsupported pair is fatal, without a retry loop', async () => {
    const live = feed(['BTC/USDX']);
    setup.harness = await FeedHarness.start(live);
    await setup.harness.done;
    assert.match(live.status().fatal ?? '', /Currency pair not supported BTC\/USDX/);
    await sleep(300);
    assert.equal(setup.fake.exchange.clients.length, 1);
  });

  it('counts malformed frames and carries on', async () => {
    const live = feed();
    setup.harness = await setup.startSubscribed(live, 'BTC/USD');
    setup.fake.sendRaw('nope');
    setup.fake.sendRaw('{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","price":"x"}]}');
    setup.fake.sendRaw(SAMPLE_TRADES);
    await setup.harness.waitForTicks(2);
    assert.equal(live.status().malformed, 2);
  });
});
