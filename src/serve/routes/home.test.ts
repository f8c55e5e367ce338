import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildTestServer, withServer } from '../../../test/support/serve.ts';

test('GET / without a built dashboard serves a page saying to run npm run build:web', async () => {
  await withServer(
    buildTestServer({ webRoot: join(import.meta.dirname, 'no-such-dist') }),
    async ({ app }) => {
      const response = await app.inject({ url: '/' });
      assert.equal(response.statusCode, 200);
      assert.match(String(response.headers['content-type']), /^text\/html; charset=utf-8/);
      assert.match(response.body, /<title>Streamlines<\/title>/);
      assert.match(response.body, /npm run build:web/);
      assert.ok(response.body.includes('href="/api/v1/symbols"'));
      // No SPA fallback without the app: client routes are plain 404s.
      assert.equal((await app.inject({ url: '/pipeline' })).statusCode, 404);
    },
  );
});
