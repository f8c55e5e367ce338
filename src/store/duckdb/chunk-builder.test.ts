import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { buildChunks, CHUNK_ROWS, type Column } from './chunk-builder.ts';

interface Row {
  big: number | null;
  int: number | null;
  real: number | undefined;
  flag: boolean | null;
  text: string | null;
}

const COLUMNS: readonly Column<Row>[] = [
  { kind: 'bigint', value: (row) => row.big },
  { kind: 'integer', value: (row) => row.int },
  { kind: 'double', value: (row) => row.real },
  { kind: 'boolean', value: (row) => row.flag },
  { kind: 'varchar', value: (row) => row.text },
];

/** Rows covering every edge each kind has: NULLs, signs, int64 halves, long strings, chunk borders. */
function rows(count: number): Row[] {
  const edges = [
    0,
    1,
    -1,
    2 ** 32,
    -(2 ** 32) - 7,
    2 ** 31,
    Number.MAX_SAFE_INTEGER,
    Number.MIN_SAFE_INTEGER,
  ];
  const intEdges = [0, 1, -1, 2 ** 31 - 1, -(2 ** 31), 65_535, 65_536];
  return Array.from({ length: count }, (_, i) => ({
    big: i % 7 === 3 ? null : i % 3 === 0 ? edges[(i / 3) % edges.length]! : (i % 2 ? 1 : -1) * i * 100_003,
    int: i % 5 === 2 ? null : i % 4 === 0 ? intEdges[(i / 4) % intEdges.length]! : i,
    real: i % 11 === 4 ? undefined : i * 0.1 - 50,
    flag: i % 13 === 5 ? null : i % 2 === 0,
    text: i % 17 === 6 ? null : `row-${i}-${'x'.repeat(i % 20)}`,
  }));
}

describe('buildChunks', () => {
  it('appends every kind, NULLs included, across several chunks, exactly as given', async () => {
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    try {
      await connection.run(
        'CREATE TABLE t (big BIGINT, int INTEGER, real DOUBLE, flag BOOLEAN, text VARCHAR)',
      );
      const input = rows(CHUNK_ROWS * 2 + 37);
      const chunks = buildChunks(COLUMNS, input);
      assert.equal(chunks.length, 3);
      const appender = await connection.createAppender('t');
      for (const chunk of chunks) appender.appendDataChunk(chunk);
      appender.flushSync();
      appender.closeSync();
      const read = (await connection.runAndReadAll('SELECT big, int, real, flag, text FROM t')).getRows();
      assert.equal(read.length, input.length);
      read.forEach((row, i) => {
        const expected = input[i]!;
        assert.deepEqual(
          [row[0] === null ? null : Number(row[0]), row[1], row[2], row[3], row[4]],
          [expected.big, expected.int, expected.real ?? null, expected.flag, expected.text],
          `row ${i}`,
        );
      });
    } finally {
      connection.closeSync();
      instance.closeSync();
    }
  });

  it('refuses a BIGINT that is not a safe integer before anything is appended', () => {
    const bad: Row = { big: 1.5, int: 1, real: 1, flag: true, text: 'a' };
    assert.throws(() => buildChunks(COLUMNS, [bad]), /1\.5 is not an integer/);
    assert.throws(() => buildChunks(COLUMNS, [{ ...bad, big: 2 ** 60 }]), /not an integer/);
  });

  it('refuses an INTEGER out of int32 range or fractional', () => {
    const good: Row = { big: 1, int: 1, real: 1, flag: true, text: 'a' };
    assert.throws(() => buildChunks(COLUMNS, [{ ...good, int: 2 ** 31 }]), /not an integer an INTEGER/);
    assert.throws(() => buildChunks(COLUMNS, [{ ...good, int: 0.5 }]), /not an integer an INTEGER/);
  });
});
