import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { waitUntil } from '../../test/support/wait.ts';
import type { SinkStatus } from '../core/pipeline-view.ts';
import { type IngestEntry, PROCESSOR_CHECKPOINT, TOPIC_TICKS } from '../core/records.ts';
import { MemoryLog } from '../log/memory/memory-log.ts';
import { LogReplay } from '../pipeline/sink-replay.ts';
import { ProcessRunner } from '../process/process-runner.ts';
import { DEFAULT_ANOMALY } from '../process/processor.ts';
import { MemoryStore } from '../store/memory/memory-store.ts';
import type { Store, StoreBatch } from '../store/store.ts';
import { type Sink, type SinkBatch, SinkError, type SinkRecordKind } from './sink.ts';
import { SinkStage } from './sink-stage.ts';

const CONFIG = {
  latenessMs: 10_000,
  priceRules: [{ symbol: 'AAA', above: 100.5 }],
  anomaly: DEFAULT_ANOMALY,
};

/** Ticks of two symbols over a few hours, ending with the end of a replay (every window final). */
function entries(count: number, first = 0): IngestEntry[] {
  const list: IngestEntry[] = [];
  for (let i = first; i < first + count; i++) {
    list.push({
      kind: 'tick',
      source: 't',
      symbol: i % 3 ? 'AAA' : 'BBB',
      ts: 1_700_000_000_000 + i * 1_500,
      price: 100 + Math.sin(i / 7),
      size: 1,
      id: String(i),
      receivedAt: 0,
    });
  }
  return list;
}

/** Rows keyed as the real targets key them: a second write of a row replaces it. */
class KeyedSink implements Sink {
  readonly type = 'keyed';
  readonly records: readonly SinkRecordKind[];
  readonly rows = new Map<string, unknown>();
  writes = 0;
  rowsWritten = 0;
  /** While set, every write rejects. */
  down = false;
  /** Goes down by itself once it has taken this many writes (a target failing mid-stream). */
  downAfterWrites = Number.POSITIVE_INFINITY;

  constructor(records: readonly SinkRecordKind[] = ['ticks', 'candles', 'indicators', 'alerts']) {
    this.records = records;
  }

  async open(): Promise<void> {}
  async close(): Promise<void> {}

  async write(batch: SinkBatch): Promise<void> {
    this.writes++;
    if (this.writes > this.downAfterWrites) this.down = true;
    if (this.down) throw new SinkError('unreachable', 'target down');
    for (const t of batch.ticks) this.rows.set(`tick|${t.symbol}|${t.ts}|${t.seq}`, t);
    for (const c of batch.candles) this.rows.set(`candle|${c.symbol}|${c.interval}|${c.ts}`, c);
    for (const p of batch.indicators) this.rows.set(`indicator|${p.symbol}|${p.interval}|${p.ts}`, p);
    for (const a of batch.alerts) this.rows.set(`alert|${a.symbol}|${a.ts}|${a.seq}`, a);
    this.rowsWritten +=
      batch.ticks.length + batch.candles.length + batch.indicators.length + batch.alerts.length;
  }
}

/** Everything the processor committed, keyed like KeyedSink: the ground truth. */
function recordCommitted(store: Store, into: Map<string, unknown>): Store {
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'write') {
        return async (batch: StoreBatch) => {
          await target.write(batch);
          const sink = new KeyedSink();
          await sink.write(batch);
          for (const [key, value] of sink.rows) into.set(key, value);
        };
      }
      const value = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

interface Harness {
  log: MemoryLog;
  store: MemoryStore;
  committed: Map<string, unknown>;
  dataDir: string;
}

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function harness(): Promise<Harness> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'streamlines-sinks-'));
  dirs.push(dataDir);
  const log = new MemoryLog();
  await log.open();
  const store = new MemoryStore();
  await store.open();
  return { log, store, committed: new Map(), dataDir };
}

