/** `log: {type: embedded}`: the local append-only log in the data directory (docs/design.md, Modes). */
import { z } from 'zod';
import { sizeField } from '../../core/config-fields.ts';
import { logRetentionBytesField, logRetentionField } from '../log-config.ts';

export const embeddedLogSchema = z.strictObject({
  type: z.literal('embedded'),
  fsync: z.boolean().default(false).describe('fsync every append: survives power loss, slower.'),
  segmentBytes: sizeField
    .pipe(z.number().int().positive())
    .optional()
    .describe('Roll log segments at this size (default 64MiB, at most an eighth of retentionBytes).'),
  retention: logRetentionField.describe(
    'Delete processed log segments whose last append is older than this (0: never by age).',
  ),
  retentionBytes: logRetentionBytesField.describe(
    'Delete the oldest processed log segments while the log (all topics) holds more than this (0: no cap).',
  ),
});
