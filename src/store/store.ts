/**
 * The store stage: ticks, candles, indicators, alerts and dead letters, plus the processor's
 * checkpoint, written in one transaction so a crash never leaves them apart (docs/design.md, Delivery).
 * Implementations: `memory` (tests), `duckdb` (embedded); every one passes `conformance.test.ts`.
 */
import type {
  Alert,
  AlertKind,
  Candle,
  DeadLetter,
  IndicatorPoint,
  Interval,
  ProcessedTick,
} from '../core/records.ts';

/** The processor's position in the log and its state, committed with the data it produced. */
export interface Checkpoint {
  /** Next log offset to read, per partition of `price-ticks`. */
  offsets: Record<number, number>;
  /** JSON-serialisable processor state (windows, indicators, counters). */
  state: unknown;
}

/** Everything one processed batch produced. Written atomically with the checkpoint. */
export interface StoreBatch {
  ticks: readonly ProcessedTick[];
  /** Final candles only: forming candles live in the processor. */
  candles: readonly Candle[];
  indicators: readonly IndicatorPoint[];
  alerts: readonly Alert[];
  deadLetters: readonly DeadLetter[];
  checkpoint: { name: string } & Checkpoint & {
      /**
       * The offsets this batch continues from. When set, the write commits only if the stored
       * checkpoint of that name has exactly these offsets (no stored checkpoint counts as `{}`);
       * otherwise it throws a `CheckpointConflictError` and writes nothing. This fences off a
       * processor that lost its partition to another: its next write fails instead of landing.
       */
      previous?: Record<number, number>;
    };
}

/** A fenced write found the checkpoint moved on (another writer got there first); nothing was written. */
export class CheckpointConflictError extends Error {
  /** Stable code for logs and callers that match on it. */
  readonly code = 'checkpoint_conflict';
  readonly checkpoint: string;
  readonly expected: Record<number, number>;
  readonly actual: Record<number, number>;

  constructor(checkpoint: string, expected: Record<number, number>, actual: Record<number, number>) {
    super(
      `checkpoint "${checkpoint}" was moved by another writer: expected offsets ${JSON.stringify(expected)}, ` +
        `found ${JSON.stringify(actual)}; this writer no longer owns it and must reload from the store`,
    );
    this.name = 'CheckpointConflictError';
    this.checkpoint = checkpoint;
    this.expected = expected;
    this.actual = actual;
  }
}

/**
 * The store cannot be reached (its server is down, restarting or refusing connections): a read
 * answers 503 `store_unavailable` rather than 500, and a caller may retry later.
 */
