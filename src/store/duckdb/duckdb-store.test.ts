import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { testCandle, testPoint, testTick, WARM_INDICATORS } from '../../../test/support/records.ts';
import { CheckpointStateMissingError, readCheckpoints } from './checkpoint-states.ts';
import { DuckDbStore, defaultDuckDbMemoryLimitBytes } from './duckdb-store.ts';
import { applyMigrations, MIGRATIONS, type Migration } from './migrations.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'streamlines-duckdb-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs one query on a file with a throwaway instance, after the store has released it. */
async function query(file: string, sql: string): Promise<unknown[][]> {
  const instance = await DuckDBInstance.create(file);
  try {
    const connection = await instance.connect();
    const rows = (await connection.runAndReadAll(sql)).getRows();
    connection.closeSync();
    return rows;
  } finally {
    instance.closeSync();
  }
}

describe('DuckDB appenders', () => {
  test('join the connection open transaction: a ROLLBACK drops flushed rows, others never see them', async () => {
    // write() relies on this for atomicity; if a DuckDB upgrade broke it, batches could half-land.
    const instance = await DuckDBInstance.create(':memory:');
    const writer = await instance.connect();
    const reader = await instance.connect();
    await writer.run('CREATE TABLE t (a BIGINT)');
    const appender = await writer.createAppender('t'); // created before BEGIN, as the store's are
    await writer.run('BEGIN TRANSACTION');
    appender.appendBigInt(1n);
    appender.endRow();
    appender.flushSync();
    assert.deepStrictEqual((await writer.runAndReadAll('SELECT count(*) FROM t')).getRows(), [[1n]]);
    assert.deepStrictEqual((await reader.runAndReadAll('SELECT count(*) FROM t')).getRows(), [[0n]]);
    await writer.run('ROLLBACK');
    assert.deepStrictEqual((await reader.runAndReadAll('SELECT count(*) FROM t')).getRows(), [[0n]]);

    await writer.run('BEGIN TRANSACTION');
    appender.appendBigInt(2n);
    appender.endRow();
    appender.flushSync();
    await writer.run('COMMIT');
    assert.deepStrictEqual((await reader.runAndReadAll('SELECT a FROM t')).getRows(), [[2n]]);
    appender.closeSync();
    writer.closeSync();
    reader.closeSync();
    instance.closeSync();
  });
});

describe('DuckDB checkpoints', () => {
  test('replacing a 1 MB processor state takes milliseconds, not seconds', async () => {
    // An UPDATE of a 1 MB VARCHAR took ~3.5 s per write on this DuckDB; delete + append takes
    // ~10 ms. The bound is loose for a loaded CI machine but far below the UPDATE path's 10 s.
    const store = new DuckDbStore({ path: path.join(dir, 'big.duckdb') });
    await store.open();
    const big = (n: number): { n: number; text: string } => ({ n, text: "it's ".repeat(200_000) });
    const empty = { ticks: [], candles: [], indicators: [], alerts: [], deadLetters: [] };
    const start = performance.now();
    for (let n = 0; n < 3; n++) {
      await store.write({ ...empty, checkpoint: { name: 'processor', offsets: { 0: n }, state: big(n) } });
    }
    const elapsedMs = performance.now() - start;
    assert.deepStrictEqual(await store.checkpoint('processor'), { offsets: { 0: 2 }, state: big(2) });
    await store.close();
    assert.ok(elapsedMs < 3000, `3 writes of a 1 MB state took ${elapsedMs.toFixed(0)} ms`);
  });
});

