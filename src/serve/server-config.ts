/** The `server` section of the config: everything the serving edge can be told. */
import { z } from 'zod';

export const serverConfigSchema = z
  .strictObject({
    host: z.string().min(1).default('localhost').describe('Address to listen on.'),
    port: z.number().int().min(0).max(65_535).default(8080).describe('Port (0 picks a free one).'),
    logLevel: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info')
      .describe('Log level on stderr (pretty on a terminal, JSON otherwise); requests log at debug.'),
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
            'Invalid keys one address may present per minute; past it, further invalid keys from it get 429 (valid keys still pass).',
          ),
      })
      .prefault({}),
    trustProxy: z
      .union([z.boolean(), z.number().int().min(1), z.string().min(1), z.array(z.string().min(1))])
      .default(false)
      .describe(
        "Behind a reverse proxy: which proxies to believe about the client address (X-Forwarded-For), as Fastify's trustProxy: true (any), a hop count, or addresses/CIDRs. Off by default: the socket address is the client, so behind a proxy every client shares its address.",
      ),
    allowedHosts: z
      .union([z.literal('*'), z.array(z.string().min(1))])
      .default([])
      .describe(
        'Host names the server answers to besides localhost names and IP addresses (DNS rebinding protection): e.g. ["streamlines.example.com", ".example.com"] (a leading dot allows subdomains); "*" allows any.',
      ),
    graphql: z
      .strictObject({
        maxCost: z
          .number()
          .int()
          .positive()
          .default(1_000_000)
          .describe(
            'Largest cost of a GraphQL document, checked before it runs: each list field costs its `limit` times the cost of one row (1 per scalar field), every alias counted.',
          ),
        maxTokens: z
          .number()
          .int()
          .positive()
          .default(1_000)
          .describe(
            'Largest GraphQL document, in tokens (names, punctuation, values); the parser stops beyond it.',
          ),
        maxResponseBytes: z
          .number()
          .int()
          .positive()
          .default(16 * 1_048_576)
          .describe('Largest GraphQL answer over HTTP; a bigger one is replaced by `response_too_large`.'),
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
        maxSubscriptions: z
          .number()
          .int()
          .positive()
          .default(100)
          .describe('Channels (`/ws`) or subscriptions (`/graphql`) per connection.'),
        maxConnections: z
          .number()
          .int()
          .positive()
          .default(1_000)
          .describe('Open WebSocket connections (`/ws` and `/graphql` together); past it, 503 server_busy.'),
        maxConnectionsPerClient: z
          .number()
          .int()
          .positive()
          .default(20)
          .describe(
            'Open WebSocket connections per API key, or per address without a key; past it, 429 too_many_connections.',
          ),
        maxTotalQueuedBytes: z
          .number()
          .int()
          .positive()
          .default(64 * 1_048_576)
          .describe(
            'Bytes queued for all WebSocket clients together; past it, the clients with the most queued are closed (1008) until under budget.',
          ),
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
