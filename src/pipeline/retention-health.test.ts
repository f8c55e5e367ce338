import assert from 'node:assert/strict';
import { it } from 'node:test';
import { waitUntil } from '../../test/support/wait.ts';
import { HealthRegistry } from '../core/health.ts';
import { MemoryStore } from '../store/memory/memory-store.ts';
import { StoreRetention } from '../store/retention.ts';
import { retentionHealth } from './retention-health.ts';

it('retention failing is one `retention` fault, over at the next step that works even if it deletes nothing', async () => {
  const store = new MemoryStore();
  await store.open();
  let down = true;
  const newestTickTs = store.newestTickTs.bind(store);
  store.newestTickTs = async () => {
    if (down) throw new Error('PostgreSQL is unreachable (connect ECONNREFUSED)');
    return newestTickTs();
  };
  const lines: string[] = [];
  const health = new HealthRegistry({
    log: (event) => lines.push(`${event.kind} ${event.code ?? ''}`.trim()),
  });
  const retention = new StoreRetention({
    store,
    ticksMs: 60_000,
    candlesMs: 60_000,
    idleMs: 5,
    ...retentionHealth(health),
  });
  retention.start();
  try {
    await waitUntil(() => health.degradedEntries().length === 1, 'the fault');
    const entry = health.degradedEntries()[0]!;
    assert.equal(entry.dependency, 'retention');
    assert.equal(entry.required, false, 'reads and writes go on: /ready stays 200, degraded');
    down = false;
    // The store is empty: the next step deletes nothing, and still ends the fault.
    await waitUntil(() => health.degradedEntries().length === 0, 'the end of the fault');
  } finally {
    await retention.stop();
  }
  assert.deepEqual(lines, ['degraded retention_failed', 'recovered']);
});
