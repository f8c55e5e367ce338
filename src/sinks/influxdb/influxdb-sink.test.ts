import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { findOrStartInfluxdb, influxQuery, type TestInfluxdb } from '../../../test/support/influxdb.ts';
import type { Alert, Candle, IndicatorPoint, ProcessedTick } from '../../core/records.ts';
import { FIRST_BATCH, sinkConformance } from '../conformance.ts';
import type { SinkBatch } from '../sink.ts';
import {
  alertLine,
  candleLine,
  InfluxdbSink,
  indicatorLine,
  influxdbSinkSchema,
  tickLine,
} from './influxdb-sink.ts';

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

test('line protocol: tags sorted and escaped, strings quoted, ns time = ts ms plus seq, nulls left out', () => {
  const [first, , , odd] = FIRST_BATCH.ticks;
  assert.equal(
    tickLine(first!),
    'ticks,source=replay,symbol=BTCUSDT price=100.25,size=0.5,seq=0i,late=false,id="a1",side="buy" 1699999980000000000',
  );
  assert.equal(
    tickLine(odd!),
    'ticks,source=my\\ feed\\,\\ 2,symbol=ETH/USD:X price=100,size=1,seq=3i,late=false,id="quote \\" and \\\\ backslash" 1699999980000000003',
  );
  assert.equal(
    candleLine(FIRST_BATCH.candles[1]!),
    'candles,interval=1m,symbol=BTCUSDT open=100,high=102.5,low=99.25,close=101,volume=0,trades=2i 1700000040000000000',
  );
  assert.equal(
    indicatorLine(FIRST_BATCH.indicators[0]!),
    'indicators,interval=1m,symbol=BTCUSDT warm=false 1699999980000000000',
  );
  assert.equal(
    alertLine(FIRST_BATCH.alerts[0]!),
    'alerts,kind=price_above,symbol=BTCUSDT price=101,seq=4096i,message="alert 4096",threshold=100 1699999980000004096',
  );
});

test('config: url and database; credentials only from the environment', () => {
  const config = influxdbSinkSchema.parse({ type: 'influxdb', url: 'http://localhost:8086' });
  assert.equal(config.database, 'streamlines');
  assert.deepEqual(config.records, ['ticks', 'candles', 'indicators', 'alerts']);
  assert.throws(
    () => influxdbSinkSchema.parse({ type: 'influxdb', url: 'http://x', password: 'p' }),
    /password/,
  );
});

const server: TestInfluxdb | { skip: string } = await findOrStartInfluxdb();

describe('influxdb sink on a real InfluxDB', { skip: 'skip' in server ? server.skip : false }, () => {
  const influx = server as TestInfluxdb;
  after(() => influx.destroy());
  let databases = 0;
  sinkConformance('influxdb', async () => {
    const database = `conformance_${process.pid}_${++databases}`;
    const config = influxdbSinkSchema.parse({ type: 'influxdb', url: influx.url, database });
    return {
      makeSink: () => new InfluxdbSink(config, {}),
      readBack: () => readInfluxdb(influx.url, database),
      stopTarget: influx.stopServer,
      startTarget: influx.startServer,
      cleanup: async () => {
        await influxQuery(influx.url, database, `DROP DATABASE "${database}"`).catch(() => undefined);
      },
    };
  });

  describe('credentials', () => {
    let seen: string | undefined;
    before(() => {
      seen = undefined;
    });
    test('INFLUXDB_TOKEN becomes an Authorization: Token header (the 2.x/3.x v1 API)', async () => {
      const original = globalThis.fetch;
      globalThis.fetch = (async (input: string | URL | Request, init?: RequestInit) => {
        seen = new Headers(init?.headers).get('authorization') ?? undefined;
        return original(input, init);
      }) as typeof fetch;
      try {
        const config = influxdbSinkSchema.parse({ type: 'influxdb', url: influx.url, database: 'tokens' });
        await new InfluxdbSink(config, { INFLUXDB_TOKEN: 't0ken' }).open();
        assert.equal(seen, 'Token t0ken');
      } finally {
        globalThis.fetch = original;
      }
    });
  });
});