describe('DuckDB checkpoint states in files', () => {
  const empty = { ticks: [], candles: [], indicators: [], alerts: [], deadLetters: [] };
  const stateDir = (file: string): string => `${file}.state`;
  const write = (store: DuckDbStore, offset: number, state: unknown, previous?: Record<number, number>) =>
    store.write({ ...empty, checkpoint: { name: 'processor', offsets: { 0: offset }, state, previous } });

  test('the row holds offsets and a seq, the file the state; only the last two states stay', async () => {
    const file = path.join(dir, 'store.duckdb');
    const store = new DuckDbStore({ path: file });
    await store.open();
    for (let n = 1; n <= 5; n++) await write(store, n, { n });
    assert.deepStrictEqual(await store.checkpoint('processor'), { offsets: { 0: 5 }, state: { n: 5 } });
    // A fenced write that loses leaves no file behind.
    await assert.rejects(write(store, 9, { n: 9 }, { 0: 1 }), { code: 'checkpoint_conflict' });
    await store.close();
    const [[state, seq]] = (await query(
      file,
      "SELECT state, state_seq FROM checkpoints WHERE name = 'processor'",
    )) as [[unknown, bigint]];
    assert.equal(state, null);
    assert.deepStrictEqual((await readdir(stateDir(file))).sort(), [
      `processor-${seq - 1n}.json`,
      `processor-${seq}.json`,
    ]);
    assert.deepStrictEqual(
      JSON.parse(await readFile(path.join(stateDir(file), `processor-${seq}.json`), 'utf8')),
      {
        n: 5,
      },
    );
  });

  test('a reader in a snapshot one commit old still reads its state (the lake pass)', async () => {
    const store = new DuckDbStore({ path: path.join(dir, 'store.duckdb') });
    await store.open();
    const connection = await store.connect();
    try {
      await write(store, 1, { n: 1 });
      await write(store, 2, { n: 2 });
      await connection.run('BEGIN TRANSACTION');
      assert.deepStrictEqual((await connection.runAndReadAll('SELECT count(*) FROM checkpoints')).getRows(), [
        [1n],
      ]);
      await write(store, 3, { n: 3 }); // removes state 1, keeps 2 for this snapshot
      const [seen] = await readCheckpoints(connection, { name: 'processor' });
      assert.deepStrictEqual(seen, { name: 'processor', offsets: { 0: 2 }, state: { n: 2 } });
      await connection.run('COMMIT');
      const [now] = await readCheckpoints(connection, { prefix: 'proc' });
      assert.deepStrictEqual(now, { name: 'processor', offsets: { 0: 3 }, state: { n: 3 } });
    } finally {
      connection.closeSync();
      await store.close();
    }
  });

  test('a newer file no row names (a crash before its commit) is ignored and removed at open', async () => {
    const file = path.join(dir, 'store.duckdb');
    const first = new DuckDbStore({ path: file });
    await first.open();
    await write(first, 1, { n: 1 });
    await write(first, 2, { n: 2 });
    await first.close();
    const [[seq]] = (await query(file, 'SELECT state_seq FROM checkpoints')) as [[bigint]];
    const orphan = path.join(stateDir(file), `processor-${seq + 1n}.json`);
    await writeFile(orphan, '{"n": "never committed, cut short'); // torn, as a kill -9 leaves it

    const second = new DuckDbStore({ path: file });
    await second.open();
    assert.equal(existsSync(orphan), false);
    assert.deepStrictEqual(await second.checkpoint('processor'), { offsets: { 0: 2 }, state: { n: 2 } });
    // The next state takes a seq past the orphan's: a reader never finds another state under it.
    await write(second, 3, { n: 3 });
    await second.close();
    const [[next]] = (await query(file, 'SELECT state_seq FROM checkpoints')) as [[bigint]];
    assert.ok(next > seq + 1n, `seq ${next} after the orphan's ${seq + 1n}`);
  });

  test('a missing referenced file is a clear error, never a start from nothing', async () => {
    const file = path.join(dir, 'store.duckdb');
    const first = new DuckDbStore({ path: file });
    await first.open();
    await write(first, 7, { n: 7 });
    await first.close();
    await rm(stateDir(file), { recursive: true });

    const second = new DuckDbStore({ path: file });
    await second.open();
    try {
      await assert.rejects(second.checkpoint('processor'), (error: Error & { code?: string }) => {
        assert.ok(error instanceof CheckpointStateMissingError);
        assert.equal(error.code, 'checkpoint_state_missing');
        assert.match(error.message, /processor-\d+\.json, which is missing/);
        return true;
      });
    } finally {
      await second.close();
    }
  });

  test('a database from before (state inline, schema 2) opens, reads, then moves the state out', async () => {
    const file = path.join(dir, 'old.duckdb');
    const instance = await DuckDBInstance.create(file);
    const connection = await instance.connect();
    await applyMigrations(connection, MIGRATIONS.slice(0, 2));
    await connection.run(`INSERT INTO checkpoints VALUES ('processor', '{"0":41}', '{"old":true}')`);
    connection.closeSync();
    instance.closeSync();

    const store = new DuckDbStore({ path: file });
    await store.open();
    assert.deepStrictEqual(
      store.appliedMigrations,
      MIGRATIONS.slice(2).map((migration) => migration.version),
    );
    assert.deepStrictEqual(await store.checkpoint('processor'), { offsets: { 0: 41 }, state: { old: true } });
    // The fence reads the migrated offsets.
    await write(store, 42, { old: false }, { 0: 41 });
    assert.deepStrictEqual(await store.checkpoint('processor'), {
      offsets: { 0: 42 },
      state: { old: false },
    });
    await store.close();
    assert.deepStrictEqual(
      await query(file, 'SELECT state IS NULL, state_seq IS NOT NULL FROM checkpoints'),
      [[true, true]],
    );
  });

  test('in memory the state stays in the row', async () => {
    const store = new DuckDbStore({ path: ':memory:' });
    await store.open();
    await write(store, 1, { n: 1 });
    const connection = await store.connect();
    const rows = (await connection.runAndReadAll('SELECT state, state_seq FROM checkpoints')).getRows();
    connection.closeSync();
    await store.close();
    assert.deepStrictEqual(rows, [['{"n":1}', null]]);
  });

  test('the database file does not grow with the size of the state (bench/checkpoint-state.ts)', async () => {
    // 60 commits of 1 000 ticks each. With the state in the row, a 200 KB state left the file
    // about 24 MB larger than a 100-byte one (119 vs 7 MB after 300 commits).
    const symbols = Array.from({ length: 100 }, (_, i) => `SYM${i}`);
    const fileSize = async (stateBytes: number): Promise<number> => {
      const file = path.join(dir, `state-${stateBytes}.duckdb`);
      const store = new DuckDbStore({ path: file });
      await store.open();
      const state = { padding: 'x'.repeat(stateBytes) };
      for (let commit = 0; commit < 60; commit++) {
        const ticks = Array.from({ length: 1000 }, (_, i) => {
          const seq = commit * 1000 + i;
          return {
            source: 's',
            symbol: symbols[seq % 100]!,
            ts: 1_699_999_980_000 + seq * 3,
            price: 100 + Math.sin(seq),
            size: 1,
            receivedAt: 1_699_999_980_000,
            seq,
            maShort: null,
            maLong: null,
            late: false,
          };
        });
        await store.write({
          ...empty,
          ticks,
          checkpoint: { name: 'processor', offsets: { 0: (commit + 1) * 1000 }, state },
        });
      }
      await store.close();
      return statSync(file).size;
    };
    const small = await fileSize(100);
    const large = await fileSize(200_000);
    assert.ok(large <= small + 1024 * 1024, `file ${large} B with a 200 KB state, ${small} B with 100 B`);
  });
});

