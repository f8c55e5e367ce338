/**
 * The distributed store: PostgreSQL through a node-postgres pool, using TimescaleDB hypertables,
 * compression and retention policies when the extension is there, and day partitions with the
 * store's own retention job when it is not. Each batch is one transaction, its bulk rows sent by
 * COPY, so readers on other connections only ever see whole batches (docs/design.md, Delivery).
 */
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type {
  Alert,
  AlertKind,
  Candle,
  DeadLetter,
  IndicatorPoint,
  Interval,
  ProcessedTick,
  RejectReason,
} from '../../core/records.ts';
import { lastTickPerSymbol } from '../latest-ticks.ts';
import { normalizeLimit, normalizeRange } from '../range-query.ts';
import type {
  AlertQuery,
  ApiKeyRecord,
  ApiKeyRole,
  Checkpoint,
  ExpiryCutoffs,
  ExpiryResult,
  LatestTick,
  NewApiKey,
  RangeQuery,
  Store,
  StoreBatch,
  StoredSpan,
  StoredTick,
  SymbolSummary,
} from '../store.ts';
import {
  CheckpointConflictError,
  deadLetterBound,
  deadLetterExpirySql,
  expiryPlan,
  noneExpired,
  StoreUnavailableError,
  sameOffsets,
} from '../store.ts';
import {
  ALERTS,
  CANDLES,
  candleRows,
  copyBinary,
  copySql,
  DEAD_LETTERS,
  INDICATORS,
  type TableSpec,
  TICKS,
  unnestInsert,
} from './bulk.ts';
import { applyMigrations, DAY_MS, type Layout, MIGRATIONS, type Migration } from './migrations.ts';

/** Whether to use TimescaleDB: when it can be created (`auto`), always (`on`, else fail), or never. */
/**
 * Daily candles under TimescaleDB: the days the processor made final (its 1d rows), with the values
 * of the `candles_1d` continuous aggregate over their 1h candles. A day whose 1h candles retention
 * already dropped keeps the processor's row. Wrapped so #readRange can add `AND ts …`.
 */
const DAILY_FROM_AGGREGATE = `SELECT * FROM (
  SELECT f.symbol, f."interval", f.ts,
    COALESCE(a.open, f.open) AS open, COALESCE(a.high, f.high) AS high, COALESCE(a.low, f.low) AS low,
    COALESCE(a.close, f.close) AS close, COALESCE(a.volume, f.volume) AS volume,
    COALESCE(a.trades, f.trades) AS trades,
    CASE WHEN a.ts IS NULL THEN f.vwap WHEN a.volume = 0 THEN NULL ELSE a.price_volume / a.volume END AS vwap
  FROM candles f LEFT JOIN candles_1d a ON a.symbol = f.symbol AND a.ts = f.ts
  WHERE f."interval" = '1d'
) daily WHERE symbol = $1 AND "interval" = $2`;

export type TimescaleMode = 'auto' | 'on' | 'off';

export interface PostgresStoreOptions {
  /** A libpq-style URL; passwords belong in PGPASSWORD (or ~/.pgpass), not in the URL. */
  url: string;
  /** The schema holding the store's tables (created if missing). Default `public`. */
  schema?: string;
  timescale?: TimescaleMode;
  /** Ticks older than this are dropped (whole partitions/chunks). 0 keeps them forever. Default 30 days. */
  ticksRetentionMs?: number;
  /** Candles and indicators older than this are dropped. 0 keeps them forever. Default 90 days. */
  aggregatesRetentionMs?: number;
  /** TimescaleDB: compress tick chunks older than this. Default 1 day. */
  compressAfterMs?: number;
  /** How often the store runs its own retention job; 0 never (call `applyRetention`). Default 1 hour. */
  retentionEveryMs?: number;
  /** `copy` (default) or `insert` (one INSERT from unnest arrays, for servers without COPY FROM STDIN). */
  bulkWrite?: 'copy' | 'insert';
  /** Pool size. Default 10. */
  maxConnections?: number;
  /** Called when a periodic retention run fails; default: a process warning. */
  onRetentionError?: (error: unknown) => void;
  /** The schema; tests append to it to check that only pending migrations run. */
  migrations?: readonly Migration[];
}

/** What one retention run dropped. */
export interface RetentionResult {
  /** Tick partitions or chunks dropped. */
  ticks: string[];
  /** Candle partitions or chunks dropped. */
  candles: string[];
  /** Indicator points deleted (with TimescaleDB, those in dropped candle chunks are not counted). */
  indicators: number;
}

