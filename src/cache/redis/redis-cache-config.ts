/** `cache: {type: redis}`: latest prices and the live fan-out in Redis, shared by processes (docs/distributed.md). */
import { z } from 'zod';
import { cacheTtlSecondsField } from '../cache-config.ts';

/** A URL with a password in it would put a secret in the config file (docs/design.md, Interfaces). */
function hasPassword(url: string): boolean {
  try {
    return new URL(url).password !== '';
  } catch {
    return false;
  }
}

export const redisCacheSchema = z.strictObject({
  type: z.literal('redis'),
  url: z
    .string()
    .min(1)
    .regex(/^rediss?:\/\//, 'expected redis://host:port or rediss://host:port')
    .refine((url) => !hasPassword(url), {
      message: 'do not put a password in the config file: set REDIS_PASSWORD in the environment',
    })
    .describe('redis://[user@]host:port[/db]. The password comes from REDIS_PASSWORD, never from here.'),
  ttlSeconds: cacheTtlSecondsField,
  keyPrefix: z
    .string()
    .min(1)
    .default('streamlines:')
    .describe('Prefix of every Redis key and channel, so several deployments can share one Redis.'),
});
