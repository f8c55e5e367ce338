/** Config keys every cache type shares (each type declares its schema beside its code). */
import { z } from 'zod';

/** `ttlSeconds`: how long a symbol's latest tick stays cached. */
export const cacheTtlSecondsField = z
  .number()
  .positive()
  .default(60)
  .describe('How long a symbol’s latest tick stays cached after its last update.');
