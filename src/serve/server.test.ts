import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { buildTestServer, FakeView, seedStore, withServer } from '../../test/support/serve.ts';
import { ApiError, CLOSE_CODES, ERROR_CODES, ERRORS, WS_ERROR_CODES, WS_ERRORS } from './errors.ts';
import { buildServer } from './server.ts';

test('an unknown route is 404 not_found in the error shape', async () => {
  await withServer(buildTestServer(), async ({ app }) => {
    const response = await app.inject({ url: '/api/v1/nothing?x=1' });
    assert.equal(response.statusCode, 404);
    assert.deepEqual(response.json(), {
      error: { code: 'not_found', message: 'route GET /api/v1/nothing not found' },
    });
    const post = await app.inject({ method: 'POST', url: '/api/v1/symbols' });
    assert.equal(post.statusCode, 404);
    assert.equal(post.json().error.code, 'not_found');
  });
});

test('a failing store is 500 internal with no stack or cause in the body', async () => {
  const store = await seedStore();
  store.ticks = async () => {
    throw new Error('disk on fire at /var/secret/path');
  };
  const app = await buildServer({ store, view: new FakeView() });
  try {
    const response = await app.inject({ url: '/api/v1/ticks/BTCUSDT' });
    assert.equal(response.statusCode, 500);
    assert.deepEqual(response.json(), { error: { code: 'internal', message: 'internal server error' } });
    assert.ok(!response.body.includes('secret'));
  } finally {
    await app.close();
  }
});

test('malformed URLs Fastify refuses before routing come out in the error shape', async () => {
  await withServer(buildTestServer(), async ({ app }) => {
    const badEncoding = await app.inject({ url: '/api/v1/latest/%E0%A4%A' });
    assert.equal(badEncoding.statusCode, 400);
    assert.equal(badEncoding.json().error.code, 'bad_request');
    // Over maxParamLength: 414, or 404 when a wildcard route (the dashboard's) takes the URL instead.
    const tooLong = await app.inject({ url: `/api/v1/latest/${'A'.repeat(200)}` });
    assert.ok([404, 414].includes(tooLong.statusCode), String(tooLong.statusCode));
    assert.equal(tooLong.json().error.code, tooLong.statusCode === 414 ? 'uri_too_long' : 'not_found');
  });
});

test('a plain HTTP GET /ws is 426 upgrade_required', async () => {
  await withServer(buildTestServer(), async ({ app }) => {
    const response = await app.inject({ url: '/ws' });
    assert.equal(response.statusCode, 426);
    assert.equal(response.json().error.code, 'upgrade_required');
  });
});

test('the logger option takes pino options', async () => {
  const app = await buildServer({
    store: await seedStore(),
    view: new FakeView(),
    logger: { level: 'silent' },
  });
  try {
    assert.equal(app.log.level, 'silent');
  } finally {
    await app.close();
  }
});

test('the server listens to the live stream until it closes', async () => {
  const { app, view } = await buildTestServer();
  assert.equal(view.listeners.size, 1);
  view.emit('alerts', { kind: 'anomaly' });
  assert.equal(app.wsHub.stats().published, 1);
  await app.close();
  assert.equal(view.listeners.size, 0);
});

test('invalid limits and ws options are refused at build time', async () => {
  const store = await seedStore();
  const view = new FakeView();
  await assert.rejects(buildServer({ store, view, config: { limits: { maxLimit: 0 } } }), /maxLimit/);
  await assert.rejects(
    buildServer({ store, view, config: { limits: { maxLimit: 10, defaultLimit: 20 } } }),
    /defaultLimit \(20\) must be <= server.limits.maxLimit/,
  );
  await assert.rejects(
    buildServer({ store, view, config: { ws: { maxQueuedBytes: 1.5 } } }),
    /maxQueuedBytes/,
  );
  // A small maxLimit lowers the default limit with it rather than failing.
  const app = await buildServer({ store, view, config: { limits: { maxLimit: 2 } } });
  try {
    const response = await app.inject({ url: '/api/v1/ticks/BTCUSDT' });
    assert.equal(response.json().ticks.length, 2);
  } finally {
    await app.close();
  }
});

/** The rows `| \`code\` | cells... |` (or `| 1009 | ... |`) of the markdown tables in `text`, by code. */
function tableRows(text: string): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const match = /^\| (?:`([a-z_]+)`|(\d{4})) \| (.*) \|$/.exec(line);
    if (match) rows.set(match[1] ?? match[2]!, match[3]!.split(' | '));
  }
  return rows;
}

test('docs/errors.md lists every code with the status and meaning of errors.ts, and no other', async () => {
  const doc = await readFile(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  const [rest, ws] = doc.split('## WebSocket');
  const [wsCodes, closeCodes] = ws!.split('Close codes');
  const restRows = tableRows(rest!);
  assert.deepEqual([...restRows.keys()].sort(), [...ERROR_CODES].sort());
  for (const code of ERROR_CODES) {
    const [status, meaning] = restRows.get(code)!;
    assert.equal(Number(status), ERRORS[code].status, `status of ${code}`);
    assert.equal(meaning, ERRORS[code].meaning, `meaning of ${code}`);
  }
  const wsRows = tableRows(wsCodes!);
  assert.deepEqual([...wsRows.keys()].sort(), [...WS_ERROR_CODES].sort());
  for (const code of WS_ERROR_CODES) assert.deepEqual(wsRows.get(code), [WS_ERRORS[code].meaning]);
  const closeRows = tableRows(closeCodes!);
  assert.deepEqual(
    Object.fromEntries([...closeRows].map(([code, [meaning]]) => [code, meaning])),
    Object.fromEntries(Object.entries(CLOSE_CODES)),
  );
});

test('an ApiError is answered with the status of its code in the table', async () => {
  for (const code of ERROR_CODES) assert.equal(new ApiError(code, 'x').statusCode, ERRORS[code].status);
});
