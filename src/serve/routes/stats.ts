/** Pipeline counters and the most recent dead letters. */
import type { FastifyPluginAsync } from 'fastify';
import type { PipelineView, Stats } from '../../core/pipeline-view.ts';
import type { Store } from '../../store/store.ts';
import { timeStore } from '../edge/edge.ts';
import type { LimitOptions } from '../params.ts';
import { deadLetterSchema, EXAMPLES, errorResponses, listResponse } from '../schemas.ts';

/** How many dead letters `GET /api/v1/dead-letters` returns without `limit`. */
export const DEFAULT_DEAD_LETTER_LIMIT = 100;

/** The stats of a replay under way, as the OpenAPI example shows them (tests serve the same). */
export const STATS_EXAMPLE: Stats = {
  received: 12,
  accepted: 9,
  rejected: 2,
  rejectedByReason: { invalid_price: 2 },
  duplicates: 1,
  late: 1,
  candlesClosed: 3,
  alertsFired: 3,
  drained: false,
  logEndOffset: 12,
  processedOffset: 12,
  feeds: [{ name: 'replay', type: 'replay', state: 'running', messages: 12, lastMessageAt: 1_000 }],
};

export interface StatsRoutesOptions {
  store: Store;
  view: PipelineView;
  limits: LimitOptions;
}

/** The encapsulated plugin serving `/api/v1/stats` and `/api/v1/dead-letters`. */
export const statsRoutes: FastifyPluginAsync<StatsRoutesOptions> = async (app, { store, view, limits }) => {
  // No response schema: stats grow fields as stages add counters, and all of them should show.
  app.get(
    '/api/v1/stats',
    {
      schema: {
        summary: 'Pipeline counters',
        description:
          'Counters of every stage (received, accepted, rejected by reason, duplicates, late...), whether ' +
          'bounded feeds are drained, log offsets and the state of each feed.',
        tags: ['pipeline'],
        response: {
          200: {
            description: 'The counters as they are now.',
            type: 'object',
            // Stages add counters over time; every one of them should show.
            additionalProperties: true,
            properties: {
              received: { type: 'integer' },
              accepted: { type: 'integer' },
              rejected: { type: 'integer' },
              duplicates: { type: 'integer' },
              late: { type: 'integer' },
              drained: { type: 'boolean' },
            },
            required: ['received', 'accepted', 'rejected', 'duplicates', 'late', 'drained'],
            examples: [STATS_EXAMPLE],
          },
          ...errorResponses(),
        },
      },
    },
    async () => view.stats(),
  );

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
              description: 'How many of the most recent dead letters.',
              examples: [10],
            },
          },
        },
        summary: 'Recent dead letters',
        description: 'The most recent records ingest rejected, with the reason and the raw input.',
        tags: ['pipeline'],
        response: {
          ...listResponse('deadLetters', deadLetterSchema, [], 'The dead letters, ascending by seq.', {
            deadLetters: [EXAMPLES.deadLetter],
          }),
          ...errorResponses(400),
        },
      },
    },
    async (request) => ({ deadLetters: await timeStore(request, store.deadLetters(request.query.limit)) }),
  );
};
