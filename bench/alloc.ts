/**
 * JS heap allocated per replay line by each stage of the embedded path (issue 13): the replay feed's
 * lines, ingest (JSON.parse, validate, dedup, entries), the embedded log's append (encoding, frame,
 * tail cache), reads from the tail cache and from disk (decoding), the processor alone, and the
 * process runner with a real DuckDB store: processing, live publishing, building the data chunks and
 * the rest of the commit.
 *
 * Allocation is `process.memoryUsage().heapUsed` after a stage minus before it, plus what every
 * garbage collection inside that window freed (`v8.GCProfiler`), so a GC in between does not hide
 * bytes. The process re-runs itself with big semi-spaces so that few GCs run at all. ArrayBuffer
 * contents (the log's frames, DuckDB's vectors) live outside the JS heap and are not counted.
 *
 * Run: `npx node bench/alloc.ts [LINES]` (default 300 000 lines over 100 symbols, the generator
 * `npm run bench` uses). Prints a table and, last, one JSON line.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { configSchema } from '../src/config/schema.ts';
import { type IngestEntry, TOPIC_TICKS } from '../src/core/records.ts';
import type { Feed, FeedBatch } from '../src/feeds/feed.ts';
import { ReplayFeed } from '../src/feeds/replay/replay-feed.ts';
import { Ingest } from '../src/ingest/ingest.ts';
import { EmbeddedLog } from '../src/log/embedded/embedded-log.ts';
import type { AppendRecord, Log } from '../src/log/log.ts';
import { ProcessRunner } from '../src/process/process-runner.ts';
import { emptyOutput, type ProcessConfig, Processor } from '../src/process/processor.ts';
import { DuckDbStore } from '../src/store/duckdb/duckdb-store.ts';
import type { Store, StoreBatch } from '../src/store/store.ts';
import { writeReplay } from '../test/support/generate-ticks.ts';
import { SYMBOLS } from './micro.ts';

const SEMI_SPACE_FLAG = '--max-semi-space-size=256';

/** Heap bytes allocated per named stage: heapUsed deltas corrected by what GCs freed in between. */
class AllocationMeter {
  readonly bytes = new Map<string, number>();
  gcs = 0;
  #stage: string | undefined;
  #profiler: v8.GCProfiler | undefined;
  #heapAtStart = 0;

  /** The stage whose window is open. */
  get stage(): string | undefined {
    return this.#stage;
  }

  /** Ends the current stage's window (if any) and opens one for `stage` (undefined: none). */
  switchTo(stage: string | undefined): string | undefined {
    const previous = this.#stage;
    if (previous !== undefined) {
      const heapAtEnd = process.memoryUsage().heapUsed;
      const freed = this.#freedByGc(this.#profiler!.stop());
      this.bytes.set(previous, (this.bytes.get(previous) ?? 0) + heapAtEnd - this.#heapAtStart + freed);
    }
    this.#stage = stage;
    if (stage !== undefined) {
      this.#profiler = new v8.GCProfiler();
      this.#profiler.start();
      this.#heapAtStart = process.memoryUsage().heapUsed;
    }
    return previous;
  }

  #freedByGc(result: ReturnType<v8.GCProfiler['stop']>): number {
    let freed = 0;
    for (const gc of result?.statistics ?? []) {
      this.gcs++;
      freed += gc.beforeGC.heapStatistics.usedHeapSize - gc.afterGC.heapStatistics.usedHeapSize;
    }
    return freed;
  }
}

/**
 * `log` with its appends and its reads of the ticks topic measured as stages of their own; after a
 * read the caller's stage resumes, or `afterRead` when given.
 */
