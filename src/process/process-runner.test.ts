import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitUntil } from '../../test/support/wait.ts';
import { type IngestEntry, PROCESSOR_CHECKPOINT, TOPIC_ALERTS, TOPIC_TICKS } from '../core/records.ts';
import { MemoryLog } from '../log/memory/memory-log.ts';
import { makeBatch } from '../store/conformance.ts';
import { MemoryStore } from '../store/memory/memory-store.ts';
import type { StoreBatch } from '../store/store.ts';
import { ProcessRunner } from './process-runner.ts';
import { DEFAULT_ANOMALY } from './processor.ts';

const CONFIG = {
  latenessMs: 10_000,
  priceRules: [{ symbol: 'AAA', above: 100.5 }],
  anomaly: DEFAULT_ANOMALY,
};

/** A store whose 3rd to 5th write calls fail, as a database outage would. */
class FlakyStore extends MemoryStore {
  calls = 0;
  failures = 0;
  override async write(batch: StoreBatch): Promise<void> {
    this.calls++;
    if (this.calls >= 3 && this.calls <= 5) {
      this.failures++;
      throw new Error('connection refused');
    }
    return super.write(batch);
  }
}

/** A store that counts its commits. */
class CountingStore extends MemoryStore {
  writes = 0;
  override async write(batch: StoreBatch): Promise<void> {
    this.writes++;
    return super.write(batch);
  }
}

function entries(count: number): IngestEntry[] {
  const list: IngestEntry[] = [];
  for (let i = 0; i < count; i++) {
    const price = 100 + Math.sin(i / 7);
    list.push({
      kind: 'tick',
      source: 't',
      symbol: i % 3 ? 'AAA' : 'BBB',
      ts: 1_700_000_000_000 + i * 1_500,
      price,
      size: 1,
      id: String(i),
      receivedAt: 0,
    });
  }
  list.push({ kind: 'end', source: 't' });
  return list;
}

async function runToEnd(store: MemoryStore, log: MemoryLog): Promise<ProcessRunner> {
  await store.open();
  const runner = new ProcessRunner({ log, store, config: CONFIG, maxBatch: 50 });
  await runner.open();
  const controller = new AbortController();
  const running = runner.run(controller.signal);
  const end = log.endOffset(TOPIC_TICKS, 0);
  while (runner.committedOffset() < end) await sleep(10);
  controller.abort();
  await running;
  return runner;
}

/** Opens log and store, then a runner over them with `options`, running until the returned `stop`. */
async function startRunner(
  log: MemoryLog,
  store: MemoryStore,
  options: Omit<ConstructorParameters<typeof ProcessRunner>[0], 'log' | 'store' | 'config'>,
): Promise<{ runner: ProcessRunner; stop: () => Promise<void> }> {
  await log.open();
  await store.open();
  const runner = new ProcessRunner({ log, store, config: CONFIG, ...options });
  await runner.open();
  const controller = new AbortController();
  const running = runner.run(controller.signal);
  return {
    runner,
    stop: async () => {
      controller.abort();
      await running;
    },
  };
}

async function dump(store: MemoryStore) {
  return {
    ticks: await store.ticks('AAA', { limit: 10_000 }),
    candles: await store.candles('BBB', '1m', { limit: 10_000 }),
    indicators: await store.indicators('AAA', '1m', { limit: 10_000 }),
    alerts: await store.alerts({ limit: 10_000 }),
    checkpoint: await store.checkpoint(PROCESSOR_CHECKPOINT),
  };
}

