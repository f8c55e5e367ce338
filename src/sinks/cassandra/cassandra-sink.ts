/**
 * `cassandra`: Apache Cassandra (and compatible: ScyllaDB, Astra) through the DataStax Node driver.
 * The keyspace and the tables `ticks`, `candles`, `indicators`, `alerts` are created if missing,
 * each partitioned by symbol and UTC day and clustered by ts, so a row's key is fixed by the row
 * itself and writing it again is an idempotent upsert. Rows expire after the TTL configured for their
 * kind (the original design kept its retention this way). Writes are prepared statements, sent as
 * unlogged batches of one partition each.
 */
import cassandra from 'cassandra-driver';
import { z } from 'zod';
import { durationField } from '../../core/config-fields.ts';
import type { Alert, Candle, IndicatorPoint, ProcessedTick } from '../../core/records.ts';
import { type Sink, type SinkBatch, SinkError, utcDay } from '../sink.ts';
import { sinkCommon, sinkRecords } from '../sink-config.ts';

export const cassandraSinkSchema = z.strictObject({
  type: z.literal('cassandra'),
  ...sinkCommon,
  records: sinkRecords,
  contactPoints: z
    .array(z.string().min(1))
    .min(1)
    .describe(
      'Nodes to connect to first, host or host:port. CASSANDRA_USERNAME/CASSANDRA_PASSWORD from the environment.',
    ),
  localDataCenter: z.string().min(1).default('datacenter1').describe("The driver's local data center."),
  keyspace: z
    .string()
    .regex(/^[a-zA-Z][a-zA-Z0-9_]{0,47}$/)
    .default('streamlines')
    .describe('Keyspace, created if missing (SimpleStrategy); an existing one is used as it is.'),
  replicationFactor: z
    .number()
    .int()
    .positive()
    .default(1)
    .describe(
      'SimpleStrategy replication of a keyspace this sink creates (an existing one is left as it is).',
    ),
  ttl: z
    .strictObject({
      ticks: durationField.optional().describe('Ticks expire after this (default: never).'),
      candles: durationField.optional().describe('Candles expire after this (default: never).'),
      indicators: durationField.optional().describe('Default: the candles TTL.'),
      alerts: durationField.optional().describe('Default: the candles TTL.'),
    })
    .prefault({})
    .describe('Time to live per kind, from the write (0 or absent: rows never expire).'),
  timeout: durationField.default(12_000).describe('Per-request timeout of the driver.'),
});
export type CassandraSinkConfig = z.output<typeof cassandraSinkSchema>;

/** The tables, `IF NOT EXISTS`: the key of each is its partition (symbol, day) and its clustering columns. */
export function schemaStatements(keyspace: string, replicationFactor: number): string[] {
  return [
    `CREATE KEYSPACE IF NOT EXISTS ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': ${replicationFactor}}`,
    `CREATE TABLE IF NOT EXISTS ${keyspace}.ticks (
      symbol text, day date, ts timestamp, seq bigint, source text, price double, size double,
      id text, side text, ma_short double, ma_long double, late boolean, received_at timestamp,
      PRIMARY KEY ((symbol, day), ts, seq))`,
    `CREATE TABLE IF NOT EXISTS ${keyspace}.candles (
      symbol text, day date, interval text, ts timestamp, open double, high double, low double,
      close double, volume double, trades bigint, vwap double,
      PRIMARY KEY ((symbol, day), interval, ts))`,
    `CREATE TABLE IF NOT EXISTS ${keyspace}.indicators (
      symbol text, day date, interval text, ts timestamp, sma20 double, ema20 double, rsi14 double,
      bb_upper double, bb_middle double, bb_lower double,
      PRIMARY KEY ((symbol, day), interval, ts))`,
    `CREATE TABLE IF NOT EXISTS ${keyspace}.alerts (
      symbol text, day date, ts timestamp, seq bigint, kind text, price double, threshold double,
      message text,
      PRIMARY KEY ((symbol, day), ts, seq))`,
  ];
}

/** Statements per unlogged batch: well under Cassandra's batch size warning for these rows. */
const ROWS_PER_BATCH = 50;
/** Per schema statement (CREATE KEYSPACE/TABLE IF NOT EXISTS). */
const SCHEMA_TIMEOUT_MS = 60_000;
/** Batches in flight at once. */
const CONCURRENCY = 8;

type Row = { partition: string; query: string; params: unknown[] };

/** null would write a tombstone; undefined leaves the column unset, which reads back as null. */
const orUnset = <T>(value: T | null | undefined): T | undefined => (value === null ? undefined : value);

export class CassandraSink implements Sink {
  readonly type = 'cassandra';
  readonly records: CassandraSinkConfig['records'];
  readonly #config: CassandraSinkConfig;
  readonly #env: NodeJS.ProcessEnv;
  readonly #ttlSeconds: Record<'ticks' | 'candles' | 'indicators' | 'alerts', number>;
  #client: cassandra.Client | undefined;

