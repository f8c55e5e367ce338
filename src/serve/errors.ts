/**
 * Every error the serve stage returns: REST, WebSocket and GraphQL carry the same stable codes
 * (clients may switch on them; never rename one). The tables below are the one place a code, its
 * HTTP status and its meaning are declared; routes, the WebSocket hub, GraphQL and the docs test
 * (docs/errors.md must list each with the same status and meaning) all read them.
 */
import { STATUS_CODES as HTTP_STATUS_TEXT } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { REQUEST_ID_HEADER } from './edge/request-id.ts';

/** One error of the HTTP API: the status it is answered with, and what it means for the client. */
export interface ErrorSpec {
  status: number;
  meaning: string;
}

/** Every HTTP error code (REST and GraphQL `extensions.code`), answered as `{error: {code, message}}`. */
export const ERRORS = {
  invalid_parameter: {
    status: 400,
    meaning:
      'A query parameter or argument is malformed or out of range: `from`, `to` and `limit` are whole numbers in decimal digits (`from`/`to` in [0, 2^53 - 1], `limit` in 1..`server.limits.maxLimit`), given once; a body field of the wrong type.',
  },
  invalid_range: { status: 400, meaning: '`from` is greater than `to`.' },
  invalid_interval: { status: 400, meaning: '`interval` is not one of `1m`, `5m`, `15m`, `1h`, `1d`.' },
  invalid_kind: { status: 400, meaning: '`kind` is not one of the alert kinds.' },
  invalid_symbol: {
    status: 400,
    meaning: 'The symbol, trimmed and upper-cased, does not match `^[A-Z0-9][A-Z0-9._:/-]{0,31}$`.',
  },
  bad_request: {
    status: 400,
    meaning:
      'A malformed request: bad URL encoding, a body that is not JSON, a GraphQL document that does not parse or validate, a GraphQL request whose `query` is not a string, a subscription sent over plain HTTP.',
  },
  query_too_costly: {
    status: 400,
    meaning:
      'The GraphQL document would cost more than `server.graphql.maxCost` (rows requested times fields, every alias counted) or has more than `server.graphql.maxTokens` tokens; it was not run.',
  },
  response_too_large: {
    status: 400,
    meaning:
      'The GraphQL answer would exceed `server.graphql.maxResponseBytes`; ask for fewer rows or fields.',
  },
  unauthorized: {
    status: 401,
    meaning: 'The route needs an API key and none, or an unknown or revoked one, was given.',
  },
  forbidden: {
    status: 403,
    meaning: "The key's role is not enough (changes to the running pipeline need `admin`).",
  },
  host_not_allowed: {
    status: 403,
    meaning:
      'The `Host` header names neither a localhost name, an IP address nor one of `server.allowedHosts` (DNS rebinding protection).',
  },
  unknown_symbol: { status: 404, meaning: 'The store has never seen that symbol.' },
  unknown_feed: { status: 404, meaning: 'The control panel names a feed the pipeline does not run.' },
  not_found: { status: 404, meaning: 'No such route (or no active key with that id).' },
  conflict: {
    status: 409,
    meaning: "The control action clashes with the feed's state (starting a running feed...).",
  },
  unsupported: {
    status: 409,
    meaning:
      'The target cannot do that in its present configuration: the feed cannot (a replay cannot add symbols), or the server runs no pipeline it can change. The request itself is well formed.',
  },
  payload_too_large: {
    status: 413,
    meaning: 'The request body exceeds `server.limits.bodyBytes` (default 1 MiB).',
  },
  uri_too_long: { status: 414, meaning: 'The URL is longer than the server reads.' },
  unsupported_media_type: { status: 415, meaning: 'The body has a content type the route does not take.' },
  upgrade_required: { status: 426, meaning: 'A plain HTTP request to the WebSocket endpoint `/ws`.' },
  rate_limited: {
    status: 429,
    meaning:
      'More than `server.rateLimit.perMinute` requests in a minute from this API key, or from this address without a key; or an invalid API key from an address that sent more than `server.auth.maxFailedKeysPerMinute` of them (valid keys still pass). `/health`, `/ready` and `/metrics` are never limited. The `retry-after` header says when to try again.',
  },
  too_many_connections: {
    status: 429,
    meaning:
      'A WebSocket upgrade (`/ws` or `/graphql`) beyond `server.ws.maxConnectionsPerClient` open connections from this API key, or from this address without a key.',
  },
  headers_too_large: {
    status: 431,
    meaning: 'The request line and headers exceed what the server reads (16 KiB).',
  },
  internal: {
    status: 500,
    meaning:
      'A bug or a failing dependency. The details go to the log under the request id, never to the client.',
  },
  invalid_query: {
    status: 400,
    meaning: "`POST /api/v1/query`: not exactly one SELECT, or DuckDB refused it (the message is DuckDB's).",
  },
  forbidden_table: {
    status: 403,
    meaning:
      '`POST /api/v1/query`: the query reads something other than the views `ticks`, `candles`, `indicators`, `alerts` (a table function, a file, another table).',
  },
  query_timeout: {
    status: 408,
    meaning: '`POST /api/v1/query`: the query ran past `lake.query.timeoutMs` and was stopped.',
  },
  not_ready: {
    status: 503,
    meaning: '`/ready`: a dependency (the store) does not answer; the message says which and why.',
  },
  store_unavailable: {
    status: 503,
    meaning:
      "The store's database (PostgreSQL) cannot be reached: down, restarting or refusing connections. Retry later; `/ready` names the store meanwhile.",
  },
  server_busy: {
    status: 503,
    meaning:
      'A WebSocket upgrade while `server.ws.maxConnections` connections are open; the `retry-after` header says when to try again.',
  },
} as const satisfies Record<string, ErrorSpec>;
export type ErrorCode = keyof typeof ERRORS;
export const ERROR_CODES = Object.keys(ERRORS) as ErrorCode[];

