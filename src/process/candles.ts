/**
 * Event-time candles of one symbol (docs/design.md, Rules). Only 1m windows are built tick by tick; a 5m, 15m, 1h
 * or 1d candle is folded from the final 1m candles it contains, so longer intervals are the roll-up of
 * the 1m candles by construction (and a tick costs one window update, not five).
 *
 * Why folding is exact: windows close in ascending end order as the watermark rises, a 1m window
 * ends no later than the longer window holding it, and a tick is late (enters nothing) once its 1m
 * window could have closed. So a longer window, when it closes, has received every 1m candle it
 * contains, in time order.
 */
import { type Candle, INTERVAL_MS, type Interval } from '../core/records.ts';

const MINUTE_MS = INTERVAL_MS['1m'];
/** The intervals folded from 1m candles, in the order candles are emitted after the 1m ones. */
export const ROLLUP_INTERVALS = ['5m', '15m', '1h', '1d'] as const satisfies readonly Interval[];
const ROLLUP_MS = ROLLUP_INTERVALS.map((interval) => INTERVAL_MS[interval]);

/** Above this, ts / interval is too coarse for floor() to be exact (ulp of the quotient nears 1 / interval). */
const FAST_BUCKET_LIMIT_MS = 1e15;

/**
 * Start of the window of `intervalMs` holding `ts` (= ts - ts mod interval). floor-and-multiply is
 * exact for ts below FAST_BUCKET_LIMIT_MS (year ~33 000) and about ten times faster than `%` on
 * doubles, which is a C call in V8.
 */
export function bucketStart(ts: number, intervalMs: number): number {
  return ts < FAST_BUCKET_LIMIT_MS ? Math.floor(ts / intervalMs) * intervalMs : ts - (ts % intervalMs);
}

/** A window being built: the candle plus what the tie rules and the vwap need. */
export interface CandleWindowState {
  ts: number;
  open: number;
  /** Smallest tick ts seen: `open` is that tick's price (ties keep the earlier tick in log order). */
  openTs: number;
  high: number;
  low: number;
  close: number;
  /** Largest tick ts seen: `close` is that tick's price (ties take the later tick in log order). */
  closeTs: number;
  volume: number;
  trades: number;
  /** Sum of price * size, for the vwap. */
  priceVolume: number;
}

class CandleWindow implements CandleWindowState {
  ts = 0;
  open = 0;
  openTs = 0;
  high = 0;
  low = 0;
  close = 0;
  closeTs = 0;
  volume = 0;
  trades = 0;
  priceVolume = 0;
}

export interface SymbolCandlesState {
  /** Open 1m windows, ascending by ts. */
  minutes: CandleWindowState[];
  /** Per entry of ROLLUP_INTERVALS: folds of final 1m candles whose own window is still open. */
  rollups: CandleWindowState[][];
}

function copyWindow(target: CandleWindowState, source: CandleWindowState): void {
  target.ts = source.ts;
  target.open = source.open;
  target.openTs = source.openTs;
  target.high = source.high;
  target.low = source.low;
  target.close = source.close;
  target.closeTs = source.closeTs;
  target.volume = source.volume;
  target.trades = source.trades;
  target.priceVolume = source.priceVolume;
}

/** Adds a finished sub-window (later in time than everything already in `target`) to `target`. */
function foldWindow(target: CandleWindowState, source: CandleWindowState): void {
  if (source.high > target.high) target.high = source.high;
  if (source.low < target.low) target.low = source.low;
  target.close = source.close;
  target.closeTs = source.closeTs;
  target.volume += source.volume;
  target.trades += source.trades;
  target.priceVolume += source.priceVolume;
}

function toCandle(symbol: string, interval: Interval, window: CandleWindowState, final: boolean): Candle {
  return {
    symbol,
    interval,
    ts: window.ts,
    open: window.open,
    high: window.high,
    low: window.low,
    close: window.close,
    volume: window.volume,
    trades: window.trades,
    vwap: window.volume === 0 ? null : window.priceVolume / window.volume,
    final,
  };
}

/**
 * Removes the first `count` items in place, allocating nothing: splice would allocate an array of the
 * removed items, and shrinking `length` to 0 drops the backing store, which the next push allocates again.
 */
function dropFirst<T>(items: T[], count: number): void {
  const length = items.length - count;
  for (let i = 0; i < length; i++) items[i] = items[i + count]!;
  for (let i = 0; i < count; i++) items.pop();
}

/** The open candle windows of one symbol, for every interval. */
export class SymbolCandles {
  readonly symbol: string;
  private readonly minutes: CandleWindow[] = [];
  private readonly rollups: CandleWindow[][] = ROLLUP_INTERVALS.map(() => []);
  /** Closed windows kept for reuse, so steady state allocates no window objects. */
  private readonly spare: CandleWindow[] = [];
  /** Smallest end of any open window (Infinity when none): most watermark rises close nothing. */
  private earliestEnd = Number.POSITIVE_INFINITY;

  constructor(symbol: string, state?: SymbolCandlesState) {
    this.symbol = symbol;
    if (state === undefined) return;
    for (const window of state.minutes) this.minutes.push(this.cloneWindow(window));
    state.rollups.forEach((windows, i) => {
      for (const window of windows) this.rollups[i]?.push(this.cloneWindow(window));
    });
    this.updateEarliestEnd();
  }

