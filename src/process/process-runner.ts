/**
 * Drives the processor: reads `price-ticks` from the log in batches, applies them, and commits what
 * they produced to the store in one transaction with the processor's state and log offset, so a
 * restart resumes exactly where the last commit left off (docs/design.md, Delivery). Alerts then go to
 * the log's alerts topic. Live subscribers get each batch as soon as it is processed.
 *
 * Processing runs ahead of the store: a processing loop reads and applies batches and hands them to a
 * writer loop, which commits everything queued so far in one transaction (bigger transactions on a
 * busy store, no waiting on the store for live subscribers). The queue is bounded. A failed write
 * (the database is down) discards the queue, rolls the processor back to the last committed
 * snapshot and retries with backoff: nothing is skipped and nothing counted twice.
 */

import type { HealthReporter } from '../core/health.ts';
import type { LiveListener } from '../core/pipeline-view.ts';
import {
  type Alert,
  type Candle,
  type Counters,
  INTERVALS,
  type IngestEntry,
  type Interval,
  PROCESSOR_CHECKPOINT,
  TOPIC_ALERTS,
  TOPIC_TICKS,
} from '../core/records.ts';
import { type Log, type LogRecord, partitionFor } from '../log/log.ts';
import type { Store, StoreBatch } from '../store/store.ts';
import type { BatchMetricsRecorder } from './batch-metrics.ts';
import {
  emptyOutput,
  type ProcessConfig,
  type ProcessOutput,
  Processor,
  type ProcessorSnapshot,
} from './processor.ts';

export interface ProcessRunnerOptions {
  log: Log;
  store: Store;
  config: ProcessConfig;
  /** Largest number of log entries read and applied at once. */
  maxBatch?: number;
  /**
   * Least time between two store commits while the load is light (default 1 000 ms). A commit carries
   * the processor's whole snapshot, so committing every small batch costs far more than the batch:
   * the writer waits until this much time passed since its last commit, or `maxBatch` entries are
   * queued, or an input ended, or the runner stops. Live subscribers never wait for it.
   */
  commitIntervalMs?: number;
  /**
   * Processed entries the writer may fall behind by before processing waits for it (default 50 000).
   * Under load the writer commits everything queued at once, so this is also the largest commit:
   * DuckDB writes a transaction of a full row group (122 880 rows) straight to the file instead of
   * through its write-ahead log, which cut its CPU per tick by a third (docs/benchmarks.md).
   */
  maxQueuedEntries?: number;
  /** Receives live messages as soon as a batch is processed (before its store commit). */
  publish?: LiveListener;
  /** Told about every committed batch (latencies, store write time). */
  metrics?: BatchMetricsRecorder;
  /**
   * The partitions of `price-ticks` this runner processes (default: all). A distributed processor
   * runs one runner per partition it owns, each with its own checkpoint.
   */
  partitions?: readonly number[];
  /** Name of the store checkpoint holding this runner's state and offsets. Default `processor`. */
  checkpointName?: string;
  /**
   * Where alerts are appended (default `log`): a distributed processor gives each partition a
   * producer of its own, so a new owner of the partition fences the previous one.
   */
  alertsLog?: Log;
  /**
   * Every commit names the offsets it continues from, and the store refuses it when the checkpoint
   * moved (another processor took the partition over): `run` then rejects with that error.
   */
  fence?: boolean;
  /** Hears store writes failing (`store` degraded, e.g. a full disk) and succeeding again. */
  health?: HealthReporter;
}

/** A batch applied to the processor, queued for the writer. */
interface PreparedBatch {
  out: ProcessOutput;
  entries: number;
  processedAt: number;
  /** The batch holds an `end` entry: commit at once, so `drained` does not wait for the cadence. */
  ended: boolean;
}

const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 15_000;
/** Default of `maxQueuedEntries`. */
const MAX_QUEUED_ENTRIES = 50_000;

