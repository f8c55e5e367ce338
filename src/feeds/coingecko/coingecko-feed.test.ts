import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { FakeCoingeckoServer, type FakeReply } from '../../../test/fakes/fake-coingecko-server.ts';
import { validateRecord } from '../../ingest/validate.ts';
import {
  CoingeckoFatalError,
  CoingeckoFeed,
  coingeckoFeedSchema,
  parseRetryAfterMs,
} from './coingecko-feed.ts';

// Copied from the FEEDS.md samples coingecko-simple_price.json and coingecko-error-429.json (the repo
// does not carry the shared folder, and CI has no internet).
const SIMPLE_PRICE = {
  bitcoin: { usd: 96411.42, usd_24h_vol: 38914427711.20311, last_updated_at: 1795188581 },
  ethereum: { usd: 3521.7, usd_24h_vol: 17233104122.88412, last_updated_at: 1795188585 },
};
const ERROR_429 = {
  status: {
    error_code: 429,
    error_message:
      "You've exceeded the Rate Limit. Please visit https://www.coingecko.com/en/api/pricing to subscribe to our API plans for higher rate limits.",
  },
};

/** The sample one minute later: bitcoin unchanged, ethereum re-quoted. */
const NEXT_PRICE = {
  bitcoin: SIMPLE_PRICE.bitcoin,
  ethereum: { usd: 3522.05, usd_24h_vol: 17233104999.1, last_updated_at: 1795188645 },
};

const servers: FakeCoingeckoServer[] = [];
/** Log lines of the feeds set up here. */
const logs: string[] = [];
after(async () => {
  for (const server of servers) await server.close();
});

async function setUp(replies: FakeReply[], overrides: Record<string, unknown> = {}, env = {}) {
  const server = new FakeCoingeckoServer(replies);
  servers.push(server);
  const url = await server.start();
  const config = coingeckoFeedSchema.parse({
    type: 'coingecko',
    symbols: ['bitcoin', 'ethereum'],
    pollInterval: 20,
    requestTimeout: 2_000,
    maxBackoff: 100,
    url,
    ...overrides,
  });
  const feed = new CoingeckoFeed(config, [], { env, random: () => 0.5, log: (line) => logs.push(line) });
  return { server, feed };
}

/** Runs the feed until `count` values arrived (or `timeoutMs`), returning them and the last position. */
async function collect(feed: CoingeckoFeed, count: number, timeoutMs = 10_000, position?: unknown) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const values: Record<string, unknown>[] = [];
  let last: unknown;
  try {
    for await (const batch of feed.run(position, controller.signal)) {
      values.push(...((batch.values ?? []) as Record<string, unknown>[]));
      last = batch.position;
      if (values.length >= count) break;
    }
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  return { values, position: last };
}

