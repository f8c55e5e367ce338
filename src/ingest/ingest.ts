/**
 * The ingest stage: turns feed batches into log entries (ticks, rejections, duplicates) and appends
 * them together with every feed's position, so a restart neither re-reads nor skips input.
 *
 * The dedup state is checkpointed to its own topic (`ingest-state`) every `dedupCheckpointEvery`
 * entries, with the log offsets it covers. It is a function of the accepted ticks up to those offsets,
 * so it needs no atomicity with the ticks: a restart loads the last checkpoint and runs the ticks after
 * it (and, for non-integer ids, those from its `horizonFrom`) through dedup again. Carrying it in every
 * append's producer state instead would cost a few KB per append with a few hundred symbols.
 */

import { sleepUnlessAborted } from '../core/abortable-sleep.ts';
import { type FeedCauseKind, type FeedStatus, LIVE_FEED_STATES } from '../core/pipeline-view.ts';
import { type IngestEntry, type RejectReason, TOPIC_TICKS } from '../core/records.ts';
import type { Feed, FeedBatch } from '../feeds/feed.ts';
import type { AppendRecord, Log } from '../log/log.ts';
import { Dedup, type DedupSnapshot, isDedupSnapshot } from './dedup.ts';
import { describe, validateRecord } from './validate.ts';

/** What ingest records with each append: where every feed stands. */
export interface IngestProducerState {
  feeds: Record<string, { position: unknown; ended: boolean }>;
  /** The seq the next entry gets, when ingest stamps them (`stampSeq`). */
  nextSeq?: number;
}

/** The topic ingest checkpoints its dedup state to (one partition; only its last record is read). */
export const TOPIC_INGEST_STATE = 'ingest-state';

/** A dedup checkpoint: the state after every accepted tick below `offsets` (per partition of the ticks). */
export interface DedupCheckpoint {
  version: 1;
  offsets: number[];
  dedup: DedupSnapshot;
}

/** A fault ingest rides out by itself, reported once when it starts and once when it ends. */
export interface IngestFault {
  feed: string;
  reason: 'no_space';
  phase: 'start' | 'end';
  message: string;
  /** When the fault started (ms). */
  since: number;
}

/** docs/design.md, Rules: non-integer ids are remembered for 24 h of event time unless configured otherwise. */
export const DEFAULT_DEDUP_HORIZON_MS = 86_400_000;

export interface IngestOptions {
  /** How often live feeds' wall clock is written to the log (closes quiet symbols' windows). */
  clockIntervalMs?: number;
  /** Dead letters keep at most this much of the raw input. */
  maxRawChars?: number;
  /**
   * Awaited before each append: lets the pipeline hold ingest back while the processor is far
   * behind, so a fast replay never outruns the log's tail cache or memory.
   */
  backpressure?: () => Promise<void>;
  /**
   * Stamps every entry but clocks with its place in ingest order (`seq`): a distributed log's
   * offsets are per partition and skip, so processors of different partitions need it to number
   * ticks, alerts and dead letters as the embedded log's offsets would.
   */
  stampSeq?: boolean;
  /** How long (event time) ids that are not canonical integers are remembered (default 24 h). */
  dedupHorizonMs?: number;
  /** Hears each fault's start and end (default: one line on stderr each). */
  onFault?: (fault: IngestFault) => void;
  /** Longest wait between retries of an append that failed for lack of space (default 2 s). */
  maxRetryMs?: number;
  /** Log entries between dedup checkpoints: a restart reads at most about this many back (default 50 000). */
  dedupCheckpointEvery?: number;
}

const READ_CHUNK = 50_000;

