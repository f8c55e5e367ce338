import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import { buildTestServer, FakeView, seedStore, withServer } from '../../../test/support/serve.ts';
import { buildServer } from '../server.ts';
import { REQUEST_ID_PATTERN, requestIdFrom } from './request-id.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

test('requestIdFrom keeps a sane client id and replaces anything else with a UUID', () => {
  assert.equal(requestIdFrom('abc-123_X.y'), 'abc-123_X.y');
  assert.equal(requestIdFrom('a'.repeat(128)), 'a'.repeat(128));
  for (const insane of ['a'.repeat(129), '', 'a b', 'a\nb', 'ä', '<script>', undefined, ['a', 'b']]) {
    assert.match(requestIdFrom(insane), UUID, JSON.stringify(insane));
  }
  assert.ok(REQUEST_ID_PATTERN.test(requestIdFrom(undefined)));
});

test('X-Request-ID is echoed on success, errors and framework errors, and is on every log line', async () => {
  const lines: { requestId?: string; msg?: string }[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  const app = await buildServer({
    store: await seedStore(),
    view: new FakeView(),
    logger: pino({ level: 'info' }, sink),
  });
  try {
    const given = await app.inject({ url: '/api/v1/symbols', headers: { 'x-request-id': 'client-42' } });
    assert.equal(given.headers['x-request-id'], 'client-42');
    const made = await app.inject({ url: '/api/v1/candles/NOPE', headers: { 'x-request-id': 'bad id!' } });
    assert.equal(made.statusCode, 404);
    assert.match(String(made.headers['x-request-id']), UUID);
    const badUrl = await app.inject({ url: '/api/v1/latest/%E0%A4%A' });
    assert.equal(badUrl.statusCode, 400);
    assert.match(String(badUrl.headers['x-request-id']), UUID);

    const ofClient = lines.filter((line) => line.requestId === 'client-42');
    // Fastify's "incoming request" and "request completed", at least.
    assert.ok(ofClient.length >= 2, JSON.stringify(lines));
    assert.ok(lines.some((line) => line.requestId === made.headers['x-request-id']));
    const requestLines = lines.filter((line) => /request/.test(line.msg ?? ''));
    assert.ok(requestLines.every((line) => typeof line.requestId === 'string'));
  } finally {
    await app.close();
  }
});

test('Server-Timing has the app time on every response and the store time where the store was used', async () => {
  await withServer(buildTestServer(), async ({ app }) => {
    const candles = await app.inject({ url: '/api/v1/candles/BTCUSDT' });
    assert.match(String(candles.headers['server-timing']), /^app;dur=\d+\.\d{2}, store;dur=\d+\.\d{2}$/);
    const stats = await app.inject({ url: '/api/v1/stats' });
    assert.match(String(stats.headers['server-timing']), /^app;dur=\d+\.\d{2}$/);
    const missing = await app.inject({ url: '/nothing' });
    assert.match(String(missing.headers['server-timing']), /^app;dur=/);
  });
});

test('CORS follows server.cors.origins: none by default, the listed origins, or any', async () => {
  const origin = 'https://dash.example';
  const closed = await buildTestServer();
  const listed = await buildTestServer({ config: { cors: { origins: [origin] } } });
  const open = await buildTestServer({ config: { cors: { origins: '*' } } });
  try {
    const ask = (app: typeof closed.app, from: string) =>
      app.inject({ url: '/api/v1/symbols', headers: { origin: from } });
    assert.equal((await ask(closed.app, origin)).headers['access-control-allow-origin'], undefined);
    assert.equal((await ask(listed.app, origin)).headers['access-control-allow-origin'], origin);
    assert.equal(
      (await ask(listed.app, 'https://evil.example')).headers['access-control-allow-origin'],
      undefined,
    );
    assert.equal((await ask(open.app, 'https://any.example')).headers['access-control-allow-origin'], '*');
  } finally {
    await Promise.all([closed.app.close(), listed.app.close(), open.app.close()]);
  }
});

test('rate limit: 429 rate_limited per address past perMinute, probes exempt, per API key when known', async () => {
  const store = await seedStore();
  const app = await buildServer({ store, view: new FakeView(), config: { rateLimit: { perMinute: 3 } } });
  // Plays the auth plugin: a request with `x-test-key` acts as that key.
  app.addHook('onRequest', async (request) => {
    const keyId = request.headers['x-test-key'];
    request.principal = typeof keyId === 'string' ? { keyId, name: keyId, role: 'read' } : null;
  });
  try {
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await app.inject({ url: '/api/v1/symbols' })).statusCode);
    assert.deepEqual(statuses, [200, 200, 200, 429]);
    const limited = await app.inject({ url: '/api/v1/stats' });
    assert.equal(limited.statusCode, 429);
    assert.equal(limited.json().error.code, 'rate_limited');
    assert.match(limited.json().error.message, /more than 3 requests per minute/);
    // The probes answer whatever the budget.
    assert.equal((await app.inject({ url: '/health' })).statusCode, 200);
    assert.equal((await app.inject({ url: '/ready' })).statusCode, 200);
    // Another key from the same address has its own budget; the same key shares one.
    const keyed = { 'x-test-key': 'k1' };
    for (let i = 0; i < 3; i++) {
      assert.equal((await app.inject({ url: '/api/v1/symbols', headers: keyed })).statusCode, 200);
    }
    assert.equal((await app.inject({ url: '/api/v1/symbols', headers: keyed })).statusCode, 429);
    const other = { 'x-test-key': 'k2' };
    assert.equal((await app.inject({ url: '/api/v1/symbols', headers: other })).statusCode, 200);
  } finally {
    await app.close();
  }
});

test('a body over server.limits.bodyBytes is 413 payload_too_large', async () => {
  const app = await buildServer({
    store: await seedStore(),
    view: new FakeView(),
    config: { limits: { bodyBytes: 100 } },
  });
  app.post('/test/echo', async (request) => request.body);
  try {
    const small = await app.inject({ method: 'POST', url: '/test/echo', payload: { a: 1 } });
    assert.equal(small.statusCode, 200);
    const big = await app.inject({ method: 'POST', url: '/test/echo', payload: { a: 'x'.repeat(200) } });
    assert.equal(big.statusCode, 413);
    assert.equal(big.json().error.code, 'payload_too_large');
  } finally {
    await app.close();
  }
});
