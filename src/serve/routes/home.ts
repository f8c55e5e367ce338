/** `GET /` when the dashboard is not built (web/dist missing): says how to build it and links the API. */
import type { FastifyPluginAsync } from 'fastify';

/** The fallback page, static. */
export const HOME_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Streamlines</title>
<style>body { font: 14px system-ui, sans-serif; margin: 2rem; }</style>
</head>
<body>
<h1>Streamlines</h1>
<p>The dashboard is not built: run <code>npm run build:web</code> and reload.</p>
<p>The API works meanwhile: <a href="/api/v1/symbols">/api/v1/symbols</a>, <a href="/api/v1/stats">/api/v1/stats</a>,
<a href="/api/v1/alerts">/api/v1/alerts</a>, <a href="/health">/health</a>.</p>
</body>
</html>
`;

/** The encapsulated plugin serving the fallback page. */
export const homeRoutes: FastifyPluginAsync = async (app) => {
  app.get(
    '/',
    {
      schema: {
        summary: 'Home page',
        description: 'A small HTML page listing the API and the last price of every symbol.',
        tags: ['operations'],
        response: {
          200: {
            description: 'The page.',
            content: {
              'text/html': {
                schema: { type: 'string', examples: ['<!doctype html><title>Streamlines</title>'] },
              },
            },
          },
        },
      },
    },
    async (_request, reply) => reply.type('text/html; charset=utf-8').send(HOME_PAGE),
  );
};
