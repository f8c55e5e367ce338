/**
 * The lake end to end on the real CLI (docs/design.md, Retention and history): a replay over more than three days of event time
 * answers over REST exactly the same whether or not the hot store still holds the old days, also
 * after kill -9 in the middle of a lake write; pyarrow reads the Parquet files and finds the REST
 * rows; `streamlines sql` counts what `accepted` says, with and without a server on the data dir.
 *
 * Retention itself is another component: here the test deletes from the hot store what retention
 * with `{ticks: 1d, candles: 1d}` would (rows a day behind the newest tick that the lake holds),
 * with the server stopped, and starts it again on the same data dir.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { DuckDBInstance } from '@duckdb/node-api';
import { readCheckpoints } from '../../src/store/duckdb/checkpoint-states.ts';
import {
  dumpApi,
  getJson,
  replayArgs,
  runCliOnce,
  startCli,
  stopCli,
  waitDrained,
  waitForStats,
} from '../support/cli.ts';
import { writeReplay } from '../support/generate-ticks.ts';
import { killDuringLakeWrite, lakeCounts } from '../support/lake.ts';
import { waitUntil } from '../support/wait.ts';

const DAY_MS = 86_400_000;
const ROOT = join(import.meta.dirname, '../..');
const PYTHON =
  process.env.STREAMLINES_PYTHON ??
  (existsSync(join(ROOT, '.venv-pyarrow/bin/python')) ? join(ROOT, '.venv-pyarrow/bin/python') : 'python3');

interface Stats {
  accepted: number;
  candlesClosed: number;
  alertsFired: number;
}

/** Waits until every final row is in the lake (the replay ended, so every day is final). */
async function waitLakeComplete(dataDir: string, stats: Stats): Promise<void> {
  let counts: Awaited<ReturnType<typeof lakeCounts>> | undefined;
  await waitUntil(
    async () => {
      counts = await lakeCounts(join(dataDir, 'lake'));
      return (
        counts.ticks === stats.accepted &&
        counts.candles === stats.candlesClosed &&
        counts.alerts === stats.alertsFired
      );
    },
    () => `the lake to be complete: ${JSON.stringify(counts)} vs ${JSON.stringify(stats)}`,
    60_000,
    200,
  );
}

/**
 * What retention `{ticks: 1d, candles: 1d}` deletes: rows more than a day behind the newest tick,
 * and only below where the lake holds every symbol-day. Returns the rows deleted per table.
 */
