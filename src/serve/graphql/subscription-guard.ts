/**
 * The limits of `/ws` applied to GraphQL subscriptions on `/graphql`: frames per second, frame size
 * and subscriptions per connection (one frame limiter, server.ws.*), well-formed graphql-ws messages
 * and unique subscription ids. Mercurius has none of these (an outside probe opened 5 000
 * subscriptions on one connection), so its WebSocket handler is wrapped: every frame passes here
 * before mercurius reads it.
 */
import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import type { RawData, WebSocket } from 'ws';
import type { LimitCounters } from '../edge/limit-counters.ts';
import type { ErrorCode, WsErrorCode } from '../errors.ts';
import type { ConnectionBudget } from '../ws/connection-budget.ts';
import { checkFrame, type FrameLimits, newFrameWindow } from '../ws/frame-limiter.ts';

/** graphql-ws close codes (the protocol's own). */
export const CLOSE_BAD_REQUEST = 4400;
export const CLOSE_SUBSCRIBER_EXISTS = 4409;
/** RFC 6455: a frame too big to process. */
export const CLOSE_TOO_BIG = 1009;

export interface SubscriptionGuardOptions extends FrameLimits {
  /** server.ws.maxSubscriptions: subscriptions open at once on one connection. */
  maxSubscriptions: number;
  budget: ConnectionBudget;
  counters: LimitCounters;
}

/** Message types that start and stop a subscription: graphql-transport-ws, then the legacy graphql-ws. */
const START_TYPES = new Set(['subscribe', 'start']);
const STOP_TYPES = new Set(['complete', 'stop']);

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A graphql-ws message: a UTF-8 JSON object with a string `type`; undefined for anything else. */
function parseMessage(frame: Buffer): (Record<string, unknown> & { type: string }) | undefined {
  if (!isUtf8(frame)) return undefined;
  let message: unknown;
  try {
    message = JSON.parse(frame.toString('utf8'));
  } catch {
    return undefined;
  }
  if (!isPlainObject(message) || typeof message.type !== 'string') return undefined;
  return message as Record<string, unknown> & { type: string };
}

/** The subscription id an outgoing `complete` or `error` message ends, read without parsing the rest. */
function endedId(data: unknown): string | undefined {
  if (typeof data !== 'string') return undefined;
  if (!data.startsWith('{"type":"complete"') && !data.startsWith('{"type":"error"')) return undefined;
  try {
    const id = (JSON.parse(data) as { id?: unknown }).id;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}

/** Guards one connection; returns false for a frame mercurius must not see. */
function guardConnection(socket: WebSocket, options: SubscriptionGuardOptions): (data: RawData) => boolean {
  const window = newFrameWindow();
  const active = new Set<string>();

  const sendError = (id: string, code: ErrorCode | WsErrorCode, message: string): void => {
    socket.send(JSON.stringify({ type: 'error', id, payload: [{ message, extensions: { code } }] }));
  };

  // Subscriptions the server ends (an error, the stream completing) free their slot and id.
  const send = socket.send;
  socket.send = function guardedSend(this: WebSocket, ...args: Parameters<WebSocket['send']>) {
    const id = endedId(args[0]);
    if (id !== undefined) active.delete(id);
    return send.apply(this, args);
  } as WebSocket['send'];

  return (raw) => {
    const frame = toBuffer(raw);
    const refusal = checkFrame(options, window, frame.length);
    if (refusal?.code === 'frame_too_large') {
      options.counters.count('ws.maxFrameBytes');
      socket.close(CLOSE_TOO_BIG, refusal.code);
      return false;
    }
    if (refusal !== undefined) {
      // Over the rate the frame is dropped unread, so a flood costs one comparison a frame; only the
      // first refused frame of each second is read, to tell the subscription it would have started.
      options.counters.count('ws.maxMessagesPerSecond');
      if (window.windowFrames === options.maxMessagesPerSecond + 1) {
        const first = parseMessage(frame);
        if (first !== undefined && START_TYPES.has(first.type) && typeof first.id === 'string') {
          sendError(first.id, refusal.code, refusal.message);
        }
      }
      return false;
    }
    const message = parseMessage(frame);
    if (message === undefined) {
      socket.close(
        CLOSE_BAD_REQUEST,
        'invalid_message: a graphql-ws message is a UTF-8 JSON object with a "type"',
      );
      return false;
    }
    const { type, id, payload } = message;
    if (STOP_TYPES.has(type)) {
      if (typeof id === 'string') active.delete(id);
      return true;
    }
    if (!START_TYPES.has(type)) return true;
    if (typeof id !== 'string' || id.length === 0) {
      socket.close(CLOSE_BAD_REQUEST, `invalid_message: ${type} needs an "id", a non-empty string`);
      return false;
    }
    if (active.has(id)) {
      socket.close(CLOSE_SUBSCRIBER_EXISTS, `Subscriber for ${id.slice(0, 50)} already exists`);
      return false;
    }
    if (!isPlainObject(payload) || typeof payload.query !== 'string') {
      sendError(id, 'bad_request', `${type} needs "payload": {"query": "..."} with the query a string`);
      return false;
    }
    if (active.size >= options.maxSubscriptions) {
      options.counters.count('ws.maxSubscriptions');
      sendError(
        id,
        'too_many_subscriptions',
        `this connection has ${active.size} subscriptions open, the limit (server.ws.maxSubscriptions); complete one first`,
      );
      return false;
    }
    active.add(id);
    return true;
  };
}

/**
 * Guards every WebSocket of `path` the server accepts: its frames pass the guard before mercurius
 * reads them, and its queue counts in the budget. Listens to the WebSocket server's `connection`
 * event, which @fastify/websocket emits before it calls the route's handler (it takes the handler
 * when the route is added, so wrapping the route itself would come too late).
 */
export function guardSubscriptions(
  server: {
    on(event: 'connection', listener: (socket: WebSocket, request: IncomingMessage) => void): unknown;
  },
  path: string,
  options: SubscriptionGuardOptions,
): void {
  server.on('connection', (socket, request) => {
    const url = request.url ?? '';
    const query = url.indexOf('?');
    if ((query === -1 ? url : url.slice(0, query)) !== path) return;
    options.budget.watch(socket);
    const admit = guardConnection(socket, options);
    // Mercurius reads frames with events.on(socket, 'message'), which cannot be put in front of:
    // filtering emit is the one place to refuse a frame without forking mercurius.
    const emit = socket.emit;
    socket.emit = function guardedEmit(this: WebSocket, event: string | symbol, ...args: unknown[]) {
      if (event === 'message' && !admit(args[0] as RawData)) return true;
      return emit.call(this, event, ...args);
    } as WebSocket['emit'];
  });
}
