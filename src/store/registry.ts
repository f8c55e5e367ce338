/**
 * Picks the store implementation a config names. A new backend is a new folder plus one case here.
 */
import path from 'node:path';
import { DuckDbStore } from './duckdb/duckdb-store.ts';
import { MemoryStore } from './memory/memory-store.ts';
import { PostgresStore, type TimescaleMode } from './postgres/postgres-store.ts';
import type { Store } from './store.ts';

/** The `store` section of the config. */
export type StoreConfig =
  | { type: 'memory' }
  | { type: 'duckdb'; path?: string; memoryLimit?: number }
  | {
      type: 'postgres';
      url: string;
      schema?: string;
      timescale?: TimescaleMode;
      /** Retention periods in ms (the config schema parses `30d` and the like). */
      retention?: { ticks?: number; aggregates?: number };
    };

/** The file the DuckDB store uses when the config names none. */
export const DEFAULT_DUCKDB_FILE = 'streamlines.duckdb';

/** Creates (but does not open) the configured store; relative paths stay relative to the working directory. */
export function createStore(config: StoreConfig, dataDir: string): Store {
  switch (config.type) {
    case 'memory':
      return new MemoryStore();
    case 'duckdb':
      return new DuckDbStore({
        path: config.path ?? path.join(dataDir, DEFAULT_DUCKDB_FILE),
        memoryLimit: config.memoryLimit,
      });
    case 'postgres':
      return new PostgresStore({
        url: config.url,
        schema: config.schema,
        timescale: config.timescale,
        ticksRetentionMs: config.retention?.ticks,
        aggregatesRetentionMs: config.retention?.aggregates,
      });
  }
}
