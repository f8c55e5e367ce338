/**
 * A Store decorator that answers history from the hot store and the lake together (docs/design.md, Retention and history), so
 * an answer never depends on where its rows live: a range that reaches below what the lake holds
 * for a symbol is read as the union of the hot table and the lake's Parquet parts of the days in
 * range. A row that is in both (written to the lake, not yet deleted by retention) is the same row
 * in both, so SQL `UNION` keeps it once. Reads that the hot store alone can answer (the lake holds
 * nothing of the symbol, or the range starts where the lake ends) never touch the lake.
 *
 * The union runs in the hot store's own DuckDB database (the embedded store), on a connection of
 * its own; writes, checkpoints, keys and the latest prices go to the inner store unchanged.
 */
import type { DuckDBConnection, DuckDBValue } from '@duckdb/node-api';
import type { Alert, Candle, DeadLetter, IndicatorPoint, Interval } from '../core/records.ts';
import {
  ALERT_READ_COLUMNS,
  alertFromRow,
  CANDLE_READ_COLUMNS,
  candleFromRow,
  INDICATOR_READ_COLUMNS,
  indicatorFromRow,
  TICK_READ_COLUMNS,
  tickFromRow,
} from '../store/duckdb/rows.ts';
import { normalizeRange } from '../store/range-query.ts';
import type {
  AlertQuery,
  ApiKeyRecord,
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
} from '../store/store.ts';
import { sqlString } from './lake-source.ts';
import type { LakeManifest } from './lake-writer.ts';
import { DAY_MS, LAKE_KINDS, type LakeFile, type LakeKind, listLakeFiles } from './layout.ts';

export interface LakeStoreOptions {
  lakePath: string;
  /** The lake's current manifest: what it holds per symbol. */
  manifest: () => LakeManifest;
  /** Runs after the inner store opened (the embedded lake opens its connections there). */
  afterOpen?: () => Promise<void>;
  /** Runs before the inner store closes (the embedded lake releases its connections there). */
  beforeClose?: () => Promise<void>;
}

/** The decorator; call `refresh()` after the lake changed (the writer's onPass does). */
export class LakeStore implements Store {
  readonly #inner: Store;
  #connection: DuckDBConnection | undefined;
  readonly #lakePath: string;
  readonly #manifest: () => LakeManifest;
  readonly #afterOpen: (() => Promise<void>) | undefined;
  readonly #beforeClose: (() => Promise<void>) | undefined;
  #files = new Map<LakeKind, LakeFile[]>();
  #queue: Promise<unknown> = Promise.resolve();

  constructor(inner: Store, options: LakeStoreOptions) {
    this.#inner = inner;
    this.#lakePath = options.lakePath;
    this.#manifest = options.manifest;
    this.#afterOpen = options.afterOpen;
    this.#beforeClose = options.beforeClose;
  }

  /**
   * Starts reading the lake through `connection` (to the database holding the hot tables,
   * `main.ticks`...); until then every read goes to the hot store alone.
   */
  attach(connection: DuckDBConnection): void {
    this.#connection = connection;
  }

  /** Re-reads the list of the lake's part files. */
  async refresh(): Promise<void> {
    const files = new Map<LakeKind, LakeFile[]>();
    for (const kind of LAKE_KINDS) files.set(kind, await listLakeFiles(this.#lakePath, kind));
    this.#files = files;
  }

  async open(): Promise<void> {
    await this.#inner.open();
    await this.#afterOpen?.();
  }

  write(batch: StoreBatch): Promise<void> {
    return this.#inner.write(batch);
  }

  checkpoint(name: string): Promise<Checkpoint | undefined> {
    return this.#inner.checkpoint(name);
  }

  symbols(): Promise<SymbolSummary[]> {
    return this.#inner.symbols();
  }

  latest(symbol: string): Promise<LatestTick | undefined> {
    return this.#inner.latest(symbol);
  }

  async ticks(symbol: string, range: RangeQuery): Promise<StoredTick[]> {
    const hot = () => this.#inner.ticks(symbol, range);
    return this.#unionOrHot(
      'ticks',
      this.#writtenUntil(symbol),
      range,
      hot,
      { columns: TICK_READ_COLUMNS, where: `symbol = ${sqlString(symbol)}`, orderKeys: ['ts', 'seq'] },
      tickFromRow,
    );
  }

  async candles(symbol: string, interval: Interval, range: RangeQuery): Promise<Candle[]> {
    const hot = () => this.#inner.candles(symbol, interval, range);
    return this.#unionOrHot(
      'candles',
      this.#writtenUntil(symbol),
      range,
      hot,
      {
        columns: CANDLE_READ_COLUMNS,
        where: `symbol = ${sqlString(symbol)} AND "interval" = ${sqlString(interval)}`,
        orderKeys: ['ts'],
      },
      (row) => candleFromRow(symbol, interval, row),
    );
  }

