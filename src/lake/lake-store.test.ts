import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { storeConformance } from '../store/conformance.ts';
import { DuckDbStore } from '../store/duckdb/duckdb-store.ts';
import { EmbeddedLake } from './lake.ts';
import { lakeConfigSchema } from './lake-config.ts';

// The decorator changes nothing a store promises: with the lake beside it, the DuckDB store still
// passes the suite every store passes.
storeConformance(
  'duckdb file with the lake',
  async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'streamlines-lake-store-'));
    const file = path.join(dir, 'store.duckdb');
    const open = () =>
      new EmbeddedLake(new DuckDbStore({ path: file }), {
        config: lakeConfigSchema.parse({}),
        lakePath: path.join(dir, 'lake'),
        latenessMs: 10_000,
      }).store;
    return {
      store: open(),
      reopen: async () => open(),
      cleanup: () => rm(dir, { recursive: true, force: true }),
    };
  },
  { durable: true },
);
