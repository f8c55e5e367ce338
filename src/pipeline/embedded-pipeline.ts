/**
 * All stages in one process (`streamlines run`): feeds → ingest → log → process → store, with the
 * live stream handed to the server in process. This is the embedded default of docs/design.md, Modes.
 */
import path from 'node:path';
import type { Config } from '../config/schema.ts';
import { type HealthEvent, HealthRegistry } from '../core/health.ts';
import {
  ControlError,
  type LiveListener,
  type PipelineControl,
  type PipelineView,
  type Stats,
} from '../core/pipeline-view.ts';
import {
  type Candle,
  type Interval,
  PROCESSOR_CHECKPOINT,
  TOPIC_ALERTS,
  TOPIC_TICKS,
} from '../core/records.ts';
import type { Feed } from '../feeds/feed.ts';
import { createFeed } from '../feeds/registry.ts';
import { Ingest, type IngestFault, TOPIC_INGEST_STATE } from '../ingest/ingest.ts';
import { SYMBOL_PATTERN } from '../ingest/validate.ts';
import { EmbeddedLake } from '../lake/lake.ts';
import type { EmbeddedLog } from '../log/embedded/embedded-log.ts';
import type { Log } from '../log/log.ts';
import { createLog } from '../log/registry.ts';
import type { BatchMetricsRecorder } from '../process/batch-metrics.ts';
import { ProcessRunner } from '../process/process-runner.ts';
import { createSinkEntries } from '../sinks/registry.ts';
import { SinkStage } from '../sinks/sink-stage.ts';
import { DuckDbStore } from '../store/duckdb/duckdb-store.ts';
import { withRecentCandles } from '../store/recent-candles.ts';
import { createStore } from '../store/registry.ts';
import { StoreRetention } from '../store/retention.ts';
import type { Store } from '../store/store.ts';
import { lockDataDir } from './data-dir-lock.ts';
import { watchPauses } from './pause-watch.ts';
import { retentionHealth } from './retention-health.ts';
import { LogReplay } from './sink-replay.ts';

/**
 * Processed entries the store writer may fall behind by, which is also the largest commit: above
 * DuckDB's row group (122 880 rows) a transaction's ticks skip the write-ahead log.
 */
const MAX_QUEUED_ENTRIES = 150_000;
/**
 * Log entries ingest may run ahead of the store by: the writer's queue plus a margin. The processor
 * runs ahead of the writer, so it stays within the embedded log's tail cache (100 000 records per
 * partition) and reads from memory.
 */
const MAX_LAG_ENTRIES = 180_000;

export interface EmbeddedPipelineOptions {
  config: Config;
  dataDir: string;
  /** Called when a feed fails for good (the pipeline keeps running the others). */
  onFeedError?: (feed: Feed, error: unknown) => void;
  /** Records latencies and store write time per committed batch (a PipelineMetrics, shared with the server). */
  metrics?: BatchMetricsRecorder;
  /** Where health lines go: each fault once when it starts and once when it ends (core/health.ts). */
  onHealthEvent?: (event: HealthEvent) => void;
  /** Store rows at or after the returned ts are never deleted by retention (the lake's hold). */
  retentionHoldBackBeforeMs?: () => number;
  /** How often retention looks for dead letters over `retention.deadLetters` once none were (default 60 s). */
  retentionDeadLetterCheckMs?: number;
  /** Feeds to run instead of the configured ones (`streamlines import` runs its files as one). */
  feeds?: Feed[];
}

