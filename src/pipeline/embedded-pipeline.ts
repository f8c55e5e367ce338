/**
 * All stages in one process (`streamlines run`): feeds → ingest → log → process → store, with the
 * live stream handed to the server in process. This is the embedded default of DESIGN §2.
 */
import type { Config } from '../config/schema.ts';
import { type Candle, type Interval, TOPIC_TICKS } from '../core/records.ts';
import type { Feed } from '../feeds/feed.ts';
import { createFeed } from '../feeds/registry.ts';
import { Ingest } from '../ingest/ingest.ts';
import type { Log } from '../log/log.ts';
import { createLog } from '../log/registry.ts';
import { ProcessRunner } from '../process/process-runner.ts';
import type { LiveListener, PipelineView, Stats } from '../serve/pipeline-view.ts';
import { createStore } from '../store/registry.ts';
import type { Store } from '../store/store.ts';
import { lockDataDir } from './data-dir-lock.ts';

/** Well inside the embedded log's 100k-record tail cache, so the processor never reads from disk. */
const MAX_LAG_ENTRIES = 60_000;

export interface EmbeddedPipelineOptions {
  config: Config;
  dataDir: string;
  /** Called when a feed fails for good (the pipeline keeps running the others). */
  onFeedError?: (feed: Feed, error: unknown) => void;
}

export class EmbeddedPipeline implements PipelineView {
  readonly log: Log;
  readonly store: Store;
  readonly feeds: Feed[];
  readonly #ingest: Ingest;
  readonly #runner: ProcessRunner;
  readonly #listeners = new Set<LiveListener>();
  readonly #abort = new AbortController();
  readonly #options: EmbeddedPipelineOptions;
  #running: Promise<unknown>[] = [];
  #unlock: (() => Promise<void>) | undefined;

  constructor(options: EmbeddedPipelineOptions) {
    const { config, dataDir } = options;
    this.#options = options;
    this.log = createLog(config.log, dataDir);
    this.store = createStore(config.store, dataDir);
    this.feeds = config.feeds.map((feed) => createFeed(feed, config.symbols));
    this.#ingest = new Ingest(this.log, { backpressure: () => this.#waitForProcessor() });
    this.#runner = new ProcessRunner({
      log: this.log,
      store: this.store,
      config: {
        latenessMs: config.lateness,
        priceRules: config.alerts.rules,
        anomaly: config.alerts.anomaly,
      },
      publish: (channel, data) => {
        for (const listener of this.#listeners) listener(channel, data);
      },
    });
  }

  /** Locks the data dir, recovers log, store and processor, and starts feeds and processing. */
  async start(): Promise<void> {
    if (this.#options.config.log.type !== 'memory' || this.#options.config.store.type !== 'memory') {
      this.#unlock = await lockDataDir(this.#options.dataDir);
    }
    await this.log.open();
    await this.store.open();
    await this.#ingest.open();
    await this.#runner.open();
    const signal = this.#abort.signal;
    this.#running.push(this.#runner.run(signal));
    for (const feed of this.feeds) {
      this.#running.push(
        this.#ingest
          .runFeed(feed, signal)
          .catch((error: unknown) => this.#options.onFeedError?.(feed, error)),
      );
    }
  }

  /** Stops feeds, lets the processor commit what it has read, and closes everything. */
  async stop(): Promise<void> {
    this.#abort.abort();
    await Promise.allSettled(this.#running);
    this.#running = [];
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
    return { ...this.#runner.counters(), drained, logEndOffset, processedOffset, feeds };
  }

  formingCandles(symbol: string, interval: Interval): Candle[] {
    return this.#runner.formingCandles(symbol, interval);
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
