/**
 * The distributed hot store (PostgreSQL) as the lake writer's source: one REPEATABLE READ READ ONLY
 * transaction per pass is the snapshot, and each kind's rows leave PostgreSQL by `COPY … TO STDOUT`
 * as CSV into the pass's temp folder, from which the writer's own DuckDB stages them with the lake's
 * column types. CSV keeps every value exact: PostgreSQL prints doubles in their shortest exact form,
 * and NULL (unquoted empty) stays apart from an empty string (quoted).
 */
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { DuckDBConnection } from '@duckdb/node-api';
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { LAKE_COLUMNS, type LakeSnapshot, type LakeSource, sqlString, stageSql } from './lake-source.ts';
import type { LakeKind } from './layout.ts';

export interface PostgresLakeSourceOptions {
  /** The PostgreSQL store's pool (its search_path names the store's schema). */
  pool: pg.Pool;
  /** The writer's DuckDB connection (an in-memory database of its own). */
  connection: DuckDBConnection;
}

export class PostgresLakeSource implements LakeSource {
  readonly connection: DuckDBConnection;
  readonly #pool: pg.Pool;

  constructor(options: PostgresLakeSourceOptions) {
    this.connection = options.connection;
    this.#pool = options.pool;
  }

  async snapshot<T>(read: (snapshot: LakeSnapshot) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const result = await read({
        processorStates: async (prefix) => {
          const { rows } = await client.query<{ state: unknown }>(
            'SELECT state FROM checkpoints WHERE starts_with(name, $1)',
            [prefix],
          );
          return rows.map((row) => (typeof row.state === 'string' ? JSON.parse(row.state) : row.state));
        },
        stage: (kind, select, scratchDir) => this.#stage(client, kind, select, scratchDir),
      });
      await client.query('COMMIT');
      client.release();
      return result;
    } catch (error) {
      // Dropping the connection ends its transaction, which wrote nothing (READ ONLY).
      client.release(error instanceof Error ? error : new Error(String(error)));
      throw error;
    }
  }

  async #stage(client: pg.PoolClient, kind: LakeKind, select: string, scratchDir: string): Promise<void> {
    const file = path.join(scratchDir, `${kind}.csv`);
    await pipeline(
      client.query(copyTo(`COPY (${select}) TO STDOUT WITH (FORMAT csv)`)),
      createWriteStream(file),
    );
    const columns = LAKE_COLUMNS[kind]
      .map(([name, type]) => `${sqlString(name)}: ${sqlString(type)}`)
      .join(', ');
    await this.connection.run(
      stageSql(
        `SELECT * FROM read_csv(${sqlString(file)}, header = false, auto_detect = false, delim = ',',
           quote = '"', escape = '"', allow_quoted_nulls = false, columns = {${columns}})`,
      ),
    );
  }
}
