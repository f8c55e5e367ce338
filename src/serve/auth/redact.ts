/**
 * Keeps API keys out of the log. Fastify's request log prints the URL, which carries `?apiKey=` on
 * WebSocket upgrades; headers are not printed by default, but are redacted in case a log call
 * includes them.
 */
import type { FastifyBaseLogger } from 'fastify';
import { KEY_PREFIX } from './keys.ts';

export const REDACTED = '[redacted]';

/** Whatever looks like one of our keys, anywhere: `sl_<id>_` stays, the secret goes. */
const KEY_LIKE = new RegExp(`(${KEY_PREFIX}[0-9a-f]{16}_)[A-Za-z0-9_-]+`, 'g');

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text.replaceAll('+', ' '));
  } catch {
    return text;
  }
}

/** The URL with the value of every `apiKey` query parameter (however encoded or cased) replaced. */
export function redactUrl(url: string): string {
  const queryStart = url.indexOf('?');
  let result = url;
  if (queryStart >= 0) {
    const parts = url.slice(queryStart + 1).split('&');
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      const equals = part.indexOf('=');
      const rawName = equals < 0 ? part : part.slice(0, equals);
      if (safeDecode(rawName).toLowerCase() === 'apikey') parts[i] = `${rawName}=${REDACTED}`;
    }
    result = `${url.slice(0, queryStart)}?${parts.join('&')}`;
  }
  return result.replace(KEY_LIKE, `$1${REDACTED}`);
}

/** What Fastify passes the `req` serializer: its request object. */
interface LoggedRequest {
  method?: string;
  url?: string;
  host?: string;
  ip?: string;
  socket?: { remotePort?: number } | null;
}

/** Fastify's default request serializer, with the URL redacted. */
export function serializeRequest(request: LoggedRequest): Record<string, unknown> {
  return {
    method: request.method,
    url: typeof request.url === 'string' ? redactUrl(request.url) : request.url,
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort,
  };
}

/** pino `redact` paths for logs that include headers or the parsed query. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.query.apiKey',
  'headers.authorization',
  'request.headers.authorization',
];

/**
 * Fastify `logger` options that never print a key: pass `false` through, turn `true` into
 * options, and add the request serializer and redaction to given options.
 */
export function withSecretRedaction(logger: boolean | object): boolean | object {
  if (logger === false) return false;
  const options = (logger === true ? {} : logger) as {
    serializers?: Record<string, (value: never) => unknown>;
    redact?: string[] | { paths: string[]; censor?: unknown; remove?: boolean };
  };
  const given = options.redact;
  const redact = Array.isArray(given)
    ? { paths: [...given, ...REDACT_PATHS], censor: REDACTED }
    : given === undefined
      ? { paths: REDACT_PATHS, censor: REDACTED }
      : { ...given, paths: [...given.paths, ...REDACT_PATHS] };
  const ownSerializer = options.serializers?.req as ((request: LoggedRequest) => unknown) | undefined;
  const req =
    ownSerializer === undefined
      ? serializeRequest
      : (request: LoggedRequest) => {
          const serialized = ownSerializer(request) as Record<string, unknown> | undefined;
          if (serialized !== undefined && typeof serialized.url === 'string') {
            return { ...serialized, url: redactUrl(serialized.url) };
          }
          return serialized;
        };
  return { ...options, serializers: { ...options.serializers, req }, redact };
}

/** A child of a given pino logger that redacts like `withSecretRedaction` (its `req` serializer wins in Fastify). */
export function redactingLogger(logger: FastifyBaseLogger): FastifyBaseLogger {
  return logger.child(
    {},
    { serializers: { req: serializeRequest }, redact: { paths: REDACT_PATHS, censor: REDACTED } },
  );
}
