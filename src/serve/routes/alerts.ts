/** `GET /api/v1/alerts`: fired alerts, filtered by symbol, kind and time. */
import type { FastifyPluginAsync } from 'fastify';
import type { AlertKind } from '../../core/records.ts';
import type { AlertQuery, Store } from '../../store/store.ts';
import { timeStore } from '../edge/edge.ts';
import {
  kindSchema,
  type LimitOptions,
  parseSymbol,
  type RangeQuerystring,
  rangeQuerySchema,
  toRangeQuery,
} from '../params.ts';
import { alertSchema, EXAMPLES, errorResponses, listResponse } from '../schemas.ts';

export interface AlertRoutesOptions {
  store: Store;
  limits: LimitOptions;
}

interface AlertQuerystring extends RangeQuerystring {
  symbol?: string;
  kind?: AlertKind;
}

/** The encapsulated plugin serving the alert history. */
export const alertRoutes: FastifyPluginAsync<AlertRoutesOptions> = async (app, { store, limits }) => {
  app.get<{ Querystring: AlertQuerystring }>(
    '/api/v1/alerts',
    {
      schema: {
        summary: 'Fired alerts',
        description: 'Alerts of every symbol, or of one, optionally of one kind, in a time range.',
        tags: ['alerts'],
        querystring: rangeQuerySchema(limits, {
          symbol: { type: 'string', description: 'Only alerts of this symbol.', examples: ['BTCUSDT'] },
          kind: kindSchema,
        }),
        response: {
          ...listResponse('alerts', alertSchema, [], 'The alerts, ascending by ts.', {
            alerts: [EXAMPLES.alert],
          }),
          ...errorResponses(400),
        },
      },
    },
    async (request) => {
      const query: AlertQuery = toRangeQuery(request.query);
      if (request.query.symbol !== undefined)
        query.symbol = parseSymbol(request.query.symbol, 'query parameter symbol');
      if (request.query.kind !== undefined) query.kind = request.query.kind;
      return { alerts: await timeStore(request, store.alerts(query)) };
    },
  );
};
