/**
 * Response schemas. Fastify serialises with fast-json-stringify when a route declares one, which is
 * several times faster than JSON.stringify on 1 000 candles, and keeps internal fields (an alert's
 * `seq`, a store's extra columns) out of the API.
 */

const number = { type: 'number' } as const;
const integer = { type: 'integer' } as const;
const string = { type: 'string' } as const;
const nullableNumber = { type: ['number', 'null'] } as const;

export const symbolSummarySchema = {
  type: 'object',
  properties: { symbol: string, lastPrice: number, lastTs: integer },
  required: ['symbol', 'lastPrice', 'lastTs'],
} as const;

export const latestTickSchema = {
  type: 'object',
  properties: {
    symbol: string,
    ts: integer,
    price: number,
    size: number,
    maShort: nullableNumber,
    maLong: nullableNumber,
    source: string,
  },
  required: ['symbol', 'ts', 'price', 'size', 'maShort', 'maLong', 'source'],
} as const;

export const storedTickSchema = {
  type: 'object',
  properties: {
    ts: integer,
    price: number,
    size: number,
    id: { type: ['string', 'null'] },
    maShort: nullableNumber,
    maLong: nullableNumber,
    late: { type: 'boolean' },
  },
  required: ['ts', 'price', 'size', 'id', 'maShort', 'maLong', 'late'],
} as const;

export const candleSchema = {
  type: 'object',
  properties: {
    symbol: string,
    interval: string,
    ts: integer,
    open: number,
    high: number,
    low: number,
    close: number,
    volume: number,
    trades: integer,
    vwap: nullableNumber,
    final: { type: 'boolean' },
  },
  required: ['symbol', 'interval', 'ts', 'open', 'high', 'low', 'close', 'volume', 'trades', 'vwap', 'final'],
} as const;

export const indicatorPointSchema = {
  type: 'object',
  properties: {
    ts: integer,
    sma20: nullableNumber,
    ema20: nullableNumber,
    rsi14: nullableNumber,
    bbUpper: nullableNumber,
    bbMiddle: nullableNumber,
    bbLower: nullableNumber,
  },
  required: ['ts', 'sma20', 'ema20', 'rsi14', 'bbUpper', 'bbMiddle', 'bbLower'],
} as const;

export const alertSchema = {
  type: 'object',
  properties: {
    ts: integer,
    symbol: string,
    kind: string,
    price: number,
    threshold: number,
    message: string,
  },
  required: ['ts', 'symbol', 'kind', 'price', 'message'],
} as const;

export const deadLetterSchema = {
  type: 'object',
  properties: {
    seq: integer,
    source: string,
    reason: string,
    detail: string,
    raw: string,
    receivedAt: integer,
  },
  required: ['seq', 'source', 'reason', 'detail', 'raw', 'receivedAt'],
} as const;

/** `{key: [item]}` plus optional string fields (symbol, interval). */
export function listResponse(key: string, item: object, fields: readonly string[] = []): object {
  const properties: Record<string, object> = {};
  for (const field of fields) properties[field] = string;
  properties[key] = { type: 'array', items: item };
  return { 200: { type: 'object', properties, required: [...fields, key] } };
}
