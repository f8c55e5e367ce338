/**
 * Measures the DuckDB store's hot paths on a file in a temp dir:
 * - bulk writes: batches of 5,000 ProcessedTicks (100 symbols) with their checkpoint, in rows/s;
 * - `candles(symbol, '1m', {limit: 1000})` on a table of 100,000 candles, p50/p99 latency.
 * Run: `npx node bench/duckdb-store.ts [batches] [ticksPerBatch]` (default 100 batches of 5 000).
 *
 * `npx node bench/duckdb-store.ts --symbol-ids [transactions] [rowsPerTransaction]` measures instead
 * what dictionary-encoded symbols save (issue 13): the tick and candle rows of the store's own
 * columns (symbol, source, side and interval as INTEGER ids from its TextIds) appended as it
 * appends them, against the same rows with those columns as VARCHAR (the layout before schema
 * version 4), CPU per row on the main thread and on DuckDB's threads, alternating the two layouts
 * on fresh files.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import type { Candle, ProcessedTick } from '../src/core/records.ts';
import { buildChunks, type Column } from '../src/store/duckdb/chunk-builder.ts';
import { candleColumns, DuckDbStore, TextIds, tickColumns } from '../src/store/duckdb/duckdb-store.ts';
import type { StoreBatch } from '../src/store/store.ts';
import { benchTickBatch, BENCH_T0 as T0 } from './tick-batch.ts';
import { quantile } from './util.ts';

const SYMBOL_IDS = process.argv.includes('--symbol-ids');
const ARGS = process.argv.slice(2).filter((arg) => arg !== '--symbol-ids');
const TICKS_PER_BATCH = Number(ARGS[1] ?? 5000);
const SYMBOLS = 100;
const SYMBOL_NAMES = Array.from({ length: SYMBOLS }, (_, i) => `SYM${i}`);
const batchCount = Number(ARGS[0] ?? 100);

/** The store benchmarks' ticks: ids on even seqs only, like a feed that sends ids for some trades. */
function tickBatch(batch: number): ProcessedTick[] {
  return benchTickBatch(batch, TICKS_PER_BATCH, SYMBOL_NAMES, 2);
}

/**
 * Writes `batchCount` batches in rounds of 20 and reports the median and best round: the machine
 * is shared, so the best round is the store's cost and the median shows the noise. `inFlight` > 1
 * lets the next batch's chunks be built while DuckDB commits the previous one.
 */
async function benchWrites(file: string, inFlight: number): Promise<void> {
  const store = new DuckDbStore({ path: file });
  await store.open();
  // Build the input first: the number is the store's cost, not the generator's.
  const batches: StoreBatch[] = [];
  for (let b = 0; b < batchCount; b++) {
    batches.push({
      ticks: tickBatch(b),
      candles: [],
      indicators: [],
      alerts: [],
      deadLetters: [],
      checkpoint: { name: 'processor', offsets: { 0: (b + 1) * TICKS_PER_BATCH }, state: { batch: b } },
    });
  }
  await store.write(batches[0]!); // warm-up: appenders created, file grown
  const roundSize = Math.min(20, batchCount - 1);
  const rates: number[] = [];
  const cpuBefore = process.cpuUsage();
  for (let first = 1; first + roundSize <= batchCount; first += roundSize) {
    const start = performance.now();
    const pending: Promise<void>[] = [];
    for (let b = first; b < first + roundSize; b++) {
      pending.push(store.write(batches[b]!));
      if (pending.length >= inFlight) await pending.shift();
    }
    await Promise.all(pending);
    rates.push((roundSize * TICKS_PER_BATCH) / ((performance.now() - start) / 1000));
  }
  const cpu = process.cpuUsage(cpuBefore);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  rates.sort((a, b) => a - b);
  const format = (rate: number): string => Math.round(rate).toLocaleString('en-US');
  console.log(
    `writes (${path.basename(file)}, ${inFlight} in flight), batches of ${TICKS_PER_BATCH} ticks over ${SYMBOLS} symbols: ` +
      `median ${format(quantile(rates, 0.5))} rows/s, best ${format(rates[rates.length - 1]!)} rows/s ` +
      `(${rates.length} rounds of ${roundSize} batches); ` +
      `${format((rates.length * roundSize * TICKS_PER_BATCH) / cpuSeconds)} rows per CPU-second (all threads)`,
  );
  await store.close();
}

