import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { collect, connectGraphql } from '../../../test/support/graphql.ts';
import {
  buildTestServer,
  FakeView,
  type Json,
  MINUTE,
  makeCandle,
  seedStore,
} from '../../../test/support/serve.ts';
import { waitUntil } from '../../../test/support/wait.ts';
import type { Principal } from '../auth/require-role.ts';
import { graphqlRoutes } from './graphql-plugin.ts';
import { LiveSource } from './live-source.ts';
import { assertCanRead, type GraphqlContext } from './resolvers.ts';

const TICK_FIELDS = 'ts price size id maShort maLong late';
const CANDLE_FIELDS = 'symbol interval ts open high low close volume trades vwap final';
const POINT_FIELDS = 'ts sma20 ema20 rsi14 bbUpper bbMiddle bbLower';
const ALERT_FIELDS = 'ts symbol kind price threshold message';

async function graphql(app: FastifyInstance, query: string): Promise<Json> {
  const response = await app.inject({ method: 'POST', url: '/graphql', payload: { query } });
  return response.json();
}

async function rest(app: FastifyInstance, url: string): Promise<Json> {
  const response = await app.inject({ method: 'GET', url });
  assert.equal(response.statusCode, 200, `${url}: ${response.body}`);
  return response.json();
}

/** REST leaves an absent optional field out; GraphQL answers null. */
function withNull<T extends object>(items: T[], field: string): T[] {
  return items.map((item) => ({ [field]: null, ...item }));
}

describe('GraphQL queries answer what REST answers', () => {
  let app: FastifyInstance;
  let view: FakeView;
  before(async () => {
    ({ app, view } = await buildTestServer());
    // A forming candle after the four final ones of SEED, and one on a final's ts (the final wins).
    view.forming.set('BTCUSDT:1m', [
      makeCandle('BTCUSDT', '1m', 4 * MINUTE, 1, false),
      makeCandle('BTCUSDT', '1m', 5 * MINUTE, 104, false),
    ]);
  });
  after(() => app.close());

  test('symbols and latest', async () => {
    const { data } = await graphql(
      app,
      '{ symbols { symbol lastPrice lastTs } latest(symbol: " btcusdt ") { symbol ts price size maShort maLong source } }',
    );
    assert.deepEqual(data.symbols, (await rest(app, '/api/v1/symbols')).symbols);
    assert.deepEqual(data.latest, await rest(app, '/api/v1/latest/BTCUSDT'));
    assert.equal(data.latest.price, 103, 'SEED: the last BTCUSDT tick is at 103');
  });

  for (const args of ['', 'limit: 2', 'from: 120000, limit: 2', 'to: 180000', 'from: 60000, to: 180000']) {
    test(`ticks, candles and indicators (${args || 'no range'})`, async () => {
      const query = args === '' ? '' : `?${args.replaceAll(': ', '=').replaceAll(', ', '&')}`;
      const extra = args === '' ? '' : `, ${args}`;
      const { data, errors } = await graphql(
        app,
        `{ ticks(symbol: "BTCUSDT"${extra}) { ${TICK_FIELDS} }
           candles(symbol: "BTCUSDT", interval: "1m"${extra}) { ${CANDLE_FIELDS} }
           indicators(symbol: "BTCUSDT"${extra}) { ${POINT_FIELDS} } }`,
      );
      assert.equal(errors, undefined);
      assert.deepEqual(data.ticks, (await rest(app, `/api/v1/ticks/BTCUSDT${query}`)).ticks);
      assert.deepEqual(data.candles, (await rest(app, `/api/v1/candles/BTCUSDT${query}`)).candles);
      assert.deepEqual(data.indicators, (await rest(app, `/api/v1/indicators/BTCUSDT${query}`)).points);
      assert.ok(data.ticks.length > 0);
    });
  }

  test('candles include the forming one exactly as REST does', async () => {
    const { data } = await graphql(app, '{ candles(symbol: "BTCUSDT") { ts close final } }');
    // SEED: finals at minutes 1..4 close at 100..103; the forming one at minute 4 loses to the final.
    assert.deepEqual(data.candles, [
      { ts: 1 * MINUTE, close: 100, final: true },
      { ts: 2 * MINUTE, close: 101, final: true },
      { ts: 3 * MINUTE, close: 102, final: true },
      { ts: 4 * MINUTE, close: 103, final: true },
      { ts: 5 * MINUTE, close: 104, final: false },
    ]);
  });

  for (const args of [
    '',
    'symbol: "btcusdt"',
    'kind: "anomaly"',
    'from: 120001',
    'limit: 1',
    'symbol: "NEVER"',
  ]) {
    test(`alerts (${args || 'no filter'})`, async () => {
      const query = args === '' ? '' : `?${args.replace(': ', '=').replaceAll('"', '')}`;
      const { data } = await graphql(app, `{ alerts${args === '' ? '' : `(${args})`} { ${ALERT_FIELDS} } }`);
      assert.deepEqual(
        data.alerts,
        withNull((await rest(app, `/api/v1/alerts${query}`)).alerts, 'threshold'),
      );
    });
  }

  test('stats', async () => {
    const { data } = await graphql(
      app,
      `{ stats { received accepted rejected duplicates late candlesClosed alertsFired drained logEndOffset
         processedOffset rejectedByReason { reason count }
         feeds { name type state messages lastMessageAt error } } }`,
    );
    const expected = await rest(app, '/api/v1/stats');
    const { rejectedByReason, feeds, ...counters } = data.stats;
    assert.deepEqual(
      Object.fromEntries(rejectedByReason.map((entry: Json) => [entry.reason, entry.count])),
      expected.rejectedByReason,
    );
    assert.deepEqual(feeds, withNull(expected.feeds, 'error'));
    for (const [name, value] of Object.entries(counters)) assert.equal(value, expected[name], name);
  });
});