/** Runs the processor with a sink stage until `until` holds; returns the stage's last statuses. */
async function runWithSinks(
  h: Harness,
  sinks: { name: string; sink: Sink; backlogRows?: number }[],
  until: (statuses: SinkStatus[], runner: ProcessRunner) => boolean,
  maxWriteRows = 5_000,
  onStage?: (stage: SinkStage) => void,
): Promise<SinkStatus[]> {
  const stage = new SinkStage({
    sinks: sinks.map(({ name, sink, backlogRows }) => ({ name, sink, backlogRows: backlogRows ?? 100_000 })),
    replay: () => new LogReplay(h.log, CONFIG),
    dataDir: h.dataDir,
    checkpointName: PROCESSOR_CHECKPOINT,
    retryMinMs: 10,
    retryMaxMs: 50,
    checkpointEveryMs: 0,
    maxWriteRows,
  });
  await stage.start(h.store);
  onStage?.(stage);
  const runner = new ProcessRunner({
    log: h.log,
    store: stage.wrap(recordCommitted(h.store, h.committed)),
    config: CONFIG,
    maxBatch: 100,
  });
  await runner.open();
  const controller = new AbortController();
  const running = runner.run(controller.signal);
  await waitUntil(
    () => until(stage.statuses(), runner),
    () => `the sinks; statuses ${JSON.stringify(stage.statuses())}`,
    30_000,
  );
  controller.abort();
  await running;
  const statuses = stage.statuses();
  await stage.stop();
  return statuses;
}

const caughtUp = (h: Harness) => (statuses: SinkStatus[], runner: ProcessRunner) =>
  runner.committedOffset() === h.log.endOffset(TOPIC_TICKS, 0) &&
  statuses.every((status) => status.lagEntries === 0 && status.state === 'live');

async function append(log: MemoryLog, list: IngestEntry[]): Promise<void> {
  await log.append(
    TOPIC_TICKS,
    list.map((value) => ({ key: 'k', value })),
  );
}

