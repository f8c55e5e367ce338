/**
 * The API's OpenAPI 3.1 document, generated from the route schemas (@fastify/swagger), served at
 * `/openapi.json`, and a browsable page at `/docs` (@fastify/swagger-ui, which ships its own assets,
 * so it works offline). Registered before the routes: swagger collects them as they are added.
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { RATE_LIMIT_EXEMPT_PATHS } from '../edge/edge.ts';
import { errorResponses } from '../schemas.ts';

/** Where the document is served. */
export const OPENAPI_PATH = '/openapi.json';
/** Where the browsable docs are served. */
export const DOCS_PATH = '/docs';

/** Tags group the routes on the docs page, in this order. */
export const OPENAPI_TAGS = [
  { name: 'market', description: 'Market data from the store, with the forming candles of the pipeline.' },
  { name: 'alerts', description: 'Fired alerts.' },
  { name: 'pipeline', description: 'Counters, dead letters and control of the running pipeline.' },
  { name: 'live', description: 'The live stream over WebSocket.' },
  { name: 'operations', description: 'Health, readiness, metrics and this document.' },
] as const;

/** A route as registered, for checking that the document describes every one. */
export interface RegisteredRoute {
  method: string;
  url: string;
  /** Left out of the document on purpose (the docs page's own assets). */
  hidden: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route registered after the OpenAPI plugin, in order. */
    registeredRoutes: RegisteredRoute[];
  }
}

/**
 * The edge, not the route, decides that any route may answer 429 (rate limit) or 500, so the
 * edge documents them: each route schema gets both unless it describes them itself.
 */
function describeEdgeErrors(route: RouteOptions): void {
  if (route.schema === undefined) route.schema = {};
  const schema = route.schema as { response?: Record<string, unknown> };
  if (schema.response === undefined) schema.response = {};
  const response = schema.response;
  const edge = errorResponses();
  if (!RATE_LIMIT_EXEMPT_PATHS.has(route.url) && response[429] === undefined) response[429] = edge[429];
  if (response[500] === undefined) response[500] = edge[500];
}

/** Registers the document generator, `/openapi.json` and the `/docs` page. */
export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  const routes: RegisteredRoute[] = [];
  app.decorate('registeredRoutes', routes);
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const hidden = (route.schema as { hide?: boolean } | undefined)?.hide === true;
    for (const method of methods) routes.push({ method, url: route.url, hidden });
    if (!hidden) describeEdgeErrors(route);
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Streamlines',
        version: '1',
        description:
          'Real-time market data: ticks, candles, indicators and alerts over REST, and the live stream over ' +
          'WebSocket at `/ws`. Times are ms since the epoch (UTC); `from` and `to` are inclusive; lists are ' +
          'ascending by `ts`. Errors are `{error: {code, message}}` with the stable codes of docs/errors.md.',
        license: { name: 'MIT', identifier: 'MIT' },
      },
      tags: [...OPENAPI_TAGS],
      components: {
        securitySchemes: {
          apiKey: {
            type: 'http',
            scheme: 'bearer',
            description: 'An API key: `Authorization: Bearer KEY`. Reads need one only when configured so.',
          },
        },
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: DOCS_PATH });
  app.get(
    OPENAPI_PATH,
    {
      schema: {
        summary: 'This OpenAPI document',
        description: 'The OpenAPI 3.1 description of every route, generated from the route schemas.',
        tags: ['operations'],
        response: {
          200: {
            description: 'The OpenAPI 3.1 document.',
            type: 'object',
            additionalProperties: true,
            properties: { openapi: { type: 'string' } },
            required: ['openapi'],
            examples: [{ openapi: '3.1.0', info: { title: 'Streamlines', version: '1' }, paths: {} }],
          },
        },
      },
    },
    async () => app.swagger(),
  );
}
