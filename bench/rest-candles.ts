/**
 * p50/p99 of `GET /api/v1/candles/SYM?limit=1000` over real HTTP (keep-alive, one request at a
 * time) against a DuckDB store file holding 100,000 one-minute candles over 4 symbols (docs/design.md, Targets:
 * REST, 1 000 candles in p99 <= 10 ms), and of a day of 1m candles (1 440, by `from`/`to`). Also
 * reports the store's share from `Server-Timing`. The store is wrapped in `withRecentCandles`, as the
 * embedded pipeline serves it. Part of `npm run bench` (bench/main.ts); alone:
 * `npx node bench/rest-candles.ts [requests] [--index] [--no-recent-candles]`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Candle } from '../src/core/records.ts';
import { buildServer } from '../src/serve/server.ts';
import { DuckDbStore } from '../src/store/duckdb/duckdb-store.ts';
import { MIGRATIONS } from '../src/store/duckdb/migrations.ts';
import { withRecentCandles } from '../src/store/recent-candles.ts';
import type { Store } from '../src/store/store.ts';
import { FakeView } from '../test/support/serve.ts';
import { quantile } from './util.ts';

const SYMBOLS = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'XRPUSDT'];
const T0 = 1_699_999_980_000;
const WARMUP = 50;
const DAY_MS = 86_400_000;

/** An ART index on (symbol, interval, ts), as a candidate migration would add. */
const INDEX_MIGRATIONS = [
  ...MIGRATIONS,
  {
    version: MIGRATIONS.at(-1)!.version + 1,
    name: 'bench: candles index',
    sql: 'CREATE INDEX candles_symbol_interval_ts ON candle_rows (symbol_id, interval_id, ts)',
  },
];

export interface RestCandlesOptions {
  /** Measured requests per query (after WARMUP unmeasured ones). */
  requests: number;
  /** 1m candles per symbol in the store; at least a day (1 440). */
  perSymbol: number;
  withIndex?: boolean;
  /** Serve through the in-memory recent-candles ring, as production does (default true). */
  recentCandles?: boolean;
}

/** Latencies in ms over real HTTP, end to end at the client and the store's share (`Server-Timing`). */
export interface RestCandlesResult {
  p50Ms: number;
  p99Ms: number;
  storeP50Ms: number;
  storeP99Ms: number;
  dayP50Ms: number;
  dayP99Ms: number;
  candles: number;
}

/** Writes the candles as a pipeline would: by time, every symbol's minute in the same batch. */
async function seed(store: Store, perSymbol: number): Promise<void> {
  const minutesPerBatch = 1_000;
  for (let first = 0; first < perSymbol; first += minutesPerBatch) {
    const candles: Candle[] = [];
    for (let m = first; m < Math.min(perSymbol, first + minutesPerBatch); m++) {
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
      ts: T0 + perSymbol * 60_000,
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
    checkpoint: { name: 'bench', offsets: { 0: perSymbol }, state: null },
  });
}

/** Times `requests` sequential GETs of `url(i)` (after a warm-up), checking each answer's size. */
async function timeRequests(
  requests: number,
  url: (i: number) => string,
  expected: number,
): Promise<{ total: number[]; storeMs: number[] }> {
  const total: number[] = [];
  const storeMs: number[] = [];
  for (let i = 0; i < requests + WARMUP; i++) {
    const start = performance.now();
    // fetch keeps the connection alive between requests, as a dashboard's would.
    const response = await fetch(url(i));
    const body = (await response.json()) as { candles: Candle[] };
    const elapsed = performance.now() - start;
    if (body.candles.length !== expected)
      throw new Error(`expected ${expected} candles, got ${body.candles.length}`);
    if (i < WARMUP) continue;
    total.push(elapsed);
    const timing = /store;dur=([\d.]+)/.exec(response.headers.get('server-timing') ?? '');
    storeMs.push(Number(timing?.[1] ?? Number.NaN));
  }
  total.sort((a, b) => a - b);
  storeMs.sort((a, b) => a - b);
  return { total, storeMs };
}

/** Seeds a DuckDB store in a temp dir, serves it with the real server and times the candle reads. */
export async function measureRestCandles(options: RestCandlesOptions): Promise<RestCandlesResult> {
  const perSymbol = Math.max(1_440, options.perSymbol);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'streamlines-rest-bench-'));
  const duckdb = new DuckDbStore({
    path: path.join(dir, 'bench.duckdb'),
    migrations: options.withIndex ? INDEX_MIGRATIONS : MIGRATIONS,
  });
  const store = options.recentCandles === false ? duckdb : withRecentCandles(duckdb);
  try {
    await store.open();
    await seed(store, perSymbol);
    const app = await buildServer({ store, view: new FakeView() });
    try {
      await app.listen({ port: 0, host: '127.0.0.1' });
      const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
      const symbol = (i: number) => SYMBOLS[i % SYMBOLS.length]!;
      const last = await timeRequests(
        options.requests,
        (i) => `${base}/api/v1/candles/${symbol(i)}?limit=1000`,
        1_000,
      );
      // A day that starts at a minute boundary somewhere in the seeded range, different per request.
      const days = Math.floor((perSymbol - 1_440) / 1_440) + 1;
      const day = await timeRequests(
        options.requests,
        (i) => {
          const from = T0 + (i % days) * DAY_MS;
          return `${base}/api/v1/candles/${symbol(i)}?from=${from}&to=${from + DAY_MS - 1}`;
        },
        1_440,
      );
      return {
        p50Ms: quantile(last.total, 0.5),
        p99Ms: quantile(last.total, 0.99),
        storeP50Ms: quantile(last.storeMs, 0.5),
        storeP99Ms: quantile(last.storeMs, 0.99),
        dayP50Ms: quantile(day.total, 0.5),
        dayP99Ms: quantile(day.total, 0.99),
        candles: SYMBOLS.length * perSymbol,
      };
    } finally {
      await app.close();
    }
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const requests = Number(process.argv.find((arg, i) => i >= 2 && /^\d+$/.test(arg)) ?? 1_000);
  const withIndex = process.argv.includes('--index');
  const recentCandles = !process.argv.includes('--no-recent-candles');
  const result = await measureRestCandles({ requests, perSymbol: 25_000, withIndex, recentCandles });
  const ms = (value: number) => `${value.toFixed(2)} ms`;
  console.log(
    `GET /api/v1/candles/SYM?limit=1000 over ${result.candles} candles (${requests} requests): ` +
      `p50 ${ms(result.p50Ms)}, p99 ${ms(result.p99Ms)}; ` +
      `store p50 ${ms(result.storeP50Ms)}, p99 ${ms(result.storeP99Ms)}; ` +
      `a day of 1m candles (1 440) p50 ${ms(result.dayP50Ms)}, p99 ${ms(result.dayP99Ms)}` +
      (withIndex ? ' (with an index on symbol, interval, ts)' : '') +
      (recentCandles ? ' (recent candles in memory)' : ' (DuckDB only)'),
  );
}
