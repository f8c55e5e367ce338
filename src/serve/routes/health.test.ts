import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildTestServer, FakeView, type Json, seedStore, withServer } from '../../../test/support/serve.ts';
import type { Store } from '../../store/store.ts';
import { buildServer } from '../server.ts';
import { healthRoutes } from './health.ts';

/** The body with every check's latency replaced by 0, so it can be compared whole. */
function withoutLatency(body: Json): Json {
  for (const check of Object.values<Json>(body.checks ?? {})) {
    assert.equal(typeof check.latencyMs, 'number');
    assert.ok(check.latencyMs >= 0);
    check.latencyMs = 0;
  }
  return body;
}

const OK_REQUIRED = { ok: true, required: true, latencyMs: 0 };

test('GET /health is ok and GET /ready is ready with every check when all answer', async () => {
  await withServer(buildTestServer(), async ({ app }) => {
    const health = await app.inject({ url: '/health' });
    assert.equal(health.statusCode, 200);
    assert.deepEqual(health.json(), { status: 'ok' });
    const ready = await app.inject({ url: '/ready' });
    assert.equal(ready.statusCode, 200);
    assert.deepEqual(withoutLatency(ready.json()), {
      status: 'ready',
      checks: {
        store: OK_REQUIRED,
        log: OK_REQUIRED,
        feeds: { ok: true, required: false, latencyMs: 0 },
      },
    });
  });
});

test('GET /ready is 503 not_ready with the reason when the store fails; /health stays ok', async () => {
  const store = await seedStore();
  const failing: Store = Object.assign(Object.create(store), {
    symbols: async () => {
      throw new Error('database is locked');
    },
  });
  const app = await buildServer({ store: failing, view: new FakeView() });
  try {
    const ready = await app.inject({ url: '/ready' });
    assert.equal(ready.statusCode, 503);
    assert.deepEqual(withoutLatency(ready.json()), {
      status: 'unavailable',
      error: { code: 'not_ready', message: 'store: database is locked' },
      checks: {
        store: { ok: false, required: true, latencyMs: 0, error: 'database is locked' },
        log: OK_REQUIRED,
        feeds: { ok: true, required: false, latencyMs: 0 },
      },
    });
    assert.equal((await app.inject({ url: '/health' })).statusCode, 200);
  } finally {
    await app.close();
  }
});

test('GET /ready is 503 when the store does not answer in time', async () => {
  const store = await seedStore();
  const hanging: Store = Object.assign(Object.create(store), { symbols: () => new Promise(() => {}) });
  const { default: Fastify } = await import('fastify');
  const app = Fastify();
  await app.register(healthRoutes, { store: hanging, readyTimeoutMs: 20 });
  try {
    const ready = await app.inject({ url: '/ready' });
    assert.equal(ready.statusCode, 503);
    assert.equal(ready.json().error.message, 'store: store did not answer within 20 ms');
  } finally {
    await app.close();
  }
});

test('GET /ready is 503 when the pipeline cannot read its log, naming every failed dependency', async () => {
  const store = await seedStore();
  const failing: Store = Object.assign(Object.create(store), {
    symbols: async () => {
      throw new Error('database is locked');
    },
  });
  const view = new FakeView();
  view.stats = () => {
    throw new Error('the log is closed');
  };
  const app = await buildServer({ store: failing, view });
  try {
    const ready = await app.inject({ url: '/ready' });
    assert.equal(ready.statusCode, 503);
    const body = ready.json();
    assert.deepEqual(body.error, {
      code: 'not_ready',
      message: 'store: database is locked; log: the log is closed',
    });
    assert.equal(body.checks.log.ok, false);
    assert.equal(body.checks.log.error, 'the log is closed');
  } finally {
    await app.close();
  }
});

test('a failed feed is reported by GET /ready but does not make it unavailable', async () => {
  const view = new FakeView();
  view.statsValue = {
    ...view.statsValue,
    feeds: [
      { name: 'binance', type: 'binance', state: 'failed', messages: 3, lastMessageAt: 1, error: 'HTTP 451' },
      { name: 'replay', type: 'replay', state: 'running', messages: 12, lastMessageAt: 1_000 },
    ],
  };
  const app = await buildServer({ store: await seedStore(), view });
  try {
    const ready = await app.inject({ url: '/ready' });
    assert.equal(ready.statusCode, 200);
    assert.deepEqual(withoutLatency(ready.json()).checks.feeds, {
      ok: false,
      required: false,
      latencyMs: 0,
      error: 'binance failed: HTTP 451',
    });
  } finally {
    await app.close();
  }
});

