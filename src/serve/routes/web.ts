/**
 * The dashboard: the built Svelte app (web/dist) at `/`. Hashed assets are cached for a year; the
 * page itself is revalidated on every load so a new build shows up at once. Client routes
 * (`/symbol/BTCUSDT`, `/pipeline`...) get the page too, so a reload or a shared link works. Without
 * a build, a tiny page says how to make one.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { ApiError } from '../errors.ts';
import { errorResponse, errorResponses } from '../schemas.ts';
import { homeRoutes } from './home.ts';

/** Where `npm run build:web` writes the app. */
export const DEFAULT_WEB_ROOT = join(import.meta.dirname, '../../../web/dist');

export interface WebRoutesOptions {
  /** The built app's folder (default web/dist). */
  root?: string;
}

/** Vite names every file under assets/ by its content hash, so a URL never changes meaning. */
const IMMUTABLE = 'public, max-age=31536000, immutable';

/** Paths that belong to the API or the server, never to the app: their 404 stays JSON. */
const SERVER_PREFIXES = ['/api/', '/ws', '/health', '/ready', '/metrics', '/docs', '/graphql', '/assets/'];

/** True for a path the app's router handles: not the server's, and not a file name. */
export function isClientRoute(path: string): boolean {
  if (SERVER_PREFIXES.some((prefix) => path === prefix.replace(/\/$/, '') || path.startsWith(prefix))) {
    return false;
  }
  // Symbols may contain dots (BRK.B), so a symbol page is never a file.
  if (path.startsWith('/symbol/')) return true;
  const last = path.slice(path.lastIndexOf('/') + 1);
  return !last.includes('.');
}

const PAGE_EXAMPLE =
  '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Streamlines</title>' +
  '<script type="module" crossorigin src="/assets/index-DWwHGLWe.js"></script></head>' +
  '<body><div id="app"></div></body></html>';

/** The page, as both routes send it. */
const pageResponse = {
  description:
    'The dashboard page (web/dist/index.html), `cache-control: no-cache`. Its scripts and styles are ' +
    'served from /assets/ under content-hashed names, `cache-control: public, max-age=31536000, immutable`.',
  content: { 'text/html': { schema: { type: 'string', examples: [PAGE_EXAMPLE] } } },
};

const indexSchema = {
  summary: 'Dashboard',
  description:
    'The dashboard: a single-page app that reads the REST API and the live stream. Built by ' +
    '`npm run build:web`; without a build, a small page says how to make one.',
  tags: ['operations'],
  response: { 200: pageResponse, ...errorResponses() },
};

const clientRouteSchema = {
  summary: 'Dashboard pages',
  description:
    "The dashboard's own pages (`/symbol/BTCUSDT`, `/pipeline`...) answer with the same page, so a " +
    "reload or a shared link works; the app's router shows the right view. Paths of the API or the " +
    'server, and file names (a dot in the last segment) that are not built assets, are 404 `not_found`.',
  tags: ['operations'],
  params: {
    type: 'object',
    properties: {
      '*': { type: 'string', description: 'The page path.', examples: ['symbol/BTCUSDT'] },
    },
  },
  response: {
    200: pageResponse,
    404: errorResponse(
      'not_found: not a page of the dashboard (an API path, or a file that does not exist).',
      'not_found',
      'route GET /favicon-missing.png not found',
    ),
    ...errorResponses(),
  },
};

/** The encapsulated plugin serving the app, or the fallback page when it is not built. */
export const webRoutes: FastifyPluginAsync<WebRoutesOptions> = async (app, options) => {
  const root = options.root ?? DEFAULT_WEB_ROOT;
  const indexPath = join(root, 'index.html');
  if (!existsSync(indexPath)) {
    await app.register(homeRoutes);
    return;
  }
  await app.register(fastifyStatic, {
    root,
    // One route per file at startup instead of a catch-all, so unknown paths reach the fallback below.
    wildcard: false,
    globIgnore: ['index.html'],
    cacheControl: false,
    setHeaders: (reply, path) => {
      reply.header('cache-control', path.includes('/assets/') ? IMMUTABLE : 'no-cache');
    },
  });

  const sendIndex = async (reply: FastifyReply) =>
    reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-cache')
      .send(await readFile(indexPath));

  app.get('/', { schema: indexSchema }, async (_request, reply) => sendIndex(reply));
  app.get('/*', { schema: clientRouteSchema }, async (request, reply) => {
    const path = request.url.split('?')[0]!;
    if (!isClientRoute(path)) {
      throw new ApiError('not_found', `route GET ${path.slice(0, 200)} not found`);
    }
    return sendIndex(reply);
  });
};