  async indicators(symbol: string, interval: Interval, range: RangeQuery): Promise<IndicatorPoint[]> {
    const hot = () => this.#inner.indicators(symbol, interval, range);
    return this.#unionOrHot(
      'indicators',
      this.#writtenUntil(symbol),
      range,
      hot,
      {
        columns: INDICATOR_READ_COLUMNS,
        where: `symbol = ${sqlString(symbol)} AND "interval" = ${sqlString(interval)}`,
        orderKeys: ['ts'],
      },
      (row) => indicatorFromRow(symbol, interval, row),
    );
  }

  async alerts(query: AlertQuery): Promise<Alert[]> {
    const filters: string[] = ['TRUE'];
    if (query.symbol !== undefined) filters.push(`symbol = ${sqlString(query.symbol)}`);
    if (query.kind !== undefined) filters.push(`kind = ${sqlString(query.kind)}`);
    const writtenUntil =
      query.symbol === undefined ? this.#writtenUntilAny() : this.#writtenUntil(query.symbol);
    const hot = () => this.#inner.alerts(query);
    return this.#unionOrHot(
      'alerts',
      writtenUntil,
      query,
      hot,
      {
        columns: ALERT_READ_COLUMNS,
        where: filters.join(' AND '),
        orderKeys: ['ts', 'seq'],
      },
      alertFromRow,
    );
  }

  /** Retention works on the hot store; its hold-back keeps what the lake does not hold yet. */
  newestTickTs(): Promise<number | undefined> {
    return this.#inner.newestTickTs();
  }

  storedSpan(): Promise<StoredSpan> {
    return this.#inner.storedSpan();
  }

  deleteExpired(cutoffs: ExpiryCutoffs): Promise<ExpiryResult> {
    return this.#inner.deleteExpired(cutoffs);
  }

  deadLetters(limit: number): Promise<DeadLetter[]> {
    return this.#inner.deadLetters(limit);
  }

  createKey(key: NewApiKey): Promise<void> {
    return this.#inner.createKey(key);
  }

  listKeys(): Promise<ApiKeyRecord[]> {
    return this.#inner.listKeys();
  }

  findKeyByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    return this.#inner.findKeyByHash(hash);
  }

  revokeKey(id: string, revokedAt?: number): Promise<boolean> {
    return this.#inner.revokeKey(id, revokedAt);
  }

  async close(): Promise<void> {
    this.#connection = undefined;
    await this.#beforeClose?.();
    await this.#inner.close();
  }

  /** Where the lake's rows of a symbol end (every lake row of it is below); 0 when it has none. */
  #writtenUntil(symbol: string): number {
    return this.#manifest().writtenUntil[symbol] ?? 0;
  }

  #writtenUntilAny(): number {
    return Math.max(0, ...Object.values(this.#manifest().writtenUntil));
  }

  /**
   * The hot store's answer when the lake cannot change it, else the union's rows. With `from`, the
   * lake matters when `from` is below where its rows end; without, when the hot store's last
   * `limit` rows do not all lie above the lake's rows.
   */
  async #unionOrHot<T extends { ts: number }>(
    kind: LakeKind,
    writtenUntil: number,
    range: RangeQuery,
    hot: () => Promise<T[]>,
    query: { columns: string; where: string; orderKeys: readonly string[] },
    fromRow: (row: DuckDBValue[]) => T,
  ): Promise<T[]> {
    const { from, to, limit } = normalizeRange(range);
    const connection = this.#connection;
    if (connection === undefined || writtenUntil === 0 || limit === 0) return hot();
    if (from !== undefined && from >= writtenUntil) return hot();
    if (from === undefined) {
      const hotRows = await hot();
      if (hotRows.length === limit && hotRows[0]!.ts >= writtenUntil) return hotRows;
    }
    const files = (this.#files.get(kind) ?? []).filter(
      (file) => (to === undefined || file.dayMs <= to) && (from === undefined || file.dayMs + DAY_MS > from),
    );
    let where = query.where;
    if (from !== undefined) where += ` AND ts >= ${from}`;
    if (to !== undefined) where += ` AND ts <= ${to}`;
    const table = kind === 'ticks' ? 'ticks' : kind;
    let union = `SELECT ${query.columns} FROM main.${table} WHERE ${where}`;
    if (files.length > 0) {
      const list = files.map((file) => sqlString(file.path)).join(', ');
      union += ` UNION SELECT ${query.columns} FROM read_parquet([${list}]) WHERE ${where}`;
    }
    const ascending = query.orderKeys.join(', ');
    const sql =
      from !== undefined
        ? `SELECT * FROM (${union}) ORDER BY ${ascending} LIMIT ${limit}`
        : `SELECT * FROM (SELECT * FROM (${union}) ORDER BY ${query.orderKeys
            .map((key) => `${key} DESC`)
            .join(', ')} LIMIT ${limit}) ORDER BY ${ascending}`;
    return (await this.#read(connection, sql)).map(fromRow);
  }

  #read(connection: DuckDBConnection, sql: string): Promise<DuckDBValue[][]> {
    const result = this.#queue.then(async () => (await connection.runAndReadAll(sql)).getRows());
    this.#queue = result.catch(() => undefined);
    return result;
  }
}
