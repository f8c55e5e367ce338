import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { storeConformance } from './conformance.ts';
import { DuckDbStore } from './duckdb/duckdb-store.ts';
import { MemoryStore } from './memory/memory-store.ts';

storeConformance('memory', async () => ({ store: new MemoryStore(), cleanup: async () => {} }));

storeConformance('duckdb :memory:', async () => ({
  store: new DuckDbStore({ path: ':memory:' }),
  cleanup: async () => {},
}));

storeConformance(
  'duckdb file',
  async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'streamlines-store-'));
    const file = path.join(dir, 'store.duckdb');
    return {
      store: new DuckDbStore({ path: file }),
      reopen: async () => new DuckDbStore({ path: file }),
      cleanup: () => rm(dir, { recursive: true, force: true }),
    };
  },
  { durable: true },
);