const INT8_OID = 20;
/** BIGINT as number: every BIGINT here is ms or a count, far below 2^53. Set on this pool only. */
const TYPES = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === INT8_OID && format !== 'binary'
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

const DEFAULT_TICKS_RETENTION_MS = 30 * DAY_MS;
const DEFAULT_AGGREGATES_RETENTION_MS = 90 * DAY_MS;

/** Runs tasks one at a time, in call order, whatever each one's outcome. */
class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(task);
    this.#tail = result.catch(() => undefined);
    return result;
  }

  idle(): Promise<unknown> {
    return this.#tail;
  }
}

/** A quoted SQL identifier. */
function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A partition's name: the table and the UTC day number it holds. */
function partitionName(table: string, day: number): string {
  return `${table}_d${day < 0 ? `m${-day}` : day}`;
}

function partitionDay(name: string): number | undefined {
  const match = /_d(m?)(\d+)$/.exec(name);
  if (match === null) return undefined;
  return (match[1] === 'm' ? -1 : 1) * Number(match[2]);
}

const POSTGRES_NO_PARTITION = '23514';

/** A bulk part of a batch: the table and its records, written by COPY or by INSERT ... unnest. */
type BulkPart = { spec: TableSpec<never>; records: readonly unknown[] };

/** The PostgreSQL store. Construct, `open()`, then use; `close()` ends the pool. */
export class PostgresStore implements Store {
  readonly #options: PostgresStoreOptions;
  readonly #schema: string;
  readonly #migrations: readonly Migration[];
  readonly #ticksRetentionMs: number;
  readonly #aggregatesRetentionMs: number;
  #pool: pg.Pool | undefined;
  #layout: Layout | undefined;
  #retentionTimer: ReturnType<typeof setInterval> | undefined;
  /** Day partitions known to exist, per table (partitioned layout only). */
  readonly #partitions = new Map<string, Set<number>>([
    ['ticks', new Set()],
    ['candles', new Set()],
  ]);
  readonly #writes = new SerialQueue();
  /** Versions the last `open()` applied (for tests and logs). */
  appliedMigrations: readonly number[] = [];

  constructor(options: PostgresStoreOptions) {
    this.#options = options;
    this.#schema = options.schema ?? 'public';
    this.#migrations = options.migrations ?? MIGRATIONS;
    this.#ticksRetentionMs = options.ticksRetentionMs ?? DEFAULT_TICKS_RETENTION_MS;
    this.#aggregatesRetentionMs = options.aggregatesRetentionMs ?? DEFAULT_AGGREGATES_RETENTION_MS;
  }

  /** How ticks and candles are stored; known once `open()` resolved. */
  get layout(): Layout | undefined {
    return this.#layout;
  }

  async open(): Promise<void> {
    if (this.#pool !== undefined) throw new Error('PostgresStore is already open');
    const pool = new pg.Pool({
      connectionString: this.#options.url,
      max: this.#options.maxConnections ?? 10,
      types: TYPES,
      application_name: 'streamlines',
      // Awaited before the pool hands the client out, so every statement sees the schema.
      // (Set by SQL rather than the `options` startup parameter, which pglite-socket ignores.)
      onConnect: async (client) => {
        // A connection that dies while checked out (the server restarts mid-write) emits 'error'
        // on its client as well as failing the query in flight; the pool only listens while the
        // client is idle, and an unheard 'error' would end the process. The failed query is what
        // reports it (the write is retried), so the event itself is ignored.
        client.on('error', () => undefined);
        await client.query(`SET search_path TO ${ident(this.#schema)}, public`);
      },
    });
    // An idle client the server dropped is replaced on the next checkout; the pool must not
    // crash the process meanwhile.
    pool.on('error', () => undefined);
    try {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        try {
          // Two processes opening at once: the second waits here, then finds the work done.
          await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [
            `streamlines:schema:${this.#schema}`,
          ]);
          if (this.#schema !== 'public')
            await client.query(`CREATE SCHEMA IF NOT EXISTS ${ident(this.#schema)}`);
          const layout = await this.#chooseLayout(client);
          this.appliedMigrations = await applyMigrations(client, { layout }, this.#migrations);
          if (layout === 'timescale') await this.#applyPolicies(client);
          await client.query('COMMIT');
          this.#layout = layout;
        } catch (error) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw error;
        }
      } finally {
        client.release();
      }
      this.#pool = pool;
      if (this.#layout === 'partitioned') await this.#loadPartitions();
    } catch (error) {
      this.#pool = undefined;
      await pool.end().catch(() => undefined);
      throw error;
    }
    const every = this.#options.retentionEveryMs ?? 3_600_000;
    if (every > 0) {
      this.#retentionTimer = setInterval(() => {
        this.applyRetention(Date.now()).catch(
          this.#options.onRetentionError ??
            ((error: unknown) => process.emitWarning(`PostgreSQL store retention failed: ${String(error)}`)),
        );
      }, every);
      this.#retentionTimer.unref();
    }
  }

  async write(batch: StoreBatch): Promise<void> {
    const pool = this.#requirePool();
    // Built before the queue and the transaction: an unserialisable state fails here.
    const candles = candleRows(batch.candles, batch.indicators);
    const parts: BulkPart[] = [
      { spec: TICKS, records: batch.ticks },
      { spec: CANDLES, records: candles.rows },
      { spec: INDICATORS, records: candles.orphans },
      { spec: ALERTS, records: batch.alerts },
      { spec: DEAD_LETTERS, records: batch.deadLetters },
    ] as BulkPart[];
    const payloads = parts
      .filter((part) => part.records.length > 0)
      .map((part) =>
        this.#options.bulkWrite === 'insert'
          ? { kind: 'insert' as const, ...unnestInsert(part.spec, part.records as never[]) }
          : {
              kind: 'copy' as const,
              sql: copySql(part.spec, true),
              text: copyBinary(part.spec, part.records as never[]),
            },
      );
    const latest = latestUpsert(batch.ticks);
    const { name, offsets, state, previous } = batch.checkpoint;
    const checkpointValues = [name, JSON.stringify(offsets), JSON.stringify(state ?? null)];
    const tickDays = this.#layout === 'partitioned' ? daysOf(batch.ticks) : [];
    const candleDays = this.#layout === 'partitioned' ? daysOf(batch.candles) : [];

    const attempt = async (): Promise<void> => {
      await this.#ensurePartitions('ticks', tickDays);
      await this.#ensurePartitions('candles', candleDays);
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        try {
          const checkpointWritten =
            previous === undefined ? false : await fenceCheckpoint(client, name, previous, checkpointValues);
          for (const payload of payloads) {
            if (payload.kind === 'copy') await copyInto(client, payload.sql, payload.text);
            else await client.query(payload.text, payload.values);
          }
          if (latest !== undefined) await client.query(latest.text, latest.values);
          if (!checkpointWritten) {
            await client.query(
              `INSERT INTO checkpoints (name, offsets, state) VALUES ($1, $2, $3)
               ON CONFLICT (name) DO UPDATE SET offsets = excluded.offsets, state = excluded.state`,
              checkpointValues,
            );
          }
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK').catch((rollbackError: Error) => {
            broken = rollbackError;
          });
          throw error;
        }
      } finally {
        // A client whose ROLLBACK failed is in an unknown state: destroy it rather than reuse it.
        client.release(broken);
      }
    };
    return this.#writes.run(async () => {
      try {
        await attempt();
      } catch (error) {
        // Another process's retention may have dropped a partition this process thought it had.
        // A CheckpointConflictError is final: retrying would only find the same foreign offsets.
        if (
          error instanceof CheckpointConflictError ||
          this.#layout !== 'partitioned' ||
          (error as { code?: string }).code !== POSTGRES_NO_PARTITION
        ) {
          throw error;
        }
        await this.#loadPartitions();
        await attempt();
      }
    });
  }

  /**
   * Drops ticks older than `nowMs - ticksRetention` and candles and indicators older than
   * `nowMs - aggregatesRetention`. Ticks and candles go a whole partition (or chunk) at a time,
   * once all of it is older than the cutoff. The store runs this periodically; tests call it.
   */
  applyRetention(nowMs: number): Promise<RetentionResult> {
    const pool = this.#requirePool();
    return this.#writes.run(async () => {
      const result: RetentionResult = { ticks: [], candles: [], indicators: 0 };
      const plan: [table: 'ticks' | 'candles', retentionMs: number][] = [
        ['ticks', this.#ticksRetentionMs],
        ['candles', this.#aggregatesRetentionMs],
      ];
      for (const [table, retentionMs] of plan) {
        if (retentionMs <= 0) continue;
        const cutoff = nowMs - retentionMs;
        if (this.#layout === 'timescale') {
          const { rows } = await pool.query<{ chunk: string }>(
            'SELECT drop_chunks($1::regclass, older_than => $2::BIGINT)::TEXT AS chunk',
            [`${ident(this.#schema)}.${table}`, cutoff],
          );
          result[table] = rows.map((row) => row.chunk);
        } else {
          await this.#loadPartitions();
          const known = this.#partitions.get(table)!;
          for (const day of [...known].sort((a, b) => a - b)) {
            if ((day + 1) * DAY_MS > cutoff) break;
            const partition = partitionName(table, day);
            if (table === 'candles') {
              // The indicator points stored in these candle rows (migration 4) go with them.
              const points = await pool.query<{ points: number }>(
                `SELECT count(*)::INT AS points FROM ${ident(this.#schema)}.${ident(partition)} WHERE has_point`,
              );
              result.indicators += points.rows[0]?.points ?? 0;
            }
            await pool.query(`DROP TABLE IF EXISTS ${ident(this.#schema)}.${ident(partition)}`);
            known.delete(day);
            result[table].push(partition);
          }
        }
      }
      if (this.#aggregatesRetentionMs > 0) {
        // Points in candle rows went with their candles' partitions (counted) or chunks (not counted).
        const deleted = await pool.query('DELETE FROM indicator_rows WHERE ts < $1', [
          nowMs - this.#aggregatesRetentionMs,
        ]);
        result.indicators += deleted.rowCount ?? 0;
      }
      return result;
    });
  }

  /**
   * Read from `latest` (one row per symbol) rather than by scanning ticks: the newest of each
   * symbol's last tick in log order, so a late last tick can only make retention keep a little
   * more, never less.
   */
  async newestTickTs(): Promise<number | undefined> {
    const { rows } = await this.#query<{ newest: number | null }>('SELECT max(ts) AS newest FROM latest');
    const newest = rows[0]?.newest;
    return newest === null || newest === undefined ? undefined : Number(newest);
  }

  async storedSpan(): Promise<StoredSpan> {
    const { rows } = await this.#query<{ ticks: number | null; aggregates: number | null }>(
      `SELECT (SELECT min(ts) FROM ticks) AS ticks,
              least((SELECT min(ts) FROM candles), (SELECT min(ts) FROM indicators),
                    (SELECT min(ts) FROM alerts)) AS aggregates`,
    );
    const row = rows[0];
    const span: StoredSpan = {};
    if (row?.ticks != null) span.oldestTickTs = Number(row.ticks);
    if (row?.aggregates != null) span.oldestAggregateTs = Number(row.aggregates);
    return span;
  }

  /**
   * Event-time retention in small steps (the retention task picks the cutoffs): on TimescaleDB the
   * chunks wholly before a cutoff are dropped first, then the rest go by DELETE.
   */
  async deleteExpired(cutoffs: ExpiryCutoffs): Promise<ExpiryResult> {
    const pool = this.#requirePool();
    const plan = expiryPlan(cutoffs);
    const bound = deadLetterBound(cutoffs);
    return this.#writes.run(async () => {
      const result = noneExpired();
      for (const [table, beforeMs] of plan) {
        if (this.#layout === 'timescale' && (table === 'ticks' || table === 'candles')) {
          await pool.query('SELECT drop_chunks($1::regclass, older_than => $2::BIGINT)', [
            `${ident(this.#schema)}.${table}`,
            beforeMs,
          ]);
        }
        if (table === 'candles') {
          // The points in these candle rows go with them, and count as indicators.
          const { rows } = await pool.query<{ candles: number; points: number }>(
            `WITH gone AS (DELETE FROM candles WHERE ts < $1 RETURNING has_point)
             SELECT count(*)::INT AS candles, (count(*) FILTER (WHERE has_point))::INT AS points FROM gone`,
            [beforeMs],
          );
          result.candles = rows[0]?.candles ?? 0;
          result.indicators += rows[0]?.points ?? 0;
          continue;
        }
        const deleted = await pool.query(
          `DELETE FROM ${table === 'indicators' ? 'indicator_rows' : table} WHERE ts < $1`,
          [beforeMs],
        );
        result[table] += deleted.rowCount ?? 0;
      }
      if (bound !== undefined)
        result.deadLetters = (await pool.query(deadLetterExpirySql(bound))).rowCount ?? 0;
      return result;
    });
  }

  async checkpoint(name: string): Promise<Checkpoint | undefined> {
    const { rows } = await this.#query<{ offsets: string; state: string }>(
      'SELECT offsets, state FROM checkpoints WHERE name = $1',
      [name],
    );
    const row = rows[0];
    if (row === undefined) return undefined;
    return { offsets: JSON.parse(row.offsets) as Checkpoint['offsets'], state: JSON.parse(row.state) };
  }

  async symbols(): Promise<SymbolSummary[]> {
    // COLLATE "C": byte order, as the other stores sort, whatever the database's locale.
    const { rows } = await this.#query<{ symbol: string; price: number; ts: number }>(
      'SELECT symbol, price, ts FROM latest ORDER BY symbol COLLATE "C"',
    );
    return rows.map((row) => ({ symbol: row.symbol, lastPrice: row.price, lastTs: row.ts }));
  }

  async latest(symbol: string): Promise<LatestTick | undefined> {
    const { rows } = await this.#query<{
      symbol: string;
      ts: number;
      price: number;
      size: number;
      ma_short: number | null;
      ma_long: number | null;
      source: string;
    }>('SELECT symbol, ts, price, size, ma_short, ma_long, source FROM latest WHERE symbol = $1', [symbol]);
    const row = rows[0];
    if (row === undefined) return undefined;
    return {
      symbol: row.symbol,
      ts: row.ts,
      price: row.price,
      size: row.size,
      maShort: row.ma_short,
      maLong: row.ma_long,
      source: row.source,
    };
  }

  async ticks(symbol: string, range: RangeQuery): Promise<StoredTick[]> {
    const rows = await this.#readRange<{
      ts: number;
      price: number;
      size: number;
      id: string | null;
      ma_short: number | null;
      ma_long: number | null;
      late: boolean;
    }>(
      'SELECT ts, seq, price, size, id, ma_short, ma_long, late FROM ticks WHERE symbol = $1',
      [symbol],
      ['ts', 'seq'],
      range,
    );
    return rows.map((row) => ({
      ts: row.ts,
      price: row.price,
      size: row.size,
      id: row.id,
      maShort: row.ma_short,
      maLong: row.ma_long,
      late: row.late,
    }));
  }

  async candles(symbol: string, interval: Interval, range: RangeQuery): Promise<Candle[]> {
    // The columns carry the candle's own names; the daily aggregate's adds symbol and interval, the same.
    const rows = await this.#readRange<Omit<Candle, 'symbol' | 'interval' | 'final'>>(
      interval === '1d' && this.#layout === 'timescale'
        ? DAILY_FROM_AGGREGATE
        : 'SELECT ts, open, high, low, close, volume, trades, vwap FROM candles WHERE symbol = $1 AND "interval" = $2',
      [symbol, interval],
      ['ts'],
      range,
    );
    return rows.map((row) => ({ ...row, symbol, interval, final: true }));
  }

  async indicators(symbol: string, interval: Interval, range: RangeQuery): Promise<IndicatorPoint[]> {
    // The two tables behind the view `indicators` (migration 4), each read on its index: through
    // the view, whose candle branch has a WHERE, PostgreSQL cannot merge them in ts order and would
    // read every point of the series to return the last `limit`. Each table's first (or last)
    // `limit` rows hold the union's, which are picked below.
    const columns =
      'ts, sma20, ema20, rsi14, bb_upper AS "bbUpper", bb_middle AS "bbMiddle", bb_lower AS "bbLower"';
    const read = (table: string, filter: string) =>
      this.#readRange<Omit<IndicatorPoint, 'symbol' | 'interval'>>(
        `SELECT ${columns} FROM ${table} WHERE ${filter}symbol = $1 AND "interval" = $2`,
        [symbol, interval],
        ['ts'],
        range,
      );
    const [inCandles, alone] = await Promise.all([
      read('candles', 'has_point AND '),
      read('indicator_rows', ''),
    ]);
    let rows = inCandles;
    if (alone.length > 0) {
      const { from, limit } = normalizeRange(range);
      rows = [...inCandles, ...alone].sort((a, b) => a.ts - b.ts);
      rows = from !== undefined ? rows.slice(0, limit) : rows.slice(Math.max(0, rows.length - limit));
    }
    return rows.map((row) => ({ ...row, symbol, interval }));
  }

  async alerts(query: AlertQuery): Promise<Alert[]> {
    const filters = ['TRUE'];
    const values: unknown[] = [];
    if (query.symbol !== undefined) {
      values.push(query.symbol);
      filters.push(`symbol = $${values.length}`);
    }
    if (query.kind !== undefined) {
      values.push(query.kind);
      filters.push(`kind = $${values.length}`);
    }
    const rows = await this.#readRange<{
      seq: number;
      ts: number;
      symbol: string;
      kind: AlertKind;
      price: number;
      threshold: number | null;
      message: string;
    }>(
      `SELECT seq, ts, symbol, kind, price, threshold, message FROM alerts WHERE ${filters.join(' AND ')}`,
      values,
      ['ts', 'seq'],
      query,
    );
    return rows.map((row) => {
      const alert: Alert = {
        seq: row.seq,
        ts: row.ts,
        symbol: row.symbol,
        kind: row.kind,
        price: row.price,
        message: row.message,
      };
      if (row.threshold !== null) alert.threshold = row.threshold;
      return alert;
    });
  }

  async deadLetters(limit: number): Promise<DeadLetter[]> {
    const { rows } = await this.#query<{
      seq: number;
      source: string;
      reason: RejectReason;
      detail: string;
      raw: string;
      received_at: number;
    }>(
      `SELECT * FROM (
         SELECT seq, source, reason, detail, raw, received_at FROM dead_letters ORDER BY seq DESC LIMIT $1
       ) recent ORDER BY seq`,
      [normalizeLimit(limit)],
    );
    return rows.map((row) => ({
      seq: row.seq,
      source: row.source,
      reason: row.reason,
      detail: row.detail,
      raw: row.raw,
      receivedAt: row.received_at,
    }));
  }

  async createKey(key: NewApiKey): Promise<void> {
    await this.#query(
      'INSERT INTO api_keys (id, name, role, hash, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, NULL)',
      [key.id, key.name, key.role, key.hash, key.createdAt],
    );
  }

  async listKeys(): Promise<ApiKeyRecord[]> {
    const { rows } = await this.#query<KeyRow>(
      'SELECT id, name, role, created_at, revoked_at FROM api_keys ORDER BY created_at, id COLLATE "C"',
    );
    return rows.map(toKeyRecord);
  }

  async findKeyByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    const { rows } = await this.#query<KeyRow>(
      'SELECT id, name, role, created_at, revoked_at FROM api_keys WHERE hash = $1 AND revoked_at IS NULL',
      [hash],
    );
    return rows[0] === undefined ? undefined : toKeyRecord(rows[0]);
  }

  async revokeKey(id: string, revokedAt: number = Date.now()): Promise<boolean> {
    const result = await this.#query(
      'UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL',
      [id, revokedAt],
    );
    return (result.rowCount ?? 0) > 0;
  }

  /** Stops the retention job, waits for queued writes, then ends the pool. Safe to call twice. */
  async close(): Promise<void> {
    const pool = this.#pool;
    if (pool === undefined) return;
    this.#pool = undefined;
    clearInterval(this.#retentionTimer);
    this.#retentionTimer = undefined;
    await this.#writes.idle();
    await pool.end();
  }

  #requirePool(): pg.Pool {
    if (this.#pool === undefined) throw new Error('PostgresStore is not open: call open() first');
    return this.#pool;
  }

  /** A read on the pool; a server that cannot be reached becomes a StoreUnavailableError. */
  async #query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    const pool = this.#requirePool();
    try {
      return await pool.query<R>(text, values);
    } catch (error) {
      if (isConnectionError(error)) {
        throw new StoreUnavailableError(
          `PostgreSQL is unreachable (${(error as Error).message}); reads resume when it is back`,
          { cause: error },
        );
      }
      throw error;
    }
  }

  /** RangeQuery semantics (store.ts): first `limit` from `from`, else the last `limit` up to `to`. */
  async #readRange<R extends pg.QueryResultRow>(
    base: string,
    baseValues: readonly unknown[],
    orderKeys: readonly string[],
    range: RangeQuery,
  ): Promise<R[]> {
    const { from, to, limit } = normalizeRange(range);
    if (limit === 0) return [];
    const values = [...baseValues];
    let sql = base;
    if (from !== undefined) {
      values.push(from);
      sql += ` AND ts >= $${values.length}`;
    }
    if (to !== undefined) {
      values.push(to);
      sql += ` AND ts <= $${values.length}`;
    }
    values.push(limit);
    const ascending = orderKeys.join(', ');
    if (from !== undefined) {
      return (await this.#query<R>(`${sql} ORDER BY ${ascending} LIMIT $${values.length}`, values)).rows;
    }
    const descending = orderKeys.map((key) => `${key} DESC`).join(', ');
    return (
      await this.#query<R>(
        `SELECT * FROM (${sql} ORDER BY ${descending} LIMIT $${values.length}) recent ORDER BY ${ascending}`,
        values,
      )
    ).rows;
  }

  /**
   * Keeps the layout a schema was created with; on a new schema tries TimescaleDB unless told
   * not to. Runs inside open()'s locked transaction.
   */
  async #chooseLayout(client: pg.PoolClient): Promise<Layout> {
    const mode = this.#options.timescale ?? 'auto';
    const settings = `${ident(this.#schema)}.store_settings`;
    const { rows } = await client.query<{ exists: boolean }>('SELECT to_regclass($1) IS NOT NULL AS exists', [
      settings,
    ]);
    if (rows[0]?.exists) {
      const stored = await client.query<{ value: string }>(
        `SELECT value FROM ${settings} WHERE key = 'layout'`,
      );
      const layout = stored.rows[0]?.value as Layout | undefined;
      if (layout === 'timescale' && mode === 'off') {
        throw new Error(
          `schema ${this.#schema} was created with TimescaleDB hypertables: set store.timescale to 'auto' or 'on'`,
        );
      }
      if (layout === 'partitioned' && mode === 'on') {
        throw new Error(
          `schema ${this.#schema} was created without TimescaleDB (day partitions): set store.timescale to 'auto' or 'off', or use a new schema`,
        );
      }
      if (layout === 'timescale' || layout === 'partitioned') return layout;
    }
    if (mode === 'off') return 'partitioned';
    const available = await client.query("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'");
    let failure = 'the timescaledb extension is not installed on the server';
    if (available.rows.length > 0) {
      await client.query('SAVEPOINT timescale');
      try {
        await client.query('CREATE EXTENSION IF NOT EXISTS timescaledb WITH SCHEMA public');
        await client.query('RELEASE SAVEPOINT timescale');
        return 'timescale';
      } catch (error) {
        // Typically: installed but not in shared_preload_libraries, or no privilege.
        await client.query('ROLLBACK TO SAVEPOINT timescale');
        failure = `CREATE EXTENSION timescaledb failed: ${String(error)}`;
      }
    }
    if (mode === 'on') throw new Error(`store.timescale is 'on' but ${failure}`);
    return 'partitioned';
  }

  /** Retention and compression policies from the options; replaced on every open so changes apply. */
  async #applyPolicies(client: pg.PoolClient): Promise<void> {
    const plan: [string, number][] = [
      ['ticks', this.#ticksRetentionMs],
      ['candles', this.#aggregatesRetentionMs],
    ];
    for (const [table, retentionMs] of plan) {
      await client.query('SELECT remove_retention_policy($1::regclass, if_exists => TRUE)', [table]);
      if (retentionMs > 0) {
        await client.query('SELECT add_retention_policy($1::regclass, drop_after => $2::BIGINT)', [
          table,
          retentionMs,
        ]);
      }
    }
    await client.query("SELECT remove_compression_policy('ticks', if_exists => TRUE)");
    await client.query("SELECT add_compression_policy('ticks', compress_after => $1::BIGINT)", [
      this.#options.compressAfterMs ?? DAY_MS,
    ]);
  }

  /** Reads which day partitions exist, from the catalog (another process may have changed them). */
  async #loadPartitions(): Promise<void> {
    const { rows } = await this.#requirePool().query<{ parent: string; child: string }>(
      `SELECT parent.relname AS parent, child.relname AS child
       FROM pg_inherits i
       JOIN pg_class parent ON parent.oid = i.inhparent
       JOIN pg_class child ON child.oid = i.inhrelid
       JOIN pg_namespace ns ON ns.oid = parent.relnamespace
       WHERE ns.nspname = $1 AND parent.relname IN ('ticks', 'candles')`,
      [this.#schema],
    );
    for (const set of this.#partitions.values()) set.clear();
    for (const row of rows) {
      const day = partitionDay(row.child);
      if (day !== undefined) this.#partitions.get(row.parent)?.add(day);
    }
  }

  /**
   * Creates the day partitions a batch needs, in a transaction of their own before the batch's:
   * an empty partition left by a failed batch is harmless, and the batch transaction then holds
   * no locks on the catalog.
   */
  async #ensurePartitions(table: 'ticks' | 'candles', days: readonly number[]): Promise<void> {
    const known = this.#partitions.get(table)!;
    const missing = days.filter((day) => !known.has(day));
    if (missing.length === 0) return;
    const client = await this.#requirePool().connect();
    try {
      await client.query('BEGIN');
      try {
        // Serialises partition DDL across processes: concurrent CREATE ... IF NOT EXISTS can
        // still collide in the catalog.
        await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [
          `streamlines:partitions:${this.#schema}`,
        ]);
        for (const day of missing) {
          await client.query(
            `CREATE TABLE IF NOT EXISTS ${ident(partitionName(table, day))} PARTITION OF ${table}
             FOR VALUES FROM (${day * DAY_MS}) TO (${(day + 1) * DAY_MS})`,
          );
        }
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    } finally {
      client.release();
    }
    for (const day of missing) known.add(day);
  }
}