function measuredLog(
  log: EmbeddedLog,
  meter: AllocationMeter,
  stages: { append?: string; read?: string; afterRead?: string },
): Log {
  return new Proxy(log, {
    get(target, property) {
      if (property === 'append' && stages.append !== undefined) {
        return async (topic: string, records: readonly AppendRecord<unknown>[], state?: unknown) => {
          const caller = meter.switchTo(stages.append);
          await target.append(topic, records, state);
          meter.switchTo(caller);
        };
      }
      if (property === 'read' && stages.read !== undefined) {
        return async (topic: string, partition: number, from: number, max: number) => {
          if (topic !== TOPIC_TICKS) return target.read(topic, partition, from, max);
          const caller = meter.switchTo(stages.read);
          const records = await target.read(topic, partition, from, max);
          meter.switchTo(stages.afterRead ?? caller);
          return records;
        };
      }
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/**
 * `store` with the synchronous part of `write` measured as a stage: the data chunks, the
 * latest-per-symbol pick, the checkpoint's JSON. The transaction's own JS work runs interleaved with
 * processing and is counted with whatever runs then.
 */
function measuredStore(store: DuckDbStore, meter: AllocationMeter): Store {
  return new Proxy(store, {
    get(target, property) {
      if (property === 'write') {
        return (batch: StoreBatch) => {
          const caller = meter.switchTo('store: chunks and write() call');
          const written = target.write(batch);
          meter.switchTo(caller);
          return written;
        };
      }
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** The replay feed with its reading and line splitting measured as a stage. */
function measuredFeed(feed: ReplayFeed, meter: AllocationMeter): Feed {
  return {
    name: feed.name,
    type: feed.type,
    bounded: feed.bounded,
    defaultSource: feed.defaultSource,
    async *run(position: unknown, signal: AbortSignal): AsyncIterable<FeedBatch> {
      const batches = feed.run(position, signal)[Symbol.asyncIterator]();
      for (;;) {
        meter.switchTo('feed: replay lines');
        const next = await batches.next();
        meter.switchTo('ingest: parse, validate, dedup');
        if (next.done) return;
        yield next.value;
        meter.switchTo('ingest: parse, validate, dedup');
      }
    },
  };
}

async function main(lines: number): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'streamlines-alloc-'));
  try {
    const replay = path.join(dir, 'ticks.ndjson');
    await writeReplay(replay, { count: lines, seed: 1, hostile: false, symbols: [...SYMBOLS] });
    const config = configSchema.parse({});
    const processConfig: ProcessConfig = {
      latenessMs: config.lateness,
      priceRules: config.alerts.rules,
      maCross: config.alerts.maCross,
      anomaly: config.alerts.anomaly,
    };
    const meter = new AllocationMeter();
    const logDir = path.join(dir, 'log');
    // The tail cache holds the whole replay, as it holds what the processor reads in the pipeline.
    const log = new EmbeddedLog({ dir: logDir, cacheRecords: lines * 2, cacheBytes: 1 << 30 });
    await log.open();

    // 1. feed → ingest → log append, as the pipeline runs them (without back-pressure).
    const ingest = new Ingest(measuredLog(log, meter, { append: 'log: encode and append' }));
    await ingest.open();
    const feed = new ReplayFeed({ type: 'replay', path: replay, speed: 'max', source: 'replay' });
    await ingest.runFeed(measuredFeed(feed, meter), new AbortController().signal);
    meter.switchTo(undefined);
    const entries = log.endOffset(TOPIC_TICKS, 0);

    // 2. The processor alone, on the entries read back from the tail cache in the runner's batches.
    const processor = new Processor(processConfig);
    let ticks = 0;
    let rows = 0;
    for (let offset = 0; offset < entries; ) {
      meter.switchTo('log: read from the tail cache');
      const records = await log.read<IngestEntry>(TOPIC_TICKS, 0, offset, 20_000);
      meter.switchTo('processor alone');
      const out = emptyOutput();
      for (const record of records) processor.apply(record.value, record.offset, out);
      meter.switchTo(undefined);
      ticks += out.ticks.length;
      rows += out.ticks.length + out.candles.length + out.indicators.length + out.alerts.length;
      offset = records[records.length - 1]!.offset + 1;
    }

    // 3. The process runner over the same log into a real DuckDB store, with a live listener.
    const store = new DuckDbStore({ path: path.join(dir, 'store.duckdb') });
    await store.open();
    const live = 'runner: live messages (forming candles, publish)';
    const runner = new ProcessRunner({
      log: measuredLog(log, meter, {
        read: 'runner: log read (tail cache)',
        afterRead: 'runner: process, queue, commit',
      }),
      store: measuredStore(store, meter),
      config: processConfig,
      maxQueuedEntries: 150_000,
      publish: () => {
        if (meter.stage !== live) meter.switchTo(live);
      },
    });
    await runner.open();
    const stop = new AbortController();
    const running = runner.run(stop.signal);
    meter.switchTo('runner: process, queue, commit');
    while (runner.committedOffset() < entries) await runner.waitForCommit(100);
    stop.abort();
    await running;
    meter.switchTo(undefined);
    await store.close();
    await log.close();

    // 4. A cold read of the whole log from disk: every section decoded.
    const cold = new EmbeddedLog({ dir: logDir });
    await cold.open();
    for (let offset = 0; offset < entries; ) {
      meter.switchTo('log: read from disk (decode)');
      const records = await cold.read<IngestEntry>(TOPIC_TICKS, 0, offset, 20_000);
      meter.switchTo(undefined);
      offset = records[records.length - 1]!.offset + 1;
    }
    await cold.close();

    const perLine: Record<string, number> = {};
    console.log(
      `${lines} lines, ${entries} log entries, ${ticks} ticks, ${rows} store rows (ticks, candles,`,
    );
    console.log(`indicators, alerts); ${meter.gcs} GCs during the measured windows`);
    console.log('| stage | heap bytes per line |');
    console.log('|---|---|');
    for (const [stage, bytes] of meter.bytes) {
      perLine[stage] = Math.round(bytes / lines);
      console.log(`| ${stage} | ${perLine[stage]} |`);
    }
    console.log(JSON.stringify({ lines, entries, ticks, rows, gcs: meter.gcs, bytesPerLine: perLine }));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const lines = Number(process.argv[2] ?? 300_000);
  if (!process.execArgv.includes(SEMI_SPACE_FLAG)) {
    // V8 sizes the young generation at start-up: re-run with room for whole stages between scavenges.
    const child = spawnSync(
      process.execPath,
      [...process.execArgv, SEMI_SPACE_FLAG, ...process.argv.slice(1)],
      {
        stdio: 'inherit',
      },
    );
    process.exit(child.status ?? 1);
  }
  await main(lines);
}
