/**
 * The sink stage: forwards what the processor committed to every configured sink (docs/design.md, The flow,
 * issue #15). It sits behind the store: `wrap(store)` hands each committed batch to the stage after
 * its transaction, by pushing it onto each sink's in-memory queue, so a slow or dead sink never
 * slows the pipeline.
 *
 * Delivery, per sink: a runner writes queued batches in commit order, retrying with backoff, and
 * keeps its own checkpoint (the log offsets and processor state of the last batch the target took)
 * in `DATA_DIR/sinks/NAME.json`. Sinks write idempotently (deterministic keys), so re-delivering
 * after a crash leaves each target exactly as one clean run would. When a sink falls further behind
 * than its backlog allows, or starts behind (a restart, a new sink), the runner stops using the
 * queue and re-derives the batches it missed from the log, starting from its checkpoint's processor
 * state (`CommittedReplay`): the processor is deterministic, so these are the batches that were
 * committed.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { SinkStatus } from '../core/pipeline-view.ts';
import type { Store, StoreBatch } from '../store/store.ts';
import { batchRows, type Sink, type SinkBatch, SinkError, selectRecords } from './sink.ts';

/** Log offsets per partition of `price-ticks`. */
export type Offsets = Record<number, number>;

/** Where a sink stands: the processor's checkpoint as of the last batch it delivered. */
export interface SinkCheckpoint {
  offsets: Offsets;
  /** The processor's state after that batch (what replay resumes from). */
  state: unknown;
}

/** One or more committed processor batches, as a sink receives them. */
export interface CommittedBatch {
  batch: SinkBatch;
  /** The offsets the batch continues from, and those it reached. */
  from: Offsets;
  to: Offsets;
  /** The processor's state after the batch. */
  state: unknown;
}

/**
 * Re-derives committed batches from the log. The pipeline implements it with a Processor (sinks sit
 * beside process, so they do not import it); one instance per sink, it may keep a warm processor.
 */
export interface CommittedReplay {
  /**
   * The batch following `from` (undefined: the log's start with an empty processor), at most
   * `maxEntries` log entries and never past `to`; undefined when `from` already reached `to`.
   */
  next(
    from: SinkCheckpoint | undefined,
    to: Offsets,
    maxEntries: number,
  ): Promise<CommittedBatch | undefined>;
  /** Whether the log still starts at offset 0 everywhere (retention has deleted nothing). */
  holdsWholeLog(): Promise<boolean>;
}

export interface SinkEntry {
  /** Unique among the configured sinks; names the checkpoint file and the metrics' `sink` label. */
  name: string;
  sink: Sink;
  /** Rows queued in memory before the runner drops its queue and catches up from the log. */
  backlogRows: number;
}

export interface SinkStageOptions {
  sinks: readonly SinkEntry[];
  /** A new replay for one sink. */
  replay: () => CommittedReplay;
  /** Checkpoints go to `dataDir/sinks/NAME.json`. */
  dataDir: string;
  /** The store checkpoint whose batches are forwarded (the embedded processor's). */
  checkpointName: string;
  /** Retry backoff bounds, ms. */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** Rows per target write, at most. */
  maxWriteRows?: number;
  /** Shortest time between two checkpoint files of one sink, ms (a crash re-delivers at most this much). */
  checkpointEveryMs?: number;
}

export const SINK_STATES = ['connecting', 'live', 'catching_up', 'retrying', 'stopped'] as const;

const CHECKPOINT_VERSION = 1;
/** Queue entries (commits) a runner holds at most, whatever their rows: a sink of alerts only still bounds memory. */
const MAX_QUEUED_COMMITS = 10_000;
/** Log entries per replayed batch. */
const REPLAY_ENTRIES = 20_000;

/** Whether `a` is at or past `b` on every partition `b` names. */
export function reached(a: Offsets, b: Offsets): boolean {
  for (const [partition, offset] of Object.entries(b)) {
    if ((a[Number(partition)] ?? 0) < offset) return false;
  }
  return true;
}

function sameOffsets(a: Offsets, b: Offsets): boolean {
  return reached(a, b) && reached(b, a);
}

function normaliseOffsets(offsets: Offsets): Offsets {
  const out: Offsets = {};
  for (const [partition, offset] of Object.entries(offsets)) out[Number(partition)] = Number(offset);
  return out;
}