/**
 * Errors sent on an open WebSocket, as `{op: 'error', error: {code, message}}` on `/ws`; the socket
 * stays open and the frame that caused it is ignored. GraphQL subscriptions use the same codes
 * (docs/graphql.md says how graphql-ws carries them).
 */
export const WS_ERRORS = {
  invalid_json: { meaning: 'The frame is not JSON (or not UTF-8).' },
  invalid_message: { meaning: 'JSON, but not `{"op": ..., "channels": [...]}`.' },
  unknown_op: { meaning: '`op` is neither `subscribe` nor `unsubscribe`.' },
  invalid_channel: {
    meaning:
      'A channel is not `ticks:SYM`, `candles:SYM:INTERVAL` or `alerts`; nothing of the request was applied.',
  },
  too_many_subscriptions: {
    meaning:
      'The subscription would exceed `server.ws.maxSubscriptions` for this connection (`/ws` channels and GraphQL subscriptions alike).',
  },
  frame_too_large: {
    meaning:
      'The frame exceeds `server.ws.maxFrameBytes`. A frame over four times the limit closes the socket with 1009 instead.',
  },
  rate_limited: {
    meaning: 'More than `server.ws.maxMessagesPerSecond` frames in one second from this client.',
  },
} as const satisfies Record<string, { meaning: string }>;
export type WsErrorCode = keyof typeof WS_ERRORS;
export const WS_ERROR_CODES = Object.keys(WS_ERRORS) as WsErrorCode[];

/** Close codes the server ends a WebSocket with (`/ws`, and `/graphql` where graphql-ws has its own). */
export const CLOSE_CODES = {
  1009: 'A frame far over the frame limit (`/ws`: over four times `server.ws.maxFrameBytes`; `/graphql`: over `server.ws.maxFrameBytes`).',
  1013: 'With `server.ws.slowClient: disconnect`: the client read too slowly and its send queue exceeded `server.ws.maxQueuedBytes`; reconnect and subscribe again. With the default `drop`, such a client loses live messages (counted) instead.',
  4400: '`/graphql`: a frame that is not a graphql-ws message (not UTF-8, not JSON, no `type`, a `subscribe` without an `id`).',
  4409: '`/graphql`: a subscription id that is already in use on this connection (graphql-ws "Subscriber already exists").',
} as const satisfies Record<number, string>;

/** The body of every error response. */
export interface ErrorBody {
  error: { code: string; message: string };
}

/** An error a route throws on purpose: its code and message reach the client, with the code's status. */
export class ApiError extends Error {
  readonly statusCode: number;
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'ApiError';
    this.statusCode = ERRORS[code].status;
    this.code = code;
  }
}

/** Builds the `{error: {code, message}}` body. */
export function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message } };
}

/** Query parameters whose bad values have their own code; all others are `invalid_parameter`. */
const PARAMETER_CODES: Readonly<Record<string, ErrorCode>> = {
  interval: 'invalid_interval',
  kind: 'invalid_kind',
  symbol: 'invalid_symbol',
};

/** Fastify's own 4xx errors that have a code of their own; every other 4xx is `bad_request` (400). */
const STATUS_CODES: Readonly<Record<number, ErrorCode>> = {
  404: 'not_found',
  413: 'payload_too_large',
  414: 'uri_too_long',
  415: 'unsupported_media_type',
  429: 'rate_limited',
  431: 'headers_too_large',
};

interface ValidationIssue {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: Record<string, unknown>;
}

/** The value the client sent, as text and cut to 100 characters, so the message echoes what they typed. */
function rawQueryValue(request: FastifyRequest, name: string): string | undefined {
  const value = untruncatedQueryValue(request, name);
  return value === undefined || value.length <= 100 ? value : `${value.slice(0, 100)}...`;
}