describe('bad arguments carry the REST error code', () => {
  let app: FastifyInstance;
  before(async () => {
    ({ app } = await buildTestServer());
  });
  after(() => app.close());

  const cases: [string, string, string][] = [
    ['latest(symbol: "NOPE") { ts }', 'unknown_symbol', '/api/v1/latest/NOPE'],
    ['ticks(symbol: "NOPE") { ts }', 'unknown_symbol', '/api/v1/ticks/NOPE'],
    ['candles(symbol: "NOPE") { ts }', 'unknown_symbol', '/api/v1/candles/NOPE'],
    ['indicators(symbol: "NOPE") { ts }', 'unknown_symbol', '/api/v1/indicators/NOPE'],
    ['ticks(symbol: "bad symbol!") { ts }', 'invalid_symbol', '/api/v1/ticks/bad%20symbol!'],
    ['alerts(symbol: "bad symbol!") { ts }', 'invalid_symbol', '/api/v1/alerts?symbol=bad%20symbol!'],
    [
      'candles(symbol: "BTCUSDT", interval: "2m") { ts }',
      'invalid_interval',
      '/api/v1/candles/BTCUSDT?interval=2m',
    ],
    [
      'indicators(symbol: "BTCUSDT", interval: "1w") { ts }',
      'invalid_interval',
      '/api/v1/indicators/BTCUSDT?interval=1w',
    ],
    ['alerts(kind: "price") { ts }', 'invalid_kind', '/api/v1/alerts?kind=price'],
    ['ticks(symbol: "BTCUSDT", limit: 0) { ts }', 'invalid_parameter', '/api/v1/ticks/BTCUSDT?limit=0'],
    [
      'ticks(symbol: "BTCUSDT", limit: 10001) { ts }',
      'invalid_parameter',
      '/api/v1/ticks/BTCUSDT?limit=10001',
    ],
    ['ticks(symbol: "BTCUSDT", from: -1) { ts }', 'invalid_parameter', '/api/v1/ticks/BTCUSDT?from=-1'],
    ['ticks(symbol: "BTCUSDT", to: 1.5) { ts }', 'invalid_parameter', '/api/v1/ticks/BTCUSDT?to=1.5'],
    ['alerts(from: 1e16) { ts }', 'invalid_parameter', '/api/v1/alerts?from=10000000000000000'],
    [
      'candles(symbol: "BTCUSDT", from: 5, to: 4) { ts }',
      'invalid_range',
      '/api/v1/candles/BTCUSDT?from=5&to=4',
    ],
  ];
  for (const [field, code, url] of cases) {
    test(`${field} -> ${code}, as ${url}`, async () => {
      const { data, errors } = await graphql(app, `{ ${field} }`);
      assert.equal(errors.length, 1);
      assert.equal(errors[0].extensions.code, code, errors[0].message);
      assert.equal(Object.values(data)[0], null);
      const response = await app.inject({ method: 'GET', url });
      assert.equal(response.json().error.code, code, 'REST gives the same code');
    });
  }

  test('one failing field leaves the others answered', async () => {
    const { data, errors } = await graphql(app, '{ symbols { symbol } latest(symbol: "NOPE") { ts } }');
    assert.equal(data.symbols.length, 2);
    assert.equal(data.latest, null);
    assert.deepEqual(errors[0].path, ['latest']);
  });

  test('a document that does not validate is bad_request', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/graphql',
      payload: { query: '{ ticks(symbol: "BTCUSDT", limit: 99999999999) { ts } nope }' },
    });
    const { errors } = response.json();
    assert.ok(errors.length >= 2);
    for (const error of errors) assert.equal(error.extensions.code, 'bad_request', error.message);
  });

  test('a failing store is internal and its message is not shown', async () => {
    const store = await seedStore();
    store.symbols = async () => {
      throw new Error('disk on fire at /secret/path');
    };
    const { app: broken } = await buildTestServer({ store });
    try {
      const { errors } = await graphql(broken, '{ symbols { symbol } }');
      assert.equal(errors[0].extensions.code, 'internal');
      assert.equal(errors[0].message, 'internal server error');
    } finally {
      await broken.close();
    }
  });
});

