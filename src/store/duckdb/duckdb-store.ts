/**
 * The embedded store: one DuckDB file (or `:memory:`). Each batch is one transaction, bulk rows
 * go in through appenders, and reads run on their own connection so they only ever see committed
 * batches (docs/design.md, Delivery).
 */
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  type DuckDBAppender,
  type DuckDBConnection,
  type DuckDBDataChunk,
  DuckDBInstance,
  type DuckDBValue,
} from '@duckdb/node-api';
import type {
  Alert,
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
  sameOffsets,
} from '../store.ts';
import { CheckpointStateFiles, readCheckpoints } from './checkpoint-states.ts';
import { buildChunks, CHUNK_ROWS, type Column } from './chunk-builder.ts';
import { applyMigrations, MIGRATIONS, type Migration } from './migrations.ts';
import {
  ALERT_READ_COLUMNS,
  alertFromRow,
  CANDLE_READ_COLUMNS,
  candleFromRow,
  INDICATOR_READ_COLUMNS,
  indicatorFromRow,
  num,
  numOrNull,
  TICK_READ_COLUMNS,
  tickFromRow,
} from './rows.ts';

export interface DuckDbStoreOptions {
  /** A database file (its directory is created), or `:memory:`. */
  path: string;
  /** The schema; tests append to it to check that only pending migrations run. */
  migrations?: readonly Migration[];
  /**
   * DuckDB's buffer pool cap, bytes or a DuckDB size such as `'256MB'`. Default: from the
   * machine (`defaultDuckDbMemoryLimitBytes`); `STREAMLINES_DUCKDB_MEMORY` overrides both.
   */
  memoryLimit?: number | string;
}

const MIB = 1024 * 1024;

/**
 * The default cap of DuckDB's buffer pool: 1/32 of the machine's memory, within 256..512 MiB. At
 * 192 MiB a 20 M-tick soak ran DuckDB out of memory in a commit, which invalidates the database
 * until it is reopened; 512 MiB (the old fixed cap) never did. docs/operations.md has the numbers.
 */
export function defaultDuckDbMemoryLimitBytes(totalMemoryBytes: number = os.totalmem()): number {
  return Math.min(512 * MIB, Math.max(256 * MIB, Math.floor(totalMemoryBytes / 32 / MIB) * MIB));
}

/**
 * The ids of the texts in the bulk tables' id columns (symbols, sources, sides, intervals), as the
 * `text_ids` table holds them (migrations.ts, version 4). An id is assigned when a batch is built
 * and stays pending until a transaction that inserts it into `text_ids` commits: every write
 * inserts all pending ids with its rows, so no committed row has an id the table lacks, whichever
 * batch first used it and whether or not that batch committed.
 */
export class TextIds {
  readonly #ids = new Map<string, number>();
  readonly #pending = new Map<string, number>();
  #next = 1;

