/**
 * Store retention (docs/design.md, Retention and history): ticks older than `ticksMs`, and candles, indicators and alerts older
 * than `candlesMs`, measured in event time behind the newest stored tick, are deleted in the
 * background. Each step deletes one slice of event time in one short transaction queued with the
 * writes; the slice shrinks when a step deletes more rows than it aims for and grows when it
 * deletes at most half of that. The aim is `stepRows` (about ten milliseconds of DuckDB) once
 * caught up, and grows up to `maxStepRows` while retention is behind, so it keeps up with a
 * replay that writes more rows per store write than one small step deletes.
 *
 * Dead letters have no event time: they are bounded by count instead, the newest `deadLetters`
 * kept (by seq, which is their place in ingest order), at most `stepRows` deleted per step.
 */
import type { RetentionProgress } from '../core/pipeline-view.ts';
import { type ExpiryResult, noneExpired, type Store, type StoredSpan } from './store.ts';

export interface RetentionOptions {
  store: Store;
  /** Keep ticks this long behind the newest stored tick; 0 keeps them forever. */
  ticksMs: number;
  /** Keep candles, indicators and alerts this long; 0 keeps them forever. */
  candlesMs: number;
  /** Keep the newest this many dead letters (by seq); 0 or absent keeps them all. */
  deadLetters?: number;
  /**
   * How often to look for dead letters over the bound once none were over it, ms. Default 60 000:
   * finding the bound sorts the newest `deadLetters` seqs, not worth doing every idle second for a
   * table that a bad feed fills by a few rows per second at most, and that is only ever slightly over.
   */
  deadLetterCheckMs?: number;
  /**
   * Rows at or after the returned ts are never deleted (the lake holds retention back until its
   * files are written; the distributed lake's hold is read from the database). Default: no hold.
   */
  holdBackBeforeMs?: () => number | Promise<number>;
  /**
   * Rows one step aims to delete per table. Default 100 000: a DuckDB DELETE of that many takes
   * 6-11 ms, and a step waits in the write queue behind the store write in flight, so about one
   * step runs per write: smaller steps fell behind a 50 000 ticks/s replay.
   */
  stepRows?: number;
  /**
   * The most rows one step may aim for while retention is behind its cutoff. Default 8 x
   * `stepRows`: each step that still leaves work doubles the aim, so retention keeps up with a
   * replay that writes more rows per store write than `stepRows` (it fell hours behind at 100 000);
   * once caught up the aim is `stepRows` again.
   */
  maxStepRows?: number;
  /**
   * While every kind's oldest stored row is younger than its cutoff (a store younger than its
   * retention: the first week of a deployment for ticks, the first 400 days for candles), how
   * long to trust that answer before asking where stored rows begin again, ms. Default 60 000:
   * PostgreSQL answers by scanning every stored tick, candle, indicator and alert, which asked
   * every idle second cost more CPU than the writes (docs/benchmarks.md). A backfill of rows older
   * than the answer is found within this long.
   */
  spanCheckMs?: number;
  /** Pause between steps while there is work, ms. Default 0 (the step queues behind the next write anyway). */
  stepPauseMs?: number;
  /** Pause once caught up, ms. Default 1 000. */
  idleMs?: number;
  /** Hears every step that deleted something. */
  onStep?: (result: ExpiryResult) => void;
  /** Hears a failed step; the task keeps going. Default: nothing. */
  onError?: (error: unknown) => void;
  /** Hears every step of the loop that did not fail, deleting or not (so a reported failure can end). */
  onSuccess?: () => void;
}

/**
 * One kind's progress: everything before `doneBeforeMs` is gone; the next slice is `stepMs` wide
 * and aims to delete about `aimRows` rows.
 */
interface Cursor {
  doneBeforeMs: number | undefined;
  stepMs: number;
  aimRows: number;
}

const FIRST_STEP_MS = 60_000;

/** The background task; `start()` it after the store opened and `stop()` it before closing the store. */
export class StoreRetention {
  readonly #options: RetentionOptions;
  readonly #ticks: Cursor;
  readonly #aggregates: Cursor;
  readonly #stepRows: number;
  readonly #maxStepRows: number;
  #running: Promise<void> | undefined;
  #stopping = false;
  #wake: (() => void) | undefined;
  /** The last answer of `storedSpan`, and until when (performance.now() ms) it may stand in for a new one. */
  #span: StoredSpan | undefined;
  #spanValidUntil = 0;
  /** No dead-letter delete before this (performance.now() ms): the last one found nothing left over. */
  #deadLettersNextCheck = 0;
  /** Rows deleted since construction, per table. */
  readonly deleted: ExpiryResult = noneExpired();
  /** The longest deleteExpired call so far, ms: how long a step held the store's write queue. */
  longestStepMs = 0;

