/**
 * Every error the serve stage returns, REST and WebSocket, as `{error: {code, message}}`.
 *
 * Stable codes (clients may switch on them; never rename one):
 * - `invalid_parameter` (400): a query parameter is malformed or out of range (from, to, limit...).
 * - `invalid_range` (400): `from` is greater than `to`.
 * - `invalid_interval` (400): `interval` is not one of 1m, 5m, 15m, 1h.
 * - `invalid_kind` (400): `kind` is not one of the alert kinds.
 * - `invalid_symbol` (400): the symbol, trimmed and upper-cased, does not match `^[A-Z0-9][A-Z0-9._:/-]{0,31}$`.
 * - `bad_request` (400 or another 4xx): a malformed request Fastify itself refused (bad URL encoding...).
 * - `unauthorized` (401): the route needs an API key and none (or an unknown or revoked one) was given.
 * - `forbidden` (403): the key's role is not enough (changes to the pipeline need `admin`).
 * - `unknown_symbol` (404): the store has never seen that symbol.
 * - `unknown_feed` (404): the control panel names a feed the pipeline does not run.
 * - `not_found` (404): no such route.
 * - `conflict` (409): the control action clashes with the feed's state (already stopped...).
 * - `unsupported` (400): the feed cannot do that (a replay cannot add symbols...), or the server runs no
 *   pipeline it can change.
 * - `payload_too_large` (413): the request body exceeds `server.limits.bodyBytes`.
 * - `upgrade_required` (426): a plain HTTP request to the WebSocket endpoint.
 * - `rate_limited` (429): too many requests from this API key (or address) in the last minute, or too many
 *   invalid API keys from this address.
 * - `not_ready` (503): a dependency (the store) does not answer.
 * - `internal` (500): a bug or a failing dependency; details go to the log, never to the client.
 *
 * WebSocket only (sent as `{op: 'error', error: {code, message}}`, the socket stays open):
 * - `invalid_json`: the frame is not JSON.
 * - `invalid_message`: JSON, but not `{op, channels: string[]}`.
 * - `unknown_op`: `op` is neither `subscribe` nor `unsubscribe`.
 * - `invalid_channel`: not `ticks:SYM`, `candles:SYM:INTERVAL` or `alerts`.
 * - `too_many_subscriptions`: the subscription would exceed the per-client limit.
 * - `frame_too_large`: the frame exceeds the frame limit (far larger frames close the socket with 1009).
 * - `rate_limited`: more frames this second than `server.ws.maxMessagesPerSecond`; the frame is ignored.
 *
 * WebSocket close codes: 1009 frame far too large, 1013 (`slowClient: disconnect`) the client read
 * too slowly and its queue filled up.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { REQUEST_ID_HEADER } from './edge/request-id.ts';

export const ERROR_CODES = [
  'invalid_parameter',
  'invalid_range',
  'invalid_interval',
  'invalid_kind',
  'invalid_symbol',
  'bad_request',
  'unauthorized',
  'forbidden',
  'unknown_symbol',
  'unknown_feed',
  'not_found',
  'conflict',
  'unsupported',
  'payload_too_large',
  'upgrade_required',
  'rate_limited',
  'not_ready',
  'internal',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export const WS_ERROR_CODES = [
  'invalid_json',
  'invalid_message',
  'unknown_op',
  'invalid_channel',
  'too_many_subscriptions',
  'frame_too_large',
  'rate_limited',
] as const;
export type WsErrorCode = (typeof WS_ERROR_CODES)[number];

/** The body of every error response. */
export interface ErrorBody {
  error: { code: string; message: string };
}

/** An error a route throws on purpose: its status, code and message reach the client as they are. */
export class ApiError extends Error {
  readonly statusCode: number;
  readonly code: ErrorCode;
  constructor(statusCode: number, code: ErrorCode, message: string) {
    super(message);
    this.name = 'ApiError';
    this.statusCode = statusCode;
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

/** Fastify's own 4xx errors that have a code of their own; every other 4xx is `bad_request`. */
const STATUS_CODES: Readonly<Record<number, ErrorCode>> = {
  404: 'not_found',
  413: 'payload_too_large',
  429: 'rate_limited',
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
    reply.code(status).send(errorBody(STATUS_CODES[status] ?? 'bad_request', message));
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
