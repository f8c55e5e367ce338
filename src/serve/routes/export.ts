/**
 * CSV downloads of a symbol's ticks and candles over a time range. The store is read in pages of
 * EXPORT_PAGE records and streamed out, so an export of millions of rows never sits in memory.
 */
import { Readable } from 'node:stream';
import type { FastifyPluginAsync } from 'fastify';
import type { PipelineView } from '../../core/pipeline-view.ts';
import type { Candle, Interval } from '../../core/records.ts';
import type { RangeQuery, Store, StoredTick } from '../../store/store.ts';
import { ApiError } from '../errors.ts';
import { intervalSchema, parseSymbol, toRangeQuery } from '../params.ts';
import { errorResponses, symbolParamsSchema } from '../schemas.ts';

/** Records read from the store per page. */
export const EXPORT_PAGE = 10_000;

export const TICK_COLUMNS = ['ts', 'price', 'size', 'id', 'maShort', 'maLong', 'late'] as const;
export const CANDLE_COLUMNS = [
  'ts',
  'open',
  'high',
  'low',
  'close',
  'volume',
  'trades',
  'vwap',
  'final',
] as const;

export interface ExportRoutesOptions {
  store: Store;
  view: PipelineView;
}

/** One CSV field (RFC 4180): null and undefined are empty; text with a comma, quote or newline is quoted. */
export function csvField(value: unknown): string {
  if (value === null || value === undefined) return '';
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function csvRow(record: Record<string, unknown>, columns: readonly string[]): string {
  let row = '';
  for (let i = 0; i < columns.length; i++) {
    if (i > 0) row += ',';
    row += csvField(record[columns[i]!]);
  }
  return `${row}\n`;
}

/** What an export covers: a symbol's records from `from` to `to` (both inclusive; no `to`: the last one). */
export interface ExportRange {
  symbol: string;
  from: number;
  to: number | undefined;
}

/** One page of an export: from `start`, up to `to` when the range has an end. */
function pageQuery(start: number, to: number | undefined, pageSize: number): RangeQuery {
  return to === undefined ? { from: start, limit: pageSize } : { from: start, to, limit: pageSize };
}

/**
 * Every tick of the range, page by page. A page may end in the middle of a run of equal timestamps,
 * so the next page starts at that timestamp and the rows of it already sent are skipped by count
 * (the store orders equal timestamps by log order, so the same rows come first again).
 */
export async function* tickPages(
  store: Store,
  { symbol, from, to }: ExportRange,
  pageSize = EXPORT_PAGE,
): AsyncGenerator<StoredTick[]> {
  let start = from;
  let skip = 0;
  for (;;) {
    const page = await store.ticks(symbol, pageQuery(start, to, pageSize));
    const fresh = skip > 0 ? page.slice(skip) : page;
    if (fresh.length > 0) yield fresh;
    if (page.length < pageSize) return;
    const lastTs = page[page.length - 1]!.ts;
    let sameTs = 0;
    for (let i = page.length - 1; i >= 0 && page[i]!.ts === lastTs; i--) sameTs++;
    if (page[0]!.ts === lastTs) {
      // A whole page within one ms cannot be paged by time: read that ms at once, then move past it.
      const run = await store.ticks(symbol, { from: lastTs, to: lastTs, limit: Number.MAX_SAFE_INTEGER });
      const rest = run.slice(page.length);
      if (rest.length > 0) yield rest;
      start = lastTs + 1;
      skip = 0;
      continue;
    }
    skip = sameTs;
    start = lastTs;
  }
}

/** Final candles of the range from the store, page by page, then the forming ones past them. */
export async function* candlePages(
  store: Store,
  view: PipelineView,
  { symbol, from, to }: ExportRange,
  interval: Interval,
  pageSize = EXPORT_PAGE,
): AsyncGenerator<Candle[]> {
  let start = from;
  let lastTs = Number.NEGATIVE_INFINITY;
  for (;;) {
    const page = await store.candles(symbol, interval, pageQuery(start, to, pageSize));
    if (page.length > 0) {
      yield page;
      lastTs = page[page.length - 1]!.ts;
      // One candle per bucket start, so the next page starts right after the last one.
      start = lastTs + 1;
    }
    if (page.length < pageSize) break;
  }
  const forming = view
    .formingCandles(symbol, interval)
    .filter((candle) => candle.ts > lastTs && candle.ts >= from && (to === undefined || candle.ts <= to));
  if (forming.length > 0) yield forming;
}

async function* csv<T>(columns: readonly string[], pages: AsyncGenerator<T[]>): AsyncGenerator<string> {
  yield `${columns.join(',')}\n`;
  for await (const page of pages) {
    let chunk = '';
    for (const record of page) chunk += csvRow(record as Record<string, unknown>, columns);
    yield chunk;
  }
}

const timeSchema = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const;

/** An export has no limit: the whole range, from the first record without `from`, to the last without `to`. */
const exportRangeProperties = {
  from: {
    ...timeSchema,
    description: 'Start of the range, ms since the epoch, inclusive; default: the first record.',
    examples: [1_700_000_000_000],
  },
  to: {
    ...timeSchema,
    description: 'End of the range, ms since the epoch, inclusive; default: the last record.',
    examples: [1_700_003_600_000],
  },
} as const;

/** A CSV body: streamed, so Fastify never serialises it and this schema only documents it. */
function csvResponse(description: string, example: string): object {
  return {
    description,
    headers: {
      'content-disposition': {
        type: 'string',
        description: 'attachment; filename="SYMBOL-....csv" (characters a file name cannot hold become _).',
      },
    },
    content: { 'text/csv': { schema: { type: 'string', examples: [example] } } },
  };
}

const exportTicksSchema = {
  summary: 'Download the ticks of a symbol as CSV',
  description:
    `Every accepted tick in the range, ascending by ts (equal ts in log order), as RFC 4180 CSV with ` +
    `the header ${TICK_COLUMNS.join(',')}; a null is an empty field. Streamed page by page, so any ` +
    'range works.',
  tags: ['market'],
  params: symbolParamsSchema,
  querystring: { type: 'object', properties: exportRangeProperties },
  response: {
    200: csvResponse(
      'The ticks, as a CSV attachment named SYMBOL-ticks.csv.',
      `${TICK_COLUMNS.join(',')}\n1700000059731,64050.25,0.012,3284719,64048.1,,false\n`,
    ),
    ...errorResponses(400, 404),
  },
};

const exportCandlesSchema = {
  summary: 'Download the candles of a symbol as CSV',
  description:
    'The final candles of the range from the store, then the forming ones of the running pipeline ' +
    `(\`final\` false), ascending by ts, as RFC 4180 CSV with the header ${CANDLE_COLUMNS.join(',')}; a null ` +
    'is an empty field. Streamed page by page, so any range works.',
  tags: ['market'],
  params: symbolParamsSchema,
  querystring: { type: 'object', properties: { ...exportRangeProperties, interval: intervalSchema } },
  response: {
    200: csvResponse(
      'The candles, as a CSV attachment named SYMBOL-candles-INTERVAL.csv.',
      `${CANDLE_COLUMNS.join(',')}\n1700000040000,64012.5,64080,63990.1,64050.25,3.75,42,64031.7,true\n`,
    ),
    ...errorResponses(400, 404),
  },
};

interface ExportQuery {
  from?: number;
  to?: number;
  interval: Interval;
}

/** The encapsulated plugin serving `/api/v1/export/ticks/:symbol` and `/api/v1/export/candles/:symbol`. */
export const exportRoutes: FastifyPluginAsync<ExportRoutesOptions> = async (app, { store, view }) => {
  async function prepare(rawSymbol: string, query: ExportQuery): Promise<ExportRange> {
    const symbol = parseSymbol(rawSymbol);
    const range = toRangeQuery({ ...query, limit: 1 });
    if ((await store.latest(symbol)) === undefined) {
      throw new ApiError('unknown_symbol', `unknown symbol ${symbol}`);
    }
    return { symbol, from: range.from ?? 0, to: range.to };
  }

  function attachment(name: string): string {
    // Symbols may hold '/' or ':', which browsers refuse in file names.
    return `attachment; filename="${name.replace(/[^A-Za-z0-9._-]/g, '_')}.csv"`;
  }

  app.get<{ Params: { symbol: string }; Querystring: ExportQuery }>(
    '/api/v1/export/ticks/:symbol',
    { schema: exportTicksSchema },
    async (request, reply) => {
      const range = await prepare(request.params.symbol, request.query);
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', attachment(`${range.symbol}-ticks`))
        .send(Readable.from(csv(TICK_COLUMNS, tickPages(store, range))));
    },
  );

  app.get<{ Params: { symbol: string }; Querystring: ExportQuery }>(
    '/api/v1/export/candles/:symbol',
    { schema: exportCandlesSchema },
    async (request, reply) => {
      const range = await prepare(request.params.symbol, request.query);
      const { interval } = request.query;
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', attachment(`${range.symbol}-candles-${interval}`))
        .send(Readable.from(csv(CANDLE_COLUMNS, candlePages(store, view, range, interval))));
    },
  );
};
