/** `store: {type: postgres}`: PostgreSQL, with TimescaleDB when present (docs/postgres.md). */
import { z } from 'zod';
import { durationField } from '../../core/config-fields.ts';

const DAY_MS = 86_400_000;

export const postgresStoreSchema = z.strictObject({
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
      ticks: durationField.default(30 * DAY_MS).describe('Drop ticks older than this (0 keeps them).'),
      aggregates: durationField
        .default(90 * DAY_MS)
        .describe('Drop candles and indicators older than this (0 keeps them).'),
    })
    .prefault({})
    .describe(
      "The PostgreSQL store's own retention job, by wall-clock age, besides the top-level `retention`.",
    ),
});