  /** Starts from the committed dictionary, as `text_ids` rows [id, text]. */
  load(rows: readonly (readonly [number, string])[]): void {
    this.#ids.clear();
    this.#pending.clear();
    this.#next = 1;
    for (const [id, text] of rows) {
      this.#ids.set(text, id);
      if (id >= this.#next) this.#next = id + 1;
    }
  }

  /** The id of `text`, assigned (pending) on first sight. */
  of(text: string): number {
    const id = this.#ids.get(text);
    return id === undefined ? this.#assign(text) : id;
  }

  /** The id of `text` if it has one, for reads: an unknown text has no rows. */
  find(text: string): number | undefined {
    return this.#ids.get(text);
  }

  /** The ids not yet committed, as [text, id]: the next write inserts them. */
  pending(): [string, number][] {
    return [...this.#pending];
  }

  /** These ids are in `text_ids` now. */
  committed(entries: readonly [string, number][]): void {
    for (const [text] of entries) this.#pending.delete(text);
  }

  #assign(text: string): number {
    const id = this.#next++;
    if (id > 2 ** 31 - 1) throw new RangeError('text_ids is full: more than 2^31 - 1 distinct texts');
    this.#ids.set(text, id);
    this.#pending.set(text, id);
    return id;
  }
}

// Column order must match the CREATE TABLE order in migrations.ts: appenders are positional.
// The tick and candle columns are exported for bench/duckdb-store.ts.
export const tickColumns = (ids: TextIds): readonly Column<ProcessedTick>[] => [
  { kind: 'bigint', value: (tick) => tick.seq },
  { kind: 'integer', value: (tick) => ids.of(tick.source) },
  { kind: 'integer', value: (tick) => ids.of(tick.symbol) },
  { kind: 'bigint', value: (tick) => tick.ts },
  { kind: 'double', value: (tick) => tick.price },
  { kind: 'double', value: (tick) => tick.size },
  { kind: 'varchar', value: (tick) => tick.id },
  { kind: 'integer', value: (tick) => (tick.side === undefined ? undefined : ids.of(tick.side)) },
  { kind: 'bigint', value: (tick) => tick.receivedAt },
  { kind: 'double', value: (tick) => tick.maShort },
  { kind: 'double', value: (tick) => tick.maLong },
  { kind: 'boolean', value: (tick) => tick.late },
];
export const candleColumns = (ids: TextIds): readonly Column<Candle>[] => [
  { kind: 'integer', value: (candle) => ids.of(candle.symbol) },
  { kind: 'integer', value: (candle) => ids.of(candle.interval) },
  { kind: 'bigint', value: (candle) => candle.ts },
  { kind: 'double', value: (candle) => candle.open },
  { kind: 'double', value: (candle) => candle.high },
  { kind: 'double', value: (candle) => candle.low },
  { kind: 'double', value: (candle) => candle.close },
  { kind: 'double', value: (candle) => candle.volume },
  { kind: 'bigint', value: (candle) => candle.trades },
  { kind: 'double', value: (candle) => candle.vwap },
];
const indicatorColumns = (ids: TextIds): readonly Column<IndicatorPoint>[] => [
  { kind: 'integer', value: (point) => ids.of(point.symbol) },
  { kind: 'integer', value: (point) => ids.of(point.interval) },
  { kind: 'bigint', value: (point) => point.ts },
  { kind: 'double', value: (point) => point.sma20 },
  { kind: 'double', value: (point) => point.ema20 },
  { kind: 'double', value: (point) => point.rsi14 },
  { kind: 'double', value: (point) => point.bbUpper },
  { kind: 'double', value: (point) => point.bbMiddle },
  { kind: 'double', value: (point) => point.bbLower },
];

/** The base table of each event-time table: `ticks`, `candles` and `indicators` are views. */
const BASE_TABLE = {
  ticks: 'tick_rows',
  candles: 'candle_rows',
  indicators: 'indicator_rows',
  alerts: 'alerts',
} as const;
const ALERT_COLUMNS: readonly Column<Alert>[] = [
  { kind: 'bigint', value: (alert) => alert.seq },
  { kind: 'bigint', value: (alert) => alert.ts },
  { kind: 'varchar', value: (alert) => alert.symbol },
  { kind: 'varchar', value: (alert) => alert.kind },
  { kind: 'double', value: (alert) => alert.price },
  { kind: 'double', value: (alert) => alert.threshold },
  { kind: 'varchar', value: (alert) => alert.message },
];
const DEAD_LETTER_COLUMNS: readonly Column<DeadLetter>[] = [
  { kind: 'bigint', value: (deadLetter) => deadLetter.seq },
  { kind: 'varchar', value: (deadLetter) => deadLetter.source },
  { kind: 'varchar', value: (deadLetter) => deadLetter.reason },
  { kind: 'varchar', value: (deadLetter) => deadLetter.detail },
  { kind: 'varchar', value: (deadLetter) => deadLetter.raw },
  { kind: 'bigint', value: (deadLetter) => deadLetter.receivedAt },
];
/** The per-symbol last tick of a batch, staged so `latest` is upserted in one statement. */
const LATEST_COLUMNS: readonly Column<ProcessedTick>[] = [
  { kind: 'varchar', value: (tick) => tick.symbol },
  { kind: 'bigint', value: (tick) => tick.seq },
  { kind: 'varchar', value: (tick) => tick.source },
  { kind: 'bigint', value: (tick) => tick.ts },
  { kind: 'double', value: (tick) => tick.price },
  { kind: 'double', value: (tick) => tick.size },
  { kind: 'double', value: (tick) => tick.maShort },
  { kind: 'double', value: (tick) => tick.maLong },
];

/**
 * The checkpoint goes in through an appender too, after its old row is deleted (see write): name,
 * offsets, and either the state inline (in memory) or the seq of its file (checkpoint-states.ts).
 */
const CHECKPOINT_COLUMNS: readonly Column<readonly [string, string, string | null, number | null]>[] = [
  { kind: 'varchar', value: (row) => row[0] },
  { kind: 'varchar', value: (row) => row[1] },
  { kind: 'varchar', value: (row) => row[2] },
  { kind: 'bigint', value: (row) => row[3] },
];

/**
 * Run as plain SQL, never prepared ahead: this DuckDB build returns corrupt rows from a statement
 * prepared while its source table was empty (see #read), and the stage is empty between batches.
 */
const UPSERT_LATEST_SQL = `
  INSERT INTO latest SELECT * FROM latest_stage
  ON CONFLICT (symbol) DO UPDATE SET
    seq = excluded.seq, source = excluded.source, ts = excluded.ts, price = excluded.price,
    size = excluded.size, ma_short = excluded.ma_short, ma_long = excluded.ma_long
  WHERE excluded.seq > latest.seq;
  DELETE FROM latest_stage;
`;

/**
 * Data chunks (2 048 rows each) built, and appended per `flushSync`, between two turns of the event
 * loop: about 4 000 rows, 2–3 ms of the main thread. A live tick waits for at most one slice: built
 * in one go, a commit's chunks (20 000 ticks a second at a live 20 000 ticks/s) held it for 20–30 ms,
 * and a flush of 8 chunks for 8–13 ms (docs/benchmarks.md, WebSocket latency).
 */
const CHUNKS_PER_FLUSH = 2;

type BulkTable =
  | 'tick_rows'
  | 'candle_rows'
  | 'indicator_rows'
  | 'alerts'
  | 'dead_letters'
  | 'latest_stage'
  | 'checkpoints';

/** A batch turned into data chunks, ready to append. */
type BatchChunks = [table: BulkTable, chunks: DuckDBDataChunk[]][];

/** A table's rows and how they become columns. */
// biome-ignore lint/suspicious/noExplicitAny: each entry pairs its own row type with its columns
type BatchRows = [table: BulkTable, columns: readonly Column<any>[], rows: readonly unknown[]][];

/**
 * The rows as data chunks, CHUNKS_PER_FLUSH chunks at a time with a turn of the event loop before
 * each (the first too: the caller's turn has the processor's snapshot and the state's JSON in it).
 */
async function buildBatchChunks(tables: BatchRows): Promise<BatchChunks> {
  const sliceRows = CHUNKS_PER_FLUSH * CHUNK_ROWS;
  const built: BatchChunks = [];
  let sinceYield = sliceRows;
  for (const [table, columns, rows] of tables) {
    const chunks: DuckDBDataChunk[] = [];
    for (let first = 0; first < rows.length; first += sliceRows) {
      const slice = rows.length <= sliceRows ? rows : rows.slice(first, first + sliceRows);
      if (sinceYield + slice.length > sliceRows) {
        await new Promise(setImmediate);
        sinceYield = 0;
      }
      chunks.push(...buildChunks(columns, slice));
      sinceYield += slice.length;
    }
    built.push([table, chunks]);
  }
  return built;
}

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

/** A SQL string literal: quotes doubled, so no input can end the literal early. */
function sqlString(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/** A range read: `SELECT <columns> FROM <table> WHERE <filters>` and its ascending order keys. */
interface RangeSql {
  base: string;
  /** Candles and indicators are unique per ts; ticks and alerts tie-break on seq. */
  orderKeys: readonly string[];
}

/** The DuckDB store. Construct, `open()`, then use; `close()` releases the file. */
export class DuckDbStore implements Store {
  readonly #path: string;
  readonly #migrations: readonly Migration[];
  readonly #memoryLimit: string;
  #instance: DuckDBInstance | undefined;
  #writer: DuckDBConnection | undefined;
  #reader: DuckDBConnection | undefined;
  readonly #writes = new SerialQueue();
  readonly #reads = new SerialQueue();
  readonly #appenders = new Map<BulkTable, DuckDBAppender>();
  /** Checkpoint states beside a database file; undefined in memory, where they stay in the rows. */
  readonly #stateFiles: CheckpointStateFiles | undefined;
  /** The largest committed tick ts: only this process writes the file, so it is kept, not queried. */
  #newestTickTs: number | undefined;
  readonly #ids = new TextIds();
  readonly #tickColumns = tickColumns(this.#ids);
  readonly #candleColumns = candleColumns(this.#ids);
  readonly #indicatorColumns = indicatorColumns(this.#ids);
  /** Versions the last `open()` applied (for tests and logs). */
  appliedMigrations: readonly number[] = [];

  constructor(options: DuckDbStoreOptions) {
    this.#path = options.path;
    this.#migrations = options.migrations ?? MIGRATIONS;
    this.#stateFiles = this.#path === ':memory:' ? undefined : new CheckpointStateFiles(this.#path);
    const limit = options.memoryLimit ?? defaultDuckDbMemoryLimitBytes();
    this.#memoryLimit =
      process.env.STREAMLINES_DUCKDB_MEMORY ??
      (typeof limit === 'number' ? `${Math.floor(limit / MIB)}MiB` : limit);
  }

  async open(): Promise<void> {
    if (this.#instance !== undefined) throw new Error('DuckDbStore is already open');
    if (this.#path !== ':memory:') await mkdir(path.dirname(path.resolve(this.#path)), { recursive: true });
    // DuckDB's default buffer pool is 80 % of RAM and fills with cached pages as the file grows: cap it
    // so a long replay keeps a flat footprint (docs/design.md, Targets), and keep its threads to the machine's cores.
    const instance = await DuckDBInstance.create(this.#path, {
      memory_limit: this.#memoryLimit,
    });
    try {
      const writer = await instance.connect();
      this.appliedMigrations = await applyMigrations(writer, this.#migrations);
      if (this.#stateFiles !== undefined) {
        const committed = (
          await writer.runAndReadAll('SELECT name, state_seq FROM checkpoints WHERE state_seq IS NOT NULL')
        ).getRows();
        await this.#stateFiles.open(new Map(committed.map(([name, seq]) => [name as string, num(seq!)])));
      }
      // A temp table is private to the writer connection and never reaches the file.
      await writer.run(`CREATE TEMP TABLE latest_stage AS SELECT * FROM latest LIMIT 0`);
      const texts = (await writer.runAndReadAll('SELECT id, text FROM text_ids')).getRows();
      this.#ids.load(texts.map(([id, text]) => [num(id!), text as string]));
      const newest = (await writer.runAndReadAll('SELECT max(ts) FROM tick_rows')).getRows()[0]?.[0];
      this.#newestTickTs = newest === null || newest === undefined ? undefined : num(newest);
      this.#writer = writer;
      this.#reader = await instance.connect();
      this.#instance = instance;
    } catch (error) {
      this.#writer?.closeSync();
      this.#writer = undefined;
      instance.closeSync();
      throw error;
    }
  }

  async write(batch: StoreBatch): Promise<void> {
    const writer = this.#connection(this.#writer);
    // Built from call time on, outside the queue: a caller that does not wait for the previous write
    // gets this JS work done while DuckDB commits that one on its own thread. Anything that can
    // not be stored (a fractional ts, an unserialisable state) fails before BEGIN.
    const lastTicks = lastTickPerSymbol(batch.ticks);
    const chunksBuilt = buildBatchChunks([
      ['tick_rows', this.#tickColumns, batch.ticks],
      ['candle_rows', this.#candleColumns, batch.candles],
      ['indicator_rows', this.#indicatorColumns, batch.indicators],
      ['alerts', ALERT_COLUMNS, batch.alerts],
      ['dead_letters', DEAD_LETTER_COLUMNS, batch.deadLetters],
      ['latest_stage', LATEST_COLUMNS, lastTicks],
    ]);
    chunksBuilt.catch(() => undefined);
    const name = batch.checkpoint.name;
    const stateJson = JSON.stringify(batch.checkpoint.state ?? null);
    const stateFiles = this.#stateFiles;
    const stateSeq = stateFiles?.nextSeq();
    const checkpointChunks = buildChunks(CHECKPOINT_COLUMNS, [
      [
        name,
        JSON.stringify(batch.checkpoint.offsets),
        stateSeq === undefined ? stateJson : null,
        stateSeq ?? null,
      ],
    ]);
    // One round trip for the statements: each costs a hop to DuckDB's threads, which on a busy
    // machine is more than the statement. The checkpoint is replaced by DELETE and a fresh row,
    // never UPDATEd: this DuckDB takes seconds to UPDATE a VARCHAR of a megabyte (the processor
    // state), and milliseconds to delete and append it.
    const nameSql = typeof name === 'string' ? sqlString(name) : 'NULL';
    const statements = `${lastTicks.length > 0 ? UPSERT_LATEST_SQL : ''}
      DELETE FROM checkpoints WHERE name = ${nameSql};`;
    const previous = batch.checkpoint.previous;
    let batchNewestTs: number | undefined;
    for (const tick of batch.ticks) {
      if (batchNewestTs === undefined || tick.ts > batchNewestTs) batchNewestTs = tick.ts;
    }
    // The state file is written while the previous batch commits, and is durable before this
    // batch's transaction begins. The catch only keeps an early failure from going unhandled
    // until the queue reaches this batch and awaits it.
    const stateWritten = stateSeq === undefined ? undefined : stateFiles!.write(name, stateSeq, stateJson);
    stateWritten?.catch(() => undefined);
    return this.#writes.run(async () => {
      if (stateWritten !== undefined) {
        await stateWritten.catch(async (error: unknown) => {
          await stateFiles!.discard(name, stateSeq!);
          throw error;
        });
      }
      const chunks = await chunksBuilt.catch(async (error: unknown) => {
        if (stateSeq !== undefined) await stateFiles!.discard(name, stateSeq);
        throw error;
      });
      let committing = false;
      // Every id assigned and not yet committed, this batch's and any a failed batch left.
      const newIds = this.#ids.pending();
      await writer.run('BEGIN TRANSACTION');
      try {
        // One process owns a DuckDB file and its writes are queued, so reading the stored
        // offsets first in the same transaction is enough to fence; nothing is appended yet.
        if (previous !== undefined) {
          const rows = (
            await writer.runAndReadAll(`SELECT offsets FROM checkpoints WHERE name = ${nameSql}`)
          ).getRows();
          const stored =
            rows[0] === undefined ? {} : (JSON.parse(rows[0][0] as string) as Checkpoint['offsets']);
          if (!sameOffsets(stored, previous)) throw new CheckpointConflictError(name, previous, stored);
        }
        // Appenders join the connection's open transaction (checked in duckdb-store.test.ts):
        // what they flush is rolled back with everything else.
        if (newIds.length > 0) {
          const values = newIds.map(([text, id]) => `(${id}, ${sqlString(text)})`).join(', ');
          await writer.run(`INSERT OR IGNORE INTO text_ids VALUES ${values}`);
        }
        for (const [table, tableChunks] of chunks) await this.#append(table, tableChunks);
        await writer.run(statements);
        await this.#append('checkpoints', checkpointChunks);
        committing = true;
        await writer.run('COMMIT');
        this.#ids.committed(newIds);
        if (batchNewestTs !== undefined && !(batchNewestTs <= (this.#newestTickTs ?? -Infinity))) {
          this.#newestTickTs = batchNewestTs;
        }
      } catch (error) {
        this.#discardAppenders();
        await writer.run('ROLLBACK').catch(() => undefined);
        // A failed COMMIT may still have reached the disk: its file stays, and the next open
        // removes it if no row names it.
        if (stateSeq !== undefined && !committing) await stateFiles!.discard(name, stateSeq);
        throw error;
      }
      if (stateSeq !== undefined) await stateFiles!.committed(name, stateSeq);
    });
  }

  async checkpoint(name: string): Promise<Checkpoint | undefined> {
    const reader = this.#connection(this.#reader);
    const [stored] = await this.#reads.run(() => readCheckpoints(reader, { name }));
    return stored === undefined ? undefined : { offsets: stored.offsets, state: stored.state };
  }

  async symbols(): Promise<SymbolSummary[]> {
    const rows = await this.#read('SELECT symbol, price, ts FROM latest ORDER BY symbol');
    return rows.map((row) => ({
      symbol: row[0] as string,
      lastPrice: row[1] as number,
      lastTs: num(row[2]!),
    }));
  }

  async latest(symbol: string): Promise<LatestTick | undefined> {
    const rows = await this.#read(
      `SELECT symbol, ts, price, size, ma_short, ma_long, source FROM latest WHERE symbol = ${sqlString(symbol)}`,
    );
    const row = rows[0];
    if (row === undefined) return undefined;
    return {
      symbol: row[0] as string,
      ts: num(row[1]!),
      price: row[2] as number,
      size: row[3] as number,
      maShort: numOrNull(row[4]!),
      maLong: numOrNull(row[5]!),
      source: row[6] as string,
    };
  }

  async ticks(symbol: string, range: RangeQuery): Promise<StoredTick[]> {
    const rows = await this.#readRange(
      {
        base: `SELECT ${TICK_READ_COLUMNS} FROM tick_rows WHERE symbol_id = ${this.#idFilter(symbol)}`,
        orderKeys: ['ts', 'seq'],
      },
      range,
    );
    return rows.map(tickFromRow);
  }

  async candles(symbol: string, interval: Interval, range: RangeQuery): Promise<Candle[]> {
    const rows = await this.#readRange(
      {
        base: `SELECT ${CANDLE_READ_COLUMNS} FROM candle_rows
               WHERE symbol_id = ${this.#idFilter(symbol)} AND interval_id = ${this.#idFilter(interval)}`,
        orderKeys: ['ts'],
      },
      range,
    );
    return rows.map((row) => candleFromRow(symbol, interval, row));
  }

  async indicators(symbol: string, interval: Interval, range: RangeQuery): Promise<IndicatorPoint[]> {
    const rows = await this.#readRange(
      {
        base: `SELECT ${INDICATOR_READ_COLUMNS} FROM indicator_rows
               WHERE symbol_id = ${this.#idFilter(symbol)} AND interval_id = ${this.#idFilter(interval)}`,
        orderKeys: ['ts'],
      },
      range,
    );
    return rows.map((row) => indicatorFromRow(symbol, interval, row));
  }

  async alerts(query: AlertQuery): Promise<Alert[]> {
    const filters: string[] = ['TRUE'];
    if (query.symbol !== undefined) filters.push(`symbol = ${sqlString(query.symbol)}`);
    if (query.kind !== undefined) filters.push(`kind = ${sqlString(query.kind)}`);
    const rows = await this.#readRange(
      {
        base: `SELECT ${ALERT_READ_COLUMNS} FROM alerts WHERE ${filters.join(' AND ')}`,
        orderKeys: ['ts', 'seq'],
      },
      query,
    );
    return rows.map(alertFromRow);
  }

  async deadLetters(limit: number): Promise<DeadLetter[]> {
    const rows = await this.#read(
      `SELECT * FROM (
         SELECT seq, source, reason, detail, raw, received_at FROM dead_letters ORDER BY seq DESC
         LIMIT ${normalizeLimit(limit)}
       ) ORDER BY seq`,
    );
    return rows.map((row) => ({
      seq: num(row[0]!),
      source: row[1] as string,
      reason: row[2] as RejectReason,
      detail: row[3] as string,
      raw: row[4] as string,
      receivedAt: num(row[5]!),
    }));
  }

  async createKey(key: NewApiKey): Promise<void> {
    const writer = this.#connection(this.#writer);
    // Checked here rather than left to DuckDB so a bad createdAt cannot become a SQL fragment.
    if (!Number.isSafeInteger(key.createdAt)) throw new Error('key createdAt must be an integer (ms)');
    const sql = `INSERT INTO api_keys (id, name, role, hash, created_at, revoked_at) VALUES (
      ${sqlString(key.id)}, ${sqlString(key.name)}, ${sqlString(key.role)}, ${sqlString(key.hash)},
      ${key.createdAt}, NULL)`;
    await this.#writes.run(() => writer.run(sql));
  }

  async listKeys(): Promise<ApiKeyRecord[]> {
    const rows = await this.#read(
      'SELECT id, name, role, created_at, revoked_at FROM api_keys ORDER BY created_at, id',
    );
    return rows.map(toKeyRecord);
  }

