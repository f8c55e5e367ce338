/**
 * Market data reads: symbols, latest tick, ticks, candles (final from the store plus the forming
 * ones from the pipeline) and candle indicators.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { Candle, Interval } from '../../core/records.ts';
import type { RangeQuery, Store } from '../../store/store.ts';
import { ApiError } from '../errors.ts';
import {
  intervalSchema,
  type LimitOptions,
  parseSymbol,
  type RangeQuerystring,
  rangeQuerySchema,
  toRangeQuery,
} from '../params.ts';
import type { PipelineView } from '../pipeline-view.ts';
import {
  candleSchema,
  indicatorPointSchema,
  latestTickSchema,
  listResponse,
  storedTickSchema,
  symbolSummarySchema,
} from '../schemas.ts';

export interface MarketRoutesOptions {
  store: Store;
  view: PipelineView;
  limits: LimitOptions;
}

interface SymbolParams {
  symbol: string;
}

interface IntervalQuerystring extends RangeQuerystring {
  interval: Interval;
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

/** The encapsulated plugin serving the market-data routes under /api/v1. */
export const marketRoutes: FastifyPluginAsync<MarketRoutesOptions> = async (app, { store, view, limits }) => {
  async function requireKnown(symbol: string): Promise<void> {
    if ((await store.latest(symbol)) === undefined) {
      throw new ApiError(404, 'unknown_symbol', `unknown symbol ${symbol}`);
    }
  }

  app.get(
    '/api/v1/symbols',
    { schema: { response: listResponse('symbols', symbolSummarySchema) } },
    async () => ({
      symbols: await store.symbols(),
    }),
  );

  app.get<{ Params: SymbolParams }>(
    '/api/v1/latest/:symbol',
    { schema: { response: { 200: latestTickSchema } } },
    async (request) => {
      const symbol = parseSymbol(request.params.symbol);
      const latest = await store.latest(symbol);
      if (latest === undefined) throw new ApiError(404, 'unknown_symbol', `unknown symbol ${symbol}`);
      return latest;
    },
  );

  app.get<{ Params: SymbolParams; Querystring: RangeQuerystring }>(
    '/api/v1/ticks/:symbol',
    {
      schema: {
        querystring: rangeQuerySchema(limits),
        response: listResponse('ticks', storedTickSchema, ['symbol']),
      },
    },
    async (request) => {
      const symbol = parseSymbol(request.params.symbol);
      const range = toRangeQuery(request.query);
      const [, ticks] = await Promise.all([requireKnown(symbol), store.ticks(symbol, range)]);
      return { symbol, ticks };
    },
  );

  app.get<{ Params: SymbolParams; Querystring: IntervalQuerystring }>(
    '/api/v1/candles/:symbol',
    {
      schema: {
        querystring: rangeQuerySchema(limits, { interval: intervalSchema }),
        response: listResponse('candles', candleSchema, ['symbol', 'interval']),
      },
    },
    async (request) => {
      const symbol = parseSymbol(request.params.symbol);
      const { interval } = request.query;
      const range = toRangeQuery(request.query);
      // Forming first: a window that closes while the store answers then shows up in both, and the
      // merge keeps the final one; read the other way round it could show up in neither.
      const forming = view.formingCandles(symbol, interval);
      const [, final] = await Promise.all([requireKnown(symbol), store.candles(symbol, interval, range)]);
      return { symbol, interval, candles: mergeCandles(final, forming, range) };
    },
  );

  app.get<{ Params: SymbolParams; Querystring: IntervalQuerystring }>(
    '/api/v1/indicators/:symbol',
    {
      schema: {
        querystring: rangeQuerySchema(limits, { interval: intervalSchema }),
        response: listResponse('points', indicatorPointSchema, ['symbol', 'interval']),
      },
    },
    async (request) => {
      const symbol = parseSymbol(request.params.symbol);
      const { interval } = request.query;
      const range = toRangeQuery(request.query);
      const [, points] = await Promise.all([requireKnown(symbol), store.indicators(symbol, interval, range)]);
      return { symbol, interval, points };
    },
  );
};