function total(offsets: Offsets): number {
  let sum = 0;
  for (const offset of Object.values(offsets)) sum += offset;
  return sum;
}

/** Joins consecutive committed batches into one. */
function mergeCommitted(items: readonly CommittedBatch[]): CommittedBatch {
  if (items.length === 1) return items[0]!;
  const batch = { ticks: [], candles: [], indicators: [], alerts: [] } as {
    [K in keyof SinkBatch]: SinkBatch[K][number][];
  };
  for (const item of items) {
    for (const tick of item.batch.ticks) batch.ticks.push(tick);
    for (const candle of item.batch.candles) batch.candles.push(candle);
    for (const point of item.batch.indicators) batch.indicators.push(point);
    for (const alert of item.batch.alerts) batch.alerts.push(alert);
  }
  const last = items[items.length - 1]!;
  return { batch, from: items[0]!.from, to: last.to, state: last.state };
}

class SinkRunner {
  readonly #entry: SinkEntry;
  readonly #replay: CommittedReplay;
  readonly #checkpointFile: string;
  readonly #stage: SinkStage;
  readonly #options: Required<
    Pick<SinkStageOptions, 'retryMinMs' | 'retryMaxMs' | 'maxWriteRows' | 'checkpointEveryMs'>
  >;
  #delivered: SinkCheckpoint | undefined;
  #queue: CommittedBatch[] = [];
  #queuedRows = 0;
  #state: SinkStatus['state'] = 'connecting';
  #rowsDelivered = 0;
  #batchesDelivered = 0;
  #errors = 0;
  #overflows = 0;
  #lastError: string | null = null;
  #lastDeliveredAt: number | null = null;
  #savedAt = 0;
  #saved = true;
  #wake: (() => void) | undefined;