  /** Adds a tick that is not late to its 1m window, which starts at `bucket`. */
  addTick(bucket: number, ts: number, price: number, size: number): void {
    const minutes = this.minutes;
    let i = minutes.length - 1;
    while (i >= 0 && minutes[i]!.ts > bucket) i--;
    const window = minutes[i];
    if (window !== undefined && window.ts === bucket) {
      if (ts < window.openTs) {
        window.openTs = ts;
        window.open = price;
      }
      if (ts >= window.closeTs) {
        window.closeTs = ts;
        window.close = price;
      }
      if (price > window.high) window.high = price;
      if (price < window.low) window.low = price;
      window.volume += size;
      window.trades++;
      window.priceVolume += price * size;
      return;
    }
    const created = this.spare.pop() ?? new CandleWindow();
    created.ts = bucket;
    created.open = price;
    created.openTs = ts;
    created.high = price;
    created.low = price;
    created.close = price;
    created.closeTs = ts;
    created.volume = size;
    created.trades = 1;
    created.priceVolume = price * size;
    if (i === minutes.length - 1) minutes.push(created);
    else minutes.splice(i + 1, 0, created);
    if (bucket + MINUTE_MS < this.earliestEnd) this.earliestEnd = bucket + MINUTE_MS;
  }

  /**
   * Makes final every open window whose end is <= `watermark`: the 1m ones in ascending ts order,
   * then 5m, 15m, 1h and 1d likewise. Pushes the final candles onto `out`.
   */
  closeThrough(watermark: number, out: Candle[]): void {
    if (watermark < this.earliestEnd) return;
    const minutes = this.minutes;
    let closed = 0;
    while (closed < minutes.length && minutes[closed]!.ts + MINUTE_MS <= watermark) {
      const window = minutes[closed]!;
      out.push(toCandle(this.symbol, '1m', window, true));
      this.foldMinute(window);
      this.spare.push(window);
      closed++;
    }
    if (closed > 0) dropFirst(minutes, closed);
    for (let r = 0; r < ROLLUP_INTERVALS.length; r++) {
      const windows = this.rollups[r]!;
      const intervalMs = ROLLUP_MS[r]!;
      closed = 0;
      while (closed < windows.length && windows[closed]!.ts + intervalMs <= watermark) {
        const window = windows[closed]!;
        out.push(toCandle(this.symbol, ROLLUP_INTERVALS[r]!, window, true));
        this.spare.push(window);
        closed++;
      }
      if (closed > 0) dropFirst(windows, closed);
    }
    this.updateEarliestEnd();
  }

  /** The open windows of `interval` as candles (`final: false`), ascending by ts. */
  forming(interval: Interval): Candle[] {
    if (interval === '1m') return this.minutes.map((window) => toCandle(this.symbol, '1m', window, false));
    const r = ROLLUP_INTERVALS.indexOf(interval);
    const intervalMs = INTERVAL_MS[interval];
    // Folded (final) 1m candles all precede the open 1m windows in time, so folding the open ones
    // after them keeps time order within each longer window.
    const windows = this.rollups[r]!.map((window) => {
      const copy = new CandleWindow();
      copyWindow(copy, window);
      return copy;
    });
    for (const minute of this.minutes) {
      const bucket = bucketStart(minute.ts, intervalMs);
      const last = windows[windows.length - 1];
      if (last !== undefined && last.ts === bucket) foldWindow(last, minute);
      else {
        const copy = new CandleWindow();
        copyWindow(copy, minute);
        copy.ts = bucket;
        windows.push(copy);
      }
    }
    return windows.map((window) => toCandle(this.symbol, interval, window, false));
  }

  snapshot(): SymbolCandlesState {
    return {
      minutes: this.minutes.map((window) => ({ ...window })),
      rollups: this.rollups.map((windows) => windows.map((window) => ({ ...window }))),
    };
  }

  private foldMinute(minute: CandleWindow): void {
    for (let r = 0; r < ROLLUP_INTERVALS.length; r++) {
      const windows = this.rollups[r]!;
      const bucket = bucketStart(minute.ts, ROLLUP_MS[r]!);
      const last = windows[windows.length - 1];
      if (last !== undefined && last.ts === bucket) foldWindow(last, minute);
      else {
        const created = this.spare.pop() ?? new CandleWindow();
        copyWindow(created, minute);
        created.ts = bucket;
        windows.push(created);
      }
    }
  }

  private updateEarliestEnd(): void {
    let earliest = this.minutes.length > 0 ? this.minutes[0]!.ts + MINUTE_MS : Number.POSITIVE_INFINITY;
    for (let r = 0; r < ROLLUP_INTERVALS.length; r++) {
      const front = this.rollups[r]![0];
      if (front !== undefined && front.ts + ROLLUP_MS[r]! < earliest) earliest = front.ts + ROLLUP_MS[r]!;
    }
    this.earliestEnd = earliest;
  }

  private cloneWindow(state: CandleWindowState): CandleWindow {
    const window = new CandleWindow();
    copyWindow(window, state);
    return window;
  }
}
