/**
 * The lake's numbers (docs/benchmarks.md, "Lake and warehouse"): how fast a pass moves final days
 * from DuckDB to Parquet (rows/s), how many bytes a tick takes in Parquet, and how long the
 * warehouse takes for daily OHLCV per symbol over all ticks (views over lake and hot store).
 *
 *   npx node bench/lake.ts [TICKS] [--json]     (default 20 000 000 ticks, 20 symbols, 30 days)
 *
 * The ticks are made inside DuckDB (not replayed: this measures the lake, not the pipeline), with
 * prices of a random walk rounded to 4 decimals, ids, sides and moving averages as real rows carry.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { EmbeddedLake } from '../src/lake/lake.ts';
import { lakeConfigSchema } from '../src/lake/lake-config.ts';
import { listLakeFiles } from '../src/lake/layout.ts';
import { createWarehouseViews, runQuery } from '../src/lake/warehouse.ts';
import { DuckDbStore } from '../src/store/duckdb/duckdb-store.ts';

const ticks = Number(process.argv.find((arg) => /^\d+$/.test(arg)) ?? 20_000_000);
const json = process.argv.includes('--json');
const SYMBOLS = 20;
const DAYS = 30;
const START = Date.UTC(2026, 0, 1);
const SPAN_MS = DAYS * 86_400_000;

/** Daily OHLCV from the raw ticks, by the views' `date` column (the lake's Hive folder: free per file). */
const DAILY_OHLCV = `
  SELECT symbol, date,
         arg_min(price, ts) AS open, max(price) AS high, min(price) AS low, arg_max(price, ts) AS close,
         sum(size) AS volume, count(*) AS trades
  FROM ticks GROUP BY ALL ORDER BY symbol, date`;

/** The same with the day computed from ts on every row, as before the views had `date`. */
const DAILY_OHLCV_BY_TS = `
  SELECT symbol, ts - ts % 86400000 AS day,
         arg_min(price, ts) AS open, max(price) AS high, min(price) AS low, arg_max(price, ts) AS close,
         sum(size) AS volume, count(*) AS trades
  FROM ticks GROUP BY ALL ORDER BY symbol, day`;

/** The same from the hourly candles the processor keeps (far fewer rows; what a dashboard would ask). */
const DAILY_OHLCV_FROM_CANDLES = `
  SELECT symbol, ts - ts % 86400000 AS day,
         arg_min(open, ts) AS open, max(high) AS high, min(low) AS low, arg_max(close, ts) AS close,
         sum(volume) AS volume, sum(trades) AS trades
  FROM candles WHERE "interval" = '1h' GROUP BY ALL ORDER BY symbol, day`;

