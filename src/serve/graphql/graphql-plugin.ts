/**
 * `/graphql`: the REST reads and the live stream over GraphQL (mercurius). Queries over HTTP
 * (GET or POST); subscriptions over WebSocket on the same path with the graphql-ws protocol
 * (`graphql-transport-ws`, or the legacy `graphql-ws`). Schema and examples: docs/graphql.md.
 */
import websocket from '@fastify/websocket';
import type { FastifyPluginAsync, RouteOptions } from 'fastify';
import type { ExecutionResult, GraphQLFormattedError } from 'graphql';
import { GraphQLError } from 'graphql';
import mercurius, { type MercuriusContext } from 'mercurius';
import type { PipelineView } from '../../core/pipeline-view.ts';
import type { Store } from '../../store/store.ts';
import { LimitCounters } from '../edge/limit-counters.ts';
import { ERRORS } from '../errors.ts';
import type { LimitOptions } from '../params.ts';
import { ConnectionBudget } from '../ws/connection-budget.ts';
import {
  capResponse,
  checkCost,
  checkGraphqlRequest,
  type GraphqlLimits,
  hasSubscription,
  isTooManyTokens,
} from './graphql-guard.ts';
import { LiveSource } from './live-source.ts';
import { buildResolvers } from './resolvers.ts';
import { buildSchemaText } from './schema.ts';
import { guardSubscriptions, type SubscriptionGuardOptions } from './subscription-guard.ts';

export const GRAPHQL_PATH = '/graphql';
/** Largest frame a subscription client may send (a subscribe message with its query). */
export const GRAPHQL_MAX_FRAME_BYTES = 64 * 1024;

export interface GraphqlPluginOptions {
  store: Store;
  view: PipelineView;
  limits: LimitOptions;
  /** server.auth.requireKeyForReads (default false): queries and subscriptions need a key. */
  requireKeyForReads?: boolean;
  /** Per subscription: messages queued for a slow client before new ones drop (default 1 024). */
  maxQueuedMessages?: number;
  /** The subscriptions' source, to read its counters from outside; one is made when absent. */
  live?: LiveSource;
  /** server.graphql: cost, token and response limits (defaults of server-config.ts when absent). */
  graphqlLimits?: GraphqlLimits;
  /** Where refusals by the limits are counted, for the metrics; a fresh set when absent. */
  counters?: LimitCounters;
  /** The server's WebSocket budget and frame limits, shared with `/ws`; server.ws defaults when absent. */
  subscriptionLimits?: Omit<SubscriptionGuardOptions, 'counters'>;
}

/** server.ws defaults, for standalone use (tests). */
const DEFAULT_SUBSCRIPTION_LIMITS = {
  maxSubscriptions: 100,
  maxFrameBytes: GRAPHQL_MAX_FRAME_BYTES,
  maxMessagesPerSecond: 50,
};
const DEFAULT_WS_BUDGET = {
  maxConnections: 1_000,
  maxConnectionsPerClient: 20,
  maxTotalQueuedBytes: 64 * 1_048_576,
};

/** The defaults of server.graphql, for standalone use (tests). */
export const DEFAULT_GRAPHQL_LIMITS: GraphqlLimits = {
  maxCost: 1_000_000,
  maxTokens: 1_000,
  maxResponseBytes: 16 * 1_048_576,
};

/** The code of an error mercurius or graphql-js raised without one. */
function codeOf(error: GraphQLFormattedError): string {
  if (isTooManyTokens(error.message)) return 'query_too_costly';
  // No path: the document did not parse or validate; with one, e.g. a null in a non-null field.
  return error.path === undefined ? 'bad_request' : 'internal';
}

/**
 * Every error gets a code: resolvers set the REST one, the guard its own, the rest codeOf's. A
 * request refused before it ran (no `data`) is answered with the status of its code.
 */
function formatErrors(
  execution: ExecutionResult & Required<Pick<ExecutionResult, 'errors'>>,
  context: MercuriusContext,
  counters: LimitCounters,
): { statusCode: number; response: ExecutionResult } {
  const formatted = mercurius.defaultErrorFormatter(execution, context);
  const errors = (formatted.response.errors ?? []) as readonly GraphQLFormattedError[];
  const coded = errors.map((error) =>
    error.extensions?.code === undefined
      ? { ...error, extensions: { ...error.extensions, code: codeOf(error) } }
      : error,
  );
  let statusCode = formatted.statusCode;
  const first = coded[0]?.extensions?.code;
  if (first === 'query_too_costly' && errors[0]?.extensions?.code === undefined)
    counters.count('graphql.maxTokens');
  if (!execution.data && typeof first === 'string' && first in ERRORS && first !== 'internal') {
    statusCode = ERRORS[first as keyof typeof ERRORS].status;
  }
  return { statusCode, response: { ...formatted.response, errors: coded } as unknown as ExecutionResult };
}

const ERRORS_IN_BODY =
  'Errors come in the body as GraphQL `errors`, each with `extensions.code` set to the stable code of ' +
  'docs/errors.md (unknown_symbol, invalid_interval, unauthorized...): a query that does not parse or ' +
  'validate is 400 with `bad_request`; a failing field is null, with its error, in a 200.';