async function benchCandleReads(file: string): Promise<void> {
  const store = new DuckDbStore({ path: file });
  await store.open();
  // 100 symbols x 1,000 one-minute candles = 100,000 rows, written as a pipeline would: by time.
  const candleSymbols = 100;
  const perSymbol = 1000;
  for (let minute = 0; minute < perSymbol; minute += 100) {
    const candles: Candle[] = [];
    for (let m = minute; m < minute + 100; m++) {
      for (let s = 0; s < candleSymbols; s++) {
        candles.push({
          symbol: `SYM${s}`,
          interval: '1m',
          ts: T0 + m * 60_000,
          open: 100,
          high: 101,
          low: 99,
          close: 100.5,
          volume: 10,
          trades: 12,
          vwap: 100.2,
          final: true,
        });
      }
    }
    await store.write({
      ticks: [],
      candles,
      indicators: [],
      alerts: [],
      deadLetters: [],
      checkpoint: { name: 'candles', offsets: { 0: minute }, state: null },
    });
  }
  const iterations = 500;
  const latencies: number[] = [];
  for (let i = 0; i < iterations + 20; i++) {
    const start = performance.now();
    const candles = await store.candles(`SYM${i % candleSymbols}`, '1m', { limit: 1000 });
    const elapsed = performance.now() - start;
    if (candles.length !== 1000) throw new Error(`expected 1000 candles, got ${candles.length}`);
    if (i >= 20) latencies.push(elapsed); // the first reads warm the caches
  }
  latencies.sort((a, b) => a - b);
  console.log(
    `candles(symbol, '1m', {limit: 1000}) over ${candleSymbols * perSymbol} candles: ` +
      `p50 ${quantile(latencies, 0.5).toFixed(2)} ms, p99 ${quantile(latencies, 0.99).toFixed(2)} ms`,
  );
  await store.close();
}

/** The store's columns with the named id columns replaced by the VARCHAR text they encode. */
function withText<T>(
  columns: readonly Column<T>[],
  names: readonly string[],
  textColumns: Record<string, (record: T) => string | undefined>,
): Column<T>[] {
  return columns.map((column, i) => {
    const read = textColumns[names[i]!];
    return read === undefined ? column : { kind: 'varchar', value: read };
  });
}

const TICK_NAMES = [
  'seq',
  'source',
  'symbol',
  'ts',
  'price',
  'size',
  'id',
  'side',
  'received_at',
  'ma_short',
  'ma_long',
  'late',
];
const CANDLE_NAMES = ['symbol', 'interval', 'ts', 'open', 'high', 'low', 'close', 'volume', 'trades', 'vwap'];

/** `count` final candles cycling over the symbols and intervals, starting at number `first`. */
function candleRows(first: number, count: number): Candle[] {
  const intervals = ['1m', '5m', '15m', '1h', '1d'] as const;
  const candles: Candle[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const n = first + i;
    candles[i] = {
      symbol: SYMBOL_NAMES[n % SYMBOLS]!,
      interval: intervals[Math.floor(n / SYMBOLS) % 5]!,
      ts: T0 + Math.floor(n / (SYMBOLS * 5)) * 60_000,
      open: 100 + Math.sin(n),
      high: 101 + Math.sin(n),
      low: 99 + Math.sin(n),
      close: 100.5 + Math.sin(n),
      volume: 10 + (n % 13),
      trades: 1 + (n % 9),
      vwap: 100.2 + Math.sin(n),
      final: true,
    };
  }
  return candles;
}

interface LayoutCost {
  buildUsPerRow: number;
  mainUsPerRow: number;
  duckdbUsPerRow: number;
  bytesPerRow: number;
}

/**
 * Appends `transactions` transactions of `rows` ticks and `rows` candles into fresh tables of one
 * layout, as the store does (chunks, appenders flushed 8 chunks at a time, one COMMIT each), and
 * returns CPU per row (ticks and candles counted alike) and file bytes per row after a checkpoint.
 */
