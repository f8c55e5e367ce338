/**
 * Request parameters shared by the REST routes: symbols, time ranges and limits, with the JSON
 * schemas Fastify validates querystrings against.
 */
import type { FastifyRequest } from 'fastify';
import { ALERT_KINDS, INTERVALS } from '../core/records.ts';
import type { RangeQuery } from '../store/store.ts';
import { ApiError } from './errors.ts';

/** docs/design.md, Rules: what a symbol must look like after trimming and upper-casing. */
export const SYMBOL_PATTERN = /^[A-Z0-9][A-Z0-9._:/-]{0,31}$/;

/** Normalises a symbol as ingest does (trim, upper-case); throws `invalid_symbol` when it cannot be one. */
export function parseSymbol(raw: string, where = 'symbol'): string {
  const symbol = raw.trim().toUpperCase();
  if (!SYMBOL_PATTERN.test(symbol)) {
    throw new ApiError(
      'invalid_symbol',
      `${where} must match ${SYMBOL_PATTERN.source} after trimming and upper-casing, got ${JSON.stringify(raw.slice(0, 100))}`,
    );
  }
  return symbol;
}

/**
 * A number as the docs define every numeric parameter: decimal digits (a minus sign only so that
 * the bounds check can say ">= 0"), no exponent, fraction, hex, leading zero or space.
 */
const WHOLE_NUMBER_TEXT = /^-?(?:0|[1-9][0-9]*)$/;

/** The bounds of a numeric parameter, both inclusive. */
export interface WholeNumberBounds {
  min: number;
  max: number;
}

/**
 * The one check of a numeric parameter, used by REST (the querystring's text) and GraphQL (the
 * argument's number): a whole number in [min, max]. `where` names it in the message ("query
 * parameter limit", "argument from"), which echoes the value as the client sent it.
 */
export function parseWholeNumber(where: string, value: string | number, bounds: WholeNumberBounds): number {
  const got = `, got ${typeof value === 'string' ? JSON.stringify(value.slice(0, 100)) : String(value)}`;
  if (typeof value === 'string' && !WHOLE_NUMBER_TEXT.test(value)) {
    throw new ApiError('invalid_parameter', `${where} must be an integer${got}`);
  }
  const number = Number(value);
  if (!Number.isInteger(number)) throw new ApiError('invalid_parameter', `${where} must be an integer${got}`);
  if (number < bounds.min) throw new ApiError('invalid_parameter', `${where} must be >= ${bounds.min}${got}`);
  if (number > bounds.max) throw new ApiError('invalid_parameter', `${where} must be <= ${bounds.max}${got}`);
  return number;
}

interface PropertySchema {
  type?: unknown;
  minimum?: number;
  maximum?: number;
}

function schemaProperties(schema: unknown): Record<string, PropertySchema> | undefined {
  return (schema as { properties?: Record<string, PropertySchema> } | undefined)?.properties;
}

/**
 * A `preValidation` hook for every route: parameters are taken as sent, not coerced. Ajv (Fastify's
 * validator) would read `limit=1e3`, `0x10` or a space as numbers and `{"role": ["admin"]}` as a
 * string; here every integer in the querystring goes through parseWholeNumber, given once, and a
 * body field declared a string must be one.
 */
export function checkParameters(
  request: FastifyRequest,
  _reply: unknown,
  done: (error?: Error) => void,
): void {
  const schema = request.routeOptions.schema;
  try {
    const query = request.query as Record<string, unknown> | undefined;
    const properties = schemaProperties(schema?.querystring);
    if (query !== undefined && properties !== undefined) {
      for (const [name, property] of Object.entries(properties)) {
        const value = query[name];
        if (value === undefined || property.type !== 'integer') continue;
        const where = `query parameter ${name}`;
        if (typeof value !== 'string') {
          throw new ApiError(
            'invalid_parameter',
            `${where} must be given once, got ${JSON.stringify(value).slice(0, 100)}`,
          );
        }
        query[name] = parseWholeNumber(where, value, {
          min: property.minimum ?? 0,
          max: property.maximum ?? Number.MAX_SAFE_INTEGER,
        });
      }
    }
    const bodyProperties = schemaProperties(schema?.body);
    const body = request.body;
    if (bodyProperties !== undefined && typeof body === 'object' && body !== null && !Array.isArray(body)) {
      for (const [name, property] of Object.entries(bodyProperties)) {
        const value = (body as Record<string, unknown>)[name];
        if (value !== undefined && property.type === 'string' && typeof value !== 'string') {
          throw new ApiError(
            'invalid_parameter',
            `body field ${name} must be a string, got ${JSON.stringify(value).slice(0, 100)}`,
          );
        }
      }
    }
  } catch (error) {
    done(error as Error);
    return;
  }
  done();
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
    throw new ApiError('invalid_range', `from (${range.from}) must be <= to (${range.to})`);
  }
  return range;
}