/** What the OpenAPI document says of mercurius' routes; the schema is docs/graphql.md. */
const GRAPHQL_DOCS: Record<'GET' | 'POST', { summary: string; description: string; tags: string[] }> = {
  GET: {
    summary: 'GraphQL query (GET) or subscription (WebSocket)',
    description:
      'A query in the querystring: `?query={ symbols { symbol lastPrice } }`, with `variables` as ' +
      'URL-encoded JSON. Upgraded to a WebSocket, the same path serves subscriptions (ticks, candles, ' +
      'alerts) with the graphql-ws protocol (`graphql-transport-ws`, or the legacy `graphql-ws`). ' +
      `${ERRORS_IN_BODY} The schema and examples are in docs/graphql.md.`,
    tags: ['market', 'live'],
  },
  POST: {
    summary: 'GraphQL query',
    description:
      'A query as JSON `{"query": "...", "variables": {...}, "operationName": "..."}`, or a bare query ' +
      'with `content-type: application/graphql`. The reads of the REST API with the same names and rules. ' +
      `${ERRORS_IN_BODY} The schema and examples are in docs/graphql.md.`,
    tags: ['market'],
  },
};

const GRAPHQL_RESPONSE_DOCS = {
  description: 'The GraphQL result: `data`, and `errors` when a field failed.',
  examples: [
    { data: { symbols: [{ symbol: 'BTCUSDT', lastPrice: 64_050.25 }] } },
    {
      data: { latest: null },
      errors: [
        {
          message: 'unknown symbol NOPE',
          locations: [{ line: 1, column: 3 }],
          path: ['latest'],
          extensions: { code: 'unknown_symbol' },
        },
      ],
    },
  ],
};

/**
 * Describes mercurius' routes for the OpenAPI document. Only documentation keywords are added:
 * mercurius' own 2xx schema (which Fastify serialises with) is kept as it is, so what it returns
 * cannot change; new objects, because mercurius shares its schema objects between instances.
 */
function describeGraphqlRoute(route: RouteOptions): void {
  if (route.url !== GRAPHQL_PATH) return;
  const methods = Array.isArray(route.method) ? route.method : [route.method];
  const docs = methods.includes('POST') ? GRAPHQL_DOCS.POST : GRAPHQL_DOCS.GET;
  const schema = (route.schema ?? {}) as Record<string, unknown>;
  const response = (schema.response ?? {}) as Record<string, object>;
  const success = response['2xx'] ?? response[200];
  route.schema = {
    ...schema,
    ...docs,
    response: {
      ...response,
      ...(success === undefined
        ? {}
        : { [response['2xx'] ? '2xx' : 200]: { ...success, ...GRAPHQL_RESPONSE_DOCS } }),
    },
  };
}

/**
 * The encapsulated plugin serving `/graphql`. Mercurius registers @fastify/websocket itself unless
 * the server already has it; a second registration would route every upgrade twice and kill `/ws`
 * connections, so the server registers it once (registerWebSocket in ws-route.ts) before this, and
 * standalone use (tests) gets one here.
 */
export const graphqlRoutes: FastifyPluginAsync<GraphqlPluginOptions> = async (app, options) => {
  const { store, view, limits } = options;
  const graphqlLimits = options.graphqlLimits ?? DEFAULT_GRAPHQL_LIMITS;
  const counters = options.counters ?? new LimitCounters();
  const requireKeyForReads = options.requireKeyForReads ?? false;
  const live =
    options.live ??
    new LiveSource(
      view,
      options.maxQueuedMessages === undefined ? {} : { maxQueuedMessages: options.maxQueuedMessages },
    );

  if (app.websocketServer === undefined) {
    // UTF-8 is checked by the frame guard, which answers 4400 rather than a bare 1007.
    await app.register(websocket, {
      options: { maxPayload: GRAPHQL_MAX_FRAME_BYTES, skipUTF8Validation: true },
    });
  }

  let subscriptionLimits = options.subscriptionLimits;
  if (subscriptionLimits === undefined) {
    const budget = new ConnectionBudget(DEFAULT_WS_BUDGET, counters);
    app.addHook('onClose', async () => budget.close());
    subscriptionLimits = { ...DEFAULT_SUBSCRIPTION_LIMITS, budget };
  }

  // Before mercurius, which adds the routes: this scope's onRoute hooks see them.
  app.addHook('onRoute', describeGraphqlRoute);
  guardSubscriptions(app.websocketServer, GRAPHQL_PATH, { ...subscriptionLimits, counters });
  app.addHook('preHandler', checkGraphqlRequest());
  app.addHook('onSend', capResponse(graphqlLimits.maxResponseBytes, counters));

  await app.register(mercurius, {
    schema: buildSchemaText(limits),
    resolvers: buildResolvers({ store, view, limits, live }),
    path: GRAPHQL_PATH,
    graphiql: false,
    graphql: { parseOptions: { maxTokens: graphqlLimits.maxTokens } },
    errorFormatter: (execution, context) => formatErrors(execution, context, counters),
    context: (request) => ({ principal: request.principal ?? null, requireKeyForReads }),
    subscription: {
      context: (_socket, request) => ({ principal: request.principal ?? null, requireKeyForReads }),
    },
  });

  // After validation, before any resolver runs: over HTTP (a reply in the context), refuse a
  // subscription and any document over the cost limit. Subscriptions are capped per connection.
  app.graphql.addHook('preExecution', async (schema, document, context, variables) => {
    if (context.reply === undefined || context.reply === null) return;
    if (hasSubscription(document)) {
      throw new GraphQLError('subscriptions need a WebSocket on this path (graphql-ws protocol)', {
        extensions: { code: 'bad_request' },
      });
    }
    const refusal = checkCost(schema, document, variables, graphqlLimits.maxCost);
    if (refusal !== undefined) {
      counters.count('graphql.maxCost');
      throw refusal;
    }
  });

  app.addHook('onClose', async () => live.close());
};
