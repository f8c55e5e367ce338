import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildTestServer, type Json } from '../../../test/support/serve.ts';

let app: FastifyInstance;

before(async () => {
  ({ app } = await buildTestServer({
    config: { graphql: { maxCost: 1_000, maxTokens: 200 } },
  }));
});

after(async () => {
  await app.close();
});

async function post(body: unknown): Promise<{ status: number; json: Json }> {
  const response = await app.inject({ method: 'POST', url: '/graphql', payload: body as object });
  return { status: response.statusCode, json: response.json() };
}

function refusal(json: Json): { code: string; message: string } {
  assert.equal(json.data, null);
  return { code: json.errors[0].extensions.code, message: json.errors[0].message };
}

test('a request whose query is not a string is 400 bad_request, without internals', async () => {
  for (const body of [{ query: 123 }, { query: ['{ symbols { symbol } }'] }, { nothing: 1 }]) {
    const { status, json } = await post(body);
    assert.equal(status, 400, JSON.stringify(body));
    const { code, message } = refusal(json);
    assert.equal(code, 'bad_request');
    assert.doesNotMatch(message, /definitions|iterable|destructure/);
  }
  const { status } = await post({ query: '{ symbols { symbol } }', variables: [1] });
  assert.equal(status, 400);
});

test('a subscription over HTTP is 400 bad_request', async () => {
  const { status, json } = await post({ query: 'subscription { alerts { ts } }' });
  assert.equal(status, 400);
  assert.match(refusal(json).message, /WebSocket/);
});

test('a document over maxCost is refused before it runs, aliases and variables counted', async () => {
  // 100 rows x 7 fields = 700: allowed; the same twice under two aliases is 1 400.
  const fields = 'ts price size id maShort maLong late';
  assert.equal((await post({ query: `{ ticks(symbol: "BTCUSDT", limit: 100) { ${fields} } }` })).status, 200);
  const aliased = await post({
    query: `{ a: ticks(symbol: "BTCUSDT", limit: 100) { ${fields} } b: ticks(symbol: "BTCUSDT", limit: 100) { ${fields} } }`,
  });
  assert.equal(aliased.status, 400);
  const { code, message } = refusal(aliased.json);
  assert.equal(code, 'query_too_costly');
  assert.match(message, /cost 1400/);
  // The default limit (10 000 rows) counts when none is given; variables are read.
  assert.equal(
    refusal((await post({ query: '{ ticks(symbol: "BTCUSDT") { ts } }' })).json).code,
    'query_too_costly',
  );
  const withVariables = await post({
    query: 'query ($n: Int) { ticks(symbol: "BTCUSDT", limit: $n) { ts } }',
    variables: { n: 5_000 },
  });
  assert.equal(refusal(withVariables.json).code, 'query_too_costly');
});

test('a document over maxTokens is query_too_costly', async () => {
  const query = `{ ${Array.from({ length: 60 }, (_, i) => `s${i}: stats { received }`).join(' ')} }`;
  const { status, json } = await post({ query });
  assert.equal(status, 400);
  assert.equal(refusal(json).code, 'query_too_costly');
});

test('an answer over maxResponseBytes is replaced by response_too_large', async () => {
  const { app: capped } = await buildTestServer({ config: { graphql: { maxResponseBytes: 200 } } });
  try {
    const query = async (text: string) => {
      const response = await capped.inject({ method: 'POST', url: '/graphql', payload: { query: text } });
      return { status: response.statusCode, json: response.json() };
    };
    assert.equal((await query('{ ticks(symbol: "BTCUSDT", limit: 1) { ts } }')).status, 200);
    const { status, json } = await query(
      '{ ticks(symbol: "BTCUSDT", limit: 100) { ts price size id maShort } }',
    );
    assert.equal(status, 400);
    assert.equal(refusal(json).code, 'response_too_large');
    const metrics = await capped.inject({ url: '/metrics' });
    assert.match(
      metrics.body,
      /streamlines_serve_limit_refusals_total\{limit="graphql.maxResponseBytes"\} 1/,
    );
  } finally {
    await capped.close();
  }
});

test('refusals by cost are counted by the limit that refused them', async () => {
  const metrics = await app.inject({ url: '/metrics' });
  assert.match(metrics.body, /streamlines_serve_limit_refusals_total\{limit="graphql.maxCost"\} [1-9]/);
  assert.match(metrics.body, /streamlines_serve_limit_refusals_total\{limit="graphql.maxTokens"\} [1-9]/);
});
