/**
 * The config file's schema (docs/design.md, Interfaces): every key optional, defaults and descriptions here, unknown
 * keys rejected. Each component owns its part (feeds declare theirs beside their code).
 */
import { z } from 'zod';
import { cacheConfigSchema } from '../cache/cache-config.ts';
import { parseDurationMs } from '../core/duration.ts';
import { parseSizeBytes } from '../core/size.ts';
import { feedConfigSchema } from '../feeds/registry.ts';
import { lakeConfigSchema } from '../lake/lake-config.ts';
import { kafkaSaslSchema, kafkaTlsSchema } from '../log/kafka/kafka-config.ts';
import { serverConfigSchema } from '../serve/server-config.ts';
import { sinksConfigSchema } from '../sinks/registry.ts';

const duration = z.union([z.string(), z.number()]).transform((value, context) => {
  const ms = parseDurationMs(value);
  if (ms === undefined) {
    context.addIssue({
      code: 'custom',
      message: `expected a duration such as "10s", "500ms" or ms, got ${JSON.stringify(value)}`,
    });
    return z.NEVER;
  }
  return ms;
});

/** A size in bytes, or with a binary unit (`64KiB`, `256MiB`, `1GiB`). */
const size = z.union([z.string(), z.number()]).transform((value, context) => {
  const bytes = parseSizeBytes(value);
  if (bytes === undefined) {
    context.addIssue({
      code: 'custom',
      message: `expected a size such as "1GiB", "256MiB", "64KiB" or bytes, got ${JSON.stringify(value)}`,
    });
    return z.NEVER;
  }
  return bytes;
});

const LOG_RETENTION_MS = 86_400_000;
const LOG_RETENTION_BYTES = 1_073_741_824;

const symbol = z
  .string()
  .transform((value) => value.trim().toUpperCase())
  .pipe(z.string().regex(/^[A-Z0-9][A-Z0-9._:/-]{0,31}$/, 'not a valid symbol'));

const cooldown = duration
  .optional()
  .describe('Event time after the rule fires during which it does not fire again (off when absent).');

/** `{symbol, above|below, cooldown?}`; the duration comes out as `cooldownMs`, as the processor reads it. */
export const priceRuleSchema = z
  .union([
    z.strictObject({ symbol, above: z.number().finite(), cooldown }),
    z.strictObject({ symbol, below: z.number().finite(), cooldown }),
  ])
  .transform(({ cooldown: cooldownMs, ...rule }) =>
    cooldownMs === undefined ? rule : { ...rule, cooldownMs },
  );

/** `false` (no cross alerts) or `{cooldown}` per symbol (docs/design.md, Rules); on with no cooldown by default. */
export const maCrossSchema = z
  .union([
    z.literal(false),
    z
      .strictObject({
        cooldown: duration
          .default(0)
          .describe('Event time after a cross of a symbol during which that symbol fires no cross.'),
      })
      .transform(({ cooldown: cooldownMs }) => ({ cooldownMs })),
  ])
  .prefault({});

export const anomalySchema = z
  .strictObject({
    enabled: z.boolean().default(false).describe('Fire `anomaly` alerts (off unless configured).'),
    zScore: z
      .number()
      .positive()
      .default(6)
      .describe('How many standard deviations a return must be from the mean.'),
    halfLifeTicks: z
      .number()
      .positive()
      .default(100)
      .describe('Half-life, in ticks, of the mean and variance of returns.'),
    warmupTicks: z
      .number()
      .int()
      .nonnegative()
      .default(50)
      .describe('Ticks per symbol before anomalies can fire.'),
    cooldownTicks: z
      .number()
      .int()
      .nonnegative()
      .default(20)
      .describe('Ticks per symbol after an anomaly before the next.'),
    minStdDev: z
      .number()
      .nonnegative()
      .default(0.0001)
      .describe('Floor on the std dev of returns, so flat markets do not fire.'),
  })
  .prefault({});

