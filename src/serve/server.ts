/**
 * The serve stage's HTTP server: REST over the store, the live stream over WebSocket, health.
 * Every feature is an encapsulated plugin; errors come out as `{error: {code, message}}` (errors.ts).
 */
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyServerOptions,
  LogController,
} from 'fastify';
import type { z } from 'zod';
import type { PipelineControl, PipelineView } from '../core/pipeline-view.ts';
import type { Warehouse } from '../lake/warehouse.ts';
import type { Store } from '../store/store.ts';
import { authPlugin } from './auth/auth-plugin.ts';
import { redactingLogger, withSecretRedaction } from './auth/redact.ts';
import { installEdge } from './edge/edge.ts';
import { LimitCounters } from './edge/limit-counters.ts';
import { generateRequestId } from './edge/request-id.ts';
import { handleClientError, handleFrameworkError, installErrorHandlers } from './errors.ts';
import { graphqlRoutes } from './graphql/graphql-plugin.ts';
import { metricsRoutes } from './metrics/metrics-route.ts';
import { PipelineMetrics } from './metrics/pipeline-metrics.ts';
import { registerOpenApi } from './openapi/openapi.ts';
import { checkParameters } from './params.ts';
import { alertRoutes } from './routes/alerts.ts';
import { controlRoutes } from './routes/control.ts';
import { exportRoutes } from './routes/export.ts';
import { healthRoutes } from './routes/health.ts';
import { marketRoutes } from './routes/market.ts';
import { queryRoutes } from './routes/query.ts';
import { statsRoutes } from './routes/stats.ts';
import { DEFAULT_WEB_ROOT, webRoutes } from './routes/web.ts';
import { type ServerConfig, serverConfigSchema } from './server-config.ts';
import { ConnectionBudget } from './ws/connection-budget.ts';
import { WsHub } from './ws/ws-hub.ts';
import { admitWebSocketUpgrades, registerWebSocket, wsRoutes } from './ws/ws-route.ts';

export interface ServerOptions {
  store: Store;
  view: PipelineView;
  /** Changes to the running pipeline (the control panel); without it, control actions answer `unsupported`. */
  control?: PipelineControl;
  /** The built dashboard's folder (default web/dist); a tiny page says how to build it when missing. */
  webRoot?: string;
  /** `false` (default) for no logs, `true` or pino options to log, or a pino logger to log with. */
  logger?: boolean | object | FastifyBaseLogger;
  /** The `server` config section (parsed, or as written); defaults to `serverConfigSchema.parse({})`. */
  config?: z.input<typeof serverConfigSchema>;
  /** The pipeline's metrics (its recorders fed by the process stage); a fresh set when omitted. */
  metrics?: PipelineMetrics;
  /** SQL over hot store and lake for `POST /api/v1/query` (docs/warehouse.md), with its limits. */
  warehouse?: { warehouse: Warehouse; maxRows: number; timeoutMs: number };
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The live fan-out: its counters feed the metrics. */
    wsHub: WsHub;
  }
}

function isLoggerInstance(logger: ServerOptions['logger']): logger is FastifyBaseLogger {
  return typeof logger === 'object' && typeof (logger as { child?: unknown }).child === 'function';
}

/** Fastify's options from ours: logging, request ids, the body limit. */
function fastifyOptions(options: ServerOptions, config: ServerConfig): FastifyServerOptions {
  const logging: FastifyServerOptions = isLoggerInstance(options.logger)
    ? { loggerInstance: redactingLogger(options.logger) }
    : { logger: withSecretRedaction(options.logger ?? false) };
  return {
    ...logging,
    frameworkErrors: handleFrameworkError,
    clientErrorHandler: handleClientError,
    // A hop count works too (Fastify's types leave it out).
    trustProxy: config.trustProxy as FastifyServerOptions['trustProxy'],
    bodyLimit: config.limits.bodyBytes,
    // The header is validated in generateRequestId; Fastify would take it verbatim.
    requestIdHeader: false,
    genReqId: generateRequestId,
    logController: new LogController({ requestIdLogLabel: 'requestId' }),
  };
}

/** Builds the server with every route registered, not listening (`app.inject()` works on it). */
export async function buildServer(options: ServerOptions): Promise<FastifyInstance> {
  // Parsing again is cheap and refuses a hand-built config the schema would not accept.
  const config = serverConfigSchema.parse(options.config ?? {});
  const { maxLimit } = config.limits;
  // A small maxLimit lowers the default with it; only a default the user chose is an error.
  if (options.config?.limits?.defaultLimit === undefined) {
    config.limits.defaultLimit = Math.min(config.limits.defaultLimit, maxLimit);
  } else if (config.limits.defaultLimit > maxLimit) {
    throw new RangeError(
      `server.limits.defaultLimit (${config.limits.defaultLimit}) must be <= server.limits.maxLimit (${maxLimit})`,
    );
  }
  const limits = { maxLimit, defaultLimit: config.limits.defaultLimit };
  const hub = new WsHub(config.ws);
  const counters = new LimitCounters();
  const budget = new ConnectionBudget(config.ws, counters);

  const app = Fastify(fastifyOptions(options, config));
  installErrorHandlers(app);
  app.decorate('wsHub', hub);
  // Both watch routes as they are added, so they go before any route plugin.
  await registerOpenApi(app);
  await installEdge(app, config, { webRoot: options.webRoot ?? DEFAULT_WEB_ROOT, counters });
  app.addHook('preValidation', checkParameters);

  const { store, view } = options;
  // After the edge (CORS headers reach a 401 too), before every route it guards.
  await app.register(authPlugin, { store, ...config.auth, counters });
  app.addHook('onRequest', admitWebSocketUpgrades(budget));
  app.addHook('onClose', async () => budget.close());
  await app.register(webRoutes, options.webRoot === undefined ? {} : { root: options.webRoot });
  await app.register(healthRoutes, { store, view });
  const metrics = options.metrics ?? new PipelineMetrics();
  await app.register(metricsRoutes, { metrics, view, hub, limits: { counters, budget } });
  await app.register(marketRoutes, { store, view, limits });
  await app.register(alertRoutes, { store, limits });
  await app.register(statsRoutes, { store, view, limits });
  await app.register(controlRoutes, { view, control: options.control });
  await app.register(exportRoutes, { store, view });
  await app.register(queryRoutes, options.warehouse ?? { maxRows: 0, timeoutMs: 0 });
  await registerWebSocket(app, hub, config.ws.maxFrameBytes);
  await app.register(wsRoutes, { hub, maxFrameBytes: config.ws.maxFrameBytes, budget });
  await app.register(graphqlRoutes, {
    store,
    view,
    limits,
    requireKeyForReads: config.auth.requireKeyForReads,
    graphqlLimits: config.graphql,
    counters,
    subscriptionLimits: { ...config.ws, budget },
  });

  const stopLive = view.onLive(metrics.instrumentLive(hub));
  app.addHook('onClose', async () => stopLive());
  return app;
}
