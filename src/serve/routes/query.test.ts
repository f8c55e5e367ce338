import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildTestServer } from '../../../test/support/serve.ts';
import type { ProcessedTick } from '../../core/records.ts';
import { EmbeddedLake } from '../../lake/lake.ts';
import { lakeConfigSchema } from '../../lake/lake-config.ts';
import { makeBatch } from '../../store/conformance.ts';
import { DuckDbStore } from '../../store/duckdb/duckdb-store.ts';

const DAY0 = 1_700_006_400_000; // 2023-11-15T00:00Z

function tick(seq: number, ts: number): ProcessedTick {
  return {
    source: 'replay',
    symbol: 'BTCUSDT',
    ts,
    price: 100 + seq,
    size: 1,
    id: String(seq),
    receivedAt: ts,
    seq,
    maShort: null,
    maLong: null,
    late: false,
  };
}

describe('POST /api/v1/query', () => {
  let dir: string;
  let lake: EmbeddedLake;
  let app: FastifyInstance;
  const admin = { 'x-test-admin': '1' };

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'streamlines-query-'));
    lake = new EmbeddedLake(new DuckDbStore({ path: path.join(dir, 'store.duckdb') }), {
      config: lakeConfigSchema.parse({}),
      lakePath: path.join(dir, 'lake'),
      latenessMs: 10_000,
    });
    await lake.store.open();
    // Two days: the first goes to the lake, the second stays hot only.
    const ticks = [tick(1, DAY0 + 1_000), tick(2, DAY0 + 2_000), tick(3, DAY0 + 86_400_000 + 20_000)];
    const state = {
      version: 1,
      ended: false,
      clockFloorMs: null,
      symbols: [{ symbol: 'BTCUSDT', maxTs: DAY0 + 86_400_000 + 20_000 }],
    };
    await lake.store.write(makeBatch({ ticks, checkpoint: { name: 'processor', offsets: { 0: 3 }, state } }));
    assert.equal((await lake.writer().pass()).rows.ticks, 2);
    ({ app } = await buildTestServer({
      store: lake.store,
      warehouse: { warehouse: lake, maxRows: 2, timeoutMs: 200 },
    }));
    app.addHook('onRequest', async (request) => {
      if (request.headers['x-test-admin'] !== undefined)
        request.principal = { keyId: 't', name: 't', role: 'admin' };
    });
  });

  after(async () => {
    await app.close();
    await lake.store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const post = (body: object, headers: Record<string, string> = admin) =>
    app.inject({ method: 'POST', url: '/api/v1/query', payload: body, headers });

  it('answers an admin over lake and hot store as one, each row once', async () => {
    const response = await post({ sql: 'SELECT id, ts FROM ticks ORDER BY ts' });
    assert.equal(response.statusCode, 200, response.body);
    assert.deepEqual(response.json(), {
      columns: ['id', 'ts'],
      rows: [
        { id: '1', ts: DAY0 + 1_000 },
        { id: '2', ts: DAY0 + 2_000 },
      ],
      truncated: true,
    });
    const count = await post({ sql: 'WITH t AS (SELECT * FROM ticks) SELECT count(*) AS n FROM t' });
    assert.deepEqual(count.json().rows, [{ n: 3 }]);
  });

  it('needs an admin key', async () => {
    assert.equal((await post({ sql: 'SELECT 1' }, {})).statusCode, 401);
    assert.equal((await post({ sql: 'SELECT 1 AS one' })).statusCode, 200);
  });

  it('refuses anything but one SELECT over the four views, with stable codes', async () => {
    const cases: [string, number, string][] = [
      ['DELETE FROM ticks', 400, 'invalid_query'],
      ['SELECT 1; SELECT 2', 400, 'invalid_query'],
      ['SELECT * FROM nonsense(', 400, 'invalid_query'],
      ['SELECT * FROM api_keys', 403, 'forbidden_table'],
      ['SELECT * FROM main.ticks', 403, 'forbidden_table'],
      ['SELECT * FROM tick_rows', 403, 'forbidden_table'],
      ['SELECT * FROM text_ids', 403, 'forbidden_table'],
      ["SELECT * FROM read_csv('/etc/passwd')", 403, 'forbidden_table'],
      ["SELECT * FROM '/etc/passwd'", 403, 'forbidden_table'],
      ['SELECT * FROM ticks WHERE seq IN (SELECT 1 FROM checkpoints)', 403, 'forbidden_table'],
    ];
    for (const [sql, status, code] of cases) {
      const response = await post({ sql });
      assert.equal(response.statusCode, status, `${sql}: ${response.body}`);
      assert.equal(response.json().error.code, code, sql);
    }
  });

  it('stops a query past the time limit', async () => {
    const response = await post({
      sql: 'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 1000000000) SELECT count(*) FROM r',
    });
    assert.equal(response.statusCode, 408, response.body);
    assert.equal(response.json().error.code, 'query_timeout');
  });

  it('answers unsupported when the server has no warehouse', async () => {
    const { app: bare } = await buildTestServer();
    bare.addHook('onRequest', async (request) => {
      request.principal = { keyId: 't', name: 't', role: 'admin' };
    });
    const response = await bare.inject({
      method: 'POST',
      url: '/api/v1/query',
      payload: { sql: 'SELECT 1' },
    });
    assert.equal(response.json().error.code, 'unsupported');
    await bare.close();
  });
});
