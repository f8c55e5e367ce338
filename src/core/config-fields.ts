/**
 * Config value types every component's schema shares: durations and sizes as a file writes them
 * (`"10s"`, `"1GiB"`, or plain ms and bytes), parsed into numbers once, when the config is read.
 */
import { z } from 'zod';
import { parseDurationMs } from './duration.ts';
import { parseSizeBytes } from './size.ts';

/** A duration: ms as a number, or `"500ms"`, `"10s"`, `"1m"`, `"2h"`, `"7d"`; parsed into ms. */
export const durationField = z
  .union([z.string(), z.number()])
  .transform((value, context) => {
    const ms = parseDurationMs(value);
    if (ms === undefined) {
      context.addIssue({
        code: 'custom',
        message: `expected a duration such as "10s", "500ms" or ms, got ${JSON.stringify(value)}`,
      });
      return z.NEVER;
    }
    return ms;
  })
  // The JSON Schema and the config reference show this key as a duration (src/config/json-schema.ts).
  .meta({ 'x-format': 'duration' });

/** A size in bytes, or with a binary unit (`64KiB`, `256MiB`, `1GiB`); parsed into bytes. */
export const sizeField = z
  .union([z.string(), z.number()])
  .transform((value, context) => {
    const bytes = parseSizeBytes(value);
    if (bytes === undefined) {
      context.addIssue({
        code: 'custom',
        message: `expected a size such as "1GiB", "256MiB", "64KiB" or bytes, got ${JSON.stringify(value)}`,
      });
      return z.NEVER;
    }
    return bytes;
  })
  .meta({ 'x-format': 'size' });
