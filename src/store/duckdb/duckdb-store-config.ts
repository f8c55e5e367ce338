/** `store: {type: duckdb}`: the embedded store, a DuckDB file in the data directory (docs/design.md, Modes). */
import { z } from 'zod';
import { sizeField } from '../../core/config-fields.ts';

export const duckDbStoreSchema = z.strictObject({
  type: z.literal('duckdb'),
  path: z.string().min(1).optional().describe('Database file (default DATA_DIR/streamlines.duckdb).'),
  memoryLimit: sizeField
    .optional()
    .describe(
      "DuckDB's memory cap: bytes, or e.g. '256MiB'. Default 1/32 of RAM within 256..512 MiB (docs/operations.md).",
    ),
});