export class EmbeddedPipeline implements PipelineView, PipelineControl {
  readonly log: Log;
  readonly store: Store;
  readonly feeds: Feed[];
  /** The Parquet lake beside the DuckDB store, when `lake.enabled` (docs/warehouse.md). */
  readonly lake: EmbeddedLake | undefined;
  #lakeRun: Promise<void> | undefined;
  readonly #ingest: Ingest;
  readonly #runner: ProcessRunner;
  /** Forwards committed batches to the configured sinks (none: undefined). */
  readonly #sinks: SinkStage | undefined;
  readonly retention: StoreRetention;
  /** What `/ready` and `/api/v1/stats` report about the dependencies. */
  readonly health: HealthRegistry;
  readonly #listeners = new Set<LiveListener>();
  readonly #abort = new AbortController();
  readonly #options: EmbeddedPipelineOptions;
  #processing: Promise<unknown> | undefined;
  #retention: Promise<void> | undefined;
  /** Running feeds: each has its own abort controller so the control panel can stop one. */
  readonly #feedRuns = new Map<string, { controller: AbortController; done: Promise<void> }>();
  #unlock: (() => Promise<void>) | undefined;
  #stopPauseWatch: (() => void) | undefined;
  /** Feeds ingest holds back because the log cannot take their appends. */
  readonly #stalledFeeds = new Set<string>();