/**
 * An error that means the server cannot be reached, not that the query is wrong: refused or reset
 * connections, the server shutting down (57P01..57P03), SQLSTATE class 08 (connection exception),
 * or node-postgres giving up on a dead connection.
 */
export function isConnectionError(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code === 'string') {
    if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE'].includes(code))
      return true;
    if (/^(08|57P0[123])/.test(code)) return true;
  }
  return (
    typeof message === 'string' &&
    /Connection terminated|connection timeout|Client has encountered a connection error/i.test(message)
  );
}

/** The UTC days (ts / 1 day, floored) a batch's records fall in; non-integer ts are left to fail in the INSERT. */
function daysOf(records: readonly { ts: number }[]): number[] {
  const days = new Set<number>();
  for (const record of records) {
    if (Number.isSafeInteger(record.ts)) days.add(Math.floor(record.ts / DAY_MS));
  }
  return [...days];
}

/**
 * The fencing check of a write with `previous`, run first in its transaction. An existing row is
 * locked FOR UPDATE, so two writers of one checkpoint serialise here and the second sees the
 * first's offsets. A missing row cannot be locked, so it is claimed by inserting the batch's
 * checkpoint at once: a concurrent first writer blocks on the key and then inserts nothing.
 * Resolves true when that insert already wrote the checkpoint.
 */
