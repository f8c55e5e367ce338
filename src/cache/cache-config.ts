/** The `cache` section of the config: where the latest prices and the live fan-out live (docs/design.md, Modes). */
import { z } from 'zod';

const ttlSeconds = z
  .number()
  .positive()
  .default(60)
  .describe('How long a symbol’s latest tick stays cached after its last update.');

const keyPrefix = z
  .string()
  .min(1)
  .default('streamlines:')
  .describe('Prefix of every Redis key and channel, so several deployments can share one Redis.');

/** A URL with a password in it would put a secret in the config file (docs/design.md, Interfaces). */
function hasPassword(url: string): boolean {
  try {
    return new URL(url).password !== '';
  } catch {
    return false;
  }
}

export const cacheConfigSchema = z
  .discriminatedUnion('type', [
    z.strictObject({ type: z.literal('memory'), ttlSeconds }),
    z.strictObject({
      type: z.literal('redis'),
      url: z
        .string()
        .min(1)
        .regex(/^rediss?:\/\//, 'expected redis://host:port or rediss://host:port')
        .refine((url) => !hasPassword(url), {
          message: 'do not put a password in the config file: set REDIS_PASSWORD in the environment',
        })
        .describe('redis://[user@]host:port[/db]. The password comes from REDIS_PASSWORD, never from here.'),
      ttlSeconds,
      keyPrefix,
    }),
  ])
  .prefault({ type: 'memory' });

/** The parsed `cache` section. */
export type CacheConfig = z.output<typeof cacheConfigSchema>;
