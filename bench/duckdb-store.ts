/**
 * Measures the DuckDB store's hot paths on a file in a temp dir:
 * - bulk writes: batches of 5,000 ProcessedTicks (100 symbols) with their checkpoint, in rows/s;
 * - `candles(symbol, '1m', {limit: 1000})` on a table of 100,000 candles, p50/p99 latency.
 * Run: `npx node bench/duckdb-store.ts [batches] [ticksPerBatch]` (default 100 batches of 5 000).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Candle, ProcessedTick } from '../src/core/records.ts';
import { DuckDbStore } from '../src/store/duckdb/duckdb-store.ts';
import type { StoreBatch } from '../src/store/store.ts';
import { benchTickBatch, BENCH_T0 as T0 } from './tick-batch.ts';
import { quantile } from './util.ts';

const TICKS_PER_BATCH = Number(process.argv[3] ?? 5000);
const SYMBOLS = 100;
const SYMBOL_NAMES = Array.from({ length: SYMBOLS }, (_, i) => `SYM${i}`);
const batchCount = Number(process.argv[2] ?? 100);

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

const dir = await mkdtemp(path.join(os.tmpdir(), 'streamlines-bench-'));
try {
  await benchWrites(path.join(dir, 'sequential.duckdb'), 1);
  await benchWrites(path.join(dir, 'pipelined.duckdb'), 2);
  await benchCandleReads(path.join(dir, 'candles.duckdb'));
} finally {
  await rm(dir, { recursive: true, force: true });
}
