/**
 * The `lake` section of the config: where the Parquet lake lives and how it is written (docs/design.md, Retention and history).
 */
import { z } from 'zod';

export const lakeConfigSchema = z
  .strictObject({
    enabled: z
      .boolean()
      .default(true)
      .describe('Write every final symbol-day to Parquet and read history from hot store and lake together.'),
    path: z
      .string()
      .min(1)
      .optional()
      .describe('The lake directory (default DATA_DIR/lake); any directory, e.g. a mounted volume.'),
    rowGroupRows: z
      .number()
      .int()
      .positive()
      .default(262_144)
      .describe(
        'Rows per Parquet row group: smaller groups let a range read skip more of a file, larger ones scan faster.',
      ),
    intervalMs: z
      .number()
      .int()
      .positive()
      .default(1_000)
      .describe('How often the writer looks for newly final symbol-days and late rows (ms).'),
    query: z
      .strictObject({
        maxRows: z
          .number()
          .int()
          .positive()
          .default(10_000)
          .describe('Rows a warehouse query returns at most.'),
        timeoutMs: z
          .number()
          .int()
          .positive()
          .default(10_000)
          .describe('A warehouse query running longer is stopped (ms).'),
      })
      .prefault({})
      .describe('Limits of POST /api/v1/query.'),
  })
  .prefault({});

export type LakeConfig = z.output<typeof lakeConfigSchema>;
