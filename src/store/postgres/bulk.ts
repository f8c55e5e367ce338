/**
 * Bulk rows for the PostgreSQL store: each table's columns declared once, encoded either as COPY
 * text (the fast path) or as one array per column for `INSERT ... SELECT FROM unnest(...)` (for
 * servers without COPY FROM STDIN, such as PGlite behind pglite-socket).
 */
import type { Alert, Candle, DeadLetter, IndicatorPoint, ProcessedTick } from '../../core/records.ts';

type SqlType = 'bigint' | 'text' | 'float8' | 'bool';
type Value = string | number | boolean | null;

/** A column of a bulk-written table: its name, SQL type and how to read it off a record. */
export interface Column<T> {
  name: string;
  type: SqlType;
  value: (record: T) => Value;
}

/** A table's columns; COPY and unnest both name them, so their order here is free. */
export interface TableSpec<T> {
  table: string;
  columns: readonly Column<T>[];
}

const orNull = (value: number | null | undefined): number | null => value ?? null;

export const TICKS: TableSpec<ProcessedTick> = {
  table: 'ticks',
  columns: [
    { name: 'seq', type: 'bigint', value: (tick) => tick.seq },
    { name: 'source', type: 'text', value: (tick) => tick.source },
    { name: 'symbol', type: 'text', value: (tick) => tick.symbol },
    { name: 'ts', type: 'bigint', value: (tick) => tick.ts },
    { name: 'price', type: 'float8', value: (tick) => tick.price },
    { name: 'size', type: 'float8', value: (tick) => tick.size },
    { name: 'id', type: 'text', value: (tick) => tick.id ?? null },
    { name: 'side', type: 'text', value: (tick) => tick.side ?? null },
    { name: 'received_at', type: 'bigint', value: (tick) => tick.receivedAt },
    { name: 'ma_short', type: 'float8', value: (tick) => orNull(tick.maShort) },
    { name: 'ma_long', type: 'float8', value: (tick) => orNull(tick.maLong) },
    { name: 'late', type: 'bool', value: (tick) => tick.late },
  ],
};

export const CANDLES: TableSpec<Candle> = {
  table: 'candles',
  columns: [
    { name: 'symbol', type: 'text', value: (candle) => candle.symbol },
    { name: '"interval"', type: 'text', value: (candle) => candle.interval },
    { name: 'ts', type: 'bigint', value: (candle) => candle.ts },
    { name: 'open', type: 'float8', value: (candle) => candle.open },
    { name: 'high', type: 'float8', value: (candle) => candle.high },
    { name: 'low', type: 'float8', value: (candle) => candle.low },
    { name: 'close', type: 'float8', value: (candle) => candle.close },
    { name: 'volume', type: 'float8', value: (candle) => candle.volume },
    { name: 'trades', type: 'bigint', value: (candle) => candle.trades },
    { name: 'vwap', type: 'float8', value: (candle) => orNull(candle.vwap) },
  ],
};

export const INDICATORS: TableSpec<IndicatorPoint> = {
  table: 'indicators',
  columns: [
    { name: 'symbol', type: 'text', value: (point) => point.symbol },
    { name: '"interval"', type: 'text', value: (point) => point.interval },
    { name: 'ts', type: 'bigint', value: (point) => point.ts },
    { name: 'sma20', type: 'float8', value: (point) => orNull(point.sma20) },
    { name: 'ema20', type: 'float8', value: (point) => orNull(point.ema20) },
    { name: 'rsi14', type: 'float8', value: (point) => orNull(point.rsi14) },
    { name: 'bb_upper', type: 'float8', value: (point) => orNull(point.bbUpper) },
    { name: 'bb_middle', type: 'float8', value: (point) => orNull(point.bbMiddle) },
    { name: 'bb_lower', type: 'float8', value: (point) => orNull(point.bbLower) },
  ],
};

