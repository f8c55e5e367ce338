/**
 * p50/p99 of `GET /api/v1/candles/SYM?limit=1000` over real HTTP (keep-alive, one request at a
 * time) against a DuckDB store file holding 100,000 one-minute candles over 4 symbols (DESIGN §6:
 * REST, 1 000 candles in p99 <= 10 ms). Also reports the store's share from `Server-Timing`.
 * Run: `npx node bench/rest-candles.ts [requests] [--index]`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Candle } from '../src/core/records.ts';
import { buildServer } from '../src/serve/server.ts';
import { FakeView } from '../src/serve/test-helpers.ts';
import { DuckDbStore } from '../src/store/duckdb/duckdb-store.ts';
import { MIGRATIONS } from '../src/store/duckdb/migrations.ts';

const SYMBOLS = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'XRPUSDT'];
const PER_SYMBOL = 25_000;
const T0 = 1_699_999_980_000;
const WARMUP = 50;
const requests = Number(process.argv.find((arg, i) => i >= 2 && /^\d+$/.test(arg)) ?? 1_000);
// `--index`: measure with an ART index on (symbol, interval, ts), as a candidate migration would add.
const withIndex = process.argv.includes('--index');
const migrations = withIndex
  ? [
      ...MIGRATIONS,
      {
        version: MIGRATIONS.at(-1)!.version + 1,
        name: 'bench: candles index',
        sql: 'CREATE INDEX candles_symbol_interval_ts ON candles (symbol, "interval", ts)',
      },
    ]
  : MIGRATIONS;

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Writes the candles as a pipeline would: by time, every symbol's minute in the same batch. */
async function seed(store: DuckDbStore): Promise<void> {
  const minutesPerBatch = 1_000;
  for (let first = 0; first < PER_SYMBOL; first += minutesPerBatch) {
    const candles: Candle[] = [];
    for (let m = first; m < first + minutesPerBatch; m++) {
      for (const symbol of SYMBOLS) {
        const price = 100 + Math.sin(m / 50) * 5;
        candles.push({
          symbol,
          interval: '1m',
          ts: T0 + m * 60_000,
          open: price,
          high: price + 1,
          low: price - 1,
          close: price + 0.5,
          volume: 10 + (m % 7),
          trades: 12,
          vwap: price + 0.2,
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
      checkpoint: { name: 'bench', offsets: { 0: first }, state: null },
    });
  }
  // `latest` makes the symbols known to the API (404 otherwise).
  await store.write({
    ticks: SYMBOLS.map((symbol, i) => ({
      source: 'bench',
      symbol,
      ts: T0 + PER_SYMBOL * 60_000,
      price: 100,
      size: 1,
      id: String(i),
      side: 'buy',
      receivedAt: T0,
      seq: i,
      maShort: null,
      maLong: null,
      late: false,
    })),
    candles: [],
    indicators: [],
    alerts: [],
    deadLetters: [],
    checkpoint: { name: 'bench', offsets: { 0: PER_SYMBOL }, state: null },
  });
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'streamlines-rest-bench-'));
const store = new DuckDbStore({ path: path.join(dir, 'bench.duckdb'), migrations });
try {
  await store.open();
  await seed(store);
  const app = await buildServer({ store, view: new FakeView() });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const total: number[] = [];
  const storeMs: number[] = [];
  for (let i = 0; i < requests + WARMUP; i++) {
    const symbol = SYMBOLS[i % SYMBOLS.length]!;
    const start = performance.now();
    const response = await fetch(`${base}/api/v1/candles/${symbol}?limit=1000`);
    const body = (await response.json()) as { candles: Candle[] };
    const elapsed = performance.now() - start;
    if (body.candles.length !== 1_000) throw new Error(`expected 1000 candles, got ${body.candles.length}`);
    if (i < WARMUP) continue;
    total.push(elapsed);
    const timing = /store;dur=([\d.]+)/.exec(response.headers.get('server-timing') ?? '');
    storeMs.push(Number(timing?.[1] ?? Number.NaN));
  }
  total.sort((a, b) => a - b);
  storeMs.sort((a, b) => a - b);
  const ms = (value: number) => `${value.toFixed(2)} ms`;
  console.log(
    `GET /api/v1/candles/SYM?limit=1000 over ${SYMBOLS.length * PER_SYMBOL} candles (${requests} requests): ` +
      `p50 ${ms(quantile(total, 0.5))}, p99 ${ms(quantile(total, 0.99))}; ` +
      `store p50 ${ms(quantile(storeMs, 0.5))}, p99 ${ms(quantile(storeMs, 0.99))}` +
      (withIndex ? ' (with an index on symbol, interval, ts)' : ''),
  );
  await app.close();
} finally {
  await store.close();
  await rm(dir, { recursive: true, force: true });
}