describe('DuckDB migrations', () => {
  // Derived from MIGRATIONS so appending a real migration does not break these tests.
  const released = MIGRATIONS.map((migration) => migration.version);
  const next = released[released.length - 1]! + 1;
  const extra: Migration = { version: next, name: 'add notes', sql: 'CREATE TABLE notes (text VARCHAR)' };

  test('the first open applies all, a second open applies none, an appended one is applied once', async () => {
    const file = path.join(dir, 'nested', 'store.duckdb'); // the directory is created by open()
    const first = new DuckDbStore({ path: file });
    await first.open();
    assert.deepStrictEqual(first.appliedMigrations, released);
    await first.close();

    const second = new DuckDbStore({ path: file });
    await second.open();
    assert.deepStrictEqual(second.appliedMigrations, []);
    await second.close();

    const upgraded = new DuckDbStore({ path: file, migrations: [...MIGRATIONS, extra] });
    await upgraded.open();
    assert.deepStrictEqual(upgraded.appliedMigrations, [next]);
    await upgraded.close();

    const again = new DuckDbStore({ path: file, migrations: [...MIGRATIONS, extra] });
    await again.open();
    assert.deepStrictEqual(again.appliedMigrations, []);
    await again.close();

    assert.deepStrictEqual(
      await query(file, 'SELECT version, name FROM schema_migrations ORDER BY version'),
      [...MIGRATIONS.map((migration) => [migration.version, migration.name]), [next, 'add notes']],
    );
    assert.deepStrictEqual(await query(file, 'SELECT count(*) FROM notes'), [[0n]]);
  });

  test('a failing migration leaves neither its changes nor its record', async () => {
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    const broken: Migration = {
      version: next,
      name: 'broken',
      sql: 'CREATE TABLE half (x INTEGER); SELECT nope;',
    };
    await assert.rejects(
      applyMigrations(connection, [...MIGRATIONS, broken]),
      new RegExp(`schema migration ${next} \\(broken\\) failed`),
    );
    const tables = (
      await connection.runAndReadAll("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'half'")
    ).getRows();
    assert.deepStrictEqual(tables, [[0n]]);
    const versions = (await connection.runAndReadAll('SELECT version FROM schema_migrations')).getRows();
    assert.deepStrictEqual(
      versions,
      released.map((version) => [version]),
    );
    // Fixed and retried, it applies.
    assert.deepStrictEqual(await applyMigrations(connection, [...MIGRATIONS, extra]), [next]);
    connection.closeSync();
    instance.closeSync();
  });

  test('refuses a database migrated by a newer version, and unordered migration lists', async () => {
    const file = path.join(dir, 'store.duckdb');
    const newer = new DuckDbStore({ path: file, migrations: [...MIGRATIONS, extra] });
    await newer.open();
    await newer.close();
    const older = new DuckDbStore({ path: file });
    await assert.rejects(older.open(), new RegExp(`does not know \\(${next}\\)`));
    await older.close();

    const unordered = new DuckDbStore({ path: ':memory:', migrations: [extra, ...MIGRATIONS] });
    await assert.rejects(unordered.open(), /strictly ascending/);
  });
});