describe('CoingeckoFeed', () => {
  it('maps each new last_updated_at to one tick and skips unchanged coins', async () => {
    const { server, feed } = await setUp(
      [{ body: SIMPLE_PRICE }, { body: NEXT_PRICE }],
      {},
      { COINGECKO_API_KEY: 'k1' },
    );
    const { values, position } = await collect(feed, 3);
    // Values straight from the sample: seconds * 1000 for ts, coin:last_updated_at for the id.
    assert.deepEqual(values, [
      {
        source: 'coingecko',
        symbol: 'BITCOIN',
        ts: 1795188581000,
        price: 96411.42,
        size: 0,
        id: 'bitcoin:1795188581',
      },
      {
        source: 'coingecko',
        symbol: 'ETHEREUM',
        ts: 1795188585000,
        price: 3521.7,
        size: 0,
        id: 'ethereum:1795188585',
      },
      {
        source: 'coingecko',
        symbol: 'ETHEREUM',
        ts: 1795188645000,
        price: 3522.05,
        size: 0,
        id: 'ethereum:1795188645',
      },
    ]);
    for (const value of values) assert.ok(validateRecord(value, 'coingecko', 0).ok);
    assert.deepEqual(position, { lastUpdatedAt: { bitcoin: 1795188581, ethereum: 1795188645 } });
    const first = server.requests[0]!;
    assert.equal(first.path, '/api/v3/simple/price');
    assert.equal(first.query.get('ids'), 'bitcoin,ethereum');
    assert.equal(first.query.get('vs_currencies'), 'usd');
    assert.equal(first.query.get('include_last_updated_at'), 'true');
    assert.equal(first.headers['x-cg-demo-api-key'], 'k1');
    assert.equal(feed.status().connected, true);
  });

  it('does not repeat coins a saved position already has', async () => {
    const { feed } = await setUp([{ body: SIMPLE_PRICE }, { body: NEXT_PRICE }]);
    const { values } = await collect(feed, 1, 3_000, {
      lastUpdatedAt: { bitcoin: 1795188581, ethereum: 1795188585 },
    });
    assert.deepEqual(
      values.map((value) => value.id),
      ['ethereum:1795188645'],
    );
  });

  it('honours Retry-After on a 429 and then continues', async () => {
    const { server, feed } = await setUp([
      { status: 429, body: ERROR_429, headers: { 'retry-after': '1' } },
      { body: SIMPLE_PRICE },
    ]);
    const { values } = await collect(feed, 2);
    assert.equal(values.length, 2);
    const gap = server.requests[1]!.at - server.requests[0]!.at;
    // Without Retry-After the backoff would be 20 ms * (0.5 + 0.5 * 0.5) = 15 ms; the server asked for 1 s.
    assert.ok(gap >= 950, `second request after ${gap} ms`);
    assert.equal(feed.status().reconnects, 1);
    assert.ok(
      logs.some((line) =>
        /^\[coingecko\] poll of http:\/\/127\.0\.0\.1:\d+\/api\/v3 failed: HTTP 429: .*; 1 failed attempt, retrying in 1\.0 s$/.test(
          line,
        ),
      ),
      logs.join('\n'),
    );
    assert.equal(feed.status().state, 'connected', 'the poll after the 429 was answered');
  });

  it('retries a request the server never answers (stall) and a dropped connection', async () => {
    const { server, feed } = await setUp([{ stall: true }, { drop: true }, { body: SIMPLE_PRICE }], {
      requestTimeout: 200,
    });
    const { values } = await collect(feed, 2);
    assert.equal(values.length, 2);
    assert.equal(server.requests.length, 3);
    assert.equal(feed.status().reconnects, 2);
    // The stalled request was given up after requestTimeout (200 ms), not waited on for ever.
    const stallGap = server.requests[1]!.at - server.requests[0]!.at;
    assert.ok(stallGap >= 190 && stallGap < 1_500, `retried after ${stallGap} ms`);
  });

  it('stops for good on 401 without retrying', async () => {
    const { server, feed } = await setUp([
      { status: 401, body: { status: { error_code: 10002, error_message: 'API Key Missing' } } },
    ]);
    await assert.rejects(collect(feed, 1), CoingeckoFatalError);
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.equal(server.requests.length, 1);
    assert.match(feed.status().fatal ?? '', /HTTP 401/);
  });

  it('counts malformed answers and entries without crashing', async () => {
    const { feed } = await setUp([
      { body: 'not json{' },
      { body: [1, 2] },
      { body: { bitcoin: { usd: 96411.42 }, ethereum: SIMPLE_PRICE.ethereum } },
    ]);
    const { values } = await collect(feed, 1);
    assert.deepEqual(
      values.map((value) => value.symbol),
      ['ETHEREUM'],
    );
    // Three things could not be mapped: the non-JSON body, the array, bitcoin without last_updated_at.
    assert.equal(feed.status().malformed, 3);
  });

  it('fails at startup with the variable name when a pro key is missing, and refuses a too-fast real poll', () => {
    const config = coingeckoFeedSchema.parse({ type: 'coingecko', symbols: ['bitcoin'], plan: 'pro' });
    assert.throws(() => new CoingeckoFeed(config, [], { env: {} }), /COINGECKO_API_KEY/);
    const fast = coingeckoFeedSchema.parse({
      type: 'coingecko',
      symbols: ['bitcoin'],
      pollInterval: '500ms',
    });
    assert.throws(() => new CoingeckoFeed(fast, [], { env: {} }), /rate limit/);
    assert.throws(() => coingeckoFeedSchema.parse({ type: 'coingecko', symbols: ['bitcoin'], bogus: 1 }));
  });

  it('parses Retry-After as seconds or an HTTP date', () => {
    assert.equal(parseRetryAfterMs('30'), 30_000);
    assert.equal(parseRetryAfterMs('Thu, 01 Jan 1970 00:00:10 GMT', 4_000), 6_000);
    assert.equal(parseRetryAfterMs(null), undefined);
    assert.equal(parseRetryAfterMs('soon'), undefined);
  });
});
