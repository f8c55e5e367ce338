/**
 * The PostgreSQL schema as ordered migrations. Ticks and candles take one of two layouts, chosen
 * when the schema is first created and recorded in `store_settings`: TimescaleDB hypertables, or
 * tables partitioned by range on `ts` (one partition per UTC day, created on write). Never edit a
 * released migration: append a new one.
 */
import type { PoolClient } from 'pg';

/** How ticks and candles are stored. */
export type Layout = 'timescale' | 'partitioned';

/** What a migration's SQL may depend on. */
export interface MigrationContext {
  layout: Layout;
}

/** One schema change, applied once, in ascending `version` order. */
export interface Migration {
  version: number;
  name: string;
  sql: string | ((context: MigrationContext) => string);
}

export const DAY_MS = 86_400_000;
/** Ticks chunk per day, candles per week: a chunk should hold a few hundred MB at most. */
export const TICKS_CHUNK_MS = DAY_MS;
export const CANDLES_CHUNK_MS = 7 * DAY_MS;

const ticksTable = (layout: Layout): string => `
  CREATE TABLE ticks (
    seq BIGINT NOT NULL,
    source TEXT NOT NULL,
    symbol TEXT NOT NULL,
    ts BIGINT NOT NULL,
    price DOUBLE PRECISION NOT NULL,
    size DOUBLE PRECISION NOT NULL,
    id TEXT,
    side TEXT,
    received_at BIGINT NOT NULL,
    ma_short DOUBLE PRECISION,
    ma_long DOUBLE PRECISION,
    late BOOLEAN NOT NULL
  )${layout === 'partitioned' ? ' PARTITION BY RANGE (ts)' : ''};
  CREATE INDEX ticks_symbol_ts ON ticks (symbol, ts, seq);
  CREATE TABLE candles (
    symbol TEXT NOT NULL,
    "interval" TEXT NOT NULL,
    ts BIGINT NOT NULL,
    open DOUBLE PRECISION NOT NULL,
    high DOUBLE PRECISION NOT NULL,
    low DOUBLE PRECISION NOT NULL,
    close DOUBLE PRECISION NOT NULL,
    volume DOUBLE PRECISION NOT NULL,
    trades BIGINT NOT NULL,
    vwap DOUBLE PRECISION
  )${layout === 'partitioned' ? ' PARTITION BY RANGE (ts)' : ''};
  CREATE INDEX candles_symbol_interval_ts ON candles (symbol, "interval", ts);
`;

/**
 * TimescaleDB needs "now" in the time column's unit for integer time: ms since the epoch. It is
 * created in the store's schema (first on the search_path) so schemas stay independent.
 */
const hypertables = `
  CREATE FUNCTION streamlines_now_ms() RETURNS BIGINT LANGUAGE SQL STABLE
    AS $$ SELECT (extract(epoch FROM now()) * 1000)::BIGINT $$;
  SELECT create_hypertable('ticks', by_range('ts', ${TICKS_CHUNK_MS}::BIGINT), create_default_indexes => FALSE);
  SELECT create_hypertable('candles', by_range('ts', ${CANDLES_CHUNK_MS}::BIGINT), create_default_indexes => FALSE);
  SELECT set_integer_now_func('ticks', 'streamlines_now_ms');
  SELECT set_integer_now_func('candles', 'streamlines_now_ms');
  ALTER TABLE ticks SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'symbol',
    timescaledb.compress_orderby = 'ts, seq'
  );
`;

/**
 * With TimescaleDB, daily candles are a continuous aggregate over the final 1h candles (the roll-up
 * docs/design.md, Rules defines), refreshed by a policy and real-time for what is not materialized yet. The
 * store still writes the processor's 1d rows: they say which days are final, and `candles(…, '1d')`
 * serves those days from this view. `price_volume` (sum of vwap * volume) gives the day's vwap.
 * WITH NO DATA, because a continuous aggregate cannot be filled inside open()'s transaction.
 */
const dailyCandlesAggregate = `
  CREATE MATERIALIZED VIEW candles_1d
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
  SELECT symbol,
    time_bucket(${DAY_MS}::BIGINT, ts) AS ts,
    first(open, ts) AS open,
    max(high) AS high,
    min(low) AS low,
    last(close, ts) AS close,
    sum(volume) AS volume,
    sum(trades)::BIGINT AS trades,
    sum(vwap * volume) AS price_volume
  FROM candles
  WHERE "interval" = '1h'
  GROUP BY symbol, time_bucket(${DAY_MS}::BIGINT, ts)
  WITH NO DATA;
  SELECT add_continuous_aggregate_policy('candles_1d',
    start_offset => NULL,
    end_offset => ${60 * 60_000}::BIGINT,
    schedule_interval => INTERVAL '1 hour');
`;

/** The indicator point columns, as the `indicators` table has them and candle rows have them since migration 4. */
const POINT_COLUMNS = 'sma20, ema20, rsi14, bb_upper, bb_middle, bb_lower';

/**
 * A final candle and its indicator point share a key (symbol, interval, ts) and are made together,
 * so since migration 4 the point is stored in the candle's row (`has_point`): one heap row and one
 * index entry fewer per final candle, about a fifth of the server's CPU per tick on a candle-heavy
 * market (docs/benchmarks.md). A point written without its candle (or before this migration) is a
 * row of `indicator_rows`, the old table renamed. Readers, the store's and the lake archive's, read
 * the view `indicators`: both together, as the table was.
 */
