/** Every feed type against its fake upstream on 127.0.0.1 passes the feed suite (conformance.ts). */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeAlpacaServer } from '../../test/fakes/fake-alpaca-server.ts';
import { aggTrade, FakeBinance } from '../../test/fakes/fake-binance-server.ts';
import { FakeCoinbase, match } from '../../test/fakes/fake-coinbase-server.ts';
import { FakeCoingeckoServer, type FakeReply } from '../../test/fakes/fake-coingecko-server.ts';
import type { FakeClient, FakeExchange } from '../../test/fakes/fake-exchange.ts';
import { FakeFinnhubServer } from '../../test/fakes/fake-finnhub-server.ts';
import { FakeKraken, krakenTrade } from '../../test/fakes/fake-kraken-server.ts';
import { type FakeTwsOptions, FakeTwsServer } from '../../test/fakes/fake-tws-server.ts';
import { waitUntil } from '../../test/support/wait.ts';
import { alpacaFeedSchema, createAlpacaFeed } from './alpaca/alpaca-feed.ts';
import { BackfillFeed, backfillFeedSchema } from './backfill/backfill-feed.ts';
import { binanceFeedSchema, createBinanceFeed } from './binance/binance-feed.ts';
import { coinbaseFeedSchema, createCoinbaseFeed } from './coinbase/coinbase-feed.ts';
import { CoingeckoFeed, coingeckoFeedSchema } from './coingecko/coingecko-feed.ts';
import { type FeedDriver, feedConformance } from './conformance.ts';
import type { Feed } from './feed.ts';
import { createFinnhubFeed, finnhubFeedSchema } from './finnhub/finnhub-feed.ts';
import { IbFeed, ibFeedSchema } from './ib/ib-feed.ts';
import { createKrakenFeed, krakenFeedSchema } from './kraken/kraken-feed.ts';
import { ReplayFeed, replayFeedSchema } from './replay/replay-feed.ts';
import { SyntheticFeed, syntheticFeedSchema } from './synthetic/synthetic-feed.ts';

/** Fast reconnects, quiet logs. */
const TUNING = { initialBackoffMs: 20, maxBackoffMs: 100, staleAfterMs: 5_000, log: () => {} };
const TIMING = { initialBackoff: 20, maxBackoff: 100, staleAfter: 5_000 };
const QUIET = { log: () => {} };
/** Frames no provider sends: not JSON, JSON null, an array of numbers. */
const GARBAGE = ['not json{', 'null', '[1,2]'];
const byId = (record: Record<string, unknown>) => String(record.id);
/** Providers without trade ids: symbol, time and price tell the test's trades apart. */
const byTrade = (record: Record<string, unknown>) => `${record.symbol}:${record.ts}:${record.price}`;

/**
 * A driver's `create` and `ready`: `create` notes `count()` (connections or polls so far) and builds the
 * feed with `make`; `ready` waits until `readyAfter(that count)` holds, so only this run's traffic counts.
 */
function startedAfter(
  count: () => number,
  make: () => Feed,
  readyAfter: (since: number) => boolean,
  what = 'subscription',
): Pick<FeedDriver, 'create' | 'ready'> {
  let since = 0;
  return {
    create: () => {
      since = count();
      return make();
    },
    ready: () => waitUntil(() => readyAfter(since), what),
  };
}

/** What the Binance, Coinbase and Kraken fakes share: one FakeExchange, a tape, subscribers per stream. */
interface ExchangeFake<Trade> {
  exchange: FakeExchange;
  subscribers(stream: string): FakeClient[];
  publish(trade: Trade): void;
  sendRaw(text: string): void;
  close(): Promise<void>;
}

/** The driver of a FakeExchange-based fake; `feedAt(url)` builds the feed (`undefined`: the fake's URL). */
function exchangeDriver<Trade>(
  fake: ExchangeFake<Trade>,
  options: {
    stream: string;
    trade: (id: number, ts: number) => Trade;
    feedAt: (url?: string) => Feed;
    refusal: { status: number; body: string };
    replaysLastOnSubscribe?: boolean;
  },
): FeedDriver {
  let nextId = 1;
  return {
    ...startedAfter(
      () => fake.exchange.clients.length,
      () => options.feedAt(),
      (since) =>
        fake.subscribers(options.stream).some((client) => fake.exchange.clients.indexOf(client) >= since),
    ),
    produce: async (count) => {
      for (let i = 0; i < count; i++) fake.publish(options.trade(nextId++, Date.now() - 1_000));
    },
    key: byId,
    resume: 'gap-fill',
    ...(options.replaysLastOnSubscribe ? { replaysLastOnSubscribe: true } : {}),
    sendMalformed: async () => {
      for (const frame of GARBAGE) fake.sendRaw(frame);
      return GARBAGE.length;
    },
    refuseFatally: () => {
      fake.exchange.refuseUpgrade = options.refusal;
    },
    createAt: (port) => options.feedAt(`ws://127.0.0.1:${port}`),
    cleanup: () => fake.close(),
  };
}

