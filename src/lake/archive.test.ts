/**
 * The archive role against a real PostgreSQL server: final symbol-days (and late rows, as extra
 * parts) leave PostgreSQL for Parquet with every value exact, once across a pass cut short, and
 * the lake-aware store reads the same rows whether they are in PostgreSQL, in the lake, or both.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { lakeAlert, lakeCandle, processorState, awkwardTick as tick } from '../../test/support/lake-rows.ts';
import {
  createTestSchema,
  findOrStartPostgres,
  type NoPostgres,
  type TestPostgres,
} from '../../test/support/postgres.ts';
import { makeBatch } from '../store/conformance.ts';
import { PostgresStore } from '../store/postgres/postgres-store.ts';
import type { Store } from '../store/store.ts';
import { archivedBeforeMs, PostgresArchive } from './archive.ts';
import { withLakeReads } from './lake-store.ts';
import { DAY_MS, listLakeFiles } from './layout.ts';

const DAY0 = 1_700_006_400_000; // 2023-11-15T00:00Z
const HOUR = 3_600_000;

const real: TestPostgres | NoPostgres = await findOrStartPostgres();

describe('archive: PostgreSQL to the lake', { skip: 'skip' in real ? real.skip : false }, () => {
  const server = real as TestPostgres;
  let dir: string;
  let schema: string;
  let drop: () => Promise<void>;
  let store: PostgresStore;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'streamlines-archive-'));
    ({ schema, drop } = await createTestSchema(server.url));
    store = new PostgresStore({ url: server.url, schema, retentionEveryMs: 0 });
    await store.open();
  });

  after(async () => {
    await store.close();
    await drop();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const archive = () =>
    new PostgresArchive({
      url: server.url,
      schema,
      lakePath: path.join(dir, 'lake'),
      latenessMs: 10_000,
      rowGroupRows: 4,
    });

  it('moves final days exactly, late rows as extra parts, once across a pass cut short', async () => {
    const a0 = [tick('AAA', DAY0 + HOUR), tick('AAA', DAY0 + HOUR), tick('AAA', DAY0 + 2 * HOUR)];
    const a1 = [tick('AAA', DAY0 + DAY_MS + HOUR)];
    const b0 = [tick('BBB', DAY0 + 3 * HOUR)];
    await store.write(
      makeBatch({
        ticks: [...a0, ...a1],
        candles: [lakeCandle('AAA', DAY0 + HOUR, { low: 0.1 + 0.2, vwap: null })],
        alerts: [
          lakeAlert('AAA', DAY0 + HOUR, a0[0]!.seq, {
            threshold: undefined,
            message: 'a "quoted",\nmessage',
          }),
        ],
        checkpoint: {
          name: 'processor:p0',
          offsets: { 0: 4 },
          state: processorState({ AAA: DAY0 + DAY_MS + HOUR }),
        },
      }),
    );
    await store.write(
      makeBatch({
        ticks: b0,
        checkpoint: {
          name: 'processor:p1',
          offsets: { 1: 1 },
          state: processorState({ BBB: DAY0 + 3 * HOUR }),
        },
      }),
    );
    const first = archive();
    assert.equal(await first.open({ wait: false }), true);
    const second = archive();
    assert.equal(await second.open({ wait: false }), false, 'one archive at a time');
    await second.close();
    const pass = await first.pass();
    assert.deepEqual(pass.rows, { ticks: 3, candles: 1, indicators: 0, alerts: 1 });
    await first.close();

    // Every value as PostgreSQL holds it: NULL vs '', quotes, newlines, doubles to the last bit.
    const expected = await store.ticks('AAA', { to: DAY0 + DAY_MS - 1, limit: 100 });
    const duckdb = await DuckDBInstance.create(':memory:');
    const reader = await duckdb.connect();
    const lake = (kind: string) => `read_parquet('${path.join(dir, 'lake', kind)}/*/*.parquet')`;
    try {
      const rows = (
        await reader.runAndReadAll(
          `SELECT ts, seq, price, size, id, ma_short, ma_long, late FROM ${lake('ticks')} ORDER BY ts, seq`,
        )
      ).getRows();
      assert.deepEqual(
        rows.map(([ts, _seq, price, size, id, maShort, maLong, late]) => ({
          ts: Number(ts),
          price,
          size,
          id,
          maShort,
          maLong,
          late,
        })),
        expected,
      );
      const alerts = (
        await reader.runAndReadAll(`SELECT message, threshold FROM ${lake('alerts')}`)
      ).getRows();
      assert.deepEqual(alerts, [['a "quoted",\nmessage', null]]);
    } finally {
      reader.closeSync();
      duckdb.closeSync();
    }

    // A late tick for the written day, and a pass that dies after its renames.
    const late = tick('AAA', DAY0 + 5 * HOUR, { late: true });
    await store.write(
      makeBatch({
        ticks: [late],
        checkpoint: {
          name: 'processor:p0',
          offsets: { 0: 5 },
          state: processorState({ AAA: DAY0 + DAY_MS + HOUR }, { late: 1 }),
        },
      }),
    );
    const crashing = new PostgresArchive({
      url: server.url,
      schema,
      lakePath: path.join(dir, 'lake'),
      latenessMs: 10_000,
      rowGroupRows: 4,
      afterRename: () => {
        throw new Error('crash after rename');
      },
    });
    await crashing.open({ wait: false });
    await assert.rejects(crashing.pass(), /crash after rename/);
    await crashing.close();
    assert.equal((await listLakeFiles(path.join(dir, 'lake'), 'ticks')).length, 2, 'its part is on disk');
    const again = archive();
    await again.open({ wait: false });
    const latePass = await again.pass();
    assert.equal(latePass.rows.ticks, 1, 'only the late tick');
    assert.equal((await again.pass()).files, 0, 'nothing twice');
    await again.close();
    const parts = await listLakeFiles(path.join(dir, 'lake'), 'ticks');
    assert.deepEqual(
      parts.map((part) => part.part),
      [0, 1],
    );
  });

  it('reads through the lake give what PostgreSQL gave, once retention deleted the archived rows', async () => {
    const reads = async (target: Store) => ({
      all: await target.ticks('AAA', { limit: 100 }),
      from: await target.ticks('AAA', { from: DAY0 + HOUR, limit: 3 }),
      last: await target.ticks('AAA', { to: DAY0 + 5 * HOUR, limit: 2 }),
      candles: await target.candles('AAA', '1h', { from: 0, limit: 10 }),
      alerts: await target.alerts({ limit: 10 }),
      bbb: await target.ticks('BBB', { from: 0, limit: 10 }),
    });
    const lakeReads = withLakeReads(
      new PostgresStore({ url: server.url, schema, retentionEveryMs: 0 }),
      path.join(dir, 'lake'),
    );
    await lakeReads.open();
    try {
      const expected = await reads(store);
      assert.equal(expected.all.length, 5);
      assert.equal(
        await archivedBeforeMs(store, ['processor:p0', 'processor:p1']),
        DAY0,
        'BBB day 0 is open: retention holds back there',
      );
      await store.write(
        makeBatch({
          checkpoint: {
            name: 'processor:p1',
            offsets: { 1: 2 },
            state: processorState({ BBB: DAY0 + 3 * HOUR }, { ended: true }),
          },
        }),
      );
      const pass = archive();
      await pass.open({ wait: false });
      assert.equal((await pass.pass()).rows.ticks, 1, 'BBB day 0');
      await pass.close();
      assert.equal(await archivedBeforeMs(store, ['processor:p0', 'processor:p1']), DAY0 + DAY_MS);
      assert.deepEqual(await reads(lakeReads), expected, 'rows in both: each once');
      const deleted = await store.deleteExpired({
        ticksBeforeMs: DAY0 + DAY_MS,
        candlesBeforeMs: DAY0 + DAY_MS,
      });
      assert.ok(
        deleted.ticks === 5 && deleted.candles === 1 && deleted.alerts === 1,
        JSON.stringify(deleted),
      );
      assert.deepEqual(await reads(lakeReads), expected, 'archived rows from the lake');
    } finally {
      await lakeReads.close();
    }
  });
});
