import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { aggTrade, FakeBinance } from '../../../test/fakes/fake-binance-server.ts';
import { FeedHarness, liveFeedTest, tradeFields } from '../../../test/fakes/feed-harness.ts';
import { waitUntil } from '../../../test/support/wait.ts';
import type { LiveTradeFeed } from '../connection/live-trade-feed.ts';
import { binanceFeedSchema, createBinanceFeed } from './binance-feed.ts';

/** The two lines of FEEDS.md's sample `binance-aggTrade.ndjson`, verbatim. */
const SAMPLE = [
  '{"e":"aggTrade","E":1795188601234,"s":"BTCUSDT","a":3412876540,"p":"96412.15000000","q":"0.00520000","f":5871243001,"l":5871243001,"T":1795188601233,"m":false,"M":true}',
  '{"e":"aggTrade","E":1795188601240,"s":"BTCUSDT","a":3412876541,"p":"96412.14000000","q":"0.04100000","f":5871243002,"l":5871243004,"T":1795188601239,"m":true,"M":true}',
];

describe('binance feed', () => {
  const setup = liveFeedTest(() => FakeBinance.start());

  function feed(tuning: object = {}): LiveTradeFeed {
    const config = binanceFeedSchema.parse({
      type: 'binance',
      symbols: ['btcusdt'],
      ...setup.fake.endpoints,
    });
    return createBinanceFeed(config, [], setup.tuned(tuning));
  }

  it('subscribes to aggTrade and maps trades onto ticks (symbol, price, size, time, id, taker side)', async () => {
    const live = feed();
    setup.harness = await setup.startSubscribed(live, 'btcusdt@aggTrade');
    assert.equal(setup.fake.exchange.clients[0]?.path, '/ws');
    assert.deepEqual(setup.fake.exchange.clients[0]?.received[0], {
      method: 'SUBSCRIBE',
      params: ['btcusdt@aggTrade'],
      id: 1,
    });
    for (const line of SAMPLE) setup.fake.sendRaw(line);
    const ticks = await setup.harness.waitForTicks(2);
    // Expected values read off the sample: m=false ⇒ buyer was taker ⇒ buy; m=true ⇒ taker sold.
    assert.deepEqual(tradeFields(ticks), [
      {
        source: 'binance',
        symbol: 'BTCUSDT',
        ts: 1795188601233,
        price: 96412.15,
        size: 0.0052,
        id: '3412876540',
        side: 'buy',
      },
      {
        source: 'binance',
        symbol: 'BTCUSDT',
        ts: 1795188601239,
        price: 96412.14,
        size: 0.041,
        id: '3412876541',
        side: 'sell',
      },
    ]);
    const { state, connected, reconnects, failedAttempts, backfilled, malformed, cause } = live.status();
    assert.deepEqual(
      { state, connected, reconnects, failedAttempts, backfilled, malformed, cause },
      {
        state: 'connected',
        connected: true,
        reconnects: 0,
        failedAttempts: 0,
        backfilled: 0,
        malformed: 0,
        cause: undefined,
      },
    );
    assert.equal(setup.harness.ingest.feedStatuses()[0]?.state, 'connected');
  });

  it('answers server pings, and pings keep the watchdog quiet on a silent market', async () => {
    setup.harness = await setup.startSubscribed(feed({ staleAfterMs: 300 }), 'btcusdt@aggTrade');
    const client = setup.fake.exchange.clients[0]!;
    for (let i = 0; i < 8; i++) {
      client.ws.ping('hb');
      await sleep(100);
    }
    // 800 ms without a message but with a ping every 100 ms: still the first connection, and it ponged.
    assert.equal(setup.fake.exchange.clients.length, 1);
    assert.ok(client.pongs >= 7, `pongs: ${client.pongs}`);
  });

  it('after a dropped connection reconnects, resubscribes and backfills the gap without duplicates', async () => {
    const live = feed();
    setup.harness = await setup.startSubscribed(live, 'btcusdt@aggTrade');
    const t0 = Date.now() - 5_000;
    for (let id = 1; id <= 3; id++) setup.fake.publish(aggTrade('BTCUSDT', id, t0 + id, '100.5', '1', false));
    await setup.harness.waitForTicks(3);
    // The network drops; trades 4..6 happen while we are away (on the tape only).
    setup.fake.silent = true;
    setup.fake.exchange.dropAll();
    for (let id = 4; id <= 6; id++) setup.fake.publish(aggTrade('BTCUSDT', id, t0 + id, '100.6', '2', true));
    setup.fake.silent = false;
    await waitUntil(() => setup.fake.subscribers('btcusdt@aggTrade').length === 1, 'resubscription');
    for (let id = 7; id <= 8; id++) setup.fake.publish(aggTrade('BTCUSDT', id, t0 + id, '100.7', '1', false));
    const ticks = await setup.harness.waitForTicks(8);
    await sleep(100);
    const ids = (await setup.harness.ticks()).map((tick) => Number(tick.id)).sort((a, b) => a - b);
    assert.deepEqual(ids, [1, 2, 3, 4, 5, 6, 7, 8], 'every trade exactly once');
    assert.equal(ticks.find((tick) => tick.id === '5')?.side, 'sell');
    assert.equal(setup.fake.exchange.clients.length, 2);
    assert.ok(
      setup.fake.exchange.httpRequests.some(
        (path) => path.includes('/api/v3/aggTrades') && path.includes('fromId=4'),
      ),
      `REST asked from the first missed id: ${setup.fake.exchange.httpRequests.join(' ')}`,
    );
    const status = live.status();
    assert.equal(status.reconnects, 1);
    assert.equal(status.connected, true);
    // The page from id 4 holds 4..8; 7 and 8 may come live first, so at least the three missed ones.
    assert.ok(status.backfilled >= 3, `backfilled ${status.backfilled}`);
  });

  it('a silent stall trips the watchdog, which reconnects', async () => {
    const live = feed({ staleAfterMs: 200 });
    setup.harness = await setup.startSubscribed(live, 'btcusdt@aggTrade');
    // No message and no ping: the server-side socket stays open but says nothing.
    await waitUntil(() => setup.fake.exchange.clients.length >= 2, 'a second connection', 3_000);
    await waitUntil(() => live.status().reconnects >= 1, 'reconnect counted');
    assert.ok(
      setup.logs.some((line) => line.includes('stale')),
      setup.logs.join('\n'),
    );
  });

  it('rotates without a gap on serverShutdown (no reconnect counted)', async () => {
    const live = feed();
    setup.harness = await setup.startSubscribed(live, 'btcusdt@aggTrade');
    setup.fake.sendRaw('{"e":"serverShutdown","E":1795274600000}');
    await waitUntil(() => setup.fake.exchange.clients.length === 2, 'second connection');
    await waitUntil(
      () =>
        setup.fake.subscribers('btcusdt@aggTrade').length >= 1 &&
        setup.fake.exchange.clients[1]!.received.length > 0,
      'resubscribed',
    );
    setup.fake.publish(aggTrade('BTCUSDT', 10, Date.now(), '1', '1', false));
    await waitUntil(() => setup.fake.exchange.openClients().length === 1, 'old socket closed');
    await setup.harness.waitForTicks(1);
    assert.equal(live.status().reconnects, 0);
    assert.equal(live.connectionStatus()?.rotations, 1);
    assert.equal(setup.fake.exchange.openClients()[0], setup.fake.exchange.clients[1]);
  });

  it('stops for good on a request error, reporting it as fatal (no retry loop)', async () => {
    setup.fake.subscribeError = { code: 2, msg: 'Invalid request: request ID must be an unsigned integer' };
    const live = feed();
    setup.harness = await FeedHarness.start(live);
    await setup.harness.done;
    assert.match(String(setup.harness.error), /code 2: Invalid request/);
    assert.match(live.status().fatal ?? '', /code 2/);
    const status = setup.harness.ingest.feedStatuses()[0];
    assert.equal(status?.state, 'fatal');
    assert.match(status?.cause ?? '', /code 2/);
    await sleep(300); // many backoff periods at 20..100 ms
    assert.equal(setup.fake.exchange.clients.length, 1);
  });

  it('treats an HTTP 451 upgrade refusal as fatal', async () => {
    setup.fake.exchange.refuseUpgrade = {
      status: 451,
      body: 'Service unavailable from a restricted location',
    };
    const live = feed();
    setup.harness = await FeedHarness.start(live);
    await setup.harness.done;
    assert.match(live.status().fatal ?? '', /451/);
    await sleep(300);
    assert.equal(setup.fake.exchange.upgradeAttempts, 1);
  });

  it('retries a refused upgrade that can heal (HTTP 503) instead of failing', async () => {
    setup.fake.exchange.refuseUpgrade = { status: 503, body: 'busy' };
    const live = feed();
    setup.harness = await FeedHarness.start(live);
    await sleep(200);
    assert.ok(setup.fake.exchange.upgradeAttempts >= 2, `attempts: ${setup.fake.exchange.upgradeAttempts}`);
    setup.fake.exchange.refuseUpgrade = undefined;
    await waitUntil(
      () => setup.fake.subscribers('btcusdt@aggTrade').length === 1,
      'subscription after retries',
    );
    assert.equal(live.status().fatal, undefined);
  });

  it('counts malformed frames and keeps going', async () => {
    const live = feed();
    setup.harness = await setup.startSubscribed(live, 'btcusdt@aggTrade');
    setup.fake.sendRaw('not json at all');
    setup.fake.sendRaw('{"e":"aggTrade","s":"BTCUSDT","a":"x"}');
    setup.fake.sendRaw('[1,2]');
    setup.fake.sendRaw(SAMPLE[0]!);
    const ticks = await setup.harness.waitForTicks(1);
    assert.equal(ticks[0]?.id, '3412876540');
    assert.equal(live.status().malformed, 3);
    assert.equal(live.status().connected, true);
    assert.equal(setup.fake.exchange.clients.length, 1);
  });

  it('subscribes and unsubscribes at run time on the open connection', async () => {
    const live = feed();
    setup.harness = await setup.startSubscribed(live, 'btcusdt@aggTrade');
    live.addSymbol('ETHUSDT');
    await waitUntil(() => setup.fake.subscribers('ethusdt@aggTrade').length === 1, 'eth subscription');
    live.removeSymbol('BTCUSDT');
    await waitUntil(() => setup.fake.subscribers('btcusdt@aggTrade').length === 0, 'btc unsubscribed');
    assert.deepEqual(live.symbols(), ['ETHUSDT']);
    assert.equal(setup.fake.exchange.clients.length, 1);
  });
});