export class ProcessRunner {
  readonly #log: Log;
  readonly #store: Store;
  readonly #config: ProcessConfig;
  readonly #maxBatch: number;
  readonly #commitIntervalMs: number;
  readonly #maxQueuedEntries: number;
  readonly #publish: LiveListener | undefined;
  readonly #metrics: BatchMetricsRecorder | undefined;
  readonly #health: HealthReporter | undefined;
  readonly #checkpointName: string;
  readonly #alertsLog: Log;
  readonly #fence: boolean;
  /** The partitions this runner reads; set by open() when not given. */
  #partitions: readonly number[] | undefined;
  #processor: Processor | undefined;
  /** Committed log offsets per partition: what the store's checkpoint holds. */
  #offsets: number[] = [];
  /** Offsets read and applied to the processor: ahead of #offsets while a write is in flight. */
  #readOffsets: number[] = [];
  /** The snapshot of the last commit, to roll back to when a write fails. */
  #committedSnapshot: ProcessorSnapshot | undefined;
  #committedCounters: Counters | undefined;
  /** The last store failure, until a write succeeds again. */
  #writeError: unknown;
  /** Processed batches not yet written, in order. */
  #queue: PreparedBatch[] = [];
  #queuedEntries = 0;
  /** Set by the writer when a write fails; cleared once the processor is rolled back. */
  #failed = false;
  /** Wakes the writer (new batch) or the processing loop (queue drained, failure). */
  #wakeWriter: (() => void) | undefined;
  #wakeProcessing: (() => void) | undefined;
  /** Per partition, the seq of the last alert on the alerts topic: those at or below it are logged. */
  readonly #lastAlertSeqLogged = new Map<number, number>();
  /** The stored checkpoint's offsets, as the next fenced commit names them (`{}` before the first). */
  #storedOffsets: Record<number, number> = {};
  /** Set when the store refused a commit because the checkpoint moved: the partition is someone else's. */
  #fenced: unknown;
  /** Committed alerts whose append to the alerts topic failed: retried with the next commit. */
  #unloggedAlerts: Alert[] = [];
  /** Resolvers of `waitForCommit` calls, woken after every commit. */
  #commitWaiters: (() => void)[] = [];

  constructor(options: ProcessRunnerOptions) {
    this.#log = options.log;
    this.#store = options.store;
    this.#config = options.config;
    this.#maxBatch = options.maxBatch ?? 20_000;
    this.#commitIntervalMs = options.commitIntervalMs ?? 1_000;
    this.#maxQueuedEntries = options.maxQueuedEntries ?? MAX_QUEUED_ENTRIES;
    this.#publish = options.publish;
    this.#metrics = options.metrics;
    this.#health = options.health;
    this.#checkpointName = options.checkpointName ?? PROCESSOR_CHECKPOINT;
    this.#alertsLog = options.alertsLog ?? options.log;
    this.#fence = options.fence ?? false;
    this.#partitions = options.partitions;
  }

  /** Restores the processor from the last checkpoint in the store. */
  async open(): Promise<void> {
    const checkpoint = await this.#store.checkpoint(this.#checkpointName);
    this.#processor = new Processor(this.#config, checkpoint?.state as ProcessorSnapshot | undefined);
    const partitionCount = this.#log.partitions(TOPIC_TICKS);
    this.#partitions ??= Array.from({ length: partitionCount }, (_, partition) => partition);
    for (const partition of this.#partitions) {
      if (!Number.isInteger(partition) || partition < 0 || partition >= partitionCount)
        throw new Error(`partition ${partition} of ${TOPIC_TICKS} does not exist (it has ${partitionCount})`);
    }
    this.#offsets = Array.from(
      { length: partitionCount },
      (_, partition) => checkpoint?.offsets[partition] ?? 0,
    );
    this.#readOffsets = [...this.#offsets];
    this.#storedOffsets = checkpoint?.offsets ?? {};
    this.#committedSnapshot = checkpoint?.state as ProcessorSnapshot | undefined;
    this.#committedCounters = this.#processor.counters();
    const alertPartitions = this.#alertsLog.partitions(TOPIC_ALERTS);
    if (alertPartitions < partitionCount) {
      throw new Error(
        `the ${TOPIC_ALERTS} topic has ${alertPartitions} partitions, fewer than ${TOPIC_TICKS} (${partitionCount}): alerts go to their tick's partition`,
      );
    }
    for (const partition of this.#partitions) {
      const last = await lastRecord<Alert>(this.#alertsLog, TOPIC_ALERTS, partition);
      this.#lastAlertSeqLogged.set(partition, last?.value.seq ?? -1);
    }
  }

