/**
 * Market data reads: symbols, latest tick, ticks, candles (final from the store plus the forming
 * ones from the pipeline) and candle indicators.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { PipelineView } from '../../core/pipeline-view.ts';
import type { Interval } from '../../core/records.ts';
import type { Store } from '../../store/store.ts';
import { timeStore } from '../edge/edge.ts';
import { ApiError } from '../errors.ts';
import {
  intervalSchema,
  type LimitOptions,
  parseSymbol,
  type RangeQuerystring,
  rangeQuerySchema,
  toRangeQuery,
} from '../params.ts';
import { readCandles, requireKnownSymbol } from '../queries.ts';
import {
  candleSchema,
  EXAMPLES,
  errorResponses,
  indicatorPointSchema,
  latestTickSchema,
  listResponse,
  storedTickSchema,
  symbolParamsSchema,
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

/** Lives in ../queries.ts (shared with GraphQL); re-exported for existing importers. */
export { mergeCandles } from '../queries.ts';

/** The encapsulated plugin serving the market-data routes under /api/v1. */
export const marketRoutes: FastifyPluginAsync<MarketRoutesOptions> = async (app, { store, view, limits }) => {
  const requireKnown = (symbol: string): Promise<void> => requireKnownSymbol(store, symbol);

  app.get(
    '/api/v1/symbols',
    {
      schema: {
        summary: 'List the symbols',
        description: 'Every symbol the store has seen, with its last price and the time of its last trade.',
        tags: ['market'],
        response: {
          ...listResponse('symbols', symbolSummarySchema, [], 'The symbols, by name.', {
            symbols: [{ symbol: 'BTCUSDT', lastPrice: 64_050.25, lastTs: 1_700_000_059_731 }],
          }),
          ...errorResponses(),
        },
      },
    },
    async (request) => ({ symbols: await timeStore(request, store.symbols()) }),
  );

  app.get<{ Params: SymbolParams }>(
    '/api/v1/latest/:symbol',
    {
      schema: {
        summary: 'The last tick of a symbol',
        description: 'The last accepted tick of the symbol in log order, with its moving averages.',
        tags: ['market'],
        params: symbolParamsSchema,
        response: {
          200: {
            ...latestTickSchema,
            description: 'The last tick.',
            examples: [
              {
                symbol: 'BTCUSDT',
                ts: 1_700_000_059_731,
                price: 64_050.25,
                size: 0.012,
                maShort: 64_048.1,
                maLong: null,
                source: 'binance',
              },
            ],
          },
          ...errorResponses(400, 404),
        },
      },
    },
    async (request) => {
      const symbol = parseSymbol(request.params.symbol);
      const latest = await timeStore(request, store.latest(symbol));
      if (latest === undefined) throw new ApiError('unknown_symbol', `unknown symbol ${symbol}`);
      return latest;
    },
  );

  app.get<{ Params: SymbolParams; Querystring: RangeQuerystring }>(
    '/api/v1/ticks/:symbol',
    {
      schema: {
        summary: 'Ticks of a symbol',
        description:
          'Accepted ticks in a time range with their per-tick moving averages; `late` ticks entered no candle.',
        tags: ['market'],
        params: symbolParamsSchema,
        querystring: rangeQuerySchema(limits),
        response: {
          ...listResponse('ticks', storedTickSchema, ['symbol'], 'The ticks, ascending by ts.', {
            symbol: 'BTCUSDT',
            ticks: [EXAMPLES.tick],
          }),
          ...errorResponses(400, 404),
        },
      },
    },
    async (request) => {
      const symbol = parseSymbol(request.params.symbol);
      const range = toRangeQuery(request.query);
      const [, ticks] = await timeStore(
        request,
        Promise.all([requireKnown(symbol), store.ticks(symbol, range)]),
      );
      return { symbol, ticks };
    },
  );

  app.get<{ Params: SymbolParams; Querystring: IntervalQuerystring }>(
    '/api/v1/candles/:symbol',
    {
      schema: {
        summary: 'Candles of a symbol',
        description:
          'Final candles from the store, then the forming ones of the running pipeline (`final: false`), ' +
          'merged by ts; `limit` applies to the merged list.',
        tags: ['market'],
        params: symbolParamsSchema,
        querystring: rangeQuerySchema(limits, { interval: intervalSchema }),
        response: {
          ...listResponse('candles', candleSchema, ['symbol', 'interval'], 'The candles, ascending by ts.', {
            symbol: 'BTCUSDT',
            interval: '1m',
            candles: [EXAMPLES.candle, { ...EXAMPLES.candle, ts: 1_700_000_100_000, final: false }],
          }),
          ...errorResponses(400, 404),
        },
      },
    },
    async (request) => {
      const symbol = parseSymbol(request.params.symbol);
      const { interval } = request.query;
      const range = toRangeQuery(request.query);
      const candles = await timeStore(request, readCandles(store, view, symbol, interval, range));
      return { symbol, interval, candles };
    },
  );

  app.get<{ Params: SymbolParams; Querystring: IntervalQuerystring }>(
    '/api/v1/indicators/:symbol',
    {
      schema: {
        summary: 'Candle indicators of a symbol',
        description:
          'SMA(20), EMA(20), RSI(14) and Bollinger(20, 2) on the closes of the final candles, one point per ' +
          'final candle; a value is null until its window is full.',
        tags: ['market'],
        params: symbolParamsSchema,
        querystring: rangeQuerySchema(limits, { interval: intervalSchema }),
        response: {
          ...listResponse(
            'points',
            indicatorPointSchema,
            ['symbol', 'interval'],
            'The points, ascending by ts.',
            {
              symbol: 'BTCUSDT',
              interval: '1m',
              points: [EXAMPLES.indicatorPoint],
            },
          ),
          ...errorResponses(400, 404),
        },
      },
    },
    async (request) => {
      const symbol = parseSymbol(request.params.symbol);
      const { interval } = request.query;
      const range = toRangeQuery(request.query);
      const [, points] = await timeStore(
        request,
        Promise.all([requireKnown(symbol), store.indicators(symbol, interval, range)]),
      );
      return { symbol, interval, points };
    },
  );
};
