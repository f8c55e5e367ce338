import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import {
  createTestSchema,
  findOrStartPostgres,
  type NoPostgres,
  startPgliteTimescale,
  type TestPostgres,
} from '../../../test/support/postgres.ts';
import { ONES, testCandle, testPoint, testTick } from '../../../test/support/records.ts';
import { waitUntil } from '../../../test/support/wait.ts';
import type { Candle, ProcessedTick } from '../../core/records.ts';
import { makeBatch, storeConformance } from '../conformance.ts';
import { CheckpointConflictError, type RangeQuery } from '../store.ts';
import { copyBinary, DEAD_LETTERS, TICKS } from './bulk.ts';
import { MIGRATIONS } from './migrations.ts';
import { PostgresStore, type PostgresStoreOptions } from './postgres-store.ts';

const DAY = 86_400_000;
/** A UTC midnight: 1_699_920_000_000 / 86_400_000 = 19_675 exactly. */
const D0 = 19_675 * DAY;

function tick(seq: number, ts: number, fields: Partial<ProcessedTick> = {}): ProcessedTick {
  return testTick(seq, ts, { receivedAt: ts, ...fields });
}

const batch = makeBatch;

/** Opens `store` for `run`, then closes it and calls `drop` (its schema), pass or fail. */
async function usingStore(
  store: PostgresStore,
  drop: () => Promise<void>,
  run: (store: PostgresStore) => Promise<void>,
): Promise<void> {
  try {
    await store.open();
    await run(store);
  } finally {
    await store.close();
    await drop();
  }
}

async function sql(url: string, text: string, values: unknown[] = []): Promise<pg.QueryResultRow[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text, values)).rows;
  } finally {
    await client.end();
  }
}

test('binary COPY: header, field count, lengths, big-endian int8 and float8, NULL as -1, NUL as U+FFFD', () => {
  const bytes = copyBinary(DEAD_LETTERS, [
    { seq: 2 ** 32 + 5, source: 'a', reason: 'invalid_ts', detail: '', raw: 'x\0', receivedAt: -2 },
  ]);
  // Worked by hand from "COPY, Binary Format" in the PostgreSQL manual.
  const expected = Buffer.concat([
    Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'),
    Buffer.from([0, 0, 0, 0, 0, 0, 0, 0]), // flags, header extension length
    Buffer.from([0, 6]), // six fields
    Buffer.from([0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 5]), // seq: int8 2^32 + 5
    Buffer.from([0, 0, 0, 1, 0x61]), // source 'a'
    Buffer.from([0, 0, 0, 10]), // reason: 10 bytes of UTF-8
    Buffer.from('invalid_ts'),
    Buffer.from([0, 0, 0, 0]), // detail '' (empty, not NULL)
    Buffer.from([0, 0, 0, 4, 0x78, 0xef, 0xbf, 0xbd]), // raw 'x' + U+FFFD in UTF-8
    Buffer.from([0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]), // received_at -2
    Buffer.from([0xff, 0xff]), // trailer
  ]);
  assert.deepEqual(bytes, expected);

  const tick = copyBinary(TICKS, [
    {
      seq: 0,
      source: 's',
      symbol: 'S',
      ts: 1,
      price: 0.1,
      size: 2,
      receivedAt: 1,
      maShort: null,
      maLong: null,
      late: true,
    } as never,
  ]);
  const price = Buffer.alloc(8);
  price.writeDoubleBE(0.1);
  // After the header (19 bytes) and the field count (2): seq, source, symbol, ts, then price's length and bytes.
  const priceAt = 19 + 2 + 12 + 5 + 5 + 12 + 4;
  assert.deepEqual(tick.subarray(priceAt, priceAt + 8), price);
  // ma_short and ma_long NULL (-1), late true as one byte, then the trailer.
  assert.deepEqual(
    tick.subarray(-15),
    Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 1, 0xff, 0xff]),
  );
  assert.throws(() => copyBinary(TICKS, [{ seq: 1.5 } as never]), /bigint column seq of ticks: 1.5/);
});

const real: TestPostgres | NoPostgres = await findOrStartPostgres();

