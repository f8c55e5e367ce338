/**
 * Who is calling: reads the API key of every request, sets `request.principal`, and refuses
 * unknown or revoked keys with 401. With `requireKeyForReads`, the API, GraphQL and WebSocket
 * also refuse requests without a key; health, metrics, the dashboard and the docs stay open.
 * Routes that change the pipeline check the role themselves with `requireRole('admin')`.
 */
import type { Socket } from 'node:net';
import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import type { Store } from '../../store/store.ts';
import type { LimitCounters } from '../edge/limit-counters.ts';
import { errorBody } from '../errors.ts';
import { keyRoutes } from './key-routes.ts';
import { KeyVerifier } from './keys.ts';

export interface AuthOptions {
  /** Reads (`/api/*`, `/graphql`, `/ws`) need a `read` or `admin` key (default false). */
  requireKeyForReads?: boolean;
  /** How long a verified key is trusted before the store is asked again (default 5 000 ms). */
  cacheTtlMs?: number;
  /** Invalid keys one address may present per minute before its further invalid keys get 429 (default 60). */
  maxFailedKeysPerMinute?: number;
  /** Where throttled keys are counted, for the metrics. */
  counters?: LimitCounters;
}

export interface AuthPluginOptions extends AuthOptions {
  store: Store;
}

/** Routes where a browser cannot set headers on the WebSocket upgrade, so `?apiKey=` is accepted. */
const WEBSOCKET_ROUTES = new Set(['/ws', '/graphql']);

/** The route pattern a request matched: after routing, so no URL encoding can dodge the check. */
function routeOf(request: FastifyRequest): string | undefined {
  return request.routeOptions.url;
}

function isRead(route: string | undefined): boolean {
  return route !== undefined && (route.startsWith('/api/') || WEBSOCKET_ROUTES.has(route));
}

function isWebSocketUpgrade(request: FastifyRequest): boolean {
  return request.headers.upgrade?.toLowerCase() === 'websocket';
}

/** The key the request presents, a complaint about how it presents one, or nothing. */
function presentedKey(request: FastifyRequest): { key: string } | { problem: string } | undefined {
  const header = request.headers.authorization;
  if (header !== undefined) {
    const match = /^Bearer +(\S+) *$/i.exec(header);
    return match === null ? { problem: 'the Authorization header must be "Bearer KEY"' } : { key: match[1]! };
  }
  if (isWebSocketUpgrade(request) && WEBSOCKET_ROUTES.has(routeOf(request) ?? '')) {
    const apiKey = (request.query as Record<string, unknown> | undefined)?.apiKey;
    if (apiKey === undefined) return undefined;
    return typeof apiKey === 'string' ? { key: apiKey } : { problem: 'give apiKey once' };
  }
  return undefined;
}

function missingKeyHint(request: FastifyRequest): string {
  if (isWebSocketUpgrade(request)) return ', or ?apiKey=KEY on a WebSocket';
  const query = request.query as Record<string, unknown> | undefined;
  // Query strings end up in proxy logs and browser history: only a WebSocket, which cannot set headers, may use one.
  return query?.apiKey === undefined ? '' : ' (apiKey in the query is accepted only on WebSocket upgrades)';
}

function deny(request: FastifyRequest, reply: FastifyReply, message: string, invalidToken: boolean): void {
  if (isWebSocketUpgrade(request)) {
    // Node hands an upgrade's socket over entirely: nothing would ever close it after this answer,
    // and a client that keeps it open would hold the server's close() forever.
    reply.header('connection', 'close');
    reply.raw.once('finish', () => request.raw.socket?.end());
  }
  // RFC 6750 §3: tell the client which scheme to use, and whether the key it sent was the problem.
  reply
    .code(401)
    .header('www-authenticate', invalidToken ? 'Bearer error="invalid_token"' : 'Bearer')
    .send(errorBody('unauthorized', message));
}

/**
 * Invalid keys per client address in the current minute. The route rate limiter cannot cover them:
 * its hooks are per route and run after this plugin's app-wide hook, so without this a flood of
 * made-up keys would cost a hash and a store lookup each, unthrottled.
 */
