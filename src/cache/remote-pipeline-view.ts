/**
 * The PipelineView of a `serve` process that runs no pipeline itself (docs/design.md, Modes, distributed): live
 * messages come from the LiveBus, counters from the processor's checkpoint in the store, and the
 * forming candles from the `candles:*` messages the processor publishes.
 *
 * Limitations, by design of a process that only listens:
 * - `stats()` is synchronous, so it answers from the last refresh (every `refreshMs`, 1 s by
 *   default): counters are up to that much behind the store.
 * - `feeds` is empty: the feeds run in `ingest` processes, which this one cannot see.
 * - `logEndOffset` needs the log; without a `logEndOffset` source it equals `processedOffset`
 *   (lag 0), and `drained` is true once the processor has seen a bounded feed end.
 * - Forming candles are known only from messages received since this process subscribed: after a
 *   start, a symbol's forming candles appear with its next tick.
 */

import type { HealthEntry } from '../core/health.ts';
import {
  LiveJson,
  type LiveListener,
  liveValue,
  type PipelineView,
  type Stats,
} from '../core/pipeline-view.ts';
import {
  type Candle,
  type Counters,
  emptyCounters,
  type Interval,
  PROCESSOR_CHECKPOINT,
} from '../core/records.ts';
import type { Store } from '../store/store.ts';
import type { LiveBus } from './live-bus.ts';

/** What `stats()` reports, read asynchronously. */
export interface StatsSnapshot extends Counters {
  drained: boolean;
  logEndOffset: number;
  processedOffset: number;
}

/** Where a remote view's counters come from. */
export interface StatsSource {
  read(): Promise<StatsSnapshot>;
}

/** The counters and the clock flags of a processor snapshot (`ProcessorSnapshot`, version 1). */
interface SnapshotCounters {
  counters?: Counters;
  ended?: boolean;
}

/**
 * Reads the processor's checkpoint: its counters are exactly what the store holds (they commit in
 * the same transaction), and its offsets are how far the processor got.
 */
export class CheckpointStatsSource implements StatsSource {
  readonly #store: Pick<Store, 'checkpoint'>;
  readonly #logEndOffset: (() => number | Promise<number>) | undefined;
  readonly #name: string;

  constructor(options: {
    store: Pick<Store, 'checkpoint'>;
    /** Entries in the log, all partitions (e.g. from Kafka's high watermarks). */
    logEndOffset?: () => number | Promise<number>;
    checkpointName?: string;
  }) {
    this.#store = options.store;
    this.#logEndOffset = options.logEndOffset;
    this.#name = options.checkpointName ?? PROCESSOR_CHECKPOINT;
  }

  async read(): Promise<StatsSnapshot> {
    const checkpoint = await this.#store.checkpoint(this.#name);
    const state = (checkpoint?.state ?? {}) as SnapshotCounters;
    const counters = state.counters ?? emptyCounters();
    let processedOffset = 0;
    for (const offset of Object.values(checkpoint?.offsets ?? {})) processedOffset += offset;
    const logEndOffset = this.#logEndOffset ? await this.#logEndOffset() : processedOffset;
    return {
      ...counters,
      rejectedByReason: { ...counters.rejectedByReason },
      drained: state.ended === true && processedOffset >= logEndOffset,
      logEndOffset,
      processedOffset,
    };
  }
}

export interface RemotePipelineViewOptions {
  bus: LiveBus;
  stats: StatsSource;
  /** How often `stats()` is refreshed, ms. */
  refreshMs?: number;
  /** Open windows kept per symbol and interval; older ones are dropped (a missed final message). */
  maxFormingPerSeries?: number;
  /** Told when a refresh fails; `stats()` keeps answering from the last good one. */
  onError?: (error: unknown) => void;
  /** The process's health registry entries, for `stats().health` (and so `/ready`). */
  health?: () => HealthEntry[];
}

/** A PipelineView for a serve-only process; `open()` before use, `close()` after. */
export class RemotePipelineView implements PipelineView {
  readonly #bus: LiveBus;
  readonly #source: StatsSource;
  readonly #refreshMs: number;
  readonly #maxForming: number;
  readonly #onError: ((error: unknown) => void) | undefined;
  readonly #health: (() => HealthEntry[]) | undefined;
  /** The error of the last refresh, until one succeeds. */
  #refreshError: unknown;
  readonly #listeners = new Set<LiveListener>();
  /**
   * Channel (`candles:SYM:INTERVAL`) -> open windows by bucket start. A window's latest state is
   * kept as it came (a LiveJson from another process) and parsed only when a read asks for it: most
   * are replaced by the next state before anyone does.
   */
  readonly #forming = new Map<string, Map<number, unknown>>();
  #stats: StatsSnapshot = { ...emptyCounters(), drained: false, logEndOffset: 0, processedOffset: 0 };
  #unsubscribe: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #refreshing: Promise<void> | undefined;

