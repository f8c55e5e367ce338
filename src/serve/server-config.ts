/** The `server` section of the config: everything the serving edge can be told. */
import { z } from 'zod';

export const serverConfigSchema = z
  .strictObject({
    host: z.string().min(1).default('localhost').describe('Address to listen on.'),
    port: z.number().int().min(0).max(65_535).default(8080).describe('Port (0 picks a free one).'),
    logLevel: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info')
      .describe('Level of the structured JSON log (pino) on stderr.'),
    auth: z
      .strictObject({
        requireKeyForReads: z
          .boolean()
          .default(false)
          .describe(
            'Reads need a `read` or `admin` key. Changes to the running pipeline always need `admin`.',
          ),
        maxFailedKeysPerMinute: z
          .number()
          .int()
          .positive()
          .default(60)
          .describe(
            'Invalid keys one address may present per minute; past it, 429 before any key is checked.',
          ),
      })
      .prefault({}),
    cors: z
      .strictObject({
        origins: z
          .union([z.literal('*'), z.array(z.string().min(1))])
          .default([])
          .describe('Origins allowed to call the API from a browser; [] allows same-origin only.'),
      })
      .prefault({}),
    limits: z
      .strictObject({
        bodyBytes: z.number().int().positive().default(1_048_576).describe('Largest request body.'),
        maxLimit: z
          .number()
          .int()
          .positive()
          .max(10_000)
          .default(10_000)
          .describe('Largest `limit` a list accepts.'),
        defaultLimit: z
          .number()
          .int()
          .positive()
          .max(10_000)
          .default(10_000)
          .describe(
            '`limit` when none is given (the most a list returns, so a list without `limit` is whole).',
          ),
      })
      .prefault({}),
    rateLimit: z
      .strictObject({
        enabled: z
          .boolean()
          .default(true)
          .describe('Limit requests per API key, or per address without one.'),
        perMinute: z
          .number()
          .int()
          .positive()
          .default(6_000)
          .describe('Requests per minute per key or address.'),
      })
      .prefault({}),
    ws: z
      .strictObject({
        maxQueuedBytes: z
          .number()
          .int()
          .positive()
          .default(1_048_576)
          .describe('Bytes queued per client before messages drop.'),
        maxSubscriptions: z.number().int().positive().default(100).describe('Channels per client.'),
        maxFrameBytes: z
          .number()
          .int()
          .positive()
          .default(65_536)
          .describe('Largest frame a client may send.'),
        maxMessagesPerSecond: z
          .number()
          .int()
          .positive()
          .default(50)
          .describe('Frames per second a client may send.'),
        slowClient: z
          .enum(['drop', 'disconnect'])
          .default('drop')
          .describe(
            'What happens to a client whose queue is full: its messages drop (counted), or it is closed.',
          ),
      })
      .prefault({}),
  })
  .prefault({});

export type ServerConfig = z.output<typeof serverConfigSchema>;