async function fenceCheckpoint(
  client: pg.PoolClient,
  name: string,
  previous: Record<number, number>,
  checkpointValues: unknown[],
): Promise<boolean> {
  const selectSql = 'SELECT offsets FROM checkpoints WHERE name = $1';
  const { rows } = await client.query<{ offsets: string }>(`${selectSql} FOR UPDATE`, [name]);
  const stored = rows[0] === undefined ? {} : (JSON.parse(rows[0].offsets) as Checkpoint['offsets']);
  if (!sameOffsets(stored, previous)) throw new CheckpointConflictError(name, previous, stored);
  if (rows[0] !== undefined) return false;
  const inserted = await client.query(
    'INSERT INTO checkpoints (name, offsets, state) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING',
    checkpointValues,
  );
  if (inserted.rowCount === 1) return true;
  // Read committed: this new statement sees the row the other writer committed.
  const now = await client.query<{ offsets: string }>(selectSql, [name]);
  const theirs = now.rows[0] === undefined ? {} : (JSON.parse(now.rows[0].offsets) as Checkpoint['offsets']);
  throw new CheckpointConflictError(name, previous, theirs);
}

/** Streams COPY text into a table on the client's open transaction. */
async function copyInto(client: pg.PoolClient, sql: string, text: string | Buffer): Promise<void> {
  const stream = client.query(copyFrom(sql));
  await new Promise<void>((resolve, reject) => {
    stream.on('error', reject);
    stream.on('finish', resolve);
    stream.end(text);
  });
}