  constructor(config: CassandraSinkConfig, env: NodeJS.ProcessEnv = process.env) {
    this.#config = config;
    this.#env = env;
    this.records = config.records;
    const seconds = (ms: number | undefined) => (ms === undefined ? 0 : Math.ceil(ms / 1000));
    this.#ttlSeconds = {
      ticks: seconds(config.ttl.ticks),
      candles: seconds(config.ttl.candles),
      indicators: seconds(config.ttl.indicators ?? config.ttl.candles),
      alerts: seconds(config.ttl.alerts ?? config.ttl.candles),
    };
  }

  async open(): Promise<void> {
    await this.#client?.shutdown().catch(() => undefined);
    const { CASSANDRA_USERNAME: username, CASSANDRA_PASSWORD: password } = this.#env;
    const client = new cassandra.Client({
      contactPoints: this.#config.contactPoints,
      localDataCenter: this.#config.localDataCenter,
      authProvider: username ? new cassandra.auth.PlainTextAuthProvider(username, password ?? '') : undefined,
      socketOptions: { readTimeout: this.#config.timeout, connectTimeout: this.#config.timeout },
      // Reconnect every second: a node back from an outage is used at once, not after minutes.
      policies: { reconnection: new cassandra.policies.reconnection.ConstantReconnectionPolicy(1_000) },
      queryOptions: {
        isIdempotent: true,
        prepare: true,
        consistency: cassandra.types.consistencies.localQuorum,
      },
    });
    try {
      await client.connect();
      for (const statement of schemaStatements(this.#config.keyspace, this.#config.replicationFactor)) {
        // Schema changes wait for the node to agree on the schema: slower than writes on a busy node.
        await client.execute(statement, [], { prepare: false, readTimeout: SCHEMA_TIMEOUT_MS });
      }
    } catch (error) {
      await client.shutdown().catch(() => undefined);
      throw this.#error('open', error);
    }
    this.#client = client;
  }

  async write(batch: SinkBatch): Promise<void> {
    const client = this.#client;
    if (client === undefined) throw new SinkError('unreachable', 'cassandra sink is not open');
    const groups = new Map<string, Row[]>();
    for (const row of this.#rows(batch)) {
      const group = groups.get(row.partition);
      if (group === undefined) groups.set(row.partition, [row]);
      else group.push(row);
    }
    const batches: Row[][] = [];
    for (const rows of groups.values()) {
      for (let i = 0; i < rows.length; i += ROWS_PER_BATCH) batches.push(rows.slice(i, i + ROWS_PER_BATCH));
    }
    let next = 0;
    const worker = async () => {
      while (next < batches.length) {
        const rows = batches[next++]!;
        const queries = rows.map(({ query, params }) => ({ query, params }));
        await client.batch(queries, { prepare: true, logged: false });
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(CONCURRENCY, batches.length) }, worker));
    } catch (error) {
      throw this.#error('write', error);
    }
  }

  async close(): Promise<void> {
    await this.#client?.shutdown().catch(() => undefined);
    this.#client = undefined;
  }

  *#rows(batch: SinkBatch): Generator<Row> {
    const ks = this.#config.keyspace;
    const ttl = this.#ttlSeconds;
    const day = (ts: number) => cassandra.types.LocalDate.fromString(utcDay(ts));
    // Ticks and alerts share their key columns: symbol, day, ts, seq.
    const keyOf = (record: { symbol: string; ts: number; seq: number }) => [
      record.symbol,
      day(record.ts),
      new Date(record.ts),
      cassandra.types.Long.fromNumber(record.seq),
    ];
    for (const t of batch.ticks as readonly ProcessedTick[]) {
      yield {
        partition: `ticks|${t.symbol}|${utcDay(t.ts)}`,
        query: `INSERT INTO ${ks}.ticks (symbol, day, ts, seq, source, price, size, id, side, ma_short, ma_long, late, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TTL ${ttl.ticks}`,
        params: [
          ...keyOf(t),
          t.source,
          t.price,
          t.size,
          t.id,
          t.side,
          orUnset(t.maShort),
          orUnset(t.maLong),
          t.late,
          new Date(t.receivedAt),
        ],
      };
    }
    for (const c of batch.candles as readonly Candle[]) {
      yield {
        partition: `candles|${c.symbol}|${utcDay(c.ts)}`,
        query: `INSERT INTO ${ks}.candles (symbol, day, interval, ts, open, high, low, close, volume, trades, vwap) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TTL ${ttl.candles}`,
        params: [
          c.symbol,
          day(c.ts),
          c.interval,
          new Date(c.ts),
          c.open,
          c.high,
          c.low,
          c.close,
          c.volume,
          cassandra.types.Long.fromNumber(c.trades),
          orUnset(c.vwap),
        ],
      };
    }
    for (const p of batch.indicators as readonly IndicatorPoint[]) {
      yield {
        partition: `indicators|${p.symbol}|${utcDay(p.ts)}`,
        query: `INSERT INTO ${ks}.indicators (symbol, day, interval, ts, sma20, ema20, rsi14, bb_upper, bb_middle, bb_lower) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TTL ${ttl.indicators}`,
        params: [
          p.symbol,
          day(p.ts),
          p.interval,
          new Date(p.ts),
          orUnset(p.sma20),
          orUnset(p.ema20),
          orUnset(p.rsi14),
          orUnset(p.bbUpper),
          orUnset(p.bbMiddle),
          orUnset(p.bbLower),
        ],
      };
    }
    for (const a of batch.alerts as readonly Alert[]) {
      yield {
        partition: `alerts|${a.symbol}|${utcDay(a.ts)}`,
        query: `INSERT INTO ${ks}.alerts (symbol, day, ts, seq, kind, price, threshold, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TTL ${ttl.alerts}`,
        params: [...keyOf(a), a.kind, a.price, a.threshold, a.message],
      };
    }
  }

  #error(action: string, error: unknown): SinkError {
    const reason = error instanceof Error ? error.message : String(error);
    const unreachable =
      error instanceof cassandra.errors.NoHostAvailableError ||
      error instanceof cassandra.errors.OperationTimedOutError ||
      (error instanceof cassandra.errors.ResponseError &&
        [
          cassandra.types.responseErrorCodes.unavailableException,
          cassandra.types.responseErrorCodes.writeTimeout,
          cassandra.types.responseErrorCodes.overloaded,
        ].includes(error.code));
    return new SinkError(unreachable ? 'unreachable' : 'server', `cassandra ${action} failed: ${reason}`, {
      cause: error,
    });
  }
}