  constructor(options: EmbeddedPipelineOptions) {
    const { config, dataDir } = options;
    this.#options = options;
    this.log = createLog(config.log, dataDir);
    // Every write goes through this process, so recent candles and latest prices can be answered
    // from memory (docs/design.md, Targets: REST p99 <= 10 ms) without ever disagreeing with the store.
    const hot = createStore(config.store, dataDir);
    // The lake sits under the recent-candles cache: older history reads through it (docs/design.md, Retention and history).
    this.lake =
      config.lake.enabled && hot instanceof DuckDbStore
        ? new EmbeddedLake(hot, {
            config: config.lake,
            lakePath: config.lake.path ?? path.join(dataDir, 'lake'),
            latenessMs: config.lateness,
            onError: (error) =>
              process.stderr.write(`lake: ${error instanceof Error ? error.message : String(error)}\n`),
          })
        : undefined;
    this.store = withRecentCandles(this.lake?.store ?? hot);
    this.health = new HealthRegistry({ log: options.onHealthEvent });
    this.retention = new StoreRetention({
      store: this.store,
      ticksMs: config.retention.ticks,
      candlesMs: config.retention.candles,
      deadLetters: config.retention.deadLetters,
      ...(options.retentionDeadLetterCheckMs !== undefined && {
        deadLetterCheckMs: options.retentionDeadLetterCheckMs,
      }),
      // Rows leave the hot store only once the lake holds them (docs/design.md, Retention and history).
      holdBackBeforeMs: options.retentionHoldBackBeforeMs ?? lakeHoldBack(this.lake),
      ...retentionHealth(this.health),
    });
    this.feeds = options.feeds ?? config.feeds.map((feed) => createFeed(feed, config.symbols));
    this.#ingest = new Ingest(this.log, {
      backpressure: () => this.#waitForProcessor(),
      dedupHorizonMs: config.dedupHorizon,
      onFault: (fault) => this.#reportIngestFault(fault),
    });
    const processConfig = {
      latenessMs: config.lateness,
      priceRules: config.alerts.rules,
      maCross: config.alerts.maCross,
      anomaly: config.alerts.anomaly,
    };
    if (config.sinks.length > 0) {
      this.#sinks = new SinkStage({
        sinks: createSinkEntries(config.sinks),
        replay: () => new LogReplay(this.log, processConfig),
        dataDir,
        checkpointName: PROCESSOR_CHECKPOINT,
      });
    }
    this.#runner = new ProcessRunner({
      health: this.health,
      log: this.log,
      // The sinks see each batch once its transaction committed.
      store: this.#sinks?.wrap(this.store) ?? this.store,
      config: processConfig,
      publish: (channel, data) => {
        for (const listener of this.#listeners) listener(channel, data);
      },
      metrics: options.metrics,
      maxQueuedEntries: MAX_QUEUED_ENTRIES,
    });
  }

  /** Locks the data dir, recovers log, store and processor, and starts feeds and processing. */
  async start(): Promise<void> {
    if (this.#options.config.log.type !== 'memory' || this.#options.config.store.type !== 'memory') {
      this.#unlock = await lockDataDir(this.#options.dataDir);
    }
    await this.log.open();
    this.#reportLogRepairs();
    await this.store.open();
    await this.#sinks?.start(this.store);
    if (this.lake) this.#lakeRun = this.lake.run(this.#abort.signal);
    await this.#ingest.open();
    await this.#runner.open();
    this.#processing = this.#runner.run(this.#abort.signal);
    this.#retention = this.#markProcessed();
    this.retention.start();
    this.#stopPauseWatch = watchPauses(this.health);
    for (const feed of this.feeds) this.#runFeed(feed);
  }

  /**
   * Tells the log what the store's checkpoint holds after every commit, so log retention deletes only
   * processed segments (docs/design.md, Retention and history), and nothing ingest's dedup needs after a restart. Of the alerts
   * and ingest-state topics only the last record is ever read back, and the newest segment is never
   * deleted.
   */
  async #markProcessed(): Promise<void> {
    const log = this.log;
    if (!log.markProcessed) return;
    while (!this.#abort.signal.aborted) {
      // Ingest reads back the ticks from its dedup horizon on after a restart: those stay too.
      const offsets = this.#runner.committedOffsets();
      const retainFrom = this.#ingest.retainFrom();
      // A sink that is behind catches up by replaying the log from its checkpoint: keep those entries.
      const sinksFrom = this.#sinks?.retainFrom();
      for (let partition = 0; partition < offsets.length; partition++) {
        const processed = Math.min(
          offsets[partition]!,
          retainFrom[partition] ?? Number.POSITIVE_INFINITY,
          sinksFrom === undefined ? Number.POSITIVE_INFINITY : (sinksFrom[partition] ?? 0),
        );
        log.markProcessed(TOPIC_TICKS, partition, processed);
      }
      for (const topic of [TOPIC_ALERTS, TOPIC_INGEST_STATE]) {
        for (let partition = 0; partition < log.partitions(topic); partition++)
          log.markProcessed(topic, partition, log.endOffset(topic, partition));
      }
      await this.#runner.waitForCommit(1_000);
    }
  }

  /**
   * A log that cannot take appends (a full disk) holds the feeds back until it can: one `log` fault
   * from the first feed held to the last one let go, on /ready, the pipeline page and the log.
   */
  #reportIngestFault(fault: IngestFault): void {
    if (fault.phase === 'start') {
      this.#stalledFeeds.add(fault.feed);
      this.health.degraded(
        'log',
        `appends fail, ingest holds the feeds back until they succeed (nothing is lost): ${fault.message}`,
        'log_no_space',
      );
      return;
    }
    this.#stalledFeeds.delete(fault.feed);
    if (this.#stalledFeeds.size === 0) this.health.ok('log');
  }

  /** A torn tail the log cut off at open (after a crash) is worth a line in the operator's log. */
  #reportLogRepairs(): void {
    const repairs = (this.log as Partial<Pick<EmbeddedLog, 'repairs'>>).repairs ?? [];
    for (const repair of repairs) {
      this.health.event(
        'log',
        `repaired a torn log tail after an unclean shutdown: ${repair.topic} ${repair.segment} cut at byte ` +
          `${repair.truncatedAt} (${repair.droppedBytes} bytes of an append that never completed dropped)`,
        'log_tail_repaired',
      );
    }
  }

  #runFeed(feed: Feed): void {
    const controller = new AbortController();
    const stopAll = () => controller.abort();
    this.#abort.signal.addEventListener('abort', stopAll, { once: true });
    const done = this.#ingest
      .runFeed(feed, controller.signal)
      .catch((error: unknown) => this.#options.onFeedError?.(feed, error))
      .finally(() => {
        this.#abort.signal.removeEventListener('abort', stopAll);
        if (this.#feedRuns.get(feed.name)?.controller === controller) this.#feedRuns.delete(feed.name);
      });
    this.#feedRuns.set(feed.name, { controller, done });
  }

  /** Stops feeds, lets the processor commit what it has read, and closes everything. */
  async stop(): Promise<void> {
    this.#stopPauseWatch?.();
    this.#abort.abort();
    await Promise.allSettled([
      this.#processing,
      this.#retention,
      this.#lakeRun,
      ...[...this.#feedRuns.values()].map((run) => run.done),
    ]);
    await this.#sinks?.stop();
    await this.retention.stop();
    await this.log.close();
    await this.store.close();
    await this.#unlock?.();
  }

  stats(): Stats {
    const logEndOffset = this.#logEndOffset();
    const processedOffset = this.#runner.committedOffset();
    const feeds = this.#ingest.feedStatuses();
    const bounded = this.feeds.filter((feed) => feed.bounded);
    const drained =
      bounded.length > 0 &&
      bounded.every((feed) => this.#ingest.hasEnded(feed.name)) &&
      processedOffset >= logEndOffset;
    const sinks = this.#sinks?.statuses();
    return {
      ...this.#runner.counters(),
      drained,
      logEndOffset,
      processedOffset,
      feeds,
      ...(sinks && { sinks }),
      health: this.health.entries(),
      retention: this.retention.progress(),
    };
  }

  formingCandles(symbol: string, interval: Interval): Candle[] {
    return this.#runner.formingCandles(symbol, interval);
  }

  async startFeed(name: string): Promise<void> {
    const feed = this.#feed(name);
    if (this.#feedRuns.has(name)) throw new ControlError('conflict', `feed "${name}" is already running`);
    if (this.#ingest.hasEnded(name))
      throw new ControlError('conflict', `feed "${name}" has ended; a replay runs once`);
    this.#runFeed(feed);
  }

  async stopFeed(name: string): Promise<void> {
    this.#feed(name);
    const run = this.#feedRuns.get(name);
    if (!run) throw new ControlError('conflict', `feed "${name}" is not running`);
    run.controller.abort();
    await run.done;
  }

  feedSymbols(name: string): string[] {
    return this.#feed(name).symbols?.() ?? [];
  }

  async addSymbol(feedName: string, symbol: string): Promise<void> {
    const feed = this.#feed(feedName);
    if (!feed.addSymbol)
      throw new ControlError('unsupported', `feed "${feedName}" cannot add symbols while running`);
    feed.addSymbol(normaliseSymbol(symbol));
  }

  async removeSymbol(feedName: string, symbol: string): Promise<void> {
    const feed = this.#feed(feedName);
    if (!feed.removeSymbol)
      throw new ControlError('unsupported', `feed "${feedName}" cannot remove symbols while running`);
    const normalised = normaliseSymbol(symbol);
    if (!(feed.symbols?.() ?? []).includes(normalised)) {
      throw new ControlError('conflict', `feed "${feedName}" does not trade ${normalised}`);
    }
    feed.removeSymbol(normalised);
  }

  #feed(name: string): Feed {
    const feed = this.feeds.find((candidate) => candidate.name === name);
    if (!feed)
      throw new ControlError(
        'unknown_feed',
        `no feed named "${name}"; feeds: ${this.feeds.map((f) => f.name).join(', ')}`,
      );
    return feed;
  }

  onLive(listener: LiveListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Holds ingest while the processor is more than MAX_LAG_ENTRIES behind the log. */
  async #waitForProcessor(): Promise<void> {
    while (
      !this.#abort.signal.aborted &&
      this.#logEndOffset() - this.#runner.committedOffset() > MAX_LAG_ENTRIES
    ) {
      await this.#runner.waitForCommit(1_000);
    }
  }

  #logEndOffset(): number {
    let total = 0;
    for (let partition = 0; partition < this.log.partitions(TOPIC_TICKS); partition++) {
      total += this.log.endOffset(TOPIC_TICKS, partition);
    }
    return total;
  }
}

function normaliseSymbol(symbol: string): string {
  const normalised = symbol.trim().toUpperCase();
  if (!SYMBOL_PATTERN.test(normalised)) {
    throw new ControlError(
      'invalid_symbol',
      `symbol must match ${SYMBOL_PATTERN.source}, got ${JSON.stringify(symbol)}`,
    );
  }
  return normalised;
}

/** The lake's hold-back for retention, or none without a lake (then rows expire by age alone). */
function lakeHoldBack(lake: EmbeddedLake | undefined): (() => number) | undefined {
  return lake === undefined ? undefined : () => lake.holdBackBeforeMs();
}
