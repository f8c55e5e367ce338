import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type FakeAlpacaOptions, FakeAlpacaServer } from '../../../test/fakes/fake-alpaca-server.ts';
import { cleanupAfterEach, collectAgainst, FAST_LIVE_FEED } from '../../../test/fakes/feed-harness.ts';
import { ManualClock } from '../../../test/fakes/manual-clock.ts';
import { waitUntil } from '../../../test/support/wait.ts';
import { validateRecord } from '../../ingest/validate.ts';
import { alpacaFeedSchema, alpacaUrl, createAlpacaFeed } from './alpaca-feed.ts';

// Frames from the FEEDS.md samples alpaca-stocks-trade.ndjson and alpaca-crypto-trade.ndjson.
const STOCK_TRADES = [
  {
    T: 't',
    S: 'AAPL',
    i: 52983525029462,
    x: 'V',
    p: 227.42,
    s: 3,
    c: ['@', 'I'],
    z: 'C',
    t: '2026-11-20T15:30:01.241904Z',
  },
  {
    T: 't',
    S: 'AAPL',
    i: 52983525029463,
    x: 'V',
    p: 227.42,
    s: 25,
    c: ['@', 'I'],
    z: 'C',
    t: '2026-11-20T15:30:01.241915Z',
  },
];
const CRYPTO_TRADE = {
  T: 't',
  S: 'BTC/USD',
  p: 96401.8,
  s: 0.0412,
  t: '2026-11-20T15:30:02.810070Z',
  i: 7129304512,
  tks: 'S',
};
// Date.UTC(2026, 10, 20, 15, 30, 1, 241) = 1795188601241 (the ns tail .241904 is cut to whole ms).
const TS_STOCK = Date.UTC(2026, 10, 20, 15, 30, 1, 241);

const KEYS = { APCA_API_KEY_ID: 'PKTEST', APCA_API_SECRET_KEY: 'secret' };

const defer = cleanupAfterEach();

async function setUp(
  options: Partial<FakeAlpacaOptions> = {},
  overrides: Record<string, unknown> = {},
  env = KEYS,
  clock?: ManualClock,
) {
  const server = new FakeAlpacaServer({ key: 'PKTEST', secret: 'secret', ...options });
  const url = await server.start();
  const fields = { url, ...FAST_LIVE_FEED, ...overrides };
  const config = alpacaFeedSchema.parse({ type: 'alpaca', symbols: ['AAPL', 'amd'], ...fields });
  const feed = createAlpacaFeed(
    config,
    [],
    { env, random: () => 0.5, log: () => {} },
    clock ? { clock } : undefined,
  );
  const { values, done } = collectAgainst(defer, feed, server);
  return { server, feed, values, done };
}

