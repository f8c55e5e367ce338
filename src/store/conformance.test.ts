import { fileStoreHarness, storeConformance } from './conformance.ts';
import { DuckDbStore } from './duckdb/duckdb-store.ts';
import { MemoryStore } from './memory/memory-store.ts';

storeConformance('memory', async () => ({ store: new MemoryStore(), cleanup: async () => {} }));

storeConformance('duckdb :memory:', async () => ({
  store: new DuckDbStore({ path: ':memory:' }),
  cleanup: async () => {},
}));

storeConformance('duckdb file', () => fileStoreHarness((file) => new DuckDbStore({ path: file })), {
  durable: true,
});
