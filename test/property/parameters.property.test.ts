/**
 * Numeric parameters mean the same over REST and GraphQL, and only what the docs say: a whole number
 * in decimal digits within its bounds (params.ts's parseWholeNumber is the one check of both).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { createApiKey } from '../../src/serve/auth/keys.ts';
import { buildTestServer } from '../support/serve.ts';

let app: FastifyInstance;

before(async () => {
  ({ app } = await buildTestServer());
});

after(async () => {
  await app.close();
});

/** What the docs accept for `limit`: decimal digits, no leading zero, 1 to 10 000. */
function isDocumentedLimit(text: string): boolean {
  return /^(?:0|[1-9][0-9]*)$/.test(text) && Number(text) >= 1 && Number(text) <= 10_000;
}

const limitText = fc.oneof(
  fc.integer({ min: -5, max: 20_000 }).map(String),
  fc.constantFrom('1e3', '0x10', '010', ' 5', '5 ', '+5', '5.0', '2.5', 'Infinity', '1e400', '', 'NaN', '-0'),
  fc.string({ maxLength: 8 }),
);

test('REST accepts a limit exactly when the docs do, and says invalid_parameter otherwise', async () => {
  await fc.assert(
    fc.asyncProperty(limitText, async (text) => {
      const response = await app.inject({
        url: `/api/v1/ticks/BTCUSDT?limit=${encodeURIComponent(text)}`,
      });
      if (isDocumentedLimit(text)) {
        assert.equal(response.statusCode, 200, text);
        assert.ok(response.json().ticks.length <= Number(text));
      } else {
        assert.equal(response.statusCode, 400, text);
        assert.equal(response.json().error.code, 'invalid_parameter');
      }
    }),
    { numRuns: 300 },
  );
});

test('GraphQL accepts the same numbers as REST, with the same code', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(fc.integer({ min: -5, max: 20_000 }), fc.double({ noNaN: true, noDefaultInfinity: true })),
      async (from) => {
        const rest = await app.inject({ url: `/api/v1/ticks/BTCUSDT?from=${from}&limit=5` });
        const graphql = await app.inject({
          method: 'POST',
          url: '/graphql',
          payload: {
            query: 'query ($from: Float) { ticks(symbol: "BTCUSDT", from: $from, limit: 5) { ts } }',
            variables: { from },
          },
        });
        const error = graphql.json().errors?.[0]?.extensions?.code;
        // REST reads the text (`1e+21` is refused however large); GraphQL reads a number.
        const wholeInRange = Number.isSafeInteger(from) && from >= 0;
        assert.equal(error === undefined, wholeInRange, `GraphQL from=${from}: ${error}`);
        if (!wholeInRange) assert.equal(error, 'invalid_parameter');
        if (/^(?:0|[1-9][0-9]*)$/.test(String(from))) assert.equal(rest.statusCode, wholeInRange ? 200 : 400);
        else assert.equal(rest.json().error.code, 'invalid_parameter');
      },
    ),
    { numRuns: 200 },
  );
});

test('a body field declared a string is not coerced from an array', async () => {
  const { app: keyed, store } = await buildTestServer();
  try {
    const admin = await createApiKey(store, { name: 'ops', role: 'admin' });
    const response = await keyed.inject({
      method: 'POST',
      url: '/api/v1/admin/keys',
      headers: { authorization: `Bearer ${admin.key}` },
      payload: { name: 'x', role: ['admin'] },
    });
    assert.equal(response.statusCode, 400);
    assert.equal(response.json().error.code, 'invalid_parameter');
    assert.match(response.json().error.message, /role must be a string/);
    assert.equal((await store.listKeys()).length, 1);
  } finally {
    await keyed.close();
  }
});
