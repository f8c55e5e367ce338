import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { it } from 'node:test';
import { logConfigSchema } from '../config/schema.ts';
import { EmbeddedLog } from './embedded/embedded-log.ts';
import { MemoryLog } from './memory/memory-log.ts';
import { createLog } from './registry.ts';

it('creates a memory log', () => {
  assert.ok(createLog({ type: 'memory' }, '/nonexistent') instanceof MemoryLog);
});

it('creates an embedded log under <dataDir>/log', async () => {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'streamlines-registry-'));
  try {
    const log = createLog(
      logConfigSchema.parse({ type: 'embedded', fsync: true, segmentBytes: 4096 }),
      dataDir,
    );
    assert.ok(log instanceof EmbeddedLog);
    await log.open();
    await log.append('price-ticks', [{ key: 'BTCUSDT', value: 1 }]);
    await log.close();
    const segments = await fs.readdir(path.join(dataDir, 'log', 'price-ticks'));
    assert.ok(segments.includes('00000000000000000000.seg'), segments.join(', '));
  } finally {
    await fs.rm(dataDir, { recursive: true, force: true });
  }
});
