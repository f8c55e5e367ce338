/**
 * Builds DuckDB data chunks for the appenders straight from records, column by column, with one
 * native copy per numeric column and per validity mask. node-api's vectors (`setItem`) make a
 * BigInt per BIGINT value and two per validity bit once a column holds a null; at 2–3 rows per
 * tick that was most of the store's garbage and a sixth of the main thread (docs/engine.md).
 */

import {
  BIGINT,
  BOOLEAN,
  DOUBLE,
  DuckDBDataChunk,
  type DuckDBType,
  INTEGER,
  VARCHAR,
} from '@duckdb/node-api';
import duckdb from '@duckdb/node-bindings';

/** A column of a bulk-appended table: its kind and how to read it off a record (null/undefined = NULL). */
export type Column<T> =
  | { kind: 'bigint'; value: (record: T) => number | null | undefined }
  | { kind: 'integer'; value: (record: T) => number | null | undefined }
  | { kind: 'double'; value: (record: T) => number | null | undefined }
  | { kind: 'boolean'; value: (record: T) => boolean | null | undefined }
  | { kind: 'varchar'; value: (record: T) => string | null | undefined };

/** DuckDB's vector size: the most rows one data chunk can hold. */
export const CHUNK_ROWS = 2048;

const TYPES: Record<Column<unknown>['kind'], DuckDBType> = {
  bigint: BIGINT,
  integer: INTEGER,
  double: DOUBLE,
  boolean: BOOLEAN,
  varchar: VARCHAR,
};
const TWO_TO_32 = 2 ** 32;

/** Scratch buffers reused by every chunk (the copies into DuckDB's vectors are synchronous). */
const scratch = new ArrayBuffer(CHUNK_ROWS * 8);
const scratchDoubles = new Float64Array(scratch);
const scratchInt32s = new Int32Array(scratch);
const scratchBytes = new Uint8Array(scratch);
const validity = new ArrayBuffer(CHUNK_ROWS / 8);
const validityWords = new Uint32Array(validity);

/**
 * The records as data chunks of at most CHUNK_ROWS rows. Throws (before any transaction) on a value
 * a column cannot hold: a BIGINT that is not a safe integer, e.g. a fractional ts.
 */
export function buildChunks<T>(columns: readonly Column<T>[], records: readonly T[]): DuckDBDataChunk[] {
  const types = columns.map((column) => TYPES[column.kind]);
  const chunks: DuckDBDataChunk[] = [];
  for (let offset = 0; offset < records.length; offset += CHUNK_ROWS) {
    const rowCount = Math.min(CHUNK_ROWS, records.length - offset);
    const chunk = DuckDBDataChunk.create(types, rowCount);
    for (let columnIndex = 0; columnIndex < columns.length; columnIndex++) {
      const vector = duckdb.data_chunk_get_vector(chunk.chunk, columnIndex);
      fillVector(vector, columns[columnIndex]!, records, offset, rowCount);
    }
    chunks.push(chunk);
  }
  return chunks;
}

/** Writes one column of rows [offset, offset + rowCount) into `vector`, NULLs in its validity mask. */
function fillVector<T>(
  vector: duckdb.Vector,
  column: Column<T>,
  records: readonly T[],
  offset: number,
  rowCount: number,
): void {
  validityWords.fill(0xffffffff);
  let nulls = 0;
  const markNull = (row: number) => {
    validityWords[row >>> 5]! &= ~(1 << (row & 31));
    nulls++;
  };
  switch (column.kind) {
    case 'double': {
      for (let row = 0; row < rowCount; row++) {
        const value = column.value(records[offset + row]!);
        if (value === null || value === undefined) markNull(row);
        else scratchDoubles[row] = value;
      }
      duckdb.copy_data_to_vector(vector, 0, scratch, 0, rowCount * 8);
      break;
    }
    case 'bigint':
    case 'integer': {
      const wide = column.kind === 'bigint';
      for (let row = 0; row < rowCount; row++) {
        const value = column.value(records[offset + row]!);
        if (value === null || value === undefined) {
          markNull(row);
          continue;
        }
        if (!wide) {
          if ((value | 0) !== value) throw new RangeError(`${value} is not an integer an INTEGER can hold`);
          scratchInt32s[row] = value;
          continue;
        }
        if (!Number.isSafeInteger(value))
          throw new RangeError(`${value} is not an integer a BIGINT can hold`);
        // Two's complement halves, little-endian as DuckDB's int64 is on every platform it ships for.
        const high = Math.floor(value / TWO_TO_32);
        scratchInt32s[row * 2] = value - high * TWO_TO_32;
        scratchInt32s[row * 2 + 1] = high;
      }
      duckdb.copy_data_to_vector(vector, 0, scratch, 0, rowCount * (wide ? 8 : 4));
      break;
    }
    case 'boolean': {
      for (let row = 0; row < rowCount; row++) {
        const value = column.value(records[offset + row]!);
        if (value === null || value === undefined) markNull(row);
        else scratchBytes[row] = value ? 1 : 0;
      }
      duckdb.copy_data_to_vector(vector, 0, scratch, 0, rowCount);
      break;
    }
    case 'varchar': {
      for (let row = 0; row < rowCount; row++) {
        const value = column.value(records[offset + row]!);
        if (value === null || value === undefined) markNull(row);
        else duckdb.vector_assign_string_element(vector, row, value);
      }
      break;
    }
  }
  if (nulls > 0) {
    duckdb.vector_ensure_validity_writable(vector);
    duckdb.copy_data_to_vector_validity(vector, 0, validity, 0, Math.ceil(rowCount / 64) * 8);
  }
}
