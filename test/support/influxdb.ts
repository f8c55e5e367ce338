/**
 * A throwaway InfluxDB 1.x (Debian's `influxdb` package: `influxd`) on 127.0.0.1, for the influxdb
 * sink. `STREAMLINES_TEST_INFLUXDB_URL` points at one already running instead (then it is never
 * stopped). Outside CI a missing `influxd` skips loudly; in CI (`CI=true`) it fails.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Alert, Candle, IndicatorPoint, ProcessedTick } from '../../src/core/records.ts';
import type { SinkBatch } from '../../src/sinks/sink.ts';
import { freePort, type RestartableServer, startOrSkip, startServerChild } from './server-process.ts';

const STARTUP_TIMEOUT_MS = 60_000;

/** An InfluxDB at `url`; `startServer` resolves once /ping answers. */
export interface TestInfluxdb extends RestartableServer {
  url: string;
}

export type NoInfluxdb = { skip: string };

export async function findOrStartInfluxdb(): Promise<TestInfluxdb | NoInfluxdb> {
  const fromEnv = process.env.STREAMLINES_TEST_INFLUXDB_URL;
  if (fromEnv) {
    const noop = async () => {};
    return { url: fromEnv, stopServer: noop, startServer: noop, destroy: noop };
  }
  return startOrSkip(
    'InfluxDB',
    'no InfluxDB for tests: apt-get install influxdb (influxd 1.x)',
    startInfluxdb,
  );
}

/** Starts an influxd of its own (never the environment's), to stop and start in outage tests. */
export async function startRestartableInfluxdb(): Promise<TestInfluxdb | NoInfluxdb> {
  return startOrSkip('InfluxDB', 'no InfluxDB to stop and restart: apt-get install influxdb', startInfluxdb);
}

async function startInfluxdb(): Promise<TestInfluxdb> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'streamlines-influxdb-'));
  const port = await freePort();
  const rpcPort = await freePort();
  const config = path.join(dir, 'influxdb.conf');
  await writeFile(
    config,
    `reporting-disabled = true
bind-address = "127.0.0.1:${rpcPort}"
[meta]
  dir = "${dir}/meta"
[data]
  dir = "${dir}/data"
  wal-dir = "${dir}/wal"
  query-log-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:${port}"
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[logging]
  level = "warn"
`,
  );
  const url = `http://127.0.0.1:${port}`;
  const answersPing = () =>
    fetch(`${url}/ping`).then(
      (response) => response.status === 204,
      () => false,
    );
  const server = await startServerChild({
    name: 'influxd',
    dir,
    spawn: () => spawn('influxd', ['-config', config], { stdio: ['ignore', 'ignore', 'pipe'] }),
    arm: async () => answersPing,
    startupTimeoutMs: STARTUP_TIMEOUT_MS,
    pollMs: 200,
    killAfterMs: 10_000,
  });
  return { url, stopServer: server.stop, startServer: server.start, destroy: server.destroy };
}

/** Runs an InfluxQL query; the rows of its first series per measurement, times in ms. */
export async function influxQuery(
  url: string,
  database: string,
  query: string,
): Promise<{ name: string; columns: string[]; values: unknown[][]; tags?: Record<string, string> }[]> {
  const params = new URLSearchParams({ db: database, q: query, epoch: 'ms' });
  const response = await fetch(`${url}/query?${params}`);
  const body = (await response.json()) as {
    results: {
      series?: { name: string; columns: string[]; values: unknown[][]; tags?: Record<string, string> }[];
      error?: string;
    }[];
  };
  const result = body.results[0];
  if (result?.error) throw new Error(`influxql ${query}: ${result.error}`);
  return result?.series ?? [];
}

/** Every point of a measurement as objects keyed by column (time in ms). */
async function rows(url: string, database: string, measurement: string): Promise<Record<string, unknown>[]> {
  const series = await influxQuery(url, database, `SELECT * FROM "${measurement}"`);
  return series.flatMap((one) =>
    one.values.map((values) => Object.fromEntries(one.columns.map((column, i) => [column, values[i]]))),
  );
}

/** What the database holds, read with InfluxQL, as records. */
export async function readInfluxdb(url: string, database: string): Promise<SinkBatch> {
  const ticks = (await rows(url, database, 'ticks')).map(
    (row) =>
      ({
        symbol: row.symbol,
        source: row.source,
        ts: row.time,
        price: row.price,
        size: row.size,
        seq: row.seq,
        id: row.id ?? undefined,
        maShort: row.maShort ?? null,
        maLong: row.maLong ?? null,
        late: row.late,
      }) as ProcessedTick,
  );
  const candles = (await rows(url, database, 'candles')).map(
    (row) =>
      ({
        symbol: row.symbol,
        interval: row.interval,
        ts: row.time,
        open: row.open,
        high: row.high,
        low: row.low,
        close: row.close,
        volume: row.volume,
        trades: row.trades,
        vwap: row.vwap ?? null,
        final: true,
      }) as Candle,
  );
  const indicators = (await rows(url, database, 'indicators')).map(
    (row) =>
      ({
        symbol: row.symbol,
        interval: row.interval,
        ts: row.time,
        sma20: row.sma20 ?? null,
        ema20: row.ema20 ?? null,
        rsi14: row.rsi14 ?? null,
        bbUpper: row.bbUpper ?? null,
        bbMiddle: row.bbMiddle ?? null,
        bbLower: row.bbLower ?? null,
      }) as IndicatorPoint,
  );
  const alerts = (await rows(url, database, 'alerts')).map(
    (row) =>
      ({
        symbol: row.symbol,
        ts: row.time,
        kind: row.kind,
        price: row.price,
        seq: row.seq,
        message: row.message,
        ...(row.threshold === null || row.threshold === undefined ? {} : { threshold: row.threshold }),
      }) as Alert,
  );
  return { ticks, candles, indicators, alerts };
}