  constructor(options: RemotePipelineViewOptions) {
    this.#bus = options.bus;
    this.#source = options.stats;
    this.#refreshMs = options.refreshMs ?? 1_000;
    this.#maxForming = options.maxFormingPerSeries ?? 8;
    this.#onError = options.onError;
    this.#health = options.health;
  }

  /** Subscribes to the bus and reads the stats once (a failing store rejects here). */
  async open(): Promise<void> {
    // Encoded: a tick nobody watches is never parsed; the WebSocket hub forwards the JSON as it came.
    this.#unsubscribe = await this.#bus.subscribe((channel, data) => this.#receive(channel, data), {
      encoded: true,
    });
    await this.refresh();
    this.#timer = setInterval(() => {
      this.refresh().catch((error: unknown) => this.#onError?.(error));
    }, this.#refreshMs);
    this.#timer.unref();
  }

  /** Reads the stats source now; concurrent calls share one read. */
  refresh(): Promise<void> {
    this.#refreshing ??= this.#source
      .read()
      .then(
        (stats) => {
          this.#stats = stats;
          this.#refreshError = undefined;
        },
        (error: unknown) => {
          this.#refreshError = error;
          throw error;
        },
      )
      .finally(() => {
        this.#refreshing = undefined;
      });
    return this.#refreshing;
  }

  stats(): Stats {
    const stats = this.#stats;
    const health = this.#health?.();
    return {
      ...stats,
      rejectedByReason: { ...stats.rejectedByReason },
      feeds: [],
      ...(health === undefined ? {} : { health }),
    };
  }

  /** Why the last refresh of the stats failed (the store is unreachable), until one succeeds. */
  refreshError(): unknown {
    return this.#refreshError;
  }

  formingCandles(symbol: string, interval: Interval): Candle[] {
    const windows = this.#forming.get(`candles:${symbol}:${interval}`);
    if (windows === undefined) return [];
    return [...windows.values()]
      .map((candle) => ({ ...(liveValue(candle) as Candle) }))
      .sort((a, b) => a.ts - b.ts);
  }

  onLive(listener: LiveListener): () => void {
    const entry: LiveListener = (channel, data) => listener(channel, data);
    this.#listeners.add(entry);
    return () => {
      this.#listeners.delete(entry);
    };
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    await this.#refreshing?.catch(() => undefined);
  }

  #receive(channel: string, data: unknown): void {
    if (channel.startsWith('candles:')) this.#trackCandle(channel, data);
    for (const listener of this.#listeners) listener(channel, data);
  }

  /**
   * A forming candle replaces its window's previous state; a final one closes the window. The
   * channel names the series (the processor publishes a candle on `candles:SYMBOL:INTERVAL`, so a
   * symbol holding ':' still maps to one key); the window's start and whether it is final are read
   * off the JSON text without parsing it when the candle came serialised.
   */
  #trackCandle(channel: string, data: unknown): void {
    const head = candleHead(data);
    if (head === undefined) return;
    let windows = this.#forming.get(channel);
    if (head.final) {
      windows?.delete(head.ts);
      if (windows?.size === 0) this.#forming.delete(channel);
      return;
    }
    if (windows === undefined) {
      windows = new Map();
      this.#forming.set(channel, windows);
    }
    windows.set(head.ts, data);
    if (windows.size > this.#maxForming) {
      let oldest = Number.POSITIVE_INFINITY;
      for (const ts of windows.keys()) if (ts < oldest) oldest = ts;
      windows.delete(oldest);
    }
  }
}

/** `"ts":N` and `"final":B` of a candle's JSON: a Candle has one of each, and no nested objects. */
const CANDLE_TS = /"ts":(-?\d+)[,}]/;
const CANDLE_FINAL = /"final":(true|false)[,}]/;

/** A candle's bucket start and finality, from the object or from its JSON text. */
function candleHead(data: unknown): { ts: number; final: boolean } | undefined {
  if (data instanceof LiveJson) {
    const ts = CANDLE_TS.exec(data.json)?.[1];
    const final = CANDLE_FINAL.exec(data.json)?.[1];
    if (ts !== undefined && final !== undefined) return { ts: Number(ts), final: final === 'true' };
  }
  const candle = liveValue(data) as Partial<Candle> | null;
  if (typeof candle?.ts !== 'number') return undefined;
  return { ts: candle.ts, final: candle.final === true };
}