  constructor(entry: SinkEntry, stage: SinkStage, options: SinkStageOptions) {
    this.#entry = entry;
    this.#stage = stage;
    this.#replay = options.replay();
    this.#checkpointFile = path.join(options.dataDir, 'sinks', `${entry.name}.json`);
    this.#options = {
      retryMinMs: options.retryMinMs ?? 250,
      retryMaxMs: options.retryMaxMs ?? 5_000,
      maxWriteRows: options.maxWriteRows ?? 5_000,
      checkpointEveryMs: options.checkpointEveryMs ?? 1_000,
    };
  }

  get name(): string {
    return this.#entry.name;
  }

  deliveredOffsets(): Offsets {
    return this.#delivered?.offsets ?? {};
  }

  /**
   * Reads the checkpoint file. Without one the sink starts from the beginning of the log, or, when
   * retention already trimmed it, from `current` (the processor's checkpoint: only what comes next).
   */
  async load(current: SinkCheckpoint | undefined): Promise<void> {
    const text = await readFile(this.#checkpointFile, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    if (text === undefined) {
      if (current !== undefined && !(await this.#replay.holdsWholeLog())) this.#delivered = current;
      return;
    }
    const saved = JSON.parse(text) as { version: number; offsets: Offsets; state: unknown };
    if (saved.version !== CHECKPOINT_VERSION)
      throw new Error(
        `sink ${this.name}: unsupported checkpoint version ${saved.version} in ${this.#checkpointFile}`,
      );
    this.#delivered = { offsets: normaliseOffsets(saved.offsets), state: saved.state };
  }

  /** Called for every committed batch, synchronously after its store transaction: never waits. */
  enqueue(item: CommittedBatch): void {
    const selected = { ...item, batch: selectRecords(item.batch, this.#entry.sink.records) };
    const rows = batchRows(selected.batch);
    if (this.#queuedRows + rows > this.#entry.backlogRows || this.#queue.length >= MAX_QUEUED_COMMITS) {
      // The queue is only a shortcut: dropping it loses nothing, the runner replays from the log.
      this.#queue = [];
      this.#queuedRows = 0;
      this.#overflows++;
      return;
    }
    this.#queue.push(selected);
    this.#queuedRows += rows;
  }

  status(): SinkStatus {
    const delivered = this.#delivered?.offsets ?? {};
    return {
      name: this.name,
      type: this.#entry.sink.type,
      records: [...this.#entry.sink.records],
      state: this.#state,
      deliveredOffset: total(delivered),
      lagEntries: Math.max(0, total(this.#stage.committedOffsets()) - total(delivered)),
      backlogRows: this.#queuedRows,
      rowsDelivered: this.#rowsDelivered,
      batchesDelivered: this.#batchesDelivered,
      errors: this.#errors,
      overflows: this.#overflows,
      lastError: this.#lastError,
      lastDeliveredAt: this.#lastDeliveredAt,
    };
  }

  async run(signal: AbortSignal): Promise<void> {
    const sink = this.#entry.sink;
    let retryMs = this.#options.retryMinMs;
    while (!signal.aborted) {
      try {
        await sink.open();
        break;
      } catch (error) {
        this.#recordError(error);
        await this.#sleep(retryMs, signal);
        retryMs = Math.min(retryMs * 2, this.#options.retryMaxMs);
      }
    }
    while (!signal.aborted) {
      let work: CommittedBatch | undefined;
      try {
        work = await this.#nextWork();
      } catch (error) {
        // The log could not be read (or replayed): keep trying, the state shows why.
        this.#recordError(error);
        await this.#sleep(this.#options.retryMaxMs, signal);
        continue;
      }
      if (work === undefined) {
        if (!this.#saved) await this.#saveCheckpoint();
        await this.#sleep(1_000, signal);
        continue;
      }
      if (!(await this.#write(work, signal))) break;
      this.#delivered = { offsets: work.to, state: work.state };
      this.#saved = false;
      if (Date.now() - this.#savedAt >= this.#options.checkpointEveryMs) await this.#saveCheckpoint();
    }
    if (!this.#saved) await this.#saveCheckpoint().catch(() => undefined);
    this.#state = 'stopped';
    await sink.close().catch(() => undefined);
  }

  /** The next batch to write: from the queue when it continues the checkpoint, else replayed from the log. */
  async #nextWork(): Promise<CommittedBatch | undefined> {
    const delivered = this.#delivered?.offsets ?? {};
    while (this.#queue.length > 0 && reached(delivered, this.#queue[0]!.to)) this.#shift();
    const head = this.#queue[0];
    if (head !== undefined && !sameOffsets(delivered, head.from) && reached(delivered, head.from)) {
      // Part of the head is delivered already (cannot happen with aligned replays; be safe): replay it.
      this.#queue = [];
      this.#queuedRows = 0;
    }
    if (head !== undefined && sameOffsets(delivered, head.from)) {
      const items: CommittedBatch[] = [];
      let rows = 0;
      while (this.#queue.length > 0 && (items.length === 0 || rows < this.#options.maxWriteRows)) {
        rows += batchRows(this.#queue[0]!.batch);
        items.push(this.#shift());
      }
      if (this.#state !== 'retrying') this.#state = 'live';
      return mergeCommitted(items);
    }
    const target = this.#queue[0]?.from ?? this.#stage.committedOffsets();
    if (reached(delivered, target)) {
      if (this.#state !== 'retrying') this.#state = 'live';
      return undefined;
    }
    if (this.#state !== 'retrying') this.#state = 'catching_up';
    const replayed = await this.#replay.next(this.#delivered, target, REPLAY_ENTRIES);
    if (replayed === undefined) return undefined;
    return { ...replayed, batch: selectRecords(replayed.batch, this.#entry.sink.records) };
  }

  #shift(): CommittedBatch {
    const item = this.#queue.shift()!;
    this.#queuedRows -= batchRows(item.batch);
    return item;
  }

  /** Writes until the target takes the batch (true) or the stage stops (false). */
  async #write(work: CommittedBatch, signal: AbortSignal): Promise<boolean> {
    const rows = batchRows(work.batch);
    let retryMs = this.#options.retryMinMs;
    for (;;) {
      if (signal.aborted) return false;
      try {
        if (rows > 0) await this.#entry.sink.write(work.batch);
        this.#rowsDelivered += rows;
        this.#batchesDelivered++;
        this.#lastDeliveredAt = Date.now();
        if (this.#state === 'retrying') this.#state = 'live';
        return true;
      } catch (error) {
        this.#recordError(error);
        // A target that names its wait (429 Retry-After) gets it, up to a minute.
        const asked = error instanceof SinkError ? (error.retryAfterMs ?? 0) : 0;
        await this.#sleep(Math.max(retryMs, Math.min(asked, 60_000)), signal);
        retryMs = Math.min(retryMs * 2, this.#options.retryMaxMs);
      }
    }
  }

  #recordError(error: unknown): void {
    this.#errors++;
    this.#state = this.#state === 'connecting' ? 'connecting' : 'retrying';
    this.#lastError = error instanceof Error ? error.message : String(error);
  }

  async #saveCheckpoint(): Promise<void> {
    if (this.#delivered === undefined) return;
    const text = JSON.stringify({
      version: CHECKPOINT_VERSION,
      offsets: this.#delivered.offsets,
      state: this.#delivered.state ?? null,
    });
    await mkdir(path.dirname(this.#checkpointFile), { recursive: true });
    // Write then rename: after a crash the file holds the old checkpoint or the new, never half.
    const temporary = `${this.#checkpointFile}.tmp`;
    await writeFile(temporary, text);
    await rename(temporary, this.#checkpointFile);
    this.#savedAt = Date.now();
    this.#saved = true;
  }

  #sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
      this.#wake = done;
    });
  }

  /** Wakes a runner waiting for work (not one backing off after an error: that wait is the backoff). */
  wakeIfIdle(): void {
    if (this.#state !== 'retrying' && this.#state !== 'connecting') this.#wake?.();
  }
}

export class SinkStage {
  readonly #options: SinkStageOptions;
  readonly #runners: SinkRunner[];
  /** What the processor has committed (the store checkpoint's offsets). */
  #committed: Offsets = {};
  #abort = new AbortController();
  #running: Promise<unknown> | undefined;

  constructor(options: SinkStageOptions) {
    const names = new Set<string>();
    for (const { name } of options.sinks) {
      if (names.has(name)) throw new Error(`two sinks are named "${name}": give each a unique name`);
      names.add(name);
    }
    this.#options = options;
    this.#runners = options.sinks.map((entry) => new SinkRunner(entry, this, options));
  }

  /** The store, forwarding every committed batch of the followed checkpoint to the sinks. */
  wrap(store: Store): Store {
    const stage = this;
    return new Proxy(store, {
      get(target, property, receiver) {
        if (property === 'write') {
          return async (batch: StoreBatch) => {
            await target.write(batch);
            if (batch.checkpoint.name === stage.#options.checkpointName) stage.#committedBatch(batch);
          };
        }
        const value = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  }

  /** Loads each sink's checkpoint and the processor's position, then starts delivering. */
  async start(store: Store): Promise<void> {
    const checkpoint = await store.checkpoint(this.#options.checkpointName);
    this.#committed = normaliseOffsets(checkpoint?.offsets ?? {});
    const current = checkpoint && { offsets: this.#committed, state: checkpoint.state };
    for (const runner of this.#runners) await runner.load(current);
    this.#abort = new AbortController();
    this.#running = Promise.allSettled(this.#runners.map((runner) => runner.run(this.#abort.signal)));
  }

  /** Stops every runner; each saves its checkpoint and closes its sink. */
  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#running;
  }

  committedOffsets(): Offsets {
    return this.#committed;
  }

  /**
   * Per partition, the lowest offset some sink still needs from the log (its checkpoint; 0 for a
   * sink that has delivered nothing yet): log retention must keep entries from there on.
   */
  retainFrom(): Offsets {
    const from: Offsets = {};
    for (const runner of this.#runners) {
      const delivered = runner.deliveredOffsets();
      for (const partition of Object.keys(this.#committed).map(Number)) {
        const offset = delivered[partition] ?? 0;
        from[partition] = Math.min(from[partition] ?? Number.POSITIVE_INFINITY, offset);
      }
    }
    return from;
  }

  statuses(): SinkStatus[] {
    return this.#runners.map((runner) => runner.status());
  }

  #committedBatch(batch: StoreBatch): void {
    const from = this.#committed;
    const to = { ...from, ...normaliseOffsets(batch.checkpoint.offsets) };
    this.#committed = to;
    const item: CommittedBatch = {
      batch: {
        ticks: batch.ticks,
        candles: batch.candles,
        indicators: batch.indicators,
        alerts: batch.alerts,
      },
      from,
      to,
      state: batch.checkpoint.state,
    };
    for (const runner of this.#runners) {
      runner.enqueue(item);
      runner.wakeIfIdle();
    }
  }
}