const dir = await mkdtemp(path.join(os.tmpdir(), 'streamlines-bench-lake-'));
const log = (text: string) => process.stderr.write(`${text}\n`);
try {
  const file = path.join(dir, 'store.duckdb');
  const hot = new DuckDbStore({ path: file });
  const lake = new EmbeddedLake(hot, {
    config: lakeConfigSchema.parse({}),
    lakePath: path.join(dir, 'lake'),
    latenessMs: 10_000,
  });
  await lake.store.open();
  const connection = await hot.connect();
  log(`making ${ticks.toLocaleString()} ticks over ${SYMBOLS} symbols and ${DAYS} days...`);
  // Straight into the store's base tables, with the dictionary ids they use (src/store/duckdb/migrations.ts,
  // version 4); the store assigns no ids itself here, as the only batch it writes is a checkpoint.
  await connection.run(`
    INSERT INTO text_ids VALUES (1, 'bench'), (2, 'buy'), (3, 'sell'), (4, '1h');
    INSERT INTO text_ids SELECT 10 + i, 'SYM' || i FROM range(${SYMBOLS}) t(i);
    INSERT INTO tick_rows
    SELECT i AS seq, 1 AS source_id, 10 + (i % ${SYMBOLS}) AS symbol_id,
           ${START} + (i * ${SPAN_MS} // ${ticks}) AS ts,
           round(100 * exp(0.02 * sin(i / 50000.0) + 0.001 * random()), 4) AS price,
           round(random() * 5, 5) AS size, CAST(i AS VARCHAR) AS id,
           CASE WHEN random() < 0.5 THEN 2 ELSE 3 END AS side_id,
           ${START} + (i * ${SPAN_MS} // ${ticks}) + 40 AS received_at,
           100 + random() AS ma_short, 100 + random() AS ma_long, false AS late
    FROM range(${ticks}) t(i)`);
  // The hourly candles those ticks make (as the processor would write them), so they reach the lake too.
  await connection.run(`
    INSERT INTO candle_rows
    SELECT symbol_id, 4, ts - ts % 3600000 AS bucket, arg_min(price, ts), max(price), min(price), arg_max(price, ts),
           sum(size), count(*), sum(price * size) / nullif(sum(size), 0)
    FROM tick_rows GROUP BY symbol_id, bucket`);
  const state = {
    version: 1,
    ended: true,
    clockFloorMs: null,
    symbols: Array.from({ length: SYMBOLS }, (_, i) => ({ symbol: `SYM${i}`, maxTs: START + SPAN_MS - 1 })),
  };
  await lake.store.write({
    ticks: [],
    candles: [],
    indicators: [],
    alerts: [],
    deadLetters: [],
    checkpoint: { name: 'processor', offsets: { 0: ticks }, state },
  });

  log('one lake pass over every day...');
  const writeStart = performance.now();
  const pass = await lake.writer().pass();
  const writeSeconds = (performance.now() - writeStart) / 1000;
  const files = await listLakeFiles(path.join(dir, 'lake'), 'ticks');
  let bytes = 0;
  for (const part of files) bytes += (await stat(part.path)).size;

  // The warehouse as `streamlines sql` opens it: the views over lake and hot store. Then again with
  // the hot rows gone, as retention leaves them.
  // CPU time is the process's, DuckDB's threads included: on a shared machine it says what the
  // query costs when wall time says mostly how busy the machine is.
  const timeQuery = async (label: string, sql: string) => {
    const query = await hot.connect();
    await createWarehouseViews(query, { lakePath: path.join(dir, 'lake'), hot: true });
    const times: number[] = [];
    const cpu: number[] = [];
    let rows = 0;
    for (let run = 0; run < 3; run++) {
      const start = performance.now();
      const cpuStart = process.cpuUsage();
      rows = (await runQuery(query, sql, { maxRows: 1_000_000 })).rows.length;
      const used = process.cpuUsage(cpuStart);
      times.push(performance.now() - start);
      cpu.push((used.user + used.system) / 1000);
    }
    query.closeSync();
    log(
      `${label}: ${rows} rows, wall ${times.map((ms) => ms.toFixed(0)).join(' / ')} ms, cpu ${cpu.map((ms) => ms.toFixed(0)).join(' / ')} ms`,
    );
    return { rows, firstMs: times[0]!, bestMs: Math.min(...times), bestCpuMs: Math.min(...cpu) };
  };
  const withHot = await timeQuery('daily OHLCV from ticks, lake + hot', DAILY_OHLCV);
  await connection.run('DELETE FROM tick_rows');
  await connection.run('DELETE FROM candle_rows');
  const lakeOnly = await timeQuery('daily OHLCV from ticks, lake only', DAILY_OHLCV);
  const lakeOnlyByTs = await timeQuery('daily OHLCV from ticks by ts, lake only', DAILY_OHLCV_BY_TS);
  const fromCandles = await timeQuery('daily OHLCV from 1h candles, lake only', DAILY_OHLCV_FROM_CANDLES);
  connection.closeSync();
  await lake.store.close();

  const result = {
    ticks,
    lakeWriteSeconds: writeSeconds,
    lakeWriteRowsPerSecond: Math.round((pass.rows.ticks + pass.rows.candles) / writeSeconds),
    parquetFiles: files.length,
    parquetBytesPerTick: bytes / pass.rows.ticks,
    dailyOhlcvWithHot: withHot,
    dailyOhlcvLakeOnly: lakeOnly,
    dailyOhlcvLakeOnlyByTs: lakeOnlyByTs,
    dailyOhlcvFromCandles: fromCandles,
    load: os.loadavg().map((value) => Number(value.toFixed(2))),
  };
  if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else {
    log(
      `lake write: ${pass.rows.ticks.toLocaleString()} ticks and ${pass.rows.candles.toLocaleString()} 1h candles in ${writeSeconds.toFixed(1)} s = ${result.lakeWriteRowsPerSecond.toLocaleString()} rows/s`,
    );
    log(`Parquet: ${files.length} files, ${result.parquetBytesPerTick.toFixed(1)} bytes per tick`);
    log(`load average ${result.load.join(' ')}`);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
