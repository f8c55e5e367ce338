import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Store } from '../../store/store.ts';
import { buildServer } from '../server.ts';
import { buildTestServer, FakeView, seedStore } from '../test-helpers.ts';
import { healthRoutes } from './health.ts';

test('GET /health is ok and GET /ready is ready when the store answers', async () => {
  const { app } = await buildTestServer();
  try {
    const health = await app.inject({ url: '/health' });
    assert.equal(health.statusCode, 200);
    assert.deepEqual(health.json(), { status: 'ok' });
    const ready = await app.inject({ url: '/ready' });
    assert.equal(ready.statusCode, 200);
    assert.deepEqual(ready.json(), { status: 'ready' });
  } finally {
    await app.close();
  }
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
    assert.deepEqual(ready.json(), {
      status: 'unavailable',
      error: { code: 'not_ready', message: 'store: database is locked' },
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