export class Ingest {
  readonly #log: Log;
  readonly #clockIntervalMs: number;
  readonly #maxRawChars: number;
  readonly #backpressure: (() => Promise<void>) | undefined;
  readonly #stampSeq: boolean;
  #nextSeq = 0;
  #dedup: Dedup;
  readonly #onFault: (fault: IngestFault) => void;
  readonly #checkpointEvery: number;
  /** Batches turned into entries whose append has not resolved: a checkpoint then would run ahead of the log. */
  #inFlight = 0;
  #sinceCheckpoint = 0;
  /** Ids the last checkpoint wrote out. */
  #checkpointIds = 0;
  /** Where a restart starts reading the ticks (the last durable checkpoint's offsets and horizonFrom). */
  #retainFrom: number[] = [];
  readonly #maxRetryMs: number;
  #state: IngestProducerState = { feeds: {} };
  readonly #status = new Map<string, FeedStatus>();
  /** The feeds behind the statuses, asked for their connection health. */
  readonly #feeds = new Map<string, Feed>();
  /** Bounded feeds whose end entry is in the log. */
  readonly #endLogged = new Set<string>();

  constructor(log: Log, options: IngestOptions = {}) {
    this.#log = log;
    this.#clockIntervalMs = options.clockIntervalMs ?? 1_000;
    this.#maxRawChars = options.maxRawChars ?? 4_096;
    this.#backpressure = options.backpressure;
    this.#stampSeq = options.stampSeq ?? false;
    this.#dedup = new Dedup(options.dedupHorizonMs ?? DEFAULT_DEDUP_HORIZON_MS);
    this.#onFault = options.onFault ?? writeFault;
    this.#maxRetryMs = options.maxRetryMs ?? 2_000;
    this.#checkpointEvery = options.dedupCheckpointEvery ?? 50_000;
  }