feedConformance('binance', async () => {
  const fake = await FakeBinance.start();
  const config = binanceFeedSchema.parse({ type: 'binance', symbols: ['btcusdt'], ...fake.endpoints });
  return exchangeDriver(fake, {
    stream: 'btcusdt@aggTrade',
    trade: (id, ts) => aggTrade('BTCUSDT', id, ts, '100.5', '1', false),
    feedAt: (url = config.url) => createBinanceFeed({ ...config, url }, [], TUNING),
    refusal: { status: 401, body: 'bad key' },
  });
});

feedConformance('coinbase', async () => {
  const fake = await FakeCoinbase.start();
  const config = coinbaseFeedSchema.parse({ type: 'coinbase', symbols: ['BTC-USD'], ...fake.endpoints });
  return exchangeDriver(fake, {
    stream: 'BTC-USD',
    trade: (id, ts) => match('BTC-USD', id, ts, '100.5', '1', 'buy'),
    feedAt: (url = config.url) => createCoinbaseFeed({ ...config, url }, TUNING),
    refusal: { status: 403, body: 'forbidden' },
    replaysLastOnSubscribe: true,
  });
});

feedConformance('kraken', async () => {
  const fake = await FakeKraken.start();
  const config = krakenFeedSchema.parse({ type: 'kraken', symbols: ['BTC/USD'], ...fake.endpoints });
  return exchangeDriver(fake, {
    stream: 'BTC/USD',
    trade: (id, ts) => krakenTrade('BTC/USD', id, ts, 100.5, 1, 'buy'),
    feedAt: (url = config.url) => createKrakenFeed({ ...config, url }, TUNING),
    refusal: { status: 451, body: 'restricted location' },
  });
});

feedConformance('finnhub', async () => {
  const server = new FakeFinnhubServer('good-key');
  const url = await server.start();
  const config = finnhubFeedSchema.parse({ type: 'finnhub', symbols: ['AAPL'], url, ...TIMING });
  let token = 'good-key';
  let price = 100;
  const environment = () => ({ env: { FINNHUB_API_KEY: token }, log: () => {} });
  return {
    ...startedAfter(
      () => server.connections,
      () => createFinnhubFeed(config, [], environment()),
      (since) => server.connections > since && server.subscriptions(server.connections - 1).length === 1,
    ),
    produce: async (count) => {
      const data = Array.from({ length: count }, () => ({ s: 'AAPL', p: ++price, t: Date.now(), v: 1 }));
      server.send({ type: 'trade', data });
    },
    key: byTrade,
    resume: 'live-only',
    sendMalformed: async () => {
      for (const frame of GARBAGE) server.send(frame);
      return GARBAGE.length;
    },
    refuseFatally: () => {
      token = 'bad-key';
    },
    createAt: (port) => createFinnhubFeed({ ...config, url: `ws://127.0.0.1:${port}` }, [], environment()),
    cleanup: () => server.close(),
  };
});

feedConformance('alpaca', async () => {
  const server = new FakeAlpacaServer({ key: 'PKTEST', secret: 'secret' });
  const url = await server.start();
  const config = alpacaFeedSchema.parse({ type: 'alpaca', symbols: ['AAPL'], url, ...TIMING });
  let secret = 'secret';
  let nextId = 1;
  const environment = () => ({
    env: { APCA_API_KEY_ID: 'PKTEST', APCA_API_SECRET_KEY: secret },
    log: () => {},
  });
  return {
    ...startedAfter(
      () => server.connections,
      () => createAlpacaFeed(config, [], environment()),
      (since) => server.connections > since && server.subscribes(server.connections - 1).length >= 1,
    ),
    produce: async (count) => {
      const time = new Date().toISOString();
      server.send(
        Array.from({ length: count }, () => ({ T: 't', S: 'AAPL', i: nextId++, p: 100.5, s: 1, t: time })),
      );
    },
    key: byId,
    resume: 'live-only',
    sendMalformed: async () => {
      for (const frame of GARBAGE) server.send(frame);
      return GARBAGE.length + 1; // the array holds two items, each malformed
    },
    refuseFatally: () => {
      secret = 'wrong';
    },
    createAt: (port) =>
      createAlpacaFeed({ ...config, url: `ws://127.0.0.1:${port}/v2/iex` }, [], environment()),
    cleanup: () => server.close(),
  };
});

