/**
 * `POST /api/v1/query`: read-only SQL over the warehouse views (docs/warehouse.md), for `admin` keys
 * (`streamlines sql` on the same machine uses the command line's key in DATA/cli-session.json). One
 * SELECT over ticks, candles, indicators and alerts; a time limit and a row cap.
 */
import type { FastifyPluginAsync } from 'fastify';
import { type Warehouse, WarehouseError, type WarehouseErrorCode } from '../../lake/warehouse.ts';
import { requireRole } from '../auth/require-role.ts';
import { ApiError, type ErrorCode } from '../errors.ts';
import { errorResponse, errorResponses } from '../schemas.ts';

export interface QueryRoutesOptions {
  /** Absent when the store has no warehouse (memory store, lake off): the route answers `unsupported`. */
  warehouse?: Warehouse | undefined;
  maxRows: number;
  timeoutMs: number;
}

/** The warehouse's codes are codes of the API too (errors.ts has their statuses). */
const WAREHOUSE_CODES: Readonly<Record<WarehouseErrorCode, ErrorCode>> = {
  invalid_query: 'invalid_query',
  forbidden_table: 'forbidden_table',
  query_timeout: 'query_timeout',
};

interface QueryBody {
  sql: string;
  maxRows?: number;
}

export const queryRoutes: FastifyPluginAsync<QueryRoutesOptions> = async (app, options) => {
  const adminOnly = requireRole('admin');
  app.post<{ Body: QueryBody }>(
    '/api/v1/query',
    {
      schema: {
        summary: 'Read-only SQL over the warehouse',
        description:
          'One SELECT over the views ticks, candles, indicators and alerts (hot store and lake as one). Needs an admin key. ' +
          'At most maxRows rows come back (`truncated` says when there were more); a query past the time limit is stopped.',
        tags: ['warehouse'],
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            sql: {
              type: 'string',
              minLength: 1,
              examples: ['SELECT symbol, count(*) AS n FROM ticks GROUP BY symbol'],
            },
            maxRows: {
              type: 'integer',
              minimum: 1,
              description: 'At most this many rows (capped by the server).',
            },
          },
          required: ['sql'],
        },
        response: {
          200: {
            type: 'object',
            properties: {
              columns: { type: 'array', items: { type: 'string' } },
              rows: { type: 'array', items: { type: 'object', additionalProperties: true } },
              truncated: { type: 'boolean' },
            },
            required: ['columns', 'rows', 'truncated'],
            examples: [
              { columns: ['symbol', 'n'], rows: [{ symbol: 'BTCUSDT', n: 1234 }], truncated: false },
            ],
          },
          400: errorResponse(
            'Not one SELECT, or DuckDB refused it.',
            'invalid_query',
            'only one SELECT is allowed',
          ),
          401: errorResponse('No API key.', 'unauthorized', 'this needs an API key with role "admin"'),
          403: errorResponse(
            'The key is not admin, or the query reads something other than the four views.',
            'forbidden_table',
            '"api_keys" is not readable here; the views are ticks, candles, indicators, alerts',
          ),
          408: errorResponse(
            'The query ran past the time limit.',
            'query_timeout',
            'the query ran past 10000 ms',
          ),
          ...errorResponses(),
        },
      },
      preHandler: adminOnly,
    },
    async (request) => {
      const warehouse = options.warehouse;
      if (warehouse === undefined) {
        throw new ApiError(
          'unsupported',
          'this server has no warehouse: it needs the DuckDB store with lake.enabled',
        );
      }
      const maxRows = Math.min(request.body.maxRows ?? options.maxRows, options.maxRows);
      try {
        return await warehouse.query(request.body.sql, { maxRows, timeoutMs: options.timeoutMs });
      } catch (error) {
        if (error instanceof WarehouseError) throw new ApiError(WAREHOUSE_CODES[error.code], error.message);
        throw error;
      }
    },
  );
};
