/**
 * Bulk rows for the PostgreSQL store: each table's columns declared once, encoded either as binary
 * COPY (the fast path) or as one array per column for `INSERT ... SELECT FROM unnest(...)` (for
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

/** A candle row: the candle and, when the batch has it, its indicator point (migration 4). */
export interface CandleRow {
  candle: Candle;
  point: IndicatorPoint | undefined;
}

export const CANDLES: TableSpec<CandleRow> = {
  table: 'candles',
  columns: [
    { name: 'symbol', type: 'text', value: (row) => row.candle.symbol },
    { name: '"interval"', type: 'text', value: (row) => row.candle.interval },
    { name: 'ts', type: 'bigint', value: (row) => row.candle.ts },
    { name: 'open', type: 'float8', value: (row) => row.candle.open },
    { name: 'high', type: 'float8', value: (row) => row.candle.high },
    { name: 'low', type: 'float8', value: (row) => row.candle.low },
    { name: 'close', type: 'float8', value: (row) => row.candle.close },
    { name: 'volume', type: 'float8', value: (row) => row.candle.volume },
    { name: 'trades', type: 'bigint', value: (row) => row.candle.trades },
    { name: 'vwap', type: 'float8', value: (row) => orNull(row.candle.vwap) },
    { name: 'has_point', type: 'bool', value: (row) => row.point !== undefined },
    { name: 'sma20', type: 'float8', value: (row) => orNull(row.point?.sma20) },
    { name: 'ema20', type: 'float8', value: (row) => orNull(row.point?.ema20) },
    { name: 'rsi14', type: 'float8', value: (row) => orNull(row.point?.rsi14) },
    { name: 'bb_upper', type: 'float8', value: (row) => orNull(row.point?.bbUpper) },
    { name: 'bb_middle', type: 'float8', value: (row) => orNull(row.point?.bbMiddle) },
    { name: 'bb_lower', type: 'float8', value: (row) => orNull(row.point?.bbLower) },
  ],
};

/** Indicator points without their candle in the same batch (the others are in candle rows). */
export const INDICATORS: TableSpec<IndicatorPoint> = {
  table: 'indicator_rows',
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

/**
 * Pairs each candle with the indicator point of the same symbol, interval and ts. The processor
 * makes a final candle's point right after it, so both lists usually pair up index by index; any
 * other order is matched by key. Points left without a candle go to `indicator_rows`.
 */
export function candleRows(
  candles: readonly Candle[],
  points: readonly IndicatorPoint[],
): { rows: CandleRow[]; orphans: IndicatorPoint[] } {
  const rows: CandleRow[] = new Array(candles.length);
  let inOrder = candles.length === points.length;
  for (let i = 0; inOrder && i < candles.length; i++) {
    const candle = candles[i]!;
    const point = points[i]!;
    if (point.ts !== candle.ts || point.symbol !== candle.symbol || point.interval !== candle.interval) {
      inOrder = false;
    } else {
      rows[i] = { candle, point };
    }
  }
  if (inOrder) return { rows, orphans: [] };
  const byKey = new Map<string, IndicatorPoint>();
  for (const point of points) {
    const key = `${point.symbol}\0${point.interval}\0${point.ts}`;
    if (!byKey.has(key)) byKey.set(key, point);
  }
  const paired = new Set<IndicatorPoint>();
  candles.forEach((candle, i) => {
    const key = `${candle.symbol}\0${candle.interval}\0${candle.ts}`;
    const point = byKey.get(key);
    if (point !== undefined) byKey.delete(key);
    if (point !== undefined) paired.add(point);
    rows[i] = { candle, point };
  });
  return { rows, orphans: points.filter((point) => !paired.has(point)) };
}

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

/** The COPY statement for a table, in COPY's text format or (with `binary`) its binary one. */
export function copySql<T>(spec: TableSpec<T>, binary = false): string {
  const columns = spec.columns.map((column) => column.name).join(', ');
  return `COPY ${spec.table} (${columns}) FROM STDIN${binary ? ' (FORMAT binary)' : ''}`;
}

/** The binary COPY signature, flags and header extension length (PostgreSQL manual, COPY, Binary Format). */
const BINARY_HEADER = Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)]);