class FailedKeys {
  readonly #maxPerMinute: number;
  #counts = new Map<string, number>();
  #windowStart = Date.now();

  constructor(maxPerMinute: number) {
    this.#maxPerMinute = maxPerMinute;
  }

  blocked(address: string): boolean {
    this.#roll();
    return (this.#counts.get(address) ?? 0) >= this.#maxPerMinute;
  }

  record(address: string): void {
    this.#roll();
    this.#counts.set(address, (this.#counts.get(address) ?? 0) + 1);
  }

  /** A fixed one-minute window: the map is dropped whole, so it never outgrows a minute of addresses. */
  #roll(): void {
    const now = Date.now();
    if (now - this.#windowStart >= 60_000) {
      this.#counts = new Map();
      this.#windowStart = now;
    }
  }
}

const authPluginImpl: FastifyPluginCallback<AuthPluginOptions> = (app, options, done) => {
  const requireKeyForReads = options.requireKeyForReads ?? false;
  const failedKeys = new FailedKeys(options.maxFailedKeysPerMinute ?? 60);
  const verifier = new KeyVerifier(options.store, { cacheTtlMs: options.cacheTtlMs });
  /** Upgraded sockets per key id, so revoking a key also ends its live connections. */
  const socketsByKey = new Map<string, Set<Socket>>();

  const trackSocket = (keyId: string, socket: Socket): void => {
    let sockets = socketsByKey.get(keyId);
    if (sockets === undefined) {
      sockets = new Set();
      socketsByKey.set(keyId, sockets);
    }
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      if (sockets.size === 0 && socketsByKey.get(keyId) === sockets) socketsByKey.delete(keyId);
    });
  };
  const dropConnections = (keyId: string): void => {
    for (const socket of socketsByKey.get(keyId) ?? []) socket.destroy();
    socketsByKey.delete(keyId);
  };

  app.decorateRequest('principal', null);

  // Callback style: a request without a key (the common case on the open default) costs no promise.
  app.addHook('onRequest', (request, reply, next) => {
    const presented = presentedKey(request);
    if (presented === undefined) {
      if (requireKeyForReads && isRead(routeOf(request))) {
        deny(
          request,
          reply,
          `this needs an API key: send Authorization: Bearer KEY${missingKeyHint(request)}`,
          false,
        );
        return;
      }
      next();
      return;
    }
    const throttle = (): void => {
      options.counters?.count('auth.maxFailedKeysPerMinute');
      if (isWebSocketUpgrade(request)) {
        // As in deny(): nothing else would ever close an upgrade's socket.
        reply.header('connection', 'close');
        reply.raw.once('finish', () => request.raw.socket?.end());
      }
      reply
        .code(429)
        .header('retry-after', '60')
        .send(
          errorBody(
            'rate_limited',
            'too many invalid API keys from this address; wait a minute (valid keys still pass)',
          ),
        );
    };
    const refuse = (message: string): void => {
      if (failedKeys.blocked(request.ip)) {
        throttle();
        return;
      }
      failedKeys.record(request.ip);
      deny(request, reply, message, true);
    };
    if ('problem' in presented) {
      refuse(presented.problem);
      return;
    }
    const verify = async (): Promise<void> => {
      // Past the limit, only a key whose id is active is worth a store lookup: the address's valid
      // keys (behind a proxy, its other users') still pass, its made-up ones cost nothing.
      if (failedKeys.blocked(request.ip) && !(await verifier.hasActiveId(presented.key))) {
        throttle();
        return;
      }
      const principal = await verifier.verify(presented.key);
      if (principal === undefined) {
        refuse('the API key is not valid, or has been revoked');
        return;
      }
      request.principal = principal;
      if (isWebSocketUpgrade(request)) trackSocket(principal.keyId, request.raw.socket);
      next();
    };
    verify().catch(next);
  });

  app.register(keyRoutes, { store: options.store, verifier, dropConnections });
  done();
};

/**
 * The auth plugin. Not encapsulated (fastify-plugin's skip-override, set by hand to avoid a
 * dependency): its hook and `request.principal` apply to every route registered after it.
 */
export const authPlugin = Object.assign(authPluginImpl, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: 'streamlines-auth',
});
