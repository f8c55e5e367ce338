import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type FakeTwsOptions, FakeTwsServer } from '../../../test/fakes/fake-tws-server.ts';
import {
  cleanupAfterEach,
  collectAgainst,
  collectFeed,
  FAST_LIVE_FEED,
} from '../../../test/fakes/feed-harness.ts';
import { waitUntil } from '../../../test/support/wait.ts';
import { validateRecord } from '../../ingest/validate.ts';
import { closedPort } from '../conformance.ts';
import { IbFatalError, IbFeed, ibFeedSchema } from './ib-feed.ts';

// Values from the FEEDS.md sample ib-tws-stoqey-events.ndjson: tickByTickAllLast(reqId, 1, 1795188601,
// 227.43, 100, ..., "ISLAND", "").
const SAMPLE_TRADE = { time: 1795188601, price: 227.43, size: 100 };

const defer = cleanupAfterEach();

/** Starts a fake gateway and an IB feed against it, collecting what the feed yields. */
async function setUp(overrides: Record<string, unknown> = {}, options: FakeTwsOptions = {}) {
  const server = new FakeTwsServer(options);
  const url = await server.start();
  const fields = {
    url,
    ...FAST_LIVE_FEED,
    clientId: 7,
    heartbeatInterval: 50,
    staleAfter: 400,
    ...overrides,
  };
  const config = ibFeedSchema.parse({ type: 'ib', symbols: ['aapl', 'MSFT'], ...fields });
  const feed = new IbFeed(config, [], { random: () => 0.5, log: () => {} });
  const { values, done } = collectAgainst(defer, feed, server);
  const subscribed = (symbol: string, connection = 0) =>
    waitUntil(
      () => server.subscriptions.some((s) => s.symbol === symbol && s.connection >= connection),
      `${symbol} subscribed on connection ${connection}`,
    );
  return { server, feed, values, done, subscribed };
}

function reqIdOf(server: FakeTwsServer, symbol: string): number {
  const subscription = server.subscriptions.findLast((s) => s.symbol === symbol);
  assert.ok(subscription, `no subscription for ${symbol}`);
  return subscription.reqId;
}

