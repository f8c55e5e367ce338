/**
 * The market-data reads shared by REST (routes/market.ts) and GraphQL (graphql/), so both answer
 * the same records with the same errors. Arguments come in already validated and normalised.
 */

import type { PipelineView } from '../core/pipeline-view.ts';
import type { Candle, IndicatorPoint, Interval } from '../core/records.ts';
import type { LatestTick, RangeQuery, Store, StoredTick } from '../store/store.ts';
import { ApiError } from './errors.ts';

/** Throws `unknown_symbol` (404) when the store has never seen the symbol. */
export async function requireKnownSymbol(store: Store, symbol: string): Promise<void> {
  if ((await store.latest(symbol)) === undefined) {
    throw new ApiError('unknown_symbol', `unknown symbol ${symbol}`);
  }
}

/** The last tick of a known symbol in log order. */
export async function readLatest(store: Store, symbol: string): Promise<LatestTick> {
  const latest = await store.latest(symbol);
  if (latest === undefined) throw new ApiError('unknown_symbol', `unknown symbol ${symbol}`);
  return latest;
}

/** Ticks of a known symbol in the range. */
export async function readTicks(store: Store, symbol: string, range: RangeQuery): Promise<StoredTick[]> {
  const [, ticks] = await Promise.all([requireKnownSymbol(store, symbol), store.ticks(symbol, range)]);
  return ticks;
}

/** Final candles from the store merged with the forming ones from the pipeline (`final: false`). */
export async function readCandles(
  store: Store,
  view: PipelineView,
  symbol: string,
  interval: Interval,
  range: RangeQuery,
): Promise<Candle[]> {
  // Forming first: a window that closes while the store answers then shows up in both, and the
  // merge keeps the final one; read the other way round it could show up in neither.
  const forming = view.formingCandles(symbol, interval);
  const [, final] = await Promise.all([
    requireKnownSymbol(store, symbol),
    store.candles(symbol, interval, range),
  ]);
  return mergeCandles(final, forming, range);
}

/** Indicator points of a known symbol and interval in the range. */
export async function readIndicators(
  store: Store,
  symbol: string,
  interval: Interval,
  range: RangeQuery,
): Promise<IndicatorPoint[]> {
  const [, points] = await Promise.all([
    requireKnownSymbol(store, symbol),
    store.indicators(symbol, interval, range),
  ]);
  return points;
}

/**
 * Merges the store's final candles with the forming ones that fall in the range, ascending by ts;
 * on a shared ts the final one wins. The limit follows RangeQuery: the first N when `from` is set,
 * else the last N. Both inputs must be ascending by ts.
 */
export function mergeCandles(
  final: readonly Candle[],
  forming: readonly Candle[],
  range: RangeQuery,
): Candle[] {
  const from = range.from ?? Number.NEGATIVE_INFINITY;
  const to = range.to ?? Number.POSITIVE_INFINITY;
  const merged: Candle[] = [];
  let i = 0;
  let j = 0;
  while (i < final.length || j < forming.length) {
    const next = forming[j];
    if (next !== undefined && (next.ts < from || next.ts > to)) {
      j++;
      continue;
    }
    const stored = final[i];
    if (stored === undefined) {
      merged.push(next!);
      j++;
    } else if (next === undefined || stored.ts < next.ts) {
      merged.push(stored);
      i++;
    } else if (stored.ts === next.ts) {
      merged.push(stored);
      i++;
      j++;
    } else {
      merged.push(next);
      j++;
    }
  }
  if (merged.length <= range.limit) return merged;
  return range.from !== undefined ? merged.slice(0, range.limit) : merged.slice(merged.length - range.limit);
}
