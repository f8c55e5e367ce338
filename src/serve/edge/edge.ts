/**
 * The serving edge every route shares: request ids echoed in `X-Request-ID`, a `Server-Timing`
 * header, CORS, and per-key (or per-address) rate limiting. Installed on the root instance before
 * any route so every route gets it.
 */
import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../errors.ts';
import type { ServerConfig } from '../server-config.ts';
import type { LimitCounters } from './limit-counters.ts';
import { REQUEST_ID_HEADER } from './request-id.ts';
import { checkHost, registerSecurityHeaders } from './security-headers.ts';

/** Probes and scrapes must answer even when a client has used up its budget. */
export const RATE_LIMIT_EXEMPT_PATHS: ReadonlySet<string> = new Set(['/health', '/ready', '/metrics']);

declare module 'fastify' {
  interface FastifyRequest {
    /** Milliseconds this request spent waiting on the store (reported in Server-Timing). */
    storeMs: number;
  }
}

/** Awaits a store call and adds its wall time to the request's `store` Server-Timing entry. */
export async function timeStore<T>(request: FastifyRequest, work: Promise<T>): Promise<T> {
  const start = performance.now();
  try {
    return await work;
  } finally {
    request.storeMs += performance.now() - start;
  }
}

/** The `Server-Timing` value: total time in the app, and in the store when the route used it. */
export function serverTiming(appMs: number, storeMs: number): string {
  const app = `app;dur=${appMs.toFixed(2)}`;
  return storeMs > 0 ? `${app}, store;dur=${storeMs.toFixed(2)}` : app;
}

/** The rate-limit key: the API key's id when the auth plugin verified one, else the address. */
export function rateLimitKey(request: FastifyRequest): string {
  const keyId = request.principal?.keyId;
  return keyId === undefined ? `ip:${request.ip}` : `key:${keyId}`;
}

function pathOf(url: string): string {
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

/** Installs the request-id echo, Server-Timing, the Host check, security headers, CORS and the rate limiter on the root instance. */
export async function installEdge(
  app: FastifyInstance,
  config: ServerConfig,
  options: { webRoot: string; counters: LimitCounters },
): Promise<void> {
  app.decorateRequest('storeMs', 0);
  app.addHook('onRequest', checkHost(config.allowedHosts, options.counters));
  app.addHook('onRequest', async (request, reply) => {
    reply.header(REQUEST_ID_HEADER, request.id);
  });
  app.addHook('onSend', async (request, reply) => {
    // Set again here: replies that skip onRequest (Fastify's own URL errors) still carry the id.
    reply.header(REQUEST_ID_HEADER, request.id);
    reply.header('server-timing', serverTiming(reply.elapsedTime, request.storeMs));
  });

  await registerSecurityHeaders(app, options.webRoot);
  const { origins } = config.cors;
  // `false` leaves the CORS headers off, so browsers allow same-origin calls only.
  await app.register(cors, { origin: origins === '*' ? '*' : origins.length === 0 ? false : origins });

  if (config.rateLimit.enabled) {
    await app.register(rateLimit, {
      global: true,
      max: config.rateLimit.perMinute,
      timeWindow: 60_000,
      // After onRequest, where the auth plugin sets `request.principal`.
      hook: 'preValidation',
      keyGenerator: rateLimitKey,
      allowList: (request) => RATE_LIMIT_EXEMPT_PATHS.has(pathOf(request.url)),
      errorResponseBuilder: (_request, context) =>
        new ApiError(
          'rate_limited',
          `more than ${context.max} requests per minute; retry in ${Math.ceil(context.ttl / 1000)} s`,
        ),
    });
  }
}