/** One upsert for the last tick (largest seq) of each symbol in the batch, or undefined if none. */
function latestUpsert(ticks: readonly ProcessedTick[]): { text: string; values: unknown[][] } | undefined {
  const rows = lastTickPerSymbol(ticks);
  if (rows.length === 0) return undefined;
  return {
    text: `INSERT INTO latest (symbol, seq, source, ts, price, size, ma_short, ma_long)
      SELECT * FROM unnest($1::TEXT[], $2::BIGINT[], $3::TEXT[], $4::BIGINT[], $5::FLOAT8[], $6::FLOAT8[],
                           $7::FLOAT8[], $8::FLOAT8[])
      ON CONFLICT (symbol) DO UPDATE SET
        seq = excluded.seq, source = excluded.source, ts = excluded.ts, price = excluded.price,
        size = excluded.size, ma_short = excluded.ma_short, ma_long = excluded.ma_long
      WHERE excluded.seq > latest.seq`,
    values: [
      rows.map((tick) => tick.symbol),
      rows.map((tick) => tick.seq),
      rows.map((tick) => tick.source),
      rows.map((tick) => tick.ts),
      rows.map((tick) => tick.price),
      rows.map((tick) => tick.size),
      rows.map((tick) => tick.maShort ?? null),
      rows.map((tick) => tick.maLong ?? null),
    ],
  };
}

interface KeyRow {
  id: string;
  name: string;
  role: ApiKeyRole;
  created_at: number;
  revoked_at: number | null;
}

function toKeyRecord(row: KeyRow): ApiKeyRecord {
  return { id: row.id, name: row.name, role: row.role, createdAt: row.created_at, revokedAt: row.revoked_at };
}
