/**
 * The lake writer on a real DuckDB store: which symbol-days it writes and when, late rows as extra
 * parts, exactly once across a pass that was cut short, and reads that do not change when retention
 * deletes what the lake holds.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import {
  lakeAlert as alert,
  lakeCandle as candle,
  processorState,
  lakeTick as tick,
} from '../../test/support/lake-rows.ts';
import { makeBatch } from '../store/conformance.ts';
import { DuckDbStore } from '../store/duckdb/duckdb-store.ts';
import type { Store } from '../store/store.ts';
import { EmbeddedLake } from './lake.ts';
import { lakeConfigSchema } from './lake-config.ts';
import { DAY_MS, listLakeFiles } from './layout.ts';

const DAY0 = 1_700_006_400_000; // 2023-11-15T00:00Z
const HOUR = 3_600_000;
const LATENESS = 10_000;

describe('lake writer', () => {
  let dir: string;
  let lake: EmbeddedLake;
  let store: Store;
  let hot: DuckDbStore;

  const openLake = async (afterRename?: () => void) => {
    hot = new DuckDbStore({ path: path.join(dir, 'store.duckdb') });
    lake = new EmbeddedLake(hot, {
      config: lakeConfigSchema.parse({ rowGroupRows: 2 }),
      lakePath: path.join(dir, 'lake'),
      latenessMs: LATENESS,
      afterRename,
    });
    store = lake.store;
    await store.open();
  };

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'streamlines-lake-'));
    await openLake();
  });

  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('writes a symbol-day once its watermark passes the day, a quiet symbol holding nobody back', async () => {
    const a = [tick('AAA', DAY0 + HOUR), tick('AAA', DAY0 + 2 * HOUR), tick('AAA', DAY0 + DAY_MS + HOUR)];
    const q = [tick('QUIET', DAY0 + 3 * HOUR)];
    await store.write(
      makeBatch({
        ticks: [...a, ...q],
        candles: [
          candle('AAA', DAY0 + HOUR),
          candle('AAA', DAY0 + 2 * HOUR),
          candle('QUIET', DAY0 + 3 * HOUR),
        ],
        alerts: [alert('AAA', DAY0 + 2 * HOUR, a[1]!.seq)],
        checkpoint: {
          name: 'processor',
          offsets: { 0: 4 },
          state: processorState({ AAA: DAY0 + DAY_MS + HOUR, QUIET: DAY0 + 3 * HOUR }),
        },
      }),
    );
    const first = await lake.writer().pass();
    assert.equal(first.symbolDays, 1, 'AAA day 0 only: QUIET has not passed its day, day 1 is open');
    assert.deepEqual(first.rows, { ticks: 2, candles: 2, indicators: 0, alerts: 1 });
    assert.equal(lake.writer().manifest().writtenUntil.AAA, DAY0 + DAY_MS);
    assert.equal(lake.writer().manifest().writtenUntil.QUIET, DAY0, 'QUIET has nothing before its open day');
    assert.equal(lake.holdBackBeforeMs(), DAY0, 'QUIET holds retention back at its open day');
    const files = await listLakeFiles(path.join(dir, 'lake'), 'ticks');
    assert.deepEqual(
      files.map((file) => path.relative(dir, file.path)),
      ['lake/ticks/date=2023-11-15/part-00000000.parquet'],
    );
    assert.equal((await lake.writer().pass()).files, 0, 'nothing new: nothing written');

    // The input ends: every symbol's watermark jumps past its last day.
    await store.write(
      makeBatch({
        checkpoint: {
          name: 'processor',
          offsets: { 0: 4 },
          state: processorState({ AAA: DAY0 + DAY_MS + HOUR, QUIET: DAY0 + 3 * HOUR }, { ended: true }),
        },
      }),
    );
    const second = await lake.writer().pass();
    assert.equal(second.symbolDays, 2);
    assert.deepEqual(second.rows, { ticks: 2, candles: 1, indicators: 0, alerts: 0 });
    assert.equal(lake.holdBackBeforeMs(), DAY0 + DAY_MS);
  });

  it('removes the parts of a pass that was never recorded, and does that pass again', async () => {
    const ticks = [tick('AAA', DAY0 + HOUR), tick('AAA', DAY0 + DAY_MS + HOUR)];
    const state = processorState({ AAA: DAY0 + DAY_MS + HOUR }, { ended: true });
    await store.write(makeBatch({ ticks, checkpoint: { name: 'processor', offsets: { 0: 2 }, state } }));
    await lake.writer().pass();
    const recorded = await listLakeFiles(path.join(dir, 'lake'), 'ticks');
    // A crash after the renames of pass 1 and before its record: its part is on disk, unrecorded.
    const stray = path.join(dir, 'lake/ticks/date=2023-11-16/part-00000001.parquet');
    await copyFile(recorded[0]!.path, stray);
    await mkdir(path.join(dir, 'lake/_tmp/part-00000001'), { recursive: true });
    await store.close();
    await openLake();
    assert.deepEqual(await listLakeFiles(path.join(dir, 'lake'), 'ticks'), recorded);
    assert.deepEqual(await readdir(path.join(dir, 'lake')).then((names) => names.sort()), ['ticks']);
    assert.equal((await lake.writer().pass()).files, 0);
  });

  it('a pass that dies between its renames and its record is undone at the next start, then redone once', async () => {
    await store.close();
    await openLake(() => {
      throw new Error('crash after rename');
    });
    const ticks = [tick('AAA', DAY0 + HOUR), tick('AAA', DAY0 + HOUR), tick('AAA', DAY0 + DAY_MS + HOUR)];
    const state = processorState({ AAA: DAY0 + DAY_MS + HOUR }, { ended: true });
    await store.write(makeBatch({ ticks, checkpoint: { name: 'processor', offsets: { 0: 3 }, state } }));
    await assert.rejects(lake.writer().pass(), /crash after rename/);
    assert.equal((await listLakeFiles(path.join(dir, 'lake'), 'ticks')).length, 2, 'both parts renamed');
    assert.equal(lake.writer().manifest().nextPart, 0, 'and not recorded');
    await store.close();
    await openLake();
    assert.deepEqual(await listLakeFiles(path.join(dir, 'lake'), 'ticks'), [], 'removed at open');
    const pass = await lake.writer().pass();
    assert.equal(pass.rows.ticks, 3);
    assert.equal((await lake.writer().pass()).files, 0, 'and written once');
    assert.equal(lake.writer().manifest().rows.ticks, 3);
  });

  it('puts late rows of a written day in an extra part, and reads stay whole when the hot rows go', async () => {
    const day0 = [tick('AAA', DAY0 + HOUR), tick('AAA', DAY0 + HOUR), tick('AAA', DAY0 + 5 * HOUR)];
    const day1 = [tick('AAA', DAY0 + DAY_MS + HOUR)];
    const state = processorState({ AAA: DAY0 + DAY_MS + HOUR });
    await store.write(
      makeBatch({ ticks: [...day0, ...day1], checkpoint: { name: 'processor', offsets: { 0: 4 }, state } }),
    );
    await lake.writer().pass();
    const late = tick('AAA', DAY0 + HOUR, { late: true });
    await store.write(
      makeBatch({ ticks: [late], checkpoint: { name: 'processor', offsets: { 0: 5 }, state } }),
    );
    const expected = await store.ticks('AAA', { limit: 100 });
    assert.equal(expected.length, 5);

    const pass = await lake.writer().pass();
    assert.deepEqual(pass.rows.ticks, 1, 'only the late tick');
    const parts = await readdir(path.join(dir, 'lake/ticks/date=2023-11-15'));
    assert.deepEqual(parts, ['part-00000000.parquet', 'part-00000001.parquet']);

    // Retention deletes the hot rows the lake holds.
    const deleted = await hot.deleteExpired({ ticksBeforeMs: DAY0 + DAY_MS });
    assert.equal(deleted.ticks, 4);
    assert.deepEqual(await store.ticks('AAA', { limit: 100 }), expected);
    assert.deepEqual(await store.ticks('AAA', { from: DAY0 + HOUR, limit: 3 }), expected.slice(0, 3));
    assert.deepEqual(await store.ticks('AAA', { to: DAY0 + 5 * HOUR, limit: 2 }), expected.slice(2, 4));
    assert.deepEqual(await store.ticks('AAA', { from: DAY0 + DAY_MS, limit: 10 }), expected.slice(4));
  });
});
