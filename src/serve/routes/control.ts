/**
 * The control panel's routes: feeds with their symbols (anyone may read), and changes to the running
 * pipeline (start/stop a feed, add/remove a symbol), which need an `admin` key.
 */
import type { FastifyPluginAsync } from 'fastify';
import {
  ControlError,
  type FeedStatus,
  type PipelineControl,
  type PipelineView,
} from '../../core/pipeline-view.ts';
import { requireRole } from '../auth/require-role.ts';
import { ApiError, type ErrorCode } from '../errors.ts';
import { errorResponse, errorResponses } from '../schemas.ts';

export interface ControlRoutesOptions {
  view: PipelineView;
  /** Absent when the server runs without a pipeline it may change: mutations answer `unsupported`. */
  control?: PipelineControl | undefined;
}

/** A feed as `GET /api/v1/feeds` lists it. */
export interface FeedInfo extends FeedStatus {
  symbols: string[];
}

/** Runs a control action, turning a ControlError into the matching ApiError. */
async function act(action: () => Promise<void>): Promise<{ ok: true }> {
  try {
    await action();
  } catch (error) {
    if (error instanceof ControlError) {
      throw new ApiError(error.code satisfies ErrorCode, error.message);
    }
    throw error;
  }
  return { ok: true };
}

interface FeedParams {
  name: string;
}

interface SymbolParams extends FeedParams {
  symbol: string;
}

/** A feed as listed; open-ended, so status fields that feeds add later show up without a schema change. */
const feedInfoSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    name: { type: 'string', description: 'The name in the config; the `:name` of the actions.' },
    type: { type: 'string', description: 'The kind of feed (replay, synthetic, binance...).' },
    state: {
      type: 'string',
      enum: [
        'starting',
        'running',
        'ended',
        'stopped',
        'failed',
        'connecting',
        'connected',
        'reconnecting',
        'failing',
        'fatal',
      ],
      description:
        'Live feeds show their connection while they run: connecting, connected, reconnecting, failing, fatal.',
    },
    cause: {
      type: 'string',
      description: 'Live feeds: why the feed is not connected (DNS, refused, TLS, HTTP...).',
    },
    causeKind: {
      type: 'string',
      description: 'Live feeds: the kind of cause: dns, refused, tls, http, timeout...',
    },
    failedAttempts: {
      type: 'integer',
      description: 'Live feeds: failed connection attempts since last connected.',
    },
    messages: { type: 'integer', description: 'Records read from the feed in this process.' },
    lastMessageAt: { type: ['integer', 'null'], description: 'ms since the epoch; null before the first.' },
    error: { type: 'string', description: 'Why the feed failed.' },
    connected: { type: 'boolean', description: 'Live feeds: whether the provider connection is open now.' },
    reconnects: { type: 'integer', description: 'Live feeds: opens that followed a dropped connection.' },
    backfilled: { type: 'integer', description: 'Live feeds: trades fetched over REST to fill gaps.' },
    fatal: { type: 'string', description: 'Live feeds: why the feed stopped for good.' },
    symbols: {
      type: 'array',
      items: { type: 'string' },
      description:
        'The symbols the feed trades now; empty when it cannot say or the server cannot change it.',
    },
  },
  required: ['name', 'type', 'state', 'messages', 'lastMessageAt', 'symbols'],
} as const;

const feedsSchema = {
  summary: 'List the feeds',
  description:
    'Every feed of the running pipeline with its state, counters and the symbols it trades. Needs no key ' +
    '(beyond one for reads when `server.auth.requireKeyForReads` is set).',
  tags: ['pipeline'],
  response: {
    200: {
      description: 'The feeds, in config order.',
      type: 'object',
      properties: { feeds: { type: 'array', items: feedInfoSchema } },
      required: ['feeds'],
      examples: [
        {
          feeds: [
            {
              name: 'binance',
              type: 'binance',
              state: 'connected',
              messages: 18_342,
              lastMessageAt: 1_700_000_059_731,
              connected: true,
              reconnects: 1,
              backfilled: 12,
              symbols: ['BTCUSDT', 'ETHUSDT'],
            },
            {
              name: 'replay',
              type: 'replay',
              state: 'ended',
              messages: 12,
              lastMessageAt: 1_000,
              symbols: [],
            },
          ],
        },
      ],
    },
    ...errorResponses(401),
  },
};

const security = [{ apiKey: [] }];

const feedParamsSchema = {
  type: 'object',
  properties: {
    name: { type: 'string', description: 'The feed, by its name in the config.', examples: ['binance'] },
  },
  required: ['name'],
} as const;

const feedSymbolParamsSchema = {
  type: 'object',
  properties: {
    name: feedParamsSchema.properties.name,
    symbol: {
      type: 'string',
      description: 'The symbol to remove (URL-encoded: BTC%2FUSD); trimmed and upper-cased.',
      examples: ['ETHUSDT'],
    },
  },
  required: ['name', 'symbol'],
} as const;

