/**
 * `streamlines sql "SELECT …"`: the warehouse from the command line (docs/warehouse.md). Views
 * `ticks`, `candles`, `indicators` and `alerts` span the lake and the hot store.
 *
 * DuckDB lets one process open a database file for writing and no other process open it at all
 * meanwhile (not even read-only), so: with no server on the data dir, the command opens the file
 * read-only itself; with one, it asks that server (`POST /api/v1/query`) with the command line's
 * session (its address and admin key in `DATA/cli-session.json`, as `streamlines keys` does).
 */

import { existsSync } from 'node:fs';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { loadConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { LAKE_CHECKPOINT, type LakeManifest, parseManifest } from '../lake/lake-writer.ts';
import {
  checkReadOnlyQuery,
  createWarehouseViews,
  formatResult,
  type QueryResult,
  runQuery,
  WarehouseError,
} from '../lake/warehouse.ts';
import { PostgresStore } from '../store/postgres/postgres-store.ts';
import { DEFAULT_DUCKDB_FILE } from '../store/registry.ts';
import { parseCommandLine } from './args.ts';
import { CLI_SESSION_FILE, readCliSession } from './cli-session.ts';

export const SQL_USAGE = `Usage: streamlines sql "SELECT …" [options]

  SQL over the views ticks, candles, indicators and alerts (lake and hot store as one).

Options:
  --data-dir DIR        the data dir (default ./data)
  --config FILE         the config the server runs with (where the store and the lake are)
  --format F            table (default), csv, or json (an array of row objects)
  --max-rows N          print at most N rows (default: all when reading the files, the
                        server's lake.query.maxRows when asking a running server)
  --key KEY             an admin API key to use instead of the running server's command-line
                        key (or STREAMLINES_API_KEY)

With no server on the data dir, the database is opened read-only and any SELECT DuckDB runs is
allowed. With one, the query goes to it and must read only the four views.
`;

export class SqlUsageError extends Error {
  override readonly name = 'SqlUsageError';
}

/** Runs `sql …` (argv after `sql`). */
export async function runSqlCommand(argv: string[]): Promise<void> {
  const { positionals, values } = parseCommandLine(
    'streamlines sql',
    argv,
    {
      'data-dir': { type: 'string' },
      config: { type: 'string' },
      format: { type: 'string' },
      'max-rows': { type: 'string' },
      key: { type: 'string' },
    },
    true,
  );
  if (values.help || positionals.length === 0) {
    process.stdout.write(SQL_USAGE);
    return;
  }
  if (positionals.length !== 1) {
    throw new SqlUsageError('give the query as one argument, in quotes: streamlines sql "SELECT …"');
  }
  const format = values.format ?? 'table';
  if (format !== 'table' && format !== 'csv' && format !== 'json') {
    throw new SqlUsageError(`--format must be table, csv or json, got "${format}"`);
  }
  let maxRows: number | undefined;
  if (values['max-rows'] !== undefined) {
    maxRows = Number(values['max-rows']);
    if (!Number.isInteger(maxRows) || maxRows < 1)
      throw new SqlUsageError(`--max-rows must be a positive integer, got "${values['max-rows']}"`);
  }
  const config = await loadConfig(values.config);
  const dataDir = path.resolve(values['data-dir'] ?? './data');
  const result = await query(positionals[0]!, config, dataDir, {
    maxRows,
    key: values.key ?? process.env.STREAMLINES_API_KEY,
  }).catch((error: unknown) => {
    throw error instanceof WarehouseError ? new SqlUsageError(`${error.code}: ${error.message}`) : error;
  });
  process.stdout.write(formatResult(result, format));
  if (result.truncated && format !== 'table') {
    process.stderr.write(`streamlines sql: only the first ${result.rows.length} rows were printed\n`);
  }
}

async function query(
  sql: string,
  config: Config,
  dataDir: string,
  options: { maxRows: number | undefined; key: string | undefined },
): Promise<QueryResult> {
  const lakePath = config.lake.path ?? path.join(dataDir, 'lake');
  const databaseFile =
    config.store.type === 'duckdb'
      ? (config.store.path ?? path.join(dataDir, DEFAULT_DUCKDB_FILE))
      : undefined;
  const hasDatabase = databaseFile !== undefined && existsSync(databaseFile);
  let instance: DuckDBInstance;
  try {
    instance = hasDatabase
      ? await DuckDBInstance.create(databaseFile, { access_mode: 'READ_ONLY' })
      : await DuckDBInstance.create(':memory:');
  } catch (error) {
    if (!/lock/i.test(String(error))) throw error;
    return queryServer(sql, dataDir, options);
  }
  try {
    const connection = await instance.connect();
    try {
      await createWarehouseViews(connection, {
        lakePath,
        hot: hasDatabase,
        // Distributed: the lake alone, as far as the archive recorded it in PostgreSQL.
        manifest: config.store.type === 'postgres' ? await archiveManifest(config.store) : undefined,
      });
      await checkReadOnlyQuery(connection, sql).catch((error: unknown) => {
        // Only a statement that is not a SELECT is refused here; the user owns these files.
        if ((error as { code?: string }).code === 'invalid_query') throw error;
      });
      return await runQuery(connection, sql, { maxRows: options.maxRows ?? Number.MAX_SAFE_INTEGER });
    } finally {
      connection.closeSync();
    }
  } finally {
    instance.closeSync();
  }
}

/** The lake's manifest as `streamlines archive` recorded it in PostgreSQL. */
async function archiveManifest(store: { url: string; schema: string }): Promise<LakeManifest> {
  const postgres = new PostgresStore({ url: store.url, schema: store.schema, retentionEveryMs: 0 });
  await postgres.open();
  try {
    return parseManifest((await postgres.checkpoint(LAKE_CHECKPOINT))?.state);
  } finally {
    await postgres.close();
  }
}

async function queryServer(
  sql: string,
  dataDir: string,
  options: { maxRows: number | undefined; key: string | undefined },
): Promise<QueryResult> {
  const session = await readCliSession(dataDir);
  if (session === undefined) {
    throw new SqlUsageError(
      `the store in ${dataDir} is in use by another process that left no ${CLI_SESSION_FILE}; stop it, or POST /api/v1/query to its server`,
    );
  }
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    authorization: `Bearer ${options.key ?? session.key}`,
  };
  const response = await fetch(`${session.url}/api/v1/query`, {
    method: 'POST',
    headers,
    body: JSON.stringify(options.maxRows === undefined ? { sql } : { sql, maxRows: options.maxRows }),
  }).catch((error: unknown) => {
    // The database is locked but its server does not answer: another command (import) holds it, or
    // cli-session.json is left over from a server that was killed.
    throw new SqlUsageError(
      `the store in ${dataDir} is in use and the server in ${CLI_SESSION_FILE} (${session.url}) does not answer ` +
        `(${error instanceof Error ? error.message : String(error)}); wait for the other command to finish`,
    );
  });
  const body = (await response.json()) as QueryResult & { error?: { code: string; message: string } };
  if (!response.ok) {
    throw new SqlUsageError(`the server refused the query (${body.error?.code}): ${body.error?.message}`);
  }
  return body;
}
