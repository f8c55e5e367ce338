/**
 * Drives the processor: reads `price-ticks` from the log in batches, applies them, and commits what
 * they produced to the store in one transaction with the processor's state and log offset, so a
 * restart resumes exactly where the last commit left off (DESIGN §4, Delivery). Alerts then go to
 * the log's alerts topic, and everything to live subscribers.
 */
import {
  type Alert,
  type Counters,
  INTERVALS,
  type IngestEntry,
  type Interval,
  TOPIC_ALERTS,
  TOPIC_TICKS,
} from '../core/records.ts';
import type { Log } from '../log/log.ts';
import type { BatchMetricsRecorder } from '../serve/metrics/pipeline-metrics.ts';
import type { LiveListener } from '../serve/pipeline-view.ts';
import type { Store } from '../store/store.ts';
import {
  emptyOutput,
  type ProcessConfig,
  type ProcessOutput,
  Processor,
  type ProcessorSnapshot,
} from './processor.ts';

export const PROCESSOR_CHECKPOINT = 'processor';

export interface ProcessRunnerOptions {
  log: Log;
  store: Store;
  config: ProcessConfig;
  /** Largest number of log entries per store transaction. */
  maxBatch?: number;
  /** Receives live messages after each commit. */
  publish?: LiveListener;
  /** Told about every committed batch (latencies, store write time). */
  metrics?: BatchMetricsRecorder;
}

interface AlertsProducerState {
  lastSeq: number;
}

export class ProcessRunner {
  readonly #log: Log;
  readonly #store: Store;
  readonly #config: ProcessConfig;
  readonly #maxBatch: number;
  readonly #publish: LiveListener | undefined;
  readonly #metrics: BatchMetricsRecorder | undefined;
  #processor: Processor | undefined;
  #offsets: number[] = [];
  #committedCounters: Counters | undefined;
  #lastAlertSeqLogged = -1;
  /** Resolvers of `waitForCommit` calls, woken after every commit. */
  #commitWaiters: (() => void)[] = [];

  constructor(options: ProcessRunnerOptions) {
    this.#log = options.log;
    this.#store = options.store;
    this.#config = options.config;
    this.#maxBatch = options.maxBatch ?? 20_000;
    this.#publish = options.publish;
    this.#metrics = options.metrics;
  }

  /** Restores the processor from the last checkpoint in the store. */
  async open(): Promise<void> {
    const checkpoint = await this.#store.checkpoint(PROCESSOR_CHECKPOINT);
    this.#processor = new Processor(this.#config, checkpoint?.state as ProcessorSnapshot | undefined);
    const partitions = this.#log.partitions(TOPIC_TICKS);
    this.#offsets = Array.from({ length: partitions }, (_, partition) => checkpoint?.offsets[partition] ?? 0);
    this.#committedCounters = this.#processor.counters();
    const alertsState = (await this.#log.producerState(TOPIC_ALERTS)) as AlertsProducerState | undefined;
    this.#lastAlertSeqLogged = alertsState?.lastSeq ?? -1;
  }

  /** Counters as of the last commit: they always match what the store holds. */
  counters(): Counters {
    return this.#committedCounters ?? this.#requireProcessor().counters();
  }

  /** Log entries committed to the store, over all partitions. */
  committedOffset(): number {
    return this.#offsets.reduce((sum, offset) => sum + offset, 0);
  }

  /** Resolves after the next commit, or after `timeoutMs` (so a stopped runner never hangs a caller). */
  waitForCommit(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.#commitWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  formingCandles(symbol: string, interval: Interval) {
    return this.#requireProcessor().formingCandles(symbol, interval);
  }

  /** Processes until `signal` aborts; every batch is committed before the next is read. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const processed = await this.step();
      if (processed === 0 && !signal.aborted) await this.#waitForData(250);
    }
  }

  /** Processes and commits at most one batch per partition; returns how many entries it handled. */
  async step(): Promise<number> {
    const processor = this.#requireProcessor();
    let handled = 0;
    for (let partition = 0; partition < this.#offsets.length; partition++) {
      const from = this.#offsets[partition]!;
      const records = await this.#log.read<IngestEntry>(TOPIC_TICKS, partition, from, this.#maxBatch);
      if (records.length === 0) continue;
      const out = emptyOutput();
      for (const record of records) processor.apply(record.value, record.offset, out);
      const processedAt = Date.now();
      const nextOffsets = [...this.#offsets];
      nextOffsets[partition] = records[records.length - 1]!.offset + 1;
      const batch = {
        ...out,
        checkpoint: { name: PROCESSOR_CHECKPOINT, offsets: { ...nextOffsets }, state: processor.snapshot() },
      };
      const writeStart = performance.now();
      await this.#store.write(batch);
      this.#metrics?.recordBatch(out.ticks, processedAt, Date.now(), (performance.now() - writeStart) / 1000);
      this.#offsets = nextOffsets;
      this.#committedCounters = processor.counters();
      handled += records.length;
      const waiters = this.#commitWaiters;
      this.#commitWaiters = [];
      for (const wake of waiters) wake();
      await this.#appendAlerts(out.alerts);
      this.#publishBatch(out);
    }
    return handled;
  }

  async #waitForData(timeoutMs: number): Promise<void> {
    // One partition in the embedded log; with several, waiting on the first is enough to wake up.
    await this.#log.waitFor(TOPIC_TICKS, 0, this.#offsets[0] ?? 0, timeoutMs);
  }

  /** Alerts already logged before a crash (seq <= the last one logged) are not logged twice. */
  async #appendAlerts(alerts: readonly Alert[]): Promise<void> {
    const fresh = alerts.filter((alert) => alert.seq > this.#lastAlertSeqLogged);
    if (fresh.length === 0) return;
    const lastSeq = fresh[fresh.length - 1]!.seq;
    await this.#log.append(
      TOPIC_ALERTS,
      fresh.map((alert) => ({ key: alert.symbol, value: alert })),
      { lastSeq } satisfies AlertsProducerState,
    );
    this.#lastAlertSeqLogged = lastSeq;
  }

  #publishBatch(out: ProcessOutput): void {
    const publish = this.#publish;
    if (!publish) return;
    const touched = new Set<string>();
    for (const tick of out.ticks) {
      touched.add(tick.symbol);
      publish(`ticks:${tick.symbol}`, {
        symbol: tick.symbol,
        ts: tick.ts,
        price: tick.price,
        size: tick.size,
        id: tick.id ?? null,
        side: tick.side ?? null,
        maShort: tick.maShort,
        maLong: tick.maLong,
        late: tick.late,
        source: tick.source,
        receivedAt: tick.receivedAt,
      });
    }
    for (const candle of out.candles) publish(`candles:${candle.symbol}:${candle.interval}`, candle);
    const processor = this.#requireProcessor();
    for (const symbol of touched) {
      for (const interval of INTERVALS) {
        for (const candle of processor.formingCandles(symbol, interval))
          publish(`candles:${symbol}:${interval}`, candle);
      }
    }
    for (const { seq: _seq, ...alert } of out.alerts) publish('alerts', alert);
  }

  #requireProcessor(): Processor {
    if (!this.#processor) throw new Error('ProcessRunner.open() must be called first');
    return this.#processor;
  }
}