describe('read access', () => {
  const principal: Principal = { keyId: 'k1', name: 'reader', role: 'read' };
  const base = { app: Fastify() } as unknown as GraphqlContext;

  test('assertCanRead is a no-op unless keys are required for reads', () => {
    assertCanRead({ ...base, principal: null, requireKeyForReads: false });
    assertCanRead({ ...base, principal, requireKeyForReads: true });
    assert.throws(
      () => assertCanRead({ ...base, principal: null, requireKeyForReads: true }),
      (error: Json) => error.code === 'unauthorized' && error.statusCode === 401,
    );
  });

  test('the resolver context carries request.principal', async () => {
    const app = Fastify();
    app.decorateRequest('principal', null);
    // Stands in for the auth plugin: a header names the principal.
    app.addHook('onRequest', async (request) => {
      if (request.headers['x-test-key'] === 'good') request.principal = principal;
    });
    await app.register(graphqlRoutes, {
      store: await seedStore(),
      view: new FakeView(),
      limits: { maxLimit: 10, defaultLimit: 5 },
      requireKeyForReads: true,
    });
    try {
      const ask = (headers: Record<string, string>) =>
        app.inject({
          method: 'POST',
          url: '/graphql',
          headers,
          payload: { query: '{ symbols { symbol } }' },
        });
      const refused = (await ask({})).json();
      assert.equal(refused.errors[0].extensions.code, 'unauthorized');
      assert.equal(refused.data.symbols, null);
      const allowed = (await ask({ 'x-test-key': 'good' })).json();
      assert.deepEqual(allowed, { data: { symbols: [{ symbol: 'BTCUSDT' }, { symbol: 'ETHUSDT' }] } });
    } finally {
      await app.close();
    }
  });
});