function untruncatedQueryValue(request: FastifyRequest, name: string): string | undefined {
  const queryStart = request.url.indexOf('?');
  if (queryStart >= 0) {
    const values = new URLSearchParams(request.url.slice(queryStart + 1)).getAll(name);
    if (values.length === 1) return JSON.stringify(values[0]);
    if (values.length > 1) return JSON.stringify(values);
  }
  const value = (request.query as Record<string, unknown> | undefined)?.[name];
  return value === undefined ? undefined : JSON.stringify(value);
}

/** Turns an Ajv (Fastify schema) failure into our code and a message naming the parameter and value. */
export function describeValidationError(
  issues: readonly ValidationIssue[],
  context: string | undefined,
  request: FastifyRequest,
): { code: ErrorCode; message: string } {
  const issue = issues[0];
  if (issue === undefined) return { code: 'invalid_parameter', message: 'invalid request' };
  const path = issue.instancePath ?? '';
  const name =
    path.length > 1
      ? path.slice(1).split('/')[0]!
      : typeof issue.params?.missingProperty === 'string'
        ? issue.params.missingProperty
        : '';
  const where = context === 'params' ? 'path parameter' : 'query parameter';
  const got = context === 'querystring' ? rawQueryValue(request, name) : undefined;
  const params = issue.params ?? {};
  let rule: string;
  switch (issue.keyword) {
    case 'type':
      rule = `must be ${params.type === 'integer' ? 'an integer' : `of type ${String(params.type)}`}`;
      break;
    case 'minimum':
      rule = `must be >= ${String(params.limit)}`;
      break;
    case 'maximum':
      rule = `must be <= ${String(params.limit)}`;
      break;
    case 'enum':
      rule = `must be one of ${(params.allowedValues as unknown[]).join(', ')}`;
      break;
    case 'required':
      rule = 'is required';
      break;
    default:
      rule = issue.message ?? 'is invalid';
  }
  return {
    code: PARAMETER_CODES[name] ?? 'invalid_parameter',
    message: `${where} ${name} ${rule}${got === undefined ? '' : `, got ${got}`}`,
  };
}

function handleError(error: FastifyError | ApiError, request: FastifyRequest, reply: FastifyReply): void {
  if (error instanceof ApiError) {
    reply.code(error.statusCode).send(errorBody(error.code, error.message));
    return;
  }
  if (error.validation) {
    const { code, message } = describeValidationError(error.validation, error.validationContext, request);
    reply.code(400).send(errorBody(code, message));
    return;
  }
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500) {
    // Fastify's messages may quote the whole URL (414): cap what goes back.
    const message = error.message.length > 300 ? `${error.message.slice(0, 300)}...` : error.message;
    const code = STATUS_CODES[status] ?? 'bad_request';
    reply.code(ERRORS[code].status).send(errorBody(code, message));
    return;
  }
  if ((error as { code?: unknown }).code === 'store_unavailable') {
    // The store's server is down (StoreUnavailableError): say so, so clients back off and retry.
    request.log.warn({ err: error }, 'store unavailable');
    reply.code(ERRORS.store_unavailable.status).send(errorBody('store_unavailable', error.message));
    return;
  }
  request.log.error({ err: error }, 'request failed');
  reply.code(500).send(errorBody('internal', 'internal server error'));
}

/** Passed to Fastify's `frameworkErrors`: bad URL encoding, over-long params, before any route runs. */
export function handleFrameworkError(
  error: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
): void {
  // These replies skip the route hooks, where the edge sets the id.
  reply.header(REQUEST_ID_HEADER, request.id);
  handleError(error, request, reply);
}

/** Node's parser errors that have a code of their own; every other is `bad_request`. */
const PARSER_CODES: Readonly<Record<string, ErrorCode>> = {
  HPE_HEADER_OVERFLOW: 'headers_too_large',
  HPE_URI_TOO_LONG: 'uri_too_long',
};

/**
 * Passed to Fastify's `clientErrorHandler`: a request Node's HTTP parser refused (headers over
 * 16 KiB...) is answered in the documented shape, where Node would send a bare status line.
 */
export function handleClientError(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const code = PARSER_CODES[error.code ?? ''] ?? 'bad_request';
  const status = ERRORS[code].status;
  const body = JSON.stringify(
    errorBody(code, code === 'bad_request' ? 'the request could not be parsed' : ERRORS[code].meaning),
  );
  socket.end(
    `HTTP/1.1 ${status} ${HTTP_STATUS_TEXT[status] ?? 'Error'}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/**
 * Installs the error and not-found handlers on the root instance, before any route plugin is
 * registered, so every encapsulated plugin inherits them.
 */
export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler(handleError);
  app.setNotFoundHandler((request, reply) => {
    reply
      .code(404)
      .send(
        errorBody(
          'not_found',
          `route ${request.method} ${request.url.split('?')[0]!.slice(0, 200)} not found`,
        ),
      );
  });
}
