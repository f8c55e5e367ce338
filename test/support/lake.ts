/** The lake as end-to-end tests see it: row counts of its Parquet files, and a kill in the middle of a write. */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { listLakeFiles } from '../../src/lake/layout.ts';
import { waitUntil } from './wait.ts';

/** Row counts of the lake's part files on disk, read with DuckDB in this process. */
export async function lakeCounts(
  lakePath: string,
): Promise<{ ticks: number; distinctSeq: number; candles: number; alerts: number }> {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const count = async (kind: 'ticks' | 'candles' | 'alerts', expression = 'count(*)') => {
      const files = await listLakeFiles(lakePath, kind);
      if (files.length === 0) return 0;
      const list = files.map((file) => `'${file.path}'`).join(', ');
      const rows = (
        await connection.runAndReadAll(`SELECT ${expression} FROM read_parquet([${list}])`)
      ).getRows();
      return Number(rows[0]![0]);
    };
    return {
      ticks: await count('ticks'),
      distinctSeq: await count('ticks', 'count(DISTINCT seq)'),
      candles: await count('candles'),
      alerts: await count('alerts'),
    };
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/**
 * SIGKILLs `cli`'s process as soon as a lake pass has begun writing Parquet (its folder under `lake/_tmp`
 * exists): the middle of a lake write, with no fault hook in the product.
 */
export async function killDuringLakeWrite(cli: { child: ChildProcess }, lakePath: string): Promise<void> {
  const tmp = join(lakePath, '_tmp');
  await waitUntil(
    async () => (await readdir(tmp).catch(() => [])).length > 0,
    'a lake pass to begin writing',
    120_000,
    2,
  );
  cli.child.kill('SIGKILL');
  await once(cli.child, 'exit').catch(() => undefined);
}
