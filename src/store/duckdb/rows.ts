/**
 * How the DuckDB tables' rows read back as records: the columns each read selects, in order, and the
 * decoder of one row. Shared by the DuckDB store and the lake's reads of the same rows from Parquet.
 */
import type { DuckDBValue } from '@duckdb/node-api';
import type { Alert, AlertKind, Candle, IndicatorPoint, Interval } from '../../core/records.ts';
import type { StoredTick } from '../store.ts';

export const num = (value: DuckDBValue): number => Number(value as bigint | number);
export const numOrNull = (value: DuckDBValue): number | null =>
  value === null ? null : Number(value as number);

export const TICK_READ_COLUMNS = 'ts, seq, price, size, id, ma_short, ma_long, late';

export function tickFromRow(row: DuckDBValue[]): StoredTick {
  return {
    ts: num(row[0]!),
    price: row[2] as number,
    size: row[3] as number,
    id: row[4] as string | null,
    maShort: numOrNull(row[5]!),
    maLong: numOrNull(row[6]!),
    late: row[7] as boolean,
  };
}

/** Symbol and interval are the query's own: not selecting them saves two string columns. */
export const CANDLE_READ_COLUMNS = 'ts, open, high, low, close, volume, trades, vwap';

export function candleFromRow(symbol: string, interval: Interval, row: DuckDBValue[]): Candle {
  return {
    symbol,
    interval,
    ts: num(row[0]!),
    open: row[1] as number,
    high: row[2] as number,
    low: row[3] as number,
    close: row[4] as number,
    volume: row[5] as number,
    trades: num(row[6]!),
    vwap: numOrNull(row[7]!),
    final: true,
  };
}

export const INDICATOR_READ_COLUMNS = 'ts, sma20, ema20, rsi14, bb_upper, bb_middle, bb_lower';

export function indicatorFromRow(symbol: string, interval: Interval, row: DuckDBValue[]): IndicatorPoint {
  return {
    symbol,
    interval,
    ts: num(row[0]!),
    sma20: numOrNull(row[1]!),
    ema20: numOrNull(row[2]!),
    rsi14: numOrNull(row[3]!),
    bbUpper: numOrNull(row[4]!),
    bbMiddle: numOrNull(row[5]!),
    bbLower: numOrNull(row[6]!),
  };
}

export const ALERT_READ_COLUMNS = 'seq, ts, symbol, kind, price, threshold, message';

export function alertFromRow(row: DuckDBValue[]): Alert {
  const alert: Alert = {
    seq: num(row[0]!),
    ts: num(row[1]!),
    symbol: row[2] as string,
    kind: row[3] as AlertKind,
    price: row[4] as number,
    message: row[6] as string,
  };
  if (row[5] !== null) alert.threshold = row[5] as number;
  return alert;
}
