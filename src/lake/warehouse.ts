/**
 * The warehouse (docs/design.md, Retention and history): SQL over views `ticks`, `candles`, `indicators` and `alerts` that join
 * the lake's recorded parts and the hot store. A hot row the lake already holds is left out by the
 * manifest (its symbol-day is written and its seq was in a recorded pass), so no row counts twice
 * and nothing is hashed to find duplicates. Used by `streamlines sql` and `POST /api/v1/query`.
 */
import type { DuckDBConnection, DuckDBValue } from '@duckdb/node-api';
import { readCheckpoints } from '../store/duckdb/checkpoint-states.ts';
import { sqlString } from './lake-source.ts';
import { LAKE_CHECKPOINT, type LakeManifest, parseManifest } from './lake-writer.ts';
import { LAKE_KINDS, type LakeKind, listLakeFiles } from './layout.ts';

/** The views a query may read. */
export const WAREHOUSE_VIEWS = LAKE_KINDS;

/** A query the warehouse refuses, with a stable code (see docs/warehouse.md). */
export class WarehouseError extends Error {
  override readonly name = 'WarehouseError';
  readonly code: WarehouseErrorCode;

  constructor(code: WarehouseErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/**
 * Stable codes: `invalid_query` (not one SELECT, or DuckDB refused it), `forbidden_table` (it reads
 * something other than the four views), `query_timeout` (ran past the time limit).
 */
export type WarehouseErrorCode = 'invalid_query' | 'forbidden_table' | 'query_timeout';

/** A query's answer: column names, rows as plain JSON values, and whether the row cap cut it. */
export interface QueryResult {
  columns: string[];
  rows: Record<string, unknown>[];
  truncated: boolean;
}

/** Runs warehouse queries (the embedded lake is one). */
export interface Warehouse {
  /** One read-only SELECT over the views; throws WarehouseError for what it refuses. */
  query(sql: string, options: RunOptions): Promise<QueryResult>;
}

export interface ViewOptions {
  lakePath: string;
  /** Whether the connection's database holds the hot tables (else the views read the lake alone). */
  hot: boolean;
  /** Without the hot tables: the manifest recorded elsewhere (PostgreSQL), whose recorded parts alone count. */
  manifest?: LakeManifest;
}

/** Which hot rows the lake already holds, per kind: below the symbol's written days, within its seq horizon. */
function notInLake(kind: LakeKind): string {
  const covered = 't.ts < w.until';
  const inLake =
    kind === 'ticks'
      ? `${covered} AND t.seq <= w.tick_seq`
      : kind === 'alerts'
        ? `${covered} AND t.seq <= w.alert_seq`
        : covered;
  return `w.until IS NULL OR NOT (${inLake})`;
}

/**
 * Creates the four views on `connection` (temporary: they live as long as it). Reads the manifest
 * from the hot store's checkpoints when there is one; parts a pass wrote but never recorded are
 * left out, as the lake writer will remove them.
 */
export async function createWarehouseViews(
  connection: DuckDBConnection,
  options: ViewOptions,
): Promise<LakeManifest> {
  // Fully qualified: a temp view lives in temp.main, so plain `main.ticks` would be the view itself.
  const hot = options.hot
    ? `"${String((await connection.runAndReadAll('SELECT current_database()')).getRows()[0]![0]).replaceAll('"', '""')}".main`
    : undefined;
  let manifest = parseManifest(undefined);
  if (hot !== undefined) {
    const [stored] = await readCheckpoints(connection, { name: LAKE_CHECKPOINT });
    if (stored !== undefined) manifest = parseManifest(stored.state);
  }
  await connection.run(
    'CREATE OR REPLACE TEMP TABLE lake_written (symbol VARCHAR, until BIGINT, tick_seq BIGINT, alert_seq BIGINT)',
  );
  const written = Object.entries(manifest.writtenUntil);
  if (written.length > 0) {
    const row = ([symbol, until]: [string, number]) => {
      const horizon = manifest.horizons[symbol] ?? { ticks: -1, alerts: -1 };
      return `(${sqlString(symbol)}, ${until}, ${horizon.ticks}, ${horizon.alerts})`;
    };
    await connection.run(`INSERT INTO lake_written VALUES ${written.map(row).join(', ')}`);
  }
  for (const kind of LAKE_KINDS) {
    // Without a hot store or a manifest (no database file), every part on disk is the lake.
    const recordedBefore =
      hot !== undefined ? manifest.nextPart : (options.manifest?.nextPart ?? Number.POSITIVE_INFINITY);
    const files = (await listLakeFiles(options.lakePath, kind)).filter((file) => file.part < recordedBefore);
    const parts: string[] = [];
    if (files.length > 0) {
      // The Hive folder gives every lake row its UTC `date` for free (a constant per file).
      parts.push(
        `SELECT * FROM read_parquet([${files.map((file) => sqlString(file.path)).join(', ')}], hive_partitioning = true)`,
      );
    }
    if (hot !== undefined) {
      parts.push(
        `SELECT t.*, CAST(epoch_ms(t.ts - t.ts % 86400000) AS DATE) AS date FROM ${hot}.${kind} t
         LEFT JOIN lake_written w ON t.symbol = w.symbol WHERE ${notInLake(kind)}`,
      );
    }
    const body = parts.length > 0 ? parts.join(' UNION ALL BY NAME ') : `SELECT NULL AS nothing WHERE FALSE`;
    await connection.run(`CREATE OR REPLACE TEMP VIEW ${kind} AS ${body}`);
  }
  return manifest;
}

/**
 * Refuses anything but one SELECT that reads only the warehouse views (and its own CTEs): no table
 * functions, no files, no other tables. DuckDB parses it (json_serialize_sql serialises SELECTs
 * only), so what is checked is what would run.
 */
export async function checkReadOnlyQuery(connection: DuckDBConnection, sql: string): Promise<void> {
  const rows = (await connection.runAndReadAll(`SELECT json_serialize_sql(${sqlString(sql)})`)).getRows();
  const parsed = JSON.parse(rows[0]![0] as string) as {
    error: boolean;
    error_message?: string;
    statements?: unknown[];
  };
  if (parsed.error) {
    throw new WarehouseError(
      'invalid_query',
      `only one SELECT is allowed: ${parsed.error_message ?? 'not a SELECT'}`,
    );
  }
  if (parsed.statements?.length !== 1) {
    throw new WarehouseError(
      'invalid_query',
      `send exactly one SELECT statement, got ${parsed.statements?.length ?? 0}`,
    );
  }
  const cteNames = new Set<string>();
  const tables: { schema: string; catalog: string; name: string }[] = [];
  const functions: string[] = [];
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const child of node) visit(child);
      return;
    }
    if (typeof node !== 'object' || node === null) return;
    const record = node as Record<string, unknown>;
    if (record.type === 'BASE_TABLE') {
      tables.push({
        schema: String(record.schema_name ?? ''),
        catalog: String(record.catalog_name ?? ''),
        name: String(record.table_name ?? ''),
      });
    }
    if (record.type === 'TABLE_FUNCTION') {
      const fn = record.function as { function_name?: string } | undefined;
      functions.push(fn?.function_name ?? '?');
    }
    const cteMap = record.cte_map as { map?: { key: string }[] } | undefined;
    for (const entry of cteMap?.map ?? []) cteNames.add(entry.key.toLowerCase());
    for (const value of Object.values(record)) visit(value);
  };
  visit(parsed.statements);
  if (functions.length > 0) {
    throw new WarehouseError(
      'forbidden_table',
      `table functions are not allowed (${functions.join(', ')}); read the views ${WAREHOUSE_VIEWS.join(', ')}`,
    );
  }
  for (const table of tables) {
    const name = table.name.toLowerCase();
    const allowed =
      table.schema === '' &&
      table.catalog === '' &&
      ((WAREHOUSE_VIEWS as readonly string[]).includes(name) || cteNames.has(name));
    if (!allowed) {
      const shown = [table.catalog, table.schema, table.name].filter((part) => part !== '').join('.');
      throw new WarehouseError(
        'forbidden_table',
        `"${shown}" is not readable here; the views are ${WAREHOUSE_VIEWS.join(', ')}`,
      );
    }
  }
}

