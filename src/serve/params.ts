/**
 * Request parameters shared by the REST routes: symbols, time ranges and limits, with the JSON
 * schemas Fastify validates querystrings against.
 */
import { ALERT_KINDS, INTERVALS } from '../core/records.ts';
import type { RangeQuery } from '../store/store.ts';
import { ApiError } from './errors.ts';

/** DESIGN §4: what a symbol must look like after trimming and upper-casing. */
export const SYMBOL_PATTERN = /^[A-Z0-9][A-Z0-9._:/-]{0,31}$/;

/** Normalises a symbol as ingest does (trim, upper-case); throws `invalid_symbol` when it cannot be one. */
export function parseSymbol(raw: string, where = 'symbol'): string {
  const symbol = raw.trim().toUpperCase();
  if (!SYMBOL_PATTERN.test(symbol)) {
    throw new ApiError(
      400,
      'invalid_symbol',
      `${where} must match ${SYMBOL_PATTERN.source} after trimming and upper-casing, got ${JSON.stringify(raw.slice(0, 100))}`,
    );
  }
  return symbol;
}

/** Limits configured on the server. */
export interface LimitOptions {
  maxLimit: number;
  defaultLimit: number;
}

// Epoch ms fit in a safe integer; anything beyond would compare wrongly once stored.
const timeSchema = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const;
const fromSchema = {
  ...timeSchema,
  description:
    'Start of the range, ms since the epoch, inclusive. With it, the first `limit` records from here.',
  examples: [1_700_000_000_000],
} as const;
const toSchema = {
  ...timeSchema,
  description:
    'End of the range, ms since the epoch, inclusive. Without `from`, the last `limit` records up to here.',
  examples: [1_700_003_600_000],
} as const;

/** Querystring schema for `from`, `to`, `limit`, plus any extra properties. */
export function rangeQuerySchema(
  limits: LimitOptions,
  extra: Record<string, object> = {},
): { type: 'object'; properties: Record<string, object> } {
  return {
    type: 'object',
    properties: {
      from: fromSchema,
      to: toSchema,
      limit: {
        type: 'integer',
        minimum: 1,
        maximum: limits.maxLimit,
        default: limits.defaultLimit,
        description: 'How many records at most.',
        examples: [Math.min(100, limits.maxLimit)],
      },
      ...extra,
    },
  };
}

export const intervalSchema = {
  type: 'string',
  enum: [...INTERVALS],
  default: '1m',
  description: 'Candle interval.',
  examples: ['5m'],
} as const;
export const kindSchema = {
  type: 'string',
  enum: [...ALERT_KINDS],
  description: 'Only alerts of this kind.',
  examples: ['price_above'],
} as const;

/** The validated querystring of a range request. */
export interface RangeQuerystring {
  from?: number;
  to?: number;
  limit: number;
}

/** Builds the store's RangeQuery, refusing `from > to` (Ajv cannot compare two properties). */
export function toRangeQuery(query: RangeQuerystring): RangeQuery {
  const range: RangeQuery = { limit: query.limit };
  if (query.from !== undefined) range.from = query.from;
  if (query.to !== undefined) range.to = query.to;
  if (range.from !== undefined && range.to !== undefined && range.from > range.to) {
    throw new ApiError(400, 'invalid_range', `from (${range.from}) must be <= to (${range.to})`);
  }
  return range;
}