  async findKeyByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    const rows = await this.#read(
      `SELECT id, name, role, created_at, revoked_at FROM api_keys
       WHERE hash = ${sqlString(hash)} AND revoked_at IS NULL`,
    );
    return rows[0] === undefined ? undefined : toKeyRecord(rows[0]);
  }

  async revokeKey(id: string, revokedAt: number = Date.now()): Promise<boolean> {
    const writer = this.#connection(this.#writer);
    if (!Number.isSafeInteger(revokedAt)) throw new Error('revokedAt must be an integer (ms)');
    return this.#writes.run(async () => {
      const result = await writer.run(
        `UPDATE api_keys SET revoked_at = ${revokedAt} WHERE id = ${sqlString(id)} AND revoked_at IS NULL`,
      );
      return result.rowsChanged > 0;
    });
  }

  /** The memory limit DuckDB runs with, as it prints it (e.g. `192.0 MiB`), for logs and tests. */
  async memoryLimitSetting(): Promise<string> {
    const rows = await this.#read("SELECT current_setting('memory_limit')");
    return String(rows[0]?.[0]);
  }

  async newestTickTs(): Promise<number | undefined> {
    this.#connection(this.#writer);
    return this.#newestTickTs;
  }

  async storedSpan(): Promise<StoredSpan> {
    const rows = await this.#read(
      `SELECT (SELECT min(ts) FROM tick_rows),
              least((SELECT min(ts) FROM candle_rows), (SELECT min(ts) FROM indicator_rows), (SELECT min(ts) FROM alerts))`,
    );
    const [oldestTick, oldestAggregate] = rows[0] ?? [null, null];
    const span: StoredSpan = {};
    if (oldestTick !== null && oldestTick !== undefined) span.oldestTickTs = num(oldestTick);
    if (oldestAggregate !== null && oldestAggregate !== undefined)
      span.oldestAggregateTs = num(oldestAggregate);
    return span;
  }

  async deleteExpired(cutoffs: ExpiryCutoffs): Promise<ExpiryResult> {
    const writer = this.#connection(this.#writer);
    const plan = expiryPlan(cutoffs);
    const bound = deadLetterBound(cutoffs);
    const result = noneExpired();
    if (plan.length === 0 && bound === undefined) return result;
    // Deleted row groups go back to DuckDB's free list at the next checkpoint and are reused by
    // the appenders, so the file stops growing once retention has caught up (docs/operations.md).
    return this.#writes.run(async () => {
      await writer.run('BEGIN TRANSACTION');
      try {
        for (const [table, beforeMs] of plan) {
          result[table] = Number(
            (await writer.run(`DELETE FROM ${BASE_TABLE[table]} WHERE ts < ${beforeMs}`)).rowsChanged,
          );
        }
        if (bound !== undefined) {
          result.deadLetters = Number((await writer.run(deadLetterExpirySql(bound))).rowsChanged);
        }
        await writer.run('COMMIT');
      } catch (error) {
        await writer.run('ROLLBACK').catch(() => undefined);
        throw error;
      }
      return result;
    });
  }

  /**
   * A new connection to this store's database, for work beside the store's own (the lake writes
   * Parquet from the hot tables and reads them together with the lake). The caller closes it.
   */
  async connect(): Promise<DuckDBConnection> {
    const instance = this.#instance;
    if (instance === undefined) throw new Error('DuckDbStore is not open: call open() first');
    return instance.connect();
  }

  /** Waits for queued work, then releases connections and the file. Safe to call twice. */
  async close(): Promise<void> {
    const instance = this.#instance;
    if (instance === undefined) return;
    this.#instance = undefined;
    await Promise.all([this.#writes.idle(), this.#reads.idle()]);
    for (const appender of this.#appenders.values()) appender.closeSync();
    this.#appenders.clear();
    this.#writer?.closeSync();
    this.#reader?.closeSync();
    this.#writer = undefined;
    this.#reader = undefined;
    instance.closeSync();
  }

  #connection(connection: DuckDBConnection | undefined): DuckDBConnection {
    if (connection === undefined || this.#instance === undefined) {
      throw new Error('DuckDbStore is not open: call open() first');
    }
    return connection;
  }

  /**
   * The id to filter a read on: the store's own reads skip the views' joins. A text with no id has
   * no rows, and no id is 0.
   */
  #idFilter(text: string): number {
    return this.#ids.find(text) ?? 0;
  }

  /** Appends through a long-lived appender; flushing inside the transaction makes the rows part of it. */
  async #append(table: BulkTable, chunks: readonly DuckDBDataChunk[]): Promise<void> {
    if (chunks.length === 0) return;
    let appender = this.#appenders.get(table);
    if (appender === undefined) {
      appender =
        table === 'latest_stage'
          ? await this.#writer!.createAppender(table, 'main', 'temp')
          : await this.#writer!.createAppender(table);
      this.#appenders.set(table, appender);
    }
    // flushSync is DuckDB's append work on this thread: in slices, with a turn of the event loop
    // between, so a commit of 150 000 ticks does not hold HTTP and WebSocket work for its whole length.
    for (let first = 0; first < chunks.length; first += CHUNKS_PER_FLUSH) {
      if (first > 0) await new Promise(setImmediate);
      for (const chunk of chunks.slice(first, first + CHUNKS_PER_FLUSH)) appender.appendDataChunk(chunk);
      appender.flushSync();
    }
  }

  /** After a failure an appender may hold rows of the failed batch: drop them all and start afresh. */
  #discardAppenders(): void {
    for (const appender of this.#appenders.values()) {
      try {
        appender.clear();
        appender.closeSync();
      } catch {
        // An appender whose flush failed may refuse to close; it holds nothing we want.
      }
    }
    this.#appenders.clear();
  }

  /**
   * Runs a read on the reader connection, planned in the same transaction that executes it.
   * Reads are never prepared ahead: DuckDB 1.5.6 (node-api 1.5.6-r.1) returns corrupt strings and
   * BIGINTs from a statement with ORDER BY prepared before the table's data changed (the stale
   * plan keeps the old column statistics); the conformance test "reads made on an empty store"
   * catches it. A prepare-then-run here would race the writer's commits, so values go in as
   * escaped literals instead.
   */
  #read(sql: string): Promise<DuckDBValue[][]> {
    const reader = this.#connection(this.#reader);
    return this.#reads.run(async () => (await reader.runAndReadAll(sql)).getRows());
  }

  /** RangeQuery semantics (store.ts): first `limit` from `from`, else the last `limit` up to `to`. */
  #readRange(query: RangeSql, range: RangeQuery): Promise<DuckDBValue[][]> {
    // normalizeRange leaves only integers, so they are safe to inline.
    const { from, to, limit } = normalizeRange(range);
    let where = query.base;
    if (from !== undefined) where += ` AND ts >= ${from}`;
    if (to !== undefined) where += ` AND ts <= ${to}`;
    const ascending = query.orderKeys.join(', ');
    if (from !== undefined) return this.#read(`${where} ORDER BY ${ascending} LIMIT ${limit}`);
    const descending = query.orderKeys.map((key) => `${key} DESC`).join(', ');
    return this.#read(`SELECT * FROM (${where} ORDER BY ${descending} LIMIT ${limit}) ORDER BY ${ascending}`);
  }
}

function toKeyRecord(row: DuckDBValue[]): ApiKeyRecord {
  return {
    id: row[0] as string,
    name: row[1] as string,
    role: row[2] as ApiKeyRole,
    createdAt: num(row[3]!),
    revokedAt: row[4] === null ? null : num(row[4]!),
  };
}
