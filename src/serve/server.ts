/**
 * The serve stage's HTTP server: REST over the store, the live stream over WebSocket, health.
 * Every feature is an encapsulated plugin; errors come out as `{error: {code, message}}` (errors.ts).
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { Store } from '../store/store.ts';
import { handleFrameworkError, installErrorHandlers } from './errors.ts';
import type { PipelineView } from './pipeline-view.ts';
import { alertRoutes } from './routes/alerts.ts';
import { healthRoutes } from './routes/health.ts';
import { homeRoutes } from './routes/home.ts';
import { marketRoutes } from './routes/market.ts';
import { statsRoutes } from './routes/stats.ts';
import { WsHub } from './ws/ws-hub.ts';
import { wsRoutes } from './ws/ws-route.ts';

export interface ServerOptions {
  store: Store;
  view: PipelineView;
  /** `false` (default) for no logs, `true` or pino options to log. */
  logger?: boolean | object;
  /** Largest `limit` a client may ask for (default 10 000). */
  maxLimit?: number;
  /** `limit` when the client gives none (default 1 000). */
  defaultLimit?: number;
  ws?: {
    /** Per client: above this many queued bytes, live messages are dropped for it (default 1 MiB). */
    maxQueuedBytes?: number;
    /** Per client (default 100). */
    maxSubscriptions?: number;
    /** Largest frame a client may send (default 64 KiB). */
    maxFrameBytes?: number;
  };
}

export const DEFAULT_MAX_LIMIT = 10_000;
export const DEFAULT_LIMIT = 1_000;
export const DEFAULT_WS_MAX_QUEUED_BYTES = 1024 * 1024;
export const DEFAULT_WS_MAX_SUBSCRIPTIONS = 100;
export const DEFAULT_WS_MAX_FRAME_BYTES = 64 * 1024;

declare module 'fastify' {
  interface FastifyInstance {
    /** The live fan-out: its counters feed the metrics. */
    wsHub: WsHub;
  }
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  const result = value ?? fallback;
  if (!Number.isSafeInteger(result) || result < 1) {
    throw new RangeError(`server option ${name} must be a positive integer, got ${String(value)}`);
  }
  return result;
}

/** Builds the server with every route registered, not listening (`app.inject()` works on it). */
export async function buildServer(options: ServerOptions): Promise<FastifyInstance> {
  const maxLimit = positiveInteger('maxLimit', options.maxLimit, DEFAULT_MAX_LIMIT);
  const defaultLimit = positiveInteger(
    'defaultLimit',
    options.defaultLimit,
    Math.min(DEFAULT_LIMIT, maxLimit),
  );
  if (defaultLimit > maxLimit) {
    throw new RangeError(`server option defaultLimit (${defaultLimit}) must be <= maxLimit (${maxLimit})`);
  }
  const limits = { maxLimit, defaultLimit };
  const maxFrameBytes = positiveInteger(
    'ws.maxFrameBytes',
    options.ws?.maxFrameBytes,
    DEFAULT_WS_MAX_FRAME_BYTES,
  );
  const hub = new WsHub({
    maxQueuedBytes: positiveInteger(
      'ws.maxQueuedBytes',
      options.ws?.maxQueuedBytes,
      DEFAULT_WS_MAX_QUEUED_BYTES,
    ),
    maxSubscriptions: positiveInteger(
      'ws.maxSubscriptions',
      options.ws?.maxSubscriptions,
      DEFAULT_WS_MAX_SUBSCRIPTIONS,
    ),
    maxFrameBytes,
  });

  const app = Fastify({ logger: options.logger ?? false, frameworkErrors: handleFrameworkError });
  installErrorHandlers(app);
  app.decorate('wsHub', hub);

  const { store, view } = options;
  await app.register(homeRoutes);
  await app.register(healthRoutes, { store });
  await app.register(marketRoutes, { store, view, limits });
  await app.register(alertRoutes, { store, limits });
  await app.register(statsRoutes, { store, view, limits });
  await app.register(wsRoutes, { hub, maxFrameBytes });

  const stopLive = view.onLive(hub.publish);
  app.addHook('onClose', async () => stopLive());
  return app;
}
