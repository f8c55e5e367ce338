/**
 * A Store decorator that answers candle reads from memory: per (symbol, interval) it keeps the
 * most recent final candles in a bounded ring, so `GET /candles?limit=1000` does not reach the
 * database (docs/design.md, Targets: REST, 1 000 candles in p99 <= 10 ms). It also keeps each symbol's latest
 * tick (one per symbol), which that route reads too. Everything else is forwarded.
 *
 * The inner store stays the truth: a ring is filled only from it, extended only by writes it has
 * committed, and used only when it provably holds every stored candle the answer could need;
 * otherwise the read goes to the inner store. Only sound when every write to the store goes
 * through this instance (the embedded pipeline), not when another process writes the database.
 */
import type { Alert, Candle, DeadLetter, IndicatorPoint, Interval } from '../core/records.ts';
import { lastTickPerSymbol } from './latest-ticks.ts';
import { type NormalizedRange, normalizeRange } from './range-query.ts';
import type {
  AlertQuery,
  ApiKeyRecord,
  Checkpoint,
  ExpiryCutoffs,
  ExpiryResult,
  LatestTick,
  NewApiKey,
  RangeQuery,
  Store,
  StoreBatch,
  StoredSpan,
  StoredTick,
  SymbolSummary,
} from './store.ts';

export interface RecentCandlesOptions {
  /** Final candles kept per (symbol, interval); the default holds a day of 1m candles. */
  perSeries?: number;
}

/** How often reads were answered from memory, and how often rings were filled from the store. */
export interface RecentCandlesStats {
  hits: number;
  misses: number;
  loads: number;
}

const DEFAULT_PER_SERIES = 1_500;
const MIN_CAPACITY = 64;

// One row per candle, row-major in one Float64Array: materialising a Candle reads one contiguous
// row, and growing the ring is a single copy.
const TS = 0;
const OPEN = 1;
const HIGH = 2;
const LOW = 3;
const CLOSE = 4;
const VOLUME = 5;
const TRADES = 6;
const VWAP = 7;
const STRIDE = 8;

/**
 * The last candles of one series, ascending and strictly increasing by ts. Invariant while
 * `loaded`: the store's candles of the series with ts >= `floor()` are exactly the ring's.
 */
class Series {
  loaded = false;
  /** A fill from the store that is in flight, shared by the reads that wait for it. */
  loading: Promise<boolean> | undefined;
  /** Bumped by every committed write that touched the series, so a fill that raced one is dropped. */
  writes = 0;
  /** True when the ring holds every candle the store has for the series. */
  complete = false;
  #rows = new Float64Array(0);
  #capacity = 0;
  #head = 0;
  count = 0;
  readonly #maxCapacity: number;

  constructor(maxCapacity: number) {
    this.#maxCapacity = maxCapacity;
  }

  /** The smallest ts from which the ring is the store's whole answer. */
  floor(): number {
    return this.complete || this.count === 0 ? Number.NEGATIVE_INFINITY : this.ts(0);
  }

  ts(index: number): number {
    return this.#rows[this.#offset(index) + TS]!;
  }

  /** Fills the ring from a store answer (ascending); false when it is not strictly ascending. */
  fill(candles: readonly Candle[], complete: boolean): boolean {
    for (let i = 1; i < candles.length; i++) {
      if (!(candles[i]!.ts > candles[i - 1]!.ts)) return false;
    }
    this.#capacity = Math.min(this.#maxCapacity, Math.max(MIN_CAPACITY, candles.length * 2));
    this.#rows = new Float64Array(this.#capacity * STRIDE);
    this.#head = 0;
    this.count = 0;
    this.complete = complete;
    for (const candle of candles) this.append(candle);
    this.loaded = true;
    return true;
  }