/** Statuses every action may answer, besides 200: the refusals of ControlError and the auth check. */
function actionResponses(description: string): Record<number, object> {
  return {
    200: {
      description,
      type: 'object',
      properties: { ok: { type: 'boolean', const: true } },
      required: ['ok'],
      examples: [{ ok: true }],
    },
    ...errorResponses(401, 403),
    400: errorResponse(
      'invalid_symbol: the symbol is malformed, or the body is not {"symbol": "SYMBOL"}.',
      'invalid_symbol',
      'the body must be JSON {"symbol": "SYMBOL"}',
    ),
    409: errorResponse(
      "conflict: the action clashes with the feed's state (already running, not running...); unsupported: " +
        'the feed cannot do that (a replay cannot add symbols), or the server runs no pipeline it can change.',
      'unsupported',
      'feed "replay" cannot add symbols while running',
    ),
    404: errorResponse(
      'unknown_feed: the pipeline runs no feed of that name.',
      'unknown_feed',
      'no feed named "nope"; feeds: binance, replay',
    ),
  };
}

/** The schema of one action; every action needs an `admin` key. */
function actionSchema(
  summary: string,
  description: string,
  success: string,
  params: object = feedParamsSchema,
): Record<string, unknown> {
  return {
    summary,
    description: `${description} Needs an \`admin\` key.`,
    tags: ['pipeline'],
    security,
    params,
    response: actionResponses(success),
  };
}

/**
 * Documents the body only: the handler checks it itself (with its own message), and Fastify's
 * validator would coerce a number to a string (`{"symbol": 1}` -> "1") instead of refusing it.
 */
const addSymbolBodySchema = {
  type: 'object',
  properties: {
    symbol: {
      type: 'string',
      description: 'Trimmed and upper-cased, it must match ^[A-Z0-9][A-Z0-9._:/-]{0,31}$.',
    },
  },
  required: ['symbol'],
  examples: [{ symbol: 'ETHUSDT' }],
} as const;

const acceptAnything = () => () => true;

/** The encapsulated plugin serving `/api/v1/feeds` and its actions. */
export const controlRoutes: FastifyPluginAsync<ControlRoutesOptions> = async (app, { view, control }) => {
  function requireControl(): PipelineControl {
    if (!control) throw new ApiError('unsupported', 'this server runs no pipeline it can change');
    return control;
  }

  app.get('/api/v1/feeds', { schema: feedsSchema }, async () => {
    const feeds: FeedInfo[] = view.stats().feeds.map((feed) => {
      let symbols: string[] = [];
      try {
        symbols = control?.feedSymbols(feed.name) ?? [];
      } catch {
        // A feed listed by stats but unknown to control has no symbols to show.
      }
      return { ...feed, symbols };
    });
    return { feeds };
  });

  const preHandler = requireRole('admin');

  app.post<{ Params: FeedParams }>(
    '/api/v1/feeds/:name/start',
    {
      preHandler,
      schema: actionSchema(
        'Start a feed',
        'Starts a stopped feed again from where it stopped (a replay that has ended cannot run again: 409).',
        'The feed is starting.',
      ),
    },
    async (request) => act(() => requireControl().startFeed(request.params.name)),
  );

  app.post<{ Params: FeedParams }>(
    '/api/v1/feeds/:name/stop',
    {
      preHandler,
      schema: actionSchema(
        'Stop a feed',
        'Stops a running feed; what it already produced stays in the log and the store.',
        'The feed has stopped.',
      ),
    },
    async (request) => act(() => requireControl().stopFeed(request.params.name)),
  );

  app.post<{ Params: FeedParams; Body: unknown }>(
    '/api/v1/feeds/:name/symbols',
    {
      preHandler,
      schema: {
        ...actionSchema(
          'Add a symbol to a feed',
          'Subscribes a live feed to one more symbol while it runs.',
          'The feed now trades the symbol.',
        ),
        body: addSymbolBodySchema,
      },
      validatorCompiler: acceptAnything,
    },
    async (request) => {
      const body = request.body as { symbol?: unknown } | null | undefined;
      if (typeof body?.symbol !== 'string') {
        throw new ApiError('invalid_symbol', 'the body must be JSON {"symbol": "SYMBOL"}');
      }
      const symbol = body.symbol;
      return act(() => requireControl().addSymbol(request.params.name, symbol));
    },
  );

  app.delete<{ Params: SymbolParams }>(
    '/api/v1/feeds/:name/symbols/:symbol',
    {
      preHandler,
      schema: actionSchema(
        'Remove a symbol from a feed',
        'Unsubscribes a live feed from a symbol it trades (409 when it does not trade it).',
        'The feed no longer trades the symbol.',
        feedSymbolParamsSchema,
      ),
    },
    async (request) => act(() => requireControl().removeSymbol(request.params.name, request.params.symbol)),
  );
};
