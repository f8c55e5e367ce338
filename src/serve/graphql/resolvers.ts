/**
 * Resolvers: each one validates its arguments as REST does (args.ts), calls the same read as the
 * REST route (queries.ts) and turns an ApiError into a GraphQL error whose `extensions.code` is
 * the REST code.
 */
import type { FastifyInstance } from 'fastify';
import { GraphQLError } from 'graphql';
import type { PipelineView, Stats } from '../../core/pipeline-view.ts';
import type { Store } from '../../store/store.ts';
import type { Principal } from '../auth/require-role.ts';
import { ApiError } from '../errors.ts';
import { type LimitOptions, parseSymbol } from '../params.ts';
import { readCandles, readIndicators, readLatest, readTicks } from '../queries.ts';
import { parseAlertArgs, parseIntervalArg, parseKindArg, parseRangeArgs, type RangeArgs } from './args.ts';
import type { LiveQueue, LiveSource } from './live-source.ts';

/** What every resolver receives (mercurius adds more, e.g. `reply`). */
export interface GraphqlContext {
  /** The verified API key of the request (for subscriptions: of the WebSocket upgrade), or null. */
  principal: Principal | null;
  /** server.auth.requireKeyForReads: reads need a `read` or `admin` key. */
  requireKeyForReads: boolean;
  app: FastifyInstance;
}

declare module 'mercurius' {
  // What graphql-plugin.ts's context functions add to every request and subscription.
  interface MercuriusContext {
    principal: Principal | null;
    requireKeyForReads: boolean;
  }
}

/**
 * The read rule of the REST routes: a no-op unless the config requires keys for reads, then any
 * verified key (read or admin) passes and none is `unauthorized`.
 */
export function assertCanRead(context: GraphqlContext): void {
  if (!context.requireKeyForReads) return;
  if (context.principal === null || context.principal === undefined) {
    throw new ApiError(
      'unauthorized',
      'this needs an API key with role "read": send Authorization: Bearer KEY (or ?apiKey= on the WebSocket)',
    );
  }
}

/** The GraphQL form of an error: ApiErrors keep their code and message; anything else is hidden. */
export function toGraphqlError(error: unknown, context: GraphqlContext): GraphQLError {
  if (error instanceof ApiError) {
    return new GraphQLError(error.message, { extensions: { code: error.code }, originalError: error });
  }
  if (error instanceof GraphQLError) return error;
  context.app.log.error({ err: error }, 'graphql resolver failed');
  return new GraphQLError('internal server error', { extensions: { code: 'internal' } });
}

type Resolver<Args, Result> = (root: unknown, args: Args, context: GraphqlContext) => Promise<Result>;

/** Wraps a read: the read rule first, then REST error codes on whatever it throws. */
function read<Args, Result>(
  body: (args: Args, context: GraphqlContext) => Result | Promise<Result>,
): Resolver<Args, Result> {
  return async (_root, args, context) => {
    try {
      assertCanRead(context);
      return await body(args, context);
    } catch (error) {
      throw toGraphqlError(error, context);
    }
  };
}

/** A stream whose first read fails with `error`. */
function failedStream(error: GraphQLError): AsyncIterableIterator<never> {
  return {
    next: () => Promise.reject(error),
    return: () => Promise.resolve({ value: undefined, done: true }),
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/**
 * Wraps a subscription's `subscribe`: the read rule, then the source. A refusal (a bad argument, no
 * key) comes back as a stream that fails at once rather than as a thrown error, which mercurius
 * would log at error level as if the server had failed; either way the client gets a graphql-ws
 * `error` message with the REST code.
 */
function subscription<Args>(
  body: (args: Args, context: GraphqlContext) => AsyncIterableIterator<unknown>,
): Resolver<Args, AsyncIterableIterator<unknown>> {
  return async (_root, args, context) => {
    try {
      assertCanRead(context);
      return body(args, context);
    } catch (error) {
      return failedStream(toGraphqlError(error, context));
    }
  };
}

/** Stats with `rejectedByReason` as a list, since GraphQL has no map type. */
export function toGraphqlStats(stats: Stats): Omit<Stats, 'rejectedByReason'> & {
  rejectedByReason: { reason: string; count: number }[];
} {
  return {
    ...stats,
    rejectedByReason: Object.entries(stats.rejectedByReason).map(([reason, count]) => ({ reason, count })),
  };
}

export interface ResolverOptions {
  store: Store;
  view: PipelineView;
  limits: LimitOptions;
  live: LiveSource;
}

interface SymbolArgs {
  symbol: string;
}
interface IntervalArgs extends SymbolArgs, RangeArgs {
  interval?: string | null;
}
interface AlertArgs extends RangeArgs {
  symbol?: string | null;
  kind?: string | null;
}

const identity = (payload: unknown): unknown => payload;

/** The resolver map mercurius takes, for the schema of schema.ts. */
export function buildResolvers({ store, view, limits, live }: ResolverOptions) {
  // Same order as REST: the querystring (range, interval) is checked before the symbol.
  const symbolOf = (args: SymbolArgs) => parseSymbol(args.symbol, 'argument symbol');
  return {
    Query: {
      symbols: read(() => store.symbols()),
      latest: read((args: SymbolArgs) => readLatest(store, symbolOf(args))),
      ticks: read((args: SymbolArgs & RangeArgs) => {
        const range = parseRangeArgs(args, limits);
        return readTicks(store, symbolOf(args), range);
      }),
      candles: read((args: IntervalArgs) => {
        const range = parseRangeArgs(args, limits);
        const interval = parseIntervalArg(args.interval);
        return readCandles(store, view, symbolOf(args), interval, range);
      }),
      indicators: read((args: IntervalArgs) => {
        const range = parseRangeArgs(args, limits);
        const interval = parseIntervalArg(args.interval);
        return readIndicators(store, symbolOf(args), interval, range);
      }),
      alerts: read((args: AlertArgs) => store.alerts(parseAlertArgs(args, limits))),
      stats: read(() => toGraphqlStats(view.stats())),
    },
    Subscription: {
      ticks: {
        subscribe: subscription((args: SymbolArgs): LiveQueue => live.subscribe(`ticks:${symbolOf(args)}`)),
        resolve: identity,
      },
      candles: {
        subscribe: subscription((args: SymbolArgs & { interval?: string | null }): LiveQueue => {
          const interval = parseIntervalArg(args.interval);
          return live.subscribe(`candles:${symbolOf(args)}:${interval}`);
        }),
        resolve: identity,
      },
      alerts: {
        subscribe: subscription((args: { symbol?: string | null; kind?: string | null }): LiveQueue => {
          const symbol =
            args.symbol === undefined || args.symbol === null
              ? undefined
              : parseSymbol(args.symbol, 'argument symbol');
          const kind = args.kind === undefined || args.kind === null ? undefined : parseKindArg(args.kind);
          if (symbol === undefined && kind === undefined) return live.subscribe('alerts');
          return live.subscribe('alerts', (data) => {
            const alert = data as { symbol?: unknown; kind?: unknown };
            return (
              (symbol === undefined || alert.symbol === symbol) && (kind === undefined || alert.kind === kind)
            );
          });
        }),
        resolve: identity,
      },
    },
  };
}
