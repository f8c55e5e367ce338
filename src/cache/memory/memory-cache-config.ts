/** `cache: {type: memory}`: latest prices and the live fan-out inside the process (docs/design.md, Modes). */
import { z } from 'zod';
import { cacheTtlSecondsField } from '../cache-config.ts';

export const memoryCacheSchema = z.strictObject({
  type: z.literal('memory'),
  ttlSeconds: cacheTtlSecondsField,
});
