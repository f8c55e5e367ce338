/**
 * The config file's schema (docs/design.md, Interfaces): every key optional, unknown keys rejected. It only
 * composes: each component declares its schema, defaults and descriptions beside its code, and each kind
 * with types (feeds, log, store, cache, sinks) is a registry table that becomes one discriminated union
 * here. The JSON Schema (json-schema.ts) and the reference (config-reference.ts) are generated from this.
 */
import { z } from 'zod';
import { CACHE_TYPES } from '../cache/registry.ts';
import { type ComponentTable, uniqueNames } from '../core/component-table.ts';
import { durationField as duration, symbolField } from '../core/config-fields.ts';
import { FEED_TYPES, feedNames } from '../feeds/registry.ts';
import { lakeConfigSchema } from '../lake/lake-config.ts';
import { LOG_TYPES } from '../log/registry.ts';
import { alertsConfigSchema } from '../process/alerts-config.ts';
import { serverConfigSchema } from '../serve/server-config.ts';
import { SINK_TYPES, sinkNames } from '../sinks/registry.ts';
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

/** `log`: one of the log types (src/log/registry.ts), the embedded log unless told. */
export const logConfigSchema = componentUnion(LOG_TYPES)
  .prefault({ type: 'embedded' })
  .describe('The durable, replayable record of accepted ticks (docs/design.md, The flow).');

/** `store`: one of the store types (src/store/registry.ts), DuckDB unless told. */
export const storeConfigSchema = componentUnion(STORE_TYPES)
  .prefault({ type: 'duckdb' })
  .describe('Where ticks, candles, indicators and alerts are kept and read from.');

/** `cache`: one of the cache types (src/cache/registry.ts), in process unless told. */
export const cacheConfigSchema = componentUnion(CACHE_TYPES)
  .prefault({ type: 'memory' })
  .describe('Latest prices and the live fan-out: in this process, or shared by processes.');

export const configSchema = z.strictObject({
  symbols: z
    .array(symbolField)
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
    .superRefine(uniqueNames(feedNames, 'feed name'))
    .describe('Where ticks come from.'),
  alerts: alertsConfigSchema,
  retention: z
    .strictObject({
      ticks: duration
        .default(7 * 86_400_000)
        .describe('Keep ticks this long behind the newest stored tick, in event time (0 keeps them).'),
      candles: duration
        .default(400 * 86_400_000)
        .describe('Keep candles, indicators and alerts this long (0 keeps them).'),
      deadLetters: z
        .number()
        .int()
        .min(0)
        .default(10_000)
        .describe(
          'Keep the newest this many dead letters (by seq); they have no event time, so a count bounds them (0 keeps them all). The default is the most the dead-letters route returns.',
        ),
    })
    .prefault({})
    .describe(
      'Store retention (docs/design.md, Retention and history), deleted in the background in small steps.',
    ),
  log: logConfigSchema,
  store: storeConfigSchema,
  server: serverConfigSchema,
  cache: cacheConfigSchema,
  sinks: z
    .array(componentUnion(SINK_TYPES))
    .default([])
    .superRefine(uniqueNames(sinkNames, 'sink name'))
    .describe('Where committed results are also sent (docs/sinks.md).'),
  lake: lakeConfigSchema.describe('The Parquet lake of final days (docs/warehouse.md).'),
});

export type Config = z.output<typeof configSchema>;
