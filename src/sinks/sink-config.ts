/** Config pieces every sink's schema shares (each sink declares its own schema beside its code). */
import { z } from 'zod';
import { SINK_RECORD_KINDS } from './sink.ts';

/** Keys of every sink. */
export const sinkCommon = {
  name: z
    .string()
    .regex(/^[a-zA-Z0-9_-]{1,64}$/, 'letters, digits, _ and - only')
    .optional()
    .describe(
      'Unique name (default: the type, then type-2, ...): names the checkpoint file and the metrics label.',
    ),
  backlog: z
    .number()
    .int()
    .positive()
    .default(100_000)
    .describe(
      'Rows queued in memory while the sink is behind; beyond that the queue is dropped and the sink catches up from the log.',
    ),
};

/** Which record kinds a sink takes (`records`), every kind unless told. */
export const sinkRecords = z
  .array(z.enum(SINK_RECORD_KINDS))
  .min(1)
  .default([...SINK_RECORD_KINDS])
  .describe('Which records to send: ticks, candles, indicators, alerts.');
