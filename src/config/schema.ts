/**
 * The config file's schema (docs/design.md, Interfaces): every key optional, defaults and descriptions here, unknown
 * keys rejected. Each component owns its part (feeds declare theirs beside their code).
 */
import { z } from 'zod';
import { CACHE_TYPES } from '../cache/registry.ts';
import type { ComponentTable } from '../core/component-table.ts';
import { durationField as duration } from '../core/config-fields.ts';
import { FEED_TYPES } from '../feeds/registry.ts';
import { lakeConfigSchema } from '../lake/lake-config.ts';
import { LOG_TYPES } from '../log/registry.ts';
import { serverConfigSchema } from '../serve/server-config.ts';
import { checkSinkNames, SINK_TYPES } from '../sinks/registry.ts';
import { STORE_TYPES } from '../store/registry.ts';

/** One component kind's section: the union of its table's schemas, told apart by `type`. */
export function componentUnion<Table extends ComponentTable>(table: Table) {
  const [first, ...rest] = table;
  const schemas: [Table[number]['schema'], ...Table[number]['schema'][]] = [
    first.schema,
    ...rest.map((entry) => entry.schema),
  ];
  return z.discriminatedUnion('type', schemas);
}

const symbol = z
  .string()
  .transform((value) => value.trim().toUpperCase())
  .pipe(z.string().regex(/^[A-Z0-9][A-Z0-9._:/-]{0,31}$/, 'not a valid symbol'));

const ruleSymbol = symbol.describe('The symbol the rule watches (trimmed and upper-cased).');

const cooldown = duration
  .optional()
  .describe('Event time after the rule fires during which it does not fire again (off when absent).');

/** `{symbol, above|below, cooldown?}`; the duration comes out as `cooldownMs`, as the processor reads it. */
export const priceRuleSchema = z
  .union([
    z.strictObject({
      symbol: ruleSymbol,
      above: z.number().finite().describe('Fire `price_above` when the price crosses above this.'),
      cooldown,
    }),
    z.strictObject({
      symbol: ruleSymbol,
      below: z.number().finite().describe('Fire `price_below` when the price crosses below this.'),
      cooldown,
    }),
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

/** `log`: one of the log types (src/log/registry.ts), the embedded log unless told. */
export const logConfigSchema = componentUnion(LOG_TYPES).prefault({ type: 'embedded' });

/** `store`: one of the store types (src/store/registry.ts), DuckDB unless told. */
export const storeConfigSchema = componentUnion(STORE_TYPES).prefault({ type: 'duckdb' });

/** `cache`: one of the cache types (src/cache/registry.ts), in process unless told. */
export const cacheConfigSchema = componentUnion(CACHE_TYPES).prefault({ type: 'memory' });

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
    .array(componentUnion(FEED_TYPES))
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
      anomaly: anomalySchema.describe('Alerts on returns far outside their recent spread (docs/anomaly.md).'),
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
  sinks: z
    .array(componentUnion(SINK_TYPES))
    .default([])
    .superRefine(checkSinkNames)
    .describe('Where committed results are also sent: influxdb, cassandra, webhook (docs/sinks.md).'),
  lake: lakeConfigSchema.describe('The Parquet lake of final days (docs/warehouse.md).'),
});

export type Config = z.output<typeof configSchema>;
