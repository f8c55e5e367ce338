/**
 * PostgreSQL down (issue #11): reads answer 503 `store_unavailable` (docs/errors.md), not 500
 * `internal`, and `/ready` names the store, while it lasts; both recover when it is back.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildServer } from '../../src/serve/server.ts';
import { makeBatch } from '../../src/store/conformance.ts';
import { PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { createTestSchema, findOrStartPostgres, type TestPostgres } from '../support/postgres.ts';
import { FakeView, makeTick } from '../support/serve.ts';

const real = await findOrStartPostgres();
const outageSkip =
  'skip' in real ? real.skip : real.outage === undefined ? 'the server was not started here' : false;

describe('PostgreSQL outage', { skip: outageSkip }, () => {
  const server = real as TestPostgres;
  after(() => server.stop());

  test('reads answer 503 store_unavailable and /ready names the store while it is down', async () => {
    const { schema, drop } = await createTestSchema(server.url);
    const store = new PostgresStore({ url: server.url, schema, timescale: 'off', retentionEveryMs: 0 });
    await store.open();
    const app = await buildServer({ store, view: new FakeView() });
    try {
      await store.write(makeBatch({ ticks: [makeTick('BTCUSDT', 0, 1_700_000_000_000, 100)] }));
      const before = await app.inject({ url: '/api/v1/latest/BTCUSDT' });
      assert.equal(before.statusCode, 200, before.body);

      const outage = server.outage!(4_000);
      await sleep(500);
      const latest = await app.inject({ url: '/api/v1/latest/BTCUSDT' });
      assert.equal(latest.statusCode, 503, latest.body);
      assert.equal(latest.json().error.code, 'store_unavailable');
      assert.match(latest.json().error.message, /PostgreSQL is unreachable/);
      const candles = await app.inject({ url: '/api/v1/candles/BTCUSDT' });
      assert.equal(candles.statusCode, 503);
      const ready = await app.inject({ url: '/ready' });
      assert.equal(ready.statusCode, 503);
      assert.equal(ready.json().checks.store.ok, false);
      await outage;

      // Back: the pool replaces its dead connections on the next checkout. The test cluster runs
      // without synchronous commit, so the immediate stop may lose the tick: 404 is an answer too.
      const deadline = Date.now() + 20_000;
      let status = 0;
      while (Date.now() < deadline) {
        status = (await app.inject({ url: '/api/v1/latest/BTCUSDT' })).statusCode;
        if (status === 200 || status === 404) break;
        await sleep(200);
      }
      assert.ok(status === 200 || status === 404, `still ${status} after the outage`);
      assert.equal((await app.inject({ url: '/ready' })).statusCode, 200);
    } finally {
      await app.close();
      await store.close();
      await drop();
    }
  });
});
