/**
 * The one reading of `RangeQuery` every store shares, so implementations cannot drift apart on
 * bounds that are fractional, infinite or missing.
 */
import type { RangeQuery } from './store.ts';

/** A range with integer bounds in the safe-integer range and a non-negative integer limit. */
export interface NormalizedRange {
  from: number | undefined;
  to: number | undefined;
  limit: number;
}

/**
 * Timestamps are integer ms, so `ts >= 1.5` is `ts >= 2` and `ts <= 1.5` is `ts <= 1`; bounds are
 * clamped to the safe-integer range so a SQL backend can bind them as BIGINT.
 */
export function normalizeRange(range: RangeQuery): NormalizedRange {
  return {
    from: range.from === undefined ? undefined : clampTs(Math.ceil(range.from), 'from'),
    to: range.to === undefined ? undefined : clampTs(Math.floor(range.to), 'to'),
    limit: normalizeLimit(range.limit),
  };
}

/** A NaN or negative limit reads as 0 (nothing), an infinite one as "no limit" within the safe range. */
export function normalizeLimit(limit: number): number {
  if (!(limit > 0)) return 0;
  return Math.min(Math.floor(limit), Number.MAX_SAFE_INTEGER);
}

function clampTs(value: number, name: string): number {
  if (Number.isNaN(value)) throw new RangeError(`range.${name} must be a number, got NaN`);
  return Math.min(Math.max(value, -Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER);
}

/**
 * Applies a range to records already sorted ascending by (ts, log order): the first `limit` from
 * `from` when it is set, otherwise the last `limit` up to `to`.
 */
export function selectRange<T extends { ts: number }>(sorted: readonly T[], range: RangeQuery): T[] {
  const { from, to, limit } = normalizeRange(range);
  if (limit === 0) return [];
  if (from !== undefined) {
    const out: T[] = [];
    for (const record of sorted) {
      if (record.ts < from) continue;
      if (to !== undefined && record.ts > to) break;
      out.push(record);
      if (out.length === limit) break;
    }
    return out;
  }
  let end = sorted.length;
  if (to !== undefined) {
    while (end > 0 && sorted[end - 1]!.ts > to) end--;
  }
  return sorted.slice(Math.max(0, end - limit), end);
}