describe('subscriptions over a real WebSocket, beside /ws', () => {
  let app: FastifyInstance;
  let view: FakeView;
  let port: number;
  before(async () => {
    ({ app, view } = await buildTestServer());
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = (app.server.address() as AddressInfo).port;
  });
  after(() => app.close());

  test('only one upgrade listener: /graphql reuses the dispatch /ws set up', () => {
    // Two @fastify/websocket registrations would each route every upgrade, killing the connection.
    assert.equal(app.server.listenerCount('upgrade'), 1);
  });

  test('/ws and /graphql both deliver the same live tick, and /ws stays open', async () => {
    const socket = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    const frames: Json[] = [];
    socket.on('message', (data) => frames.push(JSON.parse(data.toString())));
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    socket.send(JSON.stringify({ op: 'subscribe', channels: ['ticks:btcusdt'] }));
    await waitUntil(() => frames.some((frame) => frame.op === 'subscribed'), '/ws subscribed');

    const listenersBefore = view.listeners.size;
    const client = connectGraphql(`ws://127.0.0.1:${port}/graphql`);
    const ticks = collect(client, `subscription { ticks(symbol: "btcusdt") { ${TICK_FIELDS} } }`);
    await waitUntil(() => view.listeners.size === listenersBefore + 1, 'the GraphQL subscription to attach');

    const tick = {
      symbol: 'BTCUSDT',
      ts: 5 * MINUTE,
      price: 104.5,
      size: 2,
      id: 'x1',
      maShort: 102,
      maLong: null,
      late: false,
    };
    view.emit('ticks:ETHUSDT', { ...tick, symbol: 'ETHUSDT' });
    view.emit('ticks:BTCUSDT', tick);
    await waitUntil(() => ticks.data.length === 1 && frames.length === 2, 'both deliveries');
    assert.deepEqual(ticks.data, [
      { ticks: { ts: tick.ts, price: 104.5, size: 2, id: 'x1', maShort: 102, maLong: null, late: false } },
    ]);
    assert.deepEqual(frames[1], { channel: 'ticks:BTCUSDT', data: tick });
    assert.equal(socket.readyState, WebSocket.OPEN);

    ticks.stop();
    await waitUntil(() => view.listeners.size === listenersBefore, 'the subscription to detach');
    await client.dispose();
    socket.close();
  });

  test('candles and filtered alerts', async () => {
    const client = connectGraphql(`ws://127.0.0.1:${port}/graphql`);
    const listenersBefore = view.listeners.size;
    const candles = collect(
      client,
      `subscription { candles(symbol: "BTCUSDT", interval: "5m") { ${CANDLE_FIELDS} } }`,
    );
    const alerts = collect(client, `subscription { alerts(kind: "price_above") { ${ALERT_FIELDS} } }`);
    await waitUntil(() => view.listeners.size === listenersBefore + 1, 'subscriptions to attach');
    // Both subscriptions share one listener: wait until both queues exist before emitting.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const forming = makeCandle('BTCUSDT', '5m', 0, 100, false);
    view.emit('candles:BTCUSDT:1m', makeCandle('BTCUSDT', '1m', 0, 1, true));
    view.emit('candles:BTCUSDT:5m', forming);
    view.emit('candles:BTCUSDT:5m', { ...forming, close: 101, final: true });
    const alert = {
      ts: 7,
      symbol: 'BTCUSDT',
      kind: 'price_above',
      price: 101,
      threshold: 100,
      message: 'up',
    };
    view.emit('alerts', { ...alert, kind: 'anomaly' });
    view.emit('alerts', alert);
    await waitUntil(() => candles.data.length === 2 && alerts.data.length === 1, 'deliveries');
    assert.deepEqual(
      candles.data.map((message) => [message.candles.interval, message.candles.close, message.candles.final]),
      [
        ['5m', 100, false],
        ['5m', 101, true],
      ],
    );
    assert.deepEqual(alerts.data, [{ alerts: alert }]);
    await client.dispose();
  });

  test('a bad subscription argument is an error with the REST code', async () => {
    const client = connectGraphql(`ws://127.0.0.1:${port}/graphql`);
    const bad = collect(client, 'subscription { candles(symbol: "BTCUSDT", interval: "2m") { ts } }');
    const badSymbol = collect(client, 'subscription { ticks(symbol: "no way!") { ts } }');
    await waitUntil(() => bad.errors.length > 0 && badSymbol.errors.length > 0, 'the errors');
    assert.equal(bad.errors[0].extensions.code, 'invalid_interval');
    assert.equal(badSymbol.errors[0].extensions.code, 'invalid_symbol');
    await client.dispose();
  });
});

