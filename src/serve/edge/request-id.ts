/**
 * Request ids: a client's `X-Request-ID` is kept when it is safe to echo and log, otherwise the
 * server makes one, so a log line can always be matched to the response a user reports.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export const REQUEST_ID_HEADER = 'x-request-id';

/** What a client-chosen id may look like: short, no spaces, nothing a log or header could misread. */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;

/** The client's id when it matches REQUEST_ID_PATTERN, else a fresh UUID. */
export function requestIdFrom(header: string | string[] | undefined): string {
  return typeof header === 'string' && REQUEST_ID_PATTERN.test(header) ? header : randomUUID();
}

/** Fastify's `genReqId`. */
export function generateRequestId(request: IncomingMessage): string {
  return requestIdFrom(request.headers[REQUEST_ID_HEADER]);
}
