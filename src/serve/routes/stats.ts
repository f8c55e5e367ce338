/** Pipeline counters and the most recent dead letters. */
import type { FastifyPluginAsync } from 'fastify';
import type { Store } from '../../store/store.ts';
import type { LimitOptions } from '../params.ts';
import type { PipelineView } from '../pipeline-view.ts';
import { deadLetterSchema, listResponse } from '../schemas.ts';

/** How many dead letters `GET /api/v1/dead-letters` returns without `limit`. */
export const DEFAULT_DEAD_LETTER_LIMIT = 100;

export interface StatsRoutesOptions {
  store: Store;
  view: PipelineView;
  limits: LimitOptions;
}

/** The encapsulated plugin serving `/api/v1/stats` and `/api/v1/dead-letters`. */
export const statsRoutes: FastifyPluginAsync<StatsRoutesOptions> = async (app, { store, view, limits }) => {
  // No response schema: stats grow fields as stages add counters, and all of them should show.
  app.get('/api/v1/stats', async () => view.stats());

  app.get<{ Querystring: { limit: number } }>(
    '/api/v1/dead-letters',
    {
      schema: {
        querystring: {
          type: 'object',
          properties: {
            limit: {
              type: 'integer',
              minimum: 1,
              maximum: limits.maxLimit,
              default: Math.min(DEFAULT_DEAD_LETTER_LIMIT, limits.maxLimit),
            },
          },
        },
        response: listResponse('deadLetters', deadLetterSchema),
      },
    },
    async (request) => ({ deadLetters: await store.deadLetters(request.query.limit) }),
  );
};
