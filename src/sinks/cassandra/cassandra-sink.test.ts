import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import cassandra from 'cassandra-driver';
import { findOrStartCassandra, type TestCassandra } from '../../../test/support/cassandra.ts';
import type { Alert, Candle, IndicatorPoint, ProcessedTick } from '../../core/records.ts';
import { FIRST_BATCH, sinkConformance } from '../conformance.ts';
import type { SinkBatch } from '../sink.ts';
import { CassandraSink, cassandraSinkSchema } from './cassandra-sink.ts';

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

test('config: contactPoints, localDataCenter, keyspace, ttl per kind', () => {
  const config = cassandraSinkSchema.parse({
    type: 'cassandra',
    contactPoints: ['127.0.0.1:9042'],
    ttl: { ticks: '7d', candles: '400d' },
  });
  assert.equal(config.keyspace, 'streamlines');
  assert.equal(config.localDataCenter, 'datacenter1');
  assert.deepEqual(config.ttl, { ticks: 7 * 86_400_000, candles: 400 * 86_400_000 });
  assert.throws(
    () => cassandraSinkSchema.parse({ type: 'cassandra', contactPoints: [], keyspace: 'x' }),
    /contactPoints/,
  );
  assert.throws(
    () => cassandraSinkSchema.parse({ type: 'cassandra', contactPoints: ['h'], keyspace: 'drop table' }),
    /keyspace/,
  );
});

const server: TestCassandra | { skip: string } = await findOrStartCassandra();

describe('cassandra sink on a real Apache Cassandra', {
  skip: 'skip' in server ? server.skip : false,
  timeout: 600_000,
}, () => {
  const node = server as TestCassandra;
  const client = new cassandra.Client({
    contactPoints: [node.contactPoint],
    localDataCenter: 'datacenter1',
    // Back quickly after the outage test restarts the node.
    policies: { reconnection: new cassandra.policies.reconnection.ConstantReconnectionPolicy(500) },
  });
  after(async () => {
    await client.shutdown();
    await node.destroy();
  });
  let keyspaces = 0;
  sinkConformance(
    'cassandra',
    async () => {
      const keyspace = `conformance_${process.pid}_${++keyspaces}`;
      const config = cassandraSinkSchema.parse({
        type: 'cassandra',
        contactPoints: [node.contactPoint],
        keyspace,
        timeout: '5s',
      });
      return {
        makeSink: () => new CassandraSink(config, {}),
        readBack: () => readCassandra(client, keyspace),
        stopTarget: node.stopServer,
        startTarget: node.startServer,
        cleanup: async () => {
          await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).catch(() => undefined);
        },
      };
    },
    { timeout: 600_000 },
  );

  test('tables are partitioned by symbol and day, clustered by ts; rows carry the TTL of their kind', async () => {
    const keyspace = `ttl_${process.pid}`;
    const sink = new CassandraSink(
      cassandraSinkSchema.parse({
        type: 'cassandra',
        contactPoints: [node.contactPoint],
        keyspace,
        ttl: { ticks: '1h', candles: '2h', alerts: '3h' },
      }),
      {},
    );
    try {
      await sink.open();
      await sink.write(FIRST_BATCH);
      const keys = await client.execute(
        `SELECT table_name, column_name, kind, position FROM system_schema.columns WHERE keyspace_name = ?`,
        [keyspace],
      );
      const key = (table: string) =>
        keys.rows
          .filter((row) => row.table_name === table && row.kind !== 'regular')
          .sort((a, b) => (a.kind === b.kind ? a.position - b.position : a.kind < b.kind ? -1 : 1))
          .map((row) => `${row.kind}:${row.column_name}`);
      assert.deepEqual(key('ticks'), [
        'clustering:ts',
        'clustering:seq',
        'partition_key:symbol',
        'partition_key:day',
      ]);
      assert.deepEqual(key('candles'), [
        'clustering:interval',
        'clustering:ts',
        'partition_key:symbol',
        'partition_key:day',
      ]);
      // Unset (null) cells have no TTL: the largest over the rows is the one written.
      const ttl = async (table: string, column: string) => {
        const { rows } = await client.execute(`SELECT TTL(${column}) AS ttl FROM ${keyspace}.${table}`);
        return Math.max(...rows.map((row) => (row.ttl as number | null) ?? 0));
      };
      const near = (actual: number, expected: number) =>
        assert.ok(actual > expected - 120 && actual <= expected, `${actual} vs ${expected}`);
      near(await ttl('ticks', 'price'), 3_600);
      near(await ttl('candles', 'close'), 7_200);
      near(await ttl('indicators', 'bb_lower'), 7_200);
      near(await ttl('alerts', 'price'), 10_800);
    } finally {
      await sink.close();
      await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).catch(() => undefined);
    }
  });
});