export class StoreUnavailableError extends Error {
  /** Stable code, matched by serve's error handler. */
  readonly code = 'store_unavailable';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/**
 * Whether two offset maps hold the same partition -> offset pairs. Key order is irrelevant, and
 * keys compare as numbers because a map read back from JSON has string keys.
 */
export function sameOffsets(a: Record<number, number>, b: Record<number, number>): boolean {
  const normalise = (offsets: Record<number, number>): Map<number, number> =>
    new Map(Object.entries(offsets).map(([partition, offset]) => [Number(partition), Number(offset)]));
  const left = normalise(a);
  const right = normalise(b);
  if (left.size !== right.size) return false;
  for (const [partition, offset] of left) {
    if (right.get(partition) !== offset) return false;
  }
  return true;
}

/**
 * A time range with a limit. When `from` is set, the first `limit` records with
 * from <= ts (<= to) are returned; otherwise the last `limit` records with ts <= to. Both ends are
 * inclusive; results are always ascending by ts (ties in log order).
 */
export interface RangeQuery {
  from?: number;
  to?: number;
  limit: number;
}

export interface AlertQuery extends RangeQuery {
  symbol?: string;
  kind?: AlertKind;
}

export interface SymbolSummary {
  symbol: string;
  lastPrice: number;
  lastTs: number;
}

/** The last tick of a symbol in log order. */
export interface LatestTick {
  symbol: string;
  ts: number;
  price: number;
  size: number;
  maShort: number | null;
  maLong: number | null;
  source: string;
}

/** A tick as `GET /ticks` serves it. `id` is null when the provider gave none. */
export interface StoredTick {
  ts: number;
  price: number;
  size: number;
  id: string | null;
  maShort: number | null;
  maLong: number | null;
  late: boolean;
}

/** The LatestTick fields of a tick (a processed tick, or a live `ticks:SYM` message), and no others. */
export function latestTickOf(tick: LatestTick): LatestTick {
  return {
    symbol: tick.symbol,
    ts: tick.ts,
    price: tick.price,
    size: tick.size,
    maShort: tick.maShort,
    maLong: tick.maLong,
    source: tick.source,
  };
}

/** The StoredTick fields of a processed tick, `id` null when it has none. */
export function storedTickOf(tick: Omit<StoredTick, 'id'> & { id?: string | null }): StoredTick {
  return {
    ts: tick.ts,
    price: tick.price,
    size: tick.size,
    id: tick.id ?? null,
    maShort: tick.maShort,
    maLong: tick.maLong,
    late: tick.late,
  };
}

/** What an API key may do: `read` the data, or also `admin`ister the running pipeline and the keys. */
export type ApiKeyRole = 'read' | 'admin';

/** An API key as the store keeps it, minus its hash (which never leaves the store or the verifier). */
export interface ApiKeyRecord {
  id: string;
  name: string;
  role: ApiKeyRole;
  createdAt: number;
  /** ms since the epoch, or null while the key is active. */
  revokedAt: number | null;
}

/** A key to create: `hash` is the hex sha256 of its secret; the secret itself is never stored. */
export interface NewApiKey {
  id: string;
  name: string;
  role: ApiKeyRole;
  hash: string;
  createdAt: number;
}

/**
 * What retention deletes in one step (docs/design.md, Retention and history): ticks with ts < `ticksBeforeMs`, and candles,
 * indicators and alerts with ts < `candlesBeforeMs`. An absent cutoff deletes nothing of that kind.
 */
export interface ExpiryCutoffs {
  ticksBeforeMs?: number;
  candlesBeforeMs?: number;
  /**
   * Dead letters have no event time, so they are bounded by count: every dead letter older (by seq)
   * than the newest `keep` goes, at most `maxRows` of them in this step (the oldest first).
   */
  deadLetters?: { keep: number; maxRows: number };
}

/** Rows one retention step deleted, per table. */
export interface ExpiryResult {
  ticks: number;
  candles: number;
  indicators: number;
  alerts: number;
  deadLetters: number;
}

/** The tables retention cuts by event time. */
export type EventTimeTable = Exclude<keyof ExpiryResult, 'deadLetters'>;

/** An ExpiryResult of nothing deleted. */
export function noneExpired(): ExpiryResult {
  return { ticks: 0, candles: 0, indicators: 0, alerts: 0, deadLetters: 0 };
}

/**
 * The dead-letter bound of a retention step, checked to be positive integers before they become SQL;
 * undefined when the step deletes no dead letters.
 */
export function deadLetterBound(cutoffs: ExpiryCutoffs): { keep: number; maxRows: number } | undefined {
  const bound = cutoffs.deadLetters;
  if (bound === undefined) return undefined;
  for (const value of [bound.keep, bound.maxRows]) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new RangeError(`dead-letter retention needs integers >= 1, got ${value}`);
    }
  }
  return bound;
}

/**
 * One DELETE (DuckDB and PostgreSQL alike) of the dead letters older by seq than the newest `keep`,
 * at most `maxRows` of them: the cutoff is the seq of the `keep`-th newest, lowered to the seq of
 * the (`maxRows` + 1)-th oldest when that is smaller; fewer than `keep` rows delete nothing (NULL).
 */
