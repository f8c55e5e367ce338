/**
 * Test fixtures for the serve stage: a fake PipelineView the test drives by hand, a MemoryStore
 * seeded with a small known market, and a server built over both.
 */
import { after, before } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { LiveListener, PipelineView, Stats } from '../../src/core/pipeline-view.ts';
import type {
  Alert,
  Candle,
  DeadLetter,
  IndicatorPoint,
  Interval,
  ProcessedTick,
} from '../../src/core/records.ts';
import { STATS_EXAMPLE } from '../../src/serve/routes/stats.ts';
import { buildServer, type ServerOptions } from '../../src/serve/server.ts';
import { MemoryStore } from '../../src/store/memory/memory-store.ts';
import type { Store } from '../../src/store/store.ts';

/** A PipelineView whose answers the test sets and whose live stream the test emits. */
export class FakeView implements PipelineView {
  readonly listeners = new Set<LiveListener>();
  readonly forming = new Map<string, Candle[]>();
  statsValue: Stats = structuredClone(STATS_EXAMPLE);

  stats(): Stats {
    return this.statsValue;
  }

  formingCandles(symbol: string, interval: Interval): Candle[] {
    return this.forming.get(`${symbol}:${interval}`) ?? [];
  }

  onLive(listener: LiveListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(channel: string, data: unknown): void {
    for (const listener of this.listeners) listener(channel, data);
  }
}

/** A processed BTCUSDT tick at `ts` with the given price; other fields fixed. */
export function makeTick(symbol: string, seq: number, ts: number, price: number): ProcessedTick {
  return {
    source: 'test',
    symbol,
    ts,
    price,
    size: 1,
    id: `t${seq}`,
    side: 'buy',
    receivedAt: ts + 5,
    seq,
    maShort: null,
    maLong: null,
    late: false,
  };
}

/** A candle with open = high = low = close = `price`, volume 2, 1 trade. */
export function makeCandle(
  symbol: string,
  interval: Interval,
  ts: number,
  price: number,
  final: boolean,
): Candle {
  return {
    symbol,
    interval,
    ts,
    open: price,
    high: price,
    low: price,
    close: price,
    volume: 2,
    trades: 1,
    vwap: price,
    final,
  };
}

export const MINUTE = 60_000;

/** What `seedStore` writes, so tests can compare against it. */
export const SEED = {
  ticks: [
    makeTick('BTCUSDT', 1, 1 * MINUTE, 100),
    makeTick('BTCUSDT', 2, 2 * MINUTE, 101),
    makeTick('ETHUSDT', 3, 2 * MINUTE + 1, 50),
    makeTick('BTCUSDT', 4, 3 * MINUTE, 102),
    { ...makeTick('BTCUSDT', 5, 4 * MINUTE, 103), id: undefined, maShort: 101.5, late: true },
  ] satisfies ProcessedTick[],
  // Final 1m candles of BTCUSDT at minutes 1..4; the view supplies the forming one at minute 5.
  candles: [1, 2, 3, 4].map((minute) => makeCandle('BTCUSDT', '1m', minute * MINUTE, 99 + minute, true)),
  indicators: [1, 2, 3].map(
    (minute): IndicatorPoint => ({
      symbol: 'BTCUSDT',
      interval: '1m',
      ts: minute * MINUTE,
      sma20: minute === 3 ? 101 : null,
      ema20: null,
      rsi14: null,
      bbUpper: null,
      bbMiddle: null,
      bbLower: null,
    }),
  ),
  alerts: [
    {
      seq: 10,
      ts: 2 * MINUTE,
      symbol: 'BTCUSDT',
      kind: 'price_above',
      price: 101,
      threshold: 100.5,
      message: 'above',
    },
    { seq: 11, ts: 2 * MINUTE + 1, symbol: 'ETHUSDT', kind: 'anomaly', price: 50, message: 'spike' },
    { seq: 12, ts: 3 * MINUTE, symbol: 'BTCUSDT', kind: 'golden_cross', price: 102, message: 'cross' },
  ] satisfies Alert[],
  deadLetters: Array.from(
    { length: 150 },
    (_, i): DeadLetter => ({
      seq: 1_000 + i,
      source: 'test',
      reason: 'invalid_price',
      detail: 'price must be a finite number > 0, got "abc"',
      raw: `{"price":"abc","n":${i}}`,
      receivedAt: 5_000 + i,
    }),
  ),
};

/** An open MemoryStore holding SEED. */
export async function seedStore(): Promise<MemoryStore> {
  const store = new MemoryStore();
  await store.open();
  await store.write({ ...SEED, checkpoint: { name: 'test', offsets: { 0: 5 }, state: null } });
  return store;
}

/** A server over a seeded store and a FakeView; override any option. */
export async function buildTestServer(
  overrides: Partial<Omit<ServerOptions, 'view'>> = {},
): Promise<{ app: FastifyInstance; store: Store; view: FakeView }> {
  const store = overrides.store ?? (await seedStore());
  const view = new FakeView();
  const app = await buildServer({ store, view, ...overrides });
  return { app, store, view };
}

/**
 * Builds one test server before the file's tests, hands it to `use` (which keeps what it needs, and may
 * start it listening), and closes its app after them.
 */
export function testServerForSuite(
  use: (server: { app: FastifyInstance; store: Store; view: FakeView }) => void | Promise<void>,
  overrides: Partial<Omit<ServerOptions, 'view'>> = {},
): void {
  let app: FastifyInstance | undefined;
  before(async () => {
    const server = await buildTestServer(overrides);
    app = server.app;
    await use(server);
  });
  after(async () => {
    await app?.close();
  });
}

/** Runs `run` on the server `built` resolves to, and closes its app afterwards, pass or fail. */
export async function withServer<T extends { app: FastifyInstance }>(
  built: Promise<T>,
  run: (server: T) => Promise<void>,
): Promise<void> {
  const server = await built;
  try {
    await run(server);
  } finally {
    await server.app.close();
  }
}

/** Parsed JSON as tests read it: they index into it freely and let the assertions do the checking. */
// biome-ignore lint/suspicious/noExplicitAny: one loose type for test assertions on parsed bodies and frames.
export type Json = any;
