/**
 * Config value types every component's schema shares: durations and sizes as a file writes them
 * (`"10s"`, `"1GiB"`, or plain ms and bytes), parsed into numbers once, when the config is read.
 */
import { z } from 'zod';
import { parseDurationMs } from './duration.ts';
import { parseSizeBytes } from './size.ts';

/**
 * A string or number that `parse` turns into a number. `format` marks the key in the JSON Schema, so
 * the config reference shows its values as a file writes them (src/config/config-reference.ts).
 */
function unitField(parse: (value: unknown) => number | undefined, expected: string, format: string) {
  return z
    .union([z.string(), z.number()])
    .transform((value, context) => {
      const parsed = parse(value);
      if (parsed === undefined) {
        context.addIssue({ code: 'custom', message: `expected ${expected}, got ${JSON.stringify(value)}` });
        return z.NEVER;
      }
      return parsed;
    })
    .meta({ 'x-format': format });
}

/** A duration: ms as a number, or `"500ms"`, `"10s"`, `"1m"`, `"2h"`, `"7d"`; parsed into ms. */
export const durationField = unitField(
  parseDurationMs,
  'a duration such as "10s", "500ms" or ms',
  'duration',
);

/** A size in bytes, or with a binary unit (`64KiB`, `256MiB`, `1GiB`); parsed into bytes. */
export const sizeField = unitField(
  parseSizeBytes,
  'a size such as "1GiB", "256MiB", "64KiB" or bytes',
  'size',
);

/** A symbol as ticks carry it: trimmed and upper-cased, then checked (docs/design.md, Validation). */
export const symbolField = z
  .string()
  .transform((value) => value.trim().toUpperCase())
  .pipe(z.string().regex(/^[A-Z0-9][A-Z0-9._:/-]{0,31}$/, 'not a valid symbol'));