  /** Counters as of the last commit: they always match what the store holds. */
  counters(): Counters {
    return this.#committedCounters ?? this.#requireProcessor().counters();
  }

  /** Log entries committed to the store, over this runner's partitions. */
  committedOffset(): number {
    let sum = 0;
    for (const partition of this.#requirePartitions()) sum += this.#offsets[partition] ?? 0;
    return sum;
  }

  /** Committed log offsets per partition of `price-ticks` (0 for partitions not this runner's). */
  committedOffsets(): readonly number[] {
    return this.#offsets;
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

  /** The last store write error while processing is retrying, else undefined. */
  writeError(): unknown {
    return this.#writeError;
  }

  /**
   * Processes until `signal` aborts, then lets the writer commit what was processed. With `fence`,
   * rejects with the store's CheckpointConflictError when another processor took the partitions.
   */
  async run(signal: AbortSignal): Promise<void> {
    const stopped = new AbortController();
    const stop = () => stopped.abort();
    signal.addEventListener('abort', stop, { once: true });
    try {
      await this.#run(stopped);
    } finally {
      signal.removeEventListener('abort', stop);
    }
    if (this.#fenced !== undefined) throw this.#fenced;
  }

  async #run(stopped: AbortController): Promise<void> {
    const signal = stopped.signal;
    const writer = this.#writeLoop(stopped);
    while (!signal.aborted) {
      if (this.#failed) {
        // The queue was built on state that never reached the store: drop it and start again from
        // the last commit. The writer waits out its backoff before it writes again.
        this.#queue = [];
        this.#queuedEntries = 0;
        this.#rollBack();
        this.#failed = false;
        continue;
      }
      if (this.#queuedEntries >= this.#maxQueuedEntries) {
        await this.#waitForWriter(250);
        continue;
      }
      const queued = await this.#processNext();
      if (queued === 0) await this.#waitForData(250);
    }
    this.#wakeWriter?.();
    await writer;
    if (this.#failed) this.#rollBack();
  }

  /** Commits whatever is queued, in one transaction per round, until stopped and drained. */
  async #writeLoop(stopped: AbortController): Promise<void> {
    const signal = stopped.signal;
    let retryMs = RETRY_MIN_MS;
    let lastCommitAt = Number.NEGATIVE_INFINITY;
    for (;;) {
      if (this.#queue.length === 0 || this.#failed) {
        if (signal.aborted) return;
        await this.#sleepWriter(250);
        continue;
      }
      const waitMs = lastCommitAt + this.#commitIntervalMs - performance.now();
      if (waitMs > 0 && !signal.aborted && !this.#commitDue()) {
        await this.#sleepWriter(waitMs);
        continue;
      }
      lastCommitAt = performance.now();
      // The processing loop only appends to the queue synchronously after applying a batch, so
      // the processor's state and read offsets here are exactly those after the last queued batch.
      const batches = this.#queue;
      this.#queue = [];
      this.#queuedEntries = 0;
      this.#wakeProcessing?.();
      const committed = await this.#commit(batches, this.#requireProcessor(), [...this.#readOffsets]);
      if (this.#fenced !== undefined) {
        // Not ours any more: drop what was processed and stop; the new owner resumes from the store.
        this.#failed = true;
        stopped.abort();
        this.#wakeProcessing?.();
        return;
      }
      if (!committed) {
        this.#failed = true;
        this.#wakeProcessing?.();
        if (signal.aborted) return;
        await sleep(retryMs, signal);
        retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
      } else {
        retryMs = RETRY_MIN_MS;
      }
    }
  }

  /** Sleeps until `timeoutMs` passed or the processing loop queued a batch. */
  async #sleepWriter(timeoutMs: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.#wakeWriter = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.#wakeWriter = undefined;
  }

  /** Whether the queue should be committed before the cadence asks: it is big, or an input ended. */
  #commitDue(): boolean {
    return this.#queuedEntries >= this.#maxBatch || this.#queue.some((batch) => batch.ended);
  }