  /** Adds a candle newer than every one held; when full, the oldest makes room. */
  append(candle: Candle): void {
    if (this.count === this.#capacity) {
      if (this.#capacity < this.#maxCapacity) this.#grow();
      else {
        this.#head = (this.#head + 1) % this.#capacity;
        this.count--;
        this.complete = false;
      }
    }
    const at = this.#offset(this.count);
    const rows = this.#rows;
    rows[at + TS] = candle.ts;
    rows[at + OPEN] = candle.open;
    rows[at + HIGH] = candle.high;
    rows[at + LOW] = candle.low;
    rows[at + CLOSE] = candle.close;
    rows[at + VOLUME] = candle.volume;
    rows[at + TRADES] = candle.trades;
    rows[at + VWAP] = candle.vwap ?? Number.NaN;
    this.count++;
  }

  /** Drops the candles older than `ts`, as retention just did in the store. */
  dropBefore(ts: number): void {
    while (this.count > 0 && this.ts(0) < ts) {
      this.#head = (this.#head + 1) % this.#capacity;
      this.count--;
    }
  }

  /** Forgets everything: the next read fills the ring from the store again. */
  unload(): void {
    this.loaded = false;
    this.complete = false;
    this.#rows = new Float64Array(0);
    this.#capacity = 0;
    this.#head = 0;
    this.count = 0;
  }

  /** The first index whose ts is >= `ts` (count when none). */
  lowerBound(ts: number): number {
    let low = 0;
    let high = this.count;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.ts(mid) < ts) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /** Candles at indexes [start, end) as the stores return them. */
  slice(symbol: string, interval: Interval, start: number, end: number): Candle[] {
    const out: Candle[] = new Array(end - start);
    const rows = this.#rows;
    for (let i = start; i < end; i++) {
      const at = this.#offset(i);
      const vwap = rows[at + VWAP]!;
      out[i - start] = {
        symbol,
        interval,
        ts: rows[at + TS]!,
        open: rows[at + OPEN]!,
        high: rows[at + HIGH]!,
        low: rows[at + LOW]!,
        close: rows[at + CLOSE]!,
        volume: rows[at + VOLUME]!,
        trades: rows[at + TRADES]!,
        vwap: Number.isNaN(vwap) ? null : vwap,
        final: true,
      };
    }
    return out;
  }

  #offset(index: number): number {
    const physical = this.#head + index;
    return (physical < this.#capacity ? physical : physical - this.#capacity) * STRIDE;
  }

  #grow(): void {
    const capacity = Math.min(this.#maxCapacity, this.#capacity * 2);
    const rows = new Float64Array(capacity * STRIDE);
    const firstPart = this.#rows.subarray(this.#head * STRIDE);
    rows.set(firstPart);
    rows.set(this.#rows.subarray(0, this.#head * STRIDE), firstPart.length);
    this.#rows = rows;
    this.#capacity = capacity;
    this.#head = 0;
  }
}

/** The store with candle reads served from bounded in-memory rings of the recent final candles. */
export class RecentCandlesStore implements Store {
  /** The decorated store, which stays the truth. */
  readonly inner: Store;
  readonly #perSeries: number;
  /** symbol -> interval -> series; replaced on open/close so a fill in flight lands nowhere. */
  #series = new Map<string, Map<Interval, Series>>();
  readonly #stats: RecentCandlesStats = { hits: 0, misses: 0, loads: 0 };
  /**
   * The last tick of each symbol seen (read from the store, or written since): every write goes
   * through this instance in log order, so a written tick is always the newest of its symbol.
   */
  #latest = new Map<string, LatestTick>();

  constructor(inner: Store, options: RecentCandlesOptions = {}) {
    const perSeries = options.perSeries ?? DEFAULT_PER_SERIES;
    if (!Number.isInteger(perSeries) || perSeries < 1) {
      throw new RangeError(`perSeries must be an integer >= 1, got ${perSeries}`);
    }
    this.inner = inner;
    this.#perSeries = perSeries;
  }

  /** Counters since construction, for tests and metrics. */
  stats(): RecentCandlesStats {
    return { ...this.#stats };
  }

  async open(): Promise<void> {
    this.#series = new Map();
    this.#latest = new Map();
    await this.inner.open();
  }

  async write(batch: StoreBatch): Promise<void> {
    await this.inner.write(batch);
    // Only after the commit: a failed write must leave the rings as they were.
    // One object per symbol and batch, not per tick; the same pick the stores make for `latest`.
    for (const { symbol, ts, price, size, maShort, maLong, source } of lastTickPerSymbol(batch.ticks)) {
      this.#latest.set(symbol, { symbol, ts, price, size, maShort, maLong, source });
    }
    let previous: Series | undefined;
    for (const candle of batch.candles) {
      const series = this.#series.get(candle.symbol)?.get(candle.interval);
      if (series === undefined) continue;
      if (series !== previous) series.writes++;
      previous = series;
      if (!series.loaded) continue;
      // Out of order or a repeated ts: the ring can no longer mirror the store's order, so it is
      // refilled from the store on the next read rather than guessed at.
      if (series.count > 0 && !(candle.ts > series.ts(series.count - 1))) series.unload();
      else series.append(candle);
    }
  }

  async candles(symbol: string, interval: Interval, range: RangeQuery): Promise<Candle[]> {
    let normalized: NormalizedRange;
    try {
      normalized = normalizeRange(range);
    } catch {
      // The inner store rejects the range with its own error.
      return this.inner.candles(symbol, interval, range);
    }
    let series = this.#seriesOf(symbol, interval);
    if (!series.loaded) {
      series.loading ??= this.#fill(symbol, interval, series);
      if (await series.loading) {
        this.#stats.hits++;
        return [];
      }
      // A reopen while filling replaced the series: read the current one.
      series = this.#seriesOf(symbol, interval);
    }
    const answer = series.loaded ? answerFromRing(series, symbol, interval, normalized) : undefined;
    if (answer !== undefined) {
      this.#stats.hits++;
      return answer;
    }
    this.#stats.misses++;
    return this.inner.candles(symbol, interval, range);
  }

  checkpoint(name: string): Promise<Checkpoint | undefined> {
    return this.inner.checkpoint(name);
  }

  symbols(): Promise<SymbolSummary[]> {
    return this.inner.symbols();
  }

  async latest(symbol: string): Promise<LatestTick | undefined> {
    const known = this.#latest.get(symbol);
    if (known !== undefined) return { ...known };
    const stored = await this.inner.latest(symbol);
    // A write that committed meanwhile is newer than what the store said before it.
    const written = this.#latest.get(symbol);
    if (written !== undefined) return { ...written };
    if (stored !== undefined) this.#latest.set(symbol, { ...stored });
    return stored;
  }

  ticks(symbol: string, range: RangeQuery): Promise<StoredTick[]> {
    return this.inner.ticks(symbol, range);
  }

  indicators(symbol: string, interval: Interval, range: RangeQuery): Promise<IndicatorPoint[]> {
    return this.inner.indicators(symbol, interval, range);
  }

  alerts(query: AlertQuery): Promise<Alert[]> {
    return this.inner.alerts(query);
  }

  deadLetters(limit: number): Promise<DeadLetter[]> {
    return this.inner.deadLetters(limit);
  }

  createKey(key: NewApiKey): Promise<void> {
    return this.inner.createKey(key);
  }

  listKeys(): Promise<ApiKeyRecord[]> {
    return this.inner.listKeys();
  }

  findKeyByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    return this.inner.findKeyByHash(hash);
  }

  revokeKey(id: string, revokedAt?: number): Promise<boolean> {
    return this.inner.revokeKey(id, revokedAt);
  }

  newestTickTs(): Promise<number | undefined> {
    return this.inner.newestTickTs();
  }

  storedSpan(): Promise<StoredSpan> {
    return this.inner.storedSpan();
  }

  async deleteExpired(cutoffs: ExpiryCutoffs): Promise<ExpiryResult> {
    const result = await this.inner.deleteExpired(cutoffs);
    const beforeMs = cutoffs.candlesBeforeMs;
    if (beforeMs === undefined) return result;
    // The invariant (store candles with ts >= floor are the ring's) holds again once the ring
    // lets go of what the store no longer has; a fill in flight read before the delete is dropped.
    for (const bySymbol of this.#series.values()) {
      for (const series of bySymbol.values()) {
        series.writes++;
        if (series.loaded) series.dropBefore(beforeMs);
      }
    }
    return result;
  }

  async close(): Promise<void> {
    this.#series = new Map();
    this.#latest = new Map();
    await this.inner.close();
  }

  #seriesOf(symbol: string, interval: Interval): Series {
    let bySymbol = this.#series.get(symbol);
    if (bySymbol === undefined) {
      bySymbol = new Map();
      this.#series.set(symbol, bySymbol);
    }
    let series = bySymbol.get(interval);
    if (series === undefined) {
      series = new Series(this.#perSeries);
      bySymbol.set(interval, series);
    }
    return series;
  }

  #forget(symbol: string, interval: Interval, series: Series): void {
    const bySymbol = this.#series.get(symbol);
    if (bySymbol?.get(interval) !== series) return;
    bySymbol.delete(interval);
    if (bySymbol.size === 0) this.#series.delete(symbol);
  }

  /**
   * Fills a ring with the last perSeries candles. One more is read so the boundary is known: every
   * stored candle the store did not return sorts before the dropped one, so strictly before the
   * ring's first ts. A fill that raced a committed write is dropped (that write may be missing).
   * Resolves true when the store has no candle of the series, which answers every range.
   */
  async #fill(symbol: string, interval: Interval, series: Series): Promise<boolean> {
    const writesBefore = series.writes;
    try {
      this.#stats.loads++;
      const candles = await this.inner.candles(symbol, interval, { limit: this.#perSeries + 1 });
      if (series.writes !== writesBefore) return false;
      if (candles.length === 0) {
        // Not kept: a read of a symbol that does not exist must not cost memory.
        this.#forget(symbol, interval, series);
        return true;
      }
      const complete = candles.length <= this.#perSeries;
      if (complete) series.fill(candles, true);
      else if (candles[0]!.ts < candles[1]!.ts) series.fill(candles.slice(1), false);
    } catch {
      // Left unloaded: the read falls back to the inner store, which reports the problem.
    } finally {
      series.loading = undefined;
    }
    return false;
  }
}

/**
 * The answer from the ring when the ring provably holds it (see Series' invariant), else
 * undefined. Same reading of RangeQuery as `selectRange` in range-query.ts.
 */
function answerFromRing(
  series: Series,
  symbol: string,
  interval: Interval,
  { from, to, limit }: NormalizedRange,
): Candle[] | undefined {
  if (limit === 0) return [];
  const end = to === undefined ? series.count : series.lowerBound(to + 1);
  if (from !== undefined) {
    // Every stored candle at or after `from` is in the ring only when `from` is past the floor.
    if (from < series.floor()) return undefined;
    const start = series.lowerBound(from);
    return series.slice(symbol, interval, start, Math.max(start, Math.min(end, start + limit)));
  }
  // The last `limit` up to `to`: enough of them in the ring, or the ring holds them all.
  if (end < limit && !series.complete) return undefined;
  return series.slice(symbol, interval, Math.max(0, end - limit), end);
}

/** Wraps a store so recent final candles are read from memory (see RecentCandlesStore). */
export function withRecentCandles(store: Store, options?: RecentCandlesOptions): RecentCandlesStore {
  return new RecentCandlesStore(store, options);
}
