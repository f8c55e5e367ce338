/**
 * A throwaway single-node Apache Cassandra for the cassandra sink, started with
 * `scripts/cassandra/start.sh` from the Maven Central jars (`scripts/cassandra/fetch.sh` fetches them
 * when missing and `mvn` is there), on Java 17 with Cassandra's own jvm17 flags.
 * `STREAMLINES_TEST_CASSANDRA` (host:port) points at a running node instead (never stopped).
 * Outside CI a node that cannot start skips loudly; in CI (`CI=true`) it fails.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import cassandra from 'cassandra-driver';
import type { Alert, Candle, IndicatorPoint, ProcessedTick } from '../../src/core/records.ts';
import type { SinkBatch } from '../../src/sinks/sink.ts';
import {
  freePort,
  logLineAppears,
  type RestartableServer,
  startOrSkip,
  startServerChild,
} from './server-process.ts';

const run = promisify(execFile);
const SCRIPTS = path.resolve(import.meta.dirname, '../../scripts/cassandra');
/** Seen at about 35 s on an idle 2-core machine; a busy one needs more. */
const STARTUP_TIMEOUT_MS = 240_000;
const READY_LINE = 'Starting listening for CQL clients';

/** A Cassandra node; `startServer` resolves once it serves CQL. */
export interface TestCassandra extends RestartableServer {
  /** host:port of the CQL native transport. */
  contactPoint: string;
  /** Freezes the node (SIGSTOP): connections stay open, requests time out. */
  pauseServer: () => Promise<void>;
  /** Thaws it (SIGCONT). */
  resumeServer: () => Promise<void>;
}

export type NoCassandra = { skip: string };

export async function findOrStartCassandra(): Promise<TestCassandra | NoCassandra> {
  const fromEnv = process.env.STREAMLINES_TEST_CASSANDRA;
  if (fromEnv) {
    const noop = async () => {};
    return {
      contactPoint: fromEnv,
      stopServer: noop,
      startServer: noop,
      pauseServer: noop,
      resumeServer: noop,
      destroy: noop,
    };
  }
  return startOrSkip(
    'Cassandra',
    'no Cassandra for tests: set STREAMLINES_TEST_CASSANDRA, or install Java 17 and Maven (scripts/cassandra/fetch.sh)',
    startCassandra,
  );
}

/** Starts a node of its own (never the environment's), to stop and start in outage tests. */
export async function startRestartableCassandra(): Promise<TestCassandra | NoCassandra> {
  return startOrSkip(
    'Cassandra',
    'no Cassandra to stop and restart: install Java 17 and Maven',
    startCassandra,
  );
}

async function ensureJars(): Promise<void> {
  const jars = path.join(SCRIPTS, 'jars');
  const names = existsSync(jars) ? await readdir(jars) : [];
  if (names.some((name) => name.startsWith('cassandra-all-'))) return;
  console.warn(
    `cassandra test support: jars missing, fetching them from Maven Central (${SCRIPTS}/fetch.sh)`,
  );
  await run(path.join(SCRIPTS, 'fetch.sh'), [], { timeout: 600_000 });
}

async function startCassandra(): Promise<TestCassandra> {
  await ensureJars();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'streamlines-cassandra-'));
  const port = await freePort();
  const storagePort = await freePort();
  const server = await startServerChild({
    name: 'cassandra',
    dir,
    spawn: () =>
      spawn(path.join(SCRIPTS, 'start.sh'), [], {
        env: {
          ...process.env,
          CASSANDRA_DIR: dir,
          CASSANDRA_PORT: String(port),
          CASSANDRA_STORAGE_PORT: String(storagePort),
          CASSANDRA_HEAP: '512m',
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      }),
    arm: logLineAppears(path.join(dir, 'system.log'), READY_LINE),
    startupTimeoutMs: STARTUP_TIMEOUT_MS,
    pollMs: 250,
    killAfterMs: 30_000,
  });
  // start.sh execs java, so the child is the JVM itself.
  return {
    contactPoint: `127.0.0.1:${port}`,
    stopServer: server.stop,
    startServer: server.start,
    pauseServer: async () => server.signal('SIGSTOP'),
    resumeServer: async () => server.signal('SIGCONT'),
    destroy: server.destroy,
  };
}

const num = (value: unknown): number | null =>
  value === null || value === undefined
    ? null
    : cassandra.types.Long.isLong(value)
      ? (value as cassandra.types.Long).toNumber()
      : Number(value);
const ms = (value: unknown): number => (value as Date).getTime();

/** What the keyspace holds, read with CQL, as records. */
export async function readCassandra(client: cassandra.Client, keyspace: string): Promise<SinkBatch> {
  const all = async (table: string) => {
    // The reading client may still be reconnecting after a restart of the node.
    for (let attempt = 0; ; attempt++) {
      try {
        return (await client.execute(`SELECT * FROM ${keyspace}.${table}`, [], { fetchSize: 100_000 })).rows;
      } catch (error) {
        if (!(error instanceof cassandra.errors.NoHostAvailableError) || attempt >= 30) throw error;
        await new Promise((resolve) => setTimeout(resolve, 1_000));
      }
    }
  };
  const ticks = (await all('ticks')).map(
    (row) =>
      ({
        symbol: row.symbol,
        source: row.source,
        ts: ms(row.ts),
        seq: num(row.seq),
        price: row.price,
        size: row.size,
        id: row.id ?? undefined,
        maShort: row.ma_short,
        maLong: row.ma_long,
        late: row.late,
        receivedAt: ms(row.received_at),
      }) as ProcessedTick,
  );
  const candles = (await all('candles')).map(
    (row) =>
      ({
        symbol: row.symbol,
        interval: row.interval,
        ts: ms(row.ts),
        open: row.open,
        high: row.high,
        low: row.low,
        close: row.close,
        volume: row.volume,
        trades: num(row.trades),
        vwap: row.vwap,
        final: true,
      }) as Candle,
  );
  const indicators = (await all('indicators')).map(
    (row) =>
      ({
        symbol: row.symbol,
        interval: row.interval,
        ts: ms(row.ts),
        sma20: row.sma20,
        ema20: row.ema20,
        rsi14: row.rsi14,
        bbUpper: row.bb_upper,
        bbMiddle: row.bb_middle,
        bbLower: row.bb_lower,
      }) as IndicatorPoint,
  );
  const alerts = (await all('alerts')).map(
    (row) =>
      ({
        symbol: row.symbol,
        ts: ms(row.ts),
        seq: num(row.seq),
        kind: row.kind,
        price: row.price,
        message: row.message,
        ...(row.threshold === null ? {} : { threshold: row.threshold }),
      }) as Alert,
  );
  return { ticks, candles, indicators, alerts };
}