describe('ProcessRunner', () => {
  it('commits light load on its cadence, at once when the queue is full or an input ends', async () => {
    const log = new MemoryLog();
    const store = new CountingStore();
    const { runner, stop } = await startRunner(log, store, { maxBatch: 50, commitIntervalMs: 60_000 });
    const ticks = entries(120).filter((entry) => entry.kind === 'tick');
    // Light load: the first batch commits at once (no commit yet), the next waits for the cadence.
    await log.append(
      TOPIC_TICKS,
      ticks.slice(0, 10).map((value) => ({ key: 'k', value })),
    );
    await waitUntil(() => runner.committedOffset() === 10, 'the first batch committed');
    await log.append(
      TOPIC_TICKS,
      ticks.slice(10, 20).map((value) => ({ key: 'k', value })),
    );
    await runner.waitForCommit(300);
    assert.equal(runner.committedOffset(), 10, 'a light batch waits for the cadence');
    // A full queue (maxBatch entries) commits without waiting.
    await log.append(
      TOPIC_TICKS,
      ticks.slice(20, 80).map((value) => ({ key: 'k', value })),
    );
    await waitUntil(() => runner.committedOffset() === 70, 'the full queue committed');
    const writesBefore = store.writes;
    // The end of an input commits at once, so `drained` does not wait a cadence.
    await log.append(
      TOPIC_TICKS,
      [...ticks.slice(80, 85), { kind: 'end', source: 't' } as const].map((value) => ({ key: 'k', value })),
    );
    await waitUntil(() => runner.committedOffset() === 86, 'the ended input committed');
    assert.ok(store.writes > writesBefore);
    await stop();
  });

  it('processes at most maxQueuedEntries ahead of a slow store, then commits them as one transaction', async () => {
    /** A store whose writes wait until the test opens the gate, recording each commit's tick count. */
    class GatedStore extends MemoryStore {
      readonly commits: number[] = [];
      #open = false;
      #waiting: (() => void)[] = [];
      release(): void {
        this.#open = true;
        for (const wake of this.#waiting.splice(0)) wake();
      }
      override async write(batch: StoreBatch): Promise<void> {
        if (!this.#open) await new Promise<void>((resolve) => this.#waiting.push(resolve));
        this.commits.push(batch.ticks.length);
        return super.write(batch);
      }
    }
    const log = new MemoryLog();
    const store = new GatedStore();
    let published = 0;
    const { runner, stop } = await startRunner(log, store, {
      maxBatch: 50,
      maxQueuedEntries: 100,
      publish: (channel) => {
        if (channel.startsWith('ticks:')) published++;
      },
    });
    const ticks = entries(400).filter((entry) => entry.kind === 'tick');
    await log.append(
      TOPIC_TICKS,
      ticks.map((value) => ({ key: 'k', value })),
    );
    // The first batch of 50 is being written; two more fill the queue to its cap, and processing waits.
    await waitUntil(() => published === 150, '150 ticks processed');
    await sleep(300);
    assert.equal(published, 150, 'processing waits while the queue is full');
    store.release();
    await waitUntil(() => runner.committedOffset() === 400, 'everything committed');
    assert.deepEqual(store.commits.slice(0, 2), [50, 100], 'the queue went into one commit');
    await stop();
  });

  it('survives a store outage mid-stream with exactly the result of an uninterrupted run', async () => {
    const log = new MemoryLog();
    await log.open();
    await log.append(
      TOPIC_TICKS,
      entries(1_000).map((value) => ({ key: 'k', value })),
    );

    const clean = new MemoryStore();
    await runToEnd(clean, log);

    const flaky = new FlakyStore();
    const runner = await runToEnd(flaky, log);
    assert.equal(flaky.failures, 3, 'the outage was hit and retried through');
    assert.equal(runner.writeError(), undefined);
    assert.deepEqual(await dump(flaky), await dump(clean));
    assert.deepEqual(runner.counters(), (await runToEnd(new MemoryStore(), log)).counters());
  });
});

describe('ProcessRunner alerts topic', () => {
  it('logs every alert exactly once even when an append to the alerts topic fails', async () => {
    /** Refuses the first append to the alerts topic, as a full disk would. */
    class FlakyAlertsLog extends MemoryLog {
      refused = 0;
      override async append<T>(
        topic: string,
        records: readonly { key: string; value: T }[],
        state?: unknown,
      ) {
        if (topic === TOPIC_ALERTS && this.refused === 0) {
          this.refused++;
          throw new Error('no space left on device');
        }
        return super.append(topic, records, state);
      }
    }
    const log = new FlakyAlertsLog();
    await log.open();
    await log.append(
      TOPIC_TICKS,
      entries(1_000).map((value) => ({ key: 'k', value })),
    );
    const store = new MemoryStore();
    await runToEnd(store, log);
    const stored = await store.alerts({ limit: 10_000 });
    const logged = await log.read<{ seq: number }>(TOPIC_ALERTS, 0, 0, 10_000);
    assert.equal(log.refused, 1);
    assert.ok(stored.length > 1, 'the replay fires alerts');
    assert.deepEqual(
      logged.map((record) => record.value.seq),
      stored.map((alert) => alert.seq),
    );
  });
});

/** Counts what the runner reports to its metrics. */
class CountingRecorder {
  batches = 0;
  writeErrors = 0;
  conflicts = 0;
  recordBatch(): void {
    this.batches++;
  }
  recordWriteError(): void {
    this.writeErrors++;
  }
  recordCheckpointConflict(): void {
    this.conflicts++;
  }
}

describe('ProcessRunner store error metrics', () => {
  it('counts every failed write attempt once, and no checkpoint conflict', async () => {
    const log = new MemoryLog();
    await log.open();
    await log.append(
      TOPIC_TICKS,
      entries(1_000).map((value) => ({ key: 'k', value })),
    );
    const store = new FlakyStore();
    await store.open();
    const metrics = new CountingRecorder();
    const runner = new ProcessRunner({ log, store, config: CONFIG, maxBatch: 50, metrics });
    await runner.open();
    const controller = new AbortController();
    const running = runner.run(controller.signal);
    while (runner.committedOffset() < log.endOffset(TOPIC_TICKS, 0)) await sleep(10);
    controller.abort();
    await running;
    // FlakyStore fails write calls 3, 4 and 5: three failed attempts.
    assert.equal(store.failures, 3);
    assert.equal(metrics.writeErrors, 3);
    assert.equal(metrics.conflicts, 0);
    assert.ok(metrics.batches > 0);
  });

  it('counts a fenced commit (another processor continued the partition) as a conflict, not an error', async () => {
    const log = new MemoryLog();
    await log.open();
    await log.append(
      TOPIC_TICKS,
      entries(200).map((value) => ({ key: 'k', value })),
    );
    const store = new MemoryStore();
    await store.open();
    const metrics = new CountingRecorder();
    const runner = new ProcessRunner({ log, store, config: CONFIG, maxBatch: 50, metrics, fence: true });
    await runner.open();
    // Another processor commits to the same checkpoint after this runner read it.
    await store.write(
      makeBatch({ checkpoint: { name: PROCESSOR_CHECKPOINT, offsets: { 0: 7 }, state: {} } }),
    );
    await assert.rejects(runner.run(new AbortController().signal), { name: 'CheckpointConflictError' });
    assert.equal(metrics.conflicts, 1);
    assert.equal(metrics.writeErrors, 0);
    assert.equal(metrics.batches, 0);
  });
});
