/** `/ws`: the WebSocket endpoint, a thin adapter between `ws` sockets and the hub. */
import websocket from '@fastify/websocket';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { RawData } from 'ws';
import { rateLimitKey } from '../edge/edge.ts';
import { ApiError } from '../errors.ts';
import { errorResponses } from '../schemas.ts';
import { type ConnectionBudget, refuseUpgrade } from './connection-budget.ts';
import type { WsHub } from './ws-hub.ts';

/** Frames up to this many times the frame limit get an error reply; beyond, `ws` closes with 1009. */
export const HARD_FRAME_FACTOR = 4;

export interface WsRouteOptions {
  hub: WsHub;
  maxFrameBytes: number;
  /** The server's WebSocket budget: the socket's queue counts in its total. */
  budget?: ConnectionBudget;
}

/** The WebSocket endpoints whose upgrades the budget admits. */
const WEBSOCKET_PATHS = new Set(['/ws', '/graphql']);

/**
 * An onRequest hook (after the auth plugin's, which sets the key): admits a WebSocket upgrade of
 * `/ws` or `/graphql` into the budget, per API key or address, or refuses it with its error.
 */
export function admitWebSocketUpgrades(
  budget: ConnectionBudget,
): (request: FastifyRequest, reply: FastifyReply, done: () => void) => void {
  return (request, reply, done) => {
    if (
      request.headers.upgrade?.toLowerCase() !== 'websocket' ||
      !WEBSOCKET_PATHS.has(request.routeOptions.url ?? '')
    ) {
      done();
      return;
    }
    const client = rateLimitKey(request);
    const refusal = budget.admit(client);
    if (refusal !== undefined) {
      refuseUpgrade(request, reply, refusal);
      return;
    }
    request.raw.socket.once('close', () => budget.release(client));
    done();
  };
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** The encapsulated plugin serving `/ws`. */
/**
 * Registers @fastify/websocket once for the whole server (it is not encapsulated, so `/ws` and
 * `/graphql` share one `upgrade` dispatcher: two registrations would route each upgrade twice).
 */
export async function registerWebSocket(
  app: FastifyInstance,
  hub: WsHub,
  maxFrameBytes: number,
): Promise<void> {
  await app.register(websocket, {
    // Between maxFrameBytes and this, the hub answers frame_too_large and the socket stays open;
    // reading anything bigger is not worth it, so `ws` stops at this size and closes with 1009.
    // UTF-8 is checked by the hub and the GraphQL guard, which answer instead of closing the socket.
    options: { maxPayload: maxFrameBytes * HARD_FRAME_FACTOR, skipUTF8Validation: true },
    // `ws` has already started closing the socket (1009 for an oversize frame); only count and log.
    errorHandler(error, _socket, request) {
      if ((error as { code?: string }).code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
        hub.countError('frame_too_large');
        request.log.debug({ err: error }, 'websocket frame too large, closing');
      } else {
        request.log.warn({ err: error }, 'websocket error');
      }
    },
  });
}

/** The encapsulated plugin serving `/ws`; needs registerWebSocket() on the server first. */
export const wsRoutes: FastifyPluginAsync<WsRouteOptions> = async (app, { hub, budget }) => {
  app.route({
    method: 'GET',
    url: '/ws',
    schema: {
      summary: 'Live stream (WebSocket)',
      description:
        'Upgrade to a WebSocket, then send `{"op": "subscribe", "channels": ["ticks:BTCUSDT", ' +
        '"candles:BTCUSDT:1m", "alerts"]}` (or `unsubscribe`); the server sends `{"channel", "data"}` per ' +
        'live message, and `{"op": "error", "error": {code, message}}` for a bad frame. Frames per second, ' +
        'frame size and subscriptions per client are limited; a client that reads too slowly loses ' +
        'messages or, if so configured, is closed with 1013.',
      tags: ['live'],
      querystring: {
        type: 'object',
        properties: {
          apiKey: {
            type: 'string',
            maxLength: 256,
            description: 'An API key, for clients that cannot set Authorization on a WebSocket.',
            examples: ['sl_read_4f2a9c'],
          },
        },
      },
      response: {
        101: { description: 'Switching Protocols: the WebSocket is open.', type: 'null' },
        ...errorResponses(426),
      },
    },
    handler: async () => {
      throw new ApiError('upgrade_required', '/ws is a WebSocket endpoint: connect with a WebSocket client');
    },
    wsHandler: (socket, request) => {
      budget?.watch(socket);
      // `ws` writes each frame to the upgraded request's socket: the hub corks it per batch.
      const client = hub.addClient(socket, request.raw.socket);
      socket.on('message', (data) => hub.receive(client, toBuffer(data)));
      socket.on('close', () => hub.removeClient(client));
    },
  });
};
