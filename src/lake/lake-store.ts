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
import { type DuckDBConnection, DuckDBInstance, type DuckDBValue } from '@duckdb/node-api';
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
import { LAKE_CHECKPOINT, type LakeManifest, parseManifest } from './lake-writer.ts';
import { DAY_MS, LAKE_KINDS, type LakeFile, type LakeKind, listLakeFiles } from './layout.ts';

export interface LakeStoreOptions {
  lakePath: string;
  /**
   * The lake's current manifest: what it holds per symbol. Asked at every read that may touch the
   * lake when the hot store is not in the lake's DuckDB database (it is then read from the store).
   */
  manifest: () => LakeManifest | Promise<LakeManifest>;
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
  readonly #manifest: () => LakeManifest | Promise<LakeManifest>;
  /** Whether `connection` sees the hot tables (`main.ticks`…): then one SQL UNION answers. */
  #hotTables = true;
  /** With the hot store elsewhere: the manifest's nextPart the file list was made for. */
  #listedFor: number | undefined;
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
  attach(connection: DuckDBConnection, options: { hotTables: boolean } = { hotTables: true }): void {
    this.#connection = connection;
    this.#hotTables = options.hotTables;
  }

  /** Re-reads the list of the lake's part files (those below `beforePart` only, when given). */
  async refresh(beforePart = Number.POSITIVE_INFINITY): Promise<void> {
    const files = new Map<LakeKind, LakeFile[]>();
    for (const kind of LAKE_KINDS) {
      files.set(
        kind,
        (await listLakeFiles(this.#lakePath, kind)).filter((file) => file.part < beforePart),
      );
    }
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
      (manifest) => writtenUntil(manifest, symbol),
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
      (manifest) => writtenUntil(manifest, symbol),
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
      (manifest) => writtenUntil(manifest, symbol),
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
    const symbol = query.symbol;
    const hot = () => this.#inner.alerts(query);
    return this.#unionOrHot(
      'alerts',
      (manifest) =>
        symbol === undefined
          ? Math.max(0, ...Object.values(manifest.writtenUntil))
          : writtenUntil(manifest, symbol),
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

  /**
   * The hot store's answer when the lake cannot change it, else the union's rows. With `from`, the
   * lake matters when `from` is below where its rows end; without, when the hot store's last
   * `limit` rows do not all lie above the lake's rows.
   */
  async #unionOrHot<T extends { ts: number }>(
    kind: LakeKind,
    writtenUntilOf: (manifest: LakeManifest) => number,
    range: RangeQuery,
    hot: () => Promise<T[]>,
    query: { columns: string; where: string; orderKeys: readonly string[] },
    fromRow: (row: DuckDBValue[]) => T,
  ): Promise<T[]> {
    const { from, to, limit } = normalizeRange(range);
    const connection = this.#connection;
    if (connection === undefined || limit === 0) return hot();
    // With the hot store elsewhere, its rows are read before the manifest: a row retention deleted
    // before this read was in the lake, and recorded, before it was deleted.
    const hotFirst = this.#hotTables ? undefined : await hot();
    const manifest = await this.#manifest();
    if (!this.#hotTables && this.#listedFor !== manifest.nextPart) {
      await this.refresh(manifest.nextPart);
      this.#listedFor = manifest.nextPart;
    }
    const writtenUntil = writtenUntilOf(manifest);
    if (writtenUntil === 0) return hotFirst ?? hot();
    if (from !== undefined && from >= writtenUntil) return hotFirst ?? hot();
    let hotRows = hotFirst;
    if (from === undefined) {
      hotRows ??= await hot();
      if (hotRows.length === limit && hotRows[0]!.ts >= writtenUntil) return hotRows;
    }
    const files = (this.#files.get(kind) ?? []).filter(
      (file) => (to === undefined || file.dayMs <= to) && (from === undefined || file.dayMs + DAY_MS > from),
    );
    let where = query.where;
    if (from !== undefined) where += ` AND ts >= ${from}`;
    if (to !== undefined) where += ` AND ts <= ${to}`;
    const lake =
      files.length === 0
        ? undefined
        : `SELECT ${query.columns} FROM read_parquet([${files.map((file) => sqlString(file.path)).join(', ')}]) WHERE ${where}`;
    if (!this.#hotTables) {
      if (lake === undefined) return hotRows!;
      const lakeRows = (await this.#read(connection, limited(lake, query.orderKeys, from, limit))).map(
        fromRow,
      );
      return mergeRows(lakeRows, hotRows!, limit, from !== undefined);
    }
    let union = `SELECT ${query.columns} FROM main.${kind} WHERE ${where}`;
    if (lake !== undefined) union += ` UNION ${lake}`;
    return (await this.#read(connection, limited(union, query.orderKeys, from, limit))).map(fromRow);
  }

  #read(connection: DuckDBConnection, sql: string): Promise<DuckDBValue[][]> {
    const result = this.#queue.then(async () => (await connection.runAndReadAll(sql)).getRows());
    this.#queue = result.catch(() => undefined);
    return result;
  }
}

function writtenUntil(manifest: LakeManifest, symbol: string): number {
  return manifest.writtenUntil[symbol] ?? 0;
}

/** `rows` in range order: the first `limit` from `from`, or (no `from`) the last `limit`, ascending. */
function limited(
  rows: string,
  orderKeys: readonly string[],
  from: number | undefined,
  limit: number,
): string {
  const ascending = orderKeys.join(', ');
  return from !== undefined
    ? `SELECT * FROM (${rows}) ORDER BY ${ascending} LIMIT ${limit}`
    : `SELECT * FROM (SELECT * FROM (${rows}) ORDER BY ${orderKeys
        .map((key) => `${key} DESC`)
        .join(', ')} LIMIT ${limit}) ORDER BY ${ascending}`;
}

/**
 * The union of the lake's rows and the hot store's, each already limited the same way: a row in
 * both (archived, not yet deleted by retention) is the same record, so it is kept once per
 * occurrence; then the first (or last) `limit` by ts. Ties of ts keep the lake's rows first.
 */
export function mergeRows<T extends { ts: number }>(
  lake: readonly T[],
  hot: readonly T[],
  limit: number,
  fromStart: boolean,
): T[] {
  const unmatched = new Map<string, number>();
  for (const row of lake) {
    const key = rowKey(row);
    unmatched.set(key, (unmatched.get(key) ?? 0) + 1);
  }
  const merged = [...lake];
  for (const row of hot) {
    const key = rowKey(row);
    const count = unmatched.get(key) ?? 0;
    if (count > 0) unmatched.set(key, count - 1);
    else merged.push(row);
  }
  merged.sort((a, b) => a.ts - b.ts);
  return fromStart ? merged.slice(0, limit) : merged.slice(Math.max(0, merged.length - limit));
}

/** A record's content as text, whatever the order its reader set its keys in. */
function rowKey(row: object): string {
  return JSON.stringify(Object.entries(row).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * History over a store whose rows are not in DuckDB (PostgreSQL, for `serve`): the lake's parts are
 * read by an in-memory DuckDB of its own, and the manifest is the store's `lake` checkpoint.
 */
export function withLakeReads(inner: Store, lakePath: string): LakeStore {
  let instance: DuckDBInstance | undefined;
  let connection: DuckDBConnection | undefined;
  const store: LakeStore = new LakeStore(inner, {
    lakePath,
    manifest: async () => parseManifest((await inner.checkpoint(LAKE_CHECKPOINT))?.state),
    afterOpen: async () => {
      instance = await DuckDBInstance.create(':memory:');
      connection = await instance.connect();
      store.attach(connection, { hotTables: false });
    },
    beforeClose: async () => {
      connection?.closeSync();
      instance?.closeSync();
      connection = undefined;
      instance = undefined;
    },
  });
  return store;
}