describe('DuckDB dictionary-encoded symbols', () => {
  const empty = { ticks: [], candles: [], indicators: [], alerts: [], deadLetters: [] };
  const BEFORE_IDS = MIGRATIONS.filter((migration) => migration.version < 4);
  const T0 = 1_699_999_980_000;

  /** Each bulk table's columns (name, type, nullable) as information_schema shows them. */
  async function columnsOf(file: string): Promise<unknown[][]> {
    return query(
      file,
      `SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns
       WHERE table_name IN ('ticks', 'candles', 'indicators') ORDER BY table_name, ordinal_position`,
    );
  }

  test('the views keep the names and column types of the tables they replace', async () => {
    const old = path.join(dir, 'old.duckdb');
    const instance = await DuckDBInstance.create(old);
    const connection = await instance.connect();
    await applyMigrations(connection, BEFORE_IDS);
    connection.closeSync();
    instance.closeSync();
    const fresh = path.join(dir, 'fresh.duckdb');
    const store = new DuckDbStore({ path: fresh });
    await store.open();
    await store.close();
    const before = (await columnsOf(old)).map(([table, column, type]) => [table, column, type]);
    assert.equal(before.length, 12 + 10 + 9);
    assert.deepStrictEqual(
      (await columnsOf(fresh)).map(([table, column, type]) => [table, column, type]),
      before,
    );
    assert.deepStrictEqual(
      await query(fresh, 'SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY view_name'),
      [['candles'], ['indicators'], ['ticks']],
    );
  });

  test('a database with rows from schema 3 is moved to ids and reads back the same', async () => {
    const file = path.join(dir, 'old.duckdb');
    const instance = await DuckDBInstance.create(file);
    const connection = await instance.connect();
    await applyMigrations(connection, BEFORE_IDS);
    await connection.run(`
      INSERT INTO ticks VALUES
        (1, 'binance', 'BTCUSDT', ${T0}, 100.5, 2, 'a1', 'buy', ${T0 + 7}, NULL, NULL, false),
        (2, 'coinbase', 'ETHUSDT', ${T0 + 1}, 20.25, 1, NULL, NULL, ${T0 + 8}, 20, 19.5, false),
        (3, 'binance', 'BTCUSDT', ${T0 + 2}, 101, 3, 'a3', 'sell', ${T0 + 9}, 100.25, 100, true),
        (4, 'binance', 'it''s', ${T0 + 3}, 1, 1, NULL, 'buy', ${T0 + 9}, NULL, NULL, false);
      INSERT INTO candles VALUES
        ('BTCUSDT', '1m', ${T0}, 100, 102, 99, 101, 3, 3, 100.5),
        ('BTCUSDT', '5m', ${T0}, 100, 103, 98, 101, 6, 5, NULL),
        ('ETHUSDT', '1m', ${T0}, 20, 21, 19, 20.5, 1, 1, 20.25);
      INSERT INTO indicators VALUES
        ('BTCUSDT', '1m', ${T0}, 100.125, 100.0625, 55.5, 102.5, 100.125, 97.75),
        ('ETHUSDT', '1h', ${T0}, NULL, NULL, NULL, NULL, NULL, NULL);
    `);
    const viewSql = {
      ticks: 'SELECT * FROM ticks ORDER BY seq',
      candles: 'SELECT * FROM candles ORDER BY symbol, "interval", ts',
      indicators: 'SELECT * FROM indicators ORDER BY symbol, "interval", ts',
    };
    const before: Record<string, unknown[][]> = {};
    for (const [kind, sql] of Object.entries(viewSql)) {
      before[kind] = (await connection.runAndReadAll(sql)).getRows();
    }
    connection.closeSync();
    instance.closeSync();

    const store = new DuckDbStore({ path: file });
    await store.open();
    assert.deepStrictEqual(store.appliedMigrations, [4]);
    const btc = await store.ticks('BTCUSDT', { limit: 10 });
    assert.deepStrictEqual(
      btc.map((tick) => [tick.ts, tick.price, tick.id, tick.maShort, tick.late]),
      [
        [T0, 100.5, 'a1', null, false],
        [T0 + 2, 101, 'a3', 100.25, true],
      ],
    );
    assert.equal((await store.ticks("it's", { limit: 10 })).length, 1);
    assert.deepStrictEqual(
      (await store.candles('BTCUSDT', '5m', { limit: 10 })).map((candle) => [
        candle.ts,
        candle.high,
        candle.vwap,
      ]),
      [[T0, 103, null]],
    );
    assert.deepStrictEqual(
      (await store.indicators('BTCUSDT', '1m', { limit: 10 })).map((point) => point.rsi14),
      [55.5],
    );
    assert.deepStrictEqual(await store.ticks('NOPE', { limit: 10 }), []);
    assert.deepStrictEqual(await store.storedSpan(), { oldestTickTs: T0, oldestAggregateTs: T0 });
    assert.equal(await store.newestTickTs(), T0 + 3);

    // New rows after the upgrade: a known symbol reuses its id, a new one gets the next.
    await store.write({
      ...empty,
      ticks: [
        testTick(5, T0 + 60_000, { symbol: 'BTCUSDT', source: 'binance', side: 'buy' }),
        testTick(6, T0 + 60_001, { symbol: 'SOLUSDT', source: 'kraken' }),
      ],
      candles: [testCandle(T0 + 60_000, { symbol: 'SOLUSDT', interval: '15m' })],
      indicators: [testPoint(T0 + 60_000, { symbol: 'SOLUSDT', ...WARM_INDICATORS })],
      checkpoint: { name: 'processor', offsets: { 0: 6 }, state: null },
    });
    assert.deepStrictEqual(
      (await store.ticks('BTCUSDT', { limit: 10 })).map((tick) => tick.ts),
      [T0, T0 + 2, T0 + 60_000],
    );
    assert.deepStrictEqual(
      (await store.candles('SOLUSDT', '15m', { limit: 10 })).map((candle) => candle.ts),
      [T0 + 60_000],
    );
    await store.close();

    const after = await query(file, viewSql.ticks);
    assert.deepStrictEqual(after.slice(0, 4), before.ticks);
    assert.deepStrictEqual(after.slice(4), [
      [
        5n,
        'binance',
        'BTCUSDT',
        BigInt(T0 + 60_000),
        100,
        1,
        null,
        'buy',
        BigInt(T0 + 60_007),
        null,
        null,
        false,
      ],
      [
        6n,
        'kraken',
        'SOLUSDT',
        BigInt(T0 + 60_001),
        100,
        1,
        null,
        null,
        BigInt(T0 + 60_008),
        null,
        null,
        false,
      ],
    ]);
    assert.deepStrictEqual(
      (await query(file, viewSql.candles)).filter((row) => row[0] !== 'SOLUSDT'),
      before.candles,
    );
    assert.deepStrictEqual(
      (await query(file, viewSql.indicators)).filter((row) => row[0] !== 'SOLUSDT'),
      before.indicators,
    );
    assert.deepStrictEqual(
      await query(file, 'SELECT count(*), count(DISTINCT text), max(id) FROM text_ids'),
      // binance, coinbase, kraken, BTCUSDT, ETHUSDT, SOLUSDT, it's, buy, sell, 1m, 5m, 15m, 1h
      [[13n, 13n, 13]],
    );
  });

  test('an id first used by a batch that failed is inserted by the next batch that commits', async () => {
    const file = path.join(dir, 'store.duckdb');
    const store = new DuckDbStore({ path: file });
    await store.open();
    const checkpoint = (offset: number, previous?: Record<number, number>) => ({
      name: 'processor',
      offsets: { 0: offset },
      state: null,
      previous,
    });
    await store.write({ ...empty, ticks: [testTick(1, T0)], checkpoint: checkpoint(1) });
    // Fenced out: its new symbol's id was assigned when the batch was built, and rolled back.
    await assert.rejects(
      store.write({
        ...empty,
        ticks: [testTick(2, T0 + 1, { symbol: 'NEWUSDT', side: 'sell' })],
        checkpoint: checkpoint(2, { 0: 7 }),
      }),
      { code: 'checkpoint_conflict' },
    );
    // This batch uses the id without assigning it: it must insert it itself.
    await store.write({
      ...empty,
      ticks: [testTick(3, T0 + 2, { symbol: 'NEWUSDT', side: 'sell' })],
      checkpoint: checkpoint(3, { 0: 1 }),
    });
    assert.deepStrictEqual(
      (await store.ticks('NEWUSDT', { limit: 10 })).map((tick) => tick.ts),
      [T0 + 2],
    );
    await store.close();

    // Reopened, the dictionary comes from the file: the same ids, and new texts after them.
    const again = new DuckDbStore({ path: file });
    await again.open();
    await again.write({
      ...empty,
      ticks: [testTick(4, T0 + 3, { symbol: 'NEWUSDT' }), testTick(5, T0 + 4, { symbol: 'LATERUSDT' })],
      checkpoint: checkpoint(5),
    });
    assert.equal((await again.ticks('NEWUSDT', { limit: 10 })).length, 2);
    assert.equal((await again.ticks('LATERUSDT', { limit: 10 })).length, 1);
    await again.close();
    assert.deepStrictEqual(
      await query(
        file,
        `SELECT (SELECT count(*) FROM tick_rows), (SELECT count(*) FROM ticks),
                (SELECT count(*) FROM tick_rows WHERE symbol_id NOT IN (SELECT id FROM text_ids)),
                (SELECT string_agg(symbol, ',' ORDER BY seq) FROM ticks), (SELECT count(*) FROM text_ids)`,
      ),
      // synthetic, BTCUSDT, NEWUSDT, sell, LATERUSDT
      [[4n, 4n, 0n, 'BTCUSDT,NEWUSDT,NEWUSDT,LATERUSDT', 5n]],
    );
  });

  test('retention deletes from the base tables', async () => {
    const store = new DuckDbStore({ path: ':memory:' });
    await store.open();
    await store.write({
      ...empty,
      ticks: [testTick(1, T0), testTick(2, T0 + 60_000)],
      candles: [testCandle(T0), testCandle(T0 + 60_000)],
      indicators: [testPoint(T0), testPoint(T0 + 60_000)],
      checkpoint: { name: 'processor', offsets: { 0: 2 }, state: null },
    });
    const deleted = await store.deleteExpired({ ticksBeforeMs: T0 + 1, candlesBeforeMs: T0 + 1 });
    assert.deepStrictEqual(deleted, { ticks: 1, candles: 1, indicators: 1, alerts: 0, deadLetters: 0 });
    assert.deepStrictEqual(
      (await store.ticks('BTCUSDT', { limit: 10 })).map((tick) => tick.ts),
      [T0 + 60_000],
    );
    await store.close();
  });
});