export function deadLetterExpirySql(bound: { keep: number; maxRows: number }): string {
  return `DELETE FROM dead_letters WHERE seq < (
    SELECT CASE WHEN oldest_kept IS NULL THEN NULL ELSE least(oldest_kept, coalesce(step_end, oldest_kept)) END
    FROM (SELECT
      (SELECT seq FROM dead_letters ORDER BY seq DESC LIMIT 1 OFFSET ${bound.keep - 1}) AS oldest_kept,
      (SELECT seq FROM dead_letters ORDER BY seq LIMIT 1 OFFSET ${bound.maxRows}) AS step_end
    ) bounds)`;
}

/** Where the stored rows begin in event time, which retention steps forward from. */
export interface StoredSpan {
  /** The smallest ts of a stored tick. */
  oldestTickTs?: number;
  /** The smallest ts of a stored candle, indicator point or alert. */
  oldestAggregateTs?: number;
}

/** The DELETEs a retention step makes: one per table, cutoffs checked to be integers before they become SQL. */
export function expiryPlan(cutoffs: ExpiryCutoffs): [EventTimeTable, number][] {
  const plan: [EventTimeTable, number][] = [];
  const { ticksBeforeMs, candlesBeforeMs } = cutoffs;
  for (const value of [ticksBeforeMs, candlesBeforeMs]) {
    if (value !== undefined && !Number.isSafeInteger(value)) {
      throw new RangeError(`retention cutoffs must be integers (ms), got ${value}`);
    }
  }
  if (ticksBeforeMs !== undefined) plan.push(['ticks', ticksBeforeMs]);
  if (candlesBeforeMs !== undefined) {
    plan.push(['candles', candlesBeforeMs], ['indicators', candlesBeforeMs], ['alerts', candlesBeforeMs]);
  }
  return plan;
}

export interface Store {
  /** Opens the store and applies pending schema migrations. */
  open(): Promise<void>;
  /** Writes a batch and its checkpoint in one transaction. */
  write(batch: StoreBatch): Promise<void>;
  /** The last committed checkpoint of that name. */
  checkpoint(name: string): Promise<Checkpoint | undefined>;
  /** All symbols, ascending by name. */
  symbols(): Promise<SymbolSummary[]>;
  latest(symbol: string): Promise<LatestTick | undefined>;
  ticks(symbol: string, range: RangeQuery): Promise<StoredTick[]>;
  candles(symbol: string, interval: Interval, range: RangeQuery): Promise<Candle[]>;
  indicators(symbol: string, interval: Interval, range: RangeQuery): Promise<IndicatorPoint[]>;
  /** Ascending by ts, ties by `seq`. */
  alerts(query: AlertQuery): Promise<Alert[]>;
  /** The most recent dead letters, ascending by seq. */
  deadLetters(limit: number): Promise<DeadLetter[]>;
  /** Adds an API key; rejects an empty name, an unknown role, or an id or hash already taken. */
  createKey(key: NewApiKey): Promise<void>;
  /** Every key, revoked ones included, ascending by createdAt then id. */
  listKeys(): Promise<ApiKeyRecord[]>;
  /** The active (not revoked) key with that hash. */
  findKeyByHash(hash: string): Promise<ApiKeyRecord | undefined>;
  /** Revokes an active key; false when there is no such key or it was already revoked. */
  revokeKey(id: string, revokedAt?: number): Promise<boolean>;
  /**
   * The largest ts of a stored tick, cheaply (retention asks every step and measures from it);
   * undefined when there is none.
   */
  newestTickTs(): Promise<number | undefined>;
  /** Where the stored rows begin; may scan, so retention asks only when it starts. */
  storedSpan(): Promise<StoredSpan>;
  /**
   * Deletes the rows older than the cutoffs in one short transaction, queued with the writes so it
   * never runs beside one. `latest`, checkpoints and keys are never touched; dead letters only by
   * `cutoffs.deadLetters`.
   */
  deleteExpired(cutoffs: ExpiryCutoffs): Promise<ExpiryResult>;
  close(): Promise<void>;
}
