import assert from 'node:assert/strict';
import { access, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { DuckDbStore } from './duckdb/duckdb-store.ts';
import { MemoryStore } from './memory/memory-store.ts';
import { createStore } from './registry.ts';

test('createStore picks the memory store', () => {
  assert.ok(createStore({ type: 'memory' }, '/nonexistent') instanceof MemoryStore);
});

test('createStore puts the DuckDB file in the data dir by default, or where the config says', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'streamlines-registry-'));
  try {
    const byDefault = createStore({ type: 'duckdb' }, dir);
    assert.ok(byDefault instanceof DuckDbStore);
    await byDefault.open();
    await byDefault.close();
    await access(path.join(dir, 'streamlines.duckdb'));

    const explicit = createStore({ type: 'duckdb', path: path.join(dir, 'elsewhere', 'x.duckdb') }, dir);
    await explicit.open();
    await explicit.close();
    await access(path.join(dir, 'elsewhere', 'x.duckdb'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
