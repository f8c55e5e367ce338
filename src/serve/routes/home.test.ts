import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildTestServer } from '../test-helpers.ts';

test('GET / serves an HTML page titled Streamlines that links the API and polls the symbols', async () => {
  const { app } = await buildTestServer();
  try {
    const response = await app.inject({ url: '/' });
    assert.equal(response.statusCode, 200);
    assert.match(String(response.headers['content-type']), /^text\/html; charset=utf-8/);
    assert.match(response.body, /<title>Streamlines<\/title>/);
    for (const path of ['/api/v1/symbols', '/api/v1/stats', '/api/v1/alerts', '/health']) {
      assert.ok(response.body.includes(`href="${path}"`), path);
    }
    assert.match(response.body, /fetch\('\/api\/v1\/symbols'\)/);
    assert.match(response.body, /setInterval\(refresh, 1000\)/);
  } finally {
    await app.close();
  }
});