describe('DuckDB crash safety', () => {
  const TICKS_PER_BATCH = 5000;
  const SYMBOLS = 10;
  const storeModule = path.join(path.dirname(fileURLToPath(import.meta.url)), 'duckdb-store.ts');
  // The child writes batch after batch and reports each commit; batch b holds ticks with seq
  // b*5000 .. b*5000+4999 (symbol SYM<seq mod 10>), 10 candles, 10 indicator points, 2 alerts,
  // 1 dead letter and the checkpoint {offsets: {0: (b+1)*5000}, state: {batch: b}}.
  const writerScript = `
    import { DuckDbStore } from ${JSON.stringify(storeModule)};
    const store = new DuckDbStore({ path: process.env.STORE_FILE });
    await store.open();
    const T0 = 1_699_999_980_000;
    for (let b = 0; ; b++) {
      const ticks = [];
      for (let i = 0; i < ${TICKS_PER_BATCH}; i++) {
        const seq = b * ${TICKS_PER_BATCH} + i;
        ticks.push({ source: 's', symbol: 'SYM' + (seq % ${SYMBOLS}), ts: T0 + seq, price: 100 + i / 1000, size: 1,
          receivedAt: T0, seq, maShort: null, maLong: null, late: false, id: String(seq) });
      }
      const candles = [], indicators = [];
      for (let k = 0; k < 10; k++) {
        candles.push({ symbol: 'SYM' + k, interval: '1m', ts: T0 + b * 60000, open: 1, high: 2, low: 0.5, close: 1.5,
          volume: 3, trades: 3, vwap: 1.25, final: true });
        indicators.push({ symbol: 'SYM' + k, interval: '1m', ts: T0 + b * 60000, sma20: null, ema20: null,
          rsi14: null, bbUpper: null, bbMiddle: null, bbLower: null });
      }
      const alerts = [0, 1].map((j) => ({ seq: 2 * b + j, ts: T0 + b, symbol: 'SYM0', kind: 'anomaly', price: 1, message: 'm' }));
      const deadLetters = [{ seq: b, source: 's', reason: 'invalid_json', detail: 'd', raw: 'r', receivedAt: T0 }];
      await store.write({ ticks, candles, indicators, alerts, deadLetters,
        checkpoint: { name: 'processor', offsets: { 0: (b + 1) * ${TICKS_PER_BATCH} }, state: { batch: b } } });
      process.stdout.write('committed ' + (b + 1) + '\\n');
    }
  `;

  /** Starts the writer, SIGKILLs it `delayMs` after its `afterCommits`-th commit; resolves with commits seen. */
  function runAndKill(file: string, afterCommits: number, delayMs: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', writerScript], {
        env: { ...process.env, STORE_FILE: file },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let committed = 0;
      let killScheduled = false;
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (text: string) => {
        for (const match of text.matchAll(/committed (\d+)/g)) committed = Number(match[1]);
        if (committed >= afterCommits && !killScheduled) {
          killScheduled = true;
          setTimeout(() => child.kill('SIGKILL'), delayMs);
        }
      });
      child.stderr.setEncoding('utf8').on('data', (text: string) => {
        stderr += text;
      });
      child.on('error', reject);
      child.on('exit', (_code, signal) => {
        if (signal === 'SIGKILL') resolve(committed);
        else reject(new Error(`writer exited on its own: ${stderr}`));
      });
    });
  }

  for (const delayMs of [0, 7, 13]) {
    test(`kill -9 during writes leaves whole batches that match the checkpoint (kill ${delayMs} ms after a commit)`, async () => {
      const file = path.join(dir, 'crash.duckdb');
      const reported = await runAndKill(file, 3, delayMs);

      const store = new DuckDbStore({ path: file });
      await store.open();
      assert.deepStrictEqual(store.appliedMigrations, []);
      const checkpoint = await store.checkpoint('processor');
      await store.close();
      assert.ok(checkpoint !== undefined);
      const offset = (checkpoint.offsets as Record<string, number>)['0']!;
      const batches = offset / TICKS_PER_BATCH;
      assert.ok(Number.isInteger(batches), `checkpoint offset ${offset} is not a whole number of batches`);
      // Every commit the child reported survived; at most the one in flight may be there unreported.
      assert.ok(batches === reported || batches === reported + 1, `${batches} batches, ${reported} reported`);
      assert.deepStrictEqual(checkpoint.state, { batch: batches - 1 });

      const counts = await query(
        file,
        `SELECT (SELECT count(*) FROM tick_rows), (SELECT count(*) FROM candle_rows), (SELECT count(*) FROM indicator_rows),
                (SELECT count(*) FROM ticks), (SELECT max(seq) FROM ticks), (SELECT count(*) FROM candles),
                (SELECT count(*) FROM indicators), (SELECT count(*) FROM alerts), (SELECT count(*) FROM dead_letters),
                (SELECT max(seq) FROM latest), (SELECT count(*) FROM latest)`,
      );
      const n = BigInt(batches);
      assert.deepStrictEqual(counts, [
        // The views join the dictionary: equal counts mean no row's id is missing from it.
        [
          n * 5000n,
          n * 10n,
          n * 10n,
          n * 5000n,
          n * 5000n - 1n,
          n * 10n,
          n * 10n,
          n * 2n,
          n,
          n * 5000n - 1n,
          BigInt(SYMBOLS),
        ],
      ]);
    });
  }
});

describe('DuckDB memory limit', () => {
  const MIB = 1024 * 1024;
  test('defaults to 1/32 of RAM within 256..512 MiB', () => {
    assert.equal(defaultDuckDbMemoryLimitBytes(2 * 1024 * MIB), 256 * MIB);
    assert.equal(defaultDuckDbMemoryLimitBytes(12 * 1024 * MIB), 384 * MIB);
    assert.equal(defaultDuckDbMemoryLimitBytes(64 * 1024 * MIB), 512 * MIB);
  });

  test('the configured limit is the one DuckDB runs with', async () => {
    const store = new DuckDbStore({ path: path.join(dir, 'limit.duckdb'), memoryLimit: 100 * MIB });
    await store.open();
    try {
      assert.equal(await store.memoryLimitSetting(), '100.0 MiB');
    } finally {
      await store.close();
    }
  });
});