  constructor(options: RetentionOptions) {
    for (const key of ['ticksMs', 'candlesMs'] as const) {
      const value = options[key];
      if (!Number.isFinite(value) || value < 0) throw new RangeError(`${key} must be >= 0, got ${value}`);
    }
    const deadLetters = options.deadLetters ?? 0;
    if (!Number.isSafeInteger(deadLetters) || deadLetters < 0) {
      throw new RangeError(`deadLetters must be an integer >= 0, got ${deadLetters}`);
    }
    this.#options = options;
    this.#stepRows = options.stepRows ?? 100_000;
    this.#maxStepRows = Math.max(this.#stepRows, options.maxStepRows ?? 8 * this.#stepRows);
    this.#ticks = { doneBeforeMs: undefined, stepMs: FIRST_STEP_MS, aimRows: this.#stepRows };
    this.#aggregates = { doneBeforeMs: undefined, stepMs: FIRST_STEP_MS, aimRows: this.#stepRows };
  }

  /** Whether anything is configured to expire. */
  get enabled(): boolean {
    return this.#options.ticksMs > 0 || this.#options.candlesMs > 0 || (this.#options.deadLetters ?? 0) > 0;
  }

  start(): void {
    if (this.#running !== undefined || !this.enabled) return;
    this.#stopping = false;
    this.#running = this.#loop();
  }

  /** Stops after the step in flight; resolves once it has committed or failed. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#wake?.();
    await this.#running;
    this.#running = undefined;
  }

  /**
   * Deletes one slice of each kind; resolves true when there is more to delete. Tests drive the
   * task with it; the loop of `start()` calls it too.
   */
  async step(): Promise<boolean> {
    const { store, ticksMs, candlesMs } = this.#options;
    const deadLetters = this.#deadLetterBound();
    const newest = await store.newestTickTs();
    let ticksBeforeMs: number | undefined;
    let candlesBeforeMs: number | undefined;
    let ticksCutoff: number | undefined;
    let candlesCutoff: number | undefined;
    if (newest !== undefined) {
      // Where stored rows begin is asked only until each cursor in use has a place to start from
      // (a kind kept forever never gets one, and must not make every idle step scan for it).
      const hold = (await this.#options.holdBackBeforeMs?.()) ?? Number.POSITIVE_INFINITY;
      ticksCutoff = ticksMs > 0 ? Math.floor(Math.min(newest - ticksMs, hold)) : undefined;
      candlesCutoff = candlesMs > 0 ? Math.floor(Math.min(newest - candlesMs, hold)) : undefined;
      const span = await this.#spanIfNeeded(ticksCutoff, candlesCutoff);
      ticksBeforeMs = nextSlice(this.#ticks, ticksCutoff, span.oldestTickTs);
      candlesBeforeMs = nextSlice(this.#aggregates, candlesCutoff, span.oldestAggregateTs);
    }
    if (ticksBeforeMs === undefined && candlesBeforeMs === undefined && deadLetters === undefined)
      return false;
    const started = performance.now();
    const result = await store.deleteExpired({
      ticksBeforeMs,
      candlesBeforeMs,
      ...(deadLetters === undefined ? {} : { deadLetters }),
    });
    this.longestStepMs = Math.max(this.longestStepMs, performance.now() - started);
    const limits = { stepRows: this.#stepRows, maxStepRows: this.#maxStepRows };
    if (ticksBeforeMs !== undefined) {
      advance(this.#ticks, ticksBeforeMs, result.ticks, ticksBeforeMs !== ticksCutoff, limits);
    }
    if (candlesBeforeMs !== undefined) {
      const most = Math.max(result.candles, result.indicators, result.alerts);
      advance(this.#aggregates, candlesBeforeMs, most, candlesBeforeMs !== candlesCutoff, limits);
    }
    // A full step may have left more; a short one caught up, so the next look can wait.
    const deadLettersLeft = deadLetters !== undefined && result.deadLetters >= deadLetters.maxRows;
    if (deadLetters !== undefined && !deadLettersLeft) {
      this.#deadLettersNextCheck = performance.now() + (this.#options.deadLetterCheckMs ?? 60_000);
    }
    for (const key of Object.keys(result) as (keyof ExpiryResult)[]) this.deleted[key] += result[key];
    if (Object.values(result).some((rows) => rows > 0)) this.#options.onStep?.(result);
    return (
      (ticksBeforeMs !== undefined && ticksBeforeMs !== ticksCutoff) ||
      (candlesBeforeMs !== undefined && candlesBeforeMs !== candlesCutoff) ||
      deadLettersLeft
    );
  }

  /**
   * Where stored rows begin, for the cursors that have no place to start from yet (`{}` when none
   * needs it). A recent answer that put every such cursor's oldest row at or after its cutoff
   * (nothing to delete yet) is reused for `spanCheckMs`; any other answer is asked afresh, so a
   * first slice always starts at the oldest row stored now.
   */
  async #spanIfNeeded(
    ticksCutoff: number | undefined,
    candlesCutoff: number | undefined,
  ): Promise<StoredSpan> {
    const ticksNeed = ticksCutoff !== undefined && this.#ticks.doneBeforeMs === undefined;
    const candlesNeed = candlesCutoff !== undefined && this.#aggregates.doneBeforeMs === undefined;
    if (!ticksNeed && !candlesNeed) return {};
    const known = this.#span;
    const notYet = (oldest: number | undefined, cutoff: number | undefined) =>
      oldest === undefined || cutoff === undefined || oldest >= cutoff;
    if (
      known !== undefined &&
      performance.now() < this.#spanValidUntil &&
      (!ticksNeed || notYet(known.oldestTickTs, ticksCutoff)) &&
      (!candlesNeed || notYet(known.oldestAggregateTs, candlesCutoff))
    ) {
      return known;
    }
    const span = await this.#options.store.storedSpan();
    this.#span = span;
    this.#spanValidUntil = performance.now() + (this.#options.spanCheckMs ?? 60_000);
    return span;
  }

  /** This step's dead-letter bound, or undefined when none is configured or it is not time to look. */
  #deadLetterBound(): { keep: number; maxRows: number } | undefined {
    const keep = this.#options.deadLetters ?? 0;
    if (keep === 0 || performance.now() < this.#deadLettersNextCheck) return undefined;
    return { keep, maxRows: this.#stepRows };
  }

  /** For `/api/v1/stats`. */
  progress(): RetentionProgress {
    const progress: RetentionProgress = {
      deletedRows: { ...this.deleted },
      longestStepMs: Math.round(this.longestStepMs * 10) / 10,
    };
    if (this.#ticks.doneBeforeMs !== undefined) progress.ticksDeletedBeforeMs = this.#ticks.doneBeforeMs;
    if (this.#aggregates.doneBeforeMs !== undefined) {
      progress.candlesDeletedBeforeMs = this.#aggregates.doneBeforeMs;
    }
    return progress;
  }

  async #loop(): Promise<void> {
    while (!this.#stopping) {
      let more = false;
      try {
        more = await this.step();
        this.#options.onSuccess?.();
      } catch (error) {
        this.#options.onError?.(error);
      }
      if (this.#stopping) break;
      const pause = more ? (this.#options.stepPauseMs ?? 0) : (this.#options.idleMs ?? 1_000);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, pause);
        timer.unref();
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }
}

/**
 * The end of the next slice to delete, or undefined when nothing before the cutoff is left. The
 * first slice starts at the oldest stored row, so a long-stopped store catches up slice by slice.
 */
function nextSlice(
  cursor: Cursor,
  cutoff: number | undefined,
  oldestStored: number | undefined,
): number | undefined {
  if (cutoff === undefined) return undefined;
  const from = cursor.doneBeforeMs ?? oldestStored;
  if (from === undefined) return undefined;
  if (from >= cutoff) return undefined;
  return Math.floor(Math.min(cutoff, from + cursor.stepMs));
}

/**
 * Records a step and sizes the next slice so it deletes about `aimRows` rows: `stepRows` once
 * caught up, doubled after each step that left work behind, up to `maxStepRows`. A slice that
 * deleted more than the aim halves, one that deleted at most half of it doubles.
 */
function advance(
  cursor: Cursor,
  beforeMs: number,
  rows: number,
  behind: boolean,
  limits: { stepRows: number; maxStepRows: number },
): void {
  cursor.doneBeforeMs = beforeMs;
  cursor.aimRows = behind ? Math.min(cursor.aimRows * 2, limits.maxStepRows) : limits.stepRows;
  if (rows > cursor.aimRows) cursor.stepMs = Math.max(1, Math.floor(cursor.stepMs / 2));
  else if (rows <= cursor.aimRows / 2) cursor.stepMs = Math.min(cursor.stepMs * 2, 365 * 86_400_000);
}