export const logConfigSchema = z
  .discriminatedUnion('type', [
    z.strictObject({
      type: z.literal('embedded'),
      fsync: z.boolean().default(false).describe('fsync every append: survives power loss, slower.'),
      segmentBytes: size
        .pipe(z.number().int().positive())
        .optional()
        .describe('Roll log segments at this size (default 64MiB, at most an eighth of retentionBytes).'),
      retention: duration
        .default(LOG_RETENTION_MS)
        .describe('Delete processed log segments whose last append is older than this (0: never by age).'),
      retentionBytes: size
        .default(LOG_RETENTION_BYTES)
        .describe('Delete the oldest processed log segments while a topic holds more than this (0: no cap).'),
    }),
    z.strictObject({ type: z.literal('memory') }),
    z.strictObject({
      type: z.literal('kafka'),
      brokers: z.array(z.string().min(1)).min(1).describe('Bootstrap brokers, host:port.'),
      partitions: z.number().int().positive().default(1).describe('Partitions of new topics.'),
      clientId: z.string().min(1).default('streamlines').describe('Kafka client id.'),
      transactionalId: z
        .string()
        .min(1)
        .optional()
        .describe('Transactional id: one per writing process, stable across restarts.'),
      topicPrefix: z.string().default('').describe('Prefix of every Kafka topic name.'),
      replicationFactor: z.number().int().positive().default(1).describe('Replicas of new topics.'),
      tls: kafkaTlsSchema,
      sasl: kafkaSaslSchema,
      retention: duration
        .default(LOG_RETENTION_MS)
        .describe('`retention.ms` of the topics ingest creates (0: the broker default).'),
      retentionBytes: size
        .default(LOG_RETENTION_BYTES)
        .describe(
          '`retention.bytes` of the topics ingest creates, per partition as Kafka counts it (0: the broker default).',
        ),
      spoolMaxBytes: size
        .pipe(z.number().int().positive())
        .default(1_073_741_824)
        .describe(
          '`ingest` buffers appends on disk, up to this many bytes, while the brokers are unreachable.',
        ),
    }),
  ])
  .prefault({ type: 'embedded' });

export const storeConfigSchema = z
  .discriminatedUnion('type', [
    z.strictObject({
      type: z.literal('duckdb'),
      path: z.string().min(1).optional().describe('Database file (default DATA_DIR/streamlines.duckdb).'),
      memoryLimit: size
        .optional()
        .describe(
          "DuckDB's memory cap: bytes, or e.g. '256MiB'. Default 1/32 of RAM within 256..512 MiB (docs/operations.md).",
        ),
    }),
    z.strictObject({ type: z.literal('memory') }),
    z.strictObject({
      type: z.literal('postgres'),
      url: z
        .string()
        .min(1)
        .describe(
          'postgres://user@host:port/db. Never put a password here: node-postgres reads PGPASSWORD (and PGHOST, PGUSER...) from the environment.',
        ),
      schema: z.string().min(1).default('public').describe('Schema holding the tables (created if missing).'),
      timescale: z
        .enum(['auto', 'on', 'off'])
        .default('auto')
        .describe(
          'Use TimescaleDB hypertables when the extension can be created (auto), always (on) or never (off).',
        ),
      retention: z
        .strictObject({
          ticks: duration.default(30 * 86_400_000).describe('Drop ticks older than this (0 keeps them).'),
          aggregates: duration
            .default(90 * 86_400_000)
            .describe('Drop candles and indicators older than this (0 keeps them).'),
        })
        .prefault({}),
    }),
  ])
  .prefault({ type: 'duckdb' });

export const configSchema = z.strictObject({
  symbols: z
    .array(symbol)
    .default(['BTCUSDT', 'ETHUSDT', 'SOLUSDT'])
    .describe('Symbols of feeds that name none.'),
  lateness: duration.default(10_000).describe('Allowed lateness of trades before their window closes.'),
  dedupHorizon: duration
    .default(86_400_000)
    .describe(
      'How long (event time, behind the newest tick of its source and symbol) an id that is not a canonical integer is remembered; older such ticks are rejected `too_old`.',
    ),
  feeds: z
    .array(feedConfigSchema)
    .prefault([{ type: 'synthetic' }])
    .describe('Where ticks come from.'),
  alerts: z
    .strictObject({
      rules: z
        .array(priceRuleSchema)
        .max(1_000)
        .default([])
        .describe('Price rules: {symbol, above} or {symbol, below}, optional cooldown; at most 1 000.'),
      maCross: maCrossSchema.describe(
        'Golden/death cross alerts on the 5/20-tick averages: false (off) or {cooldown} per symbol.',
      ),
      anomaly: anomalySchema,
    })
    .prefault({}),
  retention: z
    .strictObject({
      ticks: duration
        .default(7 * 86_400_000)
        .describe('Keep ticks this long behind the newest stored tick, in event time (0 keeps them).'),
      candles: duration
        .default(400 * 86_400_000)
        .describe('Keep candles, indicators and alerts this long (0 keeps them).'),
    })
    .prefault({})
    .describe(
      'Store retention (docs/design.md, Retention and history), deleted in the background in small steps.',
    ),
  log: logConfigSchema,
  store: storeConfigSchema,
  server: serverConfigSchema,
  cache: cacheConfigSchema.describe('Latest prices and live fan-out: in process (memory) or Redis.'),
  sinks: sinksConfigSchema.describe(
    'Where committed results are also sent: influxdb, cassandra, webhook (docs/sinks.md).',
  ),
  lake: lakeConfigSchema.describe('The Parquet lake of final days (docs/warehouse.md).'),
});

export type Config = z.output<typeof configSchema>;