async function applyRetention(dataDir: string): Promise<Record<string, number>> {
  const instance = await DuckDBInstance.create(join(dataDir, 'streamlines.duckdb'));
  const connection = await instance.connect();
  try {
    const [lake] = await readCheckpoints(connection, { name: 'lake' });
    const manifest = lake!.state as { writtenUntil: Record<string, number> };
    const holdBack = Math.min(...Object.values(manifest.writtenUntil));
    const newest = Number((await connection.runAndReadAll('SELECT max(ts) FROM ticks')).getRows()[0]![0]);
    const cutoff = Math.min(newest - DAY_MS, holdBack);
    const deleted: Record<string, number> = {};
    // From the base tables, as the store's retention does: ticks, candles and indicators are views.
    const base = {
      ticks: 'tick_rows',
      candles: 'candle_rows',
      indicators: 'indicator_rows',
      alerts: 'alerts',
    };
    for (const [table, rows] of Object.entries(base)) {
      deleted[table] = (await connection.run(`DELETE FROM ${rows} WHERE ts < ${cutoff}`)).rowsChanged;
    }
    await connection.run('CHECKPOINT');
    return deleted;
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

async function pyarrowDump(
  dataDir: string,
): Promise<Record<string, { ticks: unknown[]; candles: unknown[] }>> {
  const { stdout } = await promisify(execFile)(
    PYTHON,
    [join(import.meta.dirname, 'lake-parquet.py'), join(dataDir, 'lake')],
    {
      maxBuffer: 1 << 30,
    },
  );
  return JSON.parse(stdout);
}

/** CSV exports and a GraphQL query: the other readers of history, beside REST. */
async function otherReads(baseUrl: string): Promise<Record<string, unknown>> {
  const text = async (path: string) => (await fetch(`${baseUrl}${path}`)).text();
  const graphql = await fetch(`${baseUrl}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      query:
        '{ candles(symbol: "ETHUSDT", interval: "5m", from: 0, limit: 10000) { ts open close volume } ' +
        'ticks(symbol: "SOLUSDT", from: 0, limit: 10000) { ts price id late } ' +
        'alerts(from: 0, limit: 10000) { ts symbol kind price } }',
    }),
  });
  return {
    ticksCsv: await text('/api/v1/export/ticks/BTCUSDT'),
    candlesCsv: await text('/api/v1/export/candles/QUIETCOIN?interval=1h'),
    graphql: await graphql.json(),
  };
}

async function sqlCount(dataDir: string): Promise<unknown> {
  const result = await runCliOnce([
    'sql',
    'SELECT count(*) AS n FROM ticks',
    '--data-dir',
    dataDir,
    '--format',
    'json',
  ]);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout);
}

/** The pipeline config of every run here: two price rules, and the lake written every 200 ms. */
const CONFIG = {
  lateness: '10s',
  alerts: {
    rules: [
      { symbol: 'ETHUSDT', above: 200 },
      { symbol: 'BTCUSDT', below: 90 },
    ],
  },
  lake: { intervalMs: 200 },
};

describe('lake end to end', () => {
  let dir: string;
  let args: (dataDir: string) => string[];
  let expected: Record<string, unknown>;
  let expectedStats: Stats;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'streamlines-lake-e2e-'));
    const replay = join(dir, 'ticks.ndjson');
    // About 1.15 s of event time per line: 240 000 lines span a little over three days.
    await writeReplay(replay, { count: 240_000, seed: 5 });
    const config = join(dir, 'config.json');
    await writeFile(config, JSON.stringify(CONFIG));
    args = (dataDir) => replayArgs(replay, dataDir, config);
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('answers the same over REST once retention has deleted what the lake holds; pyarrow and sql agree', {
    timeout: 600_000,
  }, async () => {
    const dataDir = join(dir, 'clean');
    const cli = await startCli(args(dataDir));
    const stats = (await waitDrained(cli.baseUrl)) as unknown as Stats;
    expectedStats = stats;
    expected = await dumpApi(cli.baseUrl);
    const expectedOther = await otherReads(cli.baseUrl);
    assert.equal((expectedOther.graphql as { errors?: unknown }).errors, undefined);
    const symbols = Object.keys(expected).filter((key) => /^[A-Z]/.test(key));
    const ticks = (expected[symbols[0]!] as { ticks: { ts: number }[] }).ticks;
    assert.ok(
      ticks[ticks.length - 1]!.ts - ticks[0]!.ts > 3 * DAY_MS,
      'the replay spans more than three days',
    );
    await waitLakeComplete(dataDir, stats);
    // With the server running, sql goes through it (DuckDB lets no second process open the file).
    assert.deepEqual(await sqlCount(dataDir), [{ n: stats.accepted }]);
    await stopCli(cli);
    assert.deepEqual(await sqlCount(dataDir), [{ n: stats.accepted }], 'and without a server, read-only');

    const parquet = await pyarrowDump(dataDir);
    assert.deepEqual(Object.keys(parquet).sort(), symbols.sort());
    for (const symbol of symbols) {
      const rest = expected[symbol] as { ticks: unknown[]; 'candles:1m': { candles: unknown[] } };
      assert.deepEqual(parquet[symbol]!.ticks, rest.ticks, `${symbol}: Parquet ticks equal REST`);
      assert.deepEqual(
        parquet[symbol]!.candles,
        rest['candles:1m'].candles,
        `${symbol}: Parquet 1m candles equal REST`,
      );
    }

    const deleted = await applyRetention(dataDir);
    assert.ok(
      deleted.ticks! > stats.accepted / 2,
      `retention deleted most ticks: ${JSON.stringify(deleted)}`,
    );
    assert.ok(
      deleted.candles! > 0 && deleted.indicators! > 0 && deleted.alerts! > 0,
      JSON.stringify(deleted),
    );
    const again = await startCli(args(dataDir));
    await waitDrained(again.baseUrl);
    const actual = await dumpApi(again.baseUrl);
    const actualOther = await otherReads(again.baseUrl);
    assert.deepEqual(await sqlCount(dataDir), [{ n: stats.accepted }]);
    await stopCli(again);
    assert.deepEqual(actual, expected);
    assert.deepEqual(actualOther, expectedOther, 'CSV export and GraphQL answer the same too');
  });

  it('answers the same with retention {ticks: 1d, candles: 1d} running in the server', {
    timeout: 600_000,
  }, async () => {
    assert.ok(expected, 'needs the clean run of the first test');
    const config = join(dir, 'retention.json');
    await writeFile(config, JSON.stringify({ ...CONFIG, retention: { ticks: '1d', candles: '1d' } }));
    const dataDir = join(dir, 'retention');
    const cli = await startCli(args(dataDir).map((arg) => (arg.endsWith('config.json') ? config : arg)));
    try {
      const stats = (await waitDrained(cli.baseUrl)) as unknown as Stats;
      await waitLakeComplete(dataDir, stats);
      // Retention deletes once the lake holds the days: wait until it has deleted most ticks.
      await waitForStats(
        cli.baseUrl,
        (body) =>
          ((body as { retention?: { deletedRows?: { ticks?: number } } }).retention?.deletedRows?.ticks ??
            0) >
          stats.accepted / 2,
        { timeoutMs: 120_000, intervalMs: 500 },
      );
      assert.deepEqual(await dumpApi(cli.baseUrl), expected);
    } finally {
      await stopCli(cli);
    }
  });

  it('writes every row once across kill -9 in the middle of lake writes', { timeout: 600_000 }, async () => {
    assert.ok(expected, 'needs the clean run of the previous test');
    const dataDir = join(dir, 'crashed');
    // First a kill -9 while a pass writes: timed by watching for the pass's temp folder.
    const cli = await startCli(args(dataDir));
    await killDuringLakeWrite(cli, join(dataDir, 'lake'));

    // Then kills at random moments of the replay and its lake passes.
    for (let attempt = 0; attempt < 3; attempt++) {
      const cli = await startCli(args(dataDir));
      await sleep(300 + Math.floor(Math.random() * 2_000));
      const { body } = await getJson<{ drained: boolean }>(cli.baseUrl, '/api/v1/stats').catch(() => ({
        body: { drained: false },
      }));
      await stopCli(cli, 'SIGKILL');
      if (body.drained) break;
    }
    const final = await startCli(args(dataDir));
    const stats = (await waitDrained(final.baseUrl)) as unknown as Stats;
    assert.equal(stats.accepted, expectedStats.accepted);
    await waitLakeComplete(dataDir, stats);
    await stopCli(final);
    const counts = await lakeCounts(join(dataDir, 'lake'));
    assert.equal(counts.distinctSeq, counts.ticks, 'no tick is in the lake twice');

    await applyRetention(dataDir);
    const again = await startCli(args(dataDir));
    await waitDrained(again.baseUrl);
    const actual = await dumpApi(again.baseUrl);
    await stopCli(again);
    assert.deepEqual(actual, expected);
  });
});