describe('PostgreSQL (plain, day partitions)', { skip: 'skip' in real ? real.skip : false }, () => {
  const server = real as TestPostgres;
  after(() => server.stop());

  /** A store on a schema of its own; `retentionEveryMs: 0` so only the tests run retention. */
  async function isolated(options: Partial<PostgresStoreOptions> = {}) {
    const { schema, drop } = await createTestSchema(server.url);
    const make = (extra: Partial<PostgresStoreOptions> = {}) =>
      new PostgresStore({
        url: server.url,
        schema,
        timescale: 'off',
        retentionEveryMs: 0,
        ...options,
        ...extra,
      });
    return { schema, drop, make };
  }

  /** Runs `run` on an opened store in a schema of its own, then closes the store and drops the schema. */
  async function withIsolatedStore(run: (store: PostgresStore) => Promise<void>): Promise<void> {
    const { drop, make } = await isolated();
    await usingStore(make(), drop, run);
  }

  storeConformance(
    'postgres',
    async () => {
      const { drop, make } = await isolated();
      return { store: make(), reopen: async () => make(), cleanup: drop };
    },
    { durable: true },
  );

  test('timescale auto falls back to day partitions when the extension is missing', async () => {
    const { drop, make, schema } = await isolated({ timescale: 'auto' });
    const store = make();
    try {
      await store.open();
      assert.equal(store.layout, 'partitioned');
      await store.write(batch({ ticks: [tick(0, D0 + 5), tick(1, D0 + DAY + 5)] }));
      const partitions = await sql(
        server.url,
        `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = $1::regclass ORDER BY 1`,
        [`${schema}.ticks`],
      );
      assert.deepStrictEqual(
        partitions.map((row) => row.relname),
        ['ticks_d19675', 'ticks_d19676'],
      );
      await assert.rejects(make({ timescale: 'on' }).open(), /created without TimescaleDB/);
    } finally {
      await store.close();
      await drop();
    }
  });

  test('timescale on fails when the extension is not available', async () => {
    const { drop, make } = await isolated({ timescale: 'on' });
    try {
      await assert.rejects(make().open(), /store.timescale is 'on' but/);
    } finally {
      await drop();
    }
  });

  test('retention drops whole day partitions older than the cutoff, and indicator rows', async () => {
    const { drop, make } = await isolated({ ticksRetentionMs: 2 * DAY, aggregatesRetentionMs: 3 * DAY });
    const store = make();
    try {
      await store.open();
      const days = [0, 1, 2, 3];
      await store.write(
        batch({
          ticks: days.map((d) => tick(d, D0 + d * DAY + 1000, { id: `t${d}` })),
          candles: days.map((d) => ({
            symbol: 'BTCUSDT',
            interval: '1m' as const,
            ts: D0 + d * DAY,
            open: 1,
            high: 1,
            low: 1,
            close: d,
            volume: 1,
            trades: 1,
            vwap: 1,
            final: true,
          })),
          indicators: days.map((d) => ({
            symbol: 'BTCUSDT',
            interval: '1m' as const,
            ts: D0 + d * DAY,
            sma20: d,
            ema20: null,
            rsi14: null,
            bbUpper: null,
            bbMiddle: null,
            bbLower: null,
          })),
        }),
      );
      // now = D0 + 4 days. Ticks: cutoff D0 + 2 days, so days 0 and 1 (ending at or before it) go.
      // Candles: cutoff D0 + 1 day, so day 0 goes. Indicators: rows with ts < D0 + 1 day go.
      const dropped = await store.applyRetention(D0 + 4 * DAY);
      assert.deepStrictEqual(dropped, {
        ticks: ['ticks_d19675', 'ticks_d19676'],
        candles: ['candles_d19675'],
        indicators: 1,
      });
      const tickIds = async () => (await store.ticks('BTCUSDT', { limit: 100 })).map((t) => t.id);
      assert.deepStrictEqual(await tickIds(), ['t2', 't3']);
      assert.deepStrictEqual(
        (await store.candles('BTCUSDT', '1m', { limit: 100 })).map((c) => c.close),
        [1, 2, 3],
      );
      assert.deepStrictEqual(
        (await store.indicators('BTCUSDT', '1m', { limit: 100 })).map((p) => p.sma20),
        [1, 2, 3],
      );
      // A second run finds nothing more to drop; a late write to a dropped day recreates it.
      assert.deepStrictEqual(await store.applyRetention(D0 + 4 * DAY), {
        ticks: [],
        candles: [],
        indicators: 0,
      });
      await store.write(batch({ ticks: [tick(9, D0 + 7, { id: 'late' })] }));
      assert.deepStrictEqual(await tickIds(), ['late', 't2', 't3']);
    } finally {
      await store.close();
      await drop();
    }
  });

  test('a write into a day partition another process dropped recreates it', async () => {
    const { drop, make } = await isolated({ ticksRetentionMs: DAY });
    const writer = make();
    const other = make();
    try {
      await writer.open();
      await other.open();
      await writer.write(batch({ ticks: [tick(0, D0 + 1, { id: 'first' })] }));
      assert.deepStrictEqual((await other.applyRetention(D0 + 3 * DAY)).ticks, ['ticks_d19675']);
      // `writer` still believes the partition exists; its insert fails, it re-reads the catalog and retries.
      await writer.write(batch({ ticks: [tick(1, D0 + 2, { id: 'second' })] }));
      assert.deepStrictEqual(
        (await writer.ticks('BTCUSDT', { limit: 10 })).map((t) => t.id),
        ['second'],
      );
    } finally {
      await writer.close();
      await other.close();
      await drop();
    }
  });

  test('a batch that fails inside COPY leaves nothing, not even its checkpoint', async () => {
    await withIsolatedStore(async (store) => {
      await store.write(
        batch({
          ticks: [tick(0, D0, { id: 'kept' })],
          checkpoint: { name: 'p', offsets: { 0: 1 }, state: 1 },
        }),
      );
      // The bad tick is the last row of the COPY: rows before it were already sent to the server.
      const bad = batch({
        ticks: [tick(1, D0 + 1, { id: 'lost' }), tick(2, D0 + 2.5, { id: 'fractional ts' })],
        checkpoint: { name: 'p', offsets: { 0: 3 }, state: 2 },
      });
      await assert.rejects(store.write(bad), /bigint/);
      assert.deepStrictEqual(
        (await store.ticks('BTCUSDT', { limit: 10 })).map((t) => t.id),
        ['kept'],
      );
      assert.deepStrictEqual(await store.checkpoint('p'), { offsets: { 0: 1 }, state: 1 });
      assert.equal((await store.latest('BTCUSDT'))?.ts, D0);
    });
  });

  test('a point is stored in its candle row; one without its candle in indicator_rows; reads merge both', async () => {
    const { drop, make, schema } = await isolated();
    await usingStore(make(), drop, async (store) => {
      const minute = 60_000;
      const candles = [0, 1, 2, 3].map((m) => testCandle(D0 + m * minute, { close: m }));
      const points = [0, 1, 2, 3].map((m) => testPoint(D0 + m * minute, { sma20: m }));
      // Minute 1's point comes without its candle (in another batch), minute 4 has a candle only.
      await store.write(
        batch({
          candles: [candles[0]!, candles[2]!, testCandle(D0 + 4 * minute)],
          indicators: [points[2]!, points[0]!],
        }),
      );
      await store.write(batch({ candles: [candles[1]!, candles[3]!], indicators: [points[3]!] }));
      await store.write(batch({ indicators: [points[1]!] }));
      const counts = await sql(
        server.url,
        `SELECT (SELECT count(*)::INT FROM ${schema}.candles WHERE has_point) AS in_candles,
                (SELECT count(*)::INT FROM ${schema}.indicator_rows) AS alone`,
      );
      assert.deepStrictEqual(counts[0], { in_candles: 3, alone: 1 });
      const sma = async (range: RangeQuery) =>
        (await store.indicators('BTCUSDT', '1m', range)).map((point) => point.sma20);
      assert.deepStrictEqual(await sma({ limit: 10 }), [0, 1, 2, 3]);
      assert.deepStrictEqual(await sma({ limit: 2 }), [2, 3]);
      assert.deepStrictEqual(await sma({ from: D0, limit: 2 }), [0, 1]);
      assert.deepStrictEqual(await sma({ to: D0 + 2 * minute, limit: 2 }), [1, 2]);
      assert.deepStrictEqual(await store.indicators('BTCUSDT', '1m', { from: D0 + minute, limit: 1 }), [
        points[1],
      ]);
      // The view `indicators` (what the lake archive reads) holds the same points.
      const viewed = await sql(server.url, `SELECT sma20 FROM ${schema}.indicators ORDER BY ts`);
      assert.deepStrictEqual(
        viewed.map((row) => row.sma20),
        [0, 1, 2, 3],
      );
      // Retention counts the points that leave with their candle rows.
      const deleted = await store.deleteExpired({ candlesBeforeMs: D0 + 2 * minute });
      assert.deepStrictEqual([deleted.candles, deleted.indicators], [2, 2]);
      assert.deepStrictEqual(await sma({ limit: 10 }), [2, 3]);
    });
  });

  test('points written before migration 4 (the indicators table) are still read after it', async () => {
    const { drop, make, schema } = await isolated();
    const old = make({ migrations: MIGRATIONS.filter((migration) => migration.version < 4) });
    await old.open();
    await old.close();
    await sql(
      server.url,
      `INSERT INTO ${schema}.indicators (symbol, "interval", ts, sma20) VALUES ('BTCUSDT', '1m', $1, 7)`,
      [D0],
    );
    await usingStore(make(), drop, async (store) => {
      assert.deepStrictEqual(store.appliedMigrations, [4]);
      await store.write(
        batch({ candles: [testCandle(D0 + 60_000)], indicators: [testPoint(D0 + 60_000, { sma20: 8 })] }),
      );
      assert.deepStrictEqual(
        (await store.indicators('BTCUSDT', '1m', { limit: 10 })).map((point) => point.sma20),
        [7, 8],
      );
    });
  });

  test('awkward text survives COPY; NUL, which PostgreSQL text cannot hold, becomes U+FFFD', async () => {
    await withIsolatedStore(async (store) => {
      const raw = 'a\tb\nc\\d\re\0f "quoted" \\N';
      // Non-ASCII and long text take the encoder's other path than short ASCII.
      const detail = `\\. prix é 😀 ${'long '.repeat(20)}`;
      await store.write(
        batch({
          deadLetters: [{ seq: 0, source: 'x\\N', reason: 'invalid_json', detail, raw, receivedAt: 1 }],
        }),
      );
      assert.deepStrictEqual(await store.deadLetters(1), [
        {
          seq: 0,
          source: 'x\\N',
          reason: 'invalid_json',
          detail,
          raw: raw.replace('\0', '\uFFFD'),
          receivedAt: 1,
        },
      ]);
    });
  });

  test('two processes opening a new schema at once apply each migration exactly once', async () => {
    const { drop, make, schema } = await isolated();
    const first = make();
    const second = make();
    try {
      await Promise.all([first.open(), second.open()]);
      assert.deepStrictEqual(
        [first.appliedMigrations, second.appliedMigrations].sort((a, b) => b.length - a.length),
        [[1, 2, 3, 4], []],
      );
      const versions = await sql(
        server.url,
        `SELECT version FROM ${schema}.schema_migrations ORDER BY version`,
      );
      assert.deepStrictEqual(
        versions.map((row) => row.version),
        [1, 2, 3, 4],
      );
      await first.close();
      // A later release's migration is the only one applied on the next open.
      const upgraded = make({
        migrations: [...MIGRATIONS, { version: 5, name: 'extra', sql: 'CREATE TABLE extra (x INT)' }],
      });
      await upgraded.open();
      assert.deepStrictEqual(upgraded.appliedMigrations, [5]);
      await upgraded.close();
      // And the older code refuses the newer schema rather than corrupting it.
      await assert.rejects(make().open(), /does not know \(5\)/);
    } finally {
      await first.close();
      await second.close();
      await drop();
    }
  });

  describe('checkpoint fencing across processes', () => {
    /** Waits until a statement of the store (application_name streamlines) is blocked on a lock. */
    async function waitForBlockedStore(): Promise<void> {
      await waitUntil(
        async () =>
          (
            await sql(
              server.url,
              "SELECT 1 FROM pg_stat_activity WHERE application_name = 'streamlines' AND wait_event_type = 'Lock'",
            )
          ).length > 0,
        'the store write to block on the checkpoint row',
        10_000,
        20,
      );
    }

    /**
     * Runs `write` against the rival's lock: waits until it blocks, lets the rival `release` it, and
     * resolves with how the write ended: the error it rejected with, or `undefined` once it committed.
     */
    async function writeAgainstRival(
      write: Promise<void>,
      release: () => Promise<unknown>,
    ): Promise<unknown> {
      const outcome = write.then(
        () => undefined,
        (error: unknown) => error,
      );
      await waitForBlockedStore();
      await release();
      return await outcome;
    }

    /** A store and another open connection to its database (a rival writer), closed and dropped afterwards. */
    async function withRival(
      body: (context: { store: PostgresStore; other: pg.Client; schema: string }) => Promise<void>,
    ): Promise<void> {
      const { drop, make, schema } = await isolated();
      const store = make();
      const other = new pg.Client({ connectionString: server.url });
      try {
        await store.open();
        await other.connect();
        await body({ store, other, schema });
      } finally {
        await other.end().catch(() => undefined);
        await store.close();
        await drop();
      }
    }

    /** The rival opens a transaction that inserts the checkpoint row at offset 3, and holds it. */
    async function rivalInsertsCheckpoint(other: pg.Client, schema: string): Promise<void> {
      await other.query('BEGIN');
      await other.query(
        `INSERT INTO ${schema}.checkpoints (name, offsets, state) VALUES ('processor:p0', '{"0":3}', 'null')`,
      );
    }

    const fenced = (offsets: Record<number, number>, previous: Record<number, number>, id: string) =>
      batch({
        ticks: [tick(Number(offsets[0]), D0 + Number(offsets[0]), { id })],
        checkpoint: { name: 'processor:p0', offsets, state: id, previous },
      });

    test('a writer waiting on the locked checkpoint row sees the other commit and conflicts', () =>
      withRival(async ({ store, other, schema }) => {
        await store.write(fenced({ 0: 5 }, {}, 'first'));
        // Another member, mid-transaction, moving the checkpoint from 5 to 8.
        await other.query('BEGIN');
        await other.query(`SELECT offsets FROM ${schema}.checkpoints WHERE name = 'processor:p0' FOR UPDATE`);
        await other.query(`UPDATE ${schema}.checkpoints SET offsets = '{"0":8}' WHERE name = 'processor:p0'`);
        const error = await writeAgainstRival(store.write(fenced({ 0: 7 }, { 0: 5 }, 'stale')), () =>
          other.query('COMMIT'),
        );
        assert.ok(error instanceof CheckpointConflictError, `got ${String(error)}`);
        assert.deepStrictEqual(error.actual, { 0: 8 });
        assert.deepStrictEqual(
          (await store.ticks('BTCUSDT', { limit: 10 })).map((row) => row.id),
          ['first'],
        );
        // Not retried, and the store keeps working: continuing from 8 commits.
        await store.write(fenced({ 0: 9 }, { 0: 8 }, 'next'));
        assert.deepStrictEqual(await store.checkpoint('processor:p0'), { offsets: { 0: 9 }, state: 'next' });
      }));

    test('a connection killed mid-write fails that write, not the process; the next write succeeds', () =>
      withRival(async ({ store, other, schema }) => {
        await store.write(fenced({ 0: 5 }, {}, 'first'));
        await other.query('BEGIN');
        await other.query(`SELECT offsets FROM ${schema}.checkpoints WHERE name = 'processor:p0' FOR UPDATE`);
        // The server ends the store's checked-out connection (as a restart would): its client
        // emits 'error', which would end this test process if nobody listened.
        const error = await writeAgainstRival(store.write(fenced({ 0: 7 }, { 0: 5 }, 'cut')), async () => {
          await other.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'streamlines' AND wait_event_type = 'Lock'",
          );
          await other.query('ROLLBACK');
        });
        assert.ok(error instanceof Error && /terminat/i.test(error.message), `got ${String(error)}`);
        await store.write(fenced({ 0: 7 }, { 0: 5 }, 'again'));
        assert.deepStrictEqual(await store.checkpoint('processor:p0'), { offsets: { 0: 7 }, state: 'again' });
      }));

    test('two first writes racing on a missing checkpoint: the one that inserts second conflicts', () =>
      withRival(async ({ store, other, schema }) => {
        await rivalInsertsCheckpoint(other, schema);
        // Its SELECT ... FOR UPDATE finds no row; its claiming INSERT then waits on the other's key.
        const error = await writeAgainstRival(store.write(fenced({ 0: 2 }, {}, 'loser')), () =>
          other.query('COMMIT'),
        );
        assert.ok(error instanceof CheckpointConflictError, `got ${String(error)}`);
        assert.deepStrictEqual(error.actual, { 0: 3 });
        assert.deepStrictEqual(await store.ticks('BTCUSDT', { limit: 10 }), []);
        assert.deepStrictEqual(await store.checkpoint('processor:p0'), { offsets: { 0: 3 }, state: null });
      }));

    test('when the racing first write rolls back, the waiting one commits', () =>
      withRival(async ({ store, other, schema }) => {
        await rivalInsertsCheckpoint(other, schema);
        const error = await writeAgainstRival(store.write(fenced({ 0: 2 }, {}, 'winner')), () =>
          other.query('ROLLBACK'),
        );
        assert.equal(error, undefined);
        assert.deepStrictEqual(await store.checkpoint('processor:p0'), {
          offsets: { 0: 2 },
          state: 'winner',
        });
      }));

    test('of two stores writing from the same offsets at once, exactly one commits', async () => {
      const { drop, make } = await isolated();
      const first = make();
      const second = make();
      try {
        await first.open();
        await second.open();
        await first.write(fenced({ 0: 1 }, {}, 'base'));
        const results = await Promise.allSettled([
          first.write(fenced({ 0: 4 }, { 0: 1 }, 'a')),
          second.write(fenced({ 0: 6 }, { 0: 1 }, 'b')),
        ]);
        const won = results.filter((result) => result.status === 'fulfilled');
        const lost = results.filter((result) => result.status === 'rejected');
        assert.equal(won.length, 1);
        assert.ok(lost[0]?.status === 'rejected' && lost[0].reason instanceof CheckpointConflictError);
        const winner = results[0]!.status === 'fulfilled' ? 'a' : 'b';
        assert.deepStrictEqual(
          (await first.ticks('BTCUSDT', { limit: 10 })).map((row) => row.id),
          ['base', winner],
        );
        assert.equal((await second.checkpoint('processor:p0'))?.state, winner);
      } finally {
        await first.close();
        await second.close();
        await drop();
      }
    });
  });
});