describe('AlpacaFeed against a fake Alpaca stream', () => {
  it('authenticates first, then subscribes to trades, and maps stock trades', async () => {
    const { server, feed, values } = await setUp();
    await waitUntil(() => server.subscribes(0).length >= 1, 'subscribe');
    const actions = server.received
      .filter((entry) => entry.connection === 0)
      .map((entry) => entry.message.action);
    assert.deepEqual(actions.slice(0, 2), ['auth', 'subscribe']);
    assert.deepEqual(server.received[0]?.message, { action: 'auth', key: 'PKTEST', secret: 'secret' });
    assert.deepEqual(server.subscribes(0)[0], { action: 'subscribe', trades: ['AAPL', 'AMD'] });
    server.send(STOCK_TRADES);
    await waitUntil(() => values.length === 2, 'two ticks');
    assert.deepEqual(values, [
      { source: 'alpaca', symbol: 'AAPL', ts: TS_STOCK, price: 227.42, size: 3, id: '52983525029462' },
      { source: 'alpaca', symbol: 'AAPL', ts: TS_STOCK, price: 227.42, size: 25, id: '52983525029463' },
    ]);
    for (const value of values) {
      const result = validateRecord(value, 'alpaca', 0);
      assert.ok(result.ok);
      assert.equal(result.tick.id, value.id);
    }
    assert.equal(feed.status().state, 'connected');
  });

  it('maps crypto trades with the taker side', async () => {
    const { server, values } = await setUp({}, { market: 'crypto', symbols: ['BTC/USD'] });
    await waitUntil(() => server.subscribes(0).length >= 1, 'subscribe');
    server.send([CRYPTO_TRADE]);
    await waitUntil(() => values.length === 1, 'one tick');
    // Date.UTC(2026, 10, 20, 15, 30, 2, 810) = 1795188602810.
    assert.deepEqual(values[0], {
      source: 'alpaca',
      symbol: 'BTC/USD',
      ts: Date.UTC(2026, 10, 20, 15, 30, 2, 810),
      price: 96401.8,
      size: 0.0412,
      id: '7129304512',
      side: 'sell',
    });
  });

  it('builds the documented stocks and crypto URLs', () => {
    const stocks = alpacaFeedSchema.parse({ type: 'alpaca', symbols: ['AAPL'], feed: 'sip' });
    assert.equal(alpacaUrl(stocks), 'wss://stream.data.alpaca.markets/v2/sip');
    const crypto = alpacaFeedSchema.parse({ type: 'alpaca', symbols: ['BTC/USD'], market: 'crypto' });
    assert.equal(alpacaUrl(crypto), 'wss://stream.data.alpaca.markets/v1beta3/crypto/us');
  });

  it('heartbeats with its subscription so a quiet market does not look stale', async () => {
    const clock = new ManualClock();
    const { server, feed } = await setUp({}, { staleAfter: 300 }, KEYS, clock);
    await waitUntil(() => feed.status().state === 'connected', 'connected');
    // 1 s with no trades, staleAfter 300 ms: the subscribe re-sent every 100 ms (at most one per 200 ms, the
    // 5 messages/s limit) draws an echo each time, which keeps the watchdog fed.
    for (let i = 0; i < 5; i++) {
      const seen = server.subscribes(0).length;
      clock.advance(200);
      await waitUntil(() => server.subscribes(0).length > seen, `subscribe ${i + 1}`);
      await waitUntil(() => feed.connectionStatus()?.lastMessageAt === clock.now(), `echo ${i + 1}`);
    }
    assert.equal(server.connections, 1);
    assert.equal(feed.status().state, 'connected');
    assert.equal(feed.status().reconnects, 0);
  });

  it('re-authenticates and resubscribes after a dropped connection', async () => {
    const { server, feed, values } = await setUp();
    await waitUntil(() => server.subscribes(0).length >= 1, 'subscribe');
    server.dropAll();
    await waitUntil(() => server.subscribes(1).length >= 1, 'resubscribe on the second connection');
    assert.equal(server.received.find((entry) => entry.connection === 1)?.message.action, 'auth');
    server.send([STOCK_TRADES[0]]);
    await waitUntil(() => values.length === 1, 'tick after reconnect');
    assert.equal(feed.status().reconnects, 1);
  });

  it('reconnects when the server stops answering (watchdog)', async () => {
    const { server, feed } = await setUp({}, { staleAfter: 300 });
    await waitUntil(() => server.subscribes(0).length >= 1, 'subscribe');
    // The server keeps the socket but answers nothing from now on.
    server.muted = true;
    await waitUntil(() => server.connections >= 2, 'a new connection');
    server.muted = false;
    await waitUntil(() => server.subscribes(server.connections - 1).length >= 1, 'resubscribed');
    assert.match(feed.connectionStatus()?.lastError ?? '', /stale/);
  });

  for (const [code, msg] of [
    [402, 'auth failed'],
    [406, 'connection limit exceeded'],
    [409, 'insufficient subscription'],
  ] as const) {
    it(`stops for good on error ${code} (${msg}) without a retry loop`, async () => {
      const options = code === 402 ? { secret: 'other' } : { refuseWith: { code, msg } };
      const { server, done, feed } = await setUp(options);
      await assert.rejects(done, new RegExp(`Alpaca error ${code}`));
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(server.connections, 1);
      assert.equal(feed.status().state, 'fatal');
      assert.match(feed.status().fatal ?? '', new RegExp(String(code)));
    });
  }

  it('counts malformed frames without crashing', async () => {
    const { server, feed, values } = await setUp();
    await waitUntil(() => server.subscribes(0).length >= 1, 'subscribe');
    server.send('not json{');
    server.send({ T: 't' }); // an object, not the documented array
    server.send([42, { no: 'tag' }]);
    server.send([STOCK_TRADES[0]]);
    await waitUntil(() => values.length === 1, 'the good tick');
    assert.equal(feed.status().malformed, 4);
    assert.equal(server.connections, 1);
  });

  it('fails at startup naming the missing variables', () => {
    const config = alpacaFeedSchema.parse({ type: 'alpaca', symbols: ['AAPL'] });
    assert.throws(() => createAlpacaFeed(config, [], { env: {} }), /APCA_API_KEY_ID and APCA_API_SECRET_KEY/);
    assert.throws(
      () => createAlpacaFeed(config, [], { env: { APCA_API_KEY_ID: 'x' } }),
      /APCA_API_SECRET_KEY/,
    );
  });
});
