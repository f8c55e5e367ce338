/**
 * The DuckDB schema as an ordered list of migrations. A database records the versions it has in
 * `schema_migrations`; opening it applies only the ones it lacks. Never edit a released migration:
 * append a new one.
 */
import type { DuckDBConnection } from '@duckdb/node-api';

/** One schema change, applied once, in ascending `version` order. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** The schema of the DuckDB store, oldest first. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    // No primary keys on the bulk tables: an ART index would slow the appenders and range reads
    // scan by zone maps anyway. `interval` is a keyword in DuckDB, hence the quotes.
    sql: `
      CREATE TABLE ticks (
        seq BIGINT NOT NULL,
        source VARCHAR NOT NULL,
        symbol VARCHAR NOT NULL,
        ts BIGINT NOT NULL,
        price DOUBLE NOT NULL,
        size DOUBLE NOT NULL,
        id VARCHAR,
        side VARCHAR,
        received_at BIGINT NOT NULL,
        ma_short DOUBLE,
        ma_long DOUBLE,
        late BOOLEAN NOT NULL
      );
      CREATE TABLE candles (
        symbol VARCHAR NOT NULL,
        "interval" VARCHAR NOT NULL,
        ts BIGINT NOT NULL,
        open DOUBLE NOT NULL,
        high DOUBLE NOT NULL,
        low DOUBLE NOT NULL,
        close DOUBLE NOT NULL,
        volume DOUBLE NOT NULL,
        trades BIGINT NOT NULL,
        vwap DOUBLE
      );
      CREATE TABLE indicators (
        symbol VARCHAR NOT NULL,
        "interval" VARCHAR NOT NULL,
        ts BIGINT NOT NULL,
        sma20 DOUBLE,
        ema20 DOUBLE,
        rsi14 DOUBLE,
        bb_upper DOUBLE,
        bb_middle DOUBLE,
        bb_lower DOUBLE
      );
      CREATE TABLE alerts (
        seq BIGINT NOT NULL,
        ts BIGINT NOT NULL,
        symbol VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        price DOUBLE NOT NULL,
        threshold DOUBLE,
        message VARCHAR NOT NULL
      );
      CREATE TABLE dead_letters (
        seq BIGINT NOT NULL,
        source VARCHAR NOT NULL,
        reason VARCHAR NOT NULL,
        detail VARCHAR NOT NULL,
        raw VARCHAR NOT NULL,
        received_at BIGINT NOT NULL
      );
      CREATE TABLE latest (
        symbol VARCHAR PRIMARY KEY,
        seq BIGINT NOT NULL,
        source VARCHAR NOT NULL,
        ts BIGINT NOT NULL,
        price DOUBLE NOT NULL,
        size DOUBLE NOT NULL,
        ma_short DOUBLE,
        ma_long DOUBLE
      );
      CREATE TABLE checkpoints (
        name VARCHAR PRIMARY KEY CHECK (length(name) > 0),
        offsets VARCHAR NOT NULL,
        state VARCHAR NOT NULL
      );
    `,
  },
  {
    version: 2,
    name: 'api keys',
    // Only the sha256 of a key's secret is kept (src/serve/auth/keys.ts). A revoked key stays, so
    // `keys list` can show when it was revoked; lookups filter on revoked_at IS NULL.
    sql: `
      CREATE TABLE api_keys (
        id VARCHAR PRIMARY KEY,
        name VARCHAR NOT NULL CHECK (length(name) > 0),
        role VARCHAR NOT NULL CHECK (role IN ('read', 'admin')),
        hash VARCHAR NOT NULL UNIQUE,
        created_at BIGINT NOT NULL,
        revoked_at BIGINT
      );
    `,
  },
  {
    version: 3,
    name: 'checkpoint states in files',
    // A file-backed store keeps each state in `<db file>.state/<name>-<state_seq>.json` and NULL here
    // (checkpoint-states.ts); rows from before keep their inline state and are read as they are.
    // A new table rather than ALTER ... ADD COLUMN: DuckDB 1.5.6 fails to replay that ALTER from
    // the WAL (a CHECK constraint with no default database), so a kill -9 before the next
    // checkpoint would leave a file that no longer opens.
    sql: `
      CREATE TABLE checkpoints_v3 (
        name VARCHAR PRIMARY KEY CHECK (length(name) > 0),
        offsets VARCHAR NOT NULL,
        state VARCHAR,
        state_seq BIGINT,
        CHECK ((state IS NULL) <> (state_seq IS NULL))
      );
      INSERT INTO checkpoints_v3 SELECT name, offsets, state, NULL FROM checkpoints;
      DROP TABLE checkpoints;
      ALTER TABLE checkpoints_v3 RENAME TO checkpoints;
    `,
  },
  {
    version: 4,
    name: 'dictionary-encoded symbols',
    // Symbols, sources, sides and intervals of the bulk tables become INTEGER ids into one
    // dictionary, `text_ids`: the store builds and appends an int32 per value instead of a string
    // (docs/engine.md, Dictionary-encoded symbols). One table, not one per kind: a text has one id
    // whatever column it is in, so the store keeps one Map and one insert path, and the views join
    // the same table. The rows move to `tick_rows`, `candle_rows` and `indicator_rows` (writers and
    // deleters use those: views are not updatable), and views with the old names and columns keep
    // every reader (REST, GraphQL, the lake, POST /api/v1/query, `streamlines sql`) on the old schema.
    // New ids are inserted in the transaction of the rows that first use them (duckdb-store.ts).
    sql: `
      CREATE TABLE text_ids (
        id INTEGER PRIMARY KEY,
        text VARCHAR NOT NULL UNIQUE
      );
      INSERT INTO text_ids
        SELECT (row_number() OVER (ORDER BY text))::INTEGER, text FROM (
          SELECT source AS text FROM ticks UNION SELECT symbol FROM ticks
          UNION SELECT side FROM ticks WHERE side IS NOT NULL
          UNION SELECT symbol FROM candles UNION SELECT "interval" FROM candles
          UNION SELECT symbol FROM indicators UNION SELECT "interval" FROM indicators
        );
      CREATE TABLE tick_rows (
        seq BIGINT NOT NULL,
        source_id INTEGER NOT NULL,
        symbol_id INTEGER NOT NULL,
        ts BIGINT NOT NULL,
        price DOUBLE NOT NULL,
        size DOUBLE NOT NULL,
        id VARCHAR,
        side_id INTEGER,
        received_at BIGINT NOT NULL,
        ma_short DOUBLE,
        ma_long DOUBLE,
        late BOOLEAN NOT NULL
      );
      INSERT INTO tick_rows
        SELECT t.seq, src.id, sym.id, t.ts, t.price, t.size, t.id, sd.id, t.received_at, t.ma_short,
               t.ma_long, t.late
        FROM ticks t
        JOIN text_ids src ON src.text = t.source
        JOIN text_ids sym ON sym.text = t.symbol
        LEFT JOIN text_ids sd ON sd.text = t.side
        ORDER BY t.ts, t.seq;
      CREATE TABLE candle_rows (
        symbol_id INTEGER NOT NULL,
        interval_id INTEGER NOT NULL,
        ts BIGINT NOT NULL,
        open DOUBLE NOT NULL,
        high DOUBLE NOT NULL,
        low DOUBLE NOT NULL,
        close DOUBLE NOT NULL,
        volume DOUBLE NOT NULL,
        trades BIGINT NOT NULL,
        vwap DOUBLE
      );
      INSERT INTO candle_rows
        SELECT sym.id, iv.id, c.ts, c.open, c.high, c.low, c.close, c.volume, c.trades, c.vwap
        FROM candles c
        JOIN text_ids sym ON sym.text = c.symbol
        JOIN text_ids iv ON iv.text = c."interval"
        ORDER BY c.ts, sym.id, iv.id;
      CREATE TABLE indicator_rows (
        symbol_id INTEGER NOT NULL,
        interval_id INTEGER NOT NULL,
        ts BIGINT NOT NULL,
        sma20 DOUBLE,
        ema20 DOUBLE,
        rsi14 DOUBLE,
        bb_upper DOUBLE,
        bb_middle DOUBLE,
        bb_lower DOUBLE
      );
      INSERT INTO indicator_rows
        SELECT sym.id, iv.id, i.ts, i.sma20, i.ema20, i.rsi14, i.bb_upper, i.bb_middle, i.bb_lower
        FROM indicators i
        JOIN text_ids sym ON sym.text = i.symbol
        JOIN text_ids iv ON iv.text = i."interval"
        ORDER BY i.ts, sym.id, iv.id;
      DROP TABLE ticks;
      DROP TABLE candles;
      DROP TABLE indicators;
      CREATE VIEW ticks AS
        SELECT t.seq, src.text AS source, sym.text AS symbol, t.ts, t.price, t.size, t.id, sd.text AS side,
               t.received_at, t.ma_short, t.ma_long, t.late
        FROM tick_rows t
        JOIN text_ids src ON src.id = t.source_id
        JOIN text_ids sym ON sym.id = t.symbol_id
        LEFT JOIN text_ids sd ON sd.id = t.side_id;
      CREATE VIEW candles AS
        SELECT sym.text AS symbol, iv.text AS "interval", c.ts, c.open, c.high, c.low, c.close, c.volume,
               c.trades, c.vwap
        FROM candle_rows c
        JOIN text_ids sym ON sym.id = c.symbol_id
        JOIN text_ids iv ON iv.id = c.interval_id;
      CREATE VIEW indicators AS
        SELECT sym.text AS symbol, iv.text AS "interval", i.ts, i.sma20, i.ema20, i.rsi14, i.bb_upper,
               i.bb_middle, i.bb_lower
        FROM indicator_rows i
        JOIN text_ids sym ON sym.id = i.symbol_id
        JOIN text_ids iv ON iv.id = i.interval_id;
    `,
  },
];

/**
 * Applies the migrations not yet recorded in `schema_migrations`, each in its own transaction
 * together with its record, and returns the versions applied.
 */
