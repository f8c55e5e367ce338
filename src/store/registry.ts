/** Every store type: its config schema and its constructor. A new store is one folder plus one entry here. */
import path from 'node:path';
import { type ComponentConfig, componentKind, createComponent } from '../core/component-table.ts';
import { DuckDbStore } from './duckdb/duckdb-store.ts';
import { duckDbStoreSchema } from './duckdb/duckdb-store-config.ts';
import { MemoryStore } from './memory/memory-store.ts';
import { memoryStoreSchema } from './memory/memory-store-config.ts';
import { PostgresStore } from './postgres/postgres-store.ts';
import { postgresStoreSchema } from './postgres/postgres-store-config.ts';
import type { Store } from './store.ts';

/** The file the DuckDB store uses when the config names none. */
export const DEFAULT_DUCKDB_FILE = 'streamlines.duckdb';

/** A store type; `create` builds it unopened (relative paths stay relative to the working directory). */
const storeType = componentKind<[dataDir: string], Store>();

/** The `store` section's types (the config's `store` is a union of their schemas). */
export const STORE_TYPES = [
  storeType({
    type: 'duckdb',
    schema: duckDbStoreSchema,
    create: (config, dataDir) =>
      new DuckDbStore({
        path: config.path ?? path.join(dataDir, DEFAULT_DUCKDB_FILE),
        memoryLimit: config.memoryLimit,
      }),
  }),
  storeType({ type: 'memory', schema: memoryStoreSchema, create: () => new MemoryStore() }),
  storeType({
    type: 'postgres',
    schema: postgresStoreSchema,
    create: (config) =>
      new PostgresStore({
        url: config.url,
        schema: config.schema,
        timescale: config.timescale,
        ticksRetentionMs: config.retention.ticks,
        aggregatesRetentionMs: config.retention.aggregates,
      }),
  }),
] as const;

/** The parsed `store` section. */
export type StoreConfig = ComponentConfig<typeof STORE_TYPES>;

/** Creates (but does not open) the configured store. */
export function createStore(config: StoreConfig, dataDir: string): Store {
  return createComponent(STORE_TYPES, config, dataDir);
}