describe('IbFeed against a fake TWS speaking the socket protocol', () => {
  it('connects through @stoqey/ib, requests AllLast per symbol and maps trades', async () => {
    const { server, values, feed, subscribed } = await setUp();
    await subscribed('AAPL');
    await subscribed('MSFT');
    const apiStart = server.received.find((message) => message.fields[0] === '71');
    assert.equal(apiStart?.fields[2], '7', 'START_API carries the client id');
    assert.deepEqual(
      server.subscriptions.map(({ kind, symbol, tickType }) => ({ kind, symbol, tickType })),
      [
        { kind: 'tickByTick', symbol: 'AAPL', tickType: 'AllLast' },
        { kind: 'tickByTick', symbol: 'MSFT', tickType: 'AllLast' },
      ],
    );
    server.sendTickByTick(reqIdOf(server, 'AAPL'), SAMPLE_TRADE);
    server.sendTickByTick(reqIdOf(server, 'MSFT'), { time: 1795188602, price: 415.5, size: 3 });
    await waitUntil(() => values.length === 2, 'two ticks');
    // ts = IB's whole seconds * 1000; no id or side: the TWS tick-by-tick message carries neither.
    assert.deepEqual(values, [
      { source: 'ib', symbol: 'AAPL', ts: 1795188601000, price: 227.43, size: 100 },
      { source: 'ib', symbol: 'MSFT', ts: 1795188602000, price: 415.5, size: 3 },
    ]);
    for (const value of values) assert.ok(validateRecord(value, 'ib', 0).ok);
    assert.equal(feed.status().connected, true);
  });

  it('keeps a quiet but healthy connection with reqCurrentTime heartbeats', async () => {
    const { server, feed, subscribed } = await setUp();
    await subscribed('AAPL');
    // No market data for longer than staleAfter (400 ms): only the heartbeat answers keep it alive.
    await new Promise((resolve) => setTimeout(resolve, 700));
    assert.equal(server.connections, 1);
    assert.ok(server.received.filter((message) => message.fields[0] === '49').length >= 5, 'heartbeats sent');
    assert.equal(feed.status().reconnects, 0);
  });

  it('reconnects and resubscribes after the gateway drops the connection', async () => {
    const { server, feed, values, subscribed } = await setUp();
    await subscribed('AAPL');
    server.sendTickByTick(reqIdOf(server, 'AAPL'), SAMPLE_TRADE);
    await waitUntil(() => values.length === 1, 'first tick');
    server.dropAll();
    await subscribed('AAPL', 1);
    await subscribed('MSFT', 1);
    server.sendTickByTick(reqIdOf(server, 'AAPL'), { time: 1795188603, price: 227.5, size: 10 });
    await waitUntil(() => values.length === 2, 'tick after reconnect');
    assert.equal(values[1]?.price, 227.5);
    assert.equal(feed.status().reconnects, 1);
  });

  it('replaces a silently stalled connection (watchdog)', async () => {
    const { server, feed, subscribed } = await setUp();
    await subscribed('AAPL');
    server.silent = true;
    await waitUntil(() => server.connections >= 2, 'a new connection after the stall');
    server.silent = false;
    // Connection 1 was opened while the server was silent: depending on when its handshake lands it either
    // completes now or stalls too and is replaced in turn. Either way AAPL is subscribed again after the stall.
    await subscribed('AAPL', 1);
    assert.match(feed.status().lastError ?? '', /stale/);
    assert.ok(feed.status().reconnects >= 1);
  });

  it('stops without retrying when the client id is in use (326)', async () => {
    const { server, done, feed } = await setUp(
      {},
      { startError: { code: 326, message: 'client id is already in use' } },
    );
    await assert.rejects(done, IbFatalError);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(server.connections, 1);
    assert.equal(feed.status().state, 'fatal');
    assert.match(feed.status().fatal ?? '', /326/);
  });

  it('drops a refused symbol, keeps the others, and fails when none is left', async () => {
    const refusal = { code: 200, message: 'No security definition has been found for the request' };
    const { server, feed, values, subscribed } = await setUp(
      { symbols: ['AAPL', 'BOGUS'] },
      { symbolErrors: { BOGUS: refusal } },
    );
    await subscribed('BOGUS');
    await waitUntil(() => feed.status().symbolErrors.BOGUS !== undefined, 'BOGUS refused');
    server.sendTickByTick(reqIdOf(server, 'AAPL'), SAMPLE_TRADE);
    await waitUntil(() => values.length === 1, 'AAPL still streams');

    const alone = await setUp({ symbols: ['BOGUS'] }, { symbolErrors: { BOGUS: refusal } });
    await assert.rejects(alone.done, /no symbol can be streamed/);
  });

  it('counts messages the library cannot decode and keeps streaming', async () => {
    const { server, feed, values, subscribed } = await setUp();
    await subscribed('AAPL');
    server.sendFields([99, reqIdOf(server, 'AAPL')]); // a TICK_BY_TICK cut short
    server.sendFields([12345, 'junk']); // an unknown message id
    server.sendTickByTick(reqIdOf(server, 'AAPL'), SAMPLE_TRADE);
    await waitUntil(() => values.length === 1, 'the good tick');
    // The library reports the cut message once (underrun) and the unknown id twice ("no parser" and
    // "unprocessed data left on queue", decoder.process), all with code 505.
    assert.equal(feed.status().malformed, 3);
    assert.equal(server.connections, 1);
  });

  it('maps LAST + LAST_SIZE in marketData mode, stamped on receipt', async () => {
    const { server, values, subscribed } = await setUp({ mode: 'marketData', symbols: ['AAPL'] });
    await subscribed('AAPL');
    assert.ok(
      server.received.some((message) => message.fields[0] === '59'),
      'reqMarketDataType sent',
    );
    const before = Date.now();
    server.sendTickPrice(reqIdOf(server, 'AAPL'), 1, 227.41, 200); // bid: not a trade
    server.sendTickPrice(reqIdOf(server, 'AAPL'), 4, 227.43, 100); // last, as in the sample
    await waitUntil(() => values.length === 1, 'one tick');
    const tick = values[0]!;
    assert.equal(tick.symbol, 'AAPL');
    assert.equal(tick.price, 227.43);
    assert.equal(tick.size, 100);
    assert.ok((tick.ts as number) >= before && (tick.ts as number) <= Date.now());
  });
  it('reports a closed port as failing, refused, in its status and log (never "lost")', async () => {
    const logs: string[] = [];
    const config = ibFeedSchema.parse({
      type: 'ib',
      symbols: ['AAPL'],
      url: `tcp://127.0.0.1:${await closedPort()}`,
      initialBackoff: 20,
      maxBackoff: 50,
    });
    const feed = new IbFeed(config, [], { random: () => 0.5, log: (line) => logs.push(line) });
    const { stop } = collectFeed(feed);
    defer(stop);
    await waitUntil(() => feed.status().failedAttempts >= 2, 'two failed attempts');
    const status = feed.status();
    assert.equal(status.state, 'failing');
    assert.equal(status.causeKind, 'refused');
    assert.equal(status.connected, false);
    assert.equal(status.lastConnectedAt, null);
    assert.match(
      logs[0] ?? '',
      /^\[ib\] cannot connect to tcp:\/\/127\.0\.0\.1:\d+: connection refused by 127\.0\.0\.1:\d+ \(nothing listens there\); 1 failed attempt, retrying in \d+ ms$/,
    );
    assert.ok(!logs.some((line) => /lost/.test(line)), logs.join('\n'));
  });
});