export async function applyMigrations(
  connection: DuckDBConnection,
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<number[]> {
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i]!.version <= migrations[i - 1]!.version) {
      throw new Error(
        `migrations must have strictly ascending versions: ${migrations[i - 1]!.version} is followed by ${migrations[i]!.version}`,
      );
    }
  }
  await connection.run(`
    CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER PRIMARY KEY,
      name VARCHAR NOT NULL,
      applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp
    )
  `);
  const reader = await connection.runAndReadAll('SELECT version FROM schema_migrations ORDER BY version');
  const applied = new Set(reader.getRows().map((row) => Number(row[0])));
  const known = new Set(migrations.map((migration) => migration.version));
  const unknown = [...applied].filter((version) => !known.has(version));
  if (unknown.length > 0) {
    // A newer release migrated this file; running older code on it could corrupt it.
    throw new Error(
      `database has schema migrations this version does not know (${unknown.join(', ')}): upgrade Streamlines or use another data dir`,
    );
  }

  const appliedNow: number[] = [];
  for (const migration of migrations) {
    if (applied.has(migration.version)) continue;
    await connection.run('BEGIN TRANSACTION');
    try {
      await connection.run(migration.sql);
      await connection.run('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
        migration.version,
        migration.name,
      ]);
      await connection.run('COMMIT');
    } catch (error) {
      await connection.run('ROLLBACK').catch(() => undefined);
      throw new Error(`schema migration ${migration.version} (${migration.name}) failed: ${String(error)}`, {
        cause: error,
      });
    }
    appliedNow.push(migration.version);
  }
  return appliedNow;
}