test('GET /ready is degraded (200) while a live feed has never connected for longer than the grace', async () => {
  const view = new FakeView();
  const now = Date.now();
  const live = { type: 'binance', messages: 0, lastMessageAt: null, connected: false, lastConnectedAt: null };
  view.statsValue = {
    ...view.statsValue,
    feeds: [
      {
        ...live,
        name: 'nodns',
        state: 'failing',
        startedAt: now - 45_000,
        failedAttempts: 6,
        cause: 'DNS lookup failed for stream.nowhere.invalid (ENOTFOUND: the host does not resolve)',
        causeKind: 'dns',
      },
      // Within the grace: not yet a problem.
      { ...live, name: 'young', state: 'connecting', startedAt: now - 1_000, failedAttempts: 0 },
      // Connected once and now reconnecting: a drop, not a feed that never came up.
      {
        ...live,
        name: 'dropped',
        state: 'reconnecting',
        startedAt: now - 90_000,
        lastConnectedAt: now - 60_000,
      },
    ],
  };
  const app = await buildServer({ store: await seedStore(), view });
  try {
    const ready = await app.inject({ url: '/ready' });
    assert.equal(ready.statusCode, 200);
    const body = withoutLatency(ready.json());
    assert.equal(body.status, 'degraded');
    assert.match(
      body.checks.feeds.error,
      /^nodns has not connected in 4\d s \(failing, 6 failed attempts: DNS lookup failed for stream\.nowhere\.invalid/,
    );
    assert.doesNotMatch(body.checks.feeds.error, /young|dropped/);
  } finally {
    await app.close();
  }
});

test('GET /ready is 503 naming each dependency the pipeline reports degraded, with its code', async () => {
  const view = new FakeView();
  const since = Date.UTC(2026, 0, 2, 3, 4, 5);
  view.statsValue = {
    ...view.statsValue,
    health: [
      { dependency: 'kafka', status: 'ok', since },
      { dependency: 'redis', status: 'degraded', cause: 'connection refused', code: 'redis_down', since },
      {
        dependency: 'store',
        status: 'degraded',
        cause: 'No space left on device',
        code: 'store_write_failed',
        since,
      },
    ],
  };
  const app = await buildServer({ store: await seedStore(), view });
  try {
    const ready = await app.inject({ url: '/ready' });
    assert.equal(ready.statusCode, 503);
    const body = withoutLatency(ready.json());
    assert.equal(body.checks.kafka, undefined, 'an ok report is not a check');
    assert.deepEqual(body.checks.redis, {
      ok: false,
      required: true,
      latencyMs: 0,
      error: 'connection refused (since 2026-01-02T03:04:05.000Z)',
      code: 'redis_down',
    });
    // The store answers reads, but its writes fail: the report wins over the probe.
    assert.equal(body.checks.store.ok, false);
    assert.equal(body.checks.store.code, 'store_write_failed');
    assert.match(body.error.message, /^store: No space left on device .*; redis: connection refused/);
  } finally {
    await app.close();
  }
});

test('a store whose probe fails while the pipeline reports it degraded keeps the reported code and both errors', async () => {
  const view = new FakeView();
  const since = Date.UTC(2026, 0, 2, 3, 4, 5);
  view.statsValue = {
    ...view.statsValue,
    health: [
      {
        dependency: 'store',
        status: 'degraded',
        cause: 'No space left on device',
        code: 'store_write_failed',
        since,
      },
    ],
  };
  const store = await seedStore();
  store.symbols = async () => {
    throw new Error('database is locked');
  };
  const app = await buildServer({ store, view });
  try {
    const ready = await app.inject({ url: '/ready' });
    assert.equal(ready.statusCode, 503);
    const { store: check } = withoutLatency(ready.json()).checks;
    assert.equal(check.code, 'store_write_failed');
    assert.equal(check.error, 'No space left on device (since 2026-01-02T03:04:05.000Z); database is locked');
  } finally {
    await app.close();
  }
});
