/**
 * Validation and normalisation of one raw record (docs/design.md, Validation). Pure and allocation-light:
 * it runs once per input record on the ingest hot path.
 */
import type { RejectReason, Side, Tick } from '../core/records.ts';

export const SYMBOL_PATTERN = /^[A-Z0-9][A-Z0-9._:/-]{0,31}$/;

export type Validation = { ok: true; tick: Tick } | { ok: false; reason: RejectReason; detail: string };

/**
 * Checks a decoded record and returns the normalised tick, or the first rule it breaks. `source` is
 * the record's own when it is a non-empty string, else the feed's default. With `kind` the tick is
 * built as ingest's log entry (`kind: 'tick'` included), so ingest adds no property to it.
 */
export function validateRecord(
  value: unknown,
  defaultSource: string,
  receivedAt: number,
  kind?: 'tick',
): Validation {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return {
      ok: false,
      reason: 'not_object',
      detail: `record must be a JSON object, got ${describe(value)}`,
    };
  }
  const record = value as Record<string, unknown>;
  const rawSymbol = record.symbol;
  // A symbol that already matches is trimmed and upper-case: most are, and that saves two strings.
  const symbol =
    typeof rawSymbol !== 'string'
      ? undefined
      : SYMBOL_PATTERN.test(rawSymbol)
        ? rawSymbol
        : normaliseSymbol(rawSymbol);
  if (symbol === undefined) {
    return {
      ok: false,
      reason: 'invalid_symbol',
      detail: `symbol must be a string matching ${SYMBOL_PATTERN.source} after trimming and upper-casing, got ${describe(rawSymbol)}`,
    };
  }
  const ts = record.ts;
  if (typeof ts !== 'number' || !Number.isInteger(ts) || ts <= 0) {
    return {
      ok: false,
      reason: 'invalid_ts',
      detail: `ts must be a positive integer (ms), got ${describe(ts)}`,
    };
  }
  const price = record.price;
  if (typeof price !== 'number' || !Number.isFinite(price) || price <= 0) {
    return {
      ok: false,
      reason: 'invalid_price',
      detail: `price must be a finite number > 0, got ${describe(price)}`,
    };
  }
  const size = record.size;
  if (typeof size !== 'number' || !Number.isFinite(size) || size < 0) {
    return {
      ok: false,
      reason: 'invalid_size',
      detail: `size must be a finite number >= 0, got ${describe(size)}`,
    };
  }
  const rawId = record.id;
  let id: string | undefined;
  if (typeof rawId === 'string') id = rawId;
  else if (typeof rawId === 'number' && Number.isInteger(rawId)) id = String(rawId);
  else if (rawId !== undefined) {
    return {
      ok: false,
      reason: 'invalid_id',
      detail: `id must be a string or an integer, got ${describe(rawId)}`,
    };
  }
  const source = typeof record.source === 'string' && record.source !== '' ? record.source : defaultSource;
  const side = normaliseSide(record.side);
  return { ok: true, tick: tickOf(source, symbol, ts, price, size, receivedAt, id, side, kind) };
}

/** The symbol trimmed and upper-cased, or undefined when it then does not match SYMBOL_PATTERN. */
function normaliseSymbol(rawSymbol: string): string | undefined {
  const symbol = rawSymbol.trim().toUpperCase();
  return SYMBOL_PATTERN.test(symbol) ? symbol : undefined;
}

/**
 * One literal per shape of the optional fields (in the order the entry codec decodes them), `kind` last
 * when given: a property added after creation moves the object's properties into a separately
 * allocated backing store.
 */
function tickOf(
  source: string,
  symbol: string,
  ts: number,
  price: number,
  size: number,
  receivedAt: number,
  id: string | undefined,
  side: Side | undefined,
  kind: 'tick' | undefined,
): Tick {
  if (kind !== undefined) {
    if (id !== undefined) {
      if (side !== undefined) return { source, symbol, ts, price, size, receivedAt, id, side, kind } as Tick;
      return { source, symbol, ts, price, size, receivedAt, id, kind } as Tick;
    }
    if (side !== undefined) return { source, symbol, ts, price, size, receivedAt, side, kind } as Tick;
    return { source, symbol, ts, price, size, receivedAt, kind } as Tick;
  }
  if (id !== undefined) {
    if (side !== undefined) return { source, symbol, ts, price, size, receivedAt, id, side };
    return { source, symbol, ts, price, size, receivedAt, id };
  }
  if (side !== undefined) return { source, symbol, ts, price, size, receivedAt, side };
  return { source, symbol, ts, price, size, receivedAt };
}

/** `side` is informational: a value that is not buy/sell is dropped rather than rejecting the trade. */
function normaliseSide(side: unknown): Side | undefined {
  if (typeof side !== 'string') return undefined;
  const lower = side.toLowerCase();
  return lower === 'buy' || lower === 'sell' ? lower : undefined;
}

/** A short, safe rendering of an offending value for an error message. */
export function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  const text = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