const pointsInCandleRows = `
  ALTER TABLE indicators RENAME TO indicator_rows;
  ALTER INDEX indicators_symbol_interval_ts RENAME TO indicator_rows_symbol_interval_ts;
  ALTER TABLE candles
    ADD COLUMN has_point BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN sma20 DOUBLE PRECISION,
    ADD COLUMN ema20 DOUBLE PRECISION,
    ADD COLUMN rsi14 DOUBLE PRECISION,
    ADD COLUMN bb_upper DOUBLE PRECISION,
    ADD COLUMN bb_middle DOUBLE PRECISION,
    ADD COLUMN bb_lower DOUBLE PRECISION;
  CREATE VIEW indicators AS
    SELECT symbol, "interval", ts, ${POINT_COLUMNS} FROM candles WHERE has_point
    UNION ALL
    SELECT symbol, "interval", ts, ${POINT_COLUMNS} FROM indicator_rows;
`;

/** The schema of the PostgreSQL store, oldest first. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    // No unique keys on the bulk tables, as in DuckDB: the processor's checkpoint, not the
    // store, is what prevents duplicates, and unique indexes would slow COPY.
    sql: ({ layout }) => `
      CREATE TABLE store_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      INSERT INTO store_settings (key, value) VALUES ('layout', '${layout}');
      ${ticksTable(layout)}
      ${layout === 'timescale' ? hypertables : ''}
      CREATE TABLE indicators (
        symbol TEXT NOT NULL,
        "interval" TEXT NOT NULL,
        ts BIGINT NOT NULL,
        sma20 DOUBLE PRECISION,
        ema20 DOUBLE PRECISION,
        rsi14 DOUBLE PRECISION,
        bb_upper DOUBLE PRECISION,
        bb_middle DOUBLE PRECISION,
        bb_lower DOUBLE PRECISION
      );
      CREATE INDEX indicators_symbol_interval_ts ON indicators (symbol, "interval", ts);
      CREATE TABLE alerts (
        seq BIGINT NOT NULL,
        ts BIGINT NOT NULL,
        symbol TEXT NOT NULL,
        kind TEXT NOT NULL,
        price DOUBLE PRECISION NOT NULL,
        threshold DOUBLE PRECISION,
        message TEXT NOT NULL
      );
      CREATE INDEX alerts_ts_seq ON alerts (ts, seq);
      CREATE INDEX alerts_symbol_ts_seq ON alerts (symbol, ts, seq);
      CREATE TABLE dead_letters (
        seq BIGINT NOT NULL,
        source TEXT NOT NULL,
        reason TEXT NOT NULL,
        detail TEXT NOT NULL,
        raw TEXT NOT NULL,
        received_at BIGINT NOT NULL
      );
      CREATE INDEX dead_letters_seq ON dead_letters (seq);
      CREATE TABLE latest (
        symbol TEXT PRIMARY KEY,
        seq BIGINT NOT NULL,
        source TEXT NOT NULL,
        ts BIGINT NOT NULL,
        price DOUBLE PRECISION NOT NULL,
        size DOUBLE PRECISION NOT NULL,
        ma_short DOUBLE PRECISION,
        ma_long DOUBLE PRECISION
      );
      -- Offsets and state are kept as the JSON text the processor wrote: JSONB would reorder keys
      -- and reparse numbers, and the checkpoint must come back exactly.
      CREATE TABLE checkpoints (
        name TEXT PRIMARY KEY CHECK (length(name) > 0),
        offsets TEXT NOT NULL,
        state TEXT NOT NULL
      );
    `,
  },
  {
    version: 2,
    name: 'api keys',
    // Only the sha256 of a key's secret is kept; a revoked key stays so `keys list` can show it.
    sql: `
      CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL CHECK (length(name) > 0),
        role TEXT NOT NULL CHECK (role IN ('read', 'admin')),
        hash TEXT NOT NULL UNIQUE,
        created_at BIGINT NOT NULL,
        revoked_at BIGINT
      );
    `,
  },
  {
    version: 3,
    name: 'daily candles',
    // Without TimescaleDB the processor's own 1d roll-up rows are served as they are.
    sql: ({ layout }) => (layout === 'timescale' ? dailyCandlesAggregate : 'SELECT 1'),
  },
  { version: 4, name: 'indicator points in candle rows', sql: pointsInCandleRows },
];

/**
 * Applies the migrations not yet recorded in `schema_migrations`, all in the caller's open
 * transaction (which holds the schema's advisory lock), and returns the versions applied.
 */
export async function applyMigrations(
  client: PoolClient,
  context: MigrationContext,
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<number[]> {
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i]!.version <= migrations[i - 1]!.version) {
      throw new Error(
        `migrations must have strictly ascending versions: ${migrations[i - 1]!.version} is followed by ${migrations[i]!.version}`,
      );
    }
  }
  await client.query(`
    CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER PRIMARY KEY,
      name TEXT NOT NULL,
      applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )
  `);
  const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations');
  const applied = new Set(rows.map((row) => Number(row.version)));
  const known = new Set(migrations.map((migration) => migration.version));
  const unknown = [...applied].filter((version) => !known.has(version));
  if (unknown.length > 0) {
    throw new Error(
      `database has schema migrations this version does not know (${unknown.join(', ')}): upgrade Streamlines or use another schema`,
    );
  }
  const appliedNow: number[] = [];
  for (const migration of migrations) {
    if (applied.has(migration.version)) continue;
    const sql = typeof migration.sql === 'string' ? migration.sql : migration.sql(context);
    try {
      await client.query(sql);
    } catch (error) {
      throw new Error(`schema migration ${migration.version} (${migration.name}) failed: ${String(error)}`, {
        cause: error,
      });
    }
    await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
      migration.version,
      migration.name,
    ]);
    appliedNow.push(migration.version);
  }
  return appliedNow;
}
