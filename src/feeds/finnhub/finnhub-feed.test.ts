import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeFinnhubServer } from '../../../test/fakes/fake-finnhub-server.ts';
import { cleanupAfterEach, collectAgainst, FAST_LIVE_FEED } from '../../../test/fakes/feed-harness.ts';
import { ManualClock } from '../../../test/fakes/manual-clock.ts';
import { waitUntil } from '../../../test/support/wait.ts';
import { validateRecord } from '../../ingest/validate.ts';
import { createFinnhubFeed, finnhubFeedSchema } from './finnhub-feed.ts';

// Frames from the FEEDS.md sample finnhub-trade.ndjson.
const TRADE_FRAMES = [
  {
    data: [
      { c: ['1', '24', '12'], p: 227.43, s: 'AAPL', t: 1795188601233, v: 100 },
      { c: ['1', '24', '12'], p: 227.42, s: 'AAPL', t: 1795188601241, v: 3 },
    ],
    type: 'trade',
  },
  { data: [{ p: 96412.15, s: 'BINANCE:BTCUSDT', t: 1795188601233, v: 0.0052 }], type: 'trade' },
];

const defer = cleanupAfterEach();

async function setUp(token = 'good-key', overrides: Record<string, unknown> = {}, clock?: ManualClock) {
  const server = new FakeFinnhubServer('good-key');
  const url = await server.start();
  const fields = { url, ...FAST_LIVE_FEED, ...overrides };
  const config = finnhubFeedSchema.parse({
    type: 'finnhub',
    symbols: ['AAPL', 'binance:btcusdt'],
    ...fields,
  });
  const feed = createFinnhubFeed(
    config,
    [],
    { env: { FINNHUB_API_KEY: token }, random: () => 0.5, log: () => {} },
    clock ? { clock } : undefined,
  );
  const { values, done } = collectAgainst(defer, feed, server);
  return { server, feed, values, done };
}

const subscribedOn = (server: FakeFinnhubServer, connection: number) => () =>
  server.subscriptions(connection).length === 2;

describe('FinnhubFeed against a fake Finnhub', () => {
  it('subscribes per symbol with the token and maps every trade of a frame', async () => {
    const { server, values, feed } = await setUp();
    await waitUntil(subscribedOn(server, 0), 'subscriptions');
    assert.deepEqual(server.subscriptions(0), ['AAPL', 'BINANCE:BTCUSDT']);
    for (const frame of TRADE_FRAMES) server.send(frame);
    await waitUntil(() => values.length === 3, 'three ticks');
    assert.deepEqual(values, [
      { source: 'finnhub', symbol: 'AAPL', ts: 1795188601233, price: 227.43, size: 100 },
      { source: 'finnhub', symbol: 'AAPL', ts: 1795188601241, price: 227.42, size: 3 },
      { source: 'finnhub', symbol: 'BINANCE:BTCUSDT', ts: 1795188601233, price: 96412.15, size: 0.0052 },
    ]);
    for (const value of values) assert.ok(validateRecord(value, 'finnhub', 0).ok);
    assert.equal(feed.status().connected, true);
  });

  it('treats ping frames as liveness: no tick, no reconnect', async () => {
    const clock = new ManualClock();
    const { server, values, feed } = await setUp('good-key', { staleAfter: 300 }, clock);
    await waitUntil(() => server.subscriptions(0).length === 1, 'first subscription');
    clock.advance(200); // the second subscribe waits out the 5 messages/s limit
    await waitUntil(subscribedOn(server, 0), 'subscriptions');
    // 700 ms of pings every 100 ms outlasts staleAfter (300 ms) twice.
    for (let i = 0; i < 7; i++) {
      const seen = feed.connectionStatus()?.messages ?? 0;
      server.send({ type: 'ping' });
      await waitUntil(() => (feed.connectionStatus()?.messages ?? 0) > seen, 'the ping');
      clock.advance(100);
    }
    assert.equal(server.connections, 1);
    assert.equal(values.length, 0);
    assert.equal(feed.status().reconnects, 0);
  });

  it('reconnects and resubscribes after a dropped connection', async () => {
    const { server, values, feed } = await setUp();
    await waitUntil(subscribedOn(server, 0), 'subscriptions');
    server.dropAll();
    await waitUntil(subscribedOn(server, 1), 'resubscribed on the second connection');
    server.send(TRADE_FRAMES[1]);
    await waitUntil(() => values.length === 1, 'tick after reconnect');
    assert.equal(feed.status().reconnects, 1);
  });

  it('reconnects when the server goes silent (watchdog)', async () => {
    const { server, feed } = await setUp('good-key', { staleAfter: 300 });
    await waitUntil(subscribedOn(server, 0), 'subscriptions');
    await waitUntil(subscribedOn(server, 1), 'resubscribed after the stall');
    assert.match(feed.connectionStatus()?.lastError ?? '', /stale/);
  });

  it('stops for good on a refused token, without a retry loop', async () => {
    const { server, done, feed } = await setUp('bad-key');
    await assert.rejects(done, /HTTP 401/);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(server.refused, 1);
    assert.equal(feed.status().state, 'fatal');
  });

  it('keeps going on "too many symbols" but stops on an API key error message', async () => {
    const { server, done, feed } = await setUp();
    await waitUntil(subscribedOn(server, 0), 'subscriptions');
    server.send({ msg: 'Subscribing to too many symbols', type: 'error' });
    await waitUntil(() => feed.status().providerError !== undefined, 'error recorded');
    assert.equal(feed.status().state, 'connected');
    server.send({ msg: 'Invalid API key', type: 'error' });
    await assert.rejects(done, /Invalid API key/);
    assert.equal(server.connections, 1);
  });

  it('counts malformed frames without crashing', async () => {
    const { server, values, feed } = await setUp();
    await waitUntil(subscribedOn(server, 0), 'subscriptions');
    server.send('not json{');
    server.send({ type: 'trade', data: 'x' });
    server.send({ type: 'trade', data: [null] });
    server.send(TRADE_FRAMES[1]);
    await waitUntil(() => values.length === 1, 'the good tick');
    assert.equal(feed.status().malformed, 3);
    assert.equal(server.connections, 1);
  });

  it('fails at startup naming FINNHUB_API_KEY when it is missing', () => {
    const config = finnhubFeedSchema.parse({ type: 'finnhub', symbols: ['AAPL'] });
    assert.throws(() => createFinnhubFeed(config, [], { env: {} }), /FINNHUB_API_KEY/);
  });
});
