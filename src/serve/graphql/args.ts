/**
 * GraphQL arguments checked with the rules the REST querystring schemas enforce (params.ts), so
 * a value REST refuses is refused here with the same code. Messages name the argument and echo it.
 */
import { ALERT_KINDS, type AlertKind, INTERVALS, type Interval, isInterval } from '../../core/records.ts';
import type { AlertQuery, RangeQuery } from '../../store/store.ts';
import { ApiError } from '../errors.ts';
import { type LimitOptions, parseSymbol, parseWholeNumber, toRangeQuery } from '../params.ts';

/** `from`, `to` and `limit` as GraphQL hands them over: absent, null or a number. */
export interface RangeArgs {
  from?: number | null;
  to?: number | null;
  limit?: number | null;
}

/** Same bounds as params.ts's time schema: an integer in [0, 2^53 - 1]. */
function parseTime(name: string, value: number | null | undefined): number | undefined {
  if (value === undefined || value === null) return undefined;
  return parseWholeNumber(`argument ${name}`, value, { min: 0, max: Number.MAX_SAFE_INTEGER });
}

/** Validates a range as REST does, including `invalid_range` for from > to (via toRangeQuery). */
export function parseRangeArgs(args: RangeArgs, limits: LimitOptions): RangeQuery {
  const limit = parseWholeNumber('argument limit', args.limit ?? limits.defaultLimit, {
    min: 1,
    max: limits.maxLimit,
  });
  const from = parseTime('from', args.from);
  const to = parseTime('to', args.to);
  return toRangeQuery({
    limit,
    ...(from === undefined ? {} : { from }),
    ...(to === undefined ? {} : { to }),
  });
}

/** `interval`, default `1m`; anything else is `invalid_interval`. */
export function parseIntervalArg(value: string | null | undefined): Interval {
  if (value === undefined || value === null) return '1m';
  if (!isInterval(value)) {
    throw new ApiError(
      'invalid_interval',
      `argument interval must be one of ${INTERVALS.join(', ')}, got ${JSON.stringify(value.slice(0, 100))}`,
    );
  }
  return value;
}

/** An alert kind; anything else is `invalid_kind`. */
export function parseKindArg(value: string): AlertKind {
  if (!(ALERT_KINDS as readonly string[]).includes(value)) {
    throw new ApiError(
      'invalid_kind',
      `argument kind must be one of ${ALERT_KINDS.join(', ')}, got ${JSON.stringify(value.slice(0, 100))}`,
    );
  }
  return value as AlertKind;
}

/** The alert filter of `alerts(symbol, kind, from, to, limit)`, as `GET /api/v1/alerts` builds it. */
export function parseAlertArgs(
  args: RangeArgs & { symbol?: string | null; kind?: string | null },
  limits: LimitOptions,
): AlertQuery {
  const query: AlertQuery = parseRangeArgs(args, limits);
  if (args.symbol !== undefined && args.symbol !== null)
    query.symbol = parseSymbol(args.symbol, 'argument symbol');
  if (args.kind !== undefined && args.kind !== null) query.kind = parseKindArg(args.kind);
  return query;
}
