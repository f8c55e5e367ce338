/**
 * Where the lake writer reads final rows from: the hot store, one consistent snapshot per pass.
 * The embedded store is DuckDB, so its rows are staged by SQL in the same database; the
 * distributed store is PostgreSQL (postgres-source.ts), whose rows are copied out into the
 * writer's own DuckDB. Either way the writer turns the staged rows into Parquet with DuckDB.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { readCheckpoints } from '../store/duckdb/checkpoint-states.ts';
import type { LakeKind } from './layout.ts';

/** The columns of each kind, in the hot tables' order, with their DuckDB types: the lake's schema. */
export const LAKE_COLUMNS: Record<LakeKind, readonly (readonly [name: string, type: string])[]> = {
  ticks: [
    ['seq', 'BIGINT'],
    ['source', 'VARCHAR'],
    ['symbol', 'VARCHAR'],
    ['ts', 'BIGINT'],
    ['price', 'DOUBLE'],
    ['size', 'DOUBLE'],
    ['id', 'VARCHAR'],
    ['side', 'VARCHAR'],
    ['received_at', 'BIGINT'],
    ['ma_short', 'DOUBLE'],
    ['ma_long', 'DOUBLE'],
    ['late', 'BOOLEAN'],
  ],
  candles: [
    ['symbol', 'VARCHAR'],
    ['interval', 'VARCHAR'],
    ['ts', 'BIGINT'],
    ['open', 'DOUBLE'],
    ['high', 'DOUBLE'],
    ['low', 'DOUBLE'],
    ['close', 'DOUBLE'],
    ['volume', 'DOUBLE'],
    ['trades', 'BIGINT'],
    ['vwap', 'DOUBLE'],
  ],
  indicators: [
    ['symbol', 'VARCHAR'],
    ['interval', 'VARCHAR'],
    ['ts', 'BIGINT'],
    ['sma20', 'DOUBLE'],
    ['ema20', 'DOUBLE'],
    ['rsi14', 'DOUBLE'],
    ['bb_upper', 'DOUBLE'],
    ['bb_middle', 'DOUBLE'],
    ['bb_lower', 'DOUBLE'],
  ],
  alerts: [
    ['seq', 'BIGINT'],
    ['ts', 'BIGINT'],
    ['symbol', 'VARCHAR'],
    ['kind', 'VARCHAR'],
    ['price', 'DOUBLE'],
    ['threshold', 'DOUBLE'],
    ['message', 'VARCHAR'],
  ],
};

/** `t."seq", t."source", …`: a kind's columns in the lake's order, read off the hot table `t`. */
export function lakeSelectList(kind: LakeKind): string {
  return LAKE_COLUMNS[kind].map(([name]) => `t."${name}"`).join(', ');
}

/** One snapshot of the hot store, as the writer reads it. */
export interface LakeSnapshot {
  /** The JSON states of the processor checkpoints (names starting with `prefix`). */
  processorStates(prefix: string): Promise<unknown[]>;
  /**
   * Puts the rows of `select` (plain SQL both DuckDB and PostgreSQL run; hot tables unqualified)
   * into the writer connection's temp table `lake_stage`, plus their UTC day as `lake_day`.
   * `scratchDir` is the pass's temp folder, removed after the pass.
   */
  stage(kind: LakeKind, select: string, scratchDir: string): Promise<void>;
}

/** The hot store as the writer reads it. */
export interface LakeSource {
  /** The DuckDB connection the writer stages rows in and writes Parquet from. */
  readonly connection: DuckDBConnection;
  /** Runs `read` on one snapshot, in which the processor checkpoints and their rows agree. */
  snapshot<T>(read: (snapshot: LakeSnapshot) => Promise<T>): Promise<T>;
}

/** `ts - ts % day` as `lake_day`, beside every staged row. */
export function stageSql(from: string): string {
  return `CREATE OR REPLACE TEMP TABLE lake_stage AS SELECT *, ts - ts % 86400000 AS lake_day FROM (${from})`;
}

/** The embedded hot store: DuckDB, where the writer's connection sees the hot tables itself. */
export class DuckDbLakeSource implements LakeSource {
  readonly connection: DuckDBConnection;

  constructor(connection: DuckDBConnection) {
    this.connection = connection;
  }

  async snapshot<T>(read: (snapshot: LakeSnapshot) => Promise<T>): Promise<T> {
    const connection = this.connection;
    await connection.run('BEGIN TRANSACTION');
    try {
      const result = await read({
        // A file-backed store keeps the states in files its rows name (checkpoint-states.ts).
        processorStates: async (prefix) =>
          (await readCheckpoints(connection, { prefix })).map((checkpoint) => checkpoint.state),
        stage: async (_kind, select) => {
          await connection.run(stageSql(select));
        },
      });
      await connection.run('COMMIT');
      return result;
    } catch (error) {
      await connection.run('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }
}

export function sqlString(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}