describe('SinkStage', () => {
  it('delivers every committed row to each sink, only the kinds it takes', async () => {
    const h = await harness();
    await append(h.log, [...entries(2_000), { kind: 'end', source: 't' }]);
    const all = new KeyedSink();
    const alertsOnly = new KeyedSink(['alerts']);
    const [allStatus, alertStatus] = await runWithSinks(
      h,
      [
        { name: 'all', sink: all },
        { name: 'alerts', sink: alertsOnly },
      ],
      caughtUp(h),
    );
    assert.ok(h.committed.size > 2_000);
    assert.deepEqual(all.rows, h.committed);
    const alerts = [...h.committed].filter(([key]) => key.startsWith('alert|'));
    assert.ok(alerts.length > 0, 'the replay fires alerts');
    assert.deepEqual([...alertsOnly.rows], alerts);
    assert.equal(allStatus?.rowsDelivered, all.rowsWritten);
    assert.equal(alertStatus?.errors, 0);
    const saved = JSON.parse(await readFile(path.join(h.dataDir, 'sinks', 'all.json'), 'utf8'));
    assert.deepEqual(saved.offsets, { 0: h.log.endOffset(TOPIC_TICKS, 0) });
  });

  it('a target that is down is retried and never holds the pipeline back; past its backlog it catches up from the log', async () => {
    const h = await harness();
    const sink = new KeyedSink();
    sink.down = true;
    await append(h.log, [...entries(3_000), { kind: 'end', source: 't' }]);
    let sawRetrying = false;
    const statuses = await runWithSinks(
      h,
      [{ name: 'flaky', sink, backlogRows: 500 }],
      (statuses, runner) => {
        const [status] = statuses;
        if (status?.state === 'retrying') sawRetrying = true;
        // The processor commits everything while the target is down.
        if (
          sink.down &&
          runner.committedOffset() === h.log.endOffset(TOPIC_TICKS, 0) &&
          status!.errors >= 3
        ) {
          assert.ok(status!.lagEntries > 0);
          sink.down = false;
        }
        return !sink.down && caughtUp(h)(statuses, runner);
      },
    );
    assert.ok(sawRetrying, 'the state showed the outage');
    assert.ok(statuses[0]!.overflows > 0, 'the backlog overflowed');
    assert.ok(statuses[0]!.errors >= 3);
    assert.deepEqual(sink.rows, h.committed);
  });

  it('after a stop mid-stream, a new stage resumes from its checkpoint: the target ends as after one run', async () => {
    const h = await harness();
    await append(h.log, entries(2_000));
    const sink = new KeyedSink();
    // First run: the target takes three writes, then goes down; the stage is stopped behind.
    sink.downAfterWrites = 3;
    await runWithSinks(
      h,
      [{ name: 'resumed', sink }],
      (statuses) => sink.down && statuses[0]!.lagEntries > 0,
      200,
    );
    const firstRun = sink.rows.size;
    assert.ok(firstRun > 0 && firstRun < h.committed.size, `${firstRun} of ${h.committed.size}`);
    // More ticks arrive while it is stopped; a new stage (a restart) on the same data dir.
    await append(h.log, [...entries(1_000, 2_000), { kind: 'end', source: 't' }]);
    const restarted = new KeyedSink();
    for (const [key, value] of sink.rows) restarted.rows.set(key, value);
    await runWithSinks(h, [{ name: 'resumed', sink: restarted }], caughtUp(h));
    assert.deepEqual(restarted.rows, h.committed);
    // It resumed from its checkpoint rather than from the start of the log.
    assert.ok(restarted.rowsWritten < h.committed.size, `${restarted.rowsWritten} rows re-sent`);
  });

  it('a sink added to a pipeline that already ran starts from the beginning of the log', async () => {
    const h = await harness();
    await append(h.log, [...entries(1_500), { kind: 'end', source: 't' }]);
    await runWithSinks(h, [], (_, runner) => runner.committedOffset() === h.log.endOffset(TOPIC_TICKS, 0));
    const late = new KeyedSink();
    const [status] = await runWithSinks(h, [{ name: 'late', sink: late }], caughtUp(h));
    assert.deepEqual(late.rows, h.committed);
    assert.equal(status?.state, 'live');
  });

  it('log retention keeps what the furthest-behind sink still needs', async () => {
    const h = await harness();
    await append(h.log, [...entries(1_000), { kind: 'end', source: 't' }]);
    const end = h.log.endOffset(TOPIC_TICKS, 0);
    const up = new KeyedSink();
    const down = new KeyedSink();
    down.down = true;
    let stage: SinkStage | undefined;
    const retained: number[] = [];
    await runWithSinks(
      h,
      [
        { name: 'up', sink: up },
        { name: 'down', sink: down },
      ],
      (statuses) => {
        const [upStatus, downStatus] = statuses;
        if (down.down && upStatus!.lagEntries === 0 && downStatus!.errors > 0) {
          retained.push(stage!.retainFrom()[0]!);
          down.down = false;
        }
        return !down.down && statuses.every((status) => status.lagEntries === 0 && status.state === 'live');
      },
      5_000,
      (created) => {
        stage = created;
      },
    );
    assert.deepEqual(retained, [0], 'the sink that delivered nothing holds the log from its start');
    assert.deepEqual(stage!.retainFrom(), { 0: end });
  });

  it('rejects two sinks with one name', () => {
    assert.throws(
      () =>
        new SinkStage({
          sinks: [
            { name: 'a', sink: new KeyedSink(), backlogRows: 1 },
            { name: 'a', sink: new KeyedSink(), backlogRows: 1 },
          ],
          replay: () => ({ next: async () => undefined, holdsWholeLog: async () => true }),
          dataDir: '.',
          checkpointName: PROCESSOR_CHECKPOINT,
        }),
      /two sinks are named "a"/,
    );
  });
});