export interface RunOptions {
  /** Rows returned at most; `truncated` says when there were more. */
  maxRows: number;
  /** The query is interrupted after this long. */
  timeoutMs?: number;
}

/** Runs a query and returns at most `maxRows` rows as JSON-safe objects. */
export async function runQuery(
  connection: DuckDBConnection,
  sql: string,
  options: RunOptions,
): Promise<QueryResult> {
  let timedOut = false;
  const timer =
    options.timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          connection.interrupt();
        }, options.timeoutMs);
  try {
    const result = await connection.stream(sql);
    const columns = result.columnNames();
    const rows: Record<string, unknown>[] = [];
    let truncated = false;
    for (;;) {
      const chunk = await result.fetchChunk();
      if (chunk === null || chunk.rowCount === 0) break;
      for (const values of chunk.getRows()) {
        if (rows.length === options.maxRows) {
          truncated = true;
          break;
        }
        const row: Record<string, unknown> = {};
        columns.forEach((column, index) => {
          row[column] = toJsonValue(values[index]!);
        });
        rows.push(row);
      }
      if (truncated) break;
    }
    return { columns, rows, truncated };
  } catch (error) {
    if (timedOut) {
      throw new WarehouseError('query_timeout', `the query ran past ${options.timeoutMs} ms and was stopped`);
    }
    throw new WarehouseError('invalid_query', error instanceof Error ? error.message : String(error));
  } finally {
    clearTimeout(timer);
  }
}

/** BIGINTs become numbers when exact (else strings), decimals numbers, other DuckDB values their text. */
export function toJsonValue(value: DuckDBValue): unknown {
  if (value === null || typeof value === 'number' || typeof value === 'string' || typeof value === 'boolean')
    return value;
  if (typeof value === 'bigint')
    return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  const decimal = value as { toDouble?: () => number };
  if (typeof decimal.toDouble === 'function') return decimal.toDouble();
  const list = value as { items?: DuckDBValue[] };
  if (Array.isArray(list.items)) return list.items.map(toJsonValue);
  return String(value);
}

/** Rows as an aligned text table, CSV or a JSON array of row objects. */
export function formatResult(result: QueryResult, format: 'table' | 'csv' | 'json'): string {
  if (format === 'json') return `${JSON.stringify(result.rows)}\n`;
  const cells = result.rows.map((row) => result.columns.map((column) => cellText(row[column])));
  if (format === 'csv') {
    const quote = (text: string) => (/[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text);
    return `${[result.columns, ...cells].map((line) => line.map(quote).join(',')).join('\n')}\n`;
  }
  const widths = result.columns.map((column, index) =>
    Math.max(column.length, ...cells.map((line) => line[index]!.length)),
  );
  const line = (values: string[]) =>
    values
      .map((value, index) => value.padEnd(widths[index]!))
      .join('  ')
      .trimEnd();
  const out = [line(result.columns), line(widths.map((width) => '-'.repeat(width))), ...cells.map(line)];
  const count = `(${result.rows.length} row${result.rows.length === 1 ? '' : 's'}${result.truncated ? ', truncated' : ''})`;
  return `${out.join('\n')}\n${count}\n`;
}

function cellText(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}