  async #waitForWriter(timeoutMs: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.#wakeProcessing = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.#wakeProcessing = undefined;
  }

  /**
   * Reads and applies the next batch of the first partition that has one and queues it for the
   * writer; returns how many entries it queued (0 when caught up). Applying, advancing the read
   * offsets and queueing happen in one synchronous step, so whenever the writer looks, the
   * processor's state matches exactly what is queued.
   */
  async #processNext(): Promise<number> {
    const processor = this.#requireProcessor();
    for (const partition of this.#requirePartitions()) {
      const from = this.#readOffsets[partition]!;
      const records = await this.#log.read<IngestEntry>(TOPIC_TICKS, partition, from, this.#maxBatch);
      if (records.length === 0 || this.#failed) continue;
      const out = emptyOutput();
      let ended = false;
      for (const record of records) {
        processor.apply(record.value, record.offset, out);
        if (record.value.kind === 'end') ended = true;
      }
      const offsets = [...this.#readOffsets];
      offsets[partition] = records[records.length - 1]!.offset + 1;
      this.#readOffsets = offsets;
      this.#queue.push({ out, entries: records.length, processedAt: Date.now(), ended });
      this.#queuedEntries += records.length;
      this.#wakeWriter?.();
      // Live subscribers get the batch now rather than after the store commit, so a slow write does
      // not delay them (docs/design.md, Targets: tick to client p99 <= 20 ms). After a failed write the batch is
      // processed again and re-sent: the live stream is at-least-once, the store exactly-once.
      if (this.#publish) this.#publishBatch(out, formingOfTouched(processor, out));
      return records.length;
    }
    return 0;
  }

  /** Writes queued batches as one transaction with the processor's state; false when the store refused. */
  async #commit(
    batches: readonly PreparedBatch[],
    processor: Processor,
    offsets: number[],
  ): Promise<boolean> {
    const out = batches.length === 1 ? batches[0]!.out : mergeOutputs(batches.map((batch) => batch.out));
    const snapshot = processor.snapshot();
    const counters = processor.counters();
    const writeStart = performance.now();
    const checkpoint: StoreBatch['checkpoint'] = {
      name: this.#checkpointName,
      offsets: this.#offsetsRecord(offsets),
      state: snapshot,
    };
    if (this.#fence) checkpoint.previous = this.#storedOffsets;
    try {
      await this.#store.write({ ...out, checkpoint });
    } catch (error) {
      if (error instanceof Error && error.name === 'CheckpointConflictError') {
        this.#fenced = error;
        this.#metrics?.recordCheckpointConflict?.();
      } else {
        this.#metrics?.recordWriteError?.();
        const message = error instanceof Error ? error.message : String(error);
        this.#health?.degraded(
          'store',
          `writes fail and are retried, nothing is lost: ${message}`,
          'store_write_failed',
        );
      }
      this.#writeError = error;
      return false;
    }
    if (this.#writeError !== undefined) this.#health?.ok('store');
    this.#writeError = undefined;
    const storedAt = Date.now();
    const writeSeconds = (performance.now() - writeStart) / 1000;
    for (const batch of batches)
      this.#metrics?.recordBatch(batch.out.ticks, batch.processedAt, storedAt, writeSeconds);
    this.#offsets = offsets;
    this.#storedOffsets = checkpoint.offsets;
    this.#committedSnapshot = snapshot;
    this.#committedCounters = counters;
    const waiters = this.#commitWaiters;
    this.#commitWaiters = [];
    for (const wake of waiters) wake();
    await this.#appendAlerts(out.alerts);
    return true;
  }

  #rollBack(): void {
    this.#processor = new Processor(this.#config, this.#committedSnapshot);
    this.#readOffsets = [...this.#offsets];
  }

  async #waitForData(timeoutMs: number): Promise<void> {
    // Waiting on the first partition is enough to wake up now and then; the others are polled.
    const partition = this.#requirePartitions()[0] ?? 0;
    await this.#log.waitFor(TOPIC_TICKS, partition, this.#readOffsets[partition] ?? 0, timeoutMs);
  }

  /** The checkpoint's offsets: this runner's partitions only. */
  #offsetsRecord(offsets: readonly number[]): Record<number, number> {
    const record: Record<number, number> = {};
    for (const partition of this.#requirePartitions()) record[partition] = offsets[partition] ?? 0;
    return record;
  }

  /**
   * Each alert goes to the alerts partition of its tick's partition, so after a crash the last alert
   * there tells which committed alerts the topic already has: those are not logged twice.
   */
  async #appendAlerts(alerts: readonly Alert[]): Promise<void> {
    const partitionCount = this.#log.partitions(TOPIC_TICKS);
    for (const alert of alerts) {
      const partition = partitionFor(alert.symbol, partitionCount);
      if (alert.seq > (this.#lastAlertSeqLogged.get(partition) ?? -1)) this.#unloggedAlerts.push(alert);
    }
    const pending = this.#unloggedAlerts;
    if (pending.length === 0) return;
    const records = pending.map((alert) => ({
      key: alert.symbol,
      value: alert,
      partition: partitionFor(alert.symbol, partitionCount),
    }));
    try {
      await this.#alertsLog.append(TOPIC_ALERTS, records);
    } catch {
      // The store already holds these alerts; the topic gets them with the next commit. Throwing here
      // would end the writer loop over a side channel.
      return;
    }
    this.#unloggedAlerts = [];
    for (const { partition, value } of records) this.#lastAlertSeqLogged.set(partition, value.seq);
  }

  #publishBatch(out: ProcessOutput, forming: readonly Candle[]): void {
    const publish = this.#publish;
    if (!publish) return;
    for (const tick of out.ticks) {
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
    for (const candle of forming) publish(`candles:${candle.symbol}:${candle.interval}`, candle);
    for (const { seq: _seq, ...alert } of out.alerts) publish('alerts', alert);
  }

  #requirePartitions(): readonly number[] {
    if (!this.#partitions) throw new Error('ProcessRunner.open() must be called first');
    return this.#partitions;
  }

  #requireProcessor(): Processor {
    if (!this.#processor) throw new Error('ProcessRunner.open() must be called first');
    return this.#processor;
  }
}