describe('PGlite + TimescaleDB over pglite-socket', { timeout: 180_000 }, () => {
  let server: TestPostgres;
  before(async () => {
    server = await startPgliteTimescale();
  });
  after(() => server?.stop());

  // COPY FROM STDIN through pglite-socket aborts the PGlite WASM instance, so this path writes
  // with INSERT ... unnest; the COPY path is covered by the real PostgreSQL above. PGlite is one
  // backend shared by every socket: with more than one pooled connection, reads queued behind
  // an open write transaction stall it, so the store gets a single connection.
  const options = (schema: string): PostgresStoreOptions => ({
    url: server.url,
    schema,
    timescale: 'on',
    bulkWrite: 'insert',
    retentionEveryMs: 0,
    maxConnections: 1,
  });

  /** Runs `run` on an opened store (the options above plus `extra`) in a fresh schema, then drops both. */
  async function withStore(
    extra: Partial<PostgresStoreOptions>,
    run: (store: PostgresStore, schema: string) => Promise<void>,
  ): Promise<void> {
    const { schema, drop } = await createTestSchema(server.url);
    await usingStore(new PostgresStore({ ...options(schema), ...extra }), drop, (store) =>
      run(store, schema),
    );
  }

  storeConformance(
    'postgres on PGlite with TimescaleDB',
    async () => {
      const { schema, drop } = await createTestSchema(server.url);
      return {
        store: new PostgresStore(options(schema)),
        reopen: async () => new PostgresStore(options(schema)),
        cleanup: drop,
      };
    },
    { durable: true },
  );

  test('ticks and candles are hypertables with retention and compression policies from the options', async () => {
    await withStore({ ticksRetentionMs: 2 * DAY, aggregatesRetentionMs: 5 * DAY }, async (store, schema) => {
      assert.equal(store.layout, 'timescale');
      const hypertables = await sql(
        server.url,
        `SELECT hypertable_name, compression_enabled FROM timescaledb_information.hypertables
         WHERE hypertable_schema = $1 ORDER BY 1`,
        [schema],
      );
      assert.deepStrictEqual(hypertables, [
        { hypertable_name: 'candles', compression_enabled: false },
        { hypertable_name: 'ticks', compression_enabled: true },
      ]);
      const jobs = await sql(
        server.url,
        `SELECT hypertable_name, proc_name, config->>'drop_after' AS drop_after,
                config->>'compress_after' AS compress_after
         FROM timescaledb_information.jobs WHERE hypertable_schema = $1 ORDER BY 1, 2`,
        [schema],
      );
      assert.deepStrictEqual(jobs, [
        {
          hypertable_name: 'candles',
          proc_name: 'policy_retention',
          drop_after: String(5 * DAY),
          compress_after: null,
        },
        {
          hypertable_name: 'candles_1d',
          proc_name: 'policy_refresh_continuous_aggregate',
          drop_after: null,
          compress_after: null,
        },
        {
          hypertable_name: 'ticks',
          proc_name: 'policy_compression',
          drop_after: null,
          compress_after: String(DAY),
        },
        {
          hypertable_name: 'ticks',
          proc_name: 'policy_retention',
          drop_after: String(2 * DAY),
          compress_after: null,
        },
      ]);
    });
  });

  test('1d candles come from the candles_1d continuous aggregate over the 1h candles', async () => {
    const candle = (interval: Candle['interval'], ts: number, fields: Partial<Candle>): Candle =>
      testCandle(ts, { interval, ...ONES, ...fields });
    await withStore({}, async (store, schema) => {
      const views = await sql(
        server.url,
        `SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates
         WHERE view_schema = $1`,
        [schema],
      );
      assert.deepStrictEqual(views, [{ view_name: 'candles_1d', materialized_only: false }]);
      // The stored 1d row only marks the day final: its values are deliberately not the roll-up,
      // so the answer shows where the values come from.
      await store.write(
        batch({
          candles: [
            candle('1h', D0, { open: 10, high: 12, low: 9, close: 11, volume: 2, trades: 3, vwap: 10.5 }),
            candle('1h', D0 + 3_600_000, {
              open: 11,
              high: 15,
              low: 10,
              close: 14,
              volume: 4,
              trades: 5,
              vwap: 12.25,
            }),
            candle('1d', D0, { open: -1, high: -1, low: -1, close: -1, volume: -1, trades: -1, vwap: -1 }),
            // An hour of a day the processor has not made final: no 1d answer for it yet.
            candle('1h', D0 + DAY, { open: 20 }),
          ],
        }),
      );
      const rollUp = {
        symbol: 'BTCUSDT',
        interval: '1d',
        ts: D0,
        open: 10,
        high: 15,
        low: 9,
        close: 14,
        volume: 6,
        trades: 8,
        vwap: (10.5 * 2 + 12.25 * 4) / 6,
        final: true,
      };
      // Real-time aggregation answers before any refresh; the refresh policy's materialization after.
      assert.deepStrictEqual(await store.candles('BTCUSDT', '1d', { limit: 10 }), [rollUp]);
      await sql(server.url, `CALL refresh_continuous_aggregate('${schema}.candles_1d', NULL, NULL)`);
      assert.deepStrictEqual(await store.candles('BTCUSDT', '1d', { limit: 10 }), [rollUp]);
    });
  });

  test('applyRetention drops whole chunks older than the cutoff', async () => {
    await withStore({ ticksRetentionMs: 2 * DAY }, async (store) => {
      await store.write(
        batch({ ticks: [0, 1, 2, 3].map((d) => tick(d, D0 + d * DAY + 1000, { id: `t${d}` })) }),
      );
      // Chunks are one UTC day (chunk_time_interval 86_400_000, aligned to 0), as the partitions are:
      // cutoff D0 + 2 days drops the chunks of days 0 and 1.
      const dropped = await store.applyRetention(D0 + 4 * DAY);
      assert.equal(dropped.ticks.length, 2);
      assert.deepStrictEqual(
        (await store.ticks('BTCUSDT', { limit: 10 })).map((t) => t.id),
        ['t2', 't3'],
      );
    });
  });

  test('compressed tick chunks still read back exactly, and accept late ticks', async () => {
    await withStore({}, async (store, schema) => {
      await store.write(
        batch({
          ticks: [tick(0, D0 + 1, { id: 'a', price: 0.1 + 0.2 }), tick(1, D0 + 2, { id: 'b', maShort: 1.5 })],
        }),
      );
      const compressed = await sql(
        server.url,
        `SELECT compress_chunk(c)::TEXT AS chunk FROM show_chunks('${schema}.ticks') c`,
      );
      assert.equal(compressed.length, 1);
      await store.write(batch({ ticks: [tick(2, D0 + 3, { id: 'c' })] }));
      const ticks = await store.ticks('BTCUSDT', { limit: 10 });
      assert.deepStrictEqual(
        ticks.map((t) => [t.id, t.price, t.maShort]),
        [
          ['a', 0.30000000000000004, null],
          ['b', 100, 1.5],
          ['c', 100, null],
        ],
      );
    });
  });
});
