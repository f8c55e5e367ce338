import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  findOrStartInfluxdb,
  influxQuery,
  readInfluxdb,
  type TestInfluxdb,
} from '../../../test/support/influxdb.ts';
import { FIRST_BATCH, sinkConformance } from '../conformance.ts';
import {
  alertLine,
  candleLine,
  InfluxdbSink,
  indicatorLine,
  influxdbSinkSchema,
  tickLine,
} from './influxdb-sink.ts';

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