/** A growing buffer that writes COPY's binary fields through a DataView (big-endian, unchecked). */
class CopyWriter {
  bytes: Buffer;
  view: DataView;
  at = 0;

  constructor(size: number) {
    this.bytes = Buffer.allocUnsafeSlow(size);
    this.view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
  }

  ensure(extra: number): void {
    if (this.at + extra <= this.bytes.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(this.bytes.length * 2, this.at + extra));
    this.bytes.copy(grown, 0, 0, this.at);
    this.bytes = grown;
    this.view = new DataView(grown.buffer, grown.byteOffset, grown.byteLength);
  }

  /** UTF-8 bytes with their length before them; short ASCII (symbols, sources, ids) byte by byte. */
  text(value: string): void {
    const length = value.length;
    this.ensure(4 + length * 3);
    const bytes = this.bytes;
    let at = this.at + 4;
    let ascii = length <= 64;
    for (let i = 0; ascii && i < length; i++) {
      const code = value.charCodeAt(i);
      if (code === 0 || code > 0x7f) ascii = false;
      else bytes[at++] = code;
    }
    if (!ascii) at = this.at + 4 + bytes.write(nulless(value) as string, this.at + 4, 'utf8');
    this.view.setInt32(this.at, at - this.at - 4);
    this.at = at;
  }
}

/**
 * Records in COPY's binary format: per row a field count, then per field its length (-1 for NULL)
 * and its bytes — int8 and float8 big-endian, bool one byte, text UTF-8 (NUL becomes U+FFFD, as
 * in the text format). The server parses no numbers, and no number is formatted here: both sides
 * spend far less than on text (`String(price)` was most of the text encoding's cost). A BIGINT
 * value that is not an integer is refused here, before anything is sent. Numbers go through a
 * DataView rather than Buffer's checked writers, and short ASCII text byte by byte rather than
 * through a native call per field: half the processor's CPU for COPY (docs/benchmarks.md).
 */
export function copyBinary<T>(spec: TableSpec<T>, records: readonly T[]): Buffer {
  const columns = spec.columns;
  const fieldCount = columns.length;
  const out = new CopyWriter(
    Math.max(1024, BINARY_HEADER.length + 2 + records.length * (2 + fieldCount * 13)),
  );
  BINARY_HEADER.copy(out.bytes, 0);
  out.at = BINARY_HEADER.length;
  for (const record of records) {
    out.ensure(2 + fieldCount * 12);
    out.view.setInt16(out.at, fieldCount);
    out.at += 2;
    for (let c = 0; c < fieldCount; c++) {
      const column = columns[c]!;
      const value = column.value(record);
      if (value === null) {
        out.ensure(4);
        out.view.setInt32(out.at, -1);
        out.at += 4;
        continue;
      }
      switch (column.type) {
        case 'bigint': {
          if (!Number.isSafeInteger(value)) {
            throw new Error(
              `bigint column ${column.name} of ${spec.table}: ${String(value)} is not an integer`,
            );
          }
          out.ensure(12);
          // As two 32-bit halves: no BigInt per value. Floor division keeps negatives right.
          const high = Math.floor((value as number) / 2 ** 32);
          out.view.setInt32(out.at, 8);
          out.view.setInt32(out.at + 4, high);
          out.view.setUint32(out.at + 8, (value as number) - high * 2 ** 32);
          out.at += 12;
          break;
        }
        case 'float8':
          out.ensure(12);
          out.view.setInt32(out.at, 8);
          out.view.setFloat64(out.at + 4, value as number);
          out.at += 12;
          break;
        case 'bool':
          out.ensure(5);
          out.view.setInt32(out.at, 1);
          out.bytes[out.at + 4] = value ? 1 : 0;
          out.at += 5;
          break;
        case 'text':
          out.text(value as string);
          break;
      }
    }
  }
  out.ensure(2);
  out.view.setInt16(out.at, -1);
  return out.bytes.subarray(0, out.at + 2);
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