/** The forming candles, every interval, of the symbols a batch touched. */
function formingOfTouched(processor: Processor, out: ProcessOutput): Candle[] {
  const touched = new Set<string>();
  for (const tick of out.ticks) touched.add(tick.symbol);
  const forming: Candle[] = [];
  for (const symbol of touched) {
    for (const interval of INTERVALS) forming.push(...processor.formingCandles(symbol, interval));
  }
  return forming;
}

/** The last record of a partition, looking back in growing windows (a distributed log's offsets skip). */
async function lastRecord<T>(log: Log, topic: string, partition: number): Promise<LogRecord<T> | undefined> {
  const end = log.endOffset(topic, partition);
  for (let window = 8; ; window *= 8) {
    const from = Math.max(0, end - window);
    const records = await log.read<T>(topic, partition, from, end - from);
    if (records.length > 0) return records[records.length - 1];
    if (from === 0) return undefined;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}

/** One output holding several batches' outputs in order. */
function mergeOutputs(outputs: readonly ProcessOutput[]): ProcessOutput {
  const merged = emptyOutput();
  for (const out of outputs) {
    for (const tick of out.ticks) merged.ticks.push(tick);
    for (const candle of out.candles) merged.candles.push(candle);
    for (const point of out.indicators) merged.indicators.push(point);
    for (const alert of out.alerts) merged.alerts.push(alert);
    for (const letter of out.deadLetters) merged.deadLetters.push(letter);
  }
  return merged;
}