describe('a slow subscriber', () => {
  test('loses messages, counted, instead of slowing the pipeline or growing memory', async () => {
    const capacity = 100;
    const view = new FakeView();
    const live = new LiveSource(view, { maxQueuedMessages: capacity });
    const app = Fastify();
    await app.register(graphqlRoutes, {
      store: await seedStore(),
      view,
      limits: { maxLimit: 10, defaultLimit: 5 },
      live,
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as AddressInfo;
    // Alone on the server, the plugin dispatches upgrades itself.
    assert.equal(app.server.listenerCount('upgrade'), 1);
    const sockets: WebSocket[] = [];
    class RecordingWebSocket extends WebSocket {
      constructor(...args: ConstructorParameters<typeof WebSocket>) {
        super(...args);
        sockets.push(this);
      }
    }
    const client = createClient({
      url: `ws://127.0.0.1:${port}/graphql`,
      webSocketImpl: RecordingWebSocket,
      retryAttempts: 0,
    });
    const received: number[] = [];
    client.subscribe(
      { query: 'subscription { ticks(symbol: "AAA") { ts id } }' },
      {
        next: (result) => received.push((result.data as Json).ticks.ts),
        error: () => {},
        complete: () => {},
      },
    );
    // 16 KiB per message, so the socket buffers fill after a few hundred messages, not 100 000.
    const id = 'x'.repeat(16 * 1024);
    let sent = 0;
    const emitBatch = (): number => {
      const started = performance.now();
      for (let i = 0; i < capacity / 2; i++) view.emit('ticks:AAA', { ts: sent++, price: 1, id });
      return performance.now() - started;
    };
    try {
      await waitUntil(() => live.stats().subscriptions === 1, 'the subscription');
      // A client that reads keeps up with half a queue at a time and loses nothing.
      for (let batch = 0; batch < 20; batch++) {
        emitBatch();
        await waitUntil(() => received.length === sent, 'the reading client to catch up');
      }
      assert.equal(live.stats().dropped, 0);
      assert.deepEqual(
        received,
        Array.from({ length: sent }, (_, i) => i),
      );

      // Now it stops reading: the socket buffers fill, mercurius stops pulling, the queue fills.
      (sockets[0] as unknown as { _socket: { pause(): void } })._socket.pause();
      const sentBeforePause = sent;
      let slowestBatchMs = 0;
      for (let batch = 0; batch < 2_000 && live.stats().dropped === 0; batch++) {
        slowestBatchMs = Math.max(slowestBatchMs, emitBatch());
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      const stats = live.stats();
      assert.ok(stats.dropped > 0, `messages were dropped: ${JSON.stringify(stats)}`);
      assert.ok(
        sent - sentBeforePause > capacity,
        'drops start only once the socket buffers are full, not at the first burst',
      );
      // Publishing to a stalled subscriber only queues or counts (generous bound for a shared CI box).
      assert.ok(slowestBatchMs < 50, `${capacity / 2} publishes took ${slowestBatchMs} ms`);
    } finally {
      // A paused socket never completes a close handshake: cut it.
      for (const socket of sockets) socket.terminate();
      await client.dispose();
      await app.close();
    }
  });
});