async function appendLayout(
  file: string,
  ids: boolean,
  transactions: number,
  rows: number,
): Promise<LayoutCost> {
  const instance = await DuckDBInstance.create(file, { memory_limit: '512MB' });
  const connection = await instance.connect();
  const text = ids ? 'INTEGER' : 'VARCHAR';
  await connection.run(`
    CREATE TABLE ticks (seq BIGINT NOT NULL, source ${text} NOT NULL, symbol ${text} NOT NULL, ts BIGINT NOT NULL,
      price DOUBLE NOT NULL, size DOUBLE NOT NULL, id VARCHAR, side ${text}, received_at BIGINT NOT NULL,
      ma_short DOUBLE, ma_long DOUBLE, late BOOLEAN NOT NULL);
    CREATE TABLE candles (symbol ${text} NOT NULL, "interval" ${text} NOT NULL, ts BIGINT NOT NULL,
      open DOUBLE NOT NULL, high DOUBLE NOT NULL, low DOUBLE NOT NULL, close DOUBLE NOT NULL,
      volume DOUBLE NOT NULL, trades BIGINT NOT NULL, vwap DOUBLE);
  `);
  const dictionary = new TextIds();
  const tickColumnsOfLayout = ids
    ? tickColumns(dictionary)
    : withText<ProcessedTick>(tickColumns(dictionary), TICK_NAMES, {
        source: (t) => t.source,
        symbol: (t) => t.symbol,
        side: (t) => t.side,
      });
  const candleColumnsOfLayout = ids
    ? candleColumns(dictionary)
    : withText<Candle>(candleColumns(dictionary), CANDLE_NAMES, {
        symbol: (c) => c.symbol,
        interval: (c) => c.interval,
      });
  const tickAppender = await connection.createAppender('ticks');
  const candleAppender = await connection.createAppender('candles');
  const inputs = Array.from({ length: transactions + 1 }, (_, t) => ({
    ticks: benchTickBatch(t, rows, SYMBOL_NAMES, 2),
    candles: candleRows(t * rows, rows),
  }));
  let buildUs = 0;
  let mainBefore = process.threadCpuUsage();
  let allBefore = process.cpuUsage();
  for (let t = 0; t <= transactions; t++) {
    if (t === 1) {
      // The first transaction warms up the JIT and grows the file: not counted.
      buildUs = 0;
      mainBefore = process.threadCpuUsage();
      allBefore = process.cpuUsage();
    }
    const buildBefore = process.threadCpuUsage();
    const tickChunks = buildChunks(tickColumnsOfLayout, inputs[t]!.ticks);
    const candleChunks = buildChunks(candleColumnsOfLayout, inputs[t]!.candles);
    const built = process.threadCpuUsage(buildBefore);
    buildUs += built.user + built.system;
    await connection.run('BEGIN TRANSACTION');
    for (const [appender, chunks] of [
      [tickAppender, tickChunks],
      [candleAppender, candleChunks],
    ] as const) {
      for (let first = 0; first < chunks.length; first += 8) {
        for (const chunk of chunks.slice(first, first + 8)) appender.appendDataChunk(chunk);
        appender.flushSync();
      }
    }
    await connection.run('COMMIT');
  }
  const main = process.threadCpuUsage(mainBefore);
  const all = process.cpuUsage(allBefore);
  tickAppender.closeSync();
  candleAppender.closeSync();
  await connection.run('CHECKPOINT');
  connection.closeSync();
  instance.closeSync();
  const counted = transactions * rows * 2;
  const mainUs = main.user + main.system;
  return {
    buildUsPerRow: buildUs / counted,
    mainUsPerRow: mainUs / counted,
    duckdbUsPerRow: (all.user + all.system - mainUs) / counted,
    bytesPerRow: (await stat(file)).size / ((transactions + 1) * rows * 2),
  };
}

async function benchSymbolIds(dir: string): Promise<void> {
  const transactions = Number(ARGS[0] ?? 6);
  const rows = Number(ARGS[1] ?? 131_072);
  const results: Record<string, LayoutCost[]> = { varchar: [], ids: [] };
  for (let round = 0; round < 3; round++) {
    for (const layout of round % 2 === 0 ? ['varchar', 'ids'] : ['ids', 'varchar']) {
      const file = path.join(dir, `${layout}-${round}.duckdb`);
      results[layout]!.push(await appendLayout(file, layout === 'ids', transactions, rows));
      await rm(file, { force: true });
    }
  }
  const format = (costs: LayoutCost[], key: keyof LayoutCost, digits: number): string =>
    costs.map((cost) => cost[key].toFixed(digits)).join(' / ');
  console.log(
    `${transactions} transactions of ${rows} ticks + ${rows} candles per layout, 3 rounds (load ${os.loadavg()[0]!.toFixed(1)}):`,
  );
  for (const [layout, costs] of Object.entries(results)) {
    console.log(
      `${layout}: chunk building ${format(costs, 'buildUsPerRow', 3)} us/row; main thread (build + append) ` +
        `${format(costs, 'mainUsPerRow', 3)} us/row; DuckDB's other threads ${format(costs, 'duckdbUsPerRow', 3)} ` +
        `us/row; file ${format(costs, 'bytesPerRow', 1)} B/row`,
    );
  }
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'streamlines-bench-'));
try {
  if (SYMBOL_IDS) {
    await benchSymbolIds(dir);
  } else {
    await benchWrites(path.join(dir, 'sequential.duckdb'), 1);
    await benchWrites(path.join(dir, 'pipelined.duckdb'), 2);
    await benchCandleReads(path.join(dir, 'candles.duckdb'));
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