  /**
   * Restores the feeds' positions from the producer state of the last append, and the dedup state
   * from the last checkpoint plus the ticks after it (see the file comment); without a checkpoint, from
   * every tick in the log.
   */
  async open(): Promise<void> {
    const saved = (await this.#log.producerState(TOPIC_TICKS)) as IngestProducerState | undefined;
    if (saved?.feeds) this.#state = { feeds: { ...saved.feeds } };
    this.#nextSeq = saved?.nextSeq ?? 0;
    for (const [name, feed] of Object.entries(this.#state.feeds)) if (feed.ended) this.#endLogged.add(name);
    const partitions = this.#log.partitions(TOPIC_TICKS);
    const checkpoint = await lastCheckpoint(this.#log);
    const from = checkpoint?.offsets ?? new Array<number>(partitions).fill(0);
    if (checkpoint) {
      const dedup = new Dedup(this.#dedup.horizonMs, checkpoint.dedup);
      this.#dedup = dedup;
      const horizonFrom = checkpoint.dedup.horizonFrom;
      if (horizonFrom !== null) {
        await this.#readTicks(horizonFrom, from, (tick) =>
          dedup.replayAccepted(tick.source, tick.symbol, tick.ts, tick.id),
        );
      }
      this.#retainFrom = from.map((offset, p) => Math.min(offset, horizonFrom?.[p] ?? offset));
    } else {
      this.#retainFrom = [...from];
    }
    const ends = this.#endOffsets();
    this.#dedup.beginAppend(from);
    // Entries, not offset differences: a Kafka log's offsets skip (docs/kafka.md).
    this.#sinceCheckpoint = await this.#readTicks(from, ends, (tick) =>
      this.#dedup.check(tick.source, tick.symbol, tick.ts, tick.id),
    );
  }

  /**
   * Runs every accepted tick in [from, to) of each partition through `onTick`, in log order; resolves
   * to the number of entries (of any kind) read.
   */
  async #readTicks(
    from: readonly number[],
    to: readonly number[],
    onTick: (tick: IngestEntry & { kind: 'tick' }) => void,
  ): Promise<number> {
    let entries = 0;
    for (let partition = 0; partition < to.length; partition++) {
      const end = to[partition]!;
      for (let offset = from[partition] ?? 0; offset < end; ) {
        const records = await this.#log.read<IngestEntry>(TOPIC_TICKS, partition, offset, READ_CHUNK);
        for (const { offset: at, value } of records) {
          if (at >= end) continue;
          entries++;
          if (value.kind === 'tick') onTick(value);
        }
        if (records.length === 0) break;
        offset = records[records.length - 1]!.offset + 1;
      }
    }
    return entries;
  }

  /**
   * Per partition of the ticks, the first offset a restart reads back (from the last dedup checkpoint):
   * log retention must keep everything from there.
   */
  retainFrom(): readonly number[] {
    return this.#retainFrom;
  }

  /** How much the dedup state holds (keys, exact-id ranges, horizon ids). */
  dedupSizes(): { keys: number; ranges: number; ids: number } {
    return this.#dedup.sizes();
  }

  /** True once the feed of that name ran to its end and its end entry is in the log. */
  hasEnded(feedName: string): boolean {
    return this.#endLogged.has(feedName);
  }

  feedStatuses(): FeedStatus[] {
    return [...this.#status.values()].map((status) => {
      const live = this.#feeds.get(status.name)?.status?.();
      if (!live) return { ...status };
      const merged: FeedStatus = { ...status };
      // While it runs, a live feed's connection state says more than `running`; a fatal end is `fatal`.
      const connection = live.state === 'idle' ? 'connecting' : live.state;
      if (status.state === 'running' && LIVE_FEED_STATES.includes(connection as FeedStatus['state'])) {
        merged.state = connection as FeedStatus['state'];
      }
      if (status.state === 'failed' && live.fatal) merged.state = 'fatal';
      if (live.connected !== undefined) merged.connected = live.connected;
      if (live.reconnects !== undefined) merged.reconnects = live.reconnects;
      if (live.failedAttempts !== undefined) merged.failedAttempts = live.failedAttempts;
      if (live.lastConnectedAt !== undefined) merged.lastConnectedAt = live.lastConnectedAt;
      if (live.cause !== undefined) merged.cause = live.cause;
      if (live.causeKind !== undefined) merged.causeKind = live.causeKind as FeedCauseKind;
      if (live.backfilled !== undefined) merged.backfilled = live.backfilled;
      if (live.fatal !== undefined && live.fatal !== null) merged.fatal = live.fatal;
      return merged;
    });
  }

  /**
   * Runs one feed until it ends or `signal` aborts, appending what it produces. Resolves when the
   * feed is done; a feed that throws is marked failed and the error is rethrown.
   */
  async runFeed(feed: Feed, signal: AbortSignal): Promise<void> {
    const status: FeedStatus = {
      name: feed.name,
      type: feed.type,
      state: 'starting',
      messages: 0,
      lastMessageAt: null,
    };
    this.#status.set(feed.name, status);
    this.#feeds.set(feed.name, feed);
    if (this.hasEnded(feed.name)) {
      status.state = 'ended';
      return;
    }
    const clock = feed.bounded ? undefined : setInterval(() => this.#appendClock(), this.#clockIntervalMs);
    try {
      status.state = 'running';
      status.startedAt = Date.now();
      for await (const batch of feed.run(this.#state.feeds[feed.name]?.position, signal)) {
        if (this.#backpressure) await this.#backpressure();
        this.#dedup.beginAppend(this.#endOffsets());
        const records = this.#toRecords(batch, feed.defaultSource);
        if (this.#stampSeq) for (const record of records) record.value.seq = this.#nextSeq++;
        status.messages += records.length;
        if (records.length > 0) status.lastMessageAt = Date.now();
        this.#state.feeds[feed.name] = { position: batch.position, ended: false };
        this.#inFlight++;
        let appended: boolean;
        try {
          appended = await this.#appendRetrying(status, records, signal);
        } finally {
          this.#inFlight--;
        }
        if (!appended) break;
        this.#sinceCheckpoint += records.length;
        await this.#checkpointDedup();
        if (signal.aborted) break;
      }
      if (signal.aborted) {
        status.state = 'stopped';
        return;
      }
      if (feed.bounded) {
        const position = this.#state.feeds[feed.name]?.position;
        this.#state.feeds[feed.name] = { position, ended: true };
        const end: IngestEntry = { kind: 'end', source: feed.name };
        if (this.#stampSeq) end.seq = this.#nextSeq++;
        if (!(await this.#appendRetrying(status, this.#everyPartition(end), signal))) {
          status.state = 'stopped';
          return;
        }
        this.#endLogged.add(feed.name);
        await this.#checkpointDedup(true);
        status.state = 'ended';
      } else {
        status.state = 'stopped';
      }
    } catch (error) {
      status.state = 'failed';
      status.error = error instanceof Error ? error.message : String(error);
      throw error;
    } finally {
      if (clock) clearInterval(clock);
    }
  }

  /**
   * Appends, and while the log's disk is full holds the feed back (it is not read meanwhile), retrying
   * until the append goes through: nothing is lost, and the fault shows in the feed's status and in one
   * line when it starts and one when it ends. Resolves false when `signal` aborts first.
   */
  async #appendRetrying(
    status: FeedStatus,
    records: AppendRecord<IngestEntry>[],
    signal: AbortSignal,
  ): Promise<boolean> {
    let waitMs = 50;
    for (;;) {
      try {
        await this.#log.append(TOPIC_TICKS, records, this.#snapshotState());
      } catch (error) {
        if (!isNoSpace(error)) throw error;
        if (status.stalled === undefined) {
          status.stalled = { reason: 'no_space', since: Date.now(), message: errorMessage(error) };
          this.#onFault({ feed: status.name, phase: 'start', ...status.stalled });
        }
        if (!(await sleepUnlessAborted(waitMs, signal))) {
          delete status.stalled;
          return false;
        }
        waitMs = Math.min(this.#maxRetryMs, waitMs * 2);
        continue;
      }
      if (status.stalled !== undefined) {
        const { since } = status.stalled;
        delete status.stalled;
        this.#onFault({
          feed: status.name,
          reason: 'no_space',
          phase: 'end',
          since,
          message: `space is back after ${((Date.now() - since) / 1_000).toFixed(1)} s; appending again`,
        });
      }
      return true;
    }
  }

  /**
   * Appends a dedup checkpoint once enough entries went by and no batch is between dedup and the log
   * (then the state is exactly that of the ticks below the log's end offsets), or at once when `now`
   * (a bounded feed ended: the log behind it becomes deletable). A failure only delays it.
   */
  async #checkpointDedup(now = false): Promise<void> {
    // Written ids cost the checkpoint: spacing checkpoints by 4 entries per written id bounds that cost.
    const every = Math.max(this.#checkpointEvery, 4 * this.#checkpointIds);
    if ((!now && this.#sinceCheckpoint < every) || this.#inFlight > 0) return;
    const dedup = this.#dedup.checkpoint(now);
    this.#checkpointIds = dedup.keys.reduce((sum, key) => sum + key.ids.length / 2, 0);
    const checkpoint: DedupCheckpoint = { version: 1, offsets: this.#endOffsets(), dedup };
    this.#sinceCheckpoint = 0;
    try {
      await this.#log.append(TOPIC_INGEST_STATE, [{ key: '', value: checkpoint, partition: 0 }]);
    } catch {
      this.#sinceCheckpoint = this.#checkpointEvery;
      return;
    }
    const { offsets } = checkpoint;
    this.#retainFrom = offsets.map((offset, p) => Math.min(offset, dedup.horizonFrom?.[p] ?? offset));
  }

  #snapshotState(): IngestProducerState {
    const state: IngestProducerState = { feeds: { ...this.#state.feeds } };
    if (this.#stampSeq) state.nextSeq = this.#nextSeq;
    return state;
  }

  /** The log's end offsets now: at or before where the next append's records land. */
  #endOffsets(): number[] {
    const partitions = this.#log.partitions(TOPIC_TICKS);
    return Array.from({ length: partitions }, (_, partition) => this.#log.endOffset(TOPIC_TICKS, partition));
  }

  #appendClock(): void {
    const entry: IngestEntry = { kind: 'clock', wallMs: Date.now() };
    this.#log.append(TOPIC_TICKS, this.#everyPartition(entry)).catch(() => undefined);
  }

  /** One copy per partition: `end` and `clock` concern every symbol, and each partition has its processor. */
  #everyPartition(entry: IngestEntry): AppendRecord<IngestEntry>[] {
    const partitions = this.#log.partitions(TOPIC_TICKS);
    return Array.from({ length: partitions }, (_, partition) => ({ key: '', value: entry, partition }));
  }

  #toRecords(batch: FeedBatch, defaultSource: string): AppendRecord<IngestEntry>[] {
    const receivedAt = Date.now();
    const records: AppendRecord<IngestEntry>[] = [];
    if (batch.lines) {
      for (const line of batch.lines) {
        let value: unknown;
        try {
          value = JSON.parse(line);
        } catch (error) {
          const reason = error instanceof Error ? error.message : 'unparseable';
          records.push(
            this.#rejected(defaultSource, 'invalid_json', `not valid JSON: ${reason}`, line, receivedAt),
          );
          continue;
        }
        records.push(this.#accept(value, line, defaultSource, receivedAt));
      }
    }
    if (batch.values) {
      for (const value of batch.values)
        records.push(this.#accept(value, undefined, defaultSource, receivedAt));
    }
    return records;
  }

  #accept(
    value: unknown,
    line: string | undefined,
    defaultSource: string,
    receivedAt: number,
  ): AppendRecord<IngestEntry> {
    const result = validateRecord(value, defaultSource, receivedAt, 'tick');
    if (!result.ok) {
      return this.#rejected(
        defaultSource,
        result.reason,
        result.detail,
        line ?? safeStringify(value),
        receivedAt,
      );
    }
    const { tick } = result;
    const verdict = this.#dedup.check(tick.source, tick.symbol, tick.ts, tick.id);
    if (verdict === 'duplicate') {
      const duplicate: IngestEntry = {
        kind: 'duplicate',
        source: tick.source,
        symbol: tick.symbol,
        id: tick.id!,
        receivedAt,
      };
      return { key: tick.symbol, value: duplicate };
    }
    if (verdict === 'too_old') {
      return this.#rejected(
        tick.source,
        'too_old',
        `id ${JSON.stringify(tick.id)} is not a canonical integer and ts ${tick.ts} is more than dedupHorizon ` +
          `(${this.#dedup.horizonMs} ms) behind the newest tick of ${tick.source}/${tick.symbol}, so it can no ` +
          'longer be checked for duplicates',
        line ?? safeStringify(value),
        receivedAt,
      );
    }
    // validateRecord built it with `kind: 'tick'`.
    return { key: tick.symbol, value: tick as IngestEntry & { kind: 'tick' } };
  }

  #rejected(
    source: string,
    reason: RejectReason,
    detail: string,
    raw: string,
    receivedAt: number,
  ): AppendRecord<IngestEntry> {
    const kept = raw.length > this.#maxRawChars ? raw.slice(0, this.#maxRawChars) : raw;
    return { key: '', value: { kind: 'rejected', source, reason, detail, raw: kept, receivedAt } };
  }
}

function safeStringify(value: unknown): string {
  try {
    return JSON.stringify(value) ?? describe(value);
  } catch {
    return describe(value);
  }
}

/** A full disk (ENOSPC, EDQUOT), as the log reports it (LOG_NO_SPACE) or as a raw fs error in its causes. */
export function isNoSpace(error: unknown): boolean {
  for (let cause = error, depth = 0; cause !== undefined && cause !== null && depth < 5; depth++) {
    const code = (cause as { code?: unknown }).code;
    if (code === 'LOG_NO_SPACE' || code === 'ENOSPC' || code === 'EDQUOT') return true;
    cause = (cause as { cause?: unknown }).cause;
  }
  return false;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function writeFault(fault: IngestFault): void {
  const what = fault.phase === 'start' ? 'paused: the log cannot take appends' : 'resumed';
  process.stderr.write(`ingest: feed ${fault.feed} ${what} (${fault.reason}): ${fault.message}\n`);
}

/** The last dedup checkpoint in the log, or undefined. */
async function lastCheckpoint(log: Log): Promise<DedupCheckpoint | undefined> {
  const end = log.endOffset(TOPIC_INGEST_STATE, 0);
  for (let window = 1; ; window *= 8) {
    const from = Math.max(0, end - window);
    const records = await log.read<DedupCheckpoint>(TOPIC_INGEST_STATE, 0, from, end - from);
    const last = records[records.length - 1]?.value;
    if (last !== undefined) {
      return last.version === 1 && Array.isArray(last.offsets) && isDedupSnapshot(last.dedup)
        ? last
        : undefined;
    }
    if (from === 0) return undefined;
  }
}