export const ALERTS: TableSpec<Alert> = {
  table: 'alerts',
  columns: [
    { name: 'seq', type: 'bigint', value: (alert) => alert.seq },
    { name: 'ts', type: 'bigint', value: (alert) => alert.ts },
    { name: 'symbol', type: 'text', value: (alert) => alert.symbol },
    { name: 'kind', type: 'text', value: (alert) => alert.kind },
    { name: 'price', type: 'float8', value: (alert) => alert.price },
    { name: 'threshold', type: 'float8', value: (alert) => orNull(alert.threshold) },
    { name: 'message', type: 'text', value: (alert) => alert.message },
  ],
};

export const DEAD_LETTERS: TableSpec<DeadLetter> = {
  table: 'dead_letters',
  columns: [
    { name: 'seq', type: 'bigint', value: (letter) => letter.seq },
    { name: 'source', type: 'text', value: (letter) => letter.source },
    { name: 'reason', type: 'text', value: (letter) => letter.reason },
    { name: 'detail', type: 'text', value: (letter) => letter.detail },
    { name: 'raw', type: 'text', value: (letter) => letter.raw },
    { name: 'received_at', type: 'bigint', value: (letter) => letter.receivedAt },
  ],
};

const COPY_SPECIAL = /[\\\t\n\r\0]/;
const COPY_SPECIAL_ALL = /[\\\t\n\r\0]/g;
// PostgreSQL text cannot hold NUL at all; a dead letter's raw input might, so it becomes U+FFFD
// rather than failing the whole batch forever.
const COPY_ESCAPES: Readonly<Record<string, string>> = {
  '\\': '\\\\',
  '\t': '\\t',
  '\n': '\\n',
  '\r': '\\r',
  '\0': '\uFFFD',
};

/** A string as a field of COPY's text format: backslash, tab, newline and CR escaped. */
export function copyTextField(value: string): string {
  if (!COPY_SPECIAL.test(value)) return value;
  return value.replace(COPY_SPECIAL_ALL, (char) => COPY_ESCAPES[char] ?? char);
}

function copyField(value: Value): string {
  if (value === null) return '\\N';
  if (typeof value === 'string') return copyTextField(value);
  if (typeof value === 'boolean') return value ? 't' : 'f';
  // String(number) is the shortest text that reads back as the same double, and PostgreSQL's
  // float8 input rounds correctly, so 0.30000000000000004 survives; Infinity and NaN are
  // spelled as PostgreSQL spells them. A fractional BIGINT is rejected by the server.
  return String(value);
}

/** The COPY statement for a table. */
export function copySql<T>(spec: TableSpec<T>): string {
  return `COPY ${spec.table} (${spec.columns.map((column) => column.name).join(', ')}) FROM STDIN`;
}

/** Records as COPY text-format rows, one line each. */
export function copyText<T>(spec: TableSpec<T>, records: readonly T[]): string {
  const columns = spec.columns;
  let out = '';
  for (const record of records) {
    for (let i = 0; i < columns.length; i++) {
      if (i > 0) out += '\t';
      out += copyField(columns[i]!.value(record));
    }
    out += '\n';
  }
  return out;
}

/** The INSERT of a batch as arrays: one statement and one round trip for any number of rows. */
export function unnestInsert<T>(
  spec: TableSpec<T>,
  records: readonly T[],
): { text: string; values: Value[][] } {
  const values = spec.columns.map((column) => records.map((record) => nulless(column.value(record))));
  const unnest = spec.columns.map((column, i) => `$${i + 1}::${column.type}[]`).join(', ');
  return {
    text: `INSERT INTO ${spec.table} (${spec.columns.map((column) => column.name).join(', ')})
           SELECT * FROM unnest(${unnest})`,
    values,
  };
}

function nulless(value: Value): Value {
  return typeof value === 'string' && value.includes('\0') ? value.replaceAll('\0', '\uFFFD') : value;
}