feedConformance('ib', async () => {
  const options: FakeTwsOptions = {};
  const server = new FakeTwsServer(options);
  const url = await server.start();
  const config = ibFeedSchema.parse({
    type: 'ib',
    symbols: ['AAPL'],
    url,
    clientId: 3,
    heartbeatInterval: 1_000,
    ...TIMING,
  });
  let price = 100;
  return {
    ...startedAfter(
      () => server.connections,
      () => new IbFeed(config, [], QUIET),
      (since) => server.subscriptions.some((s) => s.connection >= since),
    ),
    produce: async (count) => {
      const reqId = server.subscriptions.findLast((s) => s.symbol === 'AAPL')!.reqId;
      for (let i = 0; i < count; i++)
        server.sendTickByTick(reqId, { time: Math.floor(Date.now() / 1000), price: ++price, size: 1 });
    },
    key: byTrade,
    resume: 'live-only',
    refuseFatally: () => {
      options.startError = { code: 326, message: 'client id is already in use' };
    },
    createAt: (port) => new IbFeed({ ...config, url: `tcp://127.0.0.1:${port}` }, [], QUIET),
    cleanup: () => server.close(),
  };
});

feedConformance('coingecko', async () => {
  const coins = ['bitcoin', 'ethereum', 'solana', 'dogecoin', 'cardano'];
  const updatedAt: Record<string, number> = Object.fromEntries(coins.map((coin) => [coin, 1_790_000_000]));
  const quotes = (): FakeReply => ({
    body: Object.fromEntries(
      coins.map((coin, i) => [coin, { usd: 100 + i, last_updated_at: updatedAt[coin] }]),
    ),
  });
  const server = new FakeCoingeckoServer([quotes()]);
  const url = await server.start();
  const config = coingeckoFeedSchema.parse({
    type: 'coingecko',
    symbols: coins,
    url,
    pollInterval: 30,
    maxBackoff: 100,
  });
  return {
    // Two polls: the first of this run has been answered and handed over.
    ...startedAfter(
      () => server.requests.length,
      () => new CoingeckoFeed(config, [], QUIET),
      (since) => server.requests.length >= since + 2,
      'two polls',
    ),
    produce: async (count) => {
      for (const coin of coins.slice(0, count)) updatedAt[coin]! += 1;
      server.script([quotes()]);
    },
    key: (record) => `${record.symbol}:${record.ts}`,
    resume: 'live-only',
    sendMalformed: async () => {
      const seen = server.requests.length;
      server.script([{ body: 'not json{' }, { body: { bitcoin: { usd: 1 } } }, quotes()]);
      await waitUntil(() => server.requests.length >= seen + 3, 'the two bad answers served');
      return 2;
    },
    refuseFatally: () => server.script([{ status: 401, body: { error: 'invalid api key' } }]),
    createAt: (port) => new CoingeckoFeed({ ...config, url: `http://127.0.0.1:${port}/api/v3` }, [], QUIET),
    cleanup: () => server.close(),
  };
});

feedConformance('synthetic', async () => ({
  create: () =>
    new SyntheticFeed(
      syntheticFeedSchema.parse({ type: 'synthetic', symbols: ['AAA', 'BBB'], ticksPerSecond: 400 }),
      [],
    ),
  ready: async () => {},
  produce: async () => {},
  // Same seed, same position: the same trades (ts is the wall clock, so it is left out).
  key: (record) => `${record.id}:${record.symbol}:${record.price}:${record.size}`,
  resume: 'exact',
  cleanup: async () => {},
}));

feedConformance('replay', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'streamlines-replay-conformance-'));
  const path = join(dir, 'ticks.ndjson');
  const lines = Array.from({ length: 60 }, (_, i) =>
    JSON.stringify({
      symbol: 'AAA',
      ts: 1_790_000_000_000 + i * 100,
      price: 100 + i,
      size: 1,
      id: String(i + 1),
    }),
  );
  await writeFile(path, `${lines.join('\n')}\n`);
  return {
    // Ten times real time: 10 ms a line, so the lines come in several batches.
    create: () => new ReplayFeed(replayFeedSchema.parse({ type: 'replay', path, speed: 10 })),
    ready: async () => {},
    produce: async () => {},
    key: byId,
    resume: 'exact',
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

feedConformance('backfill', async () => {
  const fake = await FakeBinance.start();
  const t0 = Date.UTC(2026, 0, 1);
  for (let id = 1; id <= 2_500; id++)
    fake.publish(aggTrade('ETHUSDT', id, t0 + id * 1_000, '3000.5', '1', false));
  const config = backfillFeedSchema.parse({
    type: 'backfill',
    provider: 'binance',
    symbols: ['ETHUSDT'],
    from: t0,
    to: t0 + 2_500 * 1_000,
    restUrl: fake.restUrl,
  });
  return {
    create: () => new BackfillFeed(config),
    ready: async () => {},
    produce: async () => {},
    key: byId,
    resume: 'exact',
    cleanup: () => fake.close(),
  };
});
